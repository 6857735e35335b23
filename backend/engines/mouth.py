"""The mouth interior for the warp engine (pure numpy/OpenCV, no I/O).

What a photo's mouth shows decides how its interior moves:
- closed, or showing teeth: the interior splits along the line between the
  lips (upper teeth with the upper lip, lower teeth with the jaw) and the gap
  that opens between the halves is painted as a cavity (`paint_cavity`);
- wide open with few teeth showing (tongue and throat): the interior
  stretches with the lips, since a painted band would cut the tongue in two
  (`interior_stretches`), and teeth, where they show, would smear if stretched.
Either way the interior folds away behind lips that close over it.
"""
from __future__ import annotations

import cv2
import numpy as np

from .. import landmarks as lm
from .palette import LUMA, Palette, saturation
from .warp_math import polygon_mask

CLOSED_MOUTH = 0.12  # photo's mouth openness below which the painted cavity gets a hint of teeth
WIDE_OPEN_MOUTH = 0.3  # photo's mouth openness from which its own interior stretches instead of splitting ...
TEETH_SHARE = 0.25  # ... unless at least this share of the opening is teeth (they move with the lips, not stretch)
INTERIOR_ROWS = (0.25, 0.5, 0.75)  # rows of a stretching interior's points, from the upper lip (0) to the lower (1)
THROAT = np.array([70.0, 22.0, 26.0])  # a warm dark red, so the mouth never looks like a hole
TEETH = np.array([225.0, 218.0, 205.0]) * 0.85


def interior_stretches(image: np.ndarray, landmarks: np.ndarray) -> bool:
    """Whether the photo's mouth is wide open with few teeth showing (its interior stretches)."""
    if lm.mouth_openness(landmarks) < WIDE_OPEN_MOUTH:
        return False
    cheeks = np.round(landmarks[list(lm.CHEEKS), :2]).astype(int)
    cheeks = np.clip(cheeks, 0, (image.shape[1] - 1, image.shape[0] - 1))
    skin = np.median(image[cheeks[:, 1], cheeks[:, 0]].astype(np.float32), axis=0)
    return teeth_share(image, landmarks[list(lm.inner_lip_polygon()), :2], skin) < TEETH_SHARE


def teeth_share(image: np.ndarray, mouth_opening: np.ndarray, skin: np.ndarray) -> float:
    """The share of the pixels inside `mouth_opening` ((N, 2) image pixels, the inner-lip polygon) that look
    like teeth: bright (over 3/4 of the skin's luma, `skin` an RGB colour) and nearly uncoloured. 0 for a
    mouth too small to hold a pixel."""
    x0, y0 = np.maximum(np.floor(mouth_opening.min(axis=0)).astype(int), 0)
    x1, y1 = np.ceil(mouth_opening.max(axis=0)).astype(int) + 1
    patch = image[y0:y1, x0:x1]
    if patch.size == 0:
        return 0.0
    inside = polygon_mask(patch.shape[:2], [mouth_opening - (x0, y0)]) > 0
    pixels = patch[inside].astype(np.float32)
    if len(pixels) == 0:
        return 0.0
    skin_luma = float(np.asarray(skin, np.float32) @ LUMA)
    return float(np.mean((pixels @ LUMA > 0.75 * skin_luma) & (saturation(pixels) < 0.3)))


def paint_cavity(region: np.ndarray, upper: np.ndarray, lower: np.ndarray, target: np.ndarray,
                 origin: tuple[int, int], lip_colour: np.ndarray, with_teeth: bool, palette: Palette) -> np.ndarray:
    """Paint the mouth cavity in the gap that opens between the two halves of the mouth interior.

    `upper`, `lower`: the halves' edge points ((N, 2) image pixels); `target`: the frame's landmarks;
    `region` starts at image pixel `origin` (x, y). The cavity is the lip colour, much darker and darker
    toward the throat; `with_teeth` (the photo's mouth was closed, no teeth to move) adds a hint of upper
    teeth below the upper lip; the colours are the photo's `palette` (grey in a black-and-white photo).
    Returns `region`, or a painted copy of it.
    """
    corners = target[[lm.LIPS_UPPER_INNER[0], lm.LIPS_UPPER_INNER[-1]], :2]
    mouth_width = float(np.linalg.norm(target[lm.MOUTH_LEFT_CORNER, :2] - target[lm.MOUTH_RIGHT_CORNER, :2]))
    gap = float(np.linalg.norm(upper - lower, axis=1).max()) / max(mouth_width, 1.0)
    strength = float(np.clip((gap - 0.02) / 0.06, 0.0, 1.0))
    if strength <= 0:
        return region
    x0, y0 = origin
    polygon = np.concatenate([corners[:1], upper, corners[1:], lower[::-1]]) - (x0, y0)
    px0, py0 = np.floor(polygon.min(axis=0)).astype(int) - 2
    px1, py1 = np.ceil(polygon.max(axis=0)).astype(int) + 3
    px0, py0 = max(px0, 0), max(py0, 0)
    px1, py1 = min(px1, region.shape[1]), min(py1, region.shape[0])
    if px1 - px0 < 2 or py1 - py0 < 2:
        return region
    local = polygon - (px0, py0)
    alpha = np.zeros((py1 - py0, px1 - px0), np.float32)
    cv2.fillPoly(alpha, [np.round(local * 16).astype(np.int32)], 1.0, lineType=cv2.LINE_AA, shift=4)
    blur = max(1, int(mouth_width * 0.02)) * 2 + 1
    alpha = cv2.GaussianBlur(alpha, (blur, blur), 0) * strength

    top_edge = upper - (x0 + px0, y0 + py0)
    order = np.argsort(top_edge[:, 0])
    columns = np.arange(px1 - px0, dtype=np.float32)
    top = np.interp(columns, top_edge[order, 0], top_edge[order, 1])
    rows = np.arange(py1 - py0, dtype=np.float32)[:, None]
    depth = np.clip((rows - top[None, :]) / max(mouth_width * 0.45, 1.0), 0.0, 1.0)
    cavity = (0.5 * lip_colour + 0.5 * THROAT) * (0.75 - 0.45 * depth[..., None])
    if with_teeth:
        centre_x = (top_edge[:, 0].min() + top_edge[:, 0].max()) / 2
        half = (top_edge[:, 0].max() - top_edge[:, 0].min()) / 2 + 1e-6
        teeth_band = (rows - top[None, :] < mouth_width * 0.07) & (np.abs(columns - centre_x)[None, :] < 0.65 * half)
        # Teeth show once the mouth is clearly open; a flat white bar in a slit looks wrong.
        teeth_alpha = float(np.clip((gap - 0.1) / 0.1, 0.0, 1.0))
        cavity = np.where(teeth_band[..., None], cavity + teeth_alpha * (TEETH - cavity), cavity)
    cavity = palette.paint(cavity) + palette.grain_at((x0 + px0, y0 + py0), cavity.shape[:2])
    patch = region[py0:py1, px0:px1].astype(np.float32)
    region = region.copy()
    region[py0:py1, px0:px1] = np.clip(patch + alpha[..., None] * (cavity - patch), 0, 255).astype(np.uint8)
    return region
