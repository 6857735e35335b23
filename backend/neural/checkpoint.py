"""Checkpoints of the refine engine: written atomically, read with torch.load(weights_only=True) only.

A checkpoint is a plain dict of tensors, numbers, strings, lists and dicts
(never pickled objects), so loading it can never run code:

    format "enliven-refine", version, step, config (RefineConfig as a dict),
    generator, discriminator, optimizer_generator, optimizer_discriminator,
    scaler (fp16 only), history (the logged losses), validation_history,
    best, vgg_weights (the path and sha256 of the perceptual loss's weights, or None: vgg.vgg_weights_record);
    best.pt also holds strength (the correction strength fitted on the
    validation clips, applied when making frames).
"""
from __future__ import annotations

import io
import os
import warnings
from pathlib import Path

import torch

from .. import __version__
from ..errors import CheckpointError
from ..images import atomic_file
from .config import ConfigError, RefineConfig

CHECKPOINT_FORMAT = "enliven-refine"
CHECKPOINT_VERSION = 1
# Every checkpoint format this module reads: (what it holds, the command that makes it, the keys it must have).
FORMATS = {
    CHECKPOINT_FORMAT: ("refine engine", "enliven train", ("step", "config", "generator")),
    "enliven-regions": ("region generator", "enliven train-regions", ("step", "config")),
}


def save_checkpoint(path: str | Path, payload: dict, checkpoint_format: str = CHECKPOINT_FORMAT) -> Path:
    """Write `payload` (plus format, version) so that `path` is always either the old or the new complete file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"format": checkpoint_format, "version": CHECKPOINT_VERSION, "enliven": __version__, **payload}
    # Serialised in memory first: torch's zip writer turns a full disk into a RuntimeError ("unexpected pos")
    # that names no file; written from here, it is an OSError naming `path`, and atomic_file removes the partial.
    serialised = io.BytesIO()
    torch.save(payload, serialised)
    with atomic_file(path) as file:
        file.write(serialised.getbuffer())
        file.flush()
        os.fsync(file.fileno())
    return path


class UnreadableFile(Exception):
    """torch.load refused a file; the message is why, in a line."""


def load_weights_only(path: Path, map_location: str | torch.device = "cpu"):
    """torch.load(path, weights_only=True): plain tensors and data, never code from the file. Whatever stops it
    (a truncated zip, another kind of file, a refused pickle) is an UnreadableFile saying why in a line, without
    torch's advice to load the file with weights_only=False, which would run code from it: never. (A missing
    file stays a FileNotFoundError.)"""
    try:
        with warnings.catch_warnings():  # torch warns about a pickle's protocol before refusing it: one line is enough
            warnings.simplefilter("ignore")
            return torch.load(path, map_location=map_location, weights_only=True)
    except FileNotFoundError:
        raise
    except Exception as error:  # noqa: BLE001 - every failure is "not a file this loads"
        text = str(error)
        if "Weights only load failed" in text:
            raise UnreadableFile("it is not a file of plain tensors and data, the only kind Enliven loads") from None
        if "PytorchStreamReader" in text:  # (its message, cut at 200 characters, broke off mid-sentence)
            raise UnreadableFile("its archive cannot be read (a copy or download cut short?)") from None
        raise UnreadableFile(shortened((text.strip().splitlines() or [type(error).__name__])[0])) from None


def shortened(text: str, limit: int = 200) -> str:
    """`text` cut to at most `limit` characters at the end of a sentence, or else of a word ("...")."""
    if len(text) <= limit:
        return text
    sentences = [end for end in range(limit // 2, limit - 1) if text.startswith(". ", end) and text[end + 2:end + 3].isupper()]
    if sentences:  # (a sentence ends where the next begins with a capital: not at "e.g. the")
        return text[:sentences[-1] + 1]
    word = text.rfind(" ", 0, limit - 3)
    return (text[:word].rstrip(",;:") if word >= limit // 2 else text[:limit - 3]) + "..."


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu",
                    expected_format: str | tuple[str, ...] = CHECKPOINT_FORMAT) -> dict:
    """The checkpoint's dict, or a CheckpointError saying clearly what is wrong with the file.
    `expected_format`: the format (or any of the formats) it must have; its "format" says which it is."""
    expected = (expected_format,) if isinstance(expected_format, str) else tuple(expected_format)
    path = Path(path)
    if path.is_dir():
        path = path / "last.pt"
    if not path.exists():
        commands = " or ".join(f"`{FORMATS[name][1]} DATASET --out RUN_DIR`" for name in expected)
        raise CheckpointError(f"No checkpoint '{path}'. Train one with {commands} and pass RUN_DIR/best.pt "
                              "or RUN_DIR/last.pt.")
    try:
        payload = load_weights_only(path, map_location)
    except UnreadableFile as error:
        raise CheckpointError(f"'{path}' is not a readable refine engine checkpoint; the file is damaged or is "
                              f"something else: {error}.") from None
    if not isinstance(payload, dict) or payload.get("format") not in expected:
        kinds = " nor ".join(f"a {FORMATS[name][0]} checkpoint (made by `{FORMATS[name][1]}`)" for name in expected)
        raise CheckpointError(f"'{path}' is a PyTorch file but not {kinds}.")
    if int(payload.get("version", 0)) > CHECKPOINT_VERSION:
        raise CheckpointError(f"'{path}' was written by a newer Enliven (checkpoint version {payload['version']}, "
                              f"this one reads up to {CHECKPOINT_VERSION}); update Enliven.")
    missing = [key for key in FORMATS[payload["format"]][2] if key not in payload]
    if missing:
        raise CheckpointError(f"'{path}' is incomplete: it lacks {', '.join(missing)}.")
    return payload


def config_of(payload: dict, path: str | Path = "checkpoint", from_dict=RefineConfig.from_dict):
    """The checkpoint's config, made by `from_dict` (RefineConfig's, or RegionConfig's for a region model)."""
    try:
        return from_dict(payload["config"])
    except (ConfigError, TypeError) as error:
        raise CheckpointError(f"'{path}' holds a configuration this Enliven cannot use: {error}") from None


def load_generator(path: str | Path, device: str | torch.device = "cpu"):
    """(Generator in eval mode on `device`, its RefineConfig, the step it was saved at). The generator applies
    the checkpoint's fitted correction strength (best.pt), or its full correction."""
    from .generator import Generator

    payload = load_checkpoint(path, map_location="cpu")
    config = config_of(payload, path)
    generator = Generator(config)
    try:
        generator.load_state_dict(payload["generator"])
    except (RuntimeError, KeyError, TypeError) as error:
        raise CheckpointError(f"'{path}': the generator's weights do not fit its configuration "
                              f"({shortened(str(error).splitlines()[0])}).") from None
    strength = payload.get("strength", 1.0)
    if not isinstance(strength, (int, float)) or not 0.0 <= strength <= 1.0:
        raise CheckpointError(f"'{path}': its correction strength {strength!r} is not a number from 0 to 1.")
    generator.correction_strength = float(strength)
    return generator.to(device).eval(), config, int(payload["step"])
