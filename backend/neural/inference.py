"""Running a trained generator on one frame's crop (used by enliven.engines.refine.RefineEngine)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..device import detect_device
from ..engines.crops import CropInputs
from .checkpoint import load_generator
from .tensors import bfloat16_autocast, to_tensor


class Refiner:
    """A generator loaded once; call it with CropInputs, get the refined crop (S, S, 3) float32 0..255."""

    def __init__(self, checkpoint: str | Path, device: str = "auto"):
        info = detect_device(device)
        self.device = torch.device("cuda" if info.kind == "cuda" else "cpu")
        self.generator, self.config, self.step = load_generator(checkpoint, self.device)
        self.side = self.config.side
        self.autocast = bfloat16_autocast(self.device)
        self.noise = self.generator.inference_noise(1, self.device)

    def _gate(self, inputs: CropInputs) -> torch.Tensor | None:
        if self.config.refine_region != "face":
            return None
        return torch.from_numpy(inputs.face_gate)[None, None].to(self.device)

    @torch.inference_mode()
    def __call__(self, inputs: CropInputs) -> np.ndarray:
        def batch(array: np.ndarray, image: bool) -> torch.Tensor:
            tensor = to_tensor(array) if image else torch.from_numpy(np.ascontiguousarray(array.transpose(2, 0, 1)))
            return tensor[None].to(self.device, non_blocking=True)

        with torch.autocast(**self.autocast):
            refined, _ = self.generator(batch(inputs.warped, True), batch(inputs.source, True),
                                        batch(inputs.displacement, False), batch(inputs.masks, False), self.noise,
                                        self._gate(inputs))
        return ((refined[0].float().clamp(-1, 1) + 1) * 127.5).permute(1, 2, 0).cpu().numpy()
