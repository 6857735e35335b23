"""Head pose maths: pure numpy, no I/O.

Coordinates. MediaPipe gives image points (x right, y down, z into the
picture, in pixels). The "camera frame" used for rotations is right-handed:
x right, y up, z toward the viewer, so camera = (x, -y, -z).

Angles follow the channel table: positive yaw turns the face toward the
image's right, positive pitch raises the chin, positive roll tilts the top of
the head toward the image's right.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import landmarks as lm

IMAGE_TO_CAMERA = np.array([1.0, -1.0, -1.0])


def image_to_camera(points: np.ndarray) -> np.ndarray:
    return points * IMAGE_TO_CAMERA


def camera_to_image(points: np.ndarray) -> np.ndarray:
    return points * IMAGE_TO_CAMERA


def inside_polygon(points: np.ndarray, polygon: np.ndarray) -> np.ndarray:
    """(N,) bool: which of `points` ((N, 2+)) lie inside `polygon` ((M, 2+), closed implicitly), by the
    even-odd rule (a ray to the right crosses its edges an odd number of times)."""
    x, y = points[:, 0, None], points[:, 1, None]
    start, end = polygon[:, :2], np.roll(polygon[:, :2], -1, axis=0)
    straddles = (start[:, 1] > y) != (end[:, 1] > y)
    height = np.where(end[:, 1] != start[:, 1], end[:, 1] - start[:, 1], 1.0)
    crossing_x = start[:, 0] + (y - start[:, 1]) * (end[:, 0] - start[:, 0]) / height
    return (straddles & (x < crossing_x)).sum(axis=1) % 2 == 1


def outline_depths(points: np.ndarray, outline: np.ndarray, slope: float) -> np.ndarray:
    """(N,) the depths of `points` ((N, 3) image pixels, z into the picture) held no nearer than a closed
    `outline` ((M, 3), in order) allows: a point on or outside it as deep as the outline where its nearest
    segment passes (interpolated along that segment), a point inside it at most `slope` pixels nearer for
    every pixel it lies inside. Under a turn by an angle a, a point then moves at most slope * sin(a) times
    its distance inside further than the outline beside it: it does not run ahead of the outline by more
    than it lay inside it while slope * sin(a) <= 1."""
    points = np.asarray(points, np.float64)
    start = np.asarray(outline, np.float64)
    end = np.roll(start, -1, axis=0)
    edge = end[:, :2] - start[:, :2]
    along = ((points[:, None, :2] - start[None, :, :2]) * edge[None]).sum(axis=2) / np.maximum((edge**2).sum(axis=1), 1e-12)
    along = np.clip(along, 0.0, 1.0)  # (N, M): where on each segment the point's nearest lies
    distance = np.linalg.norm(points[:, None, :2] - (start[None, :, :2] + along[..., None] * edge[None]), axis=2)
    nearest = distance.argmin(axis=1)
    rows = np.arange(len(points))
    inside = np.where(inside_polygon(points, start), distance[rows, nearest], 0.0)
    outline_depth = start[nearest, 2] + along[rows, nearest] * (end[nearest, 2] - start[nearest, 2])
    return np.maximum(points[:, 2], outline_depth - slope * inside)


def without_inward_lead(moved: np.ndarray, held: np.ndarray, centre: np.ndarray) -> np.ndarray:
    """`moved` ((N, 2+) image points) less the part of their lead over `held` (the same points moved otherwise)
    that runs inward, toward `centre` ((2,)): a copy, its z and the rest of its lead (outward, or along the
    outline) as `moved`'s. A point that moves as `held` moves is left as it is."""
    lead = moved[:, :2] - held[:, :2]
    outward = held[:, :2] - centre
    outward /= np.maximum(np.linalg.norm(outward, axis=1, keepdims=True), 1e-9)
    inward = np.minimum((lead * outward).sum(axis=1), 0.0)
    out = np.array(moved, np.float64, copy=True)
    out[:, :2] -= inward[:, None] * outward
    return out


def rotation_from_angles(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """Camera-frame rotation for angles in degrees: R = Ry(yaw) Rx(-pitch) Rz(-roll)."""
    a, b, c = np.radians([yaw, -pitch, -roll])
    ry = np.array([[np.cos(a), 0, np.sin(a)], [0, 1, 0], [-np.sin(a), 0, np.cos(a)]])
    rx = np.array([[1, 0, 0], [0, np.cos(b), -np.sin(b)], [0, np.sin(b), np.cos(b)]])
    rz = np.array([[np.cos(c), -np.sin(c), 0], [np.sin(c), np.cos(c), 0], [0, 0, 1]])
    return ry @ rx @ rz


def angles_from_rotation(rotation: np.ndarray) -> tuple[float, float, float]:
    """Inverse of rotation_from_angles: (yaw, pitch, roll) in degrees."""
    b = np.arcsin(np.clip(-rotation[1, 2], -1.0, 1.0))
    c = np.arctan2(rotation[1, 0], rotation[1, 1])
    a = np.arctan2(rotation[0, 2], rotation[2, 2])
    yaw, minus_pitch, minus_roll = np.degrees([a, b, c])
    return float(yaw), float(-minus_pitch), float(-minus_roll)


@dataclass(frozen=True)
class HeadPose:
    """Where the head is: head frame -> camera frame is  origin + scale * rotation @ p.

    The head frame has its origin between the eyes, x toward the subject's
    left, y up the face, z out of the face, and one unit is the distance
    between the outer eye corners, so expression shapes scale with the face.
    """

    rotation: np.ndarray  # (3, 3), columns are the head axes in camera frame
    origin: np.ndarray  # (3,) camera frame, pixels
    scale: float  # pixels per head unit

    @property
    def angles(self) -> tuple[float, float, float]:
        return angles_from_rotation(self.rotation)

    def to_head(self, camera_points: np.ndarray) -> np.ndarray:
        return (camera_points - self.origin) @ self.rotation / self.scale

    def to_camera(self, head_points: np.ndarray) -> np.ndarray:
        return self.origin + self.scale * head_points @ self.rotation.T


def estimate_head_pose(image_points: np.ndarray) -> HeadPose:
    """Head pose from 478 image-space landmarks.

    The left-right axis is the mean direction across mirror pairs of
    landmarks (robust: two dozen pairs over the whole face); "up" runs from the
    mouth to the eyes. Zero pitch therefore means the eyes-mouth plane faces
    the camera, which is how people judge "looking straight".
    """
    camera = image_to_camera(np.asarray(image_points, dtype=np.float64))
    right, left = np.array(lm.MIRROR_PAIRS).T
    across = (camera[left] - camera[right]).mean(axis=0)
    x_axis = across / np.linalg.norm(across)
    eye_centre = camera[[33, 133, 263, 362]].mean(axis=0)
    mouth_centre = camera[[lm.MOUTH_RIGHT_CORNER, lm.MOUTH_LEFT_CORNER, lm.MOUTH_INNER_TOP, lm.MOUTH_INNER_BOTTOM]].mean(axis=0)
    up = eye_centre - mouth_centre
    y_axis = up - x_axis * (up @ x_axis)
    y_axis /= np.linalg.norm(y_axis)
    z_axis = np.cross(x_axis, y_axis)
    rotation = np.stack([x_axis, y_axis, z_axis], axis=1)
    scale = float(np.linalg.norm(camera[263] - camera[33]))
    return HeadPose(rotation=rotation, origin=eye_centre, scale=scale)


def fit_pose_to_image_points(head_points: np.ndarray, image_points: np.ndarray, start: HeadPose) -> HeadPose:
    """The head pose that best projects a known 3D face (head frame) onto observed 2D landmarks.

    Weak perspective (orthographic projection plus scale), fitted by robust
    least squares on x, y only. Unlike estimate_head_pose this does not trust
    the tracker's depth guesses, which flatten on unusual faces; it needs the
    face's 3D shape, e.g. from the neutral photo of the same person.
    """
    from scipy.optimize import least_squares

    observed = image_points[:, :2] * np.array([1.0, -1.0])  # camera x, y

    def project(params: np.ndarray) -> np.ndarray:
        yaw, pitch, roll, log_scale, tx, ty = params
        rotation = rotation_from_angles(yaw, pitch, roll)
        return (np.exp(log_scale) * head_points @ rotation.T)[:, :2] + (tx, ty)

    yaw, pitch, roll = start.angles
    initial = np.array([yaw, pitch, roll, np.log(start.scale), start.origin[0], start.origin[1]])
    result = least_squares(lambda p: (project(p) - observed).ravel(), initial, loss="soft_l1",
                           f_scale=0.02 * start.scale, x_scale=np.array([10, 10, 10, 0.1, start.scale, start.scale]))
    yaw, pitch, roll, log_scale, tx, ty = result.x
    origin = np.array([tx, ty, start.origin[2]])
    return HeadPose(rotation=rotation_from_angles(yaw, pitch, roll), origin=origin, scale=float(np.exp(log_scale)))
