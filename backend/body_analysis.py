"""The upper body of a photo's subject: where MediaPipe Pose puts the shoulders (and hips, when the photo
shows them). Pure numpy (and OpenCV's resize); analysis.py runs the Pose graph and makes the person mask.

A body is only kept when it clearly belongs to the face and the photo shows it: both shoulders seen
(Pose's visibility score at least SHOULDER_VISIBILITY) and inside the photo, a plausible width for the
face, and Pose's nose on the face's own nose (in a group photo Pose may find a neighbour). Otherwise the
subject has no body and the body channels do nothing: a photo cropped at the neck still animates its face.

In a group photo the person mask (the segmenter knows people, not persons) covers the neighbours too, and
a body's region reaches over them: `own_share` says which of the mask is this face's person, so that one
person's breathing or shrug leaves the people beside them still.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np

from . import landmarks as lm

# Pose's 33 landmarks: the ones used here. "Left" is the subject's own left (on the image's right).
POSE_NOSE, POSE_LEFT_SHOULDER, POSE_RIGHT_SHOULDER, POSE_LEFT_HIP, POSE_RIGHT_HIP = 0, 11, 12, 23, 24
SHOULDER_VISIBILITY = 0.5
HIP_VISIBILITY = 0.5
EDGE_MARGIN = 0.02  # shoulder widths: a shoulder joint closer than this to the photo's edge is cut off
NOSE_REACH = 0.6  # face widths: Pose's nose must be this close to the face mesh's to be this face's body
SHOULDER_WIDTH_RANGE = (1.1, 5.0)  # shoulder width over face width for a plausible body
# The torso crops Pose runs on, tried in turn until one finds this face's body: half-width, reach above
# and below the face centre, in face widths (in a crowd the wide one may hold a more prominent neighbour).
POSE_CROPS = ((2.6, 1.6, 4.8), (1.5, 1.0, 3.5))
POSE_MAX_SIDE = 1024  # the crop is scaled down to at most this
BODY_SIDE = 0.75  # shoulder widths the body region reaches beyond each shoulder
BODY_TOP = 0.15  # shoulder widths the body region reaches above the head region
# Whose person a pixel is, in a group photo: the person whose head-and-spine line (from the face box's
# centre to its chin, then straight down SPINE_LENGTH face widths) is nearest, in face widths. Within
# HEAD_CLAIM face widths of that head line a head beats any spine (a collage's faces sit below others'
# chests), and a pixel passes from one person to the next over OWN_FEATHER face widths each side.
SPINE_LENGTH = 3.0
HEAD_CLAIM = 0.5
OWN_FEATHER = 0.1
OWN_GRID_SIDE = 256  # the share is computed on a grid at most this large over the region (it is smooth)


@dataclass(frozen=True)
class Body:
    """A subject's upper body, in photo pixels."""

    shoulders: np.ndarray  # (2, 2) float32: the subject's left shoulder (image right), then the right one
    hips: np.ndarray | None  # (2, 2) float32 in the same order, or None where the photo does not show them
    visibility: float  # Pose's visibility score of the less visible shoulder
    region: tuple[int, int, int, int]  # x0, y0, x1, y1: the part of the photo body motion may change
    mask: np.ndarray = field(repr=False)  # float32 person mask over region, 1 = person (anyone's)
    own: np.ndarray | None = field(default=None, repr=False)  # float32 over region: own_share (None: all own)

    @property
    def width(self) -> float:
        """The distance between the shoulder joints, in pixels."""
        return float(np.linalg.norm(self.shoulders[0] - self.shoulders[1]))

    def summary(self) -> dict:
        return {
            "shoulders": [[round(float(v), 1) for v in point] for point in self.shoulders],
            "hips": None if self.hips is None else [[round(float(v), 1) for v in point] for point in self.hips],
            "shoulder_width_px": round(self.width, 1),
            "visibility": round(self.visibility, 3),
            "region": list(self.region),
        }

    def scaled(self, factor: float, mask: np.ndarray, own: np.ndarray | None,
               region: tuple[int, int, int, int]) -> "Body":
        """The body on the photo scaled by `factor` (its masks and region already scaled by the caller)."""
        hips = None if self.hips is None else (self.hips * factor).astype(np.float32)
        return Body((self.shoulders * factor).astype(np.float32), hips, self.visibility, region, mask, own)


def pose_crop_box(face: np.ndarray, image_shape: tuple[int, ...],
                  crop: tuple[float, float, float] = POSE_CROPS[0]) -> tuple[int, int, int, int]:
    """The box around a face's expected torso that Pose runs on, so that each face of a group photo gets
    its own shoulders: x0, y0, x1, y1 clipped to the photo."""
    height, width = image_shape[:2]
    face_width = float(np.linalg.norm(face[lm.FACE_LEFT_EDGE, :2] - face[lm.FACE_RIGHT_EDGE, :2]))
    centre_x, centre_y = face[:, :2].mean(axis=0)
    half, above, below = (face_width * f for f in crop)
    return (max(0, int(centre_x - half)), max(0, int(centre_y - above)),
            min(width, int(np.ceil(centre_x + half))), min(height, int(np.ceil(centre_y + below))))


def body_points(keypoints: np.ndarray, face: np.ndarray,
                image_shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray | None, float] | None:
    """(shoulders, hips or None, shoulder visibility) from Pose's keypoints ((33, 3): x, y in photo pixels,
    visibility) for the face with landmarks `face`; None when the photo shows no usable body of it."""
    height, width = image_shape[:2]
    face_width = float(np.linalg.norm(face[lm.FACE_LEFT_EDGE, :2] - face[lm.FACE_RIGHT_EDGE, :2]))
    if np.linalg.norm(keypoints[POSE_NOSE, :2] - face[lm.NOSE_TIP, :2]) > NOSE_REACH * face_width:
        return None  # someone else's body
    shoulders = keypoints[[POSE_LEFT_SHOULDER, POSE_RIGHT_SHOULDER]]
    visibility = float(shoulders[:, 2].min())
    shoulder_width = float(np.linalg.norm(shoulders[0, :2] - shoulders[1, :2]))
    low, high = SHOULDER_WIDTH_RANGE
    if visibility < SHOULDER_VISIBILITY or not low * face_width <= shoulder_width <= high * face_width:
        return None
    margin = EDGE_MARGIN * shoulder_width
    inside = ((shoulders[:, 0] >= margin) & (shoulders[:, 0] <= width - 1 - margin)
              & (shoulders[:, 1] <= height - 1 - margin) & (shoulders[:, 1] > face[lm.CHIN, 1]))
    if not inside.all():
        return None  # a photo cropped at the neck (or the shoulders out of the picture)
    hips = keypoints[[POSE_LEFT_HIP, POSE_RIGHT_HIP]]
    hips_seen = (hips[:, 2].min() >= HIP_VISIBILITY and (hips[:, 1] <= height - 1).all()
                 and (hips[:, 1] > shoulders[:, 1].max() + 0.5 * shoulder_width).all())
    return (shoulders[:, :2].astype(np.float32), hips[:, :2].astype(np.float32) if hips_seen else None, visibility)


def body_region_box(shoulders: np.ndarray, head_region: tuple[int, int, int, int],
                    image_shape: tuple[int, ...]) -> tuple[int, int, int, int]:
    """The part of the photo the body's motion may change: the head region and the torso below it, down
    to the photo's bottom, BODY_SIDE shoulder widths beyond each shoulder."""
    height, width = image_shape[:2]
    shoulder_width = float(np.linalg.norm(shoulders[0] - shoulders[1]))
    reach = BODY_SIDE * shoulder_width
    x0 = max(0, min(int(shoulders[:, 0].min() - reach), head_region[0]))
    x1 = min(width, max(int(np.ceil(shoulders[:, 0].max() + reach)), head_region[2]))
    y0 = max(0, int(head_region[1] - BODY_TOP * shoulder_width))
    return x0, y0, x1, height


def own_share(region: tuple[int, int, int, int], face_boxes: Sequence[tuple[float, float, float, float]],
              face_index: int) -> np.ndarray | None:
    """How much of each pixel of `region` ((H, W) float32, 0-1) belongs to the person of face number
    `face_index` rather than to the people of the photo's other `face_boxes` (x0, y0, x1, y1 each): 1 where
    this person's head-and-spine line is the nearest (see SPINE_LENGTH), 0 where another's is, blended over
    OWN_FEATHER between. None where the photo has no other face: all of it is this person's."""
    other_boxes = [box for index, box in enumerate(face_boxes) if index != face_index]
    if not other_boxes:
        return None
    face_box = face_boxes[face_index]
    x0, y0, x1, y1 = region
    step = max(1, -(-max(x1 - x0, y1 - y0) // OWN_GRID_SIDE))  # region pixels per grid point
    grid_w, grid_h = -(-(x1 - x0) // step), -(-(y1 - y0) // step)
    xs = x0 + (np.arange(grid_w, dtype=np.float32) + 0.5) * step - 0.5
    ys = y0 + (np.arange(grid_h, dtype=np.float32) + 0.5) * step - 0.5
    points = np.stack(np.meshgrid(xs, ys), axis=-1)
    own = _person_distance(points, face_box)
    nearest_other = np.min([_person_distance(points, box) for box in other_boxes], axis=0)
    share = np.clip(0.5 + (nearest_other - own) / (2 * OWN_FEATHER), 0.0, 1.0)
    return cv2.resize(share, (grid_w * step, grid_h * step),
                      interpolation=cv2.INTER_LINEAR)[:y1 - y0, :x1 - x0].astype(np.float32)


def _person_distance(points: np.ndarray, face_box: tuple[float, float, float, float]) -> np.ndarray:
    """(H, W) float32: how far each of `points` ((H, W, 2) photo pixels) lies from the person of the face in
    `face_box`, in that face's widths: from its spine, or from its head less HEAD_CLAIM."""
    bx0, by0, bx1, by1 = face_box
    width = max(bx1 - bx0, 1.0)
    centre = np.array([(bx0 + bx1) / 2, (by0 + by1) / 2], np.float32)
    chin = np.array([centre[0], by1], np.float32)
    spine_end = chin + np.array([0.0, SPINE_LENGTH * width], np.float32)
    head = _segment_distance(points, centre, chin) / width - HEAD_CLAIM
    spine = _segment_distance(points, chin, spine_end) / width
    return np.minimum(head, spine)


def _segment_distance(points: np.ndarray, start: np.ndarray, end: np.ndarray) -> np.ndarray:
    """(H, W): the distance of each of `points` ((H, W, 2)) from the segment from `start` to `end`."""
    along = end - start
    t = np.clip(((points - start) @ along) / max(float(along @ along), 1e-9), 0.0, 1.0)
    return np.linalg.norm(points - (start + t[..., None] * along), axis=-1)
