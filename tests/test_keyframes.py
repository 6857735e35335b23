"""Motion -> keyframes (shared/keyframes.py): resampling to the scene's frame
rate, key reduction within a tolerance, channel selection and blending."""
from __future__ import annotations

import numpy as np
import pytest

from enliven.shared.keyframes import (MOUTH_CHANNELS, blend, channel_tolerance, keys_for, reduce_keys, resample,
                                      select_channels)


def _linear_between(kept: np.ndarray, samples: np.ndarray) -> np.ndarray:
    return np.interp(np.arange(samples.size), kept, samples[kept])


@pytest.mark.parametrize("tolerance", [0.001, 0.01, 0.05, 0.2])
def test_reduced_keys_stay_within_the_tolerance_and_keep_the_ends(tolerance):
    rng = np.random.default_rng(3)
    samples = np.sin(np.linspace(0, 6, 400)) + 0.02 * rng.standard_normal(400)
    kept = reduce_keys(samples, tolerance)
    assert kept[0] == 0 and kept[-1] == 399 and np.all(np.diff(kept) > 0)
    assert np.abs(_linear_between(kept, samples) - samples).max() <= tolerance + 1e-12
    assert len(kept) < 400


def test_reduction_keeps_the_corners_of_a_piecewise_linear_curve():
    samples = np.concatenate([np.linspace(0, 1, 11), np.linspace(1, 1, 10)[1:], np.linspace(1, 0, 6)[1:]])
    assert reduce_keys(samples, 1e-9).tolist() == [0, 10, 19, 24]
    assert reduce_keys([5.0], 0.1).tolist() == [0]
    assert reduce_keys(np.full(50, 0.3), 0.0).tolist() == [0, 49]


def test_resample_places_samples_by_time():
    values = np.arange(31, dtype=np.float64)[:, None]  # 1 s at 30 fps: value = frame number
    at_24 = resample(values, 30.0, 24.0)
    assert at_24.shape == (25, 1)
    assert np.allclose(at_24[:, 0], np.arange(25) * 30.0 / 24.0)
    assert resample(values, 24.0, 24.0) is not values and np.array_equal(resample(values, 24.0, 24.0), values)


def test_keys_every_frame_or_reduced_with_a_tolerance_relative_to_each_channel():
    channels = ("head_yaw", "jaw_open")
    values = np.stack([np.linspace(-20, 20, 50), np.abs(np.sin(np.linspace(0, 3, 50)))], axis=1)
    every = keys_for(values, channels, 100)
    assert [k[0] for k in every["jaw_open"]] == list(range(100, 150))
    reduced = keys_for(values, channels, 100, relative_tolerance=0.01)
    assert [k[0] for k in reduced["head_yaw"]] == [100.0, 149.0]  # a straight line needs two keys
    for column, name in enumerate(channels):
        frames = np.array([k[0] for k in reduced[name]]) - 100
        keyed = np.interp(np.arange(50), frames, [k[1] for k in reduced[name]])
        assert np.abs(keyed - values[:, column]).max() <= channel_tolerance(name, 0.01) + 1e-9
    assert channel_tolerance("head_yaw", 0.01) > channel_tolerance("jaw_open", 0.01)


def test_mouth_channel_selection_and_blending():
    channels = ("head_yaw", "jaw_open", "pucker", "wide", "not_a_channel")
    assert select_channels(channels, MOUTH_CHANNELS) == [1, 2, 3]
    assert select_channels(channels, None) == [0, 1, 2, 3]
    assert np.allclose(blend(np.zeros(3), np.ones(3), 0.25), 0.25)
    assert np.allclose(blend(np.zeros(3), np.ones(3), 1.0), 1.0)
