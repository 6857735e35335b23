"""Images <-> tensors, as every network here sees them: (C, H, W) float in [-1, 1]."""
from __future__ import annotations

import numpy as np
import torch


def to_tensor(image: np.ndarray) -> torch.Tensor:
    """(H, W, C) uint8 -> (C, H, W) float32 in [-1, 1]."""
    return torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))).float().div_(127.5).sub_(1.0)


def to_image(tensor: torch.Tensor) -> np.ndarray:
    """(C, H, W) in [-1, 1] -> (H, W, C) uint8."""
    return ((tensor.detach().float().cpu().clamp(-1, 1) + 1) * 127.5 + 0.5).byte().permute(1, 2, 0).numpy()
