"""The refine engine's training losses. Images are (B, 3, S, S) in [-1, 1].

Batches come as neighbour pairs: items 2k and 2k+1 are two neighbouring
frames of one clip warped from the same source (for the temporal term).
"""
from __future__ import annotations

import torch
from torch.nn import functional as F


# ----- adversarial

def discriminator_loss(real_logits: list[torch.Tensor], fake_logits: list[torch.Tensor], kind: str) -> torch.Tensor:
    """Averaged over the discriminator's scales."""
    total = 0.0
    for real, fake in zip(real_logits, fake_logits):
        if kind == "hinge":
            total = total + F.relu(1.0 - real).mean() + F.relu(1.0 + fake).mean()
        else:  # least squares
            total = total + ((real - 1.0) ** 2).mean() + (fake**2).mean()
    return total / len(real_logits)


def generator_adversarial_loss(fake_logits: list[torch.Tensor], kind: str) -> torch.Tensor:
    total = 0.0
    for fake in fake_logits:
        total = total + (-fake.mean() if kind == "hinge" else ((fake - 1.0) ** 2).mean())
    return total / len(fake_logits)


def feature_matching_loss(real_features: list[list[torch.Tensor]], fake_features: list[list[torch.Tensor]]) -> torch.Tensor:
    """L1 between the discriminator's intermediate features of real and refined images (not the logits)."""
    total, count = 0.0, 0
    for real_scale, fake_scale in zip(real_features, fake_features):
        for real, fake in zip(real_scale[:-1], fake_scale[:-1]):
            total = total + (real.detach() - fake).abs().mean()
            count += 1
    return total / max(count, 1)


# ----- reconstruction

def l1_loss(refined: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return (refined - target).abs().mean()


def sample_patches(images: torch.Tensor, points: torch.Tensor, patch: int) -> torch.Tensor:
    """(B, K, 3, patch, patch) bilinear patches centred on `points` (B, K, 2) in grid_sample's [-1, 1] units."""
    batch, count = points.shape[:2]
    side = images.shape[-1]
    offsets = (torch.arange(patch, device=images.device, dtype=images.dtype) - (patch - 1) / 2) * (2.0 / side)
    dy, dx = torch.meshgrid(offsets, offsets, indexing="ij")
    grid = points[:, :, None, None, :] + torch.stack([dx, dy], dim=-1)  # (B, K, p, p, 2)
    sampled = F.grid_sample(images, grid.reshape(batch, count * patch, patch, 2).to(images.dtype),
                            mode="bilinear", padding_mode="border", align_corners=False)
    return sampled.reshape(batch, 3, count, patch, patch).permute(0, 2, 1, 3, 4)


def motion_consistency_loss(refined: torch.Tensor, source: torch.Tensor, target_points: torch.Tensor,
                            source_points: torch.Tensor, patch: int) -> torch.Tensor:
    """The output's landmarks where the rig put them, as a differentiable term: the picture around each
    landmark in the output, at the rig's target position, must look like the picture around that landmark
    in the source. A generator that slid a feature (an eye corner, a lip edge) away from where the rig
    put it pays here, whatever the real frame shows."""
    return (sample_patches(refined, target_points, patch) - sample_patches(source, source_points, patch)).abs().mean()


def temporal_consistency_loss(refined: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Neighbouring frames change as much as the real video does, no more (flicker) and no less."""
    refined_change = refined[1::2] - refined[0::2]
    real_change = target[1::2] - target[0::2]
    return (refined_change - real_change).abs().mean()


def mask_sparsity_loss(mask: torch.Tensor) -> torch.Tensor:
    """A small pull toward the warp: the blend mask is used where it helps, not everywhere."""
    return mask.mean()
