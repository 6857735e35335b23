"""The rig: motion channel values -> target landmarks. Pure numpy, no I/O.

Following DESIGN.md: the source landmarks are taken into a head-aligned frame
(the source pose removed; one unit = the distance between the outer eye
corners, so every shape scales with the face), expression shapes are added
there, the head is turned about a pivot in the neck, moved, and projected back
onto the image.

Expression shapes are per-subject displacement fields built once from the
subject's own neutral landmarks (a blink closes *this* eye onto *its* lower
lid), so evaluating the rig per frame is one small matrix product. Linear
shapes also make the capture solver (the rig's inverse) a bounded linear
least-squares problem. Two-sided channels (brows, smile, jaw) have one shape for
positive values and another for negative ones.

At all-default channel values the targets equal the source landmarks exactly.
"""
from __future__ import annotations

import numpy as np

from . import landmarks as lm
from .geometry import HeadPose, camera_to_image, image_to_camera, inside_polygon, rotation_from_angles
from .shared.channels import CHANNEL_INDEX, CHANNEL_NAMES, default_vector
from .shared.mouth import MouthOpening

# The head turns about a point in the neck, below and behind the eyes (head units).
PIVOT_HEAD = np.array([0.0, -0.75, -1.1])
# A photo's mouth open this much (inner-lip gap / mouth width) opens further with lips parting evenly out to
# its own rounded corners; one open less, or closed, parts as an ellipse (_jaw_weight). On d19's "O" (0.84)
# the ellipse made a tall, pointed egg that MediaPipe read as closed lips.
LIP_TAPER_UNTIL = (0.15, 0.5)
# The jaw swings about a point below and behind the mouth corners (head units).
PIVOT_JAW = np.array([0.0, -0.3, -1.0])
# lips_part 1 parts the lips this share of the mouth's width without the jaw, as talkers part them: tracked
# on ten training clips of speech, the upper inner lip rose 0.39 of the parting and the lower one dropped 0.61,
# while the chin dropped 0.15 of it (jaw_open alone, which drops the chin with the lower lip, could match real
# lips only by dropping the chin too far, and so opened them about two thirds as far as real ones).
LIPS_PART_GAP = 0.3
UPPER_LIP_SHARE = 0.4  # ... the upper lip's share of it
LIP_SKIN_STRETCH = 0.6  # ... a lip moving at most this share of the way to the nose or the chin
SEAL_UPPER_SHARE = 0.3  # sealing an open mouth: the share of the gap the upper lip closes (the jaw does the rest)
SEAL_PRESS = 0.08  # sealed lips overlap by this share of the photo's gap on each side ...
SEAL_PRESS_LIP = 0.25  # ... and by at most this share of the upper lip's thickness
SEAL_CORNER_RISE = 1.0  # sealing, a corner below the line where the lips meet rises this share of the way to it
SEAL_CORNER_CLOSING = 0.7  # skin below the mouth's corners closes at most this share of its distance to them
GAZE_X_TRAVEL = 0.3  # gaze_x 1: the iris moves this share of the eye's width sideways
GAZE_Y_TRAVEL = 0.16  # gaze_y 1: the iris moves this share of the eye's width up
# ... but sideways, in the picture, its centre stops this many iris radii short of the eye's corner. An iris
# that already looks toward a corner, or a turned face's eye whose depth the tracker misjudges, was otherwise
# carried past the corner, where the lids clipped it away and the eye showed no pupil (2007_007763's faces,
# gaze_x -1). A centred iris has room to spare: about 0.4 eye widths.
GAZE_CORNER_MARGIN = 0.5
# ... and at least this many pixels: on an eye a few pixels wide half a radius is under a pixel, within the
# tracker's reach on its corner, and the iris was carried into the corner's last pixel, where the lids hid more
# than half of it and its dark dot faded (2007_007763 #2, gaze_x -1: 0.44 of a 2.9 px iris left showing).
GAZE_CORNER_MARGIN_PX = 1.5
# The upper lid's share of the iris's vertical travel. Real lids follow closely: looking down, the lid drops
# with the iris and no white shows above it; looking up, it lifts off the iris a little.
UPPER_LID_FOLLOWS_GAZE_DOWN = 1.0
UPPER_LID_FOLLOWS_GAZE_UP = 0.8
# ... but looking down a lid point drops at most this share of the eye's opening where it is: near the
# corners the opening is narrow, and a lid point moved as far as the middle's went past the lower lid (the
# mesh folded there and drew the lashes as a sawtooth at both corners). On a narrow eye (opening under
# 0.27 eye widths) this holds the middle back too, and a little white shows above the iris.
LID_FOLLOW_OPENING_SHARE = 0.6
# The lid's skin up to the crease goes with it, as with a blink, so the lash line is not stretched into a band.
LID_SKIN_FOLLOWS_GAZE = 0.5
# The lower lid's share of the iris's vertical travel: looking down it drops a little, under the iris's foot,
# and looking up it rises a little after it (held still, the iris sank behind it, or a band of white showed).
LOWER_LID_FOLLOWS_GAZE_DOWN = 0.35
LOWER_LID_FOLLOWS_GAZE_UP = 0.3
# The skin under the lower lid follows it this much, fading over this reach (head units), in a blink or a gaze.
LOWER_LID_SKIN_FOLLOWS = 0.3
LOWER_LID_SKIN_REACH = 0.06
LIDS_MEET_TOLERANCE = 1e-4  # head units: an upper lid this little below its lower lid still only meets it

EXPRESSION_CHANNELS = ("blink_l", "blink_r", "gaze_x", "gaze_y", "brow_l", "brow_r",
                       "brow_inner_up", "jaw_open", "smile_l", "smile_r", "pucker", "wide", "lips_part")


def smoothstep(edge0: float, edge1: float, x: np.ndarray) -> np.ndarray:
    t = np.clip((x - edge0) / (edge1 - edge0), 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def _gaussian(points: np.ndarray, centre: np.ndarray, sigma: float) -> np.ndarray:
    return np.exp(-np.sum((points - centre) ** 2, axis=-1) / (2.0 * sigma**2))


def _spread(points: np.ndarray, handles: np.ndarray, handle_deltas: np.ndarray, sigma: float) -> np.ndarray:
    """Smoothly spread handle displacements to every point, fading with distance (Shepard weights)."""
    weights = np.exp(-np.sum((points[:, None, :] - handles[None]) ** 2, axis=-1) / (2.0 * sigma**2))
    blended = weights @ handle_deltas / (weights.sum(axis=1, keepdims=True) + 1e-12)
    return blended * weights.max(axis=1, keepdims=True)


def _height_under(points: np.ndarray, curve: np.ndarray) -> np.ndarray:
    """The y of `curve` ((M, 2+) points, any order) at each of `points`' x (constant past its ends)."""
    order = np.argsort(curve[:, 0])
    return np.interp(points[:, 0], curve[order, 0], curve[order, 1])


def _side_weight(points: np.ndarray, side_sign: float) -> np.ndarray:
    """1 on one side of the face's midline, 0 on the other, blending across the middle."""
    return smoothstep(-0.08, 0.08, side_sign * points[:, 0])


def _eye_shapes(head: np.ndarray, side: str) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """(blink, (sideways, up, down)) of one eye: the shapes of blink 1, gaze_x 1 (toward +x, the subject's
    left), gaze_y 1 and gaze_y -1, in head units."""
    upper, lower = map(np.array, lm.eye_lids(side))
    iris = np.array(lm.RIGHT_IRIS if side == "right" else lm.LEFT_IRIS)

    # Blink: both lids meet on a line a fifth of the way up from the lower lid.
    closed_line = head[lower] + 0.2 * (head[upper] - head[lower])
    blink = np.zeros_like(head)
    blink[upper] = closed_line - head[upper]
    blink[lower] = closed_line - head[lower]
    blink[iris, 1] = _height_under(head[iris], closed_line) - head[iris, 1]
    # The skin around the eye follows the lids partly, so nothing tears.
    moving = np.concatenate([upper, lower, iris])
    others = np.setdiff1d(np.arange(len(head)), moving)
    near_upper = (np.linalg.norm(head[others, None] - head[upper][None], axis=-1).min(axis=1)
                  < np.linalg.norm(head[others, None] - head[lower][None], axis=-1).min(axis=1))
    upper_spread = 0.8 * _spread(head[others], head[upper], blink[upper], 0.07)
    lower_spread = LOWER_LID_SKIN_FOLLOWS * _spread(head[others], head[lower], blink[lower], LOWER_LID_SKIN_REACH)
    blink[others] = np.where(near_upper[:, None], upper_spread, lower_spread)

    # Gaze: the iris slides inside the eye; the upper lid, and its skin, follow vertical gaze.
    eye_width = np.linalg.norm(head[upper[0]] - head[upper[-1]])
    sideways = np.zeros_like(head)
    sideways[iris, 0] = GAZE_X_TRAVEL * eye_width
    opening = np.clip(head[upper, 1] - _height_under(head[upper], head[lower]), 0.0, None)
    vertical = []
    for sign, follows in ((1.0, UPPER_LID_FOLLOWS_GAZE_UP), (-1.0, UPPER_LID_FOLLOWS_GAZE_DOWN)):
        shape = np.zeros_like(head)
        shape[iris, 1] = sign * GAZE_Y_TRAVEL * eye_width
        lid = np.full(len(upper), follows * GAZE_Y_TRAVEL * eye_width)
        if sign < 0:  # dropping toward the lower lid
            lid = np.minimum(lid, LID_FOLLOW_OPENING_SHARE * opening)
        shape[upper[1:-1], 1] = sign * lid[1:-1]
        lower_follows = LOWER_LID_FOLLOWS_GAZE_UP if sign > 0 else LOWER_LID_FOLLOWS_GAZE_DOWN
        shape[lower[1:-1], 1] = sign * lower_follows * GAZE_Y_TRAVEL * eye_width
        shape[others] = np.where(
            near_upper[:, None], LID_SKIN_FOLLOWS_GAZE * _spread(head[others], head[upper], shape[upper], 0.07),
            LOWER_LID_SKIN_FOLLOWS * _spread(head[others], head[lower], shape[lower], LOWER_LID_SKIN_REACH))
        vertical.append(shape)
    return blink, (sideways, *vertical)


def _brow_shapes(head: np.ndarray, side_sign: float) -> tuple[np.ndarray, np.ndarray]:
    """(raise, lower) shapes of one brow."""
    brow = np.array(lm.LEFT_BROW if side_sign > 0 else lm.RIGHT_BROW)
    eye_region = np.array(lm.LEFT_EYE_UPPER + lm.LEFT_EYE_LOWER + lm.RIGHT_EYE_UPPER + lm.RIGHT_EYE_LOWER
                          + lm.LEFT_IRIS + lm.RIGHT_IRIS)
    outward = np.clip(side_sign * head[brow, 0] / 0.5, 0.0, 1.0)  # 0 at the inner end, 1 at the outer
    raise_deltas = np.zeros((len(brow), 3))
    raise_deltas[:, 1] = 0.09 + 0.05 * outward
    lower_deltas = np.zeros((len(brow), 3))
    lower_deltas[:, 0] = -side_sign * 0.03 * (1.0 - outward)
    lower_deltas[:, 1] = -0.06 - 0.03 * (1.0 - outward)
    # Skin between brow and lashes stretches evenly: the lid margin stays put and
    # nothing below the upper lid moves, so the lashes are never smeared upward.
    upper_lid = head[list(lm.LEFT_EYE_UPPER if side_sign > 0 else lm.RIGHT_EYE_UPPER)]
    to_lid = np.linalg.norm(head[:, None] - upper_lid[None], axis=-1).min(axis=1)
    above_lid = head[:, 1] > upper_lid[:, 1].min()
    lid_falloff = smoothstep(0.02, 0.2, to_lid) * above_lid
    shapes = []
    for deltas in (raise_deltas, lower_deltas):
        shape = _spread(head, head[brow], deltas, 0.12) * (_side_weight(head, side_sign) * lid_falloff)[:, None]
        shape[brow] = deltas
        shape[eye_region] = 0.0
        shapes.append(shape)
    return shapes[0], shapes[1]


def _brow_inner_shape(head: np.ndarray) -> np.ndarray:
    inner = np.array(lm.RIGHT_BROW_INNER + lm.LEFT_BROW_INNER)
    deltas = np.zeros((len(inner), 3))
    deltas[:, 1] = 0.09
    shape = _spread(head, head[inner], deltas, 0.1)
    shape[inner] = deltas
    shape[np.array(lm.LEFT_EYE_UPPER + lm.LEFT_EYE_LOWER + lm.RIGHT_EYE_UPPER + lm.RIGHT_EYE_LOWER)] = 0.0
    return shape


def _mouth_width(head: np.ndarray) -> float:
    return float(np.linalg.norm(head[lm.MOUTH_LEFT_CORNER] - head[lm.MOUTH_RIGHT_CORNER]))


def _jaw_weight(head: np.ndarray) -> np.ndarray:
    """How much each point goes with the lower jaw: 1 on the lower lip and chin, 0 on the upper lip and above."""
    width = _mouth_width(head)
    corner_y = 0.5 * (head[lm.MOUTH_LEFT_CORNER, 1] + head[lm.MOUTH_RIGHT_CORNER, 1])
    weight = smoothstep(corner_y + 0.12, corner_y - 0.15, head[:, 1])
    # Inside the mouth's width, split exactly along the line between the lips.
    upper_inner, lower_inner = np.array(lm.LIPS_UPPER_INNER), np.array(lm.LIPS_LOWER_INNER)
    mid_y = _height_under(head, 0.5 * (head[upper_inner] + head[lower_inner]))
    right_x, left_x = head[lm.MOUTH_RIGHT_CORNER, 0], head[lm.MOUTH_LEFT_CORNER, 0]
    in_mouth = (head[:, 0] > right_x) & (head[:, 0] < left_x) & (np.abs(head[:, 1] - mid_y) < 0.35 * width)
    weight = np.where(in_mouth, (head[:, 1] < mid_y).astype(float), weight)
    # The lips: the lower goes with the jaw and the upper stays in the middle, and toward the corners (which
    # go half way) each takes more of the other's share, so that closed lips part as half an ellipse each
    # side of the line they meet on. (With the lips' weights 1 and 0 out to their corners, a closed mouth
    # opened into a box: straight sides from the ends of the still upper lip down to the corners.) A mouth
    # open in the photo has its own rounded corners: opened further, it keeps them (LIP_TAPER_UNTIL).
    taper = 1.0 - smoothstep(*LIP_TAPER_UNTIL, lm.mouth_openness(head))
    for rings, side in ((lm.LIPS_UPPER_RINGS, -1.0), (lm.LIPS_LOWER_RINGS, 1.0)):
        for ring in rings:
            ends_x = head[[ring[0], ring[-1]], 0]
            across = np.clip(np.abs(head[list(ring), 0] - ends_x.mean()) / (0.5 * np.ptp(ends_x) + 1e-9), 0.0, 1.0)
            weight[list(ring)] = 0.5 + side * 0.5 * (taper * np.sqrt(1.0 - across**2) + (1.0 - taper))
    weight[[ring[end] for ring in lm.LIPS_UPPER_RINGS for end in (0, -1)]] = 0.5  # the corners, half way
    return weight


def _jaw_shape(head: np.ndarray) -> np.ndarray:
    """jaw_open > 0: the lower jaw swings down about the jaw joint; the upper lip stays."""
    width = _mouth_width(head)
    lower_lip = head[lm.MOUTH_INNER_BOTTOM] - PIVOT_JAW
    angle = float(np.clip(0.5 * width / max(lower_lip[2], 0.3), 0.15, 0.6))  # lower lip drops ~half a mouth width
    cos, sin = np.cos(angle), np.sin(angle)
    rotation = np.array([[1, 0, 0], [0, cos, -sin], [0, sin, cos]])  # chin down and back
    swung = (head - PIVOT_JAW) @ rotation.T + PIVOT_JAW - head
    return swung * _jaw_weight(head)[:, None]


def _lips_part_shape(head: np.ndarray) -> np.ndarray:
    """lips_part 1: the lips part by up to LIPS_PART_GAP mouth widths by their own muscles, the upper rising
    UPPER_LIP_SHARE of that and the lower dropping the rest, while the jaw, the chin and the nose stay.

    The skin beside the lips goes with them, fading evenly to nothing at the nose above and at the chin
    below, and neither lip moves further than LIP_SKIN_STRETCH of that reach: the skin between stretches or
    gathers but never folds over itself; on most faces the philtrum is what holds the upper lip's rise
    back (the astronaut's: 0.34 of a 0.27-mouth-width parting). (A fade the size of the philtrum all round
    folded the skin under a lower lip that dropped further than that: 8 of the warp's landmark triangles
    around the lips turned over on the astronaut, 17 on d9's wide-open mouth, whose chin is 17 px below its
    lower lip.)"""
    lips = np.array(lm.LIPS_UPPER_OUTER + lm.LIPS_LOWER_OUTER + lm.LIPS_UPPER_INNER + lm.LIPS_LOWER_INNER)
    to_lips = np.linalg.norm(head[:, None, :2] - head[lips][None, :, :2], axis=-1).min(axis=1)
    to_nose = max(float(np.linalg.norm(head[lm.MOUTH_OUTER_TOP, :2] - head[lm.NOSE_BOTTOM, :2])), 1e-6)
    to_chin = max(float(np.linalg.norm(head[lm.MOUTH_OUTER_BOTTOM, :2] - head[lm.CHIN, :2])), 1e-6)
    parting = LIPS_PART_GAP * _mouth_width(head)
    rise = min(UPPER_LIP_SHARE * parting, LIP_SKIN_STRETCH * to_nose)
    drop = min((1.0 - UPPER_LIP_SHARE) * parting, LIP_SKIN_STRETCH * to_chin)
    lower = _jaw_weight(head)  # the same split between the lips, and the same half-ellipses toward the corners
    shape = np.zeros_like(head)
    shape[:, 1] = (rise * (1.0 - lower) * np.clip(1.0 - to_lips / to_nose, 0.0, 1.0)
                   - drop * lower * np.clip(1.0 - to_lips / to_chin, 0.0, 1.0))
    return shape


def _seal_shape(head: np.ndarray) -> np.ndarray:
    """jaw_open < 0: the lips close over the photo's own opening; at -1 they meet.

    Channels are relative to the photo, so a photo with an open mouth (a smile
    with teeth, mid-word) needs a way below its own opening: the inner lips
    meet on a line SEAL_UPPER_SHARE of the way down from the upper lip (the
    jaw does most of the closing), every contour of a lip moves with its inner
    one, the chin rises with the lower lip (the skin beside the corners less)
    and the skin above the upper lip follows it a little. On a photo whose lips
    already touch the shape is (nearly) zero.
    """
    upper_inner, lower_inner = np.array(lm.LIPS_UPPER_INNER), np.array(lm.LIPS_LOWER_INNER)
    upper_outer, lower_outer = np.array(lm.LIPS_UPPER_OUTER), np.array(lm.LIPS_LOWER_OUTER)
    seal = head[upper_inner] + SEAL_UPPER_SHARE * (head[lower_inner] - head[upper_inner])
    # Lips pressed together hide the gap's edge; by less than a share of the upper lip's thickness, or a
    # wide-open mouth's thin (stretched) upper lip vanished under the lower one (d19: an overlap of 0.13
    # mouth widths over an upper lip 0.12 thick). What the rims still show is repainted (mouth.seal_lips).
    gap = head[lower_inner] - head[upper_inner]
    upper_lip = float(np.linalg.norm(head[lm.MOUTH_INNER_TOP, :2] - head[lm.MOUTH_OUTER_TOP, :2]))
    limit = SEAL_PRESS_LIP * upper_lip / np.maximum(np.linalg.norm(gap[:, :2], axis=1), 1e-9)
    press = gap * np.minimum(SEAL_PRESS, limit)[:, None]
    upper_deltas, lower_deltas = seal + press - head[upper_inner], seal - press - head[lower_inner]
    # The corners rise toward the line the lips meet on: a wide-open "O" has its corners halfway down its
    # opening, and left there the sealed line hooked down to them at both ends (d19).
    # Lips that touch beside a corner (a closed, down-turned mouth) have no line to rise to.
    for corner, beside in ((0, 1), (-1, -2)):
        drop = min(seal[beside, 1] - head[upper_inner[corner], 1], np.linalg.norm(gap[beside, :2]))
        upper_deltas[corner, 1] = lower_deltas[corner, 1] = SEAL_CORNER_RISE * max(float(drop), 0.0)
    weight = _jaw_weight(head)[:, None]
    # The jaw rises as a whole: a normalised blend of the lower lip's movement (no fading with distance).
    closeness = np.exp(-np.sum((head[:, None, :2] - head[lower_inner][None, :, :2]) ** 2, axis=-1) / (2 * 0.15**2))
    jaw_rise = closeness @ lower_deltas / (closeness.sum(axis=1, keepdims=True) + 1e-300)
    shape = weight * jaw_rise + (1.0 - weight) * _spread(head, head[upper_inner], upper_deltas, 0.08)
    # The skin below the mouth's corners rises with the jaw, but stays below them: the blend carries the
    # middle's rise to the corners' sides, and on a wide-open "O" (d19) the skin there rose past the corners
    # and folded over them (lip-coloured wedges beside the closed mouth). Outside the lips it closes at most
    # SEAL_CORNER_CLOSING of its distance below the corners' line (head y points up).
    # (The corners' line and rise, each side its own corner's: the corners may rise unequally.)
    corners = head[[lm.MOUTH_RIGHT_CORNER, lm.MOUTH_LEFT_CORNER]]
    below_corners = _height_under(head, corners) - head[:, 1]
    corner_rise = _height_under(head, np.column_stack([corners[:, 0], lower_deltas[[0, -1], 1]]))
    highest = corner_rise + SEAL_CORNER_CLOSING * below_corners
    skin = (below_corners > 0) & ~inside_polygon(head, head[np.concatenate([upper_outer, lower_outer[::-1]])])
    shape[:, 1] = np.where(skin, np.minimum(shape[:, 1], highest), shape[:, 1])
    for ring in lm.LIPS_UPPER_RINGS:  # each lip moves as a whole, ring by ring (and so do their corners)
        shape[list(ring)] = upper_deltas
    for ring in lm.LIPS_LOWER_RINGS:
        shape[list(ring)] = lower_deltas
    return shape


def _lip_weight(head: np.ndarray, sigma: float) -> tuple[np.ndarray, np.ndarray]:
    """1 on the lips, fading with distance outside; and the mouth centre."""
    lips = np.array(lm.LIPS_UPPER_OUTER + lm.LIPS_LOWER_OUTER + lm.LIPS_UPPER_INNER + lm.LIPS_LOWER_INNER)
    centre = head[lips].mean(axis=0)
    distance = np.linalg.norm(head[:, None, :2] - head[lips][None, :, :2], axis=-1).min(axis=1)
    weight = np.exp(-distance**2 / (2 * sigma**2))
    return weight, centre


def _smile_shapes(head: np.ndarray, side_sign: float) -> tuple[np.ndarray, np.ndarray]:
    """(smile, frown) shapes of one mouth corner."""
    corner = lm.MOUTH_LEFT_CORNER if side_sign > 0 else lm.MOUTH_RIGHT_CORNER
    width = _mouth_width(head)
    falloff = _gaussian(head, head[corner], 0.32 * width) * _side_weight(head, side_sign)
    smile = falloff[:, None] * np.array([side_sign * 0.17 * width, 0.15 * width, -0.03 * width])
    # A real smile lifts the cheek and narrows the eye a little from below.
    lower_lid = np.array(lm.LEFT_EYE_LOWER[1:-1] if side_sign > 0 else lm.RIGHT_EYE_LOWER[1:-1])
    smile[lower_lid, 1] += 0.025
    frown = falloff[:, None] * np.array([-side_sign * 0.05 * width, -0.14 * width, 0.0])
    return smile, frown


def _pucker_shape(head: np.ndarray) -> np.ndarray:
    """Lips pushed forward and rounded: the corners come in and the lips grow fuller outward, while the
    line between them stays where it is (pursed lips do not part; "oo" shows no teeth)."""
    weight, centre = _lip_weight(head, 0.12)
    offset = head - centre
    delta = np.stack([-0.3 * offset[:, 0], 0.12 * offset[:, 1], np.full(len(head), 0.08)], axis=1)
    delta[list(lm.LIPS_UPPER_INNER + lm.LIPS_LOWER_INNER), 1] = 0.0
    return delta * weight[:, None]


def _wide_shape(head: np.ndarray) -> np.ndarray:
    weight, centre = _lip_weight(head, 0.12)
    offset = head - centre
    delta = np.stack([0.18 * offset[:, 0], -0.15 * offset[:, 1], np.full(len(head), -0.02)], axis=1)
    return delta * weight[:, None]


def build_expression_shapes(head: np.ndarray) -> dict[str, tuple[np.ndarray, np.ndarray | None]]:
    """Per-channel (shape for +1, shape for -1 or None) displacement fields in head units."""
    head = np.asarray(head, dtype=np.float64)
    blink_left, gaze_left = _eye_shapes(head, "left")
    blink_right, gaze_right = _eye_shapes(head, "right")
    brow_left = _brow_shapes(head, +1.0)
    brow_right = _brow_shapes(head, -1.0)
    smile_left = _smile_shapes(head, +1.0)
    smile_right = _smile_shapes(head, -1.0)
    gaze_x = gaze_left[0] + gaze_right[0]
    gaze_up, gaze_down = gaze_left[1] + gaze_right[1], gaze_left[2] + gaze_right[2]
    return {
        "blink_l": (blink_left, None),
        "blink_r": (blink_right, None),
        "gaze_x": (gaze_x, -gaze_x),
        "gaze_y": (gaze_up, gaze_down),
        "brow_l": brow_left,
        "brow_r": brow_right,
        "brow_inner_up": (_brow_inner_shape(head), None),
        "jaw_open": (_jaw_shape(head), _seal_shape(head)),
        "smile_l": smile_left,
        "smile_r": smile_right,
        "pucker": (_pucker_shape(head), None),
        "wide": (_wide_shape(head), None),
        "lips_part": (_lips_part_shape(head), None),
    }


def mouth_opening_of(subject) -> MouthOpening:
    """An analysed subject's (anything with .landmarks and .pose): how jaw_open moves its lips."""
    return Rig(subject.landmarks, subject.pose).mouth_opening()


class Rig:
    """Channels -> target landmarks for one subject. Build once, evaluate per frame."""

    def __init__(self, landmarks: np.ndarray, pose: HeadPose):
        self.pose = pose
        self.source_camera = image_to_camera(np.asarray(landmarks, dtype=np.float64))
        self.face_width = float(np.linalg.norm(self.source_camera[lm.FACE_LEFT_EDGE, :2]
                                               - self.source_camera[lm.FACE_RIGHT_EDGE, :2]))
        self.source_head = pose.to_head(self.source_camera)
        shapes = build_expression_shapes(self.source_head)
        # Stack shapes as camera-frame displacements: rows = (channel, sign).
        to_camera = self._head_to_camera = pose.scale * pose.rotation.T
        self._camera_to_head = np.linalg.inv(to_camera)
        count = len(self.source_camera)
        self._positive = np.zeros((len(CHANNEL_NAMES), count * 3))
        self._negative = np.zeros((len(CHANNEL_NAMES), count * 3))
        for name, (positive, negative) in shapes.items():
            index = CHANNEL_INDEX[name]
            self._positive[index] = (positive @ to_camera).ravel()
            if negative is not None:
                self._negative[index] = (negative @ to_camera).ravel()
        self._keep_irises_inside_corners()
        self.pivot = pose.to_camera(PIVOT_HEAD)

    def _keep_irises_inside_corners(self) -> None:
        """Cut each eye's gaze_x travel toward each side so that, in the photo's own pixels, the iris centre
        stays GAZE_CORNER_MARGIN radii (at least GAZE_CORNER_MARGIN_PX pixels) inside that corner (none, for
        an iris there already)."""
        row = CHANNEL_INDEX["gaze_x"]
        for iris, side in lm.IRISES:
            upper = lm.eye_lids(side)[0]
            corners_x = self.source_camera[[upper[0], upper[-1]], 0]
            centre, radius = lm.iris_circle(self.source_camera, iris)
            columns = (np.array(iris)[:, None] * 3 + np.arange(3)).ravel()
            for shapes in (self._positive, self._negative):
                travel = shapes[row, iris[0] * 3]  # the iris centre's x, in camera (= image) pixels
                if travel == 0:
                    continue
                corner_x = corners_x.max() if travel > 0 else corners_x.min()
                margin = max(GAZE_CORNER_MARGIN * radius, GAZE_CORNER_MARGIN_PX)
                room = max(np.sign(travel) * (corner_x - centre[0]) - margin, 0.0)
                if abs(travel) > room:
                    shapes[row, columns] *= room / abs(travel)

    def expression_offsets(self, values: np.ndarray) -> np.ndarray:
        """(478, 3) camera-frame displacement of each landmark from expression channels."""
        values = np.asarray(values, dtype=np.float64)
        offsets = np.maximum(values, 0.0) @ self._positive + np.maximum(-values, 0.0) @ self._negative
        return offsets.reshape(-1, 3)

    def lids_kept_apart(self, offsets: np.ndarray) -> np.ndarray:
        """Camera-frame expression `offsets` with each upper lid held from passing its lower lid: lids meet,
        never cross. The shapes add up linearly, and a blink (which brings the lids together) with a downward
        gaze (which drops the upper lid) sent the upper lid past the lower one: at blink 0.5 and gaze_y -1,
        10-15 triangles folded around each eye, and a closed lash line sagged into the cheek. For drawing
        (the warp engine): expression_offsets and targets stay linear, as the capture solver needs."""
        kept = None
        for upper, lower in ((lm.RIGHT_EYE_UPPER, lm.RIGHT_EYE_LOWER), (lm.LEFT_EYE_UPPER, lm.LEFT_EYE_LOWER)):
            upper, lower = list(upper[1:-1]), list(lower)
            moved = self.source_head[upper + lower] + offsets[upper + lower] @ self._camera_to_head
            upper_points, lower_points = moved[:len(upper)], moved[len(upper):]
            floor = _height_under(upper_points, lower_points)
            crossed = upper_points[:, 1] < floor - LIDS_MEET_TOLERANCE  # head y points up
            if crossed.any():
                kept = offsets.copy() if kept is None else kept
                upper_points[crossed, 1] = floor[crossed]
                rows = np.array(upper)[crossed]
                kept[rows] = (upper_points[crossed] - self.source_head[rows]) @ self._head_to_camera
        return offsets if kept is None else kept

    def head_motion(self, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(rotation, translation) of the head for these channel values, about self.pivot."""
        rotation = rotation_from_angles(values[CHANNEL_INDEX["head_yaw"]], values[CHANNEL_INDEX["head_pitch"]],
                                        values[CHANNEL_INDEX["head_roll"]])
        shift = self.face_width * np.array([values[CHANNEL_INDEX["head_x"]], values[CHANNEL_INDEX["head_y"]], 0.0])
        return rotation, shift

    def move_with_head(self, camera_points: np.ndarray, values: np.ndarray, attachment: np.ndarray | float = 1.0) -> np.ndarray:
        """Apply the head's motion to camera-frame points; `attachment` 0..1 says how much each follows."""
        rotation, shift = self.head_motion(values)
        moved = (camera_points - self.pivot) @ rotation.T + self.pivot + shift
        attachment = np.asarray(attachment, dtype=np.float64)
        if attachment.ndim:
            attachment = attachment[:, None]
        return camera_points + attachment * (moved - camera_points)

    def targets_camera(self, values: np.ndarray) -> np.ndarray:
        return self.move_with_head(self.source_camera + self.expression_offsets(values), values)

    def targets(self, values: np.ndarray) -> np.ndarray:
        """(478, 3) target landmarks in image pixels (x right, y down, z into the picture)."""
        return camera_to_image(self.targets_camera(values))

    def mouth_opening(self) -> MouthOpening:
        """How jaw_open moves this photo's lips apart and together (MouthOpening)."""
        def gap(jaw: float) -> float:
            values = default_vector().astype(np.float64)
            values[CHANNEL_INDEX["jaw_open"]] = jaw
            return lm.signed_lip_gap(self.targets(values))

        photo = gap(0.0)
        return MouthOpening(photo, gap(1.0) - photo, photo - gap(-1.0))
