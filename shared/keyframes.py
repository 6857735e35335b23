"""Motion -> keyframes: on which frames, for which channels, and how few keys.

A captured or lip-synced motion is one sample per frame. Baked as keys it
becomes editable animation; this module decides what those keys are, without
touching Blender (the add-on's keying.py inserts them), so it can be tested
anywhere:

* `resample` puts a motion on the scene's frame grid (a 30 fps capture in a
  24 fps scene gets one key per scene frame, placed by time);
* `reduce_keys` drops keys a straight line between its neighbours already
  reproduces within a tolerance: Ramer-Douglas-Peucker on each channel's
  sampled curve, measuring the error vertically (in the channel's units, at
  the sampled frames) because that is what the artist sees when the curve is
  evaluated, and frames and values have different units anyway. The keys are
  meant to be LINEAR, so the baked curve is within the tolerance of every
  sample;
* `select_channels` and `blend` serve lip-sync: only the mouth channels are
  keyed, replacing the existing animation or mixed with it.

Vendored into the Blender add-on: standard library + numpy only.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from .channels import CHANNEL_INDEX, CHANNELS

# The mouth channels lip-sync's sound drives (its curves, the learned model's outputs) ...
CURVE_CHANNELS = ("jaw_open", "pucker", "wide")
# ... and every channel lip-sync keys: those, and the rest of the mouth at rest. Everything else is left as
# the artist keyed it.
MOUTH_CHANNELS = CURVE_CHANNELS + ("lips_part",)

Keys = dict[str, list[tuple[float, float]]]  # channel -> [(frame, value in channel units)]


def resample(values: np.ndarray, fps: float, target_fps: float) -> np.ndarray:
    """(frames, channels) sampled at `fps` -> sampled at `target_fps`, covering the
    same time span (linear interpolation between samples)."""
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 2 or values.shape[0] == 0:
        raise ValueError(f"values must be (frames, channels) with at least one frame, got {values.shape}")
    if abs(fps - target_fps) < 1e-9 or values.shape[0] == 1:
        return values.copy()
    duration = (values.shape[0] - 1) / fps
    count = int(np.floor(duration * target_fps + 1e-6)) + 1
    source_times = np.arange(values.shape[0]) / fps
    target_times = np.arange(count) / target_fps
    return np.stack([np.interp(target_times, source_times, values[:, c]) for c in range(values.shape[1])], axis=1)


def reduce_keys(samples: Sequence[float] | np.ndarray, tolerance: float) -> np.ndarray:
    """Indices of the samples to keep as keys so that linear interpolation
    between kept samples is within `tolerance` of every sample
    (Ramer-Douglas-Peucker with vertical distance). The first and last sample
    are always kept; `tolerance` <= 0 keeps every sample that is not exactly
    on the line of its neighbours."""
    y = np.asarray(samples, dtype=np.float64).ravel()
    n = y.size
    if n <= 2:
        return np.arange(n)
    keep = np.zeros(n, dtype=bool)
    keep[0] = keep[-1] = True
    # An explicit stack instead of recursion: a long capture has thousands of frames.
    stack = [(0, n - 1)]
    while stack:
        first, last = stack.pop()
        if last - first < 2:
            continue
        inner = np.arange(first + 1, last)
        line = y[first] + (y[last] - y[first]) * (inner - first) / (last - first)
        errors = np.abs(y[inner] - line)
        worst = int(np.argmax(errors))
        if errors[worst] > tolerance:
            split = int(inner[worst])
            keep[split] = True
            stack.append((first, split))
            stack.append((split, last))
    return np.flatnonzero(keep)


def channel_tolerance(name: str, relative: float) -> float:
    """A tolerance in `name`'s own units from a fraction of its range, so one
    setting means the same for degrees of head turn and a 0..1 jaw."""
    channel = CHANNELS[CHANNEL_INDEX[name]]
    return float(relative) * (channel.maximum - channel.minimum)


def select_channels(channels: Sequence[str], wanted: Iterable[str] | None) -> list[int]:
    """Column indices of `channels` to key: those in `wanted` (all when None),
    in the motion's order. Names that are not channels of the table are left
    out (a newer backend may send channels this add-on does not know)."""
    wanted_set = None if wanted is None else set(wanted)
    return [i for i, name in enumerate(channels)
            if name in CHANNEL_INDEX and (wanted_set is None or name in wanted_set)]


def blend(existing: np.ndarray, new: np.ndarray, factor: float) -> np.ndarray:
    """Mix `new` into `existing` animation: 0 keeps the existing values, 1 replaces them."""
    factor = float(np.clip(factor, 0.0, 1.0))
    return (1.0 - factor) * np.asarray(existing, dtype=np.float64) + factor * np.asarray(new, dtype=np.float64)


def keys_for(values: np.ndarray, channels: Sequence[str], start_frame: float, *,
             columns: Sequence[int] | None = None, relative_tolerance: float | None = None) -> Keys:
    """Keys for `values` ((frames, channels) already on the scene's frame grid)
    starting at `start_frame`: one per frame, or, with `relative_tolerance`,
    only those `reduce_keys` keeps (tolerance as a fraction of each channel's
    range, see `channel_tolerance`)."""
    values = np.asarray(values, dtype=np.float64)
    frames = start_frame + np.arange(values.shape[0], dtype=np.float64)
    keys: Keys = {}
    for column in (range(len(channels)) if columns is None else columns):
        name = channels[column]
        samples = values[:, column]
        if relative_tolerance is None:
            kept = np.arange(samples.size)
        else:
            kept = reduce_keys(samples, channel_tolerance(name, relative_tolerance))
        keys[name] = list(zip(frames[kept].tolist(), samples[kept].tolist()))
    return keys
