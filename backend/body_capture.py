"""Body channels from video: how the performer's shoulders and chest move, read as breathing, shrugs, lean
and turn. Pure numpy and OpenCV, no I/O; capture.py reads the video and calls these.

MediaPipe Pose finds the shoulder joints on the reference frame only. Read again on every frame, its
joints wander by several pixels on their own (a deep breath lifts the shoulders by 5 % of their width,
about what Pose's wander is), so from there on three patches of the picture are followed optically: one
on each shoulder joint and one on the chest below the neck. Each frame's patch is compared with the
reference frame's by phase correlation (sub-pixel, insensitive to brightness), searching where the patch
was in the previous frame, so a slow lean that carries a shoulder far away is still followed.

The patches' motion is then explained by the engine's own body model (engines/body.py's BodyField):
the five body channels whose field moves the three patch centres most nearly as observed. So what the
capture reads is what the engine will draw: breathing lifts the chest and both shoulders, a shrug one
shoulder, a lean swings the shoulders sideways about the hips and tilts them, a turn swings the chest
sideways more than the shoulders and draws the shoulders in. The head's own motion is not part of the
fit: the captured channels are the torso's own motion. A camera that moves, or a performer who walks,
reads as lean and breathing; capture, like the face's, expects a camera that holds still.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from scipy.optimize import least_squares

from . import landmarks as lm
from .body_analysis import Body
from .engines.body import BodyField, BodyMotion
from .shared.channels import CHANNEL_INDEX, CHANNELS

BODY_CHANNELS = ("breathing", "shrug_l", "shrug_r", "torso_lean", "torso_turn")
PATCH_SIDE = 0.4  # shoulder widths: the side of each followed patch (large enough to hold the shoulder's outline)
PATCH_PIXELS = (24, 160)  # ... but at least and at most this many pixels
SHOULDER_OUTWARD = 0.12  # shoulder widths each shoulder patch lies beyond the joint, away from the neck
CHEST_BELOW = 0.55  # shoulder widths the chest patch lies below the middle of the shoulder line
MIN_CHEST_BELOW = 0.3  # ... and at least this, or the chest is taken as not shown
# The head and the neck move on their own: the patches do not look there. The face's outline scaled by
# this about its centre (room for hair and a turn), and the neck below the chin this many face widths wide.
HEAD_MARGIN = 1.35
NECK_HALF_WIDTH = 0.4
MIN_RESPONSE = 0.08  # phase correlation peaks under this are no match: the patch is lost for that frame
RENEW_BELOW = 0.3  # ... and under this, a match whose template is renewed from the frame
# How strongly the fit prefers no motion, per channel, for what three patches cannot tell apart (without
# the chest, breathing against two shrugs): a small pull toward 0, in units of each channel's range.
PULL_TO_REST = 0.002
# A fit that misses the patches' motion by more than this (root mean square, shoulder widths) explains
# nothing: the frame's body channels are left to interpolation.
MAX_MISS = 0.05
MAX_EVALUATIONS = 40  # of the body model per frame: the fit starts from the previous frame's, a few steps away
# A body fit within this share of a channel's range of its limit is "at the limit"; when that happens on more
# than SATURATED_FRAMES of the frames, the patches followed something else (hands, a laugh that shakes the
# camera): the body is not followed. (A deep breath may touch the limit at its peaks: a quarter of the frames.)
AT_LIMIT = 0.05
SATURATED_FRAMES = 0.5

_COLUMNS = [CHANNEL_INDEX[name] for name in BODY_CHANNELS]
_LOWER = np.array([CHANNELS[i].minimum for i in _COLUMNS])
_UPPER = np.array([CHANNELS[i].maximum for i in _COLUMNS])
_RANGES = _UPPER - _LOWER


def motion_of(values: np.ndarray) -> BodyMotion:
    """The BodyMotion of five body channel values (in BODY_CHANNELS order), with no carry from the head."""
    return BodyMotion(*(float(v) for v in values))


@dataclass(frozen=True)
class BodyPatches:
    """Where the followed patches lie on the reference frame: centres in pixels, (3, 2) or (2, 2) when the
    chest is below the picture; the patch side in pixels; and per patch the weights its pixels count with
    (a Hann window, 0 over the head and neck)."""

    centres: np.ndarray
    side: int
    windows: list[np.ndarray]


def not_head(face: np.ndarray, image_shape: tuple[int, ...]) -> np.ndarray:
    """(H, W) float: 0 over the head (with room for hair and a turn) and the neck, 1 elsewhere, soft-edged."""
    height, width = image_shape[:2]
    mask = np.zeros((height, width), np.uint8)
    outline = face[lm.FACE_OVAL, :2]
    centre = outline.mean(axis=0)
    cv2.fillPoly(mask, [np.round(centre + HEAD_MARGIN * (outline - centre)).astype(np.int32)], 1)
    face_width = float(np.linalg.norm(face[lm.FACE_LEFT_EDGE, :2] - face[lm.FACE_RIGHT_EDGE, :2]))
    chin = face[lm.CHIN, :2]
    half = NECK_HALF_WIDTH * face_width
    cv2.rectangle(mask, (int(chin[0] - half), int(centre[1])), (int(chin[0] + half), int(chin[1] + 0.8 * face_width)), 1, -1)
    soft = cv2.GaussianBlur(mask.astype(np.float32), (0, 0), max(1.0, 0.03 * face_width))
    return 1.0 - soft


def patches_for(body: Body, face: np.ndarray, image_shape: tuple[int, ...]) -> BodyPatches | None:
    """The shoulder patches, and the chest's where the picture shows it, on a frame of `image_shape` with
    the face `face` (landmarks in pixels); None when not even the shoulder patches fit inside it."""
    height, width = image_shape[:2]
    low, high = PATCH_PIXELS
    side = int(np.clip(round(PATCH_SIDE * body.width), low, high)) // 2 * 2
    half = side / 2
    left, right = body.shoulders.astype(np.float64)
    along = (left - right) / body.width
    down = np.array([-along[1], along[0]])
    bottom_room = (height - 1 - half - (left[1] + right[1]) / 2) / max(down[1], 1e-3)
    chest_below = min(CHEST_BELOW * body.width, bottom_room)
    outward = SHOULDER_OUTWARD * body.width * along
    centres = [left + outward, right - outward]
    if chest_below >= MIN_CHEST_BELOW * body.width:
        centres.append((left + right) / 2 + chest_below * down)
    centres = np.array(centres)
    # A joint near the picture's edge: its patch slides inward, up to half its side from the joint.
    placed = np.stack([np.clip(centres[:, 0], half, width - 1 - half), np.clip(centres[:, 1], half, height - 1 - half)], 1)
    anchors = np.array([left, right, *centres[2:]])
    inside = np.abs(placed - anchors).max(axis=1) <= half
    if not inside[:2].all():
        return None
    centres = placed[inside]
    hann = cv2.createHanningWindow((side, side), cv2.CV_64F)
    body_only = not_head(face, image_shape)
    windows = []
    for centre in centres:
        x0, y0 = (np.round(centre) - side // 2).astype(int)
        windows.append(hann * body_only[y0:y0 + side, x0:x0 + side])
    return BodyPatches(centres, side, windows)


def grey(rgb: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2GRAY).astype(np.float64)


class PatchFollower:
    """Follows the reference frame's patches through the frames of the same shot.

    Each patch is compared with a template: at first the reference frame's patch, renewed from the
    current frame when the match weakens (a turned or leaning body no longer looks like the reference),
    so that the template is always close to what the frame shows. Renewing only then, not every frame,
    keeps the drift of chained estimates small over a long take.
    """

    def __init__(self, reference_grey: np.ndarray, patches: BodyPatches):
        self.patches = patches
        self.templates = []  # per patch: the template image, where it was cut (its centre) and how far it had moved
        for centre in patches.centres:
            image, where = self._cut(reference_grey, centre)
            self.templates.append((image, where, np.zeros(2)))
        self.moved = np.zeros((len(patches.centres), 2))  # where each patch was last seen, pixels from the reference

    def _cut(self, image: np.ndarray, centre: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        """The patch around `centre` (moved inside the image where it would cross its edge) and where
        its centre ended up; None when the image is smaller than a patch."""
        side = self.patches.side
        if image.shape[0] < side or image.shape[1] < side:
            return None
        x0 = int(np.clip(np.round(centre[0]) - side // 2, 0, image.shape[1] - side))
        y0 = int(np.clip(np.round(centre[1]) - side // 2, 0, image.shape[0] - side))
        return image[y0:y0 + side, x0:x0 + side], np.array([x0 + side // 2, y0 + side // 2], np.float64)

    def __call__(self, frame_grey: np.ndarray) -> np.ndarray:
        """(patches, 2): how far each patch's content moved from the reference frame, in pixels (NaN: lost)."""
        moved = np.full((len(self.templates), 2), np.nan)
        for index, centre in enumerate(self.patches.centres):
            cut = self._cut(frame_grey, centre + self.moved[index])
            if cut is None:
                continue
            patch, where = cut
            template, template_where, template_moved = self.templates[index]
            # Copies: OpenCV multiplies float64 inputs by the window in place (the template would fade).
            shift, response = cv2.phaseCorrelate(template.copy(), patch.copy(), window=self.patches.windows[index])
            if response < MIN_RESPONSE:
                continue
            moved[index] = template_moved + (where - template_where) + np.array(shift)
            self.moved[index] = moved[index]
            if response < RENEW_BELOW:
                self.templates[index] = (patch.copy(), where, moved[index].copy())
        return moved


def solve_body(field: BodyField, centres: np.ndarray, moved: np.ndarray,
               start: np.ndarray | None = None) -> np.ndarray:
    """The five body channel values (BODY_CHANNELS order) whose field moves the patch `centres` (photo
    pixels, (N, 2)) most nearly by `moved` ((N, 2) pixels; NaN rows are left out).

    NaN when no patch is left, or when no body motion explains what the patches did (a hand passing in
    front, hair swinging through: the fit misses by more than MAX_MISS). Without the chest patch (the
    chest below the picture, or lost in this frame) a turn cannot be told from a lean, and it is left
    at 0.
    """
    seen = np.isfinite(moved).all(axis=1)
    if not seen.any():
        return np.full(len(BODY_CHANNELS), np.nan)
    points = centres[seen] - field.origin
    target = moved[seen] / field.width
    free = np.ones(len(BODY_CHANNELS), bool)
    if len(seen) < 3 or not seen[2]:  # the chest patch (third) not there, or lost in this frame
        free[BODY_CHANNELS.index("torso_turn")] = False

    def values_of(unknowns: np.ndarray) -> np.ndarray:
        values = np.zeros(len(BODY_CHANNELS))
        values[free] = unknowns
        return values

    terms = field.terms_at(points)  # (the field's motion-free part: the same for every step of the fit)

    def residual(unknowns: np.ndarray) -> np.ndarray:
        shift = field.displacement(terms, motion_of(values_of(unknowns))) / field.width
        return np.concatenate([(shift - target).ravel(), PULL_TO_REST * unknowns / _RANGES[free]])

    start = np.zeros(len(BODY_CHANNELS)) if start is None or not np.isfinite(start).all() else start
    fit = least_squares(residual, np.clip(start, _LOWER, _UPPER)[free], bounds=(_LOWER[free], _UPPER[free]),
                        x_scale=_RANGES[free] / 2, max_nfev=MAX_EVALUATIONS)
    miss = np.sqrt(np.mean(fit.fun[:target.size] ** 2))
    return values_of(fit.x) if miss <= MAX_MISS else np.full(len(BODY_CHANNELS), np.nan)


def saturated_share(values: np.ndarray) -> float:
    """The share of frames ((frames, 5) body channel values; NaN frames left out) where some channel is at
    its limit (AT_LIMIT). Real breathing, shrugs and leans stay well inside their ranges."""
    values = np.asarray(values, np.float64)
    found = np.isfinite(values).all(axis=1)
    if not found.any():
        return 0.0
    at_limit = np.minimum(values[found] - _LOWER, _UPPER - values[found]) < AT_LIMIT * _RANGES
    return float(at_limit.any(axis=1).mean())
