"""Several faces of one photo animated into one frame.

Each face has its own engine (its own rig, triangulation and head region) and
its own channel values. A frame is made by rendering the faces one after
another into the same frame buffer, back to front: each face is warped from
the frame as the faces before it left it (WarpEngine.render_with_fields'
`onto`), so where two head regions overlap the later face carries the earlier
one's motion along instead of pasting the still photo over it, and a face
whose values are all default leaves the frame exactly as it was. Faces are
ordered by size, smallest first: in a group photo the smaller face is usually
the one further back, and the nearer face's warp goes over it.
"""
from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from .analysis import Subject
from .animator import Animator, checked_values
from .engines.frame_buffers import FrameBuffers
from .errors import EnlivenError

MAX_THREADS = 8  # faces drawn at once, at most


def back_to_front(subjects: Sequence[Subject]) -> list[int]:
    """The face numbers in the order they are drawn: smallest face first (furthest back), the largest last."""
    return [subject.face_index for subject in sorted(subjects, key=lambda s: (s.face_width, -s.face_index))]


def overlap(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> bool:
    """Whether boxes (x0, y0, x1, y1, ends exclusive) share a pixel."""
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def waves(order: Sequence[int], regions: Mapping[int, tuple[int, int, int, int]]) -> list[list[int]]:
    """The faces of `order` (drawn in that order) in waves that may each be drawn at once: a face joins the
    wave after the last one holding a face whose region overlaps its own, so overlapping faces keep their
    order and the faces of one wave never touch the same pixel."""
    grouped: list[list[int]] = []
    for face in order:
        after = max((index + 1 for index, wave in enumerate(grouped)
                     if any(overlap(regions[face], regions[other]) for other in wave)), default=0)
        if after == len(grouped):
            grouped.append([])
        grouped[after].append(face)
    return grouped


def union_box(boxes: Sequence[tuple[int, int, int, int]]) -> tuple[int, int, int, int]:
    """The smallest box holding every one of `boxes` (x0, y0, x1, y1)."""
    x0s, y0s, x1s, y1s = zip(*boxes)
    return min(x0s), min(y0s), max(x1s), max(y1s)


class GroupAnimator:
    """Renders frames of several faces of one photo, each face moved by its own channel values."""

    def __init__(self, subjects: Sequence[Subject], engine: str = "warp", checkpoint: str | Path | None = None):
        if not subjects:
            raise EnlivenError("No face to animate.")
        faces = [subject.face_index for subject in subjects]
        if len(set(faces)) != len(faces):
            raise EnlivenError(f"Each face can be animated once; faces {faces} repeat one.")
        if len({subject.image_hash for subject in subjects}) != 1:
            raise EnlivenError("The faces animated together must be faces of one photo.")
        self.subjects = {subject.face_index: subject for subject in subjects}
        self.animators = {subject.face_index: Animator(subject, engine, checkpoint) for subject in subjects}
        self.order = back_to_front(subjects)
        self.waves = waves(self.order, {face: subject.head_region for face, subject in self.subjects.items()})
        workers = min(max(map(len, self.waves)), os.cpu_count() or 1, MAX_THREADS)
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="enliven-face") if workers > 1 else None
        self.image = subjects[0].image
        self.frames = FrameBuffers(self.image, union_box([subject.head_region for subject in subjects]))

    @property
    def faces(self) -> tuple[int, ...]:
        """The face numbers, in the order they were given."""
        return tuple(self.subjects)

    def render(self, values: Mapping[int, np.ndarray]) -> np.ndarray:
        """One frame, (H, W, 3) uint8 RGB at the photo's resolution: each face in `values` (face number ->
        full channel vector) moved by its values; faces not in `values` stay as the photo shows them."""
        unknown = sorted(set(values) - set(self.subjects))
        if unknown:
            raise EnlivenError(f"No face {unknown[0]} among the faces being animated ({list(self.faces)}).")
        rows = {face: checked_values(row) for face, row in values.items()}
        frame = self.frames.take()
        for wave in self.waves:
            moving = [face for face in wave if face in rows]

            def draw(face: int) -> None:
                self.animators[face].engine.render(rows[face], onto=frame)

            if self._pool is None or len(moving) < 2:
                for face in moving:
                    draw(face)
            else:
                for _ in self._pool.map(draw, moving):  # OpenCV and numpy let go of the GIL: faces share the cores
                    pass
        return frame

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown()
