"""Motion for several faces of one photo: one Motion per face, and the .json file that holds them.

A group photo animates each face on its own. Its motion file is the single-face
JSON layout once per face, under "faces", at one frame rate (format version 2):

    {"format": "enliven-motion", "version": 2, "fps": 24.0,
     "faces": [{"face": 0, "channels": ["blink_l", ...], "frames": [[0.0, ...], ...]},
               {"face": 2, "channels": [...], "frames": [...]}]}

"face" is the face's number in the photo (0 = largest, as `enliven analyze`
lists them). Each face lists its own channels; a face that is not listed stays
still, and a face whose motion is shorter than the longest holds its last frame.
A version 1 file (today's single-face layout, and every .csv file) is one
face's motion: FaceMotions.single gives it to whichever face it is meant for.
Each face's values are checked exactly as a single-face file's are
(motion_from_dict), and its errors say which face they are in.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .motion import (FACES_VERSION, FORMAT_TAG, MAX_FRAMES, Motion, MotionError, checked_fps, load_motion,
                     motion_from_dict, motion_to_dict, parse_motion_json, quoted, read_text_file, write_atomically)

MAX_FACES = 256  # a photo with more faces than this is not a group photo but a crowd


@dataclass(eq=False)
class FaceMotions:
    """One Motion per face number, at one frame rate."""

    fps: float
    motions: dict[int, Motion]
    per_face: bool = True  # False: one face's motion (a single-face file), not yet given to any face in particular

    def __post_init__(self) -> None:
        self.fps = checked_fps(self.fps)
        if not self.motions:
            raise MotionError("a motion for several faces needs at least one face")
        if len(self.motions) > MAX_FACES:
            raise MotionError(f"{len(self.motions)} faces; a motion file may have at most {MAX_FACES}")
        for face, motion in self.motions.items():
            if not (isinstance(face, int) and face >= 0):
                raise MotionError(f"face numbers are whole numbers from 0, got {quoted(face)}")
            if motion.fps != self.fps:
                raise MotionError(f"face {face} has {motion.fps:g} fps; every face's motion must have {self.fps:g}")
        self.motions = dict(sorted(self.motions.items()))

    @classmethod
    def single(cls, motion: Motion, faces: list[int] | tuple[int, ...] = (0,)) -> FaceMotions:
        """`motion` for each of `faces` (the same motion: they move in unison)."""
        return cls(motion.fps, {face: motion for face in faces}, per_face=False)

    @property
    def faces(self) -> tuple[int, ...]:
        return tuple(self.motions)

    @property
    def frame_count(self) -> int:
        return max(motion.frame_count for motion in self.motions.values())

    def full(self) -> dict[int, np.ndarray]:
        """Each face's channel values in table order, (frame_count, channels); shorter ones hold their last frame."""
        count = self.frame_count
        result = {}
        for face, motion in self.motions.items():
            values = motion.full()
            if len(values) < count:
                values = np.concatenate([values, np.repeat(values[-1:], count - len(values), axis=0)])
            result[face] = values
        return result

    def sanitized(self, strict: bool = False) -> tuple[FaceMotions, list[str]]:
        """Motion.sanitized on each face; each warning names its face (with `strict`, the error names every
        face refused, not only the first)."""
        fixed, warnings, refused = {}, [], []
        for face, motion in self.motions.items():
            try:
                fixed[face], face_warnings = motion.sanitized(strict)
            except MotionError as error:
                refused.append(f"face {face}: {error}")
                continue
            warnings += [f"face {face}: {warning}" for warning in face_warnings]
        if refused:
            raise MotionError("; ".join(refused))
        return FaceMotions(self.fps, fixed, self.per_face), warnings


def face_motions_to_dict(face_motions: FaceMotions) -> dict[str, Any]:
    """The JSON-ready form (format version 2)."""
    faces = []
    for face, motion in face_motions.motions.items():
        single = motion_to_dict(motion)
        faces.append({"face": face, "channels": single["channels"], "frames": single["frames"]})
    return {"format": FORMAT_TAG, "version": FACES_VERSION, "fps": face_motions.fps, "faces": faces}


def face_motions_from_dict(data: Any, source: str = "<dict>") -> FaceMotions:
    """Check and convert the JSON form (version 2, or a version 1 single-face motion, which becomes face 0's)."""
    if not (isinstance(data, dict) and data.get("version") == FACES_VERSION and "faces" in data):
        return FaceMotions.single(motion_from_dict(data, source))
    if data.get("format") != FORMAT_TAG:
        raise MotionError(f"{source}: not an Enliven motion file (expected \"format\": {FORMAT_TAG!r})")
    fps, groups = data.get("fps"), data["faces"]
    if isinstance(fps, bool) or not isinstance(fps, (int, float)):  # (it was blamed on the first face)
        raise MotionError(f"{source}: \"fps\", the frame rate of every face's motion, must be a number, got "
                          f"{'none' if 'fps' not in data else 'null' if fps is None else quoted(fps)}")
    if not (isinstance(groups, list) and groups):
        raise MotionError(f"{source}: \"faces\" must be a list of face motions, one per face")
    if len(groups) > MAX_FACES:
        raise MotionError(f"{source}: {len(groups)} faces; a motion file may have at most {MAX_FACES}")
    motions: dict[int, Motion] = {}
    total_frames = 0
    for position, group in enumerate(groups):
        where = f"{source}: faces[{position}]"
        if not isinstance(group, dict):
            raise MotionError(f"{where}: expected an object with \"face\", \"channels\" and \"frames\"")
        face = group.get("face")
        if not (isinstance(face, int) and not isinstance(face, bool) and 0 <= face):
            raise MotionError(f"{where}: \"face\" must be a face number (0 = largest), got {quoted(face)}")
        if face in motions:
            raise MotionError(f"{where}: face {face} is given more than once")
        missing = [key for key in ("channels", "frames") if key not in group]
        if missing:
            raise MotionError(f"{where}: missing {', '.join(repr(k) for k in missing)}")
        frames = group["frames"]
        total_frames += len(frames) if isinstance(frames, list) else 0
        if total_frames > MAX_FRAMES:  # bounded over all faces together, before any array is made
            raise MotionError(f"{source}: more than the {MAX_FRAMES} frames a motion file may hold")
        single = {"format": FORMAT_TAG, "version": 1, "fps": fps, "channels": group["channels"], "frames": frames}
        motions[face] = motion_from_dict(single, f"{source}: face {face}")
    return FaceMotions(fps, motions)


def load_face_motions(path: str | os.PathLike[str], fps: float | None = None) -> FaceMotions:
    """Read a motion file: a version 2 .json with a motion per face, or any single-face file (.json or
    .csv, as load_motion reads it), which becomes face 0's motion. `fps` overrides the file's rate."""
    source = str(path)
    if Path(path).suffix.lower() != ".json":
        return FaceMotions.single(load_motion(path, fps))
    face_motions = face_motions_from_dict(parse_motion_json(read_text_file(path), source), source)
    if fps is None:
        return face_motions
    fps = checked_fps(fps)
    return FaceMotions(fps, {face: Motion(fps, motion.channels, motion.values)
                             for face, motion in face_motions.motions.items()}, face_motions.per_face)


def save_face_motions(face_motions: FaceMotions, path: str | os.PathLike[str]) -> None:
    """Write a version 2 .json (atomically, like save_motion); one frame per line."""
    if Path(path).suffix.lower() != ".json":
        raise MotionError(f"{path}: a motion for several faces is a .json file")
    data = face_motions_to_dict(face_motions)
    lines = []
    for group in data["faces"]:
        rows = ",\n      ".join(json.dumps(row) for row in group["frames"])
        lines.append(f'  {{"face": {group["face"]}, "channels": {json.dumps(group["channels"])}, "frames": [\n'
                     f"      {rows}\n  ]}}")
    header = f'{{"format": {json.dumps(FORMAT_TAG)}, "version": {FACES_VERSION}, "fps": {json.dumps(data["fps"])},'
    write_atomically(Path(path), header + '\n "faces": [\n' + ",\n".join(lines) + "\n]}\n")

