"""The region generator: a small U-Net that corrects one landmark-aligned patch (an eye or the mouth).

Input (channels, all at the patch's side; enliven.engines.regions cuts them):
  warped patch (3), source patch (3), target shape (3), source shape (3), noise.
Output: the corrected patch, blended over the warp through the region's paste mask:

    corrected = warped + paste_mask * residual

so outside the mask the warp is untouched (no seam at paste-back), and the
residual head starts at exactly zero: an untrained generator returns the warp.
"""
from __future__ import annotations

import torch
from torch import nn

from ..engines.regions import SHAPE_CHANNELS
from .config import unet_widths
from .generator import ConvBlock, ResidualBlock, UpBlock, _norm, unet_features
from .region_config import RegionConfig

IMAGE_CHANNELS = 3


def region_input_channels(config: RegionConfig) -> int:
    return 2 * IMAGE_CHANNELS + 2 * SHAPE_CHANNELS + config.noise_channels


class RegionGenerator(nn.Module):
    def __init__(self, config: RegionConfig, side: int):
        super().__init__()
        self.config, self.side = config, side
        groups = config.groups
        widths = unet_widths(config.channels, config.max_channels, config.downsamples)
        self.stem = nn.Sequential(nn.Conv2d(region_input_channels(config), widths[0], 3, 1, 1),
                                  _norm(widths[0], groups), nn.SiLU())
        self.down = nn.ModuleList(ConvBlock(widths[i], widths[i + 1], groups, stride=2)
                                  for i in range(config.downsamples))
        self.bottleneck = nn.Sequential(*(ResidualBlock(widths[-1], groups) for _ in range(config.res_blocks)))
        self.up = nn.ModuleList(UpBlock(widths[i + 1], widths[i], widths[i], groups)
                                for i in reversed(range(config.downsamples)))
        self.residual_head = nn.Conv2d(widths[0], IMAGE_CHANNELS, 3, 1, 1)
        nn.init.zeros_(self.residual_head.weight)
        nn.init.zeros_(self.residual_head.bias)

    def inference_noise(self, batch: int, device: torch.device | str = "cpu") -> torch.Tensor | None:
        """The same noise every frame (no flicker), drawn from the training distribution."""
        if not self.config.noise_channels:
            return None
        noise = torch.randn(1, self.config.noise_channels, self.side, self.side,
                            generator=torch.Generator().manual_seed(0))
        return noise.expand(batch, -1, -1, -1).to(device)

    def forward(self, warped: torch.Tensor, source: torch.Tensor, target_shape: torch.Tensor,
                source_shape: torch.Tensor, paste_mask: torch.Tensor, noise: torch.Tensor | None = None) -> torch.Tensor:
        """Images in [-1, 1] and shapes in [0, 1], (B, C, S, S); paste_mask (1, 1, S, S). Returns the corrected
        patch in [-1, 1]."""
        parts = [warped, source, target_shape, source_shape]
        if self.config.noise_channels:
            parts.append(noise if noise is not None else
                         warped.new_zeros(warped.shape[0], self.config.noise_channels, *warped.shape[-2:]))
        x = unet_features(self, torch.cat(parts, dim=1))
        residual = 2.0 * torch.tanh(self.residual_head(x))
        return (warped + paste_mask * residual).clamp(-1.0, 1.0)
