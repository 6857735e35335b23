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


def computes_in_bfloat16(device: torch.device) -> bool:
    """Whether `device` computes in bfloat16 natively: a GPU that has it, or a CPU with AVX-512 BF16 or AMX,
    where oneDNN's convolutions take about two thirds of the float32 time to run and a third to half to
    train. Elsewhere bfloat16 would be emulated, and slower than float32."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    # Private but stable since PyTorch 2.0; missing on another build means no bfloat16 here.
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(getattr(torch.cpu, check, lambda: False)() for check in checks)


def bfloat16_autocast(device: torch.device, enabled: bool = True) -> dict:
    """torch.autocast's arguments for running a network in bfloat16 where `device` computes in it
    (computes_in_bfloat16), float32 elsewhere and when not `enabled`. The refine engine's frames differ from
    float32 by at most a level of 255."""
    return {"device_type": device.type, "dtype": torch.bfloat16, "enabled": enabled and computes_in_bfloat16(device)}
