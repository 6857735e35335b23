"""The upper body's motion: the body channels -> a smooth displacement field over the person below the head.
Pure numpy (and OpenCV's resampling), no I/O; engines/body_layer.py applies it to frames.

The field is driven by the shoulder joints Pose found (enliven.body_analysis), in the body's own frame:
`u` runs along the shoulder line toward the subject's left (the image's right), `v` down from it, both in
pixels; W is the shoulder width.

  * breathing lifts the neck and the chest (fading out down the torso), lifts both shoulders a little more
    and widens the chest;
  * shrug_l / shrug_r lift one shoulder: a bump around the joint, the arm below and the top of the shoulder
    above it, fading toward the neck;
  * torso_lean turns the upper body about the hips (estimated below the photo where it does not show
    them): a rotation, full at the shoulders and above (the head rides along), none at the hips;
  * torso_turn turns the torso about the spine: a cylinder's surface turning, its front (the chest) moving
    sideways most, the shoulders drawn in a little; the neck and head ride on the spine's front;
  * the head's own yaw, roll and pitch carry a little into the torso (HEAD_*_CARRY), so that a turning head
    takes its neck and shoulders along instead of stretching a rubber neck over a still body; the carry
    fades out up the neck, so the head itself stays where the rig puts it. It applies while the body moves
    (idle-alive always breathes); a motion with no body channel leaves the body still.

Everything is multiplied by an envelope that is 1 over the torso and 0 at the body region's border (so at
the photo's edges where the body is cut off), so the field is the identity there.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from ..rig import smoothstep
from ..shared.channels import CHANNEL_INDEX
from .warp_math import upsampled_to_box

WORKING_SIDE = 96  # the field is computed on a grid at most this large over the body region (it is smooth)
MOVING_EPSILON = 0.05  # pixels: displacement below this counts as still
MASK_HAZE = 0.03  # person mask values this close to 0 or 1 are taken as 0 or 1
INVERSE_STEPS = 3  # fixed-point steps from the forward field to the backward map

BREATH_SHOULDER_RISE = 0.05  # shoulder widths the shoulders rise at breathing 1
BREATH_NECK_RISE = 0.03  # shoulder widths the neck, head and top of the chest rise at breathing 1
BREATH_WIDEN = 0.03  # the chest's relative widening at breathing 1
SHRUG_RISE = 0.15  # shoulder widths a shoulder rises at shrug 1
HEAD_YAW_CARRY = 0.12  # degrees of torso turn per degree of head yaw
HEAD_ROLL_CARRY = 0.06  # degrees of torso lean per degree of head roll
HEAD_PITCH_CARRY = 0.0008  # shoulder widths the neck rises per degree of head pitch
TORSO_HALF_WIDTH = 0.62  # the torso's half width, shoulder widths (the cylinder that turns)
TORSO_DEPTH = 0.35  # how far the chest lies in front of the spine, shoulder widths
NECK_DEPTH = 0.1  # how far the neck lies in front of the spine, shoulder widths
HIPS_BELOW = 1.7  # shoulder widths from the shoulders down to hips the photo does not show
EDGE_TAPER = 0.12  # shoulder widths over which the field falls to 0 at the region's border inside the photo
# ... and at the photo's own edges (left, top, right, bottom): gentler at its sides and bottom, where the body
# is cut off; none at its top, where the field tapered as gently sheared the top of the hair back toward where
# it was in a lean (s12 at 768 px, torso_lean 8: the hair streaked over a third of a shoulder width down).
PHOTO_EDGE_TAPERS = (0.35, 0.0, 0.35, 0.35)

_BODY = ("breathing", "shrug_l", "shrug_r", "torso_lean", "torso_turn")
_HEAD = ("head_yaw", "head_roll", "head_pitch")


@dataclass(frozen=True)
class BodyMotion:
    """What the body does in one frame: the body channels, and the share of the head's motion the neck and
    shoulders take (carried_*: it fades out up the neck, so the head stays where the rig puts it)."""

    breathing: float = 0.0
    shrug_l: float = 0.0
    shrug_r: float = 0.0
    lean_deg: float = 0.0
    turn_deg: float = 0.0
    carried_lean_deg: float = 0.0  # from the head's roll
    carried_turn_deg: float = 0.0  # from the head's yaw
    carried_rise: float = 0.0  # shoulder widths, from the head's pitch

    @classmethod
    def from_values(cls, values: np.ndarray) -> "BodyMotion":
        breathing, shrug_l, shrug_r, lean, turn = (float(values[CHANNEL_INDEX[name]]) for name in _BODY)
        if not any((breathing, shrug_l, shrug_r, lean, turn)):
            # A motion that leaves the body alone (a head-only one: talking, a showcase) keeps the body
            # still: moving the whole torso for the head's carry costs more than the head itself.
            return cls()
        yaw, roll, pitch = (float(values[CHANNEL_INDEX[name]]) for name in _HEAD)
        return cls(breathing, shrug_l, shrug_r, lean, turn, HEAD_ROLL_CARRY * roll, HEAD_YAW_CARRY * yaw,
                   HEAD_PITCH_CARRY * pitch)

    @property
    def still(self) -> bool:
        return not any((self.breathing, self.shrug_l, self.shrug_r, self.lean_deg, self.turn_deg,
                        self.carried_lean_deg, self.carried_turn_deg, self.carried_rise))


@dataclass(frozen=True)
class FieldTerms:
    """The body field's factors at a set of points that do not depend on the motion ((N,) arrays, but
    `bumps`, one per shoulder, and `about_pivot`, (N, 2)): made once for the working grid, each frame's
    field is a few products of them (BodyField.displacement)."""

    carried: np.ndarray  # how much of the head's carry a point takes: none from the chin up
    chest: np.ndarray  # how much of the neck's rise: all of it above the shoulder line, none down the torso
    bumps: tuple[np.ndarray, np.ndarray]  # how much of each shoulder's rise
    widening: np.ndarray  # sideways shift at full breath, over BREATH_WIDEN
    turn_across: np.ndarray  # the torso's turn: the part that scales with cos - 1 ...
    turn_depth: np.ndarray  # ... and the part that scales with sin
    turning: np.ndarray  # how much of the turn: none from the hips down
    about_pivot: np.ndarray  # (N, 2) the point about the lean's pivot
    leaning: np.ndarray  # how much of the lean
    envelope: np.ndarray  # 1 over the torso, 0 at the region's border


class BodyField:
    """One subject's body motion field. Coordinates are the body region's pixels."""

    def __init__(self, shoulders: np.ndarray, hips: np.ndarray | None, region: tuple[int, int, int, int],
                 image_size: tuple[int, int], chin: np.ndarray | None = None):
        x0, y0, x1, y1 = region
        self.size = (x1 - x0, y1 - y0)
        self.origin = origin = np.array([x0, y0], np.float64)  # the region's top left, photo pixels
        left, right = (np.asarray(point, np.float64) - origin for point in shoulders)
        self.width = float(np.linalg.norm(left - right))
        self.neck = (left + right) / 2
        self.along = (left - right) / self.width  # toward the image's right
        self.down = np.array([-self.along[1], self.along[0]])
        # The head's carry fades out between the shoulder line and the chin: the head stays the rig's.
        self.chin_v = (min(-0.1 * self.width, float((np.asarray(chin, np.float64) - origin - self.neck) @ self.down))
                       if chin is not None else -0.5 * self.width)
        self.shoulder_u = np.array([(left - self.neck) @ self.along, (right - self.neck) @ self.along])
        self.pivot = (np.asarray(hips, np.float64).mean(axis=0) - origin if hips is not None
                      else self.neck + HIPS_BELOW * self.width * self.down)
        # Where the torso stops turning and leaning: the hips, or the photo's bottom if that comes first.
        bottom = (self.size[1] - 1 - self.neck[1]) / max(self.down[1], 1e-3)
        self.v_low = max(0.4 * self.width, min((self.pivot - self.neck) @ self.down, bottom))
        # The taper at each side (left, top, right, bottom), where the region ends inside the photo or the
        # photo itself ends.
        at_edge = (x0 <= 0, y0 <= 0, x1 >= image_size[0], y1 >= image_size[1])
        self.tapers = [(photo_taper if edge else EDGE_TAPER) * self.width
                       for edge, photo_taper in zip(at_edge, PHOTO_EDGE_TAPERS)]
        self.scale = min(1.0, WORKING_SIDE / max(self.size))
        self.work_size = (max(2, round(self.size[0] * self.scale)), max(2, round(self.size[1] * self.scale)))
        xs = (np.arange(self.work_size[0]) + 0.5) / self.scale - 0.5
        ys = (np.arange(self.work_size[1]) + 0.5) / self.scale - 0.5
        self.grid = np.dstack(np.meshgrid(xs, ys)).reshape(-1, 2)  # the working grid's points
        self._grid_terms = self.terms_at(self.grid)  # where every frame's field is computed (backward)
        # Each working grid point's own (column, row), where backward's steps start reading the field.
        self._grid_indices = np.meshgrid(np.arange(self.work_size[0], dtype=np.float32),
                                         np.arange(self.work_size[1], dtype=np.float32))

    @classmethod
    def of(cls, body, chin: np.ndarray, image_shape: tuple[int, ...]) -> "BodyField":
        """The field of an analysed body (body_analysis.Body) on a photo or frame of `image_shape`, its
        face's chin at `chin` (pixels)."""
        return cls(body.shoulders, body.hips, body.region, (image_shape[1], image_shape[0]), chin)

    def forward(self, points: np.ndarray, motion: BodyMotion) -> np.ndarray:
        """(N, 2) where each of `points` ((N, 2) region pixels) moves to, minus where it is."""
        return self.displacement(self.terms_at(points), motion)

    def terms_at(self, points: np.ndarray) -> FieldTerms:
        """The field's factors at `points` that do not depend on the motion (see FieldTerms)."""
        w = self.width
        relative = points - self.neck
        u, v = relative @ self.along, relative @ self.down
        bumps = []
        for shoulder_u in self.shoulder_u:
            # The shoulder and the whole upper arm below it rise; toward the neck the rise fades.
            outward = np.sign(shoulder_u) * (u - shoulder_u) / w
            across = np.where(outward < 0, np.exp(-0.5 * (outward / 0.3) ** 2), 1.0)
            arm = smoothstep(-0.2, 0.1, outward)
            sigma_v = np.where(v > 0, (0.45 + 1.15 * arm) * w, 0.5 * w)
            bumps.append(across * np.exp(-0.5 * (v / sigma_v) ** 2))
        above = smoothstep(0.05 * w, -0.3 * w, v)  # the neck and head, riding on the spine
        across = np.clip(u / (TORSO_HALF_WIDTH * w), -1.0, 1.0)
        return FieldTerms(
            carried=smoothstep(self.chin_v, 0.3 * self.chin_v, v),  # the head's carry: none from the chin up
            chest=(1 - smoothstep(0.0, 1.3 * w, v)) * (1 - smoothstep(0.6 * w, 1.0 * w, np.abs(u))),
            bumps=tuple(bumps),
            widening=(u * smoothstep(-0.1 * w, 0.25 * w, v) * (1 - smoothstep(0.7 * w, 1.5 * w, v))
                      * (1 - smoothstep(0.8 * w, 1.2 * w, np.abs(u)))),
            turn_across=u * (1 - above),
            turn_depth=TORSO_DEPTH * w * np.sqrt(1 - across**2) * (1 - above) + NECK_DEPTH * w * above,
            turning=1 - smoothstep(0.2 * w, self.v_low, v),
            about_pivot=points - self.pivot,
            leaning=1 - smoothstep(0.0, self.v_low, v),
            envelope=self._envelope(points, u),
        )

    def displacement(self, terms: FieldTerms, motion: BodyMotion) -> np.ndarray:
        """(N, 2) the field at the points `terms` were made for, moved by `motion`."""
        w = self.width
        # Up: the neck and chest rise with the breath (fading down the torso), each shoulder by its own rise.
        neck_rise = (BREATH_NECK_RISE * motion.breathing + motion.carried_rise) * w  # at the shoulder line
        lift = (BREATH_NECK_RISE * motion.breathing + motion.carried_rise * terms.carried) * w * terms.chest
        for shoulder_u, shrug, bump in zip(self.shoulder_u, (motion.shrug_l, motion.shrug_r), terms.bumps):
            rise = (BREATH_SHOULDER_RISE * motion.breathing + SHRUG_RISE * shrug) * w
            chest_at_shoulder = 1 - smoothstep(0.6 * w, 1.0 * w, abs(shoulder_u))
            lift = lift + (rise - neck_rise * chest_at_shoulder) * bump
        # Sideways: the chest widens with the breath; the torso turns about the spine.
        sideways = BREATH_WIDEN * motion.breathing * terms.widening
        if motion.turn_deg or motion.carried_turn_deg:
            turn = np.radians(motion.turn_deg + motion.carried_turn_deg * terms.carried)
            sideways = sideways + (terms.turn_across * (np.cos(turn) - 1) + terms.turn_depth * np.sin(turn)) * terms.turning
        moved = self.along * sideways[:, None] - self.down * lift[:, None]
        if motion.lean_deg or motion.carried_lean_deg:
            lean = np.radians(motion.lean_deg + motion.carried_lean_deg * terms.carried)
            cos, sin = np.cos(lean), np.sin(lean)
            about = terms.about_pivot
            rotated = np.stack([cos * about[:, 0] - sin * about[:, 1], sin * about[:, 0] + cos * about[:, 1]], axis=1)
            moved = moved + (rotated - about) * terms.leaning[:, None]
        return moved * terms.envelope[:, None]

    def _envelope(self, points: np.ndarray, u: np.ndarray) -> np.ndarray:
        """1 over the torso, 0 beyond it and at the region's border (the field is the identity there), except
        along the photo's top edge."""
        width, height = self.size
        x, y = points[:, 0], points[:, 1]
        border = 1.0
        for inside, taper in zip((x, y, width - 1 - x, height - 1 - y), self.tapers):
            if taper > 0:  # (none: the field goes on past the photo's edge, unbroken)
                border = border * smoothstep(-0.5, taper, inside)
        return border * (1 - smoothstep(0.8 * self.width, 1.15 * self.width, np.abs(u)))

    def backward(self, motion: BodyMotion) -> np.ndarray:
        """(work h, work w, 2) float32: per working grid point, the offset to where its pixel comes from (the
        forward field inverted by fixed-point steps; it bends gently, so they converge).

        The forward field is computed once, on the working grid, from factors cached for it (FieldTerms);
        each step reads it between the grid's points bicubically. Computing it afresh at each step's
        points cost 7-9 ms a frame a body, most of a breathing body's work besides its resampling (now
        about 2). A breathing torso's pixels land within 0.1 pixel of where the exact inverse puts them
        on 95 % of the grid, 0.5 at most (where the field tapers off at the region's edge)."""
        width, height = self.work_size
        forward = self.displacement(self._grid_terms, motion).reshape(height, width, 2).astype(np.float32)
        columns, rows = self._grid_indices
        scale = np.float32(self.scale)  # working grid points per region pixel
        offset = np.zeros_like(forward)
        for _ in range(INVERSE_STEPS):
            offset = -cv2.remap(forward, columns + offset[..., 0] * scale, rows + offset[..., 1] * scale,
                                cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)
        return offset

    def moving_box(self, backward: np.ndarray) -> tuple[int, int, int, int] | None:
        """Region pixels around every working point that moves (None: nothing does), padded by a cell."""
        moving = (np.abs(backward[..., 0]) > MOVING_EPSILON) | (np.abs(backward[..., 1]) > MOVING_EPSILON)
        rows, cols = np.flatnonzero(moving.any(axis=1)), np.flatnonzero(moving.any(axis=0))
        if not len(rows):
            return None
        width, height = self.size
        return (max(0, int((cols[0] - 1) / self.scale)), max(0, int((rows[0] - 1) / self.scale)),
                min(width, int(np.ceil((cols[-1] + 2) / self.scale))), min(height, int(np.ceil((rows[-1] + 2) / self.scale))))

    def where_from(self, backward: np.ndarray, box: tuple[int, int, int, int]) -> tuple[np.ndarray, np.ndarray]:
        """For each pixel of `box`, where in the region its colour comes from: the working field upsampled
        (as OpenCV's fixed-point remap maps, shared by every remap of the frame). The grid is linear, so
        upsampling the absolute positions is upsampling the field and adding the pixel's own position."""
        absolute = backward + self.grid.reshape(backward.shape).astype(np.float32)
        return cv2.convertMaps(upsampled_to_box(absolute, self.scale, box), None, cv2.CV_16SC2)


def clean_mask(mask: np.ndarray) -> np.ndarray:
    """A person mask with the segmentation's faint haze over the backdrop (and its faint doubts inside the
    person) removed: exactly 0 and 1 there, so that only its edge pays for blending."""
    return np.clip((mask - MASK_HAZE) / (1 - 2 * MASK_HAZE), 0.0, 1.0).astype(np.float32)
