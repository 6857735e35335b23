"""Where the warp squeezes the photo: a prefilter against aliasing (pure numpy/OpenCV, no I/O).

A map that squeezes the photo (the far cheek of a turned head, a collar under a head that drops) samples it
more sparsely than one sample a photo pixel: bilinear sampling then skips detail, and a line one pixel thin
comes out dotted. Where the map squeezes, the frame is sampled from the photo blurred a little, as a camera
would average what it squeezes into one pixel, blended in as the squeeze grows.
"""
from __future__ import annotations

from typing import NamedTuple

import cv2
import numpy as np

from .warp_math import upsampled_to_box

SQUEEZE_FROM = 1.4  # photo pixels per frame pixel where the blurred photo starts to be blended in ...
SQUEEZE_FULL = 2.0  # ... and where it is all that is sampled (below 1.4 bilinear sampling still catches a thin line)
MAX_SIGMA = 2.0  # photo pixels: the most the photo is blurred (a squeeze of 4)
STRIDE = 4  # the squeeze is read on every STRIDE-th working pixel each way (it varies slowly; a frame's budget is tight)
# The squeezed part's strongest squeeze is blurred for on its own where its blur is this many times the rest's
# (one blur for all, set by the 90th percentile, left a collar squeezed 4-5x under bald_guys #2's dropped head,
# at the photo's size, dotted: its blur was 1.0 where 2 was needed).
STRONGER = 1.25


class Squeezed(NamedTuple):
    """Where a map squeezes the photo (squeeze_weight), on every STRIDE-th working pixel."""

    weight: np.ndarray  # (h, w) float32: how much of the blurred photo to sample (0..1)
    sigma: float  # the blur, photo pixels
    stronger: np.ndarray | None  # (h, w) float32: how much of the stronger blur instead (0..1), or None ...
    stronger_sigma: float  # ... and that blur (`sigma` where there is none)


def squeeze(field: np.ndarray, stride: int = 1) -> np.ndarray:
    """(h, w) float32: how many photo pixels one frame pixel spans at most, per working pixel, for a backward
    map (`field`, (h, w, 2) displacement in working pixels, `stride` of them apart; where_from = p + field(p)):
    the largest singular value of its Jacobian, I + the field's gradient (a ratio, so the working grid's
    scale drops out)."""
    # Central differences (OpenCV's Sobel of size 1, halved): numpy's gradient is several times slower here.
    a, b, c, d = (cv2.Sobel(np.ascontiguousarray(field[..., k]), cv2.CV_32F, dx, 1 - dx, ksize=1, scale=0.5 / stride,
                            borderType=cv2.BORDER_REPLICATE)
                  for k, dx in ((0, 1), (0, 0), (1, 1), (1, 0)))
    a += 1.0
    d += 1.0
    total = a * a + b * b + c * c + d * d
    det = a * d - b * c
    return np.sqrt(0.5 * (total + np.sqrt(np.maximum(total * total - 4 * det * det, 0.0))))


def blur_for(squeezed: np.ndarray | float) -> np.ndarray | float:
    """The blur (photo pixels) that a squeeze averages into a pixel: a Gaussian of half the squeezed pixel's
    extra width, 0.5 sqrt(squeeze² - 1), held to 0.3..MAX_SIGMA."""
    return np.clip(0.5 * np.sqrt(np.maximum(np.square(squeezed) - 1.0, 0.0)), 0.3, MAX_SIGMA)


def squeeze_weight(face_field: np.ndarray, back_field: np.ndarray, face_cover: np.ndarray) -> Squeezed | None:
    """Where and how much to sample the photo blurred, from each layer's own map (the face's inside
    `face_cover`, the one behind it elsewhere: the jump between them at the silhouette is no squeeze); None
    where nothing is squeezed enough to need it. The blur is what the squeeze (its 90th percentile where it
    is blended in) averages into a pixel (blur_for); where the squeeze is stronger than that blur serves
    (STRONGER), a second blur, for the strongest squeeze, takes over as the squeeze grows."""
    cells = (slice(None, None, STRIDE), slice(None, None, STRIDE))
    squeezed = np.where(face_cover[cells], squeeze(face_field[cells], STRIDE), squeeze(back_field[cells], STRIDE))
    weight = np.clip((squeezed - SQUEEZE_FROM) / (SQUEEZE_FULL - SQUEEZE_FROM), 0.0, 1.0).astype(np.float32)
    if weight.max() <= 0:
        return None
    sigma = float(blur_for(float(np.percentile(squeezed[weight > 0], 90))))
    strongest = float(blur_for(float(squeezed.max())))
    if strongest <= STRONGER * sigma:
        return Squeezed(weight, sigma, None, sigma)
    stronger = np.clip((blur_for(squeezed) - sigma) / (strongest - sigma), 0.0, 1.0).astype(np.float32)
    return Squeezed(weight, sigma, stronger, strongest)


def prefilter_squeezed(warped: np.ndarray, texture: np.ndarray, where_from: np.ndarray,
                       squeezed: Squeezed | None, scale: float, box: tuple[int, int, int, int]) -> None:
    """Blend into `warped` (in place: `texture` sampled at `where_from`, the pixels of `box`) the blurred
    texture sampled there, by the weight of `squeezed` (squeeze_weight's: on every STRIDE-th working pixel,
    `scale` working pixels a pixel, and the blurs), over the part of the box where it is above 0."""
    if squeezed is None:
        return
    sigma = max(squeezed.sigma, squeezed.stronger_sigma)  # (the blurred texture's margin)
    full = upsampled_to_box(squeezed.weight, scale, box, STRIDE)
    rows, cols = np.flatnonzero(full.max(axis=1) > 0), np.flatnonzero(full.max(axis=0) > 0)
    if not len(rows):
        return
    window = (slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1))
    reach = where_from[window]
    # The texture's part the window reads, blurred (with a margin for the blur), sampled where the map says.
    margin = int(np.ceil(3 * sigma)) + 1
    x0, y0 = np.floor(reach.reshape(-1, 2).min(axis=0)).astype(int) - margin
    x1, y1 = np.ceil(reach.reshape(-1, 2).max(axis=0)).astype(int) + margin + 1
    height, width = texture.shape[:2]
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, width), min(y1, height)
    if x1 - x0 < 2 or y1 - y0 < 2:
        return

    def sampled_blurred(blur: float) -> np.ndarray:
        blurred = cv2.GaussianBlur(texture[y0:y1, x0:x1], (0, 0), blur)
        return cv2.remap(blurred, reach - np.float32([x0, y0]), None, cv2.INTER_LINEAR,
                         borderMode=cv2.BORDER_REPLICATE).astype(np.float32)

    soft = sampled_blurred(squeezed.sigma)
    if squeezed.stronger is not None:
        stronger = upsampled_to_box(squeezed.stronger, scale, box, STRIDE)[window][..., None]
        soft += stronger * (sampled_blurred(squeezed.stronger_sigma) - soft)
    alpha = full[window][..., None]
    sharp = warped[window].astype(np.float32)
    warped[window] = np.clip(sharp + alpha * (soft - sharp) + 0.5, 0, 255).astype(np.uint8)
