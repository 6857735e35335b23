"""Optional motion that keeps a talking face from looking frozen: small head
movements that follow the speech, and blinks at natural intervals.

Both are seeded, so the same seed gives the same motion. They are opt-in (an
artist may already have animated the head and eyes) and land on their own
channels, so they stay separately editable.
"""
from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter1d

from .acoustic import MouthCurves

# Head motion at amount 1, in degrees. Speakers move the head more while
# talking and with emphasis (Munhall et al. 2004, Yehia et al. 2002); these
# are small, conversational amplitudes.
NOD_DEGREES_PER_LOUDNESS = 3.0
DRIFT_DEGREES = {"head_yaw": 2.0, "head_pitch": 0.8, "head_roll": 1.0}
DRIFT_PERIOD_S = 2.5  # slow wandering, a few seconds per swing

# People blink about every 3 s while talking (15-25 blinks a minute); an
# interval is never under 1.2 s, and a blink lasts about 0.3 s: fast close,
# slower opening.
BLINK_MEAN_INTERVAL_S = 3.0
BLINK_MINIMUM_INTERVAL_S = 1.2
BLINK_CLOSE_S, BLINK_HOLD_S, BLINK_OPEN_S = 0.08, 0.04, 0.18
# A blink due shortly before the end of a phrase waits for the pause.
BLINK_SNAP_TO_PAUSE_S = 0.7


def head_motion(curves: MouthCurves, times: np.ndarray, amount: float,
                rng: np.random.Generator) -> dict[str, np.ndarray]:
    """head_yaw / head_pitch / head_roll in degrees at `times` (seconds).

    Pitch nods with the speech envelope (loud, stressed stretches lift the
    head a little); all three drift slowly, more while talking than in pauses.
    """
    fps = 1.0 / (times[1] - times[0]) if times.size > 1 else 24.0
    curve_times = np.arange(curves.loudness.size) / curves.rate_hz
    envelope = np.interp(times, curve_times, curves.loudness)
    talking = np.interp(times, curve_times, curves.speech.astype(np.float64))
    activity = 0.3 + 0.7 * gaussian_filter1d(talking, 0.5 * fps, mode="nearest")
    # Emphasis: the envelope minus its slow average, so the head returns.
    emphasis = envelope - gaussian_filter1d(envelope, 1.5 * fps, mode="nearest")

    result = {}
    for name, degrees in DRIFT_DEGREES.items():
        drift = _smooth_noise(times.size, DRIFT_PERIOD_S / 4.0 * fps, rng)
        result[name] = amount * degrees * drift * activity
    result["head_pitch"] = result["head_pitch"] + amount * NOD_DEGREES_PER_LOUDNESS * emphasis
    return result


def _smooth_noise(count: int, sigma_frames: float, rng: np.random.Generator) -> np.ndarray:
    """Gaussian-filtered white noise scaled to unit standard deviation (by
    the filter's known gain, so short clips are not over-amplified)."""
    sigma = max(sigma_frames, 1.0)
    noise = gaussian_filter1d(rng.standard_normal(count), sigma, mode="wrap" if count > 8 * sigma else "reflect")
    return noise * np.sqrt(2.0 * np.sqrt(np.pi) * sigma)


def blinks(curves: MouthCurves, times: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Blink amount 0..1 (both eyes) at `times` (seconds)."""
    duration = float(times[-1]) if times.size else 0.0
    fps = 1.0 / (times[1] - times[0]) if times.size > 1 else 24.0
    pause_starts = _pause_starts(curves)
    values = np.zeros(times.size)
    # The first within the clip when a whole blink fits in it: a talk of 2-3 s drew it after its end one time
    # in four, and the face never blinked.
    whole_blink = BLINK_CLOSE_S + BLINK_HOLD_S + BLINK_OPEN_S
    when = rng.uniform(0.5, 0.5 + min(BLINK_MEAN_INTERVAL_S, max(duration - 0.5 - whole_blink, 0.0)))
    while when < duration:
        upcoming = pause_starts[(pause_starts >= when) & (pause_starts <= when + BLINK_SNAP_TO_PAUSE_S)]
        if upcoming.size:
            when = float(upcoming[0])
        # Start on a frame so the closed moment is always drawn.
        start = np.round(when * fps) / fps
        values = np.maximum(values, _blink_shape(times - start))
        shape = 4.0  # gamma intervals: regular-ish, never bunched up
        when = start + max(BLINK_MINIMUM_INTERVAL_S, rng.gamma(shape, BLINK_MEAN_INTERVAL_S / shape))
    return values


def _blink_shape(t: np.ndarray) -> np.ndarray:
    closing = np.clip(t / BLINK_CLOSE_S, 0.0, 1.0)
    opening = np.clip((t - BLINK_CLOSE_S - BLINK_HOLD_S) / BLINK_OPEN_S, 0.0, 1.0)
    eased_close = 0.5 - 0.5 * np.cos(np.pi * closing)
    eased_open = 0.5 - 0.5 * np.cos(np.pi * opening)
    shape = np.minimum(eased_close, 1.0 - eased_open)
    return np.where((t >= 0) & (t <= BLINK_CLOSE_S + BLINK_HOLD_S + BLINK_OPEN_S), shape, 0.0)


def _pause_starts(curves: MouthCurves) -> np.ndarray:
    """Times (s) where speech stops."""
    edges = np.diff(curves.speech.astype(np.int8))
    return (np.flatnonzero(edges == -1) + 1) / curves.rate_hz
