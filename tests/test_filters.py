"""The One-Euro filter: calms tracker noise, keeps steps and blinks sharp, does not lag offline."""
from __future__ import annotations

import numpy as np
import pytest

from enliven.filters import (SMOOTHING_LEVELS, OneEuroSettings, channel_ranges, one_euro, smooth,
                             smooth_channels, smoothing_settings)
from enliven.shared.channels import CHANNEL_NAMES

FPS = 30.0


def _noisy_step(size: float, noise: float, frames: int = 120, step_at: int = 60,
                seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    clean = np.where(np.arange(frames) >= step_at, size, 0.0)
    return clean, clean + np.random.default_rng(seed).normal(0.0, noise, frames)


STILL = np.r_[10:50, 75:115]  # frames away from the step


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_removes_injected_noise_on_still_stretches(seed):
    # A head turn of 15 degrees with 0.3 degrees of tracker noise (what MediaPipe gives on a still face).
    clean, noisy = _noisy_step(15.0, 0.3, seed=seed)
    scale = channel_ranges(("head_yaw",))
    tremble = {}
    for level in ("light", "normal", "strong"):
        filtered = smooth(noisy, FPS, SMOOTHING_LEVELS[level], scale)
        tremble[level] = np.abs(np.diff(filtered[STILL])).mean() / np.abs(np.diff(noisy[STILL])).mean()
        if level == "normal":
            assert np.abs(filtered - clean)[STILL].mean() < 0.6 * np.abs(noisy - clean)[STILL].mean()
    assert tremble["normal"] < 0.65
    assert tremble["strong"] < tremble["normal"] < tremble["light"] < 1.0


@pytest.mark.parametrize("level", ["light", "normal", "strong"])
def test_keeps_a_step_sharp_and_centred(level):
    clean, noisy = _noisy_step(15.0, 0.3)
    filtered = smooth(noisy, FPS, SMOOTHING_LEVELS[level], channel_ranges(("head_yaw",))) / 15.0
    # Within three frames (0.1 s) of the step the value is at most 20% off either level.
    assert filtered[:57].max() < 0.2 and filtered[63:].min() > 0.8
    # Zero phase: the step stays where it was (the midpoint crossing is at the step).
    assert int(np.argmax(filtered > 0.5)) in (59, 60, 61)


def test_causal_filter_lags_and_zero_phase_does_not():
    clean, _ = _noisy_step(1.0, 0.0)
    forward = one_euro(clean, FPS, OneEuroSettings(min_cutoff=1.0, beta=0.0))
    assert forward[60] < 0.5 and forward[64] < 0.9  # a plain low-pass trails the step
    both = smooth(clean, FPS, OneEuroSettings(min_cutoff=1.0, beta=0.0))
    assert both[59] == pytest.approx(1.0 - both[60], abs=0.05)  # symmetric about the step


def test_a_blink_keeps_its_depth():
    blink = np.zeros(90)
    blink[40:44] = [0.5, 1.0, 1.0, 0.5]  # about 0.13 s at 30 fps
    noisy = blink + np.random.default_rng(1).normal(0, 0.01, blink.size)
    filtered = smooth(noisy, FPS, SMOOTHING_LEVELS["normal"])
    assert filtered[40:44].max() > 0.75
    assert np.abs(filtered[:30]).max() < 0.05


def test_channels_in_different_units_are_filtered_alike():
    # A 30-degree head turn and a full jaw opening, both as a step: each keeps its step.
    frames = 80
    values = np.zeros((frames, len(CHANNEL_NAMES)))
    values[40:, CHANNEL_NAMES.index("head_yaw")] = 30.0
    values[40:, CHANNEL_NAMES.index("jaw_open")] = 1.0
    filtered = smooth_channels(values, CHANNEL_NAMES, FPS, SMOOTHING_LEVELS["normal"])
    for name, size in (("head_yaw", 30.0), ("jaw_open", 1.0)):
        column = filtered[:, CHANNEL_NAMES.index(name)] / size
        assert column[:36].max() < 0.2 and column[44:].min() > 0.8, name
    untouched = filtered[:, CHANNEL_NAMES.index("blink_l")]
    assert np.all(untouched == 0)


def test_no_smoothing_returns_the_values_unchanged():
    values = np.random.default_rng(2).normal(size=(20, len(CHANNEL_NAMES)))
    assert np.array_equal(smooth_channels(values, CHANNEL_NAMES, FPS, None), values)


def test_settings_levels_and_overrides():
    assert smoothing_settings("none") is None
    assert smoothing_settings("strong").min_cutoff < smoothing_settings("normal").min_cutoff < smoothing_settings("light").min_cutoff
    tuned = smoothing_settings("normal", min_cutoff=0.5)
    assert tuned.min_cutoff == 0.5 and tuned.beta == SMOOTHING_LEVELS["normal"].beta
    assert smoothing_settings("none", beta=5.0).beta == 5.0  # an override turns smoothing on
    with pytest.raises(ValueError, match="unknown smoothing level"):
        smoothing_settings("silky")
    with pytest.raises(ValueError):
        OneEuroSettings(min_cutoff=0.0)
    with pytest.raises(ValueError):
        OneEuroSettings(beta=float("nan"))


def test_missing_values_are_refused():
    with pytest.raises(ValueError, match="fill missing frames"):
        one_euro(np.array([0.0, np.nan, 1.0]), FPS)
