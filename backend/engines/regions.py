"""Landmark-aligned patches of the eyes and the mouth: the contract between the neural region
generator and the frames it corrects. Pure numpy and OpenCV, no torch, no I/O.

A region is cut out of a frame by a similarity transform fixed by two landmarks
(the eye corners, the mouth corners): the patch is upright, the same size in
patch pixels whatever the photo's size, and the left eye is mirrored onto the
right one, so one eye model serves both eyes (and sees twice the examples).

Per region the generator sees, all at the patch's side:
  * `warped`: the warp engine's frame (what the rig placed), cut by the TARGET landmarks;
  * `source`: the photo, cut by the photo's own landmarks (identity: iris colour, lid skin, lips, teeth);
  * `target_shape` and `source_shape`: the landmark geometry rasterised (see `shape_raster`).
It returns a correction that is pasted back through a feathered ellipse
(`paste_mask`) at the frame's full resolution; outside the ellipse the frame
is left exactly as the warp engine made it.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from .. import landmarks as lm

SHAPE_CHANNELS = 3  # rasterised geometry channels per region (see shape_raster)
SUBPIXEL = 4  # OpenCV's fixed-point shift for anti-aliased drawing: 1/16 pixel


@dataclass(frozen=True)
class RegionSpec:
    """One region: which landmarks fix its patch, how big it is, and whether it is mirrored."""

    name: str
    kind: str  # "eye" or "mouth": which model corrects it
    side: int  # patch side in pixels
    first: int  # landmark that lands on the patch's left (outer eye corner / right mouth corner)
    second: int  # landmark that lands on the patch's right
    span: float  # the patch side over the distance between the two landmarks
    centre: tuple[int, ...]  # landmarks whose mean is the patch centre
    lift: float  # the centre moves up by this fraction of the landmark distance
    mirrored: bool  # the left eye: mirrored so that it looks like a right eye


def region_specs(eye_side: int = 64, mouth_side: int = 96) -> tuple[RegionSpec, ...]:
    """The three regions, eyes first. Eye patches span twice the eye's width (lids, crease and lashes),
    the mouth's 1.8 times the mouth's (room for the lower lip when the jaw drops)."""
    return (
        RegionSpec("right_eye", "eye", eye_side, 33, 133, 2.0, (33, 133), 0.08, False),
        RegionSpec("left_eye", "eye", eye_side, 263, 362, 2.0, (263, 362), 0.08, True),
        RegionSpec("mouth", "mouth", mouth_side, 61, 291, 1.8, (61, 291, 0, 17), 0.0, False),
    )


def region_landmarks(spec: RegionSpec) -> tuple[int, ...]:
    """The landmarks that shape a region: the lids and iris of an eye, the lips of the mouth."""
    if spec.kind == "mouth":
        return lm.LIPS_UPPER_OUTER + lm.LIPS_LOWER_OUTER + lm.LIPS_UPPER_INNER + lm.LIPS_LOWER_INNER
    if spec.name == "right_eye":
        return lm.RIGHT_EYE_UPPER + lm.RIGHT_EYE_LOWER + lm.RIGHT_IRIS
    return lm.LEFT_EYE_UPPER + lm.LEFT_EYE_LOWER + lm.LEFT_IRIS


def region_shape(points: np.ndarray, transform: np.ndarray, spec: RegionSpec) -> np.ndarray:
    """The region's shaping landmarks in its own patch (`transform` from `patch_transform` of the same
    points): two frames whose regions were only moved, turned or scaled with the head give the same."""
    return to_patch(transform, points[list(region_landmarks(spec))])


def patch_transform(points: np.ndarray, spec: RegionSpec) -> np.ndarray:
    """(2, 3) affine taking image pixels to patch pixels (pixel centres at integers, OpenCV's convention)."""
    points = np.asarray(points, dtype=np.float64)[:, :2]
    a, b = points[spec.first], points[spec.second]
    distance = max(float(np.linalg.norm(b - a)), 1e-3)
    across = (b - a) / distance
    down = np.array([-across[1], across[0]]) * (-1.0 if spec.mirrored else 1.0)
    centre = points[list(spec.centre)].mean(axis=0) - spec.lift * distance * down  # lifted toward the brow
    scale = spec.side / (spec.span * distance)
    rotation = np.stack([across, down]) * scale
    offset = (spec.side - 1) / 2.0 - rotation @ centre
    return np.hstack([rotation, offset[:, None]])


def to_patch(transform: np.ndarray, points: np.ndarray) -> np.ndarray:
    return np.asarray(points, dtype=np.float64)[:, :2] @ transform[:, :2].T + transform[:, 2]


def cut_patch(image: np.ndarray, transform: np.ndarray, side: int) -> np.ndarray:
    """The patch of `image` under `transform` (area-averaged when the patch is smaller than the region)."""
    scale = float(np.sqrt(abs(np.linalg.det(transform[:, :2]))))
    if scale < 0.5:
        # Downsampling by more than 2: blur first so the patch is an average, not an aliased sample.
        sigma = 0.5 / scale
        x0, y0, x1, y1 = _image_box(transform, side, image.shape)
        if x1 <= x0 or y1 <= y0:
            return np.zeros((side, side) + image.shape[2:], image.dtype)
        pad = int(3 * sigma) + 1
        bx0, by0 = max(0, x0 - pad), max(0, y0 - pad)
        bx1, by1 = min(image.shape[1], x1 + pad), min(image.shape[0], y1 + pad)
        window = cv2.GaussianBlur(image[by0:by1, bx0:bx1], (0, 0), sigma)
        shifted = transform.copy()
        shifted[:, 2] += transform[:, :2] @ np.array([bx0, by0], np.float64)
        return cv2.warpAffine(window, shifted, (side, side), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return cv2.warpAffine(image, transform, (side, side), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def shape_raster(points: np.ndarray, transform: np.ndarray, spec: RegionSpec) -> np.ndarray:
    """(side, side, SHAPE_CHANNELS) float32 0..1: the region's geometry drawn in patch pixels.

    Eye: the opening between the lids, the iris disc, the lid lines.
    Mouth: the opening between the inner lips, the lips (outer outline), the inner lip lines.
    """
    side = spec.side
    canvas = np.zeros((SHAPE_CHANNELS, side, side), np.float32)

    def fixed(indices) -> np.ndarray:
        return np.round(to_patch(transform, points[list(indices)]) * (1 << SUBPIXEL)).astype(np.int32)

    def fill(channel: int, polygon: np.ndarray) -> None:
        cv2.fillPoly(canvas[channel], [polygon], 1.0, lineType=cv2.LINE_AA, shift=SUBPIXEL)

    def lines(channel: int, *polylines: np.ndarray) -> None:
        thickness = max(1, round(side / 48))
        cv2.polylines(canvas[channel], list(polylines), False, 1.0, thickness, lineType=cv2.LINE_AA, shift=SUBPIXEL)

    if spec.kind == "eye":
        shaping = region_landmarks(spec)
        upper, lower, iris = shaping[:9], shaping[9:18], shaping[18:]
        fill(0, np.concatenate([fixed(upper), fixed(lower)[::-1]]))
        ring = to_patch(transform, points[list(iris[1:])])
        centre = to_patch(transform, points[[iris[0]]])[0]
        radius = float(np.linalg.norm(ring - centre, axis=1).mean())
        cv2.circle(canvas[1], tuple(int(v) for v in np.round(centre * (1 << SUBPIXEL))),
                   int(round(radius * (1 << SUBPIXEL))), 1.0, -1, lineType=cv2.LINE_AA, shift=SUBPIXEL)
        canvas[1] *= canvas[0] > 0  # the iris shows only between the lids
        lines(2, fixed(upper), fixed(lower))
    else:
        fill(0, np.concatenate([fixed(lm.LIPS_UPPER_INNER), fixed(lm.LIPS_LOWER_INNER)[::-1]]))
        fill(1, np.concatenate([fixed(lm.LIPS_UPPER_OUTER), fixed(lm.LIPS_LOWER_OUTER)[::-1]]))
        lines(2, fixed(lm.LIPS_UPPER_INNER), fixed(lm.LIPS_LOWER_INNER))
    return np.clip(canvas.transpose(1, 2, 0), 0.0, 1.0)


def paste_mask(spec: RegionSpec) -> np.ndarray:
    """(side, side) float32: where a region's correction applies. A soft ellipse that is exactly 0 well
    inside the patch's border, so a pasted correction leaves no seam and touches nothing outside it."""
    side = spec.side
    semi_x, semi_y = (0.36, 0.26) if spec.kind == "eye" else (0.40, 0.34)
    grid = (np.arange(side, dtype=np.float32) - (side - 1) / 2) / side
    y, x = np.meshgrid(grid, grid, indexing="ij")
    radius = np.sqrt((x / semi_x) ** 2 + (y / semi_y) ** 2)
    t = np.clip((1.25 - radius) / 0.45, 0.0, 1.0)  # 1 inside 0.8 of the ellipse, 0 beyond 1.25 of it
    return (t * t * (3 - 2 * t)).astype(np.float32)


def paste_correction(frame: np.ndarray, correction: np.ndarray, transform: np.ndarray,
                     limit: tuple[int, int, int, int] | None = None) -> None:
    """Add a patch-space correction (side, side, 3) float32, already multiplied by its paste mask, to
    `frame` (uint8, in place) at full resolution. Only the region's bounding box is touched, and only
    inside `limit` (x0, y0, x1, y1) when given."""
    side = correction.shape[0]
    x0, y0, x1, y1 = _image_box(transform, side, frame.shape)
    if limit is not None:
        x0, y0, x1, y1 = max(x0, limit[0]), max(y0, limit[1]), min(x1, limit[2]), min(y1, limit[3])
    if x1 <= x0 or y1 <= y0:
        return
    inverse = cv2.invertAffineTransform(transform)
    inverse[:, 2] -= (x0, y0)
    back = cv2.warpAffine(correction, inverse, (x1 - x0, y1 - y0), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    window = frame[y0:y1, x0:x1].astype(np.float32) + back
    frame[y0:y1, x0:x1] = np.clip(np.rint(window), 0, 255).astype(np.uint8)


def _image_box(transform: np.ndarray, side: int, shape: tuple[int, ...]) -> tuple[int, int, int, int]:
    """The image pixels the patch covers, clipped to the image."""
    inverse = cv2.invertAffineTransform(transform)
    corners = np.array([[-1, -1], [side, -1], [-1, side], [side, side]], np.float64) @ inverse[:, :2].T + inverse[:, 2]
    x0, y0 = np.floor(corners.min(axis=0)).astype(int)
    x1, y1 = np.ceil(corners.max(axis=0)).astype(int) + 1
    return max(0, x0), max(0, y0), min(shape[1], x1), min(shape[0], y1)


@dataclass
class RegionInputs:
    """What the generator sees of one region (channels last, numpy)."""

    spec: RegionSpec
    transform: np.ndarray  # (2, 3) image -> patch, by the target landmarks
    warped: np.ndarray  # (S, S, 3) uint8
    source: np.ndarray  # (S, S, 3) uint8
    target_shape: np.ndarray  # (S, S, SHAPE_CHANNELS) float32
    source_shape: np.ndarray  # (S, S, SHAPE_CHANNELS) float32


def source_region(spec: RegionSpec, source_image: np.ndarray, source_points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(patch, shape) of the photo itself: the same for every frame of a subject."""
    transform = patch_transform(source_points, spec)
    return cut_patch(source_image, transform, spec.side), shape_raster(source_points, transform, spec)


def region_inputs(spec: RegionSpec, warped_frame: np.ndarray, target_points: np.ndarray,
                  source: tuple[np.ndarray, np.ndarray], transform: np.ndarray | None = None) -> RegionInputs:
    """Cut one region out of a warped frame; `source` is `source_region` of its photo, `transform` the
    target's `patch_transform` when the caller has it. Used alike for training and for rendering."""
    if transform is None:
        transform = patch_transform(target_points, spec)
    return RegionInputs(spec, transform, cut_patch(warped_frame, transform, spec.side), source[0],
                        shape_raster(target_points, transform, spec), source[1])
