"""The motion channels: the one table that the backend, the motion files and
the Blender add-on all agree on.

A channel is one number per frame that drives one aspect of the face (head
turn, left blink, jaw...) or of the upper body (breathing, a shrug, a lean). Left and right always mean the *subject's* left and
right, as in ARKit, so the subject's left eye is on the image's right. Signs
are chosen so that a positive horizontal value moves things toward the
image's right.
"""
from __future__ import annotations

import difflib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Channel:
    name: str
    group: str
    unit: str
    minimum: float
    maximum: float
    default: float
    description: str
    # The channel's value is sum(coefficient * ARKit value) over these pairs;
    # empty when ARKit has no counterpart (e.g. head translation).
    arkit: tuple[tuple[str, float], ...]


def _shrug(side: str, image_side: str) -> Channel:
    """The shrug of the subject's left ("l") or right ("r") shoulder, on the image's `image_side`."""
    subject_side = {"l": "left", "r": "right"}[side]
    return Channel(f"shrug_{side}", "body", "factor", -1.0, 1.0, 0.0,
                   f"Raises the subject's {subject_side} shoulder (on the image's {image_side}); 1 is a full "
                   "shrug (15% of the shoulders' width), negative drops it.", ())


# Live Link Face exports head rotations in radians; pose channels are degrees.
_DEGREES_PER_RADIAN = math.degrees(1.0)

CHANNELS: tuple[Channel, ...] = (
    Channel(
        "head_yaw", "pose", "deg", -45.0, 45.0, 0.0,
        "Head turn in degrees. Positive turns the face toward the image's "
        "right (the subject's left).",
        (("HeadYaw", _DEGREES_PER_RADIAN),),
    ),
    Channel(
        "head_pitch", "pose", "deg", -30.0, 30.0, 0.0,
        "Head nod in degrees. Positive looks up with the chin raised; "
        "negative looks down.",
        (("HeadPitch", _DEGREES_PER_RADIAN),),
    ),
    Channel(
        "head_roll", "pose", "deg", -45.0, 45.0, 0.0,
        "Head tilt in degrees. Positive tilts the top of the head toward the "
        "image's right.",
        (("HeadRoll", _DEGREES_PER_RADIAN),),
    ),
    Channel(
        "head_x", "pose", "face_widths", -0.5, 0.5, 0.0,
        "Sideways head shift, in face widths. Positive moves toward the "
        "image's right.",
        (),
    ),
    Channel(
        "head_y", "pose", "face_widths", -0.5, 0.5, 0.0,
        "Vertical head shift, in face widths. Positive moves up.",
        (),
    ),
    Channel(
        "blink_l", "eyes", "factor", 0.0, 1.0, 0.0,
        "Closes the subject's left eye (on the image's right). "
        "0 is open, 1 is closed.",
        (("EyeBlinkLeft", 1.0),),
    ),
    Channel(
        "blink_r", "eyes", "factor", 0.0, 1.0, 0.0,
        "Closes the subject's right eye (on the image's left). "
        "0 is open, 1 is closed.",
        (("EyeBlinkRight", 1.0),),
    ),
    Channel(
        "gaze_x", "eyes", "factor", -1.0, 1.0, 0.0,
        "Horizontal gaze of both eyes. Positive looks toward the image's "
        "right (the subject's left); 1 is as far as the eyes go.",
        # Looking to the subject's left turns the left eye outward and the
        # right eye inward.
        (
            ("EyeLookOutLeft", 0.5),
            ("EyeLookInRight", 0.5),
            ("EyeLookInLeft", -0.5),
            ("EyeLookOutRight", -0.5),
        ),
    ),
    Channel(
        "gaze_y", "eyes", "factor", -1.0, 1.0, 0.0,
        "Vertical gaze of both eyes. Positive looks up, negative looks down.",
        (
            ("EyeLookUpLeft", 0.5),
            ("EyeLookUpRight", 0.5),
            ("EyeLookDownLeft", -0.5),
            ("EyeLookDownRight", -0.5),
        ),
    ),
    Channel(
        "brow_l", "brows", "factor", -1.0, 1.0, 0.0,
        "The subject's left brow (on the image's right). Positive raises it, "
        "negative lowers it into a frown.",
        (("BrowOuterUpLeft", 1.0), ("BrowDownLeft", -1.0)),
    ),
    Channel(
        "brow_r", "brows", "factor", -1.0, 1.0, 0.0,
        "The subject's right brow (on the image's left). Positive raises it, "
        "negative lowers it into a frown.",
        (("BrowOuterUpRight", 1.0), ("BrowDownRight", -1.0)),
    ),
    Channel(
        "brow_inner_up", "brows", "factor", 0.0, 1.0, 0.0,
        "Raises the inner ends of both brows (a worried or sad look). "
        "0 is neutral, 1 is fully raised.",
        (("BrowInnerUp", 1.0),),
    ),
    Channel(
        "jaw_open", "mouth", "factor", -1.0, 1.0, 0.0,
        "Opens the jaw from the photo's own mouth: 1 is wide open. Negative "
        "closes a mouth that is open in the photo: -1 seals the lips.",
        (("JawOpen", 1.0),),
    ),
    Channel(
        "smile_l", "mouth", "factor", -1.0, 1.0, 0.0,
        "The subject's left mouth corner (on the image's right). Positive "
        "pulls it up into a smile, negative down into a frown.",
        (("MouthSmileLeft", 1.0), ("MouthFrownLeft", -1.0)),
    ),
    Channel(
        "smile_r", "mouth", "factor", -1.0, 1.0, 0.0,
        "The subject's right mouth corner (on the image's left). Positive "
        "pulls it up into a smile, negative down into a frown.",
        (("MouthSmileRight", 1.0), ("MouthFrownRight", -1.0)),
    ),
    Channel(
        "pucker", "mouth", "factor", 0.0, 1.0, 0.0,
        "Rounds the lips and pushes them forward, as in \"oo\". "
        "0 is neutral, 1 is fully puckered.",
        (("MouthPucker", 0.7), ("MouthFunnel", 0.3)),
    ),
    Channel(
        "wide", "mouth", "factor", 0.0, 1.0, 0.0,
        "Stretches the lips wide, as in \"ee\". 0 is neutral, 1 is fully "
        "stretched.",
        (("MouthStretchLeft", 0.5), ("MouthStretchRight", 0.5)),
    ),
    # The upper body: moved only where the photo shows the shoulders (a photo cropped at the neck
    # ignores these). ARKit tracks the face alone, so they have no ARKit counterpart.
    Channel(
        "breathing", "body", "factor", -1.0, 1.0, 0.0,
        "Breath: positive breathes in (the chest and shoulders rise and the chest widens), negative "
        "breathes out. 1 is a deep breath (the shoulders rise by 5% of their width).",
        (),
    ),
    *(_shrug(side, image_side) for side, image_side in (("l", "right"), ("r", "left"))),
    Channel(
        "torso_lean", "body", "deg", -8.0, 8.0, 0.0,
        "Sideways lean of the upper body about the hips, in degrees; the head rides along. Positive "
        "leans the shoulders toward the image's right. (Kept small: hair that reaches the photo's top "
        "edge is held there, and shears.)",
        (),
    ),
    Channel(
        "torso_turn", "body", "deg", -30.0, 30.0, 0.0,
        "Turn of the upper body about the spine, in degrees. Positive turns the chest toward the image's "
        "right (the subject's left), as head_yaw turns the face.",
        (),
    ),
    # Added after the body's, so that every earlier channel keeps its place (raw motion arrays, old files).
    Channel(
        "lips_part", "mouth", "factor", 0.0, 1.0, 0.0,
        "Parts the lips without dropping the jaw, as in speech: the upper lip "
        "rises and the lower lip drops. 0 is neutral, 1 parts them by about "
        "a third of the mouth's width.",
        # ARKit's MouthUpperUp and MouthLowerDown are its kin, but uncalibrated against this rig: a Live
        # Link import does not key it (it opens the mouth with JawOpen alone) until that is measured.
        (),
    ),
)

CHANNEL_NAMES: tuple[str, ...] = tuple(c.name for c in CHANNELS)
CHANNEL_INDEX: dict[str, int] = {name: i for i, name in enumerate(CHANNEL_NAMES)}
GROUPS: dict[str, tuple[str, ...]] = {
    group: tuple(c.name for c in CHANNELS if c.group == group)
    for group in dict.fromkeys(c.group for c in CHANNELS)
}


_LONGEST_SHOWN_NAME = 40


def unknown_name_message(kind: str, name: str, valid: Sequence[str]) -> str:
    """Explain that `name` is not a valid `kind`, suggest close spellings and
    list the valid names, e.g. "unknown channel 'jaw_opn' (did you mean
    'jaw_open'?); valid channels: ..."."""
    # A name from a hostile file may be megabytes long: difflib would index
    # every character of it, and the message would no longer be one line.
    if len(name) > _LONGEST_SHOWN_NAME:
        return (f"unknown {kind} {name[:_LONGEST_SHOWN_NAME]!r}... ({len(name)} characters); "
                f"valid {kind}s: {', '.join(valid)}")
    close = difflib.get_close_matches(name, valid, n=3, cutoff=0.6)
    hint = f" (did you mean {' or '.join(repr(c) for c in close)}?)" if close else ""
    return f"unknown {kind} {name!r}{hint}; valid {kind}s: {', '.join(valid)}"


def channel(name: str) -> Channel:
    """The channel called `name`; KeyError with suggestions if there is none."""
    try:
        return CHANNELS[CHANNEL_INDEX[name]]
    except KeyError:
        raise KeyError(unknown_name_message("channel", name, CHANNEL_NAMES)) from None


def default_vector() -> np.ndarray:
    """Every channel's default (the neutral face), in table order."""
    return np.array([c.default for c in CHANNELS], dtype=np.float32)


def minimum_vector() -> np.ndarray:
    """Every channel's smallest allowed value, in table order."""
    return np.array([c.minimum for c in CHANNELS], dtype=np.float32)


def maximum_vector() -> np.ndarray:
    """Every channel's largest allowed value, in table order."""
    return np.array([c.maximum for c in CHANNELS], dtype=np.float32)


def arkit_to_channels(shapes: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Convert ARKit blendshape and head-rotation values (as exported by Live
    Link Face, e.g. one array per CSV column) to channel values.

    Shapes missing from `shapes` count as 0. Channels that ARKit cannot
    express (head_x, head_y, the body, lips_part) are left out. Results are clipped to each
    channel's range and have the broadcast shape of the inputs.
    """
    arrays = {name: np.asarray(values, dtype=np.float64) for name, values in shapes.items()}
    shape = np.broadcast_shapes(*(a.shape for a in arrays.values()))
    result: dict[str, np.ndarray] = {}
    for ch in CHANNELS:
        if not ch.arkit:
            continue
        total = np.zeros(shape)
        for shape_name, coefficient in ch.arkit:
            if shape_name in arrays:
                total = total + coefficient * arrays[shape_name]
        result[ch.name] = np.clip(total, ch.minimum, ch.maximum).astype(np.float32)
    return result
