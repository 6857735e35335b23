"""Every hyperparameter of the refine engine's model and training, in one dataclass.

Two presets: `small` (the default: trains on a laptop CPU at 128 px) and
`large` (for GPUs, 256 px). A JSON file given to `enliven train --config`
starts from the preset it names ("preset": "small" by default) and overrides
any field it lists; unknown names are refused, so a typo never goes unnoticed.
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

from ..shared import protocol
from ..errors import EnlivenError


class ConfigError(EnlivenError):
    code = protocol.E_BAD_CONFIG
    exit_code = 2


@dataclass(frozen=True)
class RefineConfig:
    # ----- what the generator sees
    side: int = 128  # the head region crop is resampled to side x side
    noise_channels: int = 1  # extra Gaussian noise input channels (0 = none); a fixed pattern at inference
    refine_region: str = "face"  # "face": corrections only inside the face outline; "head": anywhere in the crop
    detail_region: str = "anywhere"  # "anywhere": sharp corrections everywhere; "disoccluded": sharp only where the
    #   warp painted or uncovered pixels (mouth cavity, closed lids, background behind the head), smooth shading
    #   elsewhere, so the refiner cannot move the edges the rig placed (tried for AKD; it did not help on CPU budgets)
    shading_scale: int = 8  # elsewhere the correction is averaged over blocks of this many pixels, then smoothly upsampled
    detail_dilation: int = 5  # the painted/uncovered masks grow by this many pixels (odd) before they allow detail

    # ----- generator: a U-Net over (warped, source, displacement, masks, noise)
    generator_channels: int = 16  # channels after the input convolution
    generator_downsamples: int = 3  # each halves the resolution and doubles the channels
    generator_max_channels: int = 128
    generator_res_blocks: int = 2  # residual blocks at the bottleneck
    generator_groups: int = 8  # GroupNorm groups (batch-size independent, so DDP needs no SyncBatchNorm)

    # ----- discriminator: multi-scale PatchGAN conditioned on (warped, source)
    discriminator_channels: int = 32
    discriminator_layers: int = 3  # strided convolutions per scale
    discriminator_scales: int = 2  # the image at full, 1/2, 1/4 ... resolution

    # ----- losses (weights; 0 switches a term off)
    gan_loss: str = "hinge"  # "hinge" or "ls" (least squares)
    weight_gan: float = 0.1
    weight_feature_matching: float = 1.0  # discriminator features, real vs refined
    weight_l1: float = 10.0
    weight_perceptual: float = 1.0  # VGG19, only when --vgg-weights is given
    weight_motion: float = 2.0  # appearance at each landmark where the rig put it vs the source's
    weight_temporal: float = 2.0  # frame-to-frame change of the output vs of the real video
    weight_mask: float = 0.05  # keeps the blend mask off where it is not needed (graceful fallback to warp)
    motion_patch: int = 5  # side of the patches compared around each landmark (pixels at `side`)
    gan_start_step: int = 1000  # adversarial terms join after this many steps (reconstruction first)

    # ----- optimisation
    steps: int = 20000
    batch_pairs: int = 4  # each example is a pair of neighbouring target frames (for the temporal term)
    lr_generator: float = 5e-4  # higher than pix2pix's 2e-4: the residual head starts at zero and a CPU budget is short
    lr_discriminator: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999
    grad_clip: float = 10.0  # max gradient norm (0 = no clipping)
    # "auto" (bf16 where the device computes in it, else fp16 on CUDA, fp32 on CPU), "bf16", "fp16", "fp32"
    precision: str = "auto"
    seed: int = 0

    # ----- data
    sources_per_clip: int = 8  # source frames per clip (evenly spaced, frame 0 first); warp engines are cached
    neighbour_gap: int = 1  # stored frames between the two targets of a pair
    holdout: tuple[str, ...] = ()  # clip names never trained on
    validation: tuple[str, ...] = ()  # clip names never trained on, scored every validate_every steps: best.pt keeps
    #   the best generator, with its correction strength fitted there (a model trained on few faces can overfit them)
    validate_every: int = 250
    validation_pairs: int = 16  # fixed example pairs from the validation clips
    workers: int = 0  # DataLoader worker processes
    augment_flip: bool = True  # mirror half the examples (a face has no preferred side; stops side-specific fixes)
    augment_colour: float = 0.1  # per-channel gain and offset jitter, the same on source, warp and target

    # ----- bookkeeping
    log_every: int = 10
    sample_every: int = 250  # sample grid and loss curve PNGs
    checkpoint_every: int = 500

    # ----- which preset this started from (recorded for people reading a checkpoint)
    preset: str = "small"

    def to_dict(self) -> dict:
        out = asdict(self)
        out["holdout"], out["validation"] = list(self.holdout), list(self.validation)
        return out

    @classmethod
    def from_dict(cls, data: dict) -> RefineConfig:
        data = dict(data)
        preset = data.pop("preset", "small")
        if preset not in PRESETS:
            raise ConfigError(f"Unknown preset {preset!r}; choose one of {', '.join(PRESETS)}.")
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ConfigError(f"Unknown setting(s) in the config: {', '.join(unknown)}.")
        for name, value in data.items():  # JSON (or a network request) may hold any type: say which is wrong
            _check_type(name, value, getattr(PRESETS[preset], name))
        for name in ("holdout", "validation"):
            if name in data:
                data[name] = tuple(data[name])
        config = replace(PRESETS[preset], **data)
        config.check()
        return config

    def check(self) -> None:
        """Every value in a range that trains (so a typo or a hostile request cannot exhaust memory or divide
        by zero an hour in)."""
        for name, (low, high) in RANGES.items():
            value = getattr(self, name)
            if not (low <= value <= high and math.isfinite(value)):
                raise ConfigError(f"{name} must be between {low:g} and {high:g}, got {value!r}.")
        if self.side % (2 ** self.generator_downsamples):
            raise ConfigError(f"side {self.side} must be a multiple of 2**generator_downsamples "
                              f"({2 ** self.generator_downsamples}).")
        check_group_widths(self.generator_channels, self.generator_max_channels, self.generator_downsamples,
                           self.generator_groups, "generator_channels", "generator_max_channels", "generator_groups")
        if self.refine_region not in ("face", "head"):
            raise ConfigError(f"refine_region must be 'face' or 'head', got {self.refine_region!r}.")
        if self.detail_region not in ("disoccluded", "anywhere"):
            raise ConfigError(f"detail_region must be 'disoccluded' or 'anywhere', got {self.detail_region!r}.")
        if self.detail_region == "disoccluded" and (self.side % self.shading_scale or not self.detail_dilation % 2):
            raise ConfigError("shading_scale must divide side, and detail_dilation must be odd.")
        if self.gan_loss not in ("hinge", "ls"):
            raise ConfigError(f"gan_loss must be 'hinge' or 'ls', got {self.gan_loss!r}.")
        if self.precision not in ("auto", "bf16", "fp16", "fp32"):
            raise ConfigError(f"precision must be auto, bf16, fp16 or fp32, got {self.precision!r}.")


def unet_widths(channels: int, max_channels: int, downsamples: int) -> list[int]:
    """The channels of a U-Net's levels, from the full-resolution one down: doubling per downsample, at most
    max_channels (the head refiner's and the region generators' networks alike)."""
    return [min(channels * 2**i, max_channels) for i in range(downsamples + 1)]


def check_group_widths(channels: int, max_channels: int, downsamples: int, groups: int,
                       channels_name: str, max_name: str, groups_name: str) -> None:
    """A U-Net's widths (unet_widths) must each split into its GroupNorm groups (min(groups, width)), or the
    network cannot be made: refused here, with the settings named, instead of as PyTorch's ValueError when
    training starts."""
    widths = sorted(set(unet_widths(channels, max_channels, downsamples)))
    uneven = [width for width in widths if width % min(groups, width)]
    if uneven:
        raise ConfigError(f"{groups_name} {groups} does not divide the network's widths {widths} (from {channels_name} "
                          f"{channels} and {max_name} {max_channels}); make them multiples of {groups}.")


def _check_type(name: str, value, default) -> None:
    if isinstance(default, bool):
        ok = isinstance(value, bool)
    elif isinstance(default, int):
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif isinstance(default, float):
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    elif isinstance(default, tuple):
        ok = isinstance(value, (list, tuple)) and all(isinstance(item, str) for item in value)
    else:
        ok = isinstance(value, type(default))
    if not ok:
        kind = "a list of names" if isinstance(default, tuple) else type(default).__name__
        raise ConfigError(f"{name} must be {kind}, got {value!r}.")


# Allowed values of the numeric settings (inclusive).
RANGES = {
    "side": (16, 1024), "noise_channels": (0, 64),
    "generator_channels": (1, 1024), "generator_downsamples": (1, 7), "generator_max_channels": (1, 4096),
    "generator_res_blocks": (0, 64), "generator_groups": (1, 1024),
    "discriminator_channels": (1, 1024), "discriminator_layers": (1, 8), "discriminator_scales": (1, 6),
    "weight_gan": (0, 1e6), "weight_feature_matching": (0, 1e6), "weight_l1": (0, 1e6), "weight_perceptual": (0, 1e6),
    "weight_motion": (0, 1e6), "weight_temporal": (0, 1e6), "weight_mask": (0, 1e6),
    "motion_patch": (1, 64), "gan_start_step": (0, 10**9), "shading_scale": (1, 1024), "detail_dilation": (1, 63),
    "steps": (1, 10**9), "batch_pairs": (1, 1024), "lr_generator": (1e-9, 1.0), "lr_discriminator": (1e-9, 1.0),
    "beta1": (0.0, 0.9999), "beta2": (0.0, 0.99999), "grad_clip": (0, 1e6), "seed": (0, 2**31 - 1),
    "sources_per_clip": (1, 10_000), "neighbour_gap": (1, 1000), "workers": (0, 64), "augment_colour": (0.0, 1.0),
    "validate_every": (1, 10**9), "validation_pairs": (1, 4096),
    "log_every": (1, 10**9), "sample_every": (1, 10**9), "checkpoint_every": (1, 10**9),
}


SMALL = RefineConfig()
LARGE = RefineConfig(side=256, generator_channels=64, generator_downsamples=4, generator_max_channels=512,
                     generator_res_blocks=6, generator_groups=16, lr_generator=2e-4, discriminator_channels=64, discriminator_layers=4,
                     discriminator_scales=3, refine_region="head", weight_gan=1.0, weight_feature_matching=10.0, batch_pairs=8,
                     steps=200000, gan_start_step=2000, workers=8, sample_every=1000, checkpoint_every=2000,
                     preset="large")
PRESETS = {"small": SMALL, "large": LARGE}


def load_config(source: str | Path | None) -> RefineConfig:
    """A preset name ("small", "large"), a JSON file of overrides, or None for the small preset."""
    return config_from(source, PRESETS, "small", RefineConfig.from_dict)


def resumed_config(saved, given, bookkeeping: tuple[str, ...], checkpoint: Path, how_to_resume: str):
    """The settings a resumed run goes on with: those it was trained with (`saved`), with `given`'s
    `bookkeeping` fields (more steps, other logging) when a config is given. A given config that differs in
    anything else is refused by name: the optimisers, the schedule and the networks were made from `saved`, so
    another learning rate, batch or seed would take effect only partly, and silently."""
    if given is None:
        return saved
    changed = [f"{field.name} {getattr(saved, field.name)!r} -> {getattr(given, field.name)!r}"
               for field in fields(saved)
               if field.name not in bookkeeping and getattr(saved, field.name) != getattr(given, field.name)]
    if changed:
        raise ConfigError(f"resuming with other settings ({', '.join(changed)}) than {checkpoint} was trained with "
                          f"(only {', '.join(bookkeeping)} may change): {how_to_resume}")
    return replace(saved, **{name: getattr(given, name) for name in bookkeeping})


def config_from(source: str | Path | None, presets: dict, default: str, from_dict):
    """A preset by name, a JSON file of overrides read with `from_dict`, or None for the default preset."""
    if source is None:
        return presets[default]
    if str(source) in presets:
        return presets[str(source)]
    path = Path(source)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"No config file '{path}' (and it is not a preset: {', '.join(presets)}).") from None
    except ValueError as error:
        raise ConfigError(f"'{path}' is not valid JSON: {error}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"'{path}' must hold a JSON object of settings.")
    return from_dict(data)
