"""The refine engine: the warp engine's frame, corrected by a trained generator (enliven.neural).

Per frame:
  * the warp engine renders the frame as usual, and we keep what it computed
    on the way (`WarpEngine.render_with_fields`): the backward displacement field, the
    pixels it painted (mouth cavity, closed lids) and the background it uncovered;
  * the head region of the photo, of the warped frame and of those fields is
    resampled to the model's side (`crop_inputs`): exactly what training sees,
    since the dataset builds its examples with the same two functions;
  * the generator predicts a residual and a blend mask over the warped crop
    (an untrained or unsure model leaves the warp as it is), limited to the
    target face outline when the model's config says refine_region="face";
  * the correction (refined - warped) is upsampled to the photo's resolution
    and added inside the head region, feathered to nothing at its border, so a
    4K photo stays 4K and only the head region costs time.

Only this module's RefineEngine needs torch; where torch is missing it warns
and renders with the warp engine alone.
"""
from __future__ import annotations

import warnings
from pathlib import Path

import cv2
import numpy as np

from ..analysis import Subject
from ..errors import CheckpointError
from .crops import crop_inputs
from .warp import MOVING_EPSILON, WarpEngine

FEATHER = 0.06  # the correction fades to nothing over this fraction of the head region at its border


def feather_weights(width: int, height: int, fraction: float = FEATHER) -> np.ndarray:
    """1 inside, falling smoothly to 0 at the border (the warp pins the region's border)."""
    def ramp(n: int) -> np.ndarray:
        distance = np.minimum(np.arange(n), np.arange(n)[::-1]).astype(np.float32)
        edge = max(1.0, fraction * n)
        t = np.clip(distance / edge, 0.0, 1.0)
        return t * t * (3 - 2 * t)
    return np.outer(ramp(height), ramp(width)).astype(np.float32)


class RefineEngine:
    """Warp, then refine the head region with a trained generator. Same interface as WarpEngine."""

    name = "refine"

    def __init__(self, subject: Subject, checkpoint: str | Path | None = None, device: str = "auto"):
        self.warp = WarpEngine(subject)
        self.subject = subject
        self.rig = self.warp.rig
        self.refiner = None
        if checkpoint is None:
            raise CheckpointError("The refine engine needs a trained model: pass --checkpoint RUN_DIR/last.pt "
                               "(made by `enliven train`).")
        if not Path(checkpoint).exists():
            raise CheckpointError(f"No checkpoint '{checkpoint}'. Train one with `enliven train DATASET --out RUN_DIR` "
                               "and pass RUN_DIR/last.pt.")
        try:
            import torch  # noqa: F401 - only to know whether the model can run here
        except ImportError:
            warnings.warn("PyTorch is not installed, so the refine engine renders with the warp engine alone "
                          "(install the 'neural' extra: pip install 'enliven[neural]').", RuntimeWarning, stacklevel=2)
            return
        from ..neural.inference import Refiner

        self.refiner = Refiner(checkpoint, device=device)
        width, height = self.warp.region_size
        self.feather = feather_weights(width, height)

    @property
    def side(self) -> int:
        return self.refiner.side

    def render(self, values: np.ndarray) -> np.ndarray:
        """The animated photo for one frame of channel values (full resolution, uint8 RGB)."""
        warped = self.warp.render_with_fields(values)
        if self.refiner is None or not (np.abs(warped.displacement) > MOVING_EPSILON).any():
            return warped.frame  # all-default motion reproduces the photo exactly, as with the warp engine
        inputs = crop_inputs(self.warp, warped, self.refiner.side)
        refined = self.refiner(inputs)  # (S, S, 3) float32 0..255
        correction = refined - inputs.warped.astype(np.float32)
        width, height = self.warp.region_size
        correction = cv2.resize(correction, (width, height), interpolation=cv2.INTER_LINEAR) * self.feather[..., None]
        x0, y0, x1, y1 = self.warp.region
        frame = warped.frame
        region = frame[y0:y1, x0:x1].astype(np.float32) + correction
        frame[y0:y1, x0:x1] = np.clip(region + 0.5, 0, 255).astype(np.uint8)
        return frame
