"""Writing keyframes on a rig: presets, baked motion files, and the motion
a capture or lip-sync job sends back (`bake_channels`, `key_job_motion`).

Keys go straight into the channel F-curves (`keyframe_points.insert` /
`add`), which is much faster than `keyframe_insert` per key and does not
touch the properties' current values. Keys are ordinary, editable keys in
the "Enliven" action group.
"""
from __future__ import annotations

import bpy
import numpy as np

from . import compat, properties, sampling
from .shared import keyframes
from .shared.channels import CHANNEL_INDEX, CHANNEL_NAMES
from .shared.client import motion_of
from .shared.motion import Motion
from .shared.mouth import MouthOpening
from .shared.presets import PRESETS, preset_keys
from .states import UserError


def _clear_range(fc: bpy.types.FCurve, first: float, last: float) -> None:
    """Remove the curve's keys in [first, last] so new keys replace, not mix."""
    points = fc.keyframe_points
    for index in range(len(points) - 1, -1, -1):
        if first - 1e-4 <= points[index].co.x <= last + 1e-4:
            points.remove(points[index], fast=True)


def _end_loop(fc: bpy.types.FCurve, until: float) -> None:
    """A looping curve (a Cycles modifier repeats its keys) about to take keys that do not loop with it, from
    frame `until` on: its loop written out as keys up to there, and the modifier removed. The loop plays on
    up to the new keys, which then play once (the modifier kept, the new keys became part of the cycle: the
    loop stopped repeating, and a talk inserted after it repeated for ever)."""
    cycles = [modifier for modifier in fc.modifiers if modifier.type == 'CYCLES']
    points = fc.keyframe_points
    if not cycles or len(points) and until <= points[0].co.x:
        return  # (keys before the loop: nothing of it to write out; the modifier spans them, as it always did)
    if any(modifier.mute or modifier.use_restricted_range or modifier.mode_after != 'REPEAT' or modifier.cycles_after
           for modifier in cycles):
        return  # the artist's own cycling (muted, limited, mirrored, offset): left as it is, not written out
    if len(points) > 1:
        loop = [(tuple(p.co), p.interpolation, p.handle_left_type, p.handle_right_type) for p in points]
        first, period = loop[0][0][0], loop[-1][0][0] - loop[0][0][0]
        repeat = 1
        while period >= 1.0 and first + repeat * period < until:
            for (frame, value), interpolation, left, right in loop[1:]:  # (a loop's last key is its first again)
                frame += repeat * period
                if frame >= until:
                    break
                point = points.insert(frame, value, options={'FAST'})
                point.interpolation, point.handle_left_type, point.handle_right_type = interpolation, left, right
            repeat += 1
    for modifier in cycles:
        fc.modifiers.remove(modifier)
    fc.update()


def insert_keys(obj: bpy.types.Object, keys: dict[str, list[tuple[float, float]]], *,
                interpolation: str = 'BEZIER', replace: bool = True, loop: bool = False) -> int:
    """Insert `keys` ({channel: [(frame, value in channel units)]}) on rig `obj`.

    With `replace`, each channel's existing keys inside the new keys' frame
    span are removed first. Bezier keys get auto-clamped handles, which is
    what the presets are designed for. A channel that loops (a Cycles
    modifier) stops looping where the new keys begin, unless they are a
    `loop` themselves (insert_preset's). Returns the number of keys inserted.
    """
    count = 0
    for name, channel_keys in keys.items():
        if name not in CHANNEL_NAMES:
            raise ValueError(f"unknown channel {name!r}")
        if not channel_keys:
            continue
        fc = compat.ensure_fcurve(obj, properties.data_path(name), properties.GROUP_NAME)
        frames = np.array([k[0] for k in channel_keys], dtype=np.float64)
        values = np.array([properties.to_property(name, k[1]) for k in channel_keys], dtype=np.float64)
        if not loop:
            _end_loop(fc, frames.min())
        if replace:
            _clear_range(fc, frames.min(), frames.max())
        points = fc.keyframe_points
        if len(points) == 0:
            # Empty curve: add all keys at once (a bake can be thousands).
            points.add(len(frames))
            points.foreach_set("co", np.column_stack((frames, values)).astype(np.float32).ravel())
            new_points = list(points)
        else:
            new_points = [points.insert(f, v, options={'FAST'}) for f, v in zip(frames.tolist(), values.tolist())]
        for point in new_points:
            point.interpolation = interpolation
            point.handle_left_type = point.handle_right_type = 'AUTO_CLAMPED'
        fc.update()  # sorts keys and computes the auto handles
        count += len(frames)
    _tag(obj)
    return count


def insert_preset(obj: bpy.types.Object, name: str, frame: int, fps: float, *, seed: int = 0,
                  duration_s: float | None = None, replace: bool = True, loop: bool = False,
                  mouth: MouthOpening | None = None) -> tuple[int, int]:
    """Insert preset `name` starting at `frame`; returns (keys inserted, last frame).

    With `loop` (loopable presets only) the keys are a seamless loop whose
    last key repeats the first, and each of the preset's F-curves gets a
    Cycles modifier: the motion repeats for ever, the frame after the last
    key's predecessor flowing into the first key again. A Cycles modifier
    repeats all of a curve's keys, so a loop's channels may have none before
    it (ValueError), and it replaces theirs after it. Each face of a group
    photo draws its own variation from `seed` (its blinks, glances, breaths). The speech of talk and
    showcase is fitted to `mouth`, the photo's lips (runtime.photo_mouth): on a photo whose mouth is open
    they close between syllables (negative jaw_open keys).
    """
    keys = preset_keys(name, fps=fps, seed=seed, duration_s=duration_s, loop=loop, face=obj.enliven.face_index,
                       mouth=mouth)
    shifted = {ch: [(frame + f, v) for f, v in channel_keys] for ch, channel_keys in keys.items()}
    last = max((k[-1][0] for k in shifted.values() if k), default=frame)
    if loop:
        _make_room_for_loop(obj, [ch for ch, channel_keys in keys.items() if channel_keys], frame)
    count = insert_keys(obj, shifted, replace=replace, loop=loop)
    if loop:
        cycle_curves(obj, [properties.data_path(ch) for ch, channel_keys in keys.items() if channel_keys])
    return count, int(last)


def _make_room_for_loop(obj: bpy.types.Object, channels: list[str], frame: int) -> None:
    """Clear the keys of `channels` from `frame` on (a loop runs on for ever from there); raises ValueError,
    changing nothing, when one has keys before `frame`, which the loop's Cycles modifier would repeat too."""
    curves = compat.fcurves_by_path(obj)
    loop_curves = [curves[path] for path in map(properties.data_path, channels) if path in curves]
    earlier = [fc for fc in loop_curves if any(point.co.x < frame - 1e-4 for point in fc.keyframe_points)]
    if earlier:
        names = ", ".join(fc.data_path.removeprefix("enliven.") for fc in earlier[:3])
        more = f" and {len(earlier) - 3} more channels" if len(earlier) > 3 else ""
        raise ValueError(f"Loop repeats all of a channel's keys, and {names}{more} "
                         f"{'has' if len(earlier) == 1 else 'have'} keys before frame {frame}: delete them, insert "
                         f"the loop earlier, or insert without Loop")
    for fc in loop_curves:
        _clear_range(fc, frame, float("inf"))


def cycle_curves(obj: bpy.types.Object, data_paths: list[str]) -> None:
    """Give each F-curve of `data_paths` one Cycles modifier (a curve that has
    one keeps it); the auto handles of its end keys then follow the cycle."""
    curves = compat.fcurves_by_path(obj)
    for data_path in data_paths:
        fc = curves[data_path]
        if not any(modifier.type == 'CYCLES' for modifier in fc.modifiers):
            fc.modifiers.new('CYCLES')
        fc.update()
    _tag(obj)


def bake_motion(obj: bpy.types.Object, motion: Motion, frame: int, scene_fps: float, *,
                replace: bool = True) -> tuple[int, int]:
    """Key every frame of `motion` on the rig, starting at scene frame `frame`.

    Motion frames are placed by time, so a 30 fps capture lands correctly in
    a 24 fps scene. Keys are linear: a bake reproduces the samples exactly.
    Returns (keys inserted, last frame).
    """
    times = np.arange(motion.frame_count, dtype=np.float64) / motion.fps
    frames = frame + np.round(times * scene_fps * 1000.0) / 1000.0
    keys = {
        name: list(zip(frames.tolist(), motion.values[:, column].astype(np.float64).tolist()))
        for column, name in enumerate(motion.channels)
    }
    return insert_keys(obj, keys, interpolation='LINEAR', replace=replace), int(np.ceil(frames[-1]))


def bake_channels(obj: bpy.types.Object, values: np.ndarray, channels: tuple[str, ...], fps: float,
                  frame: int, scene_fps: float, *, only: tuple[str, ...] | None = None,
                  relative_tolerance: float | None = None, blend_factor: float = 1.0) -> tuple[int, int, int]:
    """Key a job's motion ((frames, channels) at `fps`) on rig `obj` from scene frame `frame`.

    The motion is resampled to whole scene frames; `only` limits the channels
    keyed (the others keep their animation); with `relative_tolerance` keys a
    straight line already reproduces are left out (see shared/keyframes.py),
    else every frame is keyed. Existing keys of those channels inside the
    range are replaced; a `blend_factor` below 1 first mixes the new values
    with what the existing animation showed there. Keys are linear, so the
    curve passes through (or within the tolerance of) every sample.
    Returns (keys inserted, first frame, last frame).
    """
    on_grid = keyframes.resample(values, fps, scene_fps)
    columns = keyframes.select_channels(channels, only)
    if not columns:
        raise ValueError(f"the motion has none of the channels {', '.join(only or ())}")
    last = frame + on_grid.shape[0] - 1
    if blend_factor < 1.0:
        existing = sampling.sample(obj, np.arange(frame, last + 1))  # before any key is replaced
        for column in columns:
            on_grid[:, column] = keyframes.blend(existing[:, CHANNEL_INDEX[channels[column]]], on_grid[:, column],
                                                 blend_factor)
    keys = keyframes.keys_for(on_grid, channels, frame, columns=columns, relative_tolerance=relative_tolerance)
    return insert_keys(obj, keys, interpolation='LINEAR', replace=True), frame, last


def _tag(obj: bpy.types.Object) -> None:
    # Make the viewport, the Dope Sheet and the depsgraph notice the new keys.
    obj.update_tag(refresh={'TIME'})
    adt = obj.animation_data
    if adt is not None and adt.action is not None:
        adt.action.update_tag()


def preset_items() -> list[tuple[str, str, str]]:
    return [(name, name.replace("-", " ").title(), preset.description) for name, preset in PRESETS.items()]


def key_job_motion(job, event) -> str:
    """A bake job's motion arrived (bake_job.BakeJob): key it on the rig and add its sound strip.
    Returns what was done, for the job's message; raises UserError when nothing could be keyed."""
    obj, scene = bpy.data.objects.get(job.rig), bpy.data.scenes.get(job.scene)
    if obj is None or scene is None:
        raise UserError("the portrait or its scene was deleted meanwhile")
    settings = job.settings
    try:
        values, channels, fps = motion_of(event)
        job.keys, first, last = bake_channels(
            obj, values, channels, fps, settings.frame, sampling.scene_fps(scene), only=settings.only,
            relative_tolerance=settings.relative_tolerance, blend_factor=settings.blend_factor)
    except ValueError as error:
        raise UserError(f"the backend's motion cannot be keyed: {error}") from None
    job.frames = (first, last)
    job.warnings = [str(w) for w in event.fields.get("warnings", [])][:5]
    text = f"{job.title}: {job.keys} keys on frames {first}-{last}"
    sound = settings.sound_path or (event.fields.get("audio_path") if settings.sound_from_reply else None)
    if sound:
        text += _add_sound(job, scene, sound, last - first + 1)
    scene.frame_set(scene.frame_current)  # the channel sliders show the new keys
    return text


def _add_sound(job, scene: bpy.types.Scene, path: str, length: int) -> str:
    """Add the bake's sound strip; returns the text to append to the job's message."""
    if not compat.can_add_sound():
        job.warnings.append(f"This Blender has no audio support: add {path} to the sequencer yourself, "
                            f"at frame {job.settings.frame}")
        return ""
    try:
        strip = compat.add_sound_strip(scene, path, job.settings.frame, length)
    except RuntimeError as error:
        job.warnings.append(f"The sound strip could not be added ({error}); add {path} at frame "
                            f"{job.settings.frame} yourself")
        return ""
    job.strip = strip.name
    return f"; sound strip '{strip.name}' at frame {compat.strip_content_start(strip)}, channel {strip.channel}"
