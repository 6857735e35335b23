"""Offline text to speech with exact phoneme timings, from eSpeak NG.

We call the libespeak-ng shared library (Debian package `espeak-ng`, which
pulls in `libespeak-ng1`) through ctypes rather than running the `espeak-ng`
program, because only the library reports *when* each phoneme is spoken: with
espeakINITIALIZE_PHONEME_EVENTS its synthesis callback receives, next to the
samples, one event per phoneme carrying the phoneme's IPA symbol and its start
in the generated audio. Those timings are exact by construction (they are the
synthesiser's own plan), which makes them the ground truth the acoustic
lip-sync is measured against.

The library keeps global state, so every call holds one process-wide lock.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import threading
from dataclasses import dataclass, field

import numpy as np

from .errors import SpeechSynthesisError

DEFAULT_VOICE = "en"
DEFAULT_RATE_WPM = 175  # eSpeak's own default speaking rate
MINIMUM_RATE_WPM = 80
MAXIMUM_RATE_WPM = 450
INSTALL_HINT = "install eSpeak NG: `apt-get install espeak-ng` (Debian/Ubuntu) or your system's espeak-ng package"

# Constants from espeak-ng/speak_lib.h.
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INITIALIZE_PHONEME_EVENTS = 0x0001
_INITIALIZE_PHONEME_IPA = 0x0002
_INITIALIZE_DONT_EXIT = 0x8000  # return errors instead of calling exit()
_POSITION_CHARACTER = 1
_CHARS_UTF8 = 1
_PARAMETER_RATE = 1
_EVENT_LIST_TERMINATED = 0
_EVENT_WORD = 1
_EVENT_END = 5
_EVENT_MSG_TERMINATED = 6
_EVENT_PHONEME = 7
_EE_OK = 0


class _EventId(ctypes.Union):
    _fields_ = [("number", ctypes.c_int), ("name", ctypes.c_char_p), ("string", ctypes.c_char * 8)]


class _Event(ctypes.Structure):
    """espeak_EVENT."""

    _fields_ = [
        ("type", ctypes.c_int),
        ("unique_identifier", ctypes.c_uint),
        ("text_position", ctypes.c_int),  # 1-based character position in the text
        ("length", ctypes.c_int),  # word length in characters (word events)
        ("audio_position", ctypes.c_int),  # milliseconds into the generated audio
        ("sample", ctypes.c_int),
        ("user_data", ctypes.c_void_p),
        ("id", _EventId),
    ]


class _Voice(ctypes.Structure):
    """espeak_VOICE (only the identifier is read)."""

    _fields_ = [
        ("name", ctypes.c_char_p),
        ("languages", ctypes.c_void_p),
        ("identifier", ctypes.c_char_p),  # e.g. b"gmw/en-US", b"gmw/en+f3"
        ("gender", ctypes.c_ubyte),
        ("age", ctypes.c_ubyte),
        ("variant", ctypes.c_ubyte),
        ("xx1", ctypes.c_ubyte),
        ("score", ctypes.c_int),
        ("spare", ctypes.c_void_p),
    ]


_SynthCallback = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event))


@dataclass(frozen=True)
class TimedPhoneme:
    """One phoneme of synthesised (or otherwise aligned) speech."""

    start_s: float
    end_s: float
    phoneme: str  # IPA, e.g. "ɑː", "p", "əʊ"; "" is a pause


@dataclass(frozen=True)
class TimedWord:
    start_s: float
    text: str


@dataclass
class SynthesizedSpeech:
    samples: np.ndarray  # int16, mono
    sample_rate: int
    phonemes: list[TimedPhoneme]
    words: list[TimedWord] = field(default_factory=list)
    voice: str = DEFAULT_VOICE
    rate_wpm: int = DEFAULT_RATE_WPM

    @property
    def duration_s(self) -> float:
        return len(self.samples) / self.sample_rate

    def timings_dict(self) -> dict:
        """A JSON-ready record of what was said and when (for editing and for
        measuring lip-sync against)."""
        return {
            "voice": self.voice,
            "rate_wpm": self.rate_wpm,
            "sample_rate": self.sample_rate,
            "duration_s": round(self.duration_s, 4),
            "words": [{"start_s": round(w.start_s, 4), "text": w.text} for w in self.words],
            "phonemes": [
                {"start_s": round(p.start_s, 4), "end_s": round(p.end_s, 4), "phoneme": p.phoneme}
                for p in self.phonemes
            ],
        }


class _Espeak:
    """The loaded library and its one-time initialisation."""

    def __init__(self) -> None:
        name = ctypes.util.find_library("espeak-ng") or "libespeak-ng.so.1"
        try:
            self.lib = ctypes.CDLL(name)
        except OSError:
            raise SpeechSynthesisError(f"text to speech needs the eSpeak NG library (libespeak-ng), "
                                       f"which was not found; {INSTALL_HINT}") from None
        self.lib.espeak_Synth.argtypes = [
            ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int, ctypes.c_uint, ctypes.c_uint,
            ctypes.POINTER(ctypes.c_uint), ctypes.c_void_p,
        ]
        self.lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        self.lib.espeak_GetCurrentVoice.restype = ctypes.POINTER(_Voice)
        self.sample_rate = self.lib.espeak_Initialize(
            _AUDIO_OUTPUT_SYNCHRONOUS, 0, None,
            _INITIALIZE_PHONEME_EVENTS | _INITIALIZE_PHONEME_IPA | _INITIALIZE_DONT_EXIT,
        )
        if self.sample_rate <= 0:
            raise SpeechSynthesisError(f"eSpeak NG failed to start (its voice data may be missing); {INSTALL_HINT}")
        # Filled by the callback during one synthesis; the lock serialises calls.
        self.chunks: list[np.ndarray] = []
        self.events: list[tuple[int, int, int, int, str]] = []
        self.callback = _SynthCallback(self._receive)  # kept referenced: C holds the pointer
        self.lib.espeak_SetSynthCallback(self.callback)

    def _receive(self, wav, sample_count, events) -> int:
        if wav and sample_count > 0:
            self.chunks.append(np.ctypeslib.as_array(wav, shape=(sample_count,)).copy())
        index = 0
        while events and events[index].type != _EVENT_LIST_TERMINATED:
            event = events[index]
            if event.type == _EVENT_PHONEME:
                symbol = bytes(event.id.string).split(b"\0")[0].decode("utf-8", "replace")
            else:
                symbol = ""
            self.events.append((event.type, event.audio_position, event.text_position, event.length, symbol))
            index += 1
        return 0  # 0 = go on synthesising


_lock = threading.Lock()
_espeak: _Espeak | None = None


def _library() -> _Espeak:
    global _espeak
    if _espeak is None:
        _espeak = _Espeak()
    return _espeak


def espeak_available() -> bool:
    """Whether text to speech can run here."""
    try:
        with _lock:
            _library()
        return True
    except SpeechSynthesisError:
        return False


def synthesize(text: str, voice: str = DEFAULT_VOICE, rate_wpm: int = DEFAULT_RATE_WPM) -> SynthesizedSpeech:
    """Speak `text` with eSpeak NG; the samples plus each phoneme's timing.

    `voice` is an eSpeak NG voice or language name ("en", "en-us", "de",
    "fr", "en+f3" for a variant; `espeak-ng --voices` lists them), `rate_wpm`
    the speaking rate in words per minute.
    """
    if not text or not text.strip():
        raise SpeechSynthesisError("there is no text to speak")
    if not MINIMUM_RATE_WPM <= rate_wpm <= MAXIMUM_RATE_WPM:
        raise SpeechSynthesisError(
            f"speaking rate {rate_wpm} is out of range; use {MINIMUM_RATE_WPM} to {MAXIMUM_RATE_WPM} words per minute"
        )
    with _lock:
        espeak = _library()
        if not _set_voice(espeak, voice):
            raise SpeechSynthesisError(f"unknown voice {voice!r}; `espeak-ng --voices` lists the voices, e.g. en, "
                                       "en-us, de, fr, es; `espeak-ng --voices=variant` lists variants such as en+f3")
        espeak.lib.espeak_SetParameter(_PARAMETER_RATE, int(rate_wpm), 0)
        espeak.chunks, espeak.events = [], []
        encoded = text.encode("utf-8")
        buffer = ctypes.create_string_buffer(encoded)
        status = espeak.lib.espeak_Synth(buffer, len(encoded) + 1, 0, _POSITION_CHARACTER, 0, _CHARS_UTF8, None, None)
        espeak.lib.espeak_Synchronize()
        if status != _EE_OK:
            raise SpeechSynthesisError(f"eSpeak NG could not synthesise the text (error {status})")
        chunks, events = espeak.chunks, espeak.events
        espeak.chunks, espeak.events = [], []
        sample_rate = espeak.sample_rate

    samples = np.concatenate(chunks) if chunks else np.zeros(0, np.int16)
    if samples.size == 0:
        raise SpeechSynthesisError(f"eSpeak NG produced no sound for {text[:40]!r}")
    duration_s = samples.size / sample_rate
    phonemes = _phonemes_from_events(events, duration_s)
    if not any(phoneme.phoneme for phoneme in phonemes):  # "...", "-": eSpeak reads no word in it, only pauses
        raise SpeechSynthesisError(f"there is no text to speak: {text[:40]!r} has no word eSpeak NG can say")
    return SynthesizedSpeech(
        samples=samples.astype(np.int16),
        sample_rate=sample_rate,
        phonemes=phonemes,
        words=_words_from_events(events, text),
        voice=voice,
        rate_wpm=int(rate_wpm),
    )


def _set_voice(espeak: _Espeak, voice: str) -> bool:
    """Select `voice`; False when eSpeak NG does not know it. An unknown
    variant ("en+nonsense") is silently ignored by the library, so the voice
    it actually chose is checked for the variant."""
    if not voice or espeak.lib.espeak_SetVoiceByName(voice.encode("utf-8")) != _EE_OK:
        return False
    if "+" in voice:
        current = espeak.lib.espeak_GetCurrentVoice()
        identifier = (current.contents.identifier or b"").decode("utf-8", "replace") if current else ""
        return identifier.endswith("+" + voice.split("+", 1)[1])
    return True


def _phonemes_from_events(events: list[tuple], duration_s: float) -> list[TimedPhoneme]:
    """Each phoneme lasts from its event to the next phoneme (or the end of
    the audio). Zero-length entries are dropped; the stretch before the first
    phoneme is a pause."""
    starts = [(position / 1000.0, symbol) for kind, position, _, _, symbol in events if kind == _EVENT_PHONEME]
    phonemes: list[TimedPhoneme] = []
    if starts and starts[0][0] > 0:
        phonemes.append(TimedPhoneme(0.0, min(starts[0][0], duration_s), ""))
    for index, (start, symbol) in enumerate(starts):
        end = starts[index + 1][0] if index + 1 < len(starts) else duration_s
        start, end = min(start, duration_s), min(end, duration_s)
        if end > start:
            phonemes.append(TimedPhoneme(start, end, symbol))
    if phonemes and phonemes[-1].end_s < duration_s:
        phonemes.append(TimedPhoneme(phonemes[-1].end_s, duration_s, ""))
    return phonemes


def _words_from_events(events: list[tuple], text: str) -> list[TimedWord]:
    words = []
    for kind, position, text_position, length, _ in events:
        if kind == _EVENT_WORD and text_position >= 1:
            words.append(TimedWord(position / 1000.0, text[text_position - 1:text_position - 1 + length]))
    return words
