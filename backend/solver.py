"""The capture solver: observed landmarks -> channel values, the inverse of the rig.

Pure numpy/scipy, no I/O. A Solver is built from the Rig of a *reference*
frame (the neutral face the channels are measured from); solving another
frame of the same face finds the channel values for which the rig's target
landmarks best match that frame's landmarks. The rig's model of a frame is

    targets = R (source + sum_k part_k * shape_k - pivot) + pivot + shift

with R the head rotation (yaw, pitch, roll), shift the head's move (head_x,
head_y, plus a free depth offset) and one expression shape per channel sign.

1. **Head pose first**: a closed-form rigid fit (weighted Kabsch) of the
   reference face to the observation, using only landmarks that no
   expression moves (nose, forehead, temples, eye corners...), so a smile or
   an open jaw does not read as a nod.
2. **Then pose and expression together**, by Gauss-Newton: the model is
   linear in the shift and the expression parts, and the rotation is
   linearised as R (I + [w]x) for a small turn w, so each step is one bounded
   linear least-squares problem (scipy.optimize.lsq_linear, method "bvls").
   It converges in 3-4 steps and recovers the rig's own landmarks exactly
   (on the channel sides it fits: below).

Expression unknowns are bounded by each channel's range. Two-sided channels
(brows, smile, gaze, jaw) have a different shape for each sign, so each
becomes two unknowns, a positive and a negative part, both >= 0, whose
difference is the value. A side that moves no landmark perceptibly beside one
that does (a sealed photo's sealing side: UNREADABLE_SIDE) is no unknown. A
small ridge term keeps channels that the landmarks cannot tell apart at their
defaults rather than letting them fight.

Coordinates follow the rig: camera frame (x right, y up, z toward the viewer)
in pixels; residuals are measured in head units (the distance between the
outer eye corners), and depth counts less than x and y because MediaPipe's
depth is its least reliable coordinate.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import lsq_linear

from .geometry import angles_from_rotation, estimate_head_pose, image_to_camera
from .rig import EXPRESSION_CHANNELS, Rig
from .shared.channels import CHANNEL_INDEX, CHANNELS, default_vector

# A landmark counts as "rigid" (used for the closed-form head pose) when no
# expression shape at full strength moves it more than this, in head units.
RIGID_MOVEMENT = 0.01
# The closed-form start still gives expressive landmarks a little weight, so
# it has something to hold on to on a face whose rigid points are few.
EXPRESSIVE_START_WEIGHT = 0.05
# Weight of the depth coordinate relative to x and y.
DEPTH_WEIGHT = 0.3
# Gauss-Newton stops when no angle (radians) or expression part moves more than this.
CONVERGED_STEP = 1e-4
# One side of a two-sided channel whose shape at full strength moves no landmark further than this (head
# units) is not fitted while its other side is: landmarks cannot tell its value, and the fit used it to soak
# up misfit beside the other. On a photo with sealed lips jaw_open's sealing side reaches 0.005-0.016 (the
# lips already meet), and sealed frames read anywhere from 0 to -1 (on d13, under -0.3 in 46 % of its
# frames), the same lips drawn either way. (A one-sided channel is kept: a blink captured against a reference
# whose eyes are shut moves nothing there, but it is still the performer's blink, for another photo.)
UNREADABLE_SIDE = 0.02


@dataclass(frozen=True)
class SolverSettings:
    """How the fit trades accuracy for stability. Defaults suit video capture."""

    # Ridge strength on the expression parts, in (head units)^2 per unit of
    # channel value: small enough that an exact rig pose is recovered to
    # ~1e-3, large enough that noise does not wake up channels.
    ridge: float = 1e-4
    # Gauss-Newton steps at most (it usually converges in 3-4).
    iterations: int = 8


@dataclass(frozen=True)
class _ExpressionPart:
    """One unknown of the linear fit: a channel's positive or negative side."""

    channel: int  # index into the full channel vector
    sign: float  # +1: the value is +part; -1: the value is -part
    upper: float  # largest allowed part (the channel's max, or -min for the negative side)
    shape: np.ndarray  # (478, 3) camera-frame displacement at part = 1


class Solver:
    """Fits channel values to landmarks of the face a Rig was built from."""

    def __init__(self, rig: Rig, settings: SolverSettings | None = None):
        self.rig = rig
        self.settings = settings or SolverSettings()
        self.parts = _expression_parts(rig)
        self.shapes = np.stack([part.shape for part in self.parts])  # (parts, 478, 3) camera-frame pixels
        self.part_upper = np.array([part.upper for part in self.parts])
        # Residuals are measured in head units (not pixels), so the ridge and
        # tolerances do not depend on the video's resolution.
        self.unit = 1.0 / rig.pose.scale
        movement = np.linalg.norm(self.shapes, axis=2).max(axis=0) * self.unit
        self.rigid = movement < RIGID_MOVEMENT
        # The closed-form start sees (almost) only the rigid part of the face, so an expression cannot tilt it.
        self.start_weights = np.where(self.rigid, 1.0, EXPRESSIVE_START_WEIGHT)
        self.coordinate_weights = np.array([1.0, 1.0, DEPTH_WEIGHT])

    # ----- public -------------------------------------------------------------

    def solve(self, landmarks: np.ndarray) -> np.ndarray:
        """Channel values (full vector, table order, float64) for (478, 3) image-space landmarks."""
        observed = image_to_camera(np.asarray(landmarks, dtype=np.float64))
        if observed.shape != self.rig.source_camera.shape or not np.isfinite(observed).all():
            raise ValueError(f"expected {self.rig.source_camera.shape} finite landmarks, got {observed.shape}")
        rotation, shift = self._rigid_fit(observed)
        parts = np.zeros(len(self.parts))
        for _ in range(self.settings.iterations):
            rotation, shift, parts, step = self._gauss_newton_step(observed, rotation, shift, parts)
            if step < CONVERGED_STEP:
                break
        values = default_vector().astype(np.float64)
        for name, value in zip(("head_yaw", "head_pitch", "head_roll"), angles_from_rotation(rotation)):
            values[CHANNEL_INDEX[name]] = value
        values[CHANNEL_INDEX["head_x"]] = shift[0] / self.rig.face_width
        values[CHANNEL_INDEX["head_y"]] = shift[1] / self.rig.face_width
        for part, amount in zip(self.parts, parts):
            values[part.channel] += part.sign * amount
        return values

    def residual(self, landmarks: np.ndarray, values: np.ndarray) -> float:
        """Mean distance in pixels (image x, y) between the rig's targets for `values` and `landmarks`."""
        targets = self.rig.targets(values)
        return float(np.linalg.norm(targets[:, :2] - np.asarray(landmarks)[:, :2], axis=1).mean())

    # ----- fitting --------------------------------------------------------------

    def _rigid_fit(self, observed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Closed-form start: the weighted rigid motion (Kabsch) of the neutral face onto the observation,
        as a rotation about the rig's pivot and a shift."""
        weights = self.start_weights / self.start_weights.sum()
        source = self.rig.source_camera - self.rig.pivot
        source_mean, observed_mean = weights @ source, weights @ observed
        covariance = (observed - observed_mean).T @ ((source - source_mean) * weights[:, None])
        u, _, vt = np.linalg.svd(covariance)
        rotation = u @ np.diag([1.0, 1.0, np.sign(np.linalg.det(u @ vt))]) @ vt
        shift = observed_mean - source_mean @ rotation.T - self.rig.pivot
        return rotation, shift

    def _gauss_newton_step(self, observed: np.ndarray, rotation: np.ndarray, shift: np.ndarray,
                           parts: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
        """One linearised fit of rotation, shift and expression together.

        The model is  R (source + sum parts * shapes - pivot) + pivot + shift.
        It is linear in the shift and the parts; the rotation is linearised as
        R (I + [w]x) for a small turn w. The expression parts are solved for
        directly (not as a step), with their bounds, by bounded least squares.
        """
        pivot = self.rig.pivot
        # The face with its current expression, relative to the pivot, before the head turns.
        body = self.rig.source_camera + np.tensordot(parts, self.shapes, axes=1) - pivot
        # d(R (I + [w]x) q)/dw = -R [q]x, one 3x3 block per point.
        cross = np.zeros(body.shape + (3,))
        cross[:, 0, 1], cross[:, 0, 2] = -body[:, 2], body[:, 1]
        cross[:, 1, 0], cross[:, 1, 2] = body[:, 2], -body[:, 0]
        cross[:, 2, 0], cross[:, 2, 1] = -body[:, 1], body[:, 0]
        turn_columns = -np.einsum("ij,njk->nik", rotation, cross)
        shift_columns = np.broadcast_to(np.eye(3), body.shape + (3,))
        part_columns = np.einsum("ij,pnj->nip", rotation, self.shapes)  # R shape, (N, 3, parts)
        weights = (self.coordinate_weights * self.unit)[None, :, None]
        matrix = np.concatenate([turn_columns, shift_columns, part_columns], axis=2) * weights
        matrix = matrix.reshape(-1, matrix.shape[2])
        # What the linear terms must explain: the observation minus the neutral face under R (no shift).
        neutral = (self.rig.source_camera - pivot) @ rotation.T + pivot
        rhs = ((observed - neutral) * weights[..., 0]).ravel()
        count = len(self.parts)
        ridge = np.zeros((count, 6 + count))
        ridge[:, 6:] = np.sqrt(self.settings.ridge) * np.eye(count)
        lower = np.concatenate([np.full(6, -np.inf), np.zeros(count)])
        upper = np.concatenate([np.full(6, np.inf), self.part_upper])
        # bvls solves the system many times over: it is given its QR reduction, the same least-squares
        # problem in 6 + parts rows instead of thousands (a frame's solve 15-19 -> 10-12 ms).
        q, r = np.linalg.qr(np.vstack([matrix, ridge]))
        solution = lsq_linear(r, q.T @ np.concatenate([rhs, np.zeros(count)]), bounds=(lower, upper), method="bvls").x
        turn, new_shift, new_parts = solution[:3], solution[3:6], solution[6:]
        rotation = rotation @ _rodrigues(turn)
        step = float(np.abs(turn).max() + np.abs(new_parts - parts).max())
        return rotation, new_shift, new_parts, step


def _expression_parts(rig: Rig) -> list[_ExpressionPart]:
    """The linear unknowns: one per sign a channel can take, with the rig's shape for it.

    The rig is linear in each sign of each expression channel, so the shape
    of a part is the rig's offset at value +1 (or -1); reading it through
    Rig.expression_offsets keeps the solver in step with the rig. A side
    whose shape moves nothing is no unknown, nor one that moves no landmark
    by UNREADABLE_SIDE beside a side of its channel that does.
    """
    parts = []
    for name in EXPRESSION_CHANNELS:
        channel = CHANNELS[CHANNEL_INDEX[name]]
        for sign, limit in ((1.0, channel.maximum), (-1.0, -channel.minimum)):
            if limit <= 0:
                continue
            unit = default_vector().astype(np.float64)
            unit[CHANNEL_INDEX[name]] = sign
            shape = rig.expression_offsets(unit)
            if np.abs(shape).max() > 0:
                parts.append(_ExpressionPart(CHANNEL_INDEX[name], sign, float(limit), shape))
    reach = [np.linalg.norm(part.shape, axis=1).max() / rig.pose.scale for part in parts]  # head units
    told = {part.channel for part, far in zip(parts, reach) if far >= UNREADABLE_SIDE}
    return [part for part, far in zip(parts, reach) if far >= UNREADABLE_SIDE or part.channel not in told]


def _rodrigues(turn: np.ndarray) -> np.ndarray:
    """Rotation matrix for a rotation vector (axis * angle in radians)."""
    angle = float(np.linalg.norm(turn))
    if angle < 1e-12:
        return np.eye(3)
    k = turn / angle
    skew = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    return np.eye(3) + np.sin(angle) * skew + (1 - np.cos(angle)) * skew @ skew


def rig_for_reference(landmarks: np.ndarray) -> Rig:
    """The rig of a reference frame: its landmarks and the head pose they show."""
    return Rig(np.asarray(landmarks, dtype=np.float64), estimate_head_pose(landmarks))
