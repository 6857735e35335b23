"""Errors of the speech commands, in the style of enliven.errors.

They live here, inside the speech package, so that the package is
self-contained; each has its own `code` (sent over the wire) and exit code.
"""
from __future__ import annotations

from ..shared import protocol
from ..errors import EnlivenError


class AudioError(EnlivenError):
    """The audio cannot be used: missing, not audio, an unsupported sample
    format, a video without a sound track, or a decoder failure."""

    code = protocol.E_BAD_AUDIO
    exit_code = 6


class NoSpeechError(AudioError):
    """The audio decodes but holds only silence (or is far too quiet)."""

    code = protocol.E_NO_SPEECH


class SpeechSynthesisError(EnlivenError):
    """Text to speech is unavailable (espeak-ng missing) or was asked for
    something it cannot do (unknown voice, empty text, rate out of range)."""

    code = protocol.E_TTS_FAILED
    exit_code = 7
