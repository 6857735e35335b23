"""The eyeball behind a moving iris, for the warp engine's gaze (pure numpy/OpenCV, no I/O).

A gaze moves the photo's iris as a rigid disc (warp.py draws it); what it
uncovers is sclera the photo never showed. It is built once per eye:
- row by row, it continues the sclera the photo shows just beside the hole
  (bright, little coloured pixels only: not lid rims, lashes, skin or the
  caruncle), so each row keeps its own shadow and tint and joins without a
  seam;
- a row with no such pixels gets a model: an eyeball shaded darker under
  the upper lid, toward the lower lid and toward the corners, in the colour
  of the sclera beside the hole, or where the eye shows almost none, of its
  whitest, least coloured pixels pulled toward neutral;
- it takes the photo's tint (grey in a black-and-white photo) and grain.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from .palette import LUMA, Palette, saturation
from .warp_math import polygon_mask

IRIS_DISC = 1.1  # iris radii: the disc that moves, the dark limbal ring included
IRIS_FILL = 1.45  # iris radii: the sclera is filled in this far behind the iris (the tracked radius runs small)
IRIS_STILL = 0.1  # iris radii of gaze over which the drawn iris fades in (none: the warped eye as it is)
LID_SHADOW = 0.35  # how much darker the sclera is right under the upper lid ...
LID_SHADOW_REACH = 0.25  # ... fading over this share of the eye's height
LOWER_SHADOW = 0.1  # darker toward the lower lid ...
LOWER_SHADOW_REACH = 0.15
CORNER_SHADOW = 0.15  # ... and toward the corners (at the corner, quadratic in between)
MAX_SCLERA_SATURATION = 0.12  # a sclera colour more coloured than this is pulled toward grey
SCLERA_SATURATION = 0.22  # a pixel beside the iris is read as sclera when less coloured than this ...
SCLERA_BRIGHTNESS = 0.6  # ... and brighter than this share of the eye's brightest
SCLERA_RING = 0.6  # iris radii beyond the hole where the photo's own sclera is read ...
MIN_SCLERA_PIXELS = 8  # ... when it shows at least this many pixels of it
SCLERA_GRAIN = 0.6  # the sclera is smoother than the skin: this share of the photo's grain


@dataclass
class Eyeball:
    """One eye of the source, for drawing its iris elsewhere: patches start at `origin` (region pixels)."""

    centre: np.ndarray  # (2,) iris centre, region pixels
    radius: float  # iris radius, pixels
    origin: tuple[int, int]
    sclera: np.ndarray  # (h, w, 3) uint8, the eye with its iris replaced by sclera
    iris: np.ndarray  # (h, w, 3) uint8, the eye with its iris completed under the lids
    opening: np.ndarray  # (h, w) float32, 1 inside the eye's opening (a pixel wider), 0 outside, anti-aliased


def build_eyeball(image: np.ndarray, centre: np.ndarray, radius: float, upper_lid: np.ndarray,
                  lower_lid: np.ndarray, palette: Palette) -> Eyeball:
    """The eyeball of one eye of `image` (the head region): `centre` and `radius` of its iris, its lids
    ((N, 2) pixels each, corner to corner, the same two corners); the photo's `palette` (its tint, grain)."""
    opening = np.concatenate([upper_lid, lower_lid[::-1][1:-1]])
    pad = radius * IRIS_FILL + 2
    x0, y0 = np.floor(np.minimum(opening.min(axis=0), centre - pad)).astype(int) - 2
    x1, y1 = np.ceil(np.maximum(opening.max(axis=0), centre + pad)).astype(int) + 3
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, image.shape[1]), min(y1, image.shape[0])
    patch = np.ascontiguousarray(image[y0:y1, x0:x1])
    origin = np.array([x0, y0], np.float64)
    local_centre = centre - origin
    inside = polygon_mask(patch.shape[:2], [opening - origin]) > 0
    # Where the frame shows the opening's own pixels: a pixel wider than the contour, which runs on the lid rims.
    shown = cv2.GaussianBlur(cv2.dilate(inside.astype(np.float32), np.ones((3, 3), np.uint8)), (0, 0), 0.7)
    ys, xs = np.mgrid[:patch.shape[0], :patch.shape[1]]
    distance = np.hypot(xs - local_centre[0], ys - local_centre[1])
    iris_area = distance <= radius * IRIS_FILL
    sclera_samples = patch[inside & ~iris_area].reshape(-1, 3).astype(np.float32)
    iris_samples = patch[inside & iris_area].reshape(-1, 3).astype(np.float32)
    if len(sclera_samples) < 4 or len(iris_samples) < 4:
        return Eyeball(centre, radius, (x0, y0), patch, patch, shown)

    hole = iris_area & inside
    shade = sclera_shading(patch.shape[:2], upper_lid - origin, lower_lid - origin)
    colour = sclera_colour(sclera_samples)
    pixels = patch.astype(np.float32)
    # The photo's own sclera beside the hole: only bright, little coloured pixels count, not lid rims,
    # lashes, skin or the pink caruncle in the corners. They set the model's colour and brightness.
    luma = pixels @ LUMA
    beside = (inside & ~iris_area & (distance < radius * (IRIS_FILL + SCLERA_RING))
              & (saturation(pixels) < SCLERA_SATURATION) & (luma > SCLERA_BRIGHTNESS * np.percentile(luma[inside], 95)))
    if beside.sum() >= MIN_SCLERA_PIXELS:
        colour = np.median(pixels[beside] / np.maximum(shade[beside], 0.75)[:, None], axis=0)
    model = colour[None, None, :] * shade[..., None]
    # Each row continues the sclera the photo shows in it (its own shadow and tint), where it shows any.
    fill = cv2.GaussianBlur(across_rows(pixels, hole, beside, model), (1, 7), 0)
    grain = np.random.default_rng(0).normal(0.0, SCLERA_GRAIN * palette.grain, patch.shape[:2])[..., None]
    fill = np.clip(palette.paint(fill) + grain, 0, 255).astype(np.uint8)
    sclera = np.where(hole[..., None], fill, patch)
    # The iris's hidden top and bottom (under the lids): the visible iris, inpainted across.
    visible_iris = np.where((inside & iris_area)[..., None], patch, np.median(iris_samples, axis=0).astype(np.uint8))
    iris_texture = cv2.inpaint(visible_iris, (iris_area & ~inside).astype(np.uint8), max(2.0, radius / 3),
                               cv2.INPAINT_TELEA)
    return Eyeball(centre, radius, (x0, y0), sclera, iris_texture, shown)


def across_rows(pixels: np.ndarray, hole: np.ndarray, known: np.ndarray, model: np.ndarray) -> np.ndarray:
    """The `hole` of `pixels` ((H, W, 3) float32) filled row by row: interpolated between the row's `known`
    pixels (constant past the last), or `model` ((H, W, 3)) in a row with none."""
    filled = np.where(hole[..., None], model, pixels)
    columns = np.arange(pixels.shape[1])
    for row in np.flatnonzero(hole.any(axis=1) & known.any(axis=1)):
        where, gaps = np.flatnonzero(known[row]), hole[row]
        for channel in range(3):
            filled[row, gaps, channel] = np.interp(columns[gaps], where, pixels[row, where, channel])
    return filled


def sclera_colour(samples: np.ndarray) -> np.ndarray:
    """The sclera's RGB from pixels of the eye beside the iris ((N, 3) float32).

    The eye contour is loose: lid rims, lashes and the caruncle lie inside
    it. The sclera is the whitest part of what remains: bright (not lashes or
    shadow) and little coloured (not skin, orange to pink); specular glints
    (the brightest few) are left out. A colour still far from neutral (little
    sclera visible, mostly skin chosen) is pulled toward its own grey.
    """
    chroma = samples.max(axis=1) - samples.min(axis=1)
    whiteness = samples @ LUMA - 1.5 * chroma
    low, high = np.percentile(whiteness, [85, 98])
    chosen = samples[(whiteness >= low) & (whiteness <= high)]
    colour = np.median(chosen if len(chosen) else samples, axis=0)
    grey = float(colour @ LUMA)
    coloured = float(saturation(colour))
    if coloured > MAX_SCLERA_SATURATION:
        colour = grey + (colour - grey) * (MAX_SCLERA_SATURATION / coloured)
    return colour.astype(np.float32)


def sclera_shading(shape: tuple[int, int], upper_lid: np.ndarray, lower_lid: np.ndarray) -> np.ndarray:
    """(H, W) float32 brightness factor of an eyeball seen between these lids (patch pixels): the upper
    lid's shadow, a little toward the lower lid, and the eyeball turning away toward the corners."""
    height, width = shape
    columns = np.arange(width, dtype=np.float32)
    rows = np.arange(height, dtype=np.float32)[:, None]
    top = np.interp(columns, *_ascending(upper_lid))
    bottom = np.interp(columns, *_ascending(lower_lid))
    eye_height = max(float((bottom - top).max()), 1.0)
    below_top = np.clip(rows - top[None, :], 0.0, None) / eye_height
    above_bottom = np.clip(bottom[None, :] - rows, 0.0, None) / eye_height
    left, right = float(min(upper_lid[0, 0], upper_lid[-1, 0])), float(max(upper_lid[0, 0], upper_lid[-1, 0]))
    across = np.clip((columns - (left + right) / 2) / max((right - left) / 2, 1.0), -1.0, 1.0)[None, :]
    shade = (1.0 - LID_SHADOW * np.exp(-below_top / LID_SHADOW_REACH)
             - LOWER_SHADOW * np.exp(-above_bottom / LOWER_SHADOW_REACH) - CORNER_SHADOW * across**2)
    return np.clip(shade, 0.4, 1.0).astype(np.float32)


def _ascending(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    order = np.argsort(points[:, 0])
    return points[order, 0], points[order, 1]
