"""Motion: channel values over time, and the .json / .csv files that hold them.

JSON layout (values rounded to 6 decimals; non-finite values are null because
strict JSON has no NaN):

    {"format": "enliven-motion", "version": 1, "fps": 24.0,
     "channels": ["jaw_open", ...],
     "frames": [[0.1, ...], ...]}

CSV layout: a header "frame,time,<channel>,...", then one row per frame with
the 0-based frame index, the time in seconds and the values (6 decimals, an
empty cell for a non-finite value). When reading, "frame" and "time" are
optional and an empty cell or "nan" means NaN.
"""
from __future__ import annotations

import csv
import json
import math
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .channels import CHANNEL_INDEX, CHANNEL_NAMES, channel, default_vector, unknown_name_message

FORMAT_TAG = "enliven-motion"
FORMAT_VERSION = 1
SUPPORTED_VERSIONS = (1,)
MAX_FPS = 1000.0
# Used when a CSV file has neither a time column nor an fps from the caller.
DEFAULT_CSV_FPS = 24.0
# How many frame numbers a warning lists before it says "...".
_LISTED_FRAMES = 5


class MotionError(ValueError):
    """A motion file or array that cannot be used; message says where and why."""


@dataclass(eq=False)  # eq=False: comparing numpy arrays with == is ambiguous
class Motion:
    fps: float
    channels: tuple[str, ...]  # a subset of CHANNEL_NAMES, in any order
    values: np.ndarray  # float32, shape (frames, len(channels))

    def __post_init__(self) -> None:
        try:
            self.fps = float(self.fps)
        except (TypeError, ValueError):
            raise MotionError(f"fps must be a number, got {self.fps!r}") from None
        if not (math.isfinite(self.fps) and 0 < self.fps <= MAX_FPS):
            raise MotionError(f"fps must be above 0 and at most {MAX_FPS:g}, got {self.fps:g}")

        self.channels = tuple(self.channels)
        for name in self.channels:
            if name not in CHANNEL_INDEX:
                raise MotionError(unknown_name_message("channel", str(name), CHANNEL_NAMES))
        repeated = sorted({name for name in self.channels if self.channels.count(name) > 1})
        if repeated:
            raise MotionError(f"channel {', '.join(repeated)} listed more than once")

        try:
            # A copy, so that later changes to the caller's array cannot reach us.
            self.values = np.array(self.values, dtype=np.float32)
        except (TypeError, ValueError) as error:
            raise MotionError(f"motion values are not a numeric array: {error}") from None
        if self.values.ndim != 2 or self.values.shape[1] != len(self.channels):
            raise MotionError(
                f"motion values must have shape (frames, {len(self.channels)}) for "
                f"{len(self.channels)} channels, got {self.values.shape}"
            )
        if self.frame_count < 1:
            raise MotionError("a motion needs at least one frame")

    @property
    def frame_count(self) -> int:
        return self.values.shape[0]

    def full(self) -> np.ndarray:
        """All channels in table order, shape (frames, len(CHANNELS)); channels
        this motion does not have stay at their defaults."""
        result = np.tile(default_vector(), (self.frame_count, 1))
        result[:, [CHANNEL_INDEX[name] for name in self.channels]] = self.values
        return result

    @classmethod
    def from_full(cls, values: np.ndarray, fps: float) -> Motion:
        """A motion with every channel, `values` in table order."""
        return cls(fps, CHANNEL_NAMES, values)

    def sanitized(self, strict: bool = False) -> tuple[Motion, list[str]]:
        """Replace non-finite values by the channel's default and clamp values
        into the channel's range.

        Returns the fixed motion and one warning per fix, such as
        "jaw_open: 3 frames above 1 (max 1.7), clamped". With strict=True,
        raises MotionError listing the problems instead, if there are any.
        """
        values = self.values.copy()
        problems: list[str] = []
        warnings: list[str] = []
        for column, name in enumerate(self.channels):
            ch = channel(name)
            series = values[:, column]  # a view: fixes below land in `values`

            not_finite = np.flatnonzero(~np.isfinite(series))
            if not_finite.size:
                problem = (
                    f"{name}: {_count(not_finite.size, 'non-finite value')} "
                    f"({_frame_list(not_finite)})"
                )
                problems.append(problem)
                warnings.append(f"{problem}, set to default {ch.default:g}")
                series[not_finite] = ch.default

            for outside, word, limit, label, extreme in (
                (series > ch.maximum, "above", ch.maximum, "max", series.max()),
                (series < ch.minimum, "below", ch.minimum, "min", series.min()),
            ):
                if outside.any():
                    problem = (
                        f"{name}: {_count(int(outside.sum()), 'frame')} {word} {limit:g} "
                        f"({label} {extreme:g})"
                    )
                    problems.append(problem)
                    warnings.append(f"{problem}, clamped")
            np.clip(series, ch.minimum, ch.maximum, out=series)

        if strict and problems:
            raise MotionError("motion has values that cannot be used as they are: " + "; ".join(problems))
        return Motion(self.fps, self.channels, values), warnings


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _frame_list(frames: np.ndarray) -> str:
    shown = ", ".join(str(f) for f in frames[:_LISTED_FRAMES])
    more = ", ..." if frames.size > _LISTED_FRAMES else ""
    return f"frame {shown}" if frames.size == 1 else f"frames {shown}{more}"


# ---------------------------------------------------------------- files


def load_motion(path: str | os.PathLike[str], fps: float | None = None) -> Motion:
    """Read a .json or .csv motion file (the extension decides, any case).

    `fps`, when given, overrides the frame rate stored in or inferred from the
    file. Every problem, including an unreadable file, is a MotionError whose
    message starts with the path.
    """
    source = str(path)
    suffix = Path(path).suffix.lower()
    if suffix not in (".json", ".csv"):
        raise MotionError(f"{source}: unknown motion file type {suffix!r}; use .json or .csv")
    try:
        # utf-8-sig: spreadsheet programs often start CSV files with a BOM.
        text = Path(path).read_text(encoding="utf-8-sig")
    except OSError as error:
        raise MotionError(f"{source}: cannot read motion file: {error.strerror or error}") from None
    except UnicodeDecodeError as error:
        raise MotionError(
            f"{source}: not a UTF-8 text file ({error.reason} at byte {error.start})"
        ) from None

    if suffix == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as error:
            raise MotionError(
                f"{source}: not valid JSON (line {error.lineno}, column {error.colno}: {error.msg})"
            ) from None
        motion = motion_from_dict(data, source)
        return motion if fps is None else _checked_motion(source, fps, motion.channels, motion.values)
    return _motion_from_csv(text, source, fps)


def save_motion(motion: Motion, path: str | os.PathLike[str]) -> None:
    """Write `motion` as .json or .csv (the extension decides, any case).

    The file is replaced atomically: readers see the old file or the new one,
    never a half-written one. Raises MotionError for an unknown extension and
    OSError when the file cannot be written.
    """
    target = Path(path)
    suffix = target.suffix.lower()
    if suffix == ".json":
        text = _motion_to_json_text(motion)
    elif suffix == ".csv":
        text = _motion_to_csv_text(motion)
    else:
        raise MotionError(f"{path}: unknown motion file type {suffix!r}; use .json or .csv")
    _write_atomically(target, text)


def _write_atomically(target: Path, text: str) -> None:
    # The temporary file sits in the target's directory so that os.replace is
    # a rename within one file system, which is atomic.
    temporary = target.with_name(f".{target.name}.{secrets.token_hex(4)}.tmp")
    try:
        # "x" never overwrites an existing file; newline="" writes "\n" as is.
        with open(temporary, "x", encoding="utf-8", newline="") as file:
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, target)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def _checked_motion(source: str, fps: float, names: tuple[str, ...], values: np.ndarray) -> Motion:
    """Build a Motion, prefixing any validation error with the file it came from."""
    try:
        return Motion(fps, names, values)
    except MotionError as error:
        raise MotionError(f"{source}: {error}") from None


def _rounded(values: np.ndarray) -> np.ndarray:
    # Values are stored with 6 decimals, well below what a face can show.
    # Adding 0.0 turns -0.0 into 0.0 so files do not show "-0".
    return np.round(values.astype(np.float64), 6) + 0.0


# ---------------------------------------------------------------- JSON


def motion_to_dict(motion: Motion) -> dict[str, Any]:
    """The JSON-ready form of `motion`; non-finite values become None (null)."""
    rounded = _rounded(motion.values)
    frames = [
        [value if math.isfinite(value) else None for value in row] for row in rounded.tolist()
    ]
    return {
        "format": FORMAT_TAG,
        "version": FORMAT_VERSION,
        "fps": motion.fps,
        "channels": list(motion.channels),
        "frames": frames,
    }


def motion_from_dict(data: Any, source: str = "<dict>") -> Motion:
    """Check and convert the JSON form back to a Motion; null values become NaN
    (see Motion.sanitized). Problems are MotionErrors that start with `source`."""
    if not isinstance(data, dict):
        raise MotionError(f"{source}: expected a JSON object, got {_json_type(data)}")
    if data.get("format") != FORMAT_TAG:
        found = f"{data['format']!r}" if "format" in data else "no format"
        raise MotionError(
            f"{source}: not an Enliven motion file (expected \"format\": {FORMAT_TAG!r}, found {found})"
        )
    supported = ", ".join(str(v) for v in SUPPORTED_VERSIONS)
    version = data.get("version")
    if not _is_json_int(version):
        raise MotionError(f"{source}: \"version\" must be a whole number (supported: {supported})")
    if version not in SUPPORTED_VERSIONS:
        newer = " is newer than this Enliven can read" if version > max(SUPPORTED_VERSIONS) else " is unknown"
        raise MotionError(
            f"{source}: motion format version {version}{newer} (supported versions: {supported})"
        )
    missing = [key for key in ("fps", "channels", "frames") if key not in data]
    if missing:
        raise MotionError(f"{source}: missing {', '.join(repr(k) for k in missing)}")

    fps, names, frames = data["fps"], data["channels"], data["frames"]
    if not _is_json_number(fps):
        raise MotionError(f"{source}: \"fps\" must be a number, got {_json_type(fps)}")
    if not (isinstance(names, list) and all(isinstance(n, str) for n in names)):
        raise MotionError(f"{source}: \"channels\" must be a list of channel names")
    if not isinstance(frames, list):
        raise MotionError(f"{source}: \"frames\" must be a list of rows, got {_json_type(frames)}")

    values = np.empty((len(frames), len(names)), dtype=np.float32)
    for frame, row in enumerate(frames):
        if not isinstance(row, list):
            raise MotionError(f"{source}: frame {frame}: expected a list of values, got {_json_type(row)}")
        if len(row) != len(names):
            raise MotionError(
                f"{source}: frame {frame} has {len(row)} values but there are {len(names)} channels"
            )
        for column, value in enumerate(row):
            if value is None:
                values[frame, column] = np.nan
            elif _is_json_number(value):
                values[frame, column] = value
            else:
                raise MotionError(
                    f"{source}: frame {frame}, column {column} ({names[column]}): "
                    f"expected a number or null, got {value!r}"
                )
    return _checked_motion(source, fps, tuple(names), values)


def _motion_to_json_text(motion: Motion) -> str:
    # One frame per line: readable, and diffs stay small.
    data = motion_to_dict(motion)
    frames = data.pop("frames")
    header = ", ".join(f"{json.dumps(key)}: {json.dumps(value)}" for key, value in data.items())
    rows = ",\n    ".join(json.dumps(row) for row in frames)
    return f'{{{header},\n "frames": [\n    {rows}\n]}}\n'


def _is_json_number(value: Any) -> bool:
    # bool is a subclass of int in Python but true/false are not numbers in JSON.
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_json_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _json_type(value: Any) -> str:
    names = {dict: "an object", list: "a list", str: "a string", bool: "true/false", type(None): "null"}
    return names.get(type(value), "a number")


# ---------------------------------------------------------------- CSV

_FRAME_COLUMN = "frame"
_TIME_COLUMN = "time"


def _motion_to_csv_text(motion: Motion) -> str:
    lines = [",".join((_FRAME_COLUMN, _TIME_COLUMN, *motion.channels))]
    for frame, row in enumerate(_rounded(motion.values).tolist()):
        cells = [str(frame), f"{frame / motion.fps:.6f}"]
        cells += [_format_number(value) if math.isfinite(value) else "" for value in row]
        lines.append(",".join(cells))
    return "\n".join(lines) + "\n"


def _format_number(value: float) -> str:
    """`value` with at most 6 decimals and no trailing zeros: 0.5, 1, -12.25."""
    return f"{value:.6f}".rstrip("0").rstrip(".")


def _motion_from_csv(text: str, source: str, fps: float | None) -> Motion:
    # Keep the file's line numbers for messages while skipping blank lines.
    rows = [
        (line, [cell.strip() for cell in row])
        for line, row in enumerate(csv.reader(text.splitlines()), start=1)
        if any(cell.strip() for cell in row)
    ]
    if not rows:
        raise MotionError(f"{source}: empty CSV file; expected a header such as 'frame,time,jaw_open'")
    (_, header), data_rows = rows[0], rows[1:]
    for column, name in enumerate(header, start=1):
        if not name:
            raise MotionError(f"{source}: column {column} of the header has no name")
        if header.count(name) > 1:
            raise MotionError(f"{source}: column {name!r} appears more than once")
    if not data_rows:
        raise MotionError(f"{source}: no frames after the header")

    table = np.empty((len(data_rows), len(header)), dtype=np.float64)
    for row_index, (line, cells) in enumerate(data_rows):
        if len(cells) != len(header):
            raise MotionError(
                f"{source}: line {line} has {len(cells)} cells but the header has {len(header)} columns"
            )
        for column, (name, cell) in enumerate(zip(header, cells)):
            table[row_index, column] = _parse_cell(cell, f"{source}: line {line}, column {name!r}")

    if fps is None and _TIME_COLUMN in header:
        fps = _fps_from_times(table[:, header.index(_TIME_COLUMN)], source)
    elif fps is None:
        fps = DEFAULT_CSV_FPS
    # The frame column is informative only: row order is frame order.
    channel_columns = [i for i, name in enumerate(header) if name not in (_FRAME_COLUMN, _TIME_COLUMN)]
    names = tuple(header[i] for i in channel_columns)
    return _checked_motion(source, fps, names, table[:, channel_columns])


def _parse_cell(cell: str, where: str) -> float:
    if cell == "" or cell.lower() == "nan":
        return math.nan
    try:
        return float(cell)
    except ValueError:
        raise MotionError(f"{where}: {cell!r} is not a number") from None


def _fps_from_times(times: np.ndarray, source: str) -> float:
    if times.size < 2:
        return DEFAULT_CSV_FPS
    steps = np.diff(times)
    if not (np.all(np.isfinite(times)) and np.all(steps > 0)):
        raise MotionError(
            f"{source}: cannot work out the frame rate: the time column must increase "
            "from row to row (or give the fps explicitly)"
        )
    # The mean step over the whole file rather than the median step: each time
    # is rounded to 6 decimals, which would shift 1 / step by up to ~0.001 fps
    # at 30 fps, while over the whole span that rounding averages out.
    mean_step = (times[-1] - times[0]) / (times.size - 1)
    return round(1.0 / float(mean_step), 3)
