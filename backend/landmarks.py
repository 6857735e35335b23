"""Names for MediaPipe FaceMesh landmark indices (478 points with iris).

Only the indices the rig, the engines and the measurements need. "Left" and
"right" are the subject's own sides (ARKit's convention): the subject's left
eye is on the image's right.
"""
from __future__ import annotations

import numpy as np

COUNT = 478
MESH_POINTS = 468  # the face mesh; the ten iris points follow it

# Eye contours, corner to corner: upper lid and lower lid share the corners.
RIGHT_EYE_UPPER = (33, 246, 161, 160, 159, 158, 157, 173, 133)
RIGHT_EYE_LOWER = (33, 7, 163, 144, 145, 153, 154, 155, 133)
LEFT_EYE_UPPER = (263, 466, 388, 387, 386, 385, 384, 398, 362)
LEFT_EYE_LOWER = (263, 249, 390, 373, 374, 380, 381, 382, 362)

# Iris: centre then four points on the rim.
RIGHT_IRIS = (468, 469, 470, 471, 472)
LEFT_IRIS = (473, 474, 475, 476, 477)
IRISES = ((RIGHT_IRIS, "right"), (LEFT_IRIS, "left"))  # each eye's iris, and its side

# Eye aspect ratio points (corner, upper, upper, corner, lower, lower).
RIGHT_EAR = (33, 160, 158, 133, 153, 144)
LEFT_EAR = (263, 387, 385, 362, 380, 373)

RIGHT_BROW = (46, 53, 52, 65, 55, 70, 63, 105, 66, 107)
LEFT_BROW = (276, 283, 282, 295, 285, 300, 293, 334, 296, 336)
RIGHT_BROW_INNER = (55, 65, 107, 66)
LEFT_BROW_INNER = (285, 295, 336, 296)

# Lips, from the right mouth corner to the left one.
LIPS_UPPER_OUTER = (61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291)
LIPS_LOWER_OUTER = (61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291)
LIPS_UPPER_INNER = (78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308)
LIPS_LOWER_INNER = (78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308)
# Each lip's four contours, outer to inner, point for point (the two between are MediaPipe's middle rings);
# each runs corner to corner, so a ring's first and last points are the mouth's corners at that depth.
LIPS_UPPER_RINGS = (LIPS_UPPER_OUTER, (76, 184, 74, 73, 72, 11, 302, 303, 304, 408, 306),
                    (62, 183, 42, 41, 38, 12, 268, 271, 272, 407, 292), LIPS_UPPER_INNER)
LIPS_LOWER_RINGS = (LIPS_LOWER_OUTER, (76, 77, 90, 180, 85, 16, 315, 404, 320, 307, 306),
                    (62, 96, 89, 179, 86, 15, 316, 403, 319, 325, 292), LIPS_LOWER_INNER)
MOUTH_RIGHT_CORNER, MOUTH_LEFT_CORNER = 61, 291
MOUTH_INNER_TOP, MOUTH_INNER_BOTTOM = 13, 14
MOUTH_OUTER_TOP = 0  # the upper lip's top, in the middle
MOUTH_OUTER_BOTTOM = 17  # the lower lip's bottom, in the middle
CHEEKS = (205, 425, 50, 280)  # mid-cheek points, left and right: plain skin

# Face outline, clockwise from the top of the forehead.
FACE_OVAL = (10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365,
             379, 378, 400, 377, 152, 148, 176, 149, 150, 136, 172, 58, 132, 93,
             234, 127, 162, 21, 54, 103, 67, 109)
FOREHEAD_TOP, CHIN = 10, 152
NOSE_TIP = 1
NOSE_BRIDGE, NOSE_BOTTOM = 168, 2  # between the eyes; where the nose meets the upper lip
FACE_RIGHT_EDGE, FACE_LEFT_EDGE = 234, 454

# Mirror pairs (subject's right, subject's left) used to find the face's
# left-right axis; spread over the whole face so no single feature dominates.
MIRROR_PAIRS = ((33, 263), (133, 362), (159, 386), (145, 374), (70, 300),
                (105, 334), (61, 291), (234, 454), (93, 323), (132, 361),
                (58, 288), (172, 397), (136, 365), (150, 379), (149, 378),
                (176, 400), (148, 377), (127, 356), (162, 389), (21, 251),
                (54, 284), (103, 332), (67, 297), (109, 338))


def inner_lip_polygon() -> tuple[int, ...]:
    """The mouth opening as a closed polygon: upper inner lip, then lower inner lip back."""
    return LIPS_UPPER_INNER + tuple(reversed(LIPS_LOWER_INNER[1:-1]))


def eye_lids(side: str) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """The eye's upper and lower lid, each from the same corner to the same other corner."""
    return (RIGHT_EYE_UPPER, RIGHT_EYE_LOWER) if side == "right" else (LEFT_EYE_UPPER, LEFT_EYE_LOWER)


def eye_polygon(side: str) -> tuple[int, ...]:
    """The eye's opening: its upper lid corner to corner, then its lower lid back."""
    upper, lower = eye_lids(side)
    return upper + tuple(reversed(lower[1:-1]))


def iris_circle(points: np.ndarray, iris: tuple[int, ...]) -> tuple[np.ndarray, float]:
    """(centre (2,), radius) of an iris (RIGHT_IRIS or LEFT_IRIS) in `points`: its centre point and the mean
    distance of its four rim points from it."""
    centre = np.asarray(points[iris[0], :2], np.float64)
    return centre, float(np.linalg.norm(np.asarray(points[list(iris[1:]), :2], np.float64) - centre, axis=1).mean())


def eye_aspect_ratio(points: np.ndarray, side: str) -> float:
    """Eye openness: mean lid gap over eye width (about 0.2-0.35 open, under 0.1 closed).

    Each gap is an upper lid point's height over its lower partner, measured across the line between the
    eye's corners. (The classic ratio takes the straight distance between them, but MediaPipe's pairs, 160
    and 144 say, sit up to a tenth of the eye's width apart along it, and that distance stays when the lids
    meet: a real closed eye (d18 of the evaluation clips) read 0.25-0.34 of its open reading, lids drawn
    exactly together on d19 0.26; across the line, 0.06-0.18.)"""
    corner_a, up_1, up_2, corner_b, low_1, low_2 = (RIGHT_EAR if side == "right" else LEFT_EAR)
    p = np.asarray(points[:, :2], np.float64)
    axis = p[corner_b] - p[corner_a]
    width = float(np.linalg.norm(axis))
    across = np.array([-axis[1], axis[0]]) / (width + 1e-9)
    gap = abs(float((p[up_1] - p[low_2]) @ across)) + abs(float((p[up_2] - p[low_1]) @ across))
    return gap / (2.0 * width + 1e-9)


def signed_lip_gap(points: np.ndarray) -> float:
    """The inner-lip gap over mouth width, across the mouth (perpendicular to the line between its
    corners, so a tilted head reads as an upright one), negative where the lips press past each other
    (sealed lips in the rig overlap a little). mouth_openness is the tracker's unsigned one."""
    p = points[:, :2]
    across = p[MOUTH_LEFT_CORNER] - p[MOUTH_RIGHT_CORNER]
    width = float(np.linalg.norm(across)) + 1e-9
    down = np.array([-across[1], across[0]]) / width
    return float((p[MOUTH_INNER_BOTTOM] - p[MOUTH_INNER_TOP]) @ down) / width


def mouth_openness(points: np.ndarray) -> float:
    """Inner-lip gap over mouth width (0 closed, about 0.5 wide open)."""
    p = points[:, :2]
    gap = np.linalg.norm(p[MOUTH_INNER_TOP] - p[MOUTH_INNER_BOTTOM])
    width = np.linalg.norm(p[MOUTH_RIGHT_CORNER] - p[MOUTH_LEFT_CORNER])
    return float(gap / (width + 1e-9))
