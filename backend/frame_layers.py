"""One frame and its compositing passes, at the photo's resolution: what an
engine renders (enliven.engines.passes) and the frame files hold
(enliven.frame_formats). A leaf: numpy only."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class FrameLayers:
    rgb: np.ndarray  # (H, W, 3) uint8 sRGB; with alpha, the person's own colour (straight, not blended)
    alpha: np.ndarray | None = None  # (H, W) float32 0..1: the person
    mattes: dict[str, np.ndarray] | None = None  # "person", "face", "eyes", "mouth" -> (H, W) float32 0..1
    vector: np.ndarray | None = None  # (H, W, 4) float32, Blender's Vector pass (see passes_math.blender_vector_pass)
