"""Ready-made motions (blink, nod, talk...), defined as keyframes.

Keyframes rather than sampled values so that the Blender add-on can insert
them as real, editable keyframes while the backend samples the same keys.

Every preset starts and ends with each channel it keys at the channel's
default, so presets can be placed one after another on a timeline.

Speech (talk, and the words at the end of showcase) is keyed for a mouth
that is closed at rest. Given the photo's lips (`mouth`, a MouthOpening),
its openings are fitted to them as lip-sync's are: on a photo whose mouth
is open, the lips close between syllables instead of only opening further.
Keys at rest stay at rest (the photo's own mouth, where a preset starts and
ends).

A loopable preset (idle-alive) can also be built as a seamless loop
(`loop=True`): its keys end where they start, every periodic part (breathing)
fits a whole number of times, and the sampled motion leaves out the last
frame, which would repeat the first: played over and over, the last frame
flows into the first like any frame into the next.
"""
from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .channels import CHANNEL_INDEX, CHANNEL_NAMES, channel, default_vector, unknown_name_message
from .face_motion import FaceMotions
from .motion import Motion, MotionError, checked_fps, frames_spanning
from .mouth import MouthOpening

# channel name -> [(time, value), ...] sorted by time; time in seconds when a
# preset builds its keys, in frames once converted by preset_keys.
Keys = dict[str, list[tuple[float, float]]]
Builder = Callable[[np.random.Generator, float], Keys]


@dataclass(frozen=True)
class Preset:
    name: str
    description: str
    duration_s: float  # the length used when the caller does not ask for one
    # (rng, duration_s) -> keys spanning [0, duration_s]; rng is only used by
    # presets with random variation.
    build: Builder
    # The builder of the seamless loop, for presets that can loop: keys whose
    # last value equals the first on every channel.
    build_loop: Builder | None = None
    breathes: bool = False  # its builders take `breaths_per_minute` (idle-alive)

    @property
    def loopable(self) -> bool:
        return self.build_loop is not None


def loopable_presets() -> list[str]:
    return [name for name, preset in PRESETS.items() if preset.loopable]


def preset_keys(
    name: str, fps: float = 24.0, seed: int = 0, duration_s: float | None = None, loop: bool = False,
    face: int = 0, breaths_per_minute: float | None = None, mouth: MouthOpening | None = None,
) -> dict[str, list[tuple[int, float]]]:
    """The keys of preset `name` in whole frames at `fps`.

    Keys are rounded to the nearest frame; when two keys of a channel land on
    the same frame the later one wins, except over the channel's first key:
    that one stays, so that even at low frame rates every preset starts at
    rest. `duration_s` defaults to the preset's
    own length; gestures are stretched to fit it, while the generated presets
    (talk, idle-alive) fill it.

    With `loop` (loopable presets only, else MotionError) every channel's
    last key, on the last frame, has the value of its first: with a cyclic
    extrapolation (Blender's Cycles modifier) the keys repeat seamlessly
    with a period of that last frame.

    `face`: the face number in a group photo; each face draws its own random
    variation from `seed` (face_seed), so people never blink in unison.

    `breaths_per_minute`: the breathing rate of a preset that breathes
    (idle-alive; BREATHS_PER_MINUTE_RANGE, default DEFAULT_BREATHS_PER_MINUTE);
    each face breathes within a few percent of it. MotionError for another preset.

    `mouth`: the photo's lips (this face's), to fit the speech's openings to
    (fitted_to_mouth); None keys them relative to the photo's own opening.
    """
    preset = _preset(name)
    duration = preset.duration_s if duration_s is None else float(duration_s)
    frame_count = preset_frame_count(duration, fps)  # checked before building: talk and idle-alive key all of it
    build = preset.build
    if loop:
        build = _loop_builder(preset)
        if frame_count < 3:
            raise MotionError(f"a loop needs at least 2 frames; {duration:g} s at {fps:g} fps is too short")
    if breaths_per_minute is not None:
        if not preset.breathes:
            raise MotionError(f"preset {name!r} has no breathing rate; presets that breathe: "
                              f"{', '.join(n for n, p in PRESETS.items() if p.breathes)}")
        build = functools.partial(build, breaths_per_minute=checked_breathing_rate(breaths_per_minute))
    keys = build(np.random.default_rng(face_seed(seed, face)), duration)
    if mouth is not None:
        keys = fitted_to_mouth(keys, mouth)
    frame_keys: dict[str, list[tuple[int, float]]] = {}
    for channel_name, channel_keys in keys.items():
        by_frame: dict[int, float] = {}
        for time_s, value in channel_keys:
            by_frame[round(time_s * fps)] = value  # a later key replaces an earlier one
        first_time_s, first_value = channel_keys[0]
        by_frame[round(first_time_s * fps)] = first_value
        if loop:  # the period is exact even where rounding moved a key
            by_frame[frame_count - 1] = first_value
        frame_keys[channel_name] = sorted(by_frame.items())
    return frame_keys


def preset_speaks(name: str | None) -> bool:
    """Whether preset `name` moves the mouth as speech: its keys are then fitted to the photo's lips. (False
    for None, and for a name that is no preset: using it is refused elsewhere, with the presets there are.)"""
    return name in PRESETS and "jaw_open" in preset_keys(name)


def fitted_to_mouth(keys: Keys, mouth: MouthOpening) -> Keys:
    """`keys` with their jaw_open openings (measured from closed lips) turned into the jaw_open that opens
    `mouth`, the photo's lips, that far; keys at rest (0, the photo as it is) stay."""
    if "jaw_open" not in keys:
        return keys
    low, high = channel("jaw_open").minimum, channel("jaw_open").maximum
    jaw = [(time_s, value if value == 0.0 else float(np.clip(mouth.jaw_for(value), low, high)))
           for time_s, value in keys["jaw_open"]]
    return {**keys, "jaw_open": jaw}


def _loop_builder(preset: Preset) -> Builder:
    if preset.build_loop is None:
        raise MotionError(
            f"preset {preset.name!r} cannot loop; presets that can: {', '.join(loopable_presets())}")
    return preset.build_loop


def sample_keys(keys: dict[str, list[tuple[float, float]]], frame_count: int, period: int | None = None) -> np.ndarray:
    """Sample keys (times in frames) at frames 0..frame_count-1.

    Returns (frame_count, len(CHANNELS)) float32 in table order. Between two
    keys the value eases in and out (smoothstep), which is what Blender's
    auto-clamped Bezier curves do between a peak and a trough; before the
    first key and after the last the value holds; unkeyed channels stay at
    their default. With `period` (a loop's length in frames: its keys run from
    0 to period, the last repeating the first), a channel whose ends lie
    between its neighbours across the wrap (a loop starting mid-breath) is
    eased through them, as Blender eases a curve with a Cycles modifier: eased
    to a stop there as well, the breath stalled at the wrap.
    """
    frames = np.arange(frame_count, dtype=np.float64)
    samples = np.tile(default_vector(), (frame_count, 1))
    for channel_name, channel_keys in keys.items():
        if channel_name not in CHANNEL_INDEX:
            raise MotionError(unknown_name_message("channel", channel_name, CHANNEL_NAMES))
        if not channel_keys:
            continue
        times, values = (np.array(column, dtype=np.float64) for column in zip(*channel_keys))
        if np.any(np.diff(times) <= 0):
            raise MotionError(f"{channel_name}: key times must increase, got {times.tolist()}")
        if period is not None and _turns_not_at_the_wrap(times, values, period):
            times = np.concatenate([[times[-2] - period], times[1:-1], [times[1] + period]])
            values = np.concatenate([[values[-2]], values[1:-1], [values[1]]])
        samples[:, CHANNEL_INDEX[channel_name]] = _ease_between_keys(times, values, frames)
    return samples


WRAP_KEY_TOLERANCE = 0.05  # of the step across the wrap: an end key this near the ease through it lies on it


def _turns_not_at_the_wrap(times: np.ndarray, values: np.ndarray, period: int) -> bool:
    """Whether a loop's keys (from 0 to `period`, the ends alike) have their ends on the ease from one
    neighbour to the other across the wrap (a breath keyed mid-way), rather than a key of their own there
    (a turn, or head drift at rest: dropped, its rest was lost, and Blender's curves keep it)."""
    if times.size < 3 or times[0] != 0 or times[-1] != period or values[0] != values[-1]:
        return False
    before, after = values[-2], values[1]
    progress = (period - times[-2]) / (period - times[-2] + times[1])
    through = before + (after - before) * _smoothstep(progress)
    return abs(through - values[0]) <= WRAP_KEY_TOLERANCE * abs(after - before)


def _smoothstep(progress):
    """The ease between two keys, 0..1 over `progress` 0..1 (a float or an array)."""
    return progress * progress * (3.0 - 2.0 * progress)


def _ease_between_keys(times: np.ndarray, values: np.ndarray, frames: np.ndarray) -> np.ndarray:
    if times.size == 1:
        return np.full(frames.shape, values[0])
    # Index of the key at or before each frame, kept inside the key range so
    # that frames outside it use the first / last segment, fully clamped.
    start = np.clip(np.searchsorted(times, frames, side="right") - 1, 0, times.size - 2)
    progress = np.clip((frames - times[start]) / (times[start + 1] - times[start]), 0.0, 1.0)
    return values[start] + (values[start + 1] - values[start]) * _smoothstep(progress)


def preset_motion(
    name: str, fps: float = 24.0, seed: int = 0, duration_s: float | None = None, loop: bool = False,
    face: int = 0, breaths_per_minute: float | None = None, mouth: MouthOpening | None = None,
) -> Motion:
    """Preset `name` sampled into a Motion with every channel (for face number `face`, its speech fitted to
    `mouth`: see preset_keys).

    With `loop` the motion is one period of a seamless loop: the frame that
    would repeat the first is left out, so the motion is one frame shorter.
    """
    preset = _preset(name)
    duration = preset.duration_s if duration_s is None else duration_s
    keys = preset_keys(name, fps, seed, duration, loop=loop, face=face, breaths_per_minute=breaths_per_minute,
                       mouth=mouth)
    frame_count = preset_frame_count(duration, fps) - (1 if loop else 0)
    return Motion.from_full(sample_keys(keys, frame_count, period=frame_count if loop else None), fps)


def preset_face_motions(
    name: str, faces: list[int] | tuple[int, ...], fps: float = 24.0, seed: int = 0,
    duration_s: float | None = None, loop: bool = False, breaths_per_minute: float | None = None,
    mouths: dict[int, MouthOpening] | None = None,
) -> FaceMotions:
    """Preset `name` for each of `faces`, each with its own variation (blinks, saccades, breathing) and its
    speech fitted to its own lips (`mouths`: face -> MouthOpening; a face without one is not fitted)."""
    mouths = mouths or {}
    return FaceMotions(fps, {face: preset_motion(name, fps, seed, duration_s, loop, face, breaths_per_minute,
                                                 mouths.get(face))
                             for face in faces})


def checked_breathing_rate(breaths_per_minute: float) -> float:
    """`breaths_per_minute` as a float; MotionError outside BREATHS_PER_MINUTE_RANGE."""
    low, high = BREATHS_PER_MINUTE_RANGE
    try:
        rate = float(breaths_per_minute)
    except (TypeError, ValueError):
        rate = math.nan
    if not low <= rate <= high:
        raise MotionError(f"breaths per minute must be from {low:g} to {high:g}, got {breaths_per_minute!r}")
    return rate


def face_seed(seed: int, face: int) -> int:
    """The random seed of face number `face` in a photo animated with `seed`: face 0 keeps `seed` itself (a
    single face moves as it always did), every other face gets its own, unrelated stream of numbers."""
    if face == 0:
        return seed
    return int(np.random.SeedSequence([seed, face]).generate_state(1, np.uint64)[0] % (2**63))


def preset_frame_count(duration_s: float, fps: float) -> int:
    """How many frames a preset of `duration_s` seconds has at `fps`.

    MotionError unless the duration is positive, the fps is one a motion may
    have, and the frames fit in a motion file (MAX_FRAMES): talk and
    idle-alive would otherwise build keys for 1e308 seconds for ever.
    """
    try:
        duration = float(duration_s)
    except (TypeError, ValueError, OverflowError):
        duration = math.nan
    if not (math.isfinite(duration) and duration > 0):
        raise MotionError(f"preset duration must be a positive number of seconds, got {duration_s!r}")
    fps = checked_fps(fps)
    try:
        return frames_spanning(duration, fps)
    except MotionError as error:
        raise MotionError(f"preset duration {error}") from None


def _preset(name: str) -> Preset:
    try:
        return PRESETS[name]
    except KeyError:
        raise MotionError(unknown_name_message("preset", name, list(PRESETS))) from None


# ---------------------------------------------------------------- building blocks


def _stretched(natural_s: float, keys_at_natural_length: Callable[[np.random.Generator], Keys]) -> Builder:
    """A builder for a gesture designed at `natural_s` seconds that stretches
    its key times to whatever duration is asked for."""

    def build(rng: np.random.Generator, duration_s: float) -> Keys:
        scale = duration_s / natural_s
        return {
            name: [(time_s * scale, value) for time_s, value in keys]
            for name, keys in keys_at_natural_length(rng).items()
        }

    return build


def _chained(parts: list[tuple[Builder, float]], gap_s: float) -> tuple[Builder, float]:
    """Play (builder, duration_s) parts one after another with `gap_s` of rest
    between them; returns the combined builder and its natural length."""
    natural_s = sum(duration for _, duration in parts) + gap_s * (len(parts) - 1)

    def build_at_natural_length(rng: np.random.Generator) -> Keys:
        combined: Keys = {}
        start_s = 0.0
        for build_part, duration in parts:
            for name, keys in build_part(rng, duration).items():
                combined.setdefault(name, []).extend((start_s + t, v) for t, v in keys)
            start_s += duration + gap_s
        # Pin every channel to rest at both ends of the whole chain, not just
        # of the part that moves it.
        return {name: _rest_ends(name, keys, natural_s) for name, keys in combined.items()}

    return _stretched(natural_s, build_at_natural_length), natural_s


def _rest_ends(name: str, keys: list[tuple[float, float]], duration_s: float) -> list[tuple[float, float]]:
    """`keys` of channel `name` with a key at the channel's default (its rest)
    added at 0 and at `duration_s` where there is none."""
    rest = channel(name).default
    result = list(keys)
    if not result or result[0][0] > 0:
        result.insert(0, (0.0, rest))
    if result[-1][0] < duration_s:
        result.append((duration_s, rest))
    return result


# ---------------------------------------------------------------- gestures


def _blink_keys(rng: np.random.Generator) -> Keys:
    # Lids close fast (~0.1 s) and open more slowly (~0.15 s).
    keys = [(0.0, 0.0), (0.1, 1.0), (0.25, 0.0), (0.5, 0.0)]
    return {"blink_l": keys, "blink_r": list(keys)}


def _look_around_keys(rng: np.random.Generator) -> Keys:
    return {
        # Eyes: left, hold, right, hold, up a little at the centre, back.
        "gaze_x": [(0.0, 0.0), (0.3, -0.8), (1.2, -0.8), (1.6, 0.8), (2.5, 0.8), (2.9, 0.0), (4.0, 0.0)],
        "gaze_y": [(0.0, 0.0), (2.5, 0.0), (2.9, 0.35), (3.4, 0.35), (3.8, 0.0), (4.0, 0.0)],
        # The head follows the eyes a little, starting later and arriving
        # later, as people do.
        "head_yaw": [(0.0, 0.0), (0.15, 0.0), (0.8, -8.0), (1.35, -8.0), (2.1, 8.0), (2.65, 8.0), (3.3, 0.0), (4.0, 0.0)],
        "head_pitch": [(0.0, 0.0), (2.65, 0.0), (3.2, 2.5), (3.5, 2.5), (3.95, 0.0), (4.0, 0.0)],
    }


def _nod_keys(rng: np.random.Generator) -> Keys:
    return {
        "head_pitch": [
            (0.0, 0.0), (0.35, -12.0), (0.7, 6.0), (1.05, -12.0), (1.4, 6.0), (1.75, 0.0), (2.0, 0.0),
        ],
    }


def _shake_keys(rng: np.random.Generator) -> Keys:
    return {
        "head_yaw": [
            (0.0, 0.0), (0.3, 15.0), (0.65, -15.0), (1.0, 15.0), (1.35, -15.0), (1.7, 0.0), (2.0, 0.0),
        ],
    }


def _smile_keys(rng: np.random.Generator) -> Keys:
    smile = [(0.0, 0.0), (0.1, 0.0), (0.55, 0.8), (1.75, 0.8), (2.25, 0.0), (2.5, 0.0)]
    # The brows lift a little with a genuine smile, slightly after the mouth.
    brows = [(0.0, 0.0), (0.15, 0.0), (0.6, 0.2), (1.7, 0.2), (2.2, 0.0), (2.5, 0.0)]
    return {"smile_l": smile, "smile_r": list(smile), "brow_l": brows, "brow_r": list(brows)}


# ---------------------------------------------------------------- generated presets

# Talking: ~5 syllables a second.
_SYLLABLE_STEP_S = (0.17, 0.23)
_ACCENT_HALF_WIDTH_S = 0.07  # below half the shortest step, so accents never overlap
_TALK_LEAD_IN_S = 0.2
_TALK_TAIL_S = 0.25


def _build_talk(rng: np.random.Generator, duration_s: float) -> Keys:
    """Syllables at ~5 Hz until the duration is used up: the jaw alternates
    between a varied open peak and a nearly closed trough; some syllables are
    an "oo" (pucker) or "ee" (wide); the head bobs a little on stresses."""
    peaks: list[float] = []
    time_s = _TALK_LEAD_IN_S
    while time_s <= duration_s - _TALK_TAIL_S:
        peaks.append(time_s)
        time_s += rng.uniform(*_SYLLABLE_STEP_S)

    jaw = [(0.0, 0.0)]
    pucker: list[tuple[float, float]] = []
    wide: list[tuple[float, float]] = []
    head_pitch = [(0.0, 0.0)]
    for index, peak_s in enumerate(peaks):
        vowel = rng.choice(["open", "oo", "ee"], p=[0.6, 0.2, 0.2])
        if vowel == "oo":  # rounded lips barely open the jaw
            jaw.append((peak_s, rng.uniform(0.15, 0.3)))
            pucker += _accent(peak_s, rng.uniform(0.5, 0.7))
        elif vowel == "ee":
            jaw.append((peak_s, rng.uniform(0.2, 0.35)))
            wide += _accent(peak_s, rng.uniform(0.4, 0.6))
        else:
            jaw.append((peak_s, rng.uniform(0.3, 0.6)))
        if index + 1 < len(peaks):  # the mouth nearly closes between syllables
            jaw.append(((peak_s + peaks[index + 1]) / 2, rng.uniform(0.08, 0.15)))
        if index % 3 == 0:  # a small nod on every third syllable, alternating
            head_pitch.append((peak_s, rng.uniform(1.0, 2.0) * (-1 if index % 6 == 0 else 1)))

    keys = {"jaw_open": jaw, "pucker": pucker, "wide": wide, "head_pitch": head_pitch}
    return {name: _rest_ends(name, channel_keys, duration_s) for name, channel_keys in keys.items()}


def _accent(peak_s: float, value: float) -> list[tuple[float, float]]:
    """Keys for a lip shape that peaks on one syllable and is gone by the next."""
    return [(peak_s - _ACCENT_HALF_WIDTH_S, 0.0), (peak_s, value), (peak_s + _ACCENT_HALF_WIDTH_S, 0.0)]


# Idle: what a still face does when it is alive.
DEFAULT_BREATHS_PER_MINUTE = 15.0  # a resting adult breathes 12 to 20 times a minute
BREATHS_PER_MINUTE_RANGE = (4.0, 40.0)  # what --breaths-per-minute accepts
_BREATH_TEMPO_RANGE = (0.95, 1.05)  # each person's own period around the rate's (a group breathes out of step)
_BREATH_DEPTH = 0.4  # the breathing channel's swing either way (1 is a deep breath)
_BREATH_PITCH_DEG = 0.6  # the head lifts a little as the chest does
_BREATH_DEPTH_RANGE = (0.8, 1.2)
_BLINK_INTERVAL_S = (2.0, 6.0)
_SACCADE_INTERVAL_S = (1.0, 3.0)
_SACCADE_S = 0.05  # eye jumps are fast
_DRIFT_INTERVAL_S = (1.5, 3.0)


def _build_idle_alive(rng: np.random.Generator, duration_s: float,
                      breaths_per_minute: float = DEFAULT_BREATHS_PER_MINUTE) -> Keys:
    """Breathing, blinks at random intervals, small gaze jumps with holds in
    between and a slow head drift; the same seed gives the same motion."""
    keys = {
        **_random_blinks(rng, duration_s),
        **_saccades(rng, duration_s),
        **_head_drift(rng, duration_s),
    }
    keys.update(_breathing(duration_s, *_breath_style(rng, breaths_per_minute)))  # drawn last: the seed's blinks and glances stay
    return {name: _rest_ends(name, channel_keys, duration_s) for name, channel_keys in keys.items()}


def _build_idle_alive_loop(rng: np.random.Generator, duration_s: float,
                           breaths_per_minute: float = DEFAULT_BREATHS_PER_MINUTE) -> Keys:
    """idle-alive as a seamless loop: a whole number of breaths; the last
    blink is over well before the end, so the first one of the next round
    does not follow it at once. Gaze and head drift already end where they
    start, at rest."""
    keys = {
        **_random_blinks(rng, duration_s, end_margin_s=_BLINK_INTERVAL_S[0] / 4),
        **_saccades(rng, duration_s),
        **_head_drift(rng, duration_s),
    }
    period_s, depth = _breath_style(rng, breaths_per_minute)
    keys.update(_breathing_loop(duration_s, period_s, depth, phase=rng.uniform()))
    return {name: _rest_ends(name, channel_keys, duration_s) for name, channel_keys in keys.items()}


def _breath_style(rng: np.random.Generator, breaths_per_minute: float) -> tuple[float, float]:
    """A person's own breathing: (period in seconds, depth as a factor), so that a group breathes out of step."""
    return 60.0 / breaths_per_minute * rng.uniform(*_BREATH_TEMPO_RANGE), rng.uniform(*_BREATH_DEPTH_RANGE)


def _breath_keys(times: list[float], signs: list[float], depth: float) -> Keys:
    """Breathing in (+) and out (-) on the extremes: the breathing channel (the chest and shoulders, where
    the photo shows them) and a little head lift."""
    return {
        "breathing": [(t, sign * depth * _BREATH_DEPTH) for t, sign in zip(times, signs)],
        "head_pitch": [(t, sign * depth * _BREATH_PITCH_DEG) for t, sign in zip(times, signs)],
    }


def _breathing(duration_s: float, period_s: float, depth: float = 1.0) -> Keys:
    # Keys on the extremes, alternating in and out, after a rest at 0; smoothstep between them
    # makes a near-sine wave.
    half_period = period_s / 2
    times, signs = [0.0], [0.0]
    time_s, sign = half_period / 2, 1.0
    while time_s <= duration_s - half_period / 2:
        times.append(time_s)
        signs.append(sign)
        time_s, sign = time_s + half_period, -sign
    if len(times) == 1 and duration_s > 0:
        # Too short for a whole breath in and out (under about 2 s at 15 a minute, which was a still face):
        # the start of one, at the usual pace, as far as half the time allows, and back.
        times.append(duration_s / 2)
        signs.append(min(1.0, duration_s / half_period))
    return _breath_keys(times, signs, depth)


_SHORTEST_BREATH_S = 2.0  # seconds: a loop shorter than this does not breathe (two frames flickered in and out)


def _breathing_loop(duration_s: float, period_s: float, depth: float = 1.0, phase: float = 0.0) -> Keys:
    """Whole breaths, as many as fit the loop at about the person's own pace (one at least, none in a loop
    under _SHORTEST_BREATH_S), keyed on the extremes and starting `phase` (0..1) of the way from the bottom
    of a breath out to the top of the next breath in, so a group's loops, which all round to the same count,
    breathe out of step (starting at the top of a breath, every face did so in unison). The loop's ends hold
    the same value, between the same two extremes: sample_keys eases through them across the wrap, as
    Blender's curves with a Cycles modifier do."""
    if duration_s < _SHORTEST_BREATH_S:
        return {}
    breaths = max(1, round(duration_s / period_s))
    half_period = duration_s / (2 * breaths)
    times, signs = [], []
    # The extremes inside the loop: the first a breath in, at `1 - phase` of a half period (its last is a
    # breath out, so the wave across the wrap runs from that one to the first).
    time_s, sign = (1.0 - phase) * half_period, 1.0
    while time_s < duration_s - 1e-9:
        times.append(time_s)
        signs.append(sign)
        time_s, sign = time_s + half_period, -sign
    ends = -1.0 + 2.0 * _smoothstep(phase)  # sample_keys' ease, from the breath out to the breath in
    return _breath_keys([0.0] + times + [duration_s], [ends] + signs + [ends], depth)


def _random_blinks(rng: np.random.Generator, duration_s: float, end_margin_s: float = 0.0) -> Keys:
    blinks: list[tuple[float, float]] = [(0.0, 0.0)]
    time_s = rng.uniform(0.5, _BLINK_INTERVAL_S[0])
    while time_s + 0.25 <= duration_s - end_margin_s:
        blinks += [(time_s, 0.0), (time_s + 0.1, 1.0), (time_s + 0.25, 0.0)]
        time_s += rng.uniform(*_BLINK_INTERVAL_S)
    return {"blink_l": blinks, "blink_r": list(blinks)}


def _saccades(rng: np.random.Generator, duration_s: float) -> Keys:
    # Each jump is a pair of keys: hold the old target, then the new one a
    # moment later. The last jump returns to the centre before the end.
    gaze_x: list[tuple[float, float]] = [(0.0, 0.0)]
    gaze_y: list[tuple[float, float]] = [(0.0, 0.0)]
    return_s = duration_s - 0.3
    time_s = rng.uniform(*_SACCADE_INTERVAL_S)
    while time_s + _SACCADE_S < return_s:
        target = (rng.uniform(-0.3, 0.3), rng.uniform(-0.15, 0.15))
        for keys, new_value in ((gaze_x, target[0]), (gaze_y, target[1])):
            keys.extend([(time_s, keys[-1][1]), (time_s + _SACCADE_S, new_value)])
        time_s += rng.uniform(*_SACCADE_INTERVAL_S)
    if len(gaze_x) > 1:
        for keys in (gaze_x, gaze_y):
            keys.extend([(return_s, keys[-1][1]), (return_s + _SACCADE_S, 0.0)])
    return {"gaze_x": gaze_x, "gaze_y": gaze_y}


def _head_drift(rng: np.random.Generator, duration_s: float) -> Keys:
    yaw: list[tuple[float, float]] = [(0.0, 0.0)]
    roll: list[tuple[float, float]] = [(0.0, 0.0)]
    time_s = rng.uniform(*_DRIFT_INTERVAL_S)
    while time_s <= duration_s - _DRIFT_INTERVAL_S[0]:
        yaw.append((time_s, rng.uniform(-2.0, 2.0)))
        roll.append((time_s, rng.uniform(-1.5, 1.5)))
        time_s += rng.uniform(*_DRIFT_INTERVAL_S)
    return {"head_yaw": yaw, "head_roll": roll}


# ---------------------------------------------------------------- the table

_build_blink = _stretched(0.5, _blink_keys)
_build_look_around = _stretched(4.0, _look_around_keys)
_build_nod = _stretched(2.0, _nod_keys)
_build_shake = _stretched(2.0, _shake_keys)
_build_smile = _stretched(2.5, _smile_keys)
# The demo: each gesture a little quicker than on its own, ~8 s in all.
_build_showcase, _SHOWCASE_S = _chained(
    [
        (_build_blink, 0.5),
        (_build_look_around, 2.4),
        (_build_nod, 1.6),
        (_build_smile, 1.6),
        (_build_talk, 1.3),
    ],
    gap_s=0.15,
)

PRESETS: dict[str, Preset] = {
    preset.name: preset
    for preset in (
        Preset("blink", "Both eyes blink once.", 0.5, _build_blink),
        Preset(
            "look-around",
            "The eyes look left, then right, then up, with the head following a little.",
            4.0,
            _build_look_around,
        ),
        Preset("nod", "Two nods: down and up, twice.", 2.0, _build_nod),
        Preset("shake", "A head shake: right and left, twice.", 2.0, _build_shake),
        Preset("smile", "A smile with slightly raised brows, held, then released.", 2.5, _build_smile),
        Preset(
            "talk",
            "The mouth movement of speech, about five syllables a second; fills the duration.",
            3.0,
            _build_talk,
        ),
        Preset(
            "idle-alive",
            "Breathing (the chest and shoulders, where the photo shows them), random blinks, small glances "
            "and head drift; fills the duration.",
            10.0,
            _build_idle_alive,
            _build_idle_alive_loop,
            breathes=True,
        ),
        Preset(
            "showcase",
            "A demo: a blink, a look left and right, a nod, a smile and a few words.",
            _SHOWCASE_S,
            _build_showcase,
        ),
    )
}
