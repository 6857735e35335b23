"""Temporal smoothing of captured motion: the One-Euro filter. Pure numpy.

A face tracker's landmarks tremble by a pixel or two from frame to frame;
solved channel values inherit that tremble, and an animated portrait shows it
as a restless head. A fixed low-pass filter would calm it but also round off
blinks and lag behind quick head turns. The One-Euro filter (Casiez, Roussel
and Vogel, CHI 2012) adapts: its cutoff frequency rises with the signal's
speed, so slow drift is smoothed hard (no jitter) while a fast change passes
almost untouched (blinks stay crisp, little lag).

    cutoff = min_cutoff + beta * |smoothed speed|

Channels have different units (degrees, face widths, 0..1 factors), so each
channel's speed is measured in channel ranges per second (a 90-degree yaw
range and a 0..1 blink range count alike) and one `beta` suits all channels.

A capture is filtered offline, so by default the filter runs forward and
backward in time and the two results are averaged: the forward pass lags,
the backward pass leads by the same amount, and the average has neither.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from .shared.channels import CHANNEL_INDEX, CHANNELS


@dataclass(frozen=True)
class OneEuroSettings:
    min_cutoff: float = 1.5  # Hz: the cutoff when the value is still; lower = smoother
    beta: float = 30.0  # Hz added per (channel range per second) of speed; higher = quick moves stay sharper
    derivative_cutoff: float = 1.0  # Hz: smoothing of the speed estimate itself
    zero_phase: bool = True  # average a forward and a backward pass (offline: no lag)

    def __post_init__(self) -> None:
        for name in ("min_cutoff", "beta", "derivative_cutoff"):
            value = getattr(self, name)
            if not (np.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be a finite number >= 0, got {value}")
        if self.min_cutoff <= 0 or self.derivative_cutoff <= 0:
            raise ValueError("min_cutoff and derivative_cutoff must be above 0 Hz")


# Named strengths for the command line. "normal" keeps blinks (about 0.1 s) and
# speech-rate jaw motion while removing tracker tremble. Chosen on real clips
# (bench/quality.py, the four most active): landmark accuracy AKD 2.57 / 2.65
# / 2.97 px for light / normal / strong, still-frame jitter 3.66 / 3.41 /
# 2.94% of the pupil distance against 4.01% in the real video.
SMOOTHING_LEVELS: dict[str, OneEuroSettings | None] = {
    "none": None,
    "light": OneEuroSettings(min_cutoff=3.0, beta=100.0),
    "normal": OneEuroSettings(min_cutoff=1.5, beta=30.0),
    "strong": OneEuroSettings(min_cutoff=0.7, beta=10.0),
}
DEFAULT_SMOOTHING = "normal"


def _alpha(cutoff: np.ndarray | float, dt: float) -> np.ndarray | float:
    """Smoothing factor of a first-order low-pass at `cutoff` Hz for a time step `dt`."""
    tau = 1.0 / (2.0 * np.pi * cutoff)
    return 1.0 / (1.0 + tau / dt)


def one_euro(values: np.ndarray, fps: float, settings: OneEuroSettings = OneEuroSettings(),
             scale: np.ndarray | float = 1.0) -> np.ndarray:
    """Filter `values` (frames x channels, or frames) causally, frame by frame.

    `scale` is each channel's range: speeds are divided by it before `beta`
    applies. Values must be finite (fill gaps first).
    """
    values = np.asarray(values, dtype=np.float64)
    if not np.isfinite(values).all():
        raise ValueError("one_euro needs finite values; fill missing frames first")
    if len(values) == 0:
        return values.copy()
    series = values.reshape(len(values), -1)  # frames x channels, also for a single channel
    scale = np.broadcast_to(np.asarray(scale, dtype=np.float64).ravel(), series.shape[1:])
    dt = 1.0 / float(fps)
    derivative_alpha = _alpha(settings.derivative_cutoff, dt)
    out = np.empty_like(series)
    smoothed = series[0].copy()
    speed = np.zeros_like(smoothed)
    out[0] = smoothed
    for frame in range(1, len(series)):
        raw_speed = (series[frame] - smoothed) / dt / scale
        speed = speed + derivative_alpha * (raw_speed - speed)
        alpha = _alpha(settings.min_cutoff + settings.beta * np.abs(speed), dt)
        smoothed = smoothed + alpha * (series[frame] - smoothed)
        out[frame] = smoothed
    return out.reshape(values.shape)


def smooth(values: np.ndarray, fps: float, settings: OneEuroSettings = OneEuroSettings(),
           scale: np.ndarray | float = 1.0) -> np.ndarray:
    """One-Euro filtering as configured: forward only, or forward and backward averaged (zero phase)."""
    forward = one_euro(values, fps, settings, scale)
    if not settings.zero_phase:
        return forward
    backward = one_euro(np.asarray(values)[::-1], fps, settings, scale)[::-1]
    return 0.5 * (forward + backward)


def channel_ranges(names: tuple[str, ...]) -> np.ndarray:
    """Each named channel's range (max - min), the unit its speed is measured in."""
    return np.array([CHANNELS[CHANNEL_INDEX[n]].maximum - CHANNELS[CHANNEL_INDEX[n]].minimum for n in names])


def smooth_channels(values: np.ndarray, names: tuple[str, ...], fps: float,
                    settings: OneEuroSettings | None) -> np.ndarray:
    """Smooth a (frames x channels) motion whose columns are the channels `names`; None = unchanged."""
    if settings is None:
        return np.asarray(values, dtype=np.float64).copy()
    return smooth(values, fps, settings, channel_ranges(names))


def smoothing_settings(level: str = DEFAULT_SMOOTHING, min_cutoff: float | None = None,
                       beta: float | None = None) -> OneEuroSettings | None:
    """Settings for a named level, with optional overrides (an override on "none" starts from "normal")."""
    if level not in SMOOTHING_LEVELS:
        raise ValueError(f"unknown smoothing level {level!r}; choose one of {', '.join(SMOOTHING_LEVELS)}")
    settings = SMOOTHING_LEVELS[level]
    if min_cutoff is None and beta is None:
        return settings
    settings = settings or SMOOTHING_LEVELS[DEFAULT_SMOOTHING]
    changes = {key: value for key, value in (("min_cutoff", min_cutoff), ("beta", beta)) if value is not None}
    return replace(settings, **changes)
