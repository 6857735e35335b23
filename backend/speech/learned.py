"""Learned lip-sync: a small audio-to-mouth network trained on real talking faces.

The sound becomes log-mel frames at 100 per second (the same framing as the
acoustic analysis: frame k is centred on time k / 100 s); a stack of dilated
1-D convolutions looks about 0.3 s either side of each frame and predicts
jaw_open, pucker and wide there. The 100 Hz curves then go through the same
last steps as the acoustic method (lipsync.motion_from_curves: resampling to
any fps, strength, head motion, blinks).

The model file is a plain dict of tensors, numbers and strings, written
atomically and read with torch.load(weights_only=True) only:

    format "enliven-lipsync", version, step, config (LearnedLipsyncConfig as a
    dict), model (state dict), mel_mean, mel_std (input normalisation), scores.

torch is imported lazily, so the acoustic method keeps working without it.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np

from ..errors import EnlivenError
from ..shared.keyframes import CURVE_CHANNELS

MODEL_FORMAT = "enliven-lipsync"
MODEL_VERSION = 1
DEFAULT_MODEL_PATH = Path(__file__).resolve().parents[1] / "assets" / "lipsync" / "lipsync_tcn.pt"
FEATURE_RATE_HZ = 100.0  # output curves per second; must match acoustic.FRAME_RATE_HZ
LOG_FLOOR = 1e-8  # power floor before the log: about -80 dB, below any recording's noise


class LipsyncModelError(EnlivenError):
    """The learned lip-sync model file is missing, damaged or not a lip-sync model."""


@dataclass(frozen=True)
class LearnedLipsyncConfig:
    # ----- features
    sample_rate: int = 16_000
    window_s: float = 0.025  # analysis window (Hann)
    mel_bands: int = 40
    mel_low_hz: float = 60.0
    mel_high_hz: float = 7_600.0
    local_mean_frames: int = 201  # each band minus its mean over about 2 s: microphones and rooms colour the
    #   spectrum for seconds at a time, speech changes it within tenths of a second (0 = off)
    # ----- network: input 1x1 conv, then residual blocks of dilated convolutions
    channels: int = 32
    kernel_size: int = 5
    dilations: tuple[int, ...] = (1, 2, 4, 8, 1)  # context: (kernel - 1) / 2 * sum = 32 frames = 0.32 s each side
    dropout: float = 0.2
    # ----- training
    steps: int = 1000
    batch_size: int = 16
    window_seconds: float = 2.0  # training windows of this much sound
    learning_rate: float = 2e-3
    weight_decay: float = 1e-4
    channel_weights: tuple[float, ...] = (1.0, 0.3, 0.3)  # jaw_open matters most; pucker/wide are noisy captures
    correlation_weight: float = 0.5  # adds (1 - Pearson r) of jaw_open per window: the shape, not only the level
    synthetic_share: float = 0.25  # share of windows from eSpeak NG speech with exact phoneme-timed targets
    # ----- augmentation (each applied to a window with its probability)
    noise_probability: float = 0.5
    noise_snr_db: tuple[float, float] = (5.0, 35.0)
    babble_probability: float = 0.5  # another clip's sound underneath: background talk and sound
    babble_snr_db: tuple[float, float] = (6.0, 20.0)
    reverb_probability: float = 0.5
    reverb_rt60_s: tuple[float, float] = (0.1, 0.7)  # synthetic exponential-decay impulse responses
    gain_db: tuple[float, float] = (-18.0, 6.0)
    speed_range: tuple[float, float] = (0.9, 1.1)
    seed: int = 0

    @property
    def context_frames(self) -> int:
        return (self.kernel_size - 1) // 2 * sum(self.dilations)

    def to_dict(self) -> dict:
        return {key: list(value) if isinstance(value, tuple) else value for key, value in asdict(self).items()}

    @classmethod
    def from_dict(cls, values: dict) -> "LearnedLipsyncConfig":
        known = {field.name for field in fields(cls)}
        unknown = set(values) - known
        if unknown:
            raise LipsyncModelError(f"unknown lip-sync config settings: {', '.join(sorted(unknown))}")
        return cls(**{key: tuple(value) if isinstance(value, list) else value for key, value in values.items()})


# ------------------------------------------------------------ features (pure)


def mel_filterbank(sample_rate: int, fft_size: int, bands: int, low_hz: float, high_hz: float) -> np.ndarray:
    """(bands, fft_size // 2 + 1) triangular filters evenly spaced on the mel scale."""
    def to_mel(hz):
        return 2595.0 * np.log10(1.0 + np.asarray(hz) / 700.0)

    def to_hz(mel):
        return 700.0 * (10.0 ** (np.asarray(mel) / 2595.0) - 1.0)

    edges = to_hz(np.linspace(to_mel(low_hz), to_mel(high_hz), bands + 2))
    frequencies = np.fft.rfftfreq(fft_size, 1.0 / sample_rate)
    lower, centre, upper = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    rising = (frequencies - lower) / (centre - lower)
    falling = (upper - frequencies) / (upper - centre)
    return np.maximum(0.0, np.minimum(rising, falling)).astype(np.float32)


class LogMelExtractor:
    """Log-mel frames of a stream of samples fed in blocks of any size; frame k
    is centred on sample k * hop, as in acoustic.FeatureExtractor, so the two
    analyses line up frame for frame."""

    def __init__(self, config: LearnedLipsyncConfig):
        self.hop = int(round(config.sample_rate / FEATURE_RATE_HZ))
        self.window_length = int(round(config.window_s * config.sample_rate))
        self.window = np.hanning(self.window_length).astype(np.float32)
        self.fft_size = 1 << (self.window_length - 1).bit_length()
        self.filters = mel_filterbank(config.sample_rate, self.fft_size, config.mel_bands,
                                      config.mel_low_hz, config.mel_high_hz)
        self._buffer = np.zeros(self.window_length // 2, np.float32)
        self._samples_seen = 0
        self._frames_done = 0
        self._parts: list[np.ndarray] = []

    def add(self, samples: np.ndarray) -> None:
        samples = np.asarray(samples, dtype=np.float32).reshape(-1)
        self._samples_seen += samples.size
        self._buffer = np.concatenate([self._buffer, samples])
        self._consume(final=False)

    def finish(self) -> np.ndarray:
        """(frames, mel_bands) float32, frames = ceil(samples / hop)."""
        self._buffer = np.concatenate([self._buffer, np.zeros(self.window_length, np.float32)])
        self._consume(final=True)
        return np.concatenate(self._parts) if self._parts else np.zeros((0, self.filters.shape[0]), np.float32)

    def _consume(self, final: bool) -> None:
        available = 0
        if self._buffer.size >= self.window_length:
            available = (self._buffer.size - self.window_length) // self.hop + 1
        if final:
            available = min(available, -(-self._samples_seen // self.hop) - self._frames_done)
        if available <= 0:
            return
        frames = np.lib.stride_tricks.sliding_window_view(self._buffer, self.window_length)[:: self.hop][:available]
        spectrum = np.abs(np.fft.rfft(frames * self.window, self.fft_size, axis=1)) ** 2
        self._parts.append(np.log(spectrum.astype(np.float32) @ self.filters.T + LOG_FLOOR).astype(np.float32))
        self._frames_done += available
        self._buffer = self._buffer[available * self.hop:]


def log_mel(samples: np.ndarray, config: LearnedLipsyncConfig) -> np.ndarray:
    """Log-mel frames of samples already in memory (see LogMelExtractor), locally centred."""
    extractor = LogMelExtractor(config)
    extractor.add(samples)
    return locally_centred(extractor.finish(), config.local_mean_frames)


def locally_centred(mel: np.ndarray, frames: int) -> np.ndarray:
    """Each band minus its moving mean over `frames` frames (the recording's edges repeat its end values)."""
    if frames <= 1 or mel.shape[0] == 0:
        return mel
    from scipy.ndimage import uniform_filter1d

    return (mel - uniform_filter1d(mel, frames, axis=0, mode="nearest")).astype(np.float32)


# ------------------------------------------------------------ network


def build_network(config: LearnedLipsyncConfig):
    """The audio-to-mouth network: (batch, mel_bands, frames) -> (batch, 3, frames) in 0..1."""
    import torch
    from torch import nn

    class ResidualBlock(nn.Module):
        def __init__(self, dilation: int):
            super().__init__()
            padding = (config.kernel_size - 1) // 2 * dilation  # symmetric: the past and the future both count
            self.convolution = nn.Conv1d(config.channels, config.channels, config.kernel_size,
                                         padding=padding, dilation=dilation)
            self.mix = nn.Conv1d(config.channels, config.channels, 1)
            self.norm = nn.GroupNorm(1, config.channels)
            self.dropout = nn.Dropout(config.dropout)

        def forward(self, x):
            return x + self.mix(self.dropout(torch.nn.functional.gelu(self.norm(self.convolution(x)))))

    class LipsyncNetwork(nn.Module):
        def __init__(self):
            super().__init__()
            self.inlet = nn.Conv1d(config.mel_bands, config.channels, 1)
            self.blocks = nn.Sequential(*(ResidualBlock(d) for d in config.dilations))
            self.outlet = nn.Conv1d(config.channels, len(CURVE_CHANNELS), 1)

        def forward(self, mel):
            return torch.sigmoid(self.outlet(self.blocks(self.inlet(mel))))

    return LipsyncNetwork()


@dataclass
class LearnedLipsyncModel:
    network: object  # the torch module, in eval mode
    config: LearnedLipsyncConfig
    mel_mean: np.ndarray  # (mel_bands,) normalisation learned from the training sound
    mel_std: np.ndarray
    step: int

    def predict(self, mel: np.ndarray, chunk_frames: int = 6000) -> np.ndarray:
        """(frames, 3) mouth curves at 100 Hz from log-mel frames. Long input
        goes through in chunks that overlap by the network's context, so the
        result equals one pass over the whole and memory stays bounded."""
        import torch

        context = self.config.context_frames
        normalised = ((mel - self.mel_mean) / self.mel_std).astype(np.float32)
        outputs = []
        with torch.inference_mode():
            for start in range(0, normalised.shape[0], chunk_frames):
                begin, end = max(0, start - context), min(normalised.shape[0], start + chunk_frames + context)
                piece = torch.from_numpy(np.ascontiguousarray(normalised[begin:end].T))[None]
                predicted = self.network(piece)[0].T.numpy()
                outputs.append(predicted[start - begin: start - begin + min(chunk_frames, normalised.shape[0] - start)])
        if not outputs:
            return np.zeros((0, len(CURVE_CHANNELS)), np.float32)
        return np.concatenate(outputs).astype(np.float32)


def save_model(path: str | Path, payload: dict) -> Path:
    """Write a model file atomically (the refine engine's checkpoint writer: `path` is always the old or the
    new complete file); our format and version replace the refine engine's."""
    from ..neural.checkpoint import save_checkpoint

    return save_checkpoint(path, {**payload, "format": MODEL_FORMAT, "version": MODEL_VERSION})


def model_payload(network, config: LearnedLipsyncConfig, mel_mean: np.ndarray, mel_std: np.ndarray,
                  step: int, **extra) -> dict:
    import torch

    return {"step": int(step), "config": config.to_dict(),
            "model": {key: value.detach().cpu().clone() for key, value in network.state_dict().items()},
            "mel_mean": torch.from_numpy(np.asarray(mel_mean, np.float32)),
            "mel_std": torch.from_numpy(np.asarray(mel_std, np.float32)), **extra}


def load_model(path: str | Path | None = None) -> LearnedLipsyncModel:
    """The model in `path` (default: the one shipped with Enliven), or a
    LipsyncModelError that says what is wrong with the file."""
    path = Path(path) if path is not None else DEFAULT_MODEL_PATH
    try:
        import torch
    except ImportError:
        raise LipsyncModelError("the learned lip-sync needs PyTorch (pip install 'enliven[neural]')") from None
    if not path.is_file():
        raise LipsyncModelError(f"no lip-sync model at '{path}'")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 - truncated, not a zip, refused pickle: all "not a model"
        reason = (str(error).strip().splitlines() or [type(error).__name__])[0][:200]
        raise LipsyncModelError(f"'{path}' is not a readable lip-sync model (damaged or something else): "
                                f"{reason}") from None
    if not isinstance(payload, dict) or payload.get("format") != MODEL_FORMAT:
        raise LipsyncModelError(f"'{path}' is a PyTorch file but not a lip-sync model")
    if int(payload.get("version", 0)) > MODEL_VERSION:
        raise LipsyncModelError(f"'{path}' was written by a newer Enliven (version {payload['version']})")
    try:
        config = LearnedLipsyncConfig.from_dict(dict(payload["config"]))
        network = build_network(config)
        network.load_state_dict(payload["model"])
        mel_mean = payload["mel_mean"].numpy().astype(np.float32)
        mel_std = payload["mel_std"].numpy().astype(np.float32)
    except (KeyError, TypeError, RuntimeError, AttributeError, ValueError) as error:
        raise LipsyncModelError(f"'{path}' is incomplete or does not fit its configuration: "
                                f"{str(error).splitlines()[0][:200]}") from None
    if mel_mean.shape != (config.mel_bands,) or mel_std.shape != (config.mel_bands,) or not (mel_std > 0).all():
        raise LipsyncModelError(f"'{path}' has unusable input normalisation")
    return LearnedLipsyncModel(network.eval(), config, mel_mean, mel_std, int(payload.get("step", 0)))


# ------------------------------------------------------------ into the common lip-sync path (pure)


SILENCE_EASE_FRAMES = 5  # 50 ms: the mouth settles shut over this long when speech stops


def with_learned_mouth(curves, predicted: np.ndarray):
    """acoustic.MouthCurves with jaw_open, pucker and wide replaced by the
    network's 100 Hz predictions. Outside speech (the acoustic analysis's
    speech mask) the mouth eases shut: the network was trained on talking
    faces and must not mouth along to breath or room noise. Closures before
    plosives are kept from the acoustic analysis."""
    from dataclasses import replace

    count = curves.jaw_open.size
    if predicted.shape[0] < count:  # the two analyses frame the same samples; guard a frame's difference
        predicted = np.pad(predicted, ((0, count - predicted.shape[0]), (0, 0)), mode="edge")
    predicted = predicted[:count]
    kernel = np.ones(SILENCE_EASE_FRAMES) / SILENCE_EASE_FRAMES
    speaking = np.convolve(curves.speech.astype(np.float32), kernel, mode="same") if count else np.zeros(0)
    jaw, pucker, wide = (np.clip(predicted[:, i] * speaking, 0.0, 1.0).astype(np.float32) for i in range(3))
    return replace(curves, jaw_open=jaw, pucker=pucker, wide=wide)
