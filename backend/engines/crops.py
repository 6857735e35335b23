"""The crop contract between the refine engine and its networks: what the
generator sees of one frame, built the same way for training (enliven.neural.dataset)
and for rendering (enliven.engines.refine). A leaf: it knows the warp engine's
output and nothing of torch or of the code that uses it."""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from .. import landmarks as lm
from .warp import WarpEngine
from .warp_frame import WarpedFrame

MASK_NAMES = ("painted", "uncovered", "stretch")  # the disocclusion masks the generator sees, in this order
FACE_GATE_BLUR = 1 / 40  # the face gate's soft edge (Gaussian sigma) as a fraction of the crop side


@dataclass
class CropInputs:
    """What the generator sees, at side x side over the head region (channels last, numpy)."""

    warped: np.ndarray  # (S, S, 3) uint8
    source: np.ndarray  # (S, S, 3) uint8
    displacement: np.ndarray  # (S, S, 2) float32, in units of half the crop side (grid_sample's [-1, 1] units)
    masks: np.ndarray  # (S, S, len(MASK_NAMES)) float32 0..1
    face_gate: np.ndarray  # (S, S) float32: 1 inside the target face outline, soft edge (see `face_gate`)


def crop_inputs(engine: WarpEngine, warped: WarpedFrame, side: int) -> CropInputs:
    x0, y0, x1, y1 = engine.region
    region_w, region_h = engine.region_size
    size = (side, side)
    warped_crop = cv2.resize(warped.frame[y0:y1, x0:x1], size, interpolation=cv2.INTER_AREA)
    source_crop = cv2.resize(engine.source_region, size, interpolation=cv2.INTER_AREA)
    field = cv2.resize(warped.displacement, size, interpolation=cv2.INTER_LINEAR)
    # Working pixels -> region pixels -> [-1, 1] across the crop.
    field[..., 0] *= 2.0 / (engine.scale * region_w)
    field[..., 1] *= 2.0 / (engine.scale * region_h)
    masks = np.stack([cv2.resize(warped.painted, size, interpolation=cv2.INTER_AREA),
                      cv2.resize(warped.uncovered, size, interpolation=cv2.INTER_AREA),
                      stretch_mask(field)], axis=2)
    return CropInputs(warped_crop, source_crop, field.astype(np.float32), masks.astype(np.float32),
                      face_gate(to_crop_points(engine, warped.target_landmarks[list(lm.FACE_OVAL)], side), side))


def face_gate(oval: np.ndarray, side: int) -> np.ndarray:
    """Where the refiner may change the picture when RefineConfig.refine_region is "face": inside the face
    outline (crop pixels), feathered. Corrections outside it (hair edges, shadows on the backdrop) are what a
    model trained on few people learns per person and paints onto the next one."""
    gate = np.zeros((side, side), np.float32)
    cv2.fillPoly(gate, [np.round(oval * 16).astype(np.int32)], 1.0, lineType=cv2.LINE_AA, shift=4)
    return cv2.GaussianBlur(gate, (0, 0), side * FACE_GATE_BLUR)


def stretch_mask(field: np.ndarray) -> np.ndarray:
    """How much the backward map stretches or squeezes the source locally (|log of its Jacobian
    determinant|, clipped to 0..1): where the warp pulls skin over what should be newly visible."""
    side = field.shape[0]
    pixels = field * (side / 2.0)
    dudy, dudx = np.gradient(pixels[..., 0])
    dvdy, dvdx = np.gradient(pixels[..., 1])
    determinant = (1.0 + dudx) * (1.0 + dvdy) - dudy * dvdx
    return np.clip(np.abs(np.log(np.clip(determinant, 1e-3, None))), 0.0, 1.0).astype(np.float32)


def to_crop_points(engine: WarpEngine, points: np.ndarray, side: int) -> np.ndarray:
    """Image pixels -> crop pixels (x, y) of the side x side head region crop."""
    x0, y0 = engine.region[:2]
    region_w, region_h = engine.region_size
    out = np.empty((len(points), 2), np.float32)
    out[:, 0] = (points[:, 0] - x0 + 0.5) * side / region_w - 0.5
    out[:, 1] = (points[:, 1] - y0 + 0.5) * side / region_h - 0.5
    return out
