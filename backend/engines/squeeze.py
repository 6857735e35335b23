"""Where the warp squeezes or widens the photo: prefilters (pure numpy/OpenCV, no I/O).

A map that squeezes the photo (the far cheek of a turned head, a collar under a head that drops) samples it
more sparsely than one sample a photo pixel: bilinear sampling then skips detail, and a line one pixel thin
comes out dotted. Where the map squeezes, the frame is sampled from the photo blurred a little, as a camera
would average what it squeezes into one pixel, blended in as the squeeze grows.

A map that widens the photo several times over does the opposite: a surface the photo sees nearly edge-on
(the side of a nose, on a face turned a little away) that a turn brings round to face the camera is drawn
from a strip of photo a few pixels wide, and each of its pixels becomes a patch. The flecks of shading and
grain on that strip, a pixel or two in the photo, came out as dark blotches beside the nose (s12 turned
15-25 degrees: its nose's side widened 2-4.5 times). Where the face's map widens that much, the frame is
sampled from the photo blurred by about a photo pixel, so the strip reads as the soft shading it is.
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
# Frame pixels one photo pixel spans, along the map's most widened direction, where the blurred photo starts
# to be blended into the face (a head turned 25 degrees widens its near cheek 1.2-1.5 times; a nose's side
# seen edge-on 2-4.5 times) ...
WIDEN_FROM = 1.5
WIDEN_FULL = 2.3  # ... and where it is all that is sampled
# photo pixels: the blur sampled there, so that flecks a pixel or two across (which the widening blows up into
# blotches) merge into the shading around them (1.0 left s12's at 15 degrees as blotches)
WIDENED_BLUR = 1.5
WIDENED_SMOOTHING = 1.0  # working pixels: the Gaussian that smooths the widening's weight (no step at a triangle's edge)
MOUTH_KEPT = 0.15  # mouth widths around the lips left sharp (widen_weight)


class Squeezed(NamedTuple):
    """Where a map squeezes (squeeze_weight) or widens (widen_weight) the photo, on every `stride`-th working pixel."""

    weight: np.ndarray  # (h, w) float32: how much of the blurred photo to sample (0..1)
    sigma: float  # the blur, photo pixels
    stronger: np.ndarray | None  # (h, w) float32: how much of the stronger blur instead (0..1), or None ...
    stronger_sigma: float  # ... and that blur (`sigma` where there is none)
    stride: int = STRIDE  # working pixels between the weights' samples


def squeeze(field: np.ndarray, stride: int = 1) -> np.ndarray:
    """(h, w) float32: how many photo pixels one frame pixel spans at most, per working pixel, for a backward
    map (`field`, (h, w, 2) displacement in working pixels, `stride` of them apart; where_from = p + field(p)):
    the largest singular value of its Jacobian, I + the field's gradient (a ratio, so the working grid's
    scale drops out)."""
    return _jacobian_extent(field, stride)[0]


def widening(field: np.ndarray, stride: int = 1) -> np.ndarray:
    """(h, w) float32: how many frame pixels one photo pixel spans at most (squeeze's `field` and `stride`):
    the inverse of the Jacobian's smallest singular value, the largest / det; 1 where the map turns the photo
    over (det <= 0: a fold's hidden strip, which engines/folds.py draws)."""
    largest, determinant = _jacobian_extent(field, stride)
    return np.where(determinant > 0, largest / np.maximum(determinant, 1e-6), 1.0).astype(np.float32)


def _jacobian_extent(field: np.ndarray, stride: int) -> tuple[np.ndarray, np.ndarray]:
    """The largest singular value and the determinant of the backward map's Jacobian (squeeze's arguments)."""
    # Central differences (OpenCV's Sobel of size 1, halved): numpy's gradient is several times slower here.
    a, b, c, d = (cv2.Sobel(np.ascontiguousarray(field[..., k]), cv2.CV_32F, dx, 1 - dx, ksize=1, scale=0.5 / stride,
                            borderType=cv2.BORDER_REPLICATE)
                  for k, dx in ((0, 1), (0, 0), (1, 1), (1, 0)))
    return _extent(a + 1.0, b, c, d + 1.0)


def _extent(a: np.ndarray, b: np.ndarray, c: np.ndarray, d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The largest singular value and the determinant of each 2 x 2 matrix [[a, b], [c, d]] (in closed form:
    numpy's batched linear algebra took 60 ms for a face's 800 triangles)."""
    total = a * a + b * b + c * c + d * d
    det = a * d - b * c
    return np.sqrt(0.5 * (total + np.sqrt(np.maximum(total * total - 4 * det * det, 0.0)))), det


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


def turn_widening(shape: tuple[int, int], still: np.ndarray, turned: np.ndarray, moved: np.ndarray,
                  triangles: np.ndarray) -> np.ndarray | None:
    """(h, w) float32 (`shape`): how many frame pixels one photo pixel spans at most under the head's own
    motion, over each of the `triangles` ((T, 3) indices) where the frame has it (`moved`, (N, 2+) working
    pixels), from the photo's points (`still`) to the same points moved by the head alone (`turned`: its
    turn, nod and tilt, no expression), and a cell around; 1 elsewhere and over triangles that are flat or turn
    over. None where none widens past WIDEN_FROM (most frames: the rest is not worth reading then)."""
    # Each triangle's affine map from the photo to the turned head: its edges from the first corner, turned
    # ((e, f), (g, h)), times the inverse of the same edges in the photo ((p, q), (r, s)).
    still_edges = still[triangles][..., :2] - still[triangles][:, :1, :2]
    turned_edges = turned[triangles][..., :2] - turned[triangles][:, :1, :2]
    (p, q), (r, s), (e, f), (g, h) = (edges[:, k].T for edges in (still_edges, turned_edges) for k in (1, 2))
    area = p * s - q * r
    usable = np.abs(area) > 1e-6
    area = np.where(usable, area, 1.0)
    largest, det = _extent((e * s - g * q) / area, (g * p - e * r) / area, (f * s - h * q) / area, (h * p - f * r) / area)
    widened = np.where(usable & (det > 0), largest, 1.0)
    strongly = np.flatnonzero(widened > WIDEN_FROM)  # (few: a nose's side, the skin under it)
    if not len(strongly):
        return None
    cells = np.ones(shape, np.float32)
    for corners, value in zip(np.round(moved[triangles[strongly], :2] * 16).astype(np.int32), widened[strongly]):
        cv2.fillConvexPoly(cells, corners, float(value), cv2.LINE_8, 4)
    return cv2.dilate(cells, np.ones((3, 3), np.uint8))  # (the map's differences reach a cell across an edge)


def widen_weight(face_field: np.ndarray, face_cover: np.ndarray, margin: float, mouth: np.ndarray,
                 by_turn: np.ndarray) -> Squeezed | None:
    """Where and how much to sample the photo blurred inside the face (`face_cover`) because its map
    (`face_field`) widens the photo (widening: from WIDEN_FROM, all of it from WIDEN_FULL on) and the head's
    own motion widens it as much there (`by_turn`, turn_widening's), read on every working pixel (such a
    strip is a few of them wide); None where nothing widens that much. The blur is WIDENED_BLUR.
    Only a turn or nod brings round a surface the photo saw edge-on: an expression stretches skin the photo
    sees face-on, and its detail is the picture's own (an opening jaw widens s12's moustache as much, and
    blurred, it lost its hairs). Left as they are too: the band `margin` working pixels wide inside the
    outline, where a turn widens the near cheek's edge as much, but the warp engine smooths the face's map
    along its outline, and its widened strip runs from skin into hair, which blurred read as a smear beside
    the face; and the lips and the mouth's interior (`mouth`: (N, 2) working pixels of its outer lips) and
    MOUTH_KEPT around them, whose edges are the picture's own (the astronaut's mouth corners came out soft,
    nodding 30 degrees). (Behind the face, hair and backdrop widen little.)"""
    # Read only around what the turn widens (a few triangles), with room for the outline's band and the blur.
    rows, cols = np.nonzero(by_turn > WIDEN_FROM)
    if not len(rows):
        return None
    pad = int(np.ceil(max(margin, 3 * WIDENED_SMOOTHING))) + 2
    (y0, x0), (y1, x1) = np.maximum((rows.min() - pad, cols.min() - pad), 0), (rows.max() + pad + 1, cols.max() + pad + 1)
    window = (slice(y0, y1), slice(x0, x1))
    cover = np.ascontiguousarray(face_cover[window]).view(np.uint8)
    inside = cv2.distanceTransform(cover, cv2.DIST_L2, 3) > margin
    lips = np.zeros(cover.shape, np.uint8)
    hull = cv2.convexHull((mouth - (x0, y0)).astype(np.float32))
    cv2.fillConvexPoly(lips, np.round(hull * 16).astype(np.int32), 1, cv2.LINE_8, 4)
    inside &= cv2.distanceTransform(1 - lips, cv2.DIST_L2, 3) > MOUTH_KEPT * float(np.ptp(mouth[:, 0]))
    widened = np.where(inside, np.minimum(widening(face_field[window]), by_turn[window]), 1.0)
    weight = np.clip((widened - WIDEN_FROM) / (WIDEN_FULL - WIDEN_FROM), 0.0, 1.0).astype(np.float32)
    if weight.max() <= 0:
        return None
    full = np.zeros(face_cover.shape, np.float32)
    full[window] = cv2.GaussianBlur(weight, (0, 0), WIDENED_SMOOTHING) * cover
    return Squeezed(full, WIDENED_BLUR, None, WIDENED_BLUR, 1)


def prefilter_squeezed(warped: np.ndarray, texture: np.ndarray, where_from: np.ndarray,
                       squeezed: Squeezed | None, scale: float, box: tuple[int, int, int, int]) -> None:
    """Blend into `warped` (in place: `texture` sampled at `where_from`, the pixels of `box`) the blurred
    texture sampled there, by the weight of `squeezed` (squeeze_weight's or widen_weight's: on every
    `squeezed.stride`-th working pixel, `scale` working pixels a pixel, and the blurs), over the part of the box
    where it is above 0."""
    if squeezed is None:
        return
    sigma = max(squeezed.sigma, squeezed.stronger_sigma)  # (the blurred texture's margin)
    full = upsampled_to_box(squeezed.weight, scale, box, squeezed.stride)
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
        stronger = upsampled_to_box(squeezed.stronger, scale, box, squeezed.stride)[window][..., None]
        soft += stronger * (sampled_blurred(squeezed.stronger_sigma) - soft)
    alpha = full[window][..., None]
    sharp = warped[window].astype(np.float32)
    warped[window] = np.clip(sharp + alpha * (soft - sharp) + 0.5, 0, 255).astype(np.uint8)
