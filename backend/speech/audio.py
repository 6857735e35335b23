"""Reading sound: any audio file (WAV, FLAC, MP3, OGG...) or the sound track
of a video, decoded to mono float samples at one fixed rate and handed out in
blocks, so a ten-minute recording never sits in memory at once.

Decoding is done by the ffmpeg binary that the imageio-ffmpeg wheel ships
(`imageio_ffmpeg.get_ffmpeg_exe()`), through a pipe: ffmpeg mixes to mono,
resamples and writes 32-bit floats; we read them a block at a time. WAV
headers are checked here first, because ffmpeg quietly guesses at sample
formats it does not really support (a 12-bit PCM file plays as 16-bit noise),
and a person should be told instead.
"""
from __future__ import annotations

import os
import secrets
import struct
import subprocess
import tempfile
import wave
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from .errors import AudioError

# Speech analysis rate: formants F1 and F2 lie below 3 kHz and fricative noise
# is visible up to 8 kHz, so 16 kHz (the usual rate for speech) loses nothing.
ANALYSIS_SAMPLE_RATE = 16_000
DEFAULT_BLOCK_SECONDS = 5.0
# ffmpeg's filter that reads a sound on its file's own timeline: a track that starts after the file's picture
# (a camera's, or a cut made with -c copy) gets silence before it, so lip-sync's time 0 is the file's, as
# capture's is, and a video made with the sound (sequence.sound_filters) plays it where lip-sync timed it.
ON_FILE_TIMELINE = "aresample=async=1:first_pts=0"
# Below this a recording cannot carry the second formant of "ee" (about 2.3 kHz).
MINIMUM_SOURCE_SAMPLE_RATE = 6_000

# WAV format tags ffmpeg decodes properly, by name for messages.
_WAV_FORMATS = {
    0x0001: "PCM",
    0x0002: "Microsoft ADPCM",
    0x0003: "IEEE float",
    0x0006: "A-law",
    0x0007: "mu-law",
    0x0011: "IMA ADPCM",
    0x0031: "GSM 6.10",
    0x0050: "MPEG audio",
    0x0055: "MP3",
}
_WAV_EXTENSIBLE = 0xFFFE
_PCM_BITS = (8, 16, 24, 32)
_FLOAT_BITS = (32, 64)


def stream_audio(path: str | os.PathLike[str], sample_rate: int = ANALYSIS_SAMPLE_RATE,
                 block_seconds: float = DEFAULT_BLOCK_SECONDS) -> Iterator[np.ndarray]:
    """Yield the sound of `path` as mono float32 blocks (values about -1..1) at
    `sample_rate`, each `block_seconds` long except the last.

    Works for audio files and for videos (their first audio track). Raises
    AudioError, with a message for the person who chose the file, when it is
    missing, empty, not audio, in an unsupported sample format or has no sound
    track. Stopping the iteration early stops the decoder.
    """
    source = Path(path)
    check_audio_file(source)
    command = [
        _ffmpeg_exe(), "-nostdin", "-hide_banner", "-v", "error",
        "-i", str(source),
        "-map", "0:a:0",  # the first audio track; video, subtitles and data are ignored
        "-af", ON_FILE_TIMELINE,
        "-ac", "1", "-ar", str(int(sample_rate)),
        "-f", "f32le", "-",
    ]
    block_bytes = 4 * max(1, int(round(block_seconds * sample_rate)))
    # stderr goes to a file rather than a pipe: a damaged file can make ffmpeg
    # print more than a pipe buffer holds while we are still reading stdout.
    with tempfile.TemporaryFile() as errors:
        process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=errors)
        decoded = 0
        try:
            assert process.stdout is not None
            while True:
                data = process.stdout.read(block_bytes)
                usable = len(data) - len(data) % 4  # a float cut by the end of the stream is dropped
                if usable:
                    decoded += usable // 4
                    yield np.frombuffer(data[:usable], dtype="<f4").astype(np.float32)
                if len(data) < block_bytes:
                    break
            returncode = process.wait()
        finally:
            if process.poll() is None:  # the caller stopped early
                process.kill()
                process.wait()
            process.stdout.close()
        if returncode != 0:
            errors.seek(0)
            message = errors.read().decode("utf-8", "replace")
            raise AudioError(_explain_ffmpeg_failure(source, message, decoded / sample_rate))
    if decoded == 0:
        raise AudioError(f"{source}: the audio track is empty (no samples decoded)")


def read_audio(path: str | os.PathLike[str], sample_rate: int = ANALYSIS_SAMPLE_RATE) -> np.ndarray:
    """The whole sound of `path` as one mono float32 array; for short files
    (tests, synthesised speech). Long recordings should use stream_audio."""
    return np.concatenate(list(stream_audio(path, sample_rate)))


def check_audio_file(path: Path) -> None:
    """Refuse, with a clear AudioError, what cannot be audio before starting a
    decoder: a missing path, a folder, an empty file, and WAV files whose
    sample format is broken or not really supported."""
    if not path.exists():
        raise AudioError(f"{path}: no such file")
    if path.is_dir():
        raise AudioError(f"{path}: is a folder, not an audio file")
    try:
        with open(path, "rb") as file:
            header = file.read(12)
            if not header:
                raise AudioError(f"{path}: the file is empty")
            if header[:4] in (b"RIFF", b"RF64") and header[8:12] == b"WAVE":
                _check_wav_format(path, file)
    except OSError as error:
        raise AudioError(f"{path}: cannot read: {error.strerror or error}") from None


def check_audio_decodes(path: Path) -> None:
    """check_audio_file, then decode the first half second: a file that is not
    sound at all, or a video with no sound track, is refused (AudioError)
    before any long work, not when ffmpeg reaches it."""
    check_audio_file(path)
    blocks = stream_audio(path, block_seconds=0.5)
    try:
        next(blocks, None)
    finally:
        blocks.close()  # stops the decoder


def _check_wav_format(path: Path, file) -> None:
    """Walk the RIFF chunks (`file` is just past the 12-byte header) to the
    'fmt ' chunk and check its sample format."""
    while True:
        chunk_header = file.read(8)
        if len(chunk_header) < 8:
            raise AudioError(f"{path}: not a valid WAV file (no 'fmt ' chunk describing the samples)")
        chunk_id, size = chunk_header[:4], struct.unpack("<I", chunk_header[4:])[0]
        if chunk_id == b"fmt ":
            break
        file.seek(size + (size & 1), os.SEEK_CUR)  # chunks are padded to even sizes
    fmt = file.read(size)
    if len(fmt) < 16:
        raise AudioError(f"{path}: not a valid WAV file (the 'fmt ' chunk is truncated)")
    tag, channels, rate, _, _, bits = struct.unpack("<HHIIHH", fmt[:16])
    if tag == _WAV_EXTENSIBLE and len(fmt) >= 26:
        tag = struct.unpack("<H", fmt[24:26])[0]  # the first two bytes of the sub-format GUID
    name = _WAV_FORMATS.get(tag)
    supported = ", ".join(sorted(set(_WAV_FORMATS.values())))
    if name is None:
        raise AudioError(f"{path}: unsupported WAV sample format (format tag 0x{tag:04X}); "
                         f"supported: {supported}. Convert it, e.g. to 16-bit PCM WAV or FLAC.")
    if tag == 0x0001 and bits not in _PCM_BITS:
        raise AudioError(f"{path}: unsupported sample format: {bits}-bit PCM "
                         f"(supported: {', '.join(map(str, _PCM_BITS))}-bit). Convert it, e.g. to 16-bit PCM.")
    if tag == 0x0003 and bits not in _FLOAT_BITS:
        raise AudioError(f"{path}: unsupported sample format: {bits}-bit float (supported: 32- and 64-bit)")
    if channels < 1:
        raise AudioError(f"{path}: not a valid WAV file (it declares {channels} channels)")
    if rate < MINIMUM_SOURCE_SAMPLE_RATE:
        raise AudioError(f"{path}: sample rate {rate} Hz is too low for speech analysis "
                         f"(at least {MINIMUM_SOURCE_SAMPLE_RATE} Hz is needed)")


def _explain_ffmpeg_failure(path: Path, message: str, decoded_seconds: float) -> str:
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    text = " ".join(lines).lower()
    if "matches no streams" in text:
        return f"{path}: has no audio track"
    if "invalid data found" in text:
        return f"{path}: not an audio or video file that can be read (invalid data)"
    if ("decoder" in text and "not found" in text) or "could not find codec parameters" in text:
        return f"{path}: unsupported audio codec or sample format ({lines[-1] if lines else 'no details'})"
    where = f" after {decoded_seconds:.1f} s" if decoded_seconds > 0 else ""
    detail = lines[-1] if lines else "no details"
    return f"{path}: the audio could not be decoded{where} ({detail})"


def _ffmpeg_exe() -> str:
    try:
        import imageio_ffmpeg
    except ImportError:  # pragma: no cover - a dependency of the project
        raise AudioError("audio decoding needs the imageio-ffmpeg package (pip install imageio-ffmpeg)") from None
    return imageio_ffmpeg.get_ffmpeg_exe()


def write_wav(path: str | os.PathLike[str], samples: np.ndarray, sample_rate: int) -> None:
    """Write mono samples as a 16-bit PCM WAV file, atomically (readers see the
    old file or the whole new one). Float samples are taken as -1..1; int16
    samples are written as they are."""
    target = Path(path)
    samples = np.asarray(samples)
    if samples.dtype != np.int16:
        samples = np.round(np.clip(samples, -1.0, 1.0) * 32767.0).astype(np.int16)
    temporary = target.with_name(f".{target.name}.{secrets.token_hex(4)}.tmp")
    try:
        with wave.open(str(temporary), "wb") as file:
            file.setnchannels(1)
            file.setsampwidth(2)
            file.setframerate(int(sample_rate))
            file.writeframes(samples.astype("<i2").tobytes())
        os.replace(temporary, target)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
