"""Acoustic lip-sync: mouth shapes from the sound alone, model-free.

Two steps, both plain numpy/scipy:

1. `FeatureExtractor` turns samples, fed block by block, into per-frame
   features every 10 ms (25 ms Hann windows):
   - level: the frame's power in dB relative to full scale;
   - voicing: the share of the energy below 900 Hz against that above 2.5 kHz
     (vowels, nasals and liquids near 1; s, sh, f and plosive bursts near 0);
   - the first two formants F1 and F2, from linear prediction (LPC). The
     prediction is fitted to the 0-4 kHz part of the spectrum only ("selective
     linear prediction", Makhoul 1975): the pre-emphasised power spectrum's
     lower half, transformed back, is the autocorrelation of the signal as if
     sampled at 8 kHz, where an order-10 predictor models the five resonances
     of an adult vocal tract. Formants are the angles of the predictor's
     complex roots with a narrow enough bandwidth.

2. `mouth_curves` turns the features of the whole recording (small: 100
   numbers a second) into mouth curves at the same rate:
   - a voice activity decision from the level, against a noise floor and a
     speech level both estimated from the recording's own level distribution;
   - jaw opening from loudness above the silence threshold, scaled by F1
     (F1 rises as the jaw lowers: about 300 Hz for "ee"/"oo", 750 Hz for "ah")
     and kept small for unvoiced sounds (teeth nearly together for s, f, sh);
   - lip rounding ("pucker") from a low F2 and lip spreading ("wide") from a
     high F2, on voiced frames, carried across consonants by interpolation
     (a consonant's lips take the shape of the vowels around it);
   - plosive closures: a dip of 20 dB or more ended by an abrupt burst marks
     the lips closed for its duration;
   - coarticulation: Gaussian smoothing, wider for the lips than for the jaw
     (lip rounding spreads further into neighbouring sounds).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from scipy.ndimage import binary_closing, binary_opening, gaussian_filter1d, maximum_filter1d, median_filter

from ..arrays import runs_of

from .errors import NoSpeechError

FRAME_RATE_HZ = 100.0  # analysis frames per second (10 ms hop)
WINDOW_S = 0.025
LPC_ORDER = 10  # for the 0-4 kHz band: 2 + 8 (kHz), the usual rule
PRE_EMPHASIS = 0.97

# Levels, in dB relative to full scale.
SILENCE_GATE_DB = -60.0  # below this nothing counts as speech, whatever the recording
LOUD_PERCENTILE = 95  # "speech level": loud vowels
FLOOR_PERCENTILE = 10  # "noise floor": pauses
MINIMUM_SPEECH_S = 0.1  # less than this above the threshold is "only silence"

# Formant ranges that describe the vowel space of adult speech.
F1_CLOSE_HZ, F1_OPEN_HZ = 280.0, 780.0  # "ee"/"oo" .. "ah"
F2_ROUNDED_HZ, F2_BACK_HZ = 850.0, 1350.0  # pucker is full at or below 850 Hz, gone above 1350 Hz
F2_CENTRAL_HZ, F2_FRONT_HZ = 1650.0, 2200.0  # wide starts above 1650 Hz, full at 2200 Hz

# Coarticulation smoothing, as Gaussian standard deviations.
JAW_SMOOTHING_S = 0.030
LIP_SMOOTHING_S = 0.050


@dataclass
class AcousticFeatures:
    """Per-frame features at FRAME_RATE_HZ; frame k is centred at k / FRAME_RATE_HZ seconds."""

    level_db: np.ndarray
    voicing: np.ndarray
    f1_hz: np.ndarray  # NaN where no formant was found (silence, noise)
    f2_hz: np.ndarray
    duration_s: float
    rate_hz: float = FRAME_RATE_HZ

    @property
    def frame_count(self) -> int:
        return self.level_db.size


@dataclass
class MouthCurves:
    """Mouth channels over time at `rate_hz`, before timing and strength are applied."""

    rate_hz: float
    jaw_open: np.ndarray
    pucker: np.ndarray
    wide: np.ndarray
    lips_closed: np.ndarray  # bool: plosive / bilabial closures, kept through resampling
    speech: np.ndarray  # bool: someone is talking (short pauses included)
    loudness: np.ndarray  # 0..1, the speech energy envelope (drives optional head motion)


# ------------------------------------------------------------ features


class FeatureExtractor:
    """Features of a stream of samples, fed in blocks of any size.

    The result does not depend on how the samples were split into blocks:
    samples that do not yet fill a whole window wait for the next block.
    """

    def __init__(self, sample_rate: int):
        self.sample_rate = int(sample_rate)
        self.hop = int(round(sample_rate / FRAME_RATE_HZ))
        self.window_length = int(round(WINDOW_S * sample_rate))
        self.window = np.hanning(self.window_length).astype(np.float32)
        self.window_power = float(np.mean(self.window.astype(np.float64) ** 2))
        self.fft_size = 1 << (self.window_length - 1).bit_length()  # 512 at 16 kHz
        frequencies = np.fft.rfftfreq(self.fft_size, 1.0 / sample_rate)
        self.low_band = (frequencies >= 80) & (frequencies < 900)
        self.high_band = frequencies >= 2500
        # Selective linear prediction: the band 0 .. 4 kHz, pre-emphasised.
        self.lpc_bins = int(np.searchsorted(frequencies, 4000.0, side="right"))
        omega = 2 * np.pi * frequencies[: self.lpc_bins] / sample_rate
        self.pre_emphasis = (1 + PRE_EMPHASIS**2 - 2 * PRE_EMPHASIS * np.cos(omega)).astype(np.float32)
        self.lpc_rate = 2.0 * frequencies[self.lpc_bins - 1]  # the band's edge is the new Nyquist
        # Frame k's window is centred on sample k * hop: the stream starts with
        # half a window of zeros so that frame 0 is centred on sample 0.
        self._buffer = np.zeros(self.window_length // 2, np.float32)
        self._samples_seen = 0
        self._frames_done = 0
        self._parts: list[tuple[np.ndarray, ...]] = []

    def add(self, samples: np.ndarray) -> None:
        samples = np.asarray(samples, dtype=np.float32).reshape(-1)
        self._samples_seen += samples.size
        self._buffer = np.concatenate([self._buffer, samples])
        self._consume(final=False)

    def finish(self) -> AcousticFeatures:
        # Frames are centred every hop up to the last sample; pad the tail.
        self._buffer = np.concatenate([self._buffer, np.zeros(self.window_length, np.float32)])
        self._consume(final=True)
        if self._parts:
            level, voicing, f1, f2 = (np.concatenate(column) for column in zip(*self._parts))
        else:
            level = voicing = f1 = f2 = np.zeros(0, np.float32)
        return AcousticFeatures(level, voicing, f1, f2, self._samples_seen / self.sample_rate)

    def _consume(self, final: bool) -> None:
        available = 0
        if self._buffer.size >= self.window_length:
            available = (self._buffer.size - self.window_length) // self.hop + 1
        if final:
            total = -(-self._samples_seen // self.hop)  # frames centred on samples 0, hop, ... < samples_seen
            available = min(available, total - self._frames_done)
        if available <= 0:
            return
        frames = sliding_window_view(self._buffer, self.window_length)[:: self.hop][:available]
        self._parts.append(self._features(frames))
        self._frames_done += available
        self._buffer = self._buffer[available * self.hop:]

    def _features(self, frames: np.ndarray) -> tuple[np.ndarray, ...]:
        windowed = frames * self.window
        power = np.mean(windowed.astype(np.float64) ** 2, axis=1) / self.window_power
        level_db = (10.0 * np.log10(power + 1e-12)).astype(np.float32)
        spectrum = np.abs(np.fft.rfft(windowed, self.fft_size, axis=1)) ** 2
        low = spectrum[:, self.low_band].sum(axis=1)
        high = spectrum[:, self.high_band].sum(axis=1)
        voicing = (low / (low + high + 1e-12)).astype(np.float32)

        f1 = np.full(len(frames), np.nan, np.float32)
        f2 = np.full(len(frames), np.nan, np.float32)
        # Formants only where they can exist: audible, mostly low-frequency energy.
        candidates = np.flatnonzero((level_db > SILENCE_GATE_DB) & (voicing > 0.5))
        if candidates.size:
            band = spectrum[candidates, : self.lpc_bins] * self.pre_emphasis
            f1[candidates], f2[candidates] = _formants(band, self.lpc_rate)
        return level_db, voicing, f1, f2


def _formants(band_power: np.ndarray, band_rate: float) -> tuple[np.ndarray, np.ndarray]:
    """F1 and F2 (NaN when not found) of each row of a one-sided power spectrum
    covering 0 .. band_rate / 2, by LPC on the autocorrelation it implies."""
    autocorrelation = np.fft.irfft(band_power, axis=1)[:, : LPC_ORDER + 1]
    # A slight lag window and white-noise floor keep the predictor stable.
    lags = np.arange(LPC_ORDER + 1)
    autocorrelation = autocorrelation * np.exp(-0.5 * (2 * np.pi * 60.0 * lags / band_rate) ** 2)
    autocorrelation[:, 0] *= 1.0001
    predictor = _levinson_durbin(autocorrelation, LPC_ORDER)

    # Roots of 1 + a1 z^-1 + ... + ap z^-p: eigenvalues of its companion matrix.
    count = predictor.shape[0]
    companion = np.zeros((count, LPC_ORDER, LPC_ORDER))
    companion[:, 0, :] = -predictor[:, 1:]
    companion[:, np.arange(1, LPC_ORDER), np.arange(LPC_ORDER - 1)] = 1.0
    roots = np.linalg.eigvals(companion)
    frequency = np.angle(roots) * band_rate / (2 * np.pi)
    bandwidth = -np.log(np.maximum(np.abs(roots), 1e-9)) * band_rate / np.pi
    usable = (roots.imag > 0) & (frequency > 150) & (frequency < 3500) & (bandwidth < 450)
    frequency = np.where(usable, frequency, np.inf)
    frequency.sort(axis=1)

    # F1: the lowest resonance, if it is in F1's range; F2: the next one.
    f1 = frequency[:, 0]
    f1_valid = f1 < 1100
    f2 = np.where(f1_valid, frequency[:, 1], np.inf)
    f2_valid = np.isfinite(f2) & (f2 < 3200)
    return (np.where(f1_valid, f1, np.nan).astype(np.float32),
            np.where(f1_valid & f2_valid, f2, np.nan).astype(np.float32))


def _levinson_durbin(autocorrelation: np.ndarray, order: int) -> np.ndarray:
    """Prediction coefficients [1, a1 .. ap] for each row, all rows at once."""
    count = autocorrelation.shape[0]
    predictor = np.zeros((count, order + 1))
    predictor[:, 0] = 1.0
    error = autocorrelation[:, 0].astype(np.float64).copy()
    for i in range(1, order + 1):
        accumulated = np.einsum("nj,nj->n", predictor[:, :i], autocorrelation[:, i:0:-1])
        reflection = -accumulated / np.maximum(error, 1e-30)
        previous = predictor[:, :i + 1].copy()
        predictor[:, 1:i + 1] = previous[:, 1:i + 1] + reflection[:, None] * previous[:, i - 1::-1][:, :i]
        error = error * (1.0 - reflection**2)
    return predictor


def extract_features(blocks, sample_rate: int) -> AcousticFeatures:
    """Features of an iterable of sample blocks (see FeatureExtractor)."""
    extractor = FeatureExtractor(sample_rate)
    for block in blocks:
        extractor.add(block)
    return extractor.finish()


# ------------------------------------------------------------ mouth curves


@dataclass(frozen=True)
class Levels:
    """The recording's own level scale, in dB."""

    floor_db: float  # pauses / background noise
    loud_db: float  # loud vowels
    threshold_db: float  # speech above, silence below


def speech_levels(features: AcousticFeatures, source: str = "the audio") -> Levels:
    """Estimate noise floor, speech level and the silence threshold; raise
    NoSpeechError when nothing in the recording is loud enough to be speech."""
    level = features.level_db.astype(np.float64)
    audible = level[level > SILENCE_GATE_DB]
    if audible.size < MINIMUM_SPEECH_S * features.rate_hz:
        loudest = float(level.max()) if level.size else -120.0
        raise NoSpeechError(
            f"{source}: no speech found, only silence (loudest moment {loudest:.0f} dBFS; "
            f"speech must reach at least {SILENCE_GATE_DB:.0f} dBFS for {MINIMUM_SPEECH_S:g} s)"
        )
    loud = float(np.percentile(audible, LOUD_PERCENTILE))
    floor = max(float(np.percentile(level, FLOOR_PERCENTILE)), -100.0)
    # A third of the way from the floor to the loud vowels separates speech
    # from pauses in clean and in noisy recordings; in a recording without
    # pauses (floor close to the speech level) stay 15 dB under the vowels.
    threshold = max(SILENCE_GATE_DB, min(floor + (loud - floor) / 3.0, loud - 15.0))
    return Levels(floor, loud, threshold)


def mouth_curves(features: AcousticFeatures, source: str = "the audio") -> MouthCurves:
    """Jaw opening, lip rounding and spreading, closures and speech activity
    from the features of a whole recording (see the module docstring)."""
    rate = features.rate_hz
    levels = speech_levels(features, source)
    level = features.level_db.astype(np.float64)

    # Voice activity: above the threshold, with gaps up to 60 ms bridged (stop
    # closures inside words) and blips under 40 ms removed (clicks).
    active = level > levels.threshold_db
    active = binary_closing(active, np.ones(_frames(0.06, rate), bool)) | active
    active = binary_opening(active, np.ones(_frames(0.04, rate), bool))
    # "Speech" for lip shape and head motion also bridges pauses between words.
    speech = binary_closing(active, np.ones(_frames(0.30, rate), bool)) | active

    # Loudness 0..1 above the silence threshold; the dB scale matches how
    # strongly the mouth opens better than raw amplitude does.
    loudness = np.clip((level - levels.threshold_db) / max(levels.loud_db - levels.threshold_db, 1.0), 0.0, 1.0)
    loudness[~active] = 0.0

    voiced = (features.voicing > 0.5) & active
    f1 = _fill_gaps(_smooth_track(features.f1_hz, voiced), speech)
    f2 = _fill_gaps(_smooth_track(features.f2_hz, voiced), speech)

    # Jaw: loudness scaled by how open the vowel is (F1); unvoiced sounds are
    # made with the teeth nearly together. Where F1 is unknown use a mid vowel.
    openness = np.clip((np.nan_to_num(f1, nan=0.5 * (F1_CLOSE_HZ + F1_OPEN_HZ)) - F1_CLOSE_HZ)
                       / (F1_OPEN_HZ - F1_CLOSE_HZ), 0.0, 1.0)
    voicing = np.clip((features.voicing - 0.3) / 0.5, 0.0, 1.0)
    jaw = loudness * (voicing * (0.25 + 0.75 * openness) + (1.0 - voicing) * 0.2)

    # Lips: rounded for a low F2 ("oo", "oh", "w"), spread for a high F2
    # ("ee", "eh"); open vowels leave the lips less shaped.
    f2_known = np.nan_to_num(f2, nan=0.5 * (F2_BACK_HZ + F2_CENTRAL_HZ))
    rounded = np.clip((F2_BACK_HZ - f2_known) / (F2_BACK_HZ - F2_ROUNDED_HZ), 0.0, 1.0)
    spread = np.clip((f2_known - F2_CENTRAL_HZ) / (F2_FRONT_HZ - F2_CENTRAL_HZ), 0.0, 1.0)
    shaping = (1.0 - 0.5 * openness) * np.clip(1.5 * loudness + 0.5 * speech, 0.0, 1.0) * speech
    pucker = rounded * shaping
    wide = spread * shaping

    lips_closed = plosive_closures(level, levels, rate) & speech

    jaw = gaussian_filter1d(jaw, JAW_SMOOTHING_S * rate, mode="nearest")
    pucker = gaussian_filter1d(pucker, LIP_SMOOTHING_S * rate, mode="nearest")
    wide = gaussian_filter1d(wide, LIP_SMOOTHING_S * rate, mode="nearest")
    envelope = gaussian_filter1d(loudness, 0.15 * rate, mode="nearest")
    return MouthCurves(rate, jaw, pucker, wide, lips_closed, speech, envelope)


def plosive_closures(level: np.ndarray, levels: Levels, rate: float) -> np.ndarray:
    """Frames where the lips are shut before a plosive burst: a stretch of at
    least 30 ms at 20 dB or more below the surrounding speech (or below the
    silence threshold), ended within 20 ms by a rise of 12 dB or more in at
    most 30 ms, and at most 250 ms long (longer is a pause, not a stop)."""
    surrounding = _running_max(level, _frames(0.15, rate))
    dip = (level < surrounding - 20.0) | (level < levels.threshold_db)
    rise_frames = max(1, _frames(0.03, rate))
    burst = np.zeros_like(dip)
    rise = level[rise_frames:] - level[:-rise_frames]
    burst[rise_frames:] = (rise >= 12.0) & (level[rise_frames:] > levels.threshold_db)

    closed = np.zeros_like(dip)
    minimum, maximum, reach = _frames(0.03, rate), _frames(0.25, rate), _frames(0.02, rate) + rise_frames
    for start, stop in runs_of(dip):
        if minimum <= stop - start <= maximum and start > 0 and burst[stop:stop + reach].any():
            closed[start:stop] = True
    return closed


# ------------------------------------------------------------ helpers


def _frames(seconds: float, rate: float) -> int:
    return max(1, int(round(seconds * rate)))


def _running_max(values: np.ndarray, half_width: int) -> np.ndarray:
    return maximum_filter1d(values, 2 * half_width + 1, mode="nearest")


def _smooth_track(track: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """A formant track kept only where `valid`, with single-frame errors (a
    merged or split formant) removed by a 5-frame median."""
    kept = np.where(valid, track, np.nan).astype(np.float64)
    known = np.isfinite(kept)
    if known.sum() < 3:
        return kept
    # Median over known values only: fill unknown ones from the nearest known
    # frame first, filter, then blank them again.
    filled = np.interp(np.arange(kept.size), np.flatnonzero(known), kept[known])
    smoothed = median_filter(filled, size=5, mode="nearest")
    smoothed[~known] = np.nan
    return smoothed


def _fill_gaps(track: np.ndarray, speech: np.ndarray) -> np.ndarray:
    """Carry a track across the unknown frames inside each stretch of speech
    by interpolating between its known neighbours (coarticulation: a
    consonant takes the lip shape of the vowels around it). Outside speech
    the track stays unknown."""
    result = np.full(track.shape, np.nan)
    for start, stop in runs_of(speech):
        segment = track[start:stop]
        known = np.flatnonzero(np.isfinite(segment))
        if known.size:
            result[start:stop] = np.interp(np.arange(stop - start), known, segment[known])
    return result
