"""Measuring acoustic lip-sync against speech whose timing is known.

Speech synthesised by tts.synthesize comes with the synthesiser's own phoneme
timings, which are exact. Against them we measure, frame by frame:
- silent frames (wholly inside a pause): the share where the mouth is closed
  (jaw_open < CLOSED_BELOW);
- open-vowel frames (their time inside "ah", "a", "uh", "aw"...): the share
  where it is open (jaw_open >= CLOSED_BELOW);
- the Pearson correlation between the acoustic jaw_open curve and the one
  built from the phoneme timings (phonemes.py) on the same audio.

Both motions must be made with lead_frames=0, so that the comparison is of
the sound's own timing; anticipation is a deliberate shift on top.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..shared.motion import Motion
from .phonemes import viseme_segments
from .tts import TimedPhoneme

CLOSED_BELOW = 0.1
OPEN_VOWEL_VISEMES = frozenset({"AA", "AE", "AH", "OH"})


@dataclass(frozen=True)
class Agreement:
    silent_frames: int
    closed_share: float  # of silent frames with the mouth closed
    open_vowel_frames: int
    open_share: float  # of open-vowel frames with the mouth open
    open_vowel_jaw: float  # mean jaw_open over open-vowel frames
    jaw_correlation: float  # Pearson r, acoustic vs phoneme-timing jaw_open
    pucker_correlation: float
    wide_correlation: float


def frame_labels(phonemes: Sequence[TimedPhoneme], frame_count: int, fps: float) -> tuple[np.ndarray, np.ndarray]:
    """(silent, open_vowel) boolean masks over frames; frame i is at i / fps
    and covers half a frame either side."""
    times = np.arange(frame_count) / fps
    half = 0.5 / fps
    silent = np.zeros(frame_count, bool)
    open_vowel = np.zeros(frame_count, bool)
    for start, end, viseme in viseme_segments(phonemes):
        if viseme.name == "rest":
            silent |= (times - half >= start) & (times + half <= end)
        elif viseme.name in OPEN_VOWEL_VISEMES:
            open_vowel |= (times >= start) & (times < end)
    return silent, open_vowel


def compare_with_phonemes(acoustic: Motion, reference: Motion, phonemes: Sequence[TimedPhoneme]) -> Agreement:
    """How well `acoustic` (from the sound) agrees with `reference` (from the
    phoneme timings of the same sound); both at the same fps."""
    count = min(acoustic.frame_count, reference.frame_count)
    silent, open_vowel = frame_labels(phonemes, count, acoustic.fps)
    jaw = _channel(acoustic, "jaw_open")[:count]

    def correlation(name: str) -> float:
        a, b = _channel(acoustic, name)[:count], _channel(reference, name)[:count]
        return float(np.corrcoef(a, b)[0, 1]) if a.std() > 0 and b.std() > 0 else float("nan")

    return Agreement(
        silent_frames=int(silent.sum()),
        closed_share=float(np.mean(jaw[silent] < CLOSED_BELOW)) if silent.any() else float("nan"),
        open_vowel_frames=int(open_vowel.sum()),
        open_share=float(np.mean(jaw[open_vowel] >= CLOSED_BELOW)) if open_vowel.any() else float("nan"),
        open_vowel_jaw=float(np.mean(jaw[open_vowel])) if open_vowel.any() else float("nan"),
        jaw_correlation=correlation("jaw_open"),
        pucker_correlation=correlation("pucker"),
        wide_correlation=correlation("wide"),
    )


def _channel(motion: Motion, name: str) -> np.ndarray:
    values = motion.values[:, motion.channels.index(name)].astype(np.float64)
    # Negative jaw_open only says the lips are shut (sealing a photo's open mouth): as an opening it is 0.
    return np.maximum(values, 0.0) if name == "jaw_open" else values


def mouth_opening(motion: Motion) -> np.ndarray:
    """The jaw curve as an opening (0 shut .. 1 wide): what correlations compare."""
    return _channel(motion, "jaw_open")


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a, b)[0, 1]) if a.size > 1 and a.std() > 0 and b.std() > 0 else float("nan")


def shifted(a: np.ndarray, b: np.ndarray, lag: int) -> tuple[np.ndarray, np.ndarray]:
    """Pairs a[i + lag] with b[i]: a positive lag means curve `a` is late."""
    if lag >= 0:
        return a[lag:], b[: b.size - lag]
    return a[: a.size + lag], b[-lag:]


def jaw_agreement(generated: np.ndarray, captured: np.ndarray, maximum_lag: int) -> tuple[float, float, int]:
    """(Pearson r at lag 0, the best r within +-maximum_lag frames, that lag; + = `generated` is late)."""
    lags = {lag: pearson(*shifted(generated, captured, lag)) for lag in range(-maximum_lag, maximum_lag + 1)}
    finite = [lag for lag in lags if np.isfinite(lags[lag])]
    best = max(finite, key=lambda lag: lags[lag]) if finite else 0
    return lags[0], lags[best], best
