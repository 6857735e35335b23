"""Request schemas: which fields and parts each request may carry, and what
their values must be. Pure data; `protocol.validate_request` applies them.

Adding a request type: its row in ``REQUESTS`` here, its name in
``protocol.REQUEST_TYPES``.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Callable

JOB_ID_RE = re.compile(r"^[A-Za-z0-9_.:\-]{1,64}$")
NAME_RE = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")


def is_int(v: Any) -> bool:
    """An integer, and not a bool (JSON true is not 1 here)."""
    return isinstance(v, int) and not isinstance(v, bool)


Check = Callable[[Any], bool]


@dataclass(frozen=True)
class FieldSpec:
    check: Check
    expect: str  # human description for the error message
    required: bool = False


@dataclass(frozen=True)
class PartSpec:
    kinds: tuple[str, ...]
    dtypes: tuple[str, ...] = ()
    ndims: tuple[int, ...] = ()
    required: bool = False


def _int_in(lo: int, hi: int) -> Check:
    return lambda v: is_int(v) and lo <= v <= hi


def _num_in(lo: float, hi: float) -> Check:
    return lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and lo < v <= hi


def _num_between(lo: float, hi: float) -> Check:
    """A number with lo <= v <= hi (both ends allowed, unlike _num_in)."""
    return lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and lo <= v <= hi


def _str_match(pattern: str) -> Check:
    rx = re.compile(pattern)
    return lambda v: isinstance(v, str) and rx.fullmatch(v) is not None


def _one_of(*values: str) -> Check:
    return lambda v: isinstance(v, str) and v in values


def _names(max_items: int) -> Check:
    return lambda v: isinstance(v, list) and len(v) <= max_items and all(
        isinstance(s, str) and NAME_RE.match(s) for s in v
    )


def _path(v: Any) -> bool:
    return isinstance(v, str) and 0 < len(v) <= 4096 and "\x00" not in v


_SUBJECT = FieldSpec(_str_match(r"[0-9a-zA-Z_\-]{1,128}"), "a subject id from an analysis reply")
_ENGINE = FieldSpec(_str_match(r"[a-z0-9_\-]{1,32}"), "an engine name from hello")
_FACE = FieldSpec(_int_in(0, 255), "an integer 0-255")
# Several faces of the photo at once (preview, generate): the motion part is then (faces, frames, channels),
# one channel group per face in this order, each face moved by its own (see the README, "Several faces").
_FACES = FieldSpec(lambda v: isinstance(v, list) and 0 < len(v) <= 64 and all(is_int(f) and 0 <= f <= 255 for f in v)
                   and len(set(v)) == len(v), "a list of 1-64 different face numbers 0-255")
_CHANNELS = FieldSpec(_names(256), "a list of channel names")
# Captures and lip-sync read files on the server's disk; the server decides
# which paths a client may name (see Server._readable_path).
_INPUT_PATH = FieldSpec(_path, "an absolute file path on the server")
_STRENGTHS = FieldSpec(
    lambda v: isinstance(v, dict) and len(v) <= 8 and all(
        isinstance(k, str) and NAME_RE.match(k) and _num_between(0, 10)(x) for k, x in v.items()),
    "an object of channel group -> factor 0-10, e.g. {\"mouth\": 0.8}")
# The refine engine's trained model (a RUN_DIR/last.pt from training) is a
# file on the server's disk too, read under the same rule.
_CHECKPOINT = FieldSpec(_path, "an absolute path to a checkpoint (.pt) on the server")
_CONFIG_VALUE = (bool, int, float, str)
_TRAIN_CONFIG = FieldSpec(
    lambda v: (isinstance(v, str) and NAME_RE.match(v) is not None) or (
        isinstance(v, dict) and len(v) <= 64 and all(
            isinstance(k, str) and NAME_RE.match(k) and (
                (isinstance(x, _CONFIG_VALUE) and not (isinstance(x, float) and not math.isfinite(x)))
                or (isinstance(x, list) and len(x) <= 64 and all(isinstance(i, str) and NAME_RE.match(i) for i in x)))
            for k, x in v.items())),
    "a preset name (small, large) or an object of settings, e.g. {\"preset\": \"small\", \"steps\": 2000}")
# Speech requests (lipsync, talk) share these.
_TEXT = FieldSpec(lambda v: isinstance(v, str) and 0 < len(v) <= 10_000, "1-10000 characters of text")
_VOICE = FieldSpec(_str_match(r"[A-Za-z0-9_+\-]{1,40}"), "an eSpeak NG voice such as en, en-us, en+f3")
_RATE_WPM = FieldSpec(_int_in(80, 450), "words per minute, 80-450")
_HEAD_MOTION = FieldSpec(_num_between(0, 5), "an amount 0-5")
_SEED = FieldSpec(_int_in(0, 2**31 - 1), "a non-negative integer")
# The person cut out: RGBA frames (PNG, raw) or the EXR's alpha, the uncovered background transparent.
_ALPHA = FieldSpec(lambda v: isinstance(v, bool), "true or false")
_IMAGE = PartSpec(("png", "jpeg", "array"), dtypes=("uint8",), ndims=(3,))
_MOTION = PartSpec(("array",), dtypes=("float32",), ndims=(1, 2, 3), required=True)

REQUESTS: dict[str, tuple[dict[str, FieldSpec], dict[str, PartSpec]]] = {
    "hello": ({"client": FieldSpec(lambda v: isinstance(v, str) and len(v) <= 200, "a short string")}, {}),
    "ping": ({}, {}),
    "status": ({}, {}),
    "shutdown": ({}, {}),
    "cancel": ({"target": FieldSpec(_str_match(JOB_ID_RE.pattern[1:-1]), "the job id to cancel", True)}, {}),
    "analyze": ({"face_index": _FACE}, {"image": PartSpec(_IMAGE.kinds, _IMAGE.dtypes, _IMAGE.ndims, True)}),
    "preview": (
        {
            "subject": _SUBJECT,
            "face_index": _FACE,
            "faces": _FACES,
            "engine": _ENGINE,
            "channels": _CHANNELS,
            "format": FieldSpec(_one_of("raw", "png", "jpeg"), "raw, png or jpeg"),
            "alpha": _ALPHA,
            "max_side": FieldSpec(_int_in(64, 8192), "an integer 64-8192: render at most this many pixels a side"),
            "checkpoint": _CHECKPOINT,
        },
        {"image": _IMAGE, "motion": _MOTION},
    ),
    "generate": (
        {
            "subject": _SUBJECT,
            "face_index": _FACE,
            "faces": _FACES,
            "engine": _ENGINE,
            "channels": _CHANNELS,
            "fps": FieldSpec(_num_in(0, 1000), "frames per second, 0 < fps <= 1000", True),
            "format": FieldSpec(_one_of("png", "exr", "jpeg", "raw", "none"),
                                "png, exr (multilayer: colour, alpha, mattes, motion vectors), jpeg, raw or none"),
            "alpha": _ALPHA,
            "png_compression": FieldSpec(_int_in(0, 9), "0 (store: fastest, largest) to 9 (smallest); default 1"),
            "output_dir": FieldSpec(_path, "an absolute directory path on the server"),
            "resume": FieldSpec(lambda v: isinstance(v, bool), "true or false"),
            "prefix": FieldSpec(_str_match(r"[A-Za-z0-9_\-]{0,64}"), "up to 64 characters of [A-Za-z0-9_-]"),
            "first_number": FieldSpec(_int_in(0, 10_000_000), "an integer 0-10000000"),
            "digits": FieldSpec(_int_in(1, 9), "an integer 1-9"),
            "checkpoint": _CHECKPOINT,
        },
        {"image": _IMAGE, "motion": _MOTION},
    ),
    # Exactly one of video_path / livelink_path (checked by the server).
    "capture": (
        {
            "video_path": _INPUT_PATH,
            "livelink_path": _INPUT_PATH,
            "reference": FieldSpec(lambda v: v in ("first", "auto") or _int_in(0, 10_000_000)(v),
                                   "\"first\", \"auto\" or a frame number"),
            "smoothing": FieldSpec(_str_match(r"[a-z]{1,16}"), "a smoothing level: none, light, normal, strong..."),
            "strengths": _STRENGTHS,
            "max_gap_s": FieldSpec(_num_in(0, 3600), "seconds, above 0"),
            "face_index": _FACE,
            "fps": FieldSpec(_num_in(0, 1000), "the Live Link CSV's frame rate, 0 < fps <= 1000"),
            "body": FieldSpec(lambda v: isinstance(v, bool), "true (default: capture breathing, shrugs, lean and "
                              "turn where the video shows the shoulders) or false"),
        },
        {},
    ),
    # Exactly one of audio_path / text (say: synthesised, then written as a
    # WAV into output_dir so that Blender, on the same disk, can play it).
    "lipsync": (
        {
            "audio_path": _INPUT_PATH,
            "text": _TEXT,
            "voice": _VOICE,
            "rate_wpm": _RATE_WPM,
            "output_dir": FieldSpec(_path, "an absolute directory path on the server (for say's WAV)"),
            "fps": FieldSpec(_num_in(0, 1000), "frames per second, 0 < fps <= 1000", True),
            "strength": FieldSpec(_num_between(0, 3), "a factor 0-3"),
            "lead": FieldSpec(_num_between(0, 10), "frames 0-10"),
            "head_motion": _HEAD_MOTION,
            "blinks": FieldSpec(lambda v: isinstance(v, bool), "true or false"),
            "seed": _SEED,
            # The portrait that will say it (from analyze): the mouth is fitted to the photo's own opening.
            "subject": _SUBJECT,
        },
        {},
    ),
    # The one-step talking video: lip-sync from a sound file on the server's
    # disk or from text it speaks, blinks and head motion, rendered into an
    # H.264 + AAC video with the sound, written into output_dir as video_name.
    # Exactly one of audio_path / text (checked by the server).
    "talk": (
        {
            "subject": _SUBJECT,
            "face_index": _FACE,
            "engine": _ENGINE,
            "checkpoint": _CHECKPOINT,
            "audio_path": _INPUT_PATH,
            "text": _TEXT,
            "voice": _VOICE,
            "rate_wpm": _RATE_WPM,
            "output_dir": FieldSpec(_path, "an absolute directory path on the server", True),
            "video_name": FieldSpec(_str_match(r"[A-Za-z0-9_\-]{1,64}\.(mp4|mov|mkv)"),
                                    "a file name such as talk.mp4 (letters, digits, _ and -; .mp4, .mov or .mkv)"),
            "fps": FieldSpec(_num_in(0, 120), "frames per second, 0 < fps <= 120"),
            "head_motion": _HEAD_MOTION,
            "seed": _SEED,
        },
        {"image": _IMAGE},
    ),
    # Training the refine engine on a dataset made by `enliven prepare` on the
    # server's disk. Progress carries the step, the steps in all and the losses;
    # cancel stops after the current step and saves RUN_DIR/last.pt first. The
    # final reply's checkpoint is the model to use: best.pt once the run has
    # scored its validation clips (the best generator on them), else last.pt.
    "train": (
        {
            "dataset_dir": FieldSpec(_path, "an absolute directory path on the server (from `enliven prepare`)", True),
            "run_dir": FieldSpec(_path, "an absolute directory path on the server for checkpoints and samples", True),
            "config": _TRAIN_CONFIG,
            "resume": FieldSpec(lambda v: isinstance(v, bool), "true or false"),
            "steps": FieldSpec(_int_in(1, 100_000_000), "an integer 1-100000000"),
            "holdout": FieldSpec(_names(64), "a list of clip names"),
            "vgg_weights": FieldSpec(_path, "an absolute path to torchvision VGG19 weights on the server"),
        },
        {},
    ),
}
