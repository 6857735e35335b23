"""Phoneme-based lip-sync: timed phonemes -> visemes -> mouth curves.

Each phoneme (an IPA symbol, as eSpeak NG reports it) maps to a viseme: a
mouth posture given as targets for jaw_open, pucker and wide, plus how much
that phoneme insists on each target ("dominance"). A bilabial stop insists on
a shut jaw and does not care about lip shape; a vowel sets everything; "h"
or "k" barely constrain the lips, which therefore take the shape of the
vowels around them.

Blending follows Cohen and Massaro's coarticulation model (1993): every
segment's dominance is full during the segment and decays exponentially
before and after it; the value at any time is the dominance-weighted mean of
all segments' targets. Lip rounding reaches further than jaw motion, so an
"oo" rounds the lips through the consonants before it, as people do; the jaw
curve is then smoothed like the acoustic one (the jaw cannot jump).
"""
from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.ndimage import gaussian_filter1d

from ..shared.keyframes import CURVE_CHANNELS
from .acoustic import FRAME_RATE_HZ, MouthCurves
from .tts import TimedPhoneme


@dataclass(frozen=True)
class Viseme:
    name: str
    jaw_open: float
    pucker: float
    wide: float
    jaw_dominance: float = 1.0
    lip_dominance: float = 1.0
    lips_closed: bool = False


# Targets on the channel scales (0..1). Dominance 1 is a vowel's.
VISEMES = {
    v.name: v
    for v in (
        Viseme("rest", 0.0, 0.0, 0.0, jaw_dominance=2.0, lip_dominance=1.0),  # pauses: the mouth closes quickly
        Viseme("PP", 0.0, 0.0, 0.0, jaw_dominance=3.0, lip_dominance=0.05, lips_closed=True),  # p b m
        Viseme("FF", 0.07, 0.0, 0.15, jaw_dominance=2.0, lip_dominance=0.6),  # f v: lip to teeth
        Viseme("TH", 0.14, 0.0, 0.1, jaw_dominance=1.2, lip_dominance=0.2),  # th
        Viseme("DD", 0.12, 0.0, 0.1, jaw_dominance=1.2, lip_dominance=0.1),  # t d n
        Viseme("LL", 0.2, 0.0, 0.1, jaw_dominance=1.0, lip_dominance=0.1),  # l
        Viseme("SS", 0.07, 0.0, 0.3, jaw_dominance=1.5, lip_dominance=0.3),  # s z
        Viseme("CH", 0.1, 0.5, 0.0, jaw_dominance=1.5, lip_dominance=0.8),  # sh zh ch j: lips pushed out
        Viseme("KK", 0.18, 0.0, 0.05, jaw_dominance=1.0, lip_dominance=0.1),  # k g ng
        Viseme("RR", 0.15, 0.35, 0.0, jaw_dominance=1.0, lip_dominance=0.6),  # r
        Viseme("WW", 0.08, 0.9, 0.0, jaw_dominance=1.5, lip_dominance=2.0),  # w
        Viseme("YY", 0.1, 0.0, 0.4, jaw_dominance=1.0, lip_dominance=0.6),  # y (j)
        Viseme("HH", 0.25, 0.0, 0.0, jaw_dominance=0.2, lip_dominance=0.05),  # h: a breath through the next vowel
        Viseme("II", 0.16, 0.0, 0.75),  # ee
        Viseme("IH", 0.25, 0.0, 0.5),  # i in "bit"
        Viseme("EE", 0.38, 0.0, 0.5),  # e in "bed" (closer)
        Viseme("EH", 0.48, 0.0, 0.35),  # e in "bed" (opener)
        Viseme("AE", 0.65, 0.0, 0.3),  # a in "cat"
        Viseme("AA", 0.8, 0.0, 0.0),  # a in "father"
        Viseme("AH", 0.55, 0.0, 0.05),  # u in "cup"
        Viseme("ER", 0.38, 0.15, 0.0),  # schwa, "bird"
        Viseme("OH", 0.62, 0.4, 0.0),  # o in "lot", "law"
        Viseme("OO_MID", 0.4, 0.6, 0.0),  # o in "go" (French eau)
        Viseme("UH", 0.25, 0.55, 0.0),  # u in "put"
        Viseme("UU", 0.16, 0.85, 0.0),  # oo
        Viseme("YU", 0.18, 0.7, 0.0),  # French u, German ü: rounded ee
        Viseme("OE", 0.35, 0.55, 0.0),  # German ö
    )
}

# IPA base symbols (diacritics, stress and length marks removed) -> viseme.
_SYMBOLS = {
    "": "rest", "_": "rest",
    "p": "PP", "b": "PP", "m": "PP", "ɸ": "FF", "β": "FF",
    "f": "FF", "v": "FF", "ɱ": "FF", "ʋ": "FF",
    "θ": "TH", "ð": "TH",
    "t": "DD", "d": "DD", "n": "DD", "ɾ": "DD", "ʔ": "DD", "ʈ": "DD", "ɖ": "DD", "ɳ": "DD", "c": "KK", "ɟ": "KK",
    "l": "LL", "ɫ": "LL", "ɬ": "LL", "ɮ": "LL", "ʎ": "LL", "ɭ": "LL",
    "s": "SS", "z": "SS", "ɕ": "SS", "ʑ": "SS", "ʂ": "CH", "ʐ": "CH",
    "ʃ": "CH", "ʒ": "CH", "tʃ": "CH", "dʒ": "CH", "ts": "SS", "dz": "SS",
    "k": "KK", "g": "KK", "ɡ": "KK", "ŋ": "KK", "x": "KK", "ɣ": "KK", "q": "KK", "ɢ": "KK", "ɲ": "KK", "χ": "KK",
    "ʁ": "KK", "ç": "YY",
    "r": "RR", "ɹ": "RR", "ɻ": "RR", "ʀ": "RR", "ɚ": "ER", "ɝ": "ER",
    "w": "WW", "ʍ": "WW", "ɥ": "WW",
    "j": "YY",
    "h": "HH", "ɦ": "HH",
    "i": "II", "ɪ": "IH", "ɨ": "IH", "ᵻ": "IH", "e": "EE", "ɛ": "EH", "æ": "AE", "a": "AA", "ɑ": "AA",
    "ɐ": "AH", "ʌ": "AH", "ə": "ER", "ɜ": "ER", "ɘ": "ER", "ɵ": "ER", "ɤ": "ER", "ɯ": "IH",
    "ɒ": "OH", "ɔ": "OH", "o": "OO_MID", "ʊ": "UH", "u": "UU", "ʉ": "UU",
    "y": "YU", "ʏ": "YU", "ø": "OE", "œ": "OE", "ɶ": "OH",
}
_VOWELS = set("iɪɨᵻeɛæaɑɐʌəɜɘɵɤɯɒɔoʊuʉyʏøœɶɚɝ")
# Marks that change length or stress, not the mouth shape.
_IGNORED = set("ˈˌːˑ̯͡‿-'")

# Decay of dominance outside a segment, per second. The jaw's is short: its
# sluggishness comes from the smoothing below, as in the acoustic method,
# while long-reaching lip dominance carries rounding across consonants.
JAW_DECAY_PER_S = 1.0 / 0.010
LIP_DECAY_PER_S = 1.0 / 0.06
# Phoneme timings are exact, so the jaw needs less smoothing than acoustic.JAW_SMOOTHING_S.
JAW_SMOOTHING_S = 0.020
_REACH_S = 0.5  # beyond this, a segment's influence is negligible

# eSpeak NG times a stop consonant (p, t, k, b, d, g) from its release burst;
# the closure before the burst, when the lips or tongue are already shut and
# the sound is silent, lies inside the previous phoneme's time. Measured on
# its output, the closure lasts about 50 ms at 120 words a minute, 40 ms at
# 175 and 25 ms at 260, so each stop takes up to STOP_CLOSURE_S from the
# phoneme before it, and never more than STOP_CLOSURE_SHARE of that phoneme.
STOPS = frozenset("pbtdkgɡʈɖcɟqɢ")
STOP_CLOSURE_S = 0.045
STOP_CLOSURE_SHARE = 0.4


def visemes_of(phoneme: str) -> list[Viseme]:
    """The viseme(s) of one IPA phoneme; a diphthong ("aɪ", "əʊ") gives one
    viseme per vowel. Unknown symbols give a mid, neutral mouth."""
    symbol = "".join(ch for ch in unicodedata.normalize("NFD", phoneme)
                     if ch not in _IGNORED and not unicodedata.combining(ch))
    if symbol in _SYMBOLS:
        return [VISEMES[_SYMBOLS[symbol]]]
    if symbol and all(ch in _VOWELS for ch in symbol):
        return [VISEMES[_SYMBOLS[ch]] for ch in symbol]
    for length in (2, 1):  # an affricate or a symbol with an unlisted modifier: its known start
        if symbol[:length] in _SYMBOLS:
            return [VISEMES[_SYMBOLS[symbol[:length]]]]
    return [VISEMES["ER"]]


def mouth_curves_from_phonemes(phonemes: Sequence[TimedPhoneme], duration_s: float,
                               rate_hz: float = FRAME_RATE_HZ) -> MouthCurves:
    """Mouth curves sampled at `rate_hz` (frame k at k / rate_hz seconds)."""
    segments = viseme_segments(phonemes)
    count = max(1, int(np.ceil(duration_s * rate_hz)))
    times = np.arange(count) / rate_hz
    sums = {name: np.zeros(count) for name in CURVE_CHANNELS}
    weights = {"jaw": np.zeros(count), "lips": np.zeros(count)}
    lips_closed = np.zeros(count, bool)
    speech = np.zeros(count, bool)

    for start, end, viseme in segments:
        first = max(0, int(np.floor((start - _REACH_S) * rate_hz)))
        last = min(count, int(np.ceil((end + _REACH_S) * rate_hz)) + 1)
        if first >= last:
            continue
        t = times[first:last]
        outside = np.maximum(0.0, np.maximum(start - t, t - end))
        jaw_weight = viseme.jaw_dominance * np.exp(-JAW_DECAY_PER_S * outside)
        lip_weight = viseme.lip_dominance * np.exp(-LIP_DECAY_PER_S * outside)
        weights["jaw"][first:last] += jaw_weight
        weights["lips"][first:last] += lip_weight
        sums["jaw_open"][first:last] += jaw_weight * viseme.jaw_open
        sums["pucker"][first:last] += lip_weight * viseme.pucker
        sums["wide"][first:last] += lip_weight * viseme.wide
        first_inside = int(np.ceil(start * rate_hz))
        inside = slice(first_inside, min(count, max(int(np.ceil(end * rate_hz)), first_inside + 1)))  # never empty
        if viseme.lips_closed:
            lips_closed[inside] = True
        if viseme.name != "rest":
            speech[inside] = True

    jaw = sums["jaw_open"] / np.maximum(weights["jaw"], 1e-9)
    jaw = gaussian_filter1d(jaw, JAW_SMOOTHING_S * rate_hz, mode="nearest")
    pucker = sums["pucker"] / np.maximum(weights["lips"], 1e-9)
    wide = sums["wide"] / np.maximum(weights["lips"], 1e-9)
    # The envelope for optional head motion: how open the jaw is while talking.
    loudness = gaussian_filter1d(np.where(speech, jaw, 0.0), 0.15 * rate_hz, mode="nearest")
    return MouthCurves(rate_hz, jaw, pucker, wide, lips_closed, speech, loudness)


def viseme_segments(phonemes: Sequence[TimedPhoneme]) -> list[tuple[float, float, Viseme]]:
    """(start, end, viseme) per viseme: stops start at their closure (see
    STOP_CLOSURE_S), and a diphthong's time is split evenly between its vowels."""
    starts = [p.start_s for p in phonemes]
    for index in range(1, len(phonemes)):
        if phonemes[index].phoneme[:1] in STOPS:
            previous = phonemes[index - 1]
            starts[index] -= min(STOP_CLOSURE_S, STOP_CLOSURE_SHARE * (previous.end_s - starts[index - 1]))
    segments = []
    for index, phoneme in enumerate(phonemes):
        start = starts[index]
        end = starts[index + 1] if index + 1 < len(phonemes) else phoneme.end_s
        parts = visemes_of(phoneme.phoneme)
        step = (end - start) / len(parts)
        for part, viseme in enumerate(parts):
            segments.append((start + part * step, start + (part + 1) * step, viseme))
    return segments
