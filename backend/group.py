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

Faces whose regions (head and body) do not overlap are independent: each
reads and writes its own region only. So a face need wait only for the faces
before it in that order whose regions overlap its own, and the faces are
rendered side by side on a pool of threads (the warp engine's work is OpenCV
and numpy, which let go of Python's lock), each as soon as those it waits for
are drawn; the frame is the one they make one after another.

Frames with alpha and compositing passes are drawn the same way, into one
canvas: the whole photo's person mask (every person in it) moved face by face,
each face's mattes joined with the faces' before it, their motion vectors added.
"""
from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from pathlib import Path

import numpy as np

from .analysis import Subject
from .animator import Animator, checked_values
from .engines.frame_buffers import FrameBuffers
from .engines.passes import blank_canvas, finished
from .errors import EnlivenError
from .frame_layers import FrameLayers


# One pool for every group's faces: threads start as frames ask for them and idle between frames.
FACE_THREADS = ThreadPoolExecutor(os.cpu_count() or 1, thread_name_prefix="enliven-face")


def back_to_front(subjects: Sequence[Subject]) -> list[int]:
    """The face numbers in the order they are drawn: smallest face first (furthest back), the largest last."""
    return [subject.face_index for subject in sorted(subjects, key=lambda s: (s.face_width, -s.face_index))]


def overlap(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def faces_to_wait_for(order: Sequence[int], regions: Mapping[int, tuple[int, int, int, int]]) -> dict[int, list[int]]:
    """For each face of `order` (back to front), the faces before it whose regions overlap its own: drawn after
    them, it carries their motion on; it may be drawn side by side with any other face."""
    return {face: [other for other in order[:index] if overlap(regions[face], regions[other])]
            for index, face in enumerate(order)}


def union_box(boxes: Sequence[tuple[int, int, int, int]]) -> tuple[int, int, int, int]:
    """The smallest box holding every one of `boxes` (x0, y0, x1, y1)."""
    x0s, y0s, x1s, y1s = zip(*boxes)
    return min(x0s), min(y0s), max(x1s), max(y1s)


class GroupAnimator:
    """Renders frames of several faces of one photo, each face moved by its own channel values."""

    def __init__(self, subjects: Sequence[Subject], engine: str = "warp", checkpoint: str | Path | None = None,
                 threads: bool = True, plates: Mapping[int, np.ndarray] | None = None):
        if not subjects:
            raise EnlivenError("No face to animate.")
        faces = [subject.face_index for subject in subjects]
        if len(set(faces)) != len(faces):
            raise EnlivenError(f"Each face can be animated once; faces {faces} repeat one.")
        if len({subject.image_hash for subject in subjects}) != 1:
            raise EnlivenError("The faces animated together must be faces of one photo.")
        self.subjects = {subject.face_index: subject for subject in subjects}
        # (The refine engine's faces share one copy of the networks: they take turns. `threads` is off in a
        # frame_workers process: there each core renders whole frames of its own.)
        self._side_by_side = threads and engine == "warp" and (os.cpu_count() or 1) > 1
        # The faces' engines are prepared side by side too: a patterned backdrop's plate takes a second a face.
        # (`plates`, face -> head_plate, made beforehand: frame_workers makes them once for all its workers.)
        plates = plates or {}
        prepare = FACE_THREADS.map if self._side_by_side else map
        animators = prepare(lambda subject: Animator(subject, engine, checkpoint, plates.get(subject.face_index)), subjects)
        self.animators = {subject.face_index: animator for subject, animator in zip(subjects, animators)}
        self.order = back_to_front(subjects)
        self.changed_region = union_box([a.changed_region for a in self.animators.values()])
        self.waits_for = faces_to_wait_for(self.order, {face: a.changed_region for face, a in self.animators.items()})
        self.frames = FrameBuffers(subjects[0].image, self.changed_region)
        self._alphas: FrameBuffers | None = None  # the still person alpha, made on the first frame that asks

    @property
    def faces(self) -> tuple[int, ...]:
        """The face numbers, in the order they were given."""
        return tuple(self.subjects)

    def render(self, values: Mapping[int, np.ndarray]) -> np.ndarray:
        """One frame, (H, W, 3) uint8 RGB at the photo's resolution: each face in `values` (face number ->
        full channel vector) moved by its values; faces not in `values` stay as the photo shows them."""
        rows = self._checked(values)
        frame = self.frames.take()
        faces = [face for face in self.order if face in rows]
        if self._side_by_side and len(faces) > 1:
            self._render_side_by_side(faces, rows, frame)
        else:
            for face in faces:
                self.animators[face].render_onto(rows[face], onto=frame)
        return frame

    def _render_side_by_side(self, faces: list[int], rows: Mapping[int, np.ndarray], frame: np.ndarray) -> None:
        """`faces` (back to front) rendered into `frame` on the pool, each once the faces it waits for are drawn.
        (Waves of faces, each wave waiting for the whole wave before it, left a core idle behind a wave's
        slowest face: 13 faces of dlib's bald_guys.jpg 259 -> 245 ms a frame on two cores.)"""
        waiting, drawn = list(faces), set()
        running: dict[Future, int] = {}
        while waiting or running:
            ready = [face for face in waiting if all(other in drawn or other not in rows for other in self.waits_for[face])]
            for face in ready:
                running[FACE_THREADS.submit(self.animators[face].render_onto, rows[face], onto=frame)] = face
                waiting.remove(face)
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                error = future.exception()
                if error is not None:
                    wait(running)  # no face still drawing into the frame once its error is raised
                    raise error
                drawn.add(running.pop(future))

    def render_layers(self, values: Mapping[int, np.ndarray], previous: Mapping[int, np.ndarray] | None = None,
                      alpha: bool = False, passes: bool = False) -> FrameLayers:
        """One frame (as render) with, on request, every person's alpha (cut out) and the compositing
        passes: the mattes of every face, and the motion vectors since the frame of values `previous`."""
        rows = self._checked(values)
        if not (alpha or passes):
            return FrameLayers(self.render(rows))
        previous = previous or {}
        canvas = blank_canvas(self.frames.take(), self._still_alphas().take(), passes)
        for face in self.order:
            if face in rows:
                self.animators[face].draw_layers(rows[face], previous.get(face), alpha, passes, canvas)
        return finished(canvas, alpha)

    def _checked(self, values: Mapping[int, np.ndarray]) -> dict[int, np.ndarray]:
        unknown = sorted(set(values) - set(self.subjects))
        if unknown:
            raise EnlivenError(f"No face {unknown[0]} among the faces being animated ({list(self.faces)}).")
        return {face: checked_values(row) for face, row in values.items()}

    def _still_alphas(self) -> FrameBuffers:
        """Buffers of the still frame's person alpha: the whole photo's person mask, segmented once for
        every face, with each head region's own finer mask blended in, back to front."""
        if self._alphas is None:
            from .analysis import person_mask

            image = self.frames.image
            whole = person_mask(image, (0, 0, image.shape[1], image.shape[0]))
            still = whole
            for face in self.order:
                still = self.animators[face].pass_renderer(whole, in_group=True).with_head_mask(still)
            self._alphas = FrameBuffers(still, self.changed_region)
        return self._alphas
