"""Rig F-curves -> motion vectors: a (frames, channels) float32 array in the
channel table's order and units, what the backend's `generate` takes.

Sampling reads the rig's action and never changes the scene (no frame_set),
so Generate can run while the artist keeps working, and it is fast: each
curve is evaluated with `FCurve.evaluate`, which is Blender's own evaluator
(every interpolation and easing mode, handles, extrapolation and F-curve
modifiers come out exactly as in the Graph Editor). 1,000 frames x all
channels takes a few milliseconds (bench/bench_addon.py).

A channel without an F-curve (or with a muted one) holds its current value.
Values are clamped to the channel's range, as Blender clamps an animated
property to its hard limits. Only the active action is sampled; NLA strips
are reported by `uses_nla` so the UI can warn about them.
"""
from __future__ import annotations

from collections.abc import Sequence

import bpy
import numpy as np

from . import compat, properties
from .shared.channels import CHANNELS, maximum_vector, minimum_vector


def channel_curves(obj: bpy.types.Object) -> list[bpy.types.FCurve | None]:
    """The F-curve driving each channel (table order), None where there is none
    or it cannot play (muted, or no keys and no modifiers)."""
    by_path = compat.fcurves_by_path(obj, properties.PROPERTY_PREFIX)
    result = []
    for ch in CHANNELS:
        fc = by_path.get(properties.data_path(ch.name))
        if fc is not None and (fc.mute or (len(fc.keyframe_points) == 0 and len(fc.modifiers) == 0)):
            fc = None
        result.append(fc)
    return result


def current_values(obj: bpy.types.Object) -> np.ndarray:
    """The rig's channel values as shown in the UI right now, (channels,) float32."""
    values = np.asarray(properties.rig_channel_values(obj), dtype=np.float32)
    return np.clip(values, minimum_vector(), maximum_vector())


def sample(obj: bpy.types.Object, frames: Sequence[float] | np.ndarray) -> np.ndarray:
    """Channel values of rig `obj` at each of `frames`, shape (len(frames), channels)."""
    frame_list = [float(f) for f in np.asarray(frames, dtype=np.float64).ravel()]
    count = len(frame_list)
    out = np.empty((count, len(CHANNELS)), dtype=np.float32)
    out[:] = current_values(obj)  # channels without a curve hold their value
    for column, fc in enumerate(channel_curves(obj)):
        if fc is None:
            continue
        evaluate = fc.evaluate  # bound once: the loop below is the hot path
        values = np.fromiter((evaluate(f) for f in frame_list), dtype=np.float64, count=count)
        out[:, column] = values / properties.SCALES[column]
    np.clip(out, minimum_vector(), maximum_vector(), out=out)
    return out


def frame_range(scene: bpy.types.Scene, obj: bpy.types.Object) -> tuple[int, int]:
    """The (first, last) frame Generate renders for `obj`, inclusive."""
    rig = obj.enliven
    if rig.use_custom_range:
        return rig.frame_start, max(rig.frame_start, rig.frame_end)
    return scene.frame_start, max(scene.frame_start, scene.frame_end)


def scene_fps(scene: bpy.types.Scene) -> float:
    return scene.render.fps / scene.render.fps_base


def uses_nla(obj: bpy.types.Object) -> bool:
    """True when NLA strips could change the rig's motion (sampling ignores them)."""
    adt = obj.animation_data
    if adt is None:
        return False
    return any(not track.mute and len(track.strips) for track in adt.nla_tracks)
