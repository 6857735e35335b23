"""VGG19's convolutional layers, built here (torchvision is not a dependency), for the perceptual loss.

The layer indices match torchvision's `vgg19().features`, so a torchvision
weights file loads directly: its `features.N.weight` / `features.N.bias`
keys (the classifier's are ignored). Weights are read from a file the user
gives (`--vgg-weights PATH`) with weights_only=True; nothing is downloaded.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import torch
from torch import nn

from ..shared import protocol
from ..errors import EnlivenError
from .checkpoint import UnreadableFile, load_weights_only

# torchvision's configuration "E": numbers are 3x3 convolutions (each followed by a ReLU), "M" max pools.
VGG19_LAYOUT = (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M")
# relu1_1, relu2_1, relu3_1, relu4_1, relu5_1 (indices in `features`) and pix2pixHD's weights for them.
FEATURE_LAYERS = (1, 6, 11, 20, 29)
FEATURE_WEIGHTS = (1 / 32, 1 / 16, 1 / 8, 1 / 4, 1.0)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class VGGWeightsError(EnlivenError):
    code = protocol.E_BAD_VGG_WEIGHTS
    exit_code = 2


def vgg19_features(until: int = FEATURE_LAYERS[-1]) -> nn.Sequential:
    """torchvision's vgg19().features[: until + 1], same module indices."""
    layers: list[nn.Module] = []
    channels = 3
    for item in VGG19_LAYOUT:
        if item == "M":
            layers.append(nn.MaxPool2d(2, 2))
        else:
            layers += [nn.Conv2d(channels, item, 3, padding=1), nn.ReLU()]
            channels = item
    return nn.Sequential(*layers[: until + 1])


class VGGPerceptual(nn.Module):
    """Weighted L1 between VGG19 features of two images in [-1, 1]. Frozen."""

    def __init__(self, features: nn.Sequential):
        super().__init__()
        self.features = features.eval().requires_grad_(False)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))

    def train(self, mode: bool = True):  # always frozen, whatever the trainer does
        return super().train(False)

    def _activations(self, image: torch.Tensor) -> list[torch.Tensor]:
        x = ((image + 1) / 2 - self.mean) / self.std
        out = []
        for index, layer in enumerate(self.features):
            x = layer(x)
            if index in FEATURE_LAYERS:
                out.append(x)
        return out

    def forward(self, image: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            wanted = self._activations(reference)
        got = self._activations(image)
        return sum(w * (a - b).abs().mean() for w, a, b in zip(FEATURE_WEIGHTS, got, wanted))


def load_vgg19(path: str | Path) -> VGGPerceptual:
    """The perceptual loss with weights from a torchvision vgg19 state dict file (e.g. vgg19-dcbb9e9d.pth)."""
    path = Path(path)
    try:
        state = load_weights_only(path)
    except FileNotFoundError:
        raise VGGWeightsError(f"No VGG weights file '{path}'.") from None
    except UnreadableFile as error:
        raise VGGWeightsError(f"'{path}' is not a torchvision VGG19 weights file ({error}).") from None
    if not isinstance(state, dict):
        raise VGGWeightsError(f"'{path}' does not hold a state dict.")
    features = vgg19_features()
    wanted = features.state_dict()
    picked = {}
    for key in wanted:
        name = f"features.{key}"
        if name not in state and key in state:  # a file of the features alone
            name = key
        if name not in state:
            raise VGGWeightsError(f"'{path}' is not a torchvision VGG19 state dict: '{name}' is missing.")
        if tuple(state[name].shape) != tuple(wanted[key].shape):
            raise VGGWeightsError(f"'{path}': '{name}' has shape {tuple(state[name].shape)}, VGG19 needs "
                                  f"{tuple(wanted[key].shape)} (is it VGG16 or another network?).")
        picked[key] = state[name]
    features.load_state_dict(picked)
    return VGGPerceptual(features)


def vgg_weights_record(path: str | Path) -> dict[str, str]:
    """What a checkpoint records of the VGG weights its perceptual loss used: where they were, and their
    sha256, so that a resumed run is given the same weights (or finds them there again)."""
    return {"path": str(Path(path).resolve()), "sha256": _sha256(Path(path))}


def resumed_vgg_weights(recorded, given: str | Path | None, checkpoint: Path) -> Path | None:
    """The VGG weights a resumed run goes on with: those `recorded` in its checkpoint (None: it trained
    without the perceptual loss), given again, or found where they were. Without this a resume that left out
    --vgg-weights dropped the perceptual loss silently; other weights or none are refused, by name."""
    if recorded is None:
        if given is not None:
            raise VGGWeightsError(f"{checkpoint} was trained without the perceptual loss: resume it without "
                                  "--vgg-weights, or start a new run folder.")
        return None
    where, digest = Path(recorded["path"]), recorded["sha256"]
    if given is None:
        if where.is_file() and _sha256(where) == digest:
            return where
        state = "has changed" if where.is_file() else "is gone"
        raise VGGWeightsError(f"{checkpoint} was trained with the perceptual loss of the VGG weights '{where}', which "
                              f"{state}: give those weights with --vgg-weights, or start a new run folder.")
    if _sha256(Path(given)) != digest:
        raise VGGWeightsError(f"'{given}' are not the VGG weights {checkpoint} was trained with ('{where}', sha256 "
                              f"{digest[:12]}...): give those, or start a new run folder.")
    return Path(given)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    try:
        with path.open("rb") as file:
            for block in iter(lambda: file.read(1 << 20), b""):
                digest.update(block)
    except FileNotFoundError:
        raise VGGWeightsError(f"No VGG weights file '{path}'.") from None
    return digest.hexdigest()
