"""Live Link Face import: an iPhone's ARKit capture (a CSV of 52 blend shapes and head rotation per
frame, with timecodes) turned into motion channels through the channel table's ARKit mapping, resampled
to an even frame rate. Pure parsing, no video; `enliven capture --livelink` and the service call it.
"""
from __future__ import annotations

import math
import re
from collections import Counter
from pathlib import Path

import numpy as np

from .errors import BadMotionError
from .shared.channels import CHANNEL_NAMES, CHANNELS, arkit_to_channels
from .shared.motion import (MAX_FRAMES, Motion, MotionError, checked_fps, csv_row_capacity, csv_rows,
                            frames_spanning, number_from_cell, quoted, read_text_file)


# Live Link Face names its 52 ARKit columns in PascalCase (EyeBlinkLeft);
# other exporters use Apple's camelCase (eyeBlinkLeft): match ignoring case.
_ARKIT_NAMES = {name.lower(): name for ch in CHANNELS for name, _ in ch.arkit}
# Digit counts bounded so that int() never sees a hostile numeral and the
# timecodes span at most 100 hours (which the frame limit then refuses).
_TIMECODE = re.compile(r"^\s*(\d{1,2}):(\d{1,2}):(\d{1,2})[:;.](\d{1,3})(?:\.\d{1,9})?\s*$")
_STANDARD_RATES = (23.976, 24.0, 25.0, 29.97, 30.0, 48.0, 50.0, 59.94, 60.0, 120.0)
DEFAULT_LIVELINK_FPS = 60.0
# Live Link Face writes shapes from 0 to 1 and rotations in radians. Larger
# numbers are brought to this before the ARKit mapping scales and adds them,
# so that 1e308 cannot overflow to infinity there (with a numpy warning); the
# channel's range then clamps it like any value past its limit.
_ARKIT_VALUE_LIMIT = 1e6


def load_livelink_csv(path: str | Path, fps: float | None = None) -> Motion:
    """A Motion from a Live Link Face CSV (Timecode, BlendShapeCount, 52 ARKit shapes, head and eye rotations).

    ARKit shapes map to channels through the channel table; head rotations
    (radians) become the pose channels. Channels ARKit cannot express
    (head_x, head_y) are left out. The frame rate comes from the timecodes
    (or `fps`); rows are resampled onto an even frame grid when the phone
    dropped frames. The file is bounded like a motion file (size, line
    length, number length, frames: enliven.shared.motion); every problem is
    a BadMotionError whose message starts with the path.
    """
    source = str(path)
    try:
        rate = checked_fps(fps) if fps else None  # 0 or None: from the timecodes
        return _livelink_motion(read_text_file(path, "Live Link Face CSV"), source, rate)
    except MotionError as error:
        raise BadMotionError(str(error)) from None


def _livelink_motion(text: str, source: str, fps: float | None) -> Motion:
    rows = csv_rows(text, source)
    first = next(rows, None)
    if first is None:
        raise BadMotionError(f"{source}: is empty; expected a Live Link Face CSV with a header row.")
    _, header = first
    lower_header = [name.lower() for name in header]
    shape_columns = {i: _ARKIT_NAMES[name] for i, name in enumerate(lower_header) if name in _ARKIT_NAMES}
    if not shape_columns:
        raise BadMotionError(f"{source}: has no ARKit blendshape columns (such as EyeBlinkLeft, JawOpen, "
                             "HeadYaw); is it a Live Link Face CSV?")
    # Counter, not a count per column: a hostile header may repeat a name thousands of times.
    repeated = sorted(name for name, times in Counter(shape_columns.values()).items() if times > 1)
    if repeated:
        raise BadMotionError(f"{source}: column {', '.join(repeated)} appears more than once.")
    time_column = lower_header.index("timecode") if "timecode" in lower_header else None

    # Only the shape columns are kept, so a wide header costs no memory;
    # float32 as the motion stores, values within _ARKIT_VALUE_LIMIT.
    table = np.empty((csv_row_capacity(text), len(shape_columns)), dtype=np.float32)
    timecodes: list[tuple[int, int, int, int]] = []
    frames = 0
    for line, row in rows:
        if len(row) < len(header):
            raise BadMotionError(f"{source}: line {line} has {len(row)} cells but the header has {len(header)}.")
        if frames == MAX_FRAMES:
            raise BadMotionError(f"{source}: more than {MAX_FRAMES} frames, too many for a motion.")
        for slot, column in enumerate(shape_columns):
            table[frames, slot] = _arkit_value(row[column], f"{source}: line {line}, column {header[column]}")
        if time_column is not None:
            match = _TIMECODE.match(row[time_column])
            if not match:
                raise BadMotionError(f"{source}: line {line}: timecode {quoted(row[time_column])} "
                                     "is not HH:MM:SS:FF.")
            # The digits after the frame number ("28.207") are a sub-frame reading of the phone's
            # clock; frames are whole numbers of the take's rate, so only the frame number counts.
            timecodes.append(tuple(int(field) for field in match.groups()))
        frames += 1
    if not frames:
        raise BadMotionError(f"{source}: has a header but no frames.")
    table = table[:frames]
    if not np.isfinite(table).all():
        raise BadMotionError(f"{source}: has empty or non-numeric blendshape values.")

    shapes = {name: table[:, slot] for slot, name in enumerate(shape_columns.values())}
    channels = arkit_to_channels(shapes)
    names = tuple(name for name in CHANNEL_NAMES if name in channels)
    values = np.stack([channels[name] for name in names], axis=1).astype(np.float64)

    if timecodes:
        rate = fps or _timecode_rate(timecodes)
        times = np.array([h * 3600 + m * 60 + s + f / rate for h, m, s, f in timecodes])
        times = np.where(times < times[0] - 43200, times + 86400, times)  # a take recorded across midnight
        values = _resample(values, times - times[0], rate, source)
    else:
        rate = fps or DEFAULT_LIVELINK_FPS
    return Motion(rate, names, values.astype(np.float32))


def _arkit_value(cell: str, where: str) -> float:
    """A cell's number (see number_from_cell), finite ones within _ARKIT_VALUE_LIMIT."""
    value = number_from_cell(cell, where)
    if math.isfinite(value) and abs(value) > _ARKIT_VALUE_LIMIT:
        return math.copysign(_ARKIT_VALUE_LIMIT, value)
    return value


def _timecode_rate(timecodes: list[tuple[int, int, int, int]]) -> float:
    """The timecode's frame rate, read from the frame field (which counts 0 .. rate-1 within a second).

    The last frame number before a second rolls over tells the rate; a take
    shorter than that shows no rollover, and is taken to be at Live Link
    Face's usual 60 fps unless its frame numbers prove a higher rate.
    """
    seconds = [h * 3600 + m * 60 + s for h, m, s, _ in timecodes]
    frames = [f for *_, f in timecodes]
    before_rollover = [frames[i] for i in range(len(frames) - 1) if seconds[i + 1] != seconds[i]]
    if before_rollover:
        return min(_STANDARD_RATES, key=lambda rate: abs(rate - (max(before_rollover) + 1)))
    return max(DEFAULT_LIVELINK_FPS, min(_STANDARD_RATES, key=lambda rate: abs(rate - (max(frames) + 1))))


def _resample(values: np.ndarray, times: np.ndarray, fps: float, source: str) -> np.ndarray:
    """Values on an even grid of 1/fps from time 0, by linear interpolation in time (rows out of
    order are sorted, repeated times keep their first row)."""
    if len(times) > 1 and np.any(np.diff(times) <= 0):
        order = np.argsort(times, kind="stable")
        times, values = times[order], values[order]
        keep = np.concatenate([[True], np.diff(times) > 0])
        times, values = times[keep], values[keep]
    try:
        count = frames_spanning(times[-1], fps)  # before the grid is made
    except MotionError as error:
        raise BadMotionError(f"{source}: timecodes too far apart: {error}.") from None
    grid = np.arange(count) / fps
    return np.stack([np.interp(grid, times, values[:, c]) for c in range(values.shape[1])], axis=1)
