"""Training the learned lip-sync model (learned.py) on real talking faces.

    python -m enliven.speech.learned_training --cache /tmp/enliven-lipsync-data --out MODEL.pt
        [--steps N] [--exclude NAME ...]

Data: the clips captured by learned_data.py (sound + captured mouth per video
frame), plus a share of eSpeak NG speech whose mouth curves come from the
synthesiser's exact phoneme timings. Windows are drawn person by person, not
clip by clip (a few people have many clips), then augmented: background noise,
another clip's sound underneath, reverb from a synthetic exponential-decay
impulse response, gain, and speed. The model file is saved atomically at the
end (learned.save_model) and holds only tensors, numbers and strings.

Targets per clip: the captured opening as jaw_open (Capture.speech_jaw) measured from the clip's own closed
level (its 5th percentile) and scaled so that the clip's 95th percentile is
SPEECH_JAW (faces, cameras and the capture's reference frame differ in scale;
what carries over between people is the shape of the curve); pucker and wide
from the clip's own baseline (10th percentile).
"""
from __future__ import annotations

import argparse
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path

import numpy as np

from .learned import (FEATURE_RATE_HZ, LearnedLipsyncConfig, build_network, log_mel,
                      model_payload, save_model)
from .audio import ANALYSIS_SAMPLE_RATE
from .evaluation import jaw_agreement
from .learned_data import TARGETS_VERSION, SpeechClip, load_clip

SPEECH_JAW = 0.5  # a clip's 95th-percentile jaw opening becomes this (the phoneme method's open vowels are ~0.6)
TRAINING_SENTENCES = (  # for the synthetic share; not the sentences bench_lipsync.py measures with
    "A warm cup of tea on a cold morning makes everything feel calmer and brighter.",
    "Maybe we should open the box before the party starts, or Tom will guess what is inside.",
    "Every summer my father paints the old boat blue, and every winter the paint peels off again.",
    "How about a walk along the harbour? The water is calm and the boats are coming home.",
    "Please remember to bring the map, the torch and a spare battery for the camera.",
    "Oh no, I left my umbrella on the bus, and now it is pouring outside!",
)
SYNTHETIC_VOICES = ("en", "en-us", "en+f2", "en+m3", "en+f4", "de", "es")


@dataclass(frozen=True)
class TrainingExample:
    """Sound and 100 Hz targets (frames x 3, plus a weight per frame)."""
    person: str
    samples: np.ndarray
    targets: np.ndarray
    weights: np.ndarray
    name: str = ""


# ------------------------------------------------------------ targets and augmentation (pure)


def normalised_targets(targets: np.ndarray) -> np.ndarray:
    """Captured (frames x jaw_open, pucker, wide) -> training targets (see the module docstring)."""
    jaw = targets[:, 0].astype(np.float64)
    closed, open_ = np.percentile(jaw, 5), np.percentile(jaw, 95)
    jaw = np.clip((jaw - closed) / max(open_ - closed, 0.03), 0.0, 2.0) * SPEECH_JAW
    others = [np.clip(targets[:, i] - np.percentile(targets[:, i], 10), 0.0, 1.0) for i in (1, 2)]
    return np.clip(np.stack([jaw, *others], axis=1), 0.0, 1.0).astype(np.float32)


def targets_at_feature_rate(targets: np.ndarray, fps: float, duration_s: float, offset_s: float = 0.0) -> np.ndarray:
    """Per-video-frame values (frame i at i / fps + offset_s) -> per feature frame (k at k / 100 s)."""
    count = int(np.ceil(duration_s * FEATURE_RATE_HZ))
    times = np.arange(count) / FEATURE_RATE_HZ
    frame_times = np.arange(targets.shape[0]) / fps + offset_s
    return np.stack([np.interp(times, frame_times, targets[:, i]) for i in range(targets.shape[1])], axis=1)


def exponential_reverb(samples: np.ndarray, rt60_s: float, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
    """The sound in a synthetic room: convolved with decaying noise (60 dB down after rt60_s), the direct
    sound kept, the level restored."""
    from scipy.signal import fftconvolve

    length = int(rt60_s * sample_rate)
    t = np.arange(length) / sample_rate
    response = rng.standard_normal(length) * np.exp(-6.9 * t / rt60_s)
    response[0] = 0.0
    response *= rng.uniform(0.3, 1.0) / np.sqrt(np.sum(response**2) + 1e-12)
    response[0] = 1.0
    wet = fftconvolve(samples, response)[: samples.size]
    return (wet * np.sqrt(np.mean(samples**2) / (np.mean(wet**2) + 1e-12))).astype(np.float32)


def mixed_at_snr(samples: np.ndarray, other: np.ndarray, snr_db: float) -> np.ndarray:
    """`other` added under `samples` so that the speech is snr_db louder."""
    speech_power = np.mean(samples**2) + 1e-10
    other_power = np.mean(other**2) + 1e-10
    return (samples + other * np.sqrt(speech_power / other_power / 10 ** (snr_db / 10))).astype(np.float32)


def coloured_noise(count: int, rng: np.random.Generator) -> np.ndarray:
    """White to brown noise (a random spectral slope): hum, hiss, traffic."""
    spectrum = np.fft.rfft(rng.standard_normal(count))
    slope = rng.uniform(0.0, 1.0)
    spectrum /= np.maximum(np.arange(spectrum.size), 1) ** slope
    return np.fft.irfft(spectrum, count).astype(np.float32)


def speed_changed(samples: np.ndarray, targets: np.ndarray, factor: float) -> tuple[np.ndarray, np.ndarray]:
    """Play `factor` times faster (pitch moves with it, as between voices); the 100 Hz targets follow."""
    sample_count = max(1, int(samples.size / factor))
    faster = np.interp(np.arange(sample_count) * factor, np.arange(samples.size), samples).astype(np.float32)
    frame_count = max(1, int(round(targets.shape[0] / factor)))
    positions = np.arange(frame_count) * factor
    steps = np.arange(targets.shape[0])
    moved = np.stack([np.interp(positions, steps, targets[:, i]) for i in range(targets.shape[1])], axis=1)
    return faster, moved


# ------------------------------------------------------------ the data


MAXIMUM_SYNC_OFFSET_S = 0.25
MINIMUM_SYNC_R = 0.2  # below this the offset estimate is noise: the clip is kept as it is


def sync_offset_s(acoustic_jaw: np.ndarray, captured_jaw: np.ndarray, fps: float) -> float:
    """How late the sound is against the picture (seconds), from the lag at which the acoustic jaw curve best
    follows the captured one. Several sources mux their sound 100-250 ms late; trained on as they are, the
    network learns to open the mouth early on every recording."""
    _, best_r, lag = jaw_agreement(acoustic_jaw, captured_jaw, int(round(MAXIMUM_SYNC_OFFSET_S * fps)))
    return lag / fps if np.isfinite(best_r) and best_r >= MINIMUM_SYNC_R else 0.0


def real_examples(clips: list[SpeechClip], log=print) -> list[TrainingExample]:
    """Clips with speech on their sound track (a music-only or silent track teaches mouthing along to music),
    their targets moved into sync with the sound."""
    from .acoustic import extract_features, mouth_curves
    from .errors import NoSpeechError

    examples = []
    for clip in clips:
        try:
            curves = mouth_curves(extract_features([clip.samples], ANALYSIS_SAMPLE_RATE))
        except NoSpeechError:
            log(f"  left out {clip.name}: no speech on its sound track")
            continue
        frame_times = np.arange(clip.targets.shape[0]) / clip.fps
        acoustic_jaw = np.interp(frame_times, np.arange(curves.jaw_open.size) / curves.rate_hz, curves.jaw_open)
        offset = sync_offset_s(acoustic_jaw, clip.targets[:, 0].astype(np.float64), clip.fps)
        targets = targets_at_feature_rate(normalised_targets(clip.targets), clip.fps, clip.seconds, offset)
        found = targets_at_feature_rate(clip.face_found[:, None].astype(np.float32), clip.fps, clip.seconds,
                                        offset)[:, 0]
        examples.append(TrainingExample(clip.person, clip.samples, targets.astype(np.float32),
                                        (found > 0.99).astype(np.float32), clip.name))
    return examples


def synthetic_examples() -> list[TrainingExample]:
    """eSpeak NG speech with mouth curves from its phoneme timings (none when eSpeak NG is missing)."""
    from .phonemes import mouth_curves_from_phonemes
    from .tts import espeak_available, synthesize

    if not espeak_available():
        return []
    examples = []
    for voice in SYNTHETIC_VOICES:
        for rate in (150, 200):
            speech = synthesize(" ".join(TRAINING_SENTENCES), voice=voice, rate_wpm=rate)
            curves = mouth_curves_from_phonemes(speech.phonemes, speech.duration_s)
            samples = resampled(speech.samples, speech.sample_rate, ANALYSIS_SAMPLE_RATE)
            jaw = np.where(curves.lips_closed, 0.0, curves.jaw_open)
            targets = np.stack([jaw, curves.pucker, curves.wide], axis=1).astype(np.float32)
            examples.append(TrainingExample(f"espeak-{voice}", samples, targets, np.ones(targets.shape[0], np.float32)))
    return examples


def resampled(samples: np.ndarray, rate: int, new_rate: int) -> np.ndarray:
    if rate == new_rate:
        return samples.astype(np.float32)
    from math import gcd

    from scipy.signal import resample_poly

    divisor = gcd(rate, new_rate)
    return resample_poly(samples, new_rate // divisor, rate // divisor).astype(np.float32)


class WindowSampler:
    """Random augmented training windows, person by person."""

    def __init__(self, real: list[TrainingExample], synthetic: list[TrainingExample], config: LearnedLipsyncConfig):
        self.config = config
        self.by_person: dict[str, list[TrainingExample]] = defaultdict(list)
        for example in real:
            self.by_person[example.person].append(example)
        self.people = sorted(self.by_person)
        self.real = real
        self.synthetic = synthetic
        self.rng = np.random.default_rng(config.seed)

    def window(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        config, rng = self.config, self.rng
        if self.synthetic and (not self.people or rng.random() < config.synthetic_share):
            example = self.synthetic[rng.integers(len(self.synthetic))]
        else:
            clips = self.by_person[self.people[rng.integers(len(self.people))]]
            lengths = np.array([clip.samples.size for clip in clips], np.float64)
            example = clips[rng.choice(len(clips), p=lengths / lengths.sum())]
        speed = rng.uniform(*config.speed_range)
        frames = int(config.window_seconds * FEATURE_RATE_HZ)
        source_frames = int(np.ceil(frames * speed)) + 1
        start = int(rng.integers(0, max(1, example.targets.shape[0] - source_frames)))
        hop = config.sample_rate / FEATURE_RATE_HZ
        samples = example.samples[int(start * hop): int((start + source_frames) * hop)]
        targets = example.targets[start: start + source_frames]
        weights = example.weights[start: start + source_frames]
        samples, targets = speed_changed(samples, np.column_stack([targets, weights]), speed)
        targets, weights = targets[:, :3], (targets[:, 3] > 0.99).astype(np.float32)
        samples = self.augmented(samples)
        return samples, targets, weights

    def augmented(self, samples: np.ndarray) -> np.ndarray:
        config, rng = self.config, self.rng
        if rng.random() < config.reverb_probability:
            samples = exponential_reverb(samples, rng.uniform(*config.reverb_rt60_s), config.sample_rate, rng)
        if self.real and rng.random() < config.babble_probability:
            other = self.real[rng.integers(len(self.real))].samples
            begin = int(rng.integers(0, max(1, other.size - samples.size)))
            underneath = np.resize(other[begin: begin + samples.size], samples.size)
            samples = mixed_at_snr(samples, underneath, rng.uniform(*config.babble_snr_db))
        if rng.random() < config.noise_probability:
            samples = mixed_at_snr(samples, coloured_noise(samples.size, rng), rng.uniform(*config.noise_snr_db))
        samples = samples * 10 ** (rng.uniform(*config.gain_db) / 20)
        return np.clip(samples, -1.0, 1.0).astype(np.float32)

    def batch(self, count: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(mel (batch, bands, frames), targets (batch, 3, frames), weights (batch, frames)), cut to one length."""
        frames = int(self.config.window_seconds * FEATURE_RATE_HZ)
        mels, targets, weights = [], [], []
        for _ in range(count):
            samples, target, weight = self.window()
            mel = log_mel(samples, self.config)
            length = min(frames, mel.shape[0], target.shape[0])
            pad = frames - length
            mels.append(np.pad(mel[:length], ((0, pad), (0, 0)), mode="edge"))
            targets.append(np.pad(target[:length], ((0, pad), (0, 0))))
            weights.append(np.pad(weight[:length], (0, pad)))  # padding carries no weight
        return (np.stack(mels).transpose(0, 2, 1), np.stack(targets).transpose(0, 2, 1), np.stack(weights))


# ------------------------------------------------------------ training


def lipsync_loss(predicted, targets, weights, config: LearnedLipsyncConfig):
    """Weighted squared error per channel plus (1 - Pearson r) of jaw_open per window."""
    import torch

    channel_weights = torch.tensor(config.channel_weights, dtype=predicted.dtype)[None, :, None]
    frame_weights = weights[:, None, :]
    squared = ((predicted - targets) ** 2 * channel_weights * frame_weights).sum() / (frame_weights.sum() + 1e-6)
    jaw, wanted = predicted[:, 0], targets[:, 0]
    total = weights.sum(dim=1, keepdim=True) + 1e-6
    jaw_centred = jaw - (jaw * weights).sum(dim=1, keepdim=True) / total
    wanted_centred = wanted - (wanted * weights).sum(dim=1, keepdim=True) / total
    covariance = (jaw_centred * wanted_centred * weights).sum(dim=1)
    spread = torch.sqrt((jaw_centred**2 * weights).sum(dim=1) * (wanted_centred**2 * weights).sum(dim=1) + 1e-6)
    correlation = covariance / spread
    return squared + config.correlation_weight * (1.0 - correlation).mean()


def input_normalisation(examples: list[TrainingExample], config: LearnedLipsyncConfig) -> tuple[np.ndarray, np.ndarray]:
    mel = np.concatenate([log_mel(example.samples, config) for example in examples])
    return mel.mean(axis=0), np.maximum(mel.std(axis=0), 1e-3)


def train(real: list[TrainingExample], synthetic: list[TrainingExample], config: LearnedLipsyncConfig,
          log=print, network=None) -> tuple[object, np.ndarray, np.ndarray, list[float]]:
    """(network, mel_mean, mel_std, loss per step); `network` continues training one (default: a new one)."""
    import torch

    torch.manual_seed(config.seed)
    mel_mean, mel_std = input_normalisation(real + synthetic, config)
    network = build_network(config) if network is None else network
    optimiser = torch.optim.AdamW(network.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, config.learning_rate, total_steps=max(config.steps, 1),
                                                   pct_start=0.1)
    sampler = WindowSampler(real, synthetic, config)
    losses = []
    started = time.perf_counter()
    network.train()
    for step in range(config.steps):
        mel, targets, weights = sampler.batch(config.batch_size)
        mel = (mel - mel_mean[None, :, None]) / mel_std[None, :, None]
        loss = lipsync_loss(network(torch.from_numpy(mel.astype(np.float32))),
                            torch.from_numpy(targets.astype(np.float32)), torch.from_numpy(weights), config)
        optimiser.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(network.parameters(), 1.0)
        optimiser.step()
        schedule.step()
        losses.append(loss.item())
        if (step + 1) % 100 == 0 or step + 1 == config.steps:
            log(f"  step {step + 1}/{config.steps}: loss {np.mean(losses[-100:]):.4f} "
                f"({time.perf_counter() - started:.0f} s)")
    network.eval()
    return network, mel_mean, mel_std, losses


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cache", type=Path, required=True, help="captured clips (learned_data.py)")
    parser.add_argument("--out", type=Path, required=True, help="model file to write")
    parser.add_argument("--steps", type=int, default=None, help="training steps (default: the config's)")
    parser.add_argument("--exclude", nargs="*", default=["LivePortrait__d6", "LivePortrait__d9", "LivePortrait__d10",
                                                          "LivePortrait__d11", "LivePortrait__d12",
                                                          "LivePortrait__d20"],
                        help="clip names never trained on (default: the evaluation clips)")
    parser.add_argument("--no-synthetic", action="store_true")
    args = parser.parse_args(argv)
    config = LearnedLipsyncConfig()
    if args.steps is not None:
        config = replace(config, steps=args.steps)
    clips = [load_clip(path) for path in sorted(args.cache.glob(f"*.targets{TARGETS_VERSION}.npz"))]
    if not clips:
        parser.exit(2, f"{parser.prog}: {args.cache} holds no captured clips of targets version {TARGETS_VERSION}; "
                       "capture them first: python -m enliven.speech.learned_data CLIPS_DIR SOURCES.md --cache "
                       f"{args.cache}\n")
    # Evaluation clips are captured into the same cache for scoring: never train on them.
    clips = [clip for clip in clips if clip.name not in set(args.exclude)]
    real = real_examples(clips, log=partial(print, flush=True))
    synthetic = [] if args.no_synthetic else synthetic_examples()
    kept = {example.name for example in real}
    clips = [clip for clip in clips if clip.name in kept]
    people = {clip.person for clip in clips}
    log_summary = (f"training on {len(clips)} clips, {len(people)} people, "
                   f"{sum(c.seconds for c in clips) / 60:.1f} min of real speech, "
                   f"{sum(e.samples.size for e in synthetic) / config.sample_rate / 60:.1f} min synthetic")
    print(log_summary, flush=True)
    started = time.perf_counter()
    network, mel_mean, mel_std, losses = train(real, synthetic, config, log=partial(print, flush=True))
    minutes = (time.perf_counter() - started) / 60
    training = {"clips": sorted(c.name for c in clips), "people": len(people),
                "minutes_real": sum(c.seconds for c in clips) / 60, "train_minutes": minutes,
                "final_loss": float(np.mean(losses[-100:]))}
    save_model(args.out, model_payload(network, config, mel_mean, mel_std, config.steps, training=training))
    print(f"wrote {args.out} ({args.out.stat().st_size / 1024:.0f} KiB) after {minutes:.1f} min")
    return 0


if __name__ == "__main__":
    sys.exit(main())
