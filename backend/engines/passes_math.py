"""The compositing passes' pure functions: the person's alpha, the mattes
(face, eyes, mouth interior), the motion vectors in Blender's Vector pass
layout, and sRGB to linear. numpy and OpenCV only: no state, no I/O."""
from __future__ import annotations

import cv2
import numpy as np

from .. import landmarks as lm

MATTE_NAMES = ("person", "face", "eyes", "mouth")  # the mattes every passes frame carries, in this order
SUPERSAMPLE_SMALL, SUPERSAMPLE_LARGE = 4, 2  # matte edge samples per pixel side (polygons of <= 0.25 MP, <= 1 MP)
REGION_SEAM = 0.04  # head-region sides: the band over which the head's own mask fades into the photo's


def soft_polygons(shape: tuple[int, int], polygons: list[np.ndarray]) -> np.ndarray:
    """(H, W) float32 coverage of the union of `polygons` ((N, 2) pixel x, y; pixel centres at integers):
    an edge pixel holds how much of it the polygons cover. Each polygon is filled on a supersampled grid
    over its own bounding box (finer for small ones, which are the eyes and the mouth) and averaged down.
    OpenCV's own anti-aliased fill draws a soft stroke around the shape, half a pixel too wide."""
    height, width = shape
    matte = np.zeros(shape, np.float32)
    for polygon in polygons:
        polygon = np.asarray(polygon, np.float64)
        x0, y0 = np.maximum(np.floor(polygon.min(axis=0)).astype(int) - 1, 0)
        x1, y1 = np.minimum(np.ceil(polygon.max(axis=0)).astype(int) + 2, (width, height))
        if x1 <= x0 or y1 <= y0:
            continue
        area = (x1 - x0) * (y1 - y0)
        factor = SUPERSAMPLE_SMALL if area <= 250_000 else SUPERSAMPLE_LARGE if area <= 1_000_000 else 1
        fine = np.zeros(((y1 - y0) * factor, (x1 - x0) * factor), np.uint8)
        # Fine pixel centres sit at (p + 0.5) / factor - 0.5 in the window's pixels.
        points = ((polygon - (x0, y0) + 0.5) * factor - 0.5) * 16
        cv2.fillPoly(fine, [np.round(points).astype(np.int32)], 255, lineType=cv2.LINE_8, shift=4)
        coarse = cv2.resize(fine, (x1 - x0, y1 - y0), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0
        np.maximum(matte[y0:y1, x0:x1], coarse, out=matte[y0:y1, x0:x1])
    return matte


def face_mattes(landmarks: np.ndarray, shape: tuple[int, int], origin: tuple[int, int] = (0, 0)) -> dict[str, np.ndarray]:
    """The face, eyes and mouth-interior mattes ((H, W) float32 0..1) of a frame whose `landmarks`
    ((478, 2+) image pixels) the rig placed, over a `shape` window whose top-left pixel is `origin`.

    eyes: both eye openings (what the lids leave visible). mouth: the opening between the
    inner lips. face: the skin inside the face outline, without the eyes and the mouth interior.
    """
    points = np.asarray(landmarks, np.float64)[:, :2] - np.asarray(origin, np.float64)
    eyes = soft_polygons(shape, [points[list(lm.eye_polygon(side))] for side in ("left", "right")])
    mouth = soft_polygons(shape, [points[list(lm.inner_lip_polygon())]])
    outline = soft_polygons(shape, [points[list(lm.FACE_OVAL)]])
    face = np.clip(outline - eyes - mouth, 0.0, 1.0)
    return {"face": face, "eyes": np.minimum(eyes, 1.0), "mouth": mouth}


def region_seam_weight(region: tuple[int, int, int, int], image_shape: tuple[int, int]) -> np.ndarray:
    """(region h, region w) float32: 1 inside the head region, falling to 0 at its sides where they lie
    inside the photo (not at the photo's own border), so the head's mask fades into the whole photo's."""
    x0, y0, x1, y1 = region
    height, width = image_shape
    band = max(2.0, REGION_SEAM * max(x1 - x0, y1 - y0))

    def ramp(size: int, open_start: bool, open_end: bool) -> np.ndarray:
        position = np.arange(size, dtype=np.float32) + 0.5
        weight = np.ones(size, np.float32)
        if open_start:
            weight = np.minimum(weight, position / band)
        if open_end:
            weight = np.minimum(weight, (size - position) / band)
        return np.clip(weight, 0.0, 1.0)

    return np.outer(ramp(y1 - y0, y0 > 0, y1 < height), ramp(x1 - x0, x0 > 0, x1 < width))


def blend_region(whole: np.ndarray, head: np.ndarray, region: tuple[int, int, int, int],
                 seam: np.ndarray) -> np.ndarray:
    """`whole` (a mask, or an image, of a larger area: float32) with the head region's own `head` (a finer mask;
    the head engine's plate) blended in by `seam` over `region`."""
    x0, y0, x1, y1 = region
    out = whole.astype(np.float32, copy=True)
    weight = seam if head.ndim == 2 else seam[..., None]
    out[y0:y1, x0:x1] += weight * (head - out[y0:y1, x0:x1])
    return out


def motion_from_previous(backward: np.ndarray, previous_forward: np.ndarray, scale: float) -> np.ndarray:
    """Per pixel, how far what it shows moved since the previous frame: (h, w, 2) float32 (x right, y down).

    `backward` ((h, w, 2), pixels): this frame's backward displacement (pixel + it = where in the photo
    the pixel's colour comes from). `previous_forward` ((H', W', 2) at `scale` of those pixels):
    the previous frame's forward displacement (photo point + it = where the previous frame showed it).
    The pixel's photo point appeared at photo point + previous forward; the motion is the rest of the
    way to the pixel: -(backward + previous forward at the photo point).
    """
    height, width = backward.shape[:2]
    source_x = backward[..., 0] + np.arange(width, dtype=np.float32)[None, :]
    source_y = backward[..., 1] + np.arange(height, dtype=np.float32)[:, None]
    # Sample the working-resolution field at the photo points (working pixel centres at (p + 0.5) * scale - 0.5).
    forward = cv2.remap(previous_forward, (source_x + 0.5) * scale - 0.5, (source_y + 0.5) * scale - 0.5,
                        cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE) / np.float32(scale)
    return -(backward + forward)


def blender_vector_pass(motion: np.ndarray) -> np.ndarray:
    """(h, w, 4) float32 in the layout of Blender's Vector pass from a (h, w, 2) motion (x right, y down).

    Blender (Cycles, EEVEE, and the compositor's Vector Blur that reads it) stores, in pixels with y
    up, X, Y = where the pixel was in the previous frame minus where it is now, and Z, W = where it is
    now minus where it will be in the next frame. The next frame is not known while frames stream, so
    it is taken to continue at the same speed: both halves hold the same vector.
    """
    vector = np.empty(motion.shape[:2] + (4,), np.float32)
    vector[..., 0] = -motion[..., 0]
    vector[..., 1] = motion[..., 1]  # -(motion) with y flipped up
    vector[..., 2:] = vector[..., :2]
    return vector


def srgb_to_linear_table() -> np.ndarray:
    """(256,) float32: each 8-bit sRGB code's linear value (IEC 61966-2-1)."""
    code = np.arange(256, dtype=np.float64) / 255.0
    return np.where(code <= 0.04045, code / 12.92, ((code + 0.055) / 1.055) ** 2.4).astype(np.float32)


SRGB_TO_LINEAR = srgb_to_linear_table()


def linear_to_srgb(linear: np.ndarray) -> np.ndarray:
    """Linear values to sRGB codes 0..1 (the inverse of srgb_to_linear_table)."""
    linear = np.clip(np.asarray(linear, np.float64), 0.0, 1.0)
    return np.where(linear <= 0.0031308, linear * 12.92, 1.055 * linear ** (1 / 2.4) - 0.055)
