"""The "oracle warp" baseline: the source photo warped onto the real frame's own landmarks.

It uses the warp engine unchanged except for where the landmarks go: instead
of the rig's targets, the real frame's 478 landmarks exactly. The engine's
extra control points (hair and neck rings, the mouth split) are carried as
the engine carries them, by the head's motion plus a share of their
landmark's displacement; the head motion is the solver's pose fit, and each
landmark's displacement is whatever remains once that pose is removed (a
free-form "expression" that the rig's channels could only approximate).

This shows what the warp engine would score if capture and rig were perfect,
so the gap between it and the captured result is the rig's and the solver's.
"""
from __future__ import annotations

import enliven  # noqa: F401 - first: it keeps numpy's BLAS to one thread, as the enliven command does
import numpy as np

from enliven.analysis import Subject
from enliven.engines.warp import WarpEngine
from enliven.geometry import camera_to_image, image_to_camera
from enliven.solver import Solver


class OracleWarp(WarpEngine):
    def __init__(self, subject: Subject):
        super().__init__(subject)
        self.solver = Solver(self.rig)
        self._goal: tuple[np.ndarray, np.ndarray] | None = None  # (landmarks in camera frame, free offsets)

    def render_onto(self, landmarks: np.ndarray) -> np.ndarray:
        """The photo warped so its landmarks land on `landmarks` (478, 3) image pixels."""
        values = self.solver.solve(landmarks)
        rotation, shift = self.rig.head_motion(values)
        observed = image_to_camera(np.asarray(landmarks, dtype=np.float64))
        # Undo the head motion: what is left over the source is the free-form expression.
        pivot = self.rig.pivot
        unmoved = (observed - pivot - shift) @ rotation + pivot
        self._goal = (observed, unmoved - self.rig.source_camera)
        try:
            return self.render(values)
        finally:
            self._goal = None

    def target_points(self, values: np.ndarray):
        if self._goal is None:
            return super().target_points(values)
        observed, offsets = self._goal
        rig = self.rig
        landmarks_image = camera_to_image(observed)
        extra_camera = self.extra_source + self.extra_share[:, None] * offsets[self.extra_carrier]
        extra_image = camera_to_image(rig.move_with_head(extra_camera, values, self.extra_attachment))
        return landmarks_image, extra_image, self.control_points_work(landmarks_image, extra_image)
