"""The discriminator: a multi-scale PatchGAN (pix2pixHD), conditioned on the warped frame and the source.

Each scale sees (condition, image) at a coarser resolution and scores
overlapping patches real or fake; every layer's features are returned too,
for the feature-matching loss. Spectral normalisation keeps it Lipschitz
without batch statistics (small CPU batches, DDP without SyncBatchNorm).
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.utils.parametrizations import spectral_norm

from .config import RefineConfig

CONDITION_CHANNELS = 6  # warped frame + source
IMAGE_CHANNELS = 3


class PatchDiscriminator(nn.Module):
    def __init__(self, channels_in: int, width: int, layers: int):
        super().__init__()
        blocks = []
        channels = channels_in
        for i in range(layers):
            out = width * min(2**i, 8)
            blocks.append(nn.Sequential(spectral_norm(nn.Conv2d(channels, out, 4, 2, 1)), nn.LeakyReLU(0.2)))
            channels = out
        blocks.append(nn.Sequential(spectral_norm(nn.Conv2d(channels, channels, 3, 1, 1)), nn.LeakyReLU(0.2)))
        blocks.append(spectral_norm(nn.Conv2d(channels, 1, 3, 1, 1)))  # patch logits
        self.blocks = nn.ModuleList(blocks)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        features = []
        for block in self.blocks:
            x = block(x)
            features.append(x)
        return features


class MultiScaleDiscriminator(nn.Module):
    def __init__(self, config: RefineConfig):
        super().__init__()
        self.scales = nn.ModuleList(
            PatchDiscriminator(CONDITION_CHANNELS + IMAGE_CHANNELS, config.discriminator_channels,
                               config.discriminator_layers)
            for _ in range(config.discriminator_scales))

    def forward(self, image: torch.Tensor, condition: torch.Tensor) -> list[list[torch.Tensor]]:
        """Per scale, the list of feature maps; the last one is the patch logits."""
        x = torch.cat([condition, image], dim=1)
        outputs = []
        for index, discriminator in enumerate(self.scales):
            if index:
                x = F.avg_pool2d(x, 3, stride=2, padding=1, count_include_pad=False)
            outputs.append(discriminator(x))
        return outputs
