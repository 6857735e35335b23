"""Speech -> Motion: the common last steps of both lip-sync methods, and the
two entry points (from an audio file, from synthesised speech).

Mouth curves (acoustic.py or phonemes.py, 100 per second) become a Motion at
the animation's frame rate:
- anticipation: the mouth leads the sound by `lead_frames` (lips and jaw move
  into a sound before it is heard; the visible lead is about 50-100 ms);
- resampling to the frame times;
- closures: a frame that covers a plosive or bilabial closure shows the lips
  shut, even when the closure is shorter than a frame;
- sealing: a shut mouth is jaw_open -1 rather than 0, so a photo whose mouth
  is open closes its lips in pauses and on closures (on a photo with closed
  lips negative jaw_open changes nothing);
- the photo's own mouth, when the options name it (`photo_mouth`, from the
  rig): speech opens the lips by as much on a photo whose mouth is open as on
  one whose lips are closed, so a wide-open photo talks with its lips mostly
  closed over its opening (negative jaw_open) instead of shouting;
- strength: one factor on every mouth channel;
- optional head motion and blinks (liveliness.py).
"""
from __future__ import annotations

import math
import os
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from ..arrays import runs_of
from ..errors import EnlivenError
from ..rig import smoothstep
from ..shared.mouth import CLOSED_LIPS, MouthOpening
from ..shared.channels import CHANNEL_INDEX, CHANNELS
from ..shared.keyframes import CURVE_CHANNELS, MOUTH_CHANNELS
from ..shared.motion import Motion
from .acoustic import FeatureExtractor, MouthCurves, extract_features, mouth_curves
from .audio import ANALYSIS_SAMPLE_RATE, DEFAULT_BLOCK_SECONDS, stream_audio
from .liveliness import blinks, head_motion
from .phonemes import mouth_curves_from_phonemes
from .tts import SynthesizedSpeech

HEAD_CHANNELS = ("head_yaw", "head_pitch", "head_roll")
BLINK_CHANNELS = ("blink_l", "blink_r")
MAXIMUM_STRENGTH = 3.0
MAXIMUM_LEAD_FRAMES = 10.0
MAXIMUM_HEAD_MOTION = 5.0
NATURAL_HEAD_MOTION = 1.0  # conversational head motion; what a talking portrait gets by default
CLOSED_JAW = -1.0  # lips sealed, whatever the photo's own mouth shows
SEAL_BELOW = 0.05  # a jaw curve under this blends toward sealed lips (-1 at 0); speech above is unchanged
METHODS = ("learned", "acoustic")


class LipsyncModelWarning(UserWarning):
    """The learned lip-sync model could not be used; the acoustic method ran instead."""


@dataclass(frozen=True)
class LipsyncOptions:
    fps: float = 24.0
    strength: float = 1.0  # scales jaw_open, pucker and wide
    lead_frames: float = 2.0  # the mouth moves this many frames before the sound
    head_motion: float = 0.0  # 0 = none, 1 = natural conversational head motion
    blinks: bool = False
    seed: int = 0
    photo_mouth: MouthOpening = CLOSED_LIPS  # the photo's own lips (rig.mouth_opening_of its subject)

    @classmethod
    def talking(cls, fps: float, head_motion: float | None = None, seed: int = 0,
                photo_mouth: MouthOpening = CLOSED_LIPS) -> "LipsyncOptions":
        """A talking portrait (`enliven talk`, the service's talk request): the
        mouth with blinks and head motion that follow the speech (natural
        conversational head motion unless `head_motion` says otherwise), fitted
        to the photo's own mouth when `photo_mouth` is given."""
        return cls(fps=fps, head_motion=NATURAL_HEAD_MOTION if head_motion is None else head_motion, blinks=True,
                   seed=seed, photo_mouth=photo_mouth)

    def __post_init__(self) -> None:
        checks = (
            (math.isfinite(self.fps) and 0 < self.fps <= 1000,
             f"fps must be above 0 and at most 1000, got {self.fps:g}"),
            (0 <= self.strength <= MAXIMUM_STRENGTH,
             f"strength must be 0 to {MAXIMUM_STRENGTH:g}, got {self.strength:g}"),
            (0 <= self.lead_frames <= MAXIMUM_LEAD_FRAMES,
             f"lead must be 0 to {MAXIMUM_LEAD_FRAMES:g} frames, got {self.lead_frames:g}"),
            (0 <= self.head_motion <= MAXIMUM_HEAD_MOTION,
             f"head motion must be 0 to {MAXIMUM_HEAD_MOTION:g}, got {self.head_motion:g}"),
        )
        for ok, message in checks:
            if not ok:
                raise EnlivenError(message)


@dataclass
class LipsyncResult:
    motion: Motion
    duration_s: float  # of the audio
    speech_s: float  # how much of it is speech
    processing_s: float  # wall time for decoding and analysis
    method: str  # "learned", "acoustic" or "phonemes"


def frame_count(duration_s: float, fps: float) -> int:
    """Frames covering `duration_s` of sound: frame i shows time i / fps, and the last one lasts to the sound's
    end (rounded, a video ended up to half a frame before its sound)."""
    return max(1, math.ceil(duration_s * fps - 1e-6))


def lipsync_audio(path: str | os.PathLike[str], options: LipsyncOptions = LipsyncOptions(),
                  block_seconds: float = DEFAULT_BLOCK_SECONDS,
                  progress: Callable[[float], None] | None = None,
                  method: str = "acoustic", model_path: str | os.PathLike[str] | None = None) -> LipsyncResult:
    """Lip-sync of an audio file or a video's sound track, decoded and
    analysed block by block (memory stays flat for long recordings).

    method "acoustic": the model-free formant tracker (acoustic.py);
    "learned": the audio-to-mouth network (learned.py; `model_path`, default
    the shipped model) drives jaw_open, pucker and wide, and the acoustic
    analysis still supplies speech/silence, loudness (head motion) and
    closures. A missing or damaged model falls back to "acoustic" with a
    LipsyncModelWarning; result.method says which one ran.

    `progress(seconds decoded so far)` is called after each block; it may
    raise to stop early (the server cancels jobs that way), which also stops
    the decoder."""
    if method not in METHODS:
        raise EnlivenError(f"unknown lip-sync method {method!r}; use one of {', '.join(METHODS)}")
    started = time.perf_counter()
    model = _learned_model_or_warn(model_path) if method == "learned" else None
    blocks = stream_audio(path, ANALYSIS_SAMPLE_RATE, block_seconds)
    if progress is not None:
        blocks = _reporting(blocks, ANALYSIS_SAMPLE_RATE, progress)
    extractor = FeatureExtractor(ANALYSIS_SAMPLE_RATE)
    mel = None
    if model is not None:
        from .learned import LogMelExtractor

        mel = LogMelExtractor(model.config)
    for block in blocks:
        extractor.add(block)
        if mel is not None:
            mel.add(block)
    features = extractor.finish()
    curves = mouth_curves(features, source=str(path))
    if model is not None:
        from .learned import locally_centred, with_learned_mouth

        centred = locally_centred(mel.finish(), model.config.local_mean_frames)
        curves = with_learned_mouth(curves, model.predict(centred))
    motion = motion_from_curves(curves, features.duration_s, options)
    elapsed = time.perf_counter() - started
    return LipsyncResult(motion, features.duration_s, _speech_seconds(curves), elapsed,
                         "learned" if model is not None else "acoustic")


def _learned_model_or_warn(model_path):
    """The learned model, or None after a warning (the caller then runs the acoustic method)."""
    from .learned import LipsyncModelError, load_model

    try:
        return load_model(model_path)
    except LipsyncModelError as error:
        warnings.warn(f"{error}; using the acoustic lip-sync instead", LipsyncModelWarning, stacklevel=3)
        return None


def _reporting(blocks: Iterator[np.ndarray], sample_rate: int,
               progress: Callable[[float], None]) -> Iterator[np.ndarray]:
    decoded = 0
    for block in blocks:
        decoded += block.size
        progress(decoded / sample_rate)
        yield block


def lipsync_samples(samples: np.ndarray, sample_rate: int, options: LipsyncOptions = LipsyncOptions()) -> LipsyncResult:
    """Acoustic lip-sync of samples already in memory (mono, -1..1)."""
    started = time.perf_counter()
    features = extract_features([np.asarray(samples, np.float32)], sample_rate)
    curves = mouth_curves(features)
    motion = motion_from_curves(curves, features.duration_s, options)
    elapsed = time.perf_counter() - started
    return LipsyncResult(motion, features.duration_s, _speech_seconds(curves), elapsed, "acoustic")


def lipsync_phonemes(speech: SynthesizedSpeech, options: LipsyncOptions = LipsyncOptions()) -> LipsyncResult:
    """Phoneme-based lip-sync from known phoneme timings."""
    started = time.perf_counter()
    curves = mouth_curves_from_phonemes(speech.phonemes, speech.duration_s)
    motion = motion_from_curves(curves, speech.duration_s, options)
    elapsed = time.perf_counter() - started
    return LipsyncResult(motion, speech.duration_s, _speech_seconds(curves), elapsed, "phonemes")


def motion_from_curves(curves: MouthCurves, duration_s: float, options: LipsyncOptions) -> Motion:
    """Mouth curves -> a Motion at options.fps (see the module docstring)."""
    fps = options.fps
    count = frame_count(duration_s, fps)
    frame_times = np.arange(count) / fps
    # Anticipation: frame i shows the mouth of the sound lead seconds later.
    lead_s = options.lead_frames / fps
    looked_up = frame_times + lead_s
    curve_times = np.arange(curves.jaw_open.size) / curves.rate_hz

    values = {name: np.interp(looked_up, curve_times, getattr(curves, name)) for name in CURVE_CHANNELS}
    closed = _closed_frames(curves.lips_closed, curves.rate_hz, looked_up)
    values["jaw_open"] = sealed_jaw(np.clip(values["jaw_open"], 0.0, 1.0), options.photo_mouth)
    values["jaw_open"][closed] = CLOSED_JAW
    for name in CURVE_CHANNELS:
        channel = CHANNELS[CHANNEL_INDEX[name]]
        values[name] = np.clip(values[name] * options.strength, channel.minimum, channel.maximum)
    # Lip-sync keys the whole mouth (MOUTH_CHANNELS): the channels the sound does not drive are keyed at
    # rest, so that laid over a captured take (Blender's Replace) the take's lips_part does not open every
    # word further.
    values.update({name: np.full(count, CHANNELS[CHANNEL_INDEX[name]].default)
                   for name in MOUTH_CHANNELS if name not in values})

    # A random stream each: the blinks' times do not hang on how many numbers the head's noise drew (a
    # sound one frame longer moved every blink, or took the only one away).
    head_rng, blink_rng = np.random.default_rng(options.seed).spawn(2)
    if options.head_motion > 0:
        # The head follows the sound as heard, not the anticipating mouth.
        values.update(head_motion(curves, frame_times, options.head_motion, head_rng))
    if options.blinks:
        blink = blinks(curves, frame_times, blink_rng)
        values.update({name: blink for name in BLINK_CHANNELS})

    channels = tuple(values)
    return Motion(fps, channels, np.stack([values[name] for name in channels], axis=1))


def sealed_jaw(opening: np.ndarray, photo_mouth: MouthOpening = CLOSED_LIPS) -> np.ndarray:
    """Jaw openness (0 shut .. 1 wide) -> jaw_open, where the lips seal below SEAL_BELOW: 0 -> -1, rising
    smoothly and monotonically to the opening's own jaw_open at SEAL_BELOW; above it, the jaw_open that
    parts `photo_mouth`'s lips that far (on a photo with closed lips, the opening itself)."""
    touching = float(photo_mouth.jaw_for(0.0))
    return photo_mouth.jaw_for(opening) - (1.0 + touching) * (1.0 - smoothstep(0.0, SEAL_BELOW, opening))


def _closed_frames(mask: np.ndarray, rate_hz: float, frame_times: np.ndarray) -> np.ndarray:
    """Frames that show a closure: those whose time falls inside a run of
    `mask`, and for a run too short to contain any frame time, the frame
    nearest its middle (so a 30 ms "p" is never lost between frames)."""
    closed = np.zeros(frame_times.size, bool)
    if frame_times.size == 0:
        return closed
    for start, stop in runs_of(mask):
        begin, end = start / rate_hz, stop / rate_hz  # the run covers [begin, end)
        inside = (frame_times >= begin) & (frame_times < end)
        if inside.any():
            closed |= inside
        else:
            closed[np.argmin(np.abs(frame_times - 0.5 * (begin + end)))] = True
    return closed


def _speech_seconds(curves: MouthCurves) -> float:
    return float(curves.speech.sum() / curves.rate_hz)
