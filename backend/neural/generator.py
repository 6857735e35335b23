"""The generator: a U-Net that corrects the warp engine's frame.

Input (channels, all at side x side over the head region):
  warped frame (3), aligned source (3), displacement field (2, in [-1, 1]
  crop units), disocclusion masks (3: painted, uncovered, stretch), noise
  (config.noise_channels; a fixed pattern when making frames).
Output: a residual image and a blend mask; the refined frame is

    refined = warped + strength * (clamp(warped + gate * mask * residual) - warped)

(gate: 1 everywhere, or only inside the face outline; RefineConfig.refine_region;
strength: 1 while training, the value fitted on validation clips when a
checkpoint carries one, see Trainer.validate).
With RefineConfig.detail_region "disoccluded" the correction (mask * residual) is sharp only where
the warp painted or uncovered pixels; elsewhere it is a smooth shading change
(block means, bilinearly upsampled). A smooth change cannot move an edge, so
the lids, lips and face outline stay where the rig put them: that is what
keeps landmark accuracy (AKD) while the refiner lowers the pixel error.

The residual head starts at exactly zero, so an untrained generator returns
the warp unchanged, and a weak one only changes what it is sure about.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from ..engines.crops import MASK_NAMES
from .config import RefineConfig, unet_widths

IMAGE_CHANNELS = 3
FIELD_CHANNELS = 2


def input_channels(config: RefineConfig) -> int:
    return 2 * IMAGE_CHANNELS + FIELD_CHANNELS + len(MASK_NAMES) + config.noise_channels


def _norm(channels: int, groups: int) -> nn.GroupNorm:
    return nn.GroupNorm(min(groups, channels), channels)


class ConvBlock(nn.Sequential):
    def __init__(self, channels_in: int, channels_out: int, groups: int, stride: int = 1):
        super().__init__(nn.Conv2d(channels_in, channels_out, 3, stride, 1), _norm(channels_out, groups), nn.SiLU())


class ResidualBlock(nn.Module):
    def __init__(self, channels: int, groups: int):
        super().__init__()
        self.body = nn.Sequential(ConvBlock(channels, channels, groups), nn.Conv2d(channels, channels, 3, 1, 1),
                                  _norm(channels, groups))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.silu(x + self.body(x))


class UpBlock(nn.Module):
    """Upsample x2, join the encoder's features at that scale (skip connection), convolve."""

    def __init__(self, channels_in: int, channels_skip: int, channels_out: int, groups: int):
        super().__init__()
        self.fuse = nn.Sequential(ConvBlock(channels_in + channels_skip, channels_out, groups),
                                  ConvBlock(channels_out, channels_out, groups))

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
        return self.fuse(torch.cat([x, skip], dim=1))


def unet_features(network: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """A U-Net's features at full resolution: the stem, the encoder (keeping each scale's features), the
    bottleneck, then the decoder joining them back. `network` has stem, down, bottleneck and up."""
    x = network.stem(x)
    skips = [x]
    for block in network.down:
        x = block(x)
        skips.append(x)
    x = network.bottleneck(skips.pop())
    for block in network.up:
        x = block(x, skips.pop())
    return x


class Generator(nn.Module):
    def __init__(self, config: RefineConfig):
        super().__init__()
        self.config = config
        self.correction_strength = 1.0  # set from a checkpoint's fitted strength for making frames
        groups = config.generator_groups
        widths = unet_widths(config.generator_channels, config.generator_max_channels, config.generator_downsamples)
        self.stem = nn.Sequential(nn.Conv2d(input_channels(config), widths[0], 5, 1, 2), _norm(widths[0], groups), nn.SiLU())
        self.down = nn.ModuleList(nn.Sequential(ConvBlock(widths[i], widths[i + 1], groups, stride=2),
                                                ConvBlock(widths[i + 1], widths[i + 1], groups))
                                  for i in range(config.generator_downsamples))
        self.bottleneck = nn.Sequential(*(ResidualBlock(widths[-1], groups) for _ in range(config.generator_res_blocks)))
        self.up = nn.ModuleList(UpBlock(widths[i + 1], widths[i], widths[i], groups)
                                for i in reversed(range(config.generator_downsamples)))
        self.residual_head = nn.Conv2d(widths[0], IMAGE_CHANNELS, 3, 1, 1)
        self.mask_head = nn.Conv2d(widths[0], 1, 3, 1, 1)
        # Start as the identity over the warp: zero residual, mask at one half.
        nn.init.zeros_(self.residual_head.weight)
        nn.init.zeros_(self.residual_head.bias)
        nn.init.zeros_(self.mask_head.bias)

    def inference_noise(self, batch: int, device: torch.device | str = "cpu") -> torch.Tensor | None:
        """A fixed noise input for making frames: in the training distribution, and the same every frame
        (so the output does not flicker)."""
        if not self.config.noise_channels:
            return None
        side = self.config.side
        noise = torch.randn(1, self.config.noise_channels, side, side, generator=torch.Generator().manual_seed(0))
        return noise.expand(batch, -1, -1, -1).to(device)

    def limit_detail(self, correction: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        """The correction as it is where the warp painted or uncovered pixels; elsewhere only its smooth
        (shading) part."""
        scale, grow = self.config.shading_scale, self.config.detail_dilation
        shading = F.interpolate(F.avg_pool2d(correction, scale), size=correction.shape[-2:], mode="bilinear",
                                align_corners=False)
        painted, uncovered = masks[:, MASK_NAMES.index("painted")], masks[:, MASK_NAMES.index("uncovered")]
        detail = F.max_pool2d(torch.maximum(painted, uncovered)[:, None], grow, 1, grow // 2).clamp(0.0, 1.0)
        return shading + detail * (correction - shading)

    def forward(self, warped: torch.Tensor, source: torch.Tensor, displacement: torch.Tensor, masks: torch.Tensor,
                noise: torch.Tensor | None = None, gate: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Images in [-1, 1], (B, C, side, side); `gate` (B, 1, side, side) limits where the output may differ
        from the warp (None: anywhere). Returns (refined in [-1, 1], the blend mask used, in [0, 1])."""
        parts = [warped, source, displacement, masks]
        if self.config.noise_channels:
            if noise is None:  # no noise given: zeros (the untrained generator is then exactly the warp)
                noise = warped.new_zeros(warped.shape[0], self.config.noise_channels, *warped.shape[-2:])
            parts.append(noise)
        x = unet_features(self, torch.cat(parts, dim=1))
        residual = 2.0 * torch.tanh(self.residual_head(x))  # up to the full [-1, 1] range either way
        mask = torch.sigmoid(self.mask_head(x))
        correction = mask * residual
        if self.config.detail_region == "disoccluded":
            correction = self.limit_detail(correction, masks)
        if gate is not None:
            mask, correction = mask * gate, correction * gate
        refined = (warped + correction).clamp(-1.0, 1.0)
        if self.correction_strength != 1.0:  # exactly the blend Trainer.validate fitted the strength on
            refined = warped + self.correction_strength * (refined - warped)
        return refined, mask
