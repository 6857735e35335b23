"""Motion: channel values over time, and the .json / .csv files that hold them.

JSON layout (values rounded to 6 decimals; non-finite values are null because
strict JSON has no NaN):

    {"format": "enliven-motion", "version": 1, "fps": 24.0,
     "channels": ["jaw_open", ...],
     "frames": [[0.1, ...], ...]}

A photo with several faces has one such motion per face in one file (format
version 2, "faces"): see face_motion.py. Version 1 files are one face's motion.

CSV layout: a header "frame,time,<channel>,...", then one row per frame with
the 0-based frame index, the time in seconds and the values (6 decimals, an
empty cell for a non-finite value). When reading, "frame" and "time" are
optional and an empty cell or "nan" means NaN.

Values when reading: every number is finite, however large (1e308, or 1e999
which float() would turn into infinity), and is later clamped into its
channel's range like any out-of-range value. "No value" (JSON null, NaN or
Infinity; in CSV an empty cell, nan or inf) is non-finite and later becomes
the channel's default, which is also what a non-finite value written out
reads back as. Motion.sanitized does both, with a warning, or refuses them.

Files are read whole, so hostile ones are bounded before and while parsing:
MAX_FILE_BYTES, MAX_FRAMES, MAX_JSON_DEPTH (checked by a scan before
json.loads, which would otherwise recurse into RecursionError),
MAX_NUMBER_CHARS (Python refuses int() of over 4300 digits with a
ValueError) and MAX_CSV_LINE_CHARS. Breaking one is a MotionError like any
other bad file. read_text_file, csv_rows and number_from_cell apply these
bounds for other motion sources too (the Live Link Face CSV reader in
enliven.capture), and presets keep to MAX_FRAMES and MAX_FPS.
"""
from __future__ import annotations

import csv
import io
import json
import math
import os
import re
import secrets
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .channels import CHANNEL_INDEX, CHANNEL_NAMES, channel, default_vector, unknown_name_message

FORMAT_TAG = "enliven-motion"
FORMAT_VERSION = 1
SUPPORTED_VERSIONS = (1,)
FACES_VERSION = 2  # a motion per face of a group photo, under "faces" (enliven.shared.face_motion)
MAX_FPS = 1000.0
# Used when a CSV file has neither a time column nor an fps from the caller.
DEFAULT_CSV_FPS = 24.0
# How many frame numbers a warning lists before it says "...".
_LISTED_FRAMES = 5

# Bounds on what a file may hold. A motion file needs 3 levels of nesting and
# numbers of about 10 characters; an hour of every channel at 60 fps is about
# 40 MB and 216,000 frames.
MAX_FILE_BYTES = 64 * 1024 * 1024
MAX_FRAMES = 500_000
MAX_JSON_DEPTH = 32
MAX_NUMBER_CHARS = 100
# Enough for every column with MAX_NUMBER_CHARS-long numbers; it also keeps one
# hostile line from becoming millions of cells in memory.
MAX_CSV_LINE_CHARS = 4096
# Values are stored as float32: finite values beyond its range would become
# infinity in the cast, so they are first brought to its largest value.
_FLOAT32_MAX = float(np.finfo(np.float32).max)
# How much of an offending text a message quotes.
_QUOTED_CHARS = 40


class MotionError(ValueError):
    """A motion file or array that cannot be used; message says where and why."""


@dataclass(eq=False)  # eq=False: comparing numpy arrays with == is ambiguous
class Motion:
    fps: float
    channels: tuple[str, ...]  # a subset of CHANNEL_NAMES, in any order
    values: np.ndarray  # float32, shape (frames, len(channels))

    def __post_init__(self) -> None:
        self.fps = checked_fps(self.fps)

        self.channels = tuple(self.channels)
        check_channel_names(self.channels)

        try:
            # A copy, so that later changes to the caller's array cannot reach us.
            values = np.array(self.values, dtype=np.float64)
        except (TypeError, ValueError, OverflowError) as error:
            raise MotionError(f"motion values are not a numeric array: {error}") from None
        finite = np.isfinite(values)
        # Without this 1e308 would become inf in float32, and so the channel's
        # default instead of being clamped like 1e30 (and numpy would warn).
        values[finite] = np.clip(values[finite], -_FLOAT32_MAX, _FLOAT32_MAX)
        self.values = values.astype(np.float32)
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
                    # (values are held within float32's range when read: 1e308 in the file is 3.4e38 here)
                    size = f"{'at least ' if abs(extreme) >= _FLOAT32_MAX else ''}{extreme:g}"
                    problem = f"{name}: {_count(int(outside.sum()), 'frame')} {word} {limit:g} ({label} {size})"
                    problems.append(problem)
                    warnings.append(f"{problem}, clamped")
            np.clip(series, ch.minimum, ch.maximum, out=series)

        if strict and problems:
            raise MotionError("motion has values that cannot be used as they are: " + "; ".join(problems))
        return Motion(self.fps, self.channels, values), warnings


def checked_fps(fps: Any) -> float:
    """`fps` as a float, or MotionError unless it is above 0 and at most MAX_FPS."""
    try:
        value = float(fps)
    except (TypeError, ValueError, OverflowError):
        raise MotionError(f"fps must be a number, got {quoted(fps)}") from None
    if not (math.isfinite(value) and 0 < value <= MAX_FPS):
        raise MotionError(f"fps must be above 0 and at most {MAX_FPS:g}, got {value:g}")
    return value


def frames_spanning(seconds: float, fps: float) -> int:
    """How many frames a motion from time 0 to `seconds` has at `fps`, both
    ends included (2 s at 24 fps: 49); MotionError when that is more than
    MAX_FRAMES, before anything that size is made."""
    span = seconds * fps  # may be inf (1e308 s), which the comparison refuses
    if not span < MAX_FRAMES or round(span) + 1 > MAX_FRAMES:
        raise MotionError(
            f"{seconds:g} s at {fps:g} fps is more than the {MAX_FRAMES} frames a motion may have "
            f"(at most {(MAX_FRAMES - 1) / fps:g} s at that rate)"
        )
    return round(span) + 1


def check_channel_names(names: tuple[str, ...]) -> None:
    """Raise MotionError unless `names` are channels, each named once."""
    for name in names:
        if name not in CHANNEL_INDEX:
            raise MotionError(unknown_name_message("channel", str(name), CHANNEL_NAMES))
    # Counter, not names.count(name) per name: a hostile file may list a
    # channel a million times, and counting each would take hours.
    repeated = sorted(name for name, times in Counter(names).items() if times > 1)
    if repeated:
        raise MotionError(f"channel {', '.join(repeated)} listed more than once")


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
    return motion_from_text(read_text_file(path), suffix[1:], source, fps)


def read_text_file(path: str | os.PathLike[str], kind: str = "motion file") -> str:
    """The UTF-8 text of the file at `path`, at most MAX_FILE_BYTES; any
    problem is a MotionError that starts with the path and names the `kind`
    of file expected."""
    source = str(path)
    try:
        with open(path, "rb") as file:
            # One byte over the limit is enough to know the file is too big,
            # and a FIFO or device cannot feed us forever.
            data = file.read(MAX_FILE_BYTES + 1)
    except OSError as error:
        raise MotionError(f"{source}: cannot read {kind}: {error.strerror or error}") from None
    if len(data) > MAX_FILE_BYTES:
        raise MotionError(f"{source}: larger than the {MAX_FILE_BYTES // 2**20} MiB a {kind} may have")
    try:
        # utf-8-sig: spreadsheet programs often start CSV files with a BOM.
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise MotionError(
            f"{source}: not a UTF-8 text file ({error.reason} at byte {error.start})"
        ) from None


def motion_from_text(text: str, kind: str, source: str = "<text>", fps: float | None = None) -> Motion:
    """Parse the text of a "json" or "csv" motion file (see load_motion).

    Every problem is a MotionError that starts with `source`.
    """
    if kind == "json":
        motion = motion_from_dict(parse_motion_json(text, source), source)
        return motion if fps is None else _checked_motion(source, fps, motion.channels, motion.values)
    if kind == "csv":
        return _motion_from_csv(text, source, fps)
    raise ValueError(f"kind must be 'json' or 'csv', got {kind!r}")


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
    write_atomically(target, text)


def write_atomically(target: Path, text: str) -> None:
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

# Backslash escapes, then (with those gone) whole strings: what is left is the
# JSON outside strings. Each pattern matches without backtracking, so the scan
# takes linear time on any text, however hostile.
_JSON_ESCAPE = re.compile(r"\\.", re.DOTALL)
_JSON_STRING = re.compile(r'"[^"]*"')
_NOT_A_BRACKET = re.compile(r"[^\[\]{}]+")
_DEPTH_CHUNK = 1 << 20


class _NumberTooLong(ValueError):
    pass


def json_nesting_depth(text: str, limit: int = MAX_JSON_DEPTH) -> int:
    """How deeply [ and { nest in the JSON `text`, ignoring strings; counting
    stops once it is past `limit`. Exact for valid JSON; for broken JSON it
    may be off, which json.loads then reports anyway."""
    outside_strings = _JSON_STRING.sub("", _JSON_ESCAPE.sub("", text))
    brackets = np.frombuffer(_NOT_A_BRACKET.sub("", outside_strings).encode("ascii"), np.uint8)
    depth = deepest = 0
    for start in range(0, brackets.size, _DEPTH_CHUNK):
        chunk = brackets[start:start + _DEPTH_CHUNK]
        opens = (chunk == ord("[")) | (chunk == ord("{"))
        running = depth + np.cumsum(opens.astype(np.int64) * 2 - 1)
        deepest = max(deepest, int(running.max()))
        depth = int(running[-1])
        if deepest > limit:
            break
    return deepest


def _json_int(text: str) -> int:
    if len(text) > MAX_NUMBER_CHARS:
        raise _NumberTooLong(_long_number_message(text))
    return int(text)


def _json_float(text: str) -> float:
    if len(text) > MAX_NUMBER_CHARS:
        raise _NumberTooLong(_long_number_message(text))
    # A JSON number is always finite, even one too large for a float.
    return _saturated(float(text))


def parse_motion_json(text: str, source: str) -> Any:
    depth = json_nesting_depth(text)
    if depth > MAX_JSON_DEPTH:
        raise MotionError(
            f"{source}: JSON nested more than {MAX_JSON_DEPTH} levels deep; a motion file needs 3"
        )
    try:
        return json.loads(text, parse_int=_json_int, parse_float=_json_float)
    except json.JSONDecodeError as error:
        raise MotionError(
            f"{source}: not valid JSON (line {error.lineno}, column {error.colno}: {error.msg})"
        ) from None
    except _NumberTooLong as error:
        raise MotionError(f"{source}: {error}") from None
    except RecursionError:  # should the depth scan ever miss a case
        raise MotionError(f"{source}: JSON nested too deeply") from None


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
        found = quoted(data["format"]) if "format" in data else "no format"
        raise MotionError(
            f"{source}: not an Enliven motion file (expected \"format\": {FORMAT_TAG!r}, found {found})"
        )
    if "faces" in data:
        raise MotionError(f"{source}: holds a motion for each of several faces (see enliven.shared.face_motion); "
                          "one face's motion was expected here")
    supported = ", ".join(str(v) for v in SUPPORTED_VERSIONS)
    version = data.get("version")
    if not _is_json_int(version):
        raise MotionError(f"{source}: \"version\" must be a whole number (supported: {supported} for one face's "
                          f"motion, {FACES_VERSION} for a motion per face)")
    if version == FACES_VERSION:
        raise MotionError(f"{source}: motion format version {version} holds a motion for each face under "
                          "\"faces\", and this file has none")
    if version not in SUPPORTED_VERSIONS:
        newer = " is newer than this Enliven can read" if version > max(SUPPORTED_VERSIONS) else " is unknown"
        raise MotionError(
            f"{source}: motion format version {version}{newer} (supported versions: {supported} for one face's "
            f"motion, {FACES_VERSION} for a motion per face)"
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
    if len(frames) > MAX_FRAMES:
        raise MotionError(f"{source}: {len(frames)} frames; a motion file may have at most {MAX_FRAMES}")
    # Before the array is made: its width is the number of names.
    try:
        check_channel_names(tuple(names))
    except MotionError as error:
        raise MotionError(f"{source}: {error}") from None

    # float64 here; Motion brings values beyond float32's range to its limit.
    values = np.empty((len(frames), len(names)), dtype=np.float64)
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
                values[frame, column] = _as_float(value)
            else:
                raise MotionError(
                    f"{source}: frame {frame}, column {column} ({names[column]}): "
                    f"expected a number or null, got {quoted(value)}"
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


def _as_float(number: int | float) -> float:
    """`number` as a float; an int too large for one (only a dict built in
    code can hold one: files are limited to MAX_NUMBER_CHARS) saturates."""
    try:
        return float(number)
    except OverflowError:
        return sys.float_info.max if number > 0 else -sys.float_info.max


def _saturated(value: float) -> float:
    """A float that overflowed to infinity while parsing a finite numeral, as
    the largest finite float of its sign; other values unchanged."""
    return math.copysign(sys.float_info.max, value) if math.isinf(value) else value


def _long_number_message(text: str) -> str:
    return (f"a number {len(text)} characters long ({text[:20]}...); "
            f"numbers may have at most {MAX_NUMBER_CHARS} characters")


def quoted(value: Any) -> str:
    """repr(value), cut short: a message stays one readable line even when a
    hostile file puts megabytes where a name or number should be."""
    text = repr(value)
    return text if len(text) <= _QUOTED_CHARS else f"{text[:_QUOTED_CHARS]}... ({len(text)} characters)"


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
    header: list[str] | None = None
    table = np.empty((0, 0))
    frames = 0
    for line, cells in csv_rows(text, source):
        if header is None:
            header = cells
            _check_csv_header(header, source)
            table = np.empty((csv_row_capacity(text), len(header)), dtype=np.float64)
            continue
        if len(cells) != len(header):
            raise MotionError(
                f"{source}: line {line} has {len(cells)} cells but the header has {len(header)} columns"
            )
        if frames == MAX_FRAMES:
            raise MotionError(f"{source}: more than {MAX_FRAMES} frames, too many for a motion file")
        for column, (name, cell) in enumerate(zip(header, cells)):
            table[frames, column] = number_from_cell(cell, f"{source}: line {line}, column {name!r}")
        frames += 1
    if header is None:
        raise MotionError(f"{source}: empty CSV file; expected a header such as 'frame,time,jaw_open'")
    if not frames:
        raise MotionError(f"{source}: no frames after the header")
    table = table[:frames]

    if fps is None and _TIME_COLUMN in header:
        fps = _fps_from_times(table[:, header.index(_TIME_COLUMN)], source)
    elif fps is None:
        fps = DEFAULT_CSV_FPS
    # The frame column is informative only: row order is frame order.
    channel_columns = [i for i, name in enumerate(header) if name not in (_FRAME_COLUMN, _TIME_COLUMN)]
    names = tuple(header[i] for i in channel_columns)
    return _checked_motion(source, fps, names, table[:, channel_columns])


def csv_rows(text: str, source: str) -> Iterator[tuple[int, list[str]]]:
    """(line number, cells without surrounding spaces) for each row of CSV
    `text` that is not blank. A line over MAX_CSV_LINE_CHARS, or text the csv
    module cannot parse (such as a quoted cell running past its field limit
    over many lines), is a MotionError that starts with `source`."""
    reader = csv.reader(_csv_lines(text, source))
    try:
        for cells in reader:
            cells = [cell.strip() for cell in cells]
            if any(cells):  # blank lines are skipped; line numbers stay the file's
                yield reader.line_num, cells
    except csv.Error as error:
        raise MotionError(f"{source}: line {reader.line_num} is not valid CSV: {error}") from None


def csv_row_capacity(text: str) -> int:
    """How many rows a table for CSV `text` needs at most: every line may be
    a row (at least as many as csv.reader sees), up to MAX_FRAMES."""
    return min(text.count("\n") + text.count("\r") + 1, MAX_FRAMES)


def _csv_lines(text: str, source: str) -> Iterator[str]:
    """The lines of `text` for csv.reader, refusing any over MAX_CSV_LINE_CHARS."""
    # newline="": lines keep their "\r\n" or "\r", which csv.reader expects.
    for number, line in enumerate(io.StringIO(text, newline=""), start=1):
        length = len(line.rstrip("\r\n"))
        if length > MAX_CSV_LINE_CHARS:
            raise MotionError(
                f"{source}: line {number} is {length} characters long; "
                f"a CSV line may have at most {MAX_CSV_LINE_CHARS}"
            )
        yield line


def _is_number_text(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _check_csv_header(header: list[str], source: str) -> None:
    seen: set[str] = set()
    for column, name in enumerate(header, start=1):
        if not name:
            raise MotionError(f"{source}: column {column} of the header has no name")
        if _is_number_text(name):  # (a file of values only was "column '0' appears more than once")
            raise MotionError(f"{source}: the first line must name the columns (such as frame,jaw_open,blink_l); "
                              f"it holds the number {quoted(name)}")
        if name in seen:
            raise MotionError(f"{source}: column {quoted(name)} appears more than once")
        seen.add(name)
    # Before any row is read: the header decides how wide the table is.
    try:
        check_channel_names(tuple(n for n in header if n not in (_FRAME_COLUMN, _TIME_COLUMN)))
    except MotionError as error:
        raise MotionError(f"{source}: {error}") from None


_NON_FINITE_WORDS = ("inf", "infinity", "nan")


def number_from_cell(cell: str, where: str) -> float:
    """A CSV cell's number: NaN for an empty cell, nan or inf (any case and
    sign) as written, any numeral as a finite float."""
    if cell == "":
        return math.nan
    if len(cell) > MAX_NUMBER_CHARS:
        raise MotionError(f"{where}: {_long_number_message(cell)}")
    try:
        value = float(cell)
    except ValueError:
        raise MotionError(f"{where}: {quoted(cell)} is not a number") from None
    if cell.lstrip("+-").lower() in _NON_FINITE_WORDS:
        return value
    return _saturated(value)  # "1e999" is a (large) number, not infinity


def _fps_from_times(times: np.ndarray, source: str) -> float:
    if times.size < 2:
        return DEFAULT_CSV_FPS
    # Times near the float limit overflow in the differences; those files are
    # refused below (or by the fps check) without a numpy warning.
    with np.errstate(over="ignore", invalid="ignore"):
        steps = np.diff(times)
        # The mean step over the whole file rather than the median step: each time
        # is rounded to 6 decimals, which would shift 1 / step by up to ~0.001 fps
        # at 30 fps, while over the whole span that rounding averages out.
        mean_step = float((times[-1] - times[0]) / (times.size - 1))
    if not (np.all(np.isfinite(times)) and np.all(steps > 0) and math.isfinite(mean_step) and mean_step > 0):
        raise MotionError(
            f"{source}: cannot work out the frame rate: the time column must increase "
            "from row to row (or give the fps explicitly)"
        )
    return round(1.0 / mean_step, 3)
