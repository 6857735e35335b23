"""Every hyperparameter of the region generator (eyes and mouth) and its training, in one dataclass.

Two presets: `cpu` (the default: the shipped model, trained on a 2-core CPU in
about an hour) and `gpu` (wider networks, more steps, bigger batches).
A JSON file given to `enliven train-regions --config` starts from the preset it
names and overrides the fields it lists; unknown names are refused.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

from .config import ConfigError, _check_type, check_group_widths, config_from

REGION_FORMAT = "enliven-regions"  # the checkpoint format of `enliven train-regions` (see checkpoint.FORMATS)
KINDS = ("eye", "mouth")  # one generator per region kind
# Settings that may differ when resuming: they change how long a run goes on and what it reports, not which
# examples, noise or updates a step gets (every other setting is the run's own; see config.resumed_config).
BOOKKEEPING_FIELDS = ("steps", "log_every", "checkpoint_every", "threads")


@dataclass(frozen=True)
class RegionConfig:
    # ----- patches (enliven.engines.regions)
    eye_side: int = 64  # each eye, mirrored onto a right eye, spans twice its width at this side
    mouth_side: int = 96  # the mouth spans 1.8 times its width at this side
    noise_channels: int = 1  # Gaussian noise input; a fixed pattern at inference (no flicker)

    # ----- generator: a U-Net per region kind over (warped, source, target shape, source shape, noise)
    channels: int = 16  # after the input convolution; doubles at each downsample
    downsamples: int = 3
    max_channels: int = 96
    res_blocks: int = 2
    groups: int = 4

    # ----- discriminator: a PatchGAN conditioned on (warped, target shape)
    discriminator_channels: int = 32
    discriminator_layers: int = 3

    # ----- losses (weights; 0 switches a term off)
    weight_l1: float = 10.0  # inside the paste mask
    weight_gan: float = 0.02  # hinge loss (0.1 made held-out patches worse than the warp within 700 steps)
    weight_feature_matching: float = 0.2
    gan_start_step: int = 500  # adversarial terms join after this many steps (reconstruction first)

    # ----- optimisation
    steps: int = 4000  # per region kind
    batch: int = 16
    lr_generator: float = 4e-4
    lr_discriminator: float = 4e-4
    beta1: float = 0.5
    beta2: float = 0.999
    augment_colour: float = 0.08  # per-channel gain and offset, both patches alike
    seed: int = 0
    threads: int = 0  # torch CPU threads (0: PyTorch's choice)
    # "auto": forward passes in bfloat16 where the device computes in it (GPUs with it, CPUs with AVX-512 BF16 or
    # AMX: tensors.bfloat16_autocast), float32 elsewhere; "fp32": float32 everywhere. On this 2-core CPU "auto"
    # trained 1.6x the steps a minute with the same validation scores step for step.
    precision: str = "auto"
    log_every: int = 50
    checkpoint_every: int = 250

    preset: str = "cpu"

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "RegionConfig":
        data = dict(data)
        preset = data.pop("preset", "cpu")
        if preset not in PRESETS:
            raise ConfigError(f"Unknown preset {preset!r}; choose one of {', '.join(PRESETS)}.")
        unknown = sorted(set(data) - {f.name for f in fields(cls)})
        if unknown:
            raise ConfigError(f"Unknown setting(s) in the config: {', '.join(unknown)}.")
        for name, value in data.items():
            _check_type(name, value, getattr(PRESETS[preset], name))
        config = replace(PRESETS[preset], **data)
        config.check()
        return config

    def check(self) -> None:
        for name, (low, high) in RANGES.items():
            value = getattr(self, name)
            if not (low <= value <= high and math.isfinite(value)):
                raise ConfigError(f"{name} must be between {low:g} and {high:g}, got {value!r}.")
        if self.precision not in ("auto", "fp32"):
            raise ConfigError(f"precision must be auto or fp32, got {self.precision!r}.")
        for name in ("eye_side", "mouth_side"):
            if getattr(self, name) % (2 ** self.downsamples):
                raise ConfigError(f"{name} must be a multiple of 2**downsamples ({2 ** self.downsamples}).")
        check_group_widths(self.channels, self.max_channels, self.downsamples, self.groups,
                           "channels", "max_channels", "groups")


RANGES = {
    "eye_side": (16, 512), "mouth_side": (16, 512), "noise_channels": (0, 16),
    "channels": (1, 512), "downsamples": (1, 6), "max_channels": (1, 2048), "res_blocks": (0, 32), "groups": (1, 512),
    "discriminator_channels": (1, 512), "discriminator_layers": (1, 6),
    "weight_l1": (0, 1e6), "weight_gan": (0, 1e6), "weight_feature_matching": (0, 1e6), "gan_start_step": (0, 10**9),
    "steps": (1, 10**9), "batch": (1, 4096), "lr_generator": (1e-9, 1.0), "lr_discriminator": (1e-9, 1.0),
    "beta1": (0.0, 0.9999), "beta2": (0.0, 0.99999), "augment_colour": (0.0, 1.0), "seed": (0, 2**31 - 1),
    "threads": (0, 1024), "log_every": (1, 10**9), "checkpoint_every": (1, 10**9),
}

CPU = RegionConfig()
GPU = RegionConfig(channels=48, max_channels=256, res_blocks=4, groups=8, discriminator_channels=64, batch=64, steps=40000,
                   gan_start_step=2000, checkpoint_every=1000, log_every=200, preset="gpu")
PRESETS = {"cpu": CPU, "gpu": GPU}


def load_region_config(source: str | Path | None) -> RegionConfig:
    """A preset name ("cpu", "gpu"), a JSON file of overrides, or None for the cpu preset."""
    return config_from(source, PRESETS, "cpu", RegionConfig.from_dict)
