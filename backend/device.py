"""Which compute device the backend runs on.

torch is optional (the warp engine needs only numpy/OpenCV), so CUDA is
detected through it when it is installed and the CPU is reported otherwise.
"""
from __future__ import annotations

import os
import platform
from dataclasses import dataclass

from .shared import protocol
from .errors import EnlivenError

DEVICE_CHOICES = ("auto", "cpu", "cuda")


class DeviceError(EnlivenError):
    code = protocol.E_NO_DEVICE
    exit_code = 2


@dataclass(frozen=True)
class DeviceInfo:
    kind: str  # "cpu" or "cuda"
    name: str  # "NVIDIA H100 80GB HBM3" or "CPU (x86_64, 16 cores)"

    def to_dict(self) -> dict:
        return {"kind": self.kind, "name": self.name}


def _cpu() -> DeviceInfo:
    return DeviceInfo("cpu", f"CPU ({platform.machine() or 'unknown'}, {os.cpu_count() or 1} cores)")


def _cuda_name() -> str | None:
    try:
        import torch  # optional: only the refine engine and training need it
    except Exception:  # noqa: BLE001 - a broken torch install is the same as none for us
        return None
    try:
        if torch.cuda.is_available():
            return str(torch.cuda.get_device_name(0))
    except Exception:  # noqa: BLE001 - driver trouble: fall back to the CPU
        return None
    return None


def detect_device(requested: str = "auto") -> DeviceInfo:
    """Resolve --device auto|cpu|cuda. Asking for cuda where there is none is an error."""
    if requested not in DEVICE_CHOICES:
        raise DeviceError(f"Unknown device {requested!r}; choose one of {', '.join(DEVICE_CHOICES)}.")
    if requested == "cpu":
        return _cpu()
    name = _cuda_name()
    if name is not None:
        return DeviceInfo("cuda", name)
    if requested == "cuda":
        raise DeviceError("--device cuda was asked for but no CUDA GPU is usable here "
                          "(is PyTorch with CUDA support installed?). Use --device auto or cpu.")
    return _cpu()
