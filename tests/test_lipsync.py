"""Acoustic lip-sync (`enliven lipsync`): synthetic signals with known content
give the expected mouth channels; audio files of every kind decode; bad
inputs give clear errors; long files stream.

The vowels are made the way speech is: a pulse train at a voice's pitch
through resonators at chosen formant frequencies (source-filter synthesis), so
the expected mouth shape is known from phonetics: "ah" (F1 750, F2 1200 Hz)
opens the jaw, "ee" (F1 280, F2 2250) spreads the lips, "oo" (F1 300, F2
800) rounds them.
"""
from __future__ import annotations

import json
import struct
import subprocess
import sys
import textwrap
from pathlib import Path

import imageio_ffmpeg
import numpy as np
import pytest
from scipy.signal import lfilter

from enliven.shared.motion import load_motion
from enliven.speech.acoustic import FeatureExtractor, extract_features
from enliven.speech.audio import read_audio, stream_audio, write_wav
from enliven.speech.errors import AudioError, NoSpeechError
from enliven.speech.evaluation import mouth_opening
from enliven.speech.lipsync import SEAL_BELOW, LipsyncOptions, frame_count, lipsync_audio, lipsync_samples, sealed_jaw

from conftest import run_enliven

RATE = 16_000
VOWELS = {"ah": (750, 1200), "ee": (280, 2250), "oo": (300, 800)}
FFMPEG = imageio_ffmpeg.get_ffmpeg_exe()


# ---------------------------------------------------------------- signals


def vowel(name: str, seconds: float, pitch_hz: float = 120.0, peak: float = 0.3) -> np.ndarray:
    f1, f2 = VOWELS[name]
    pulses = np.zeros(int(seconds * RATE))
    pulses[:: int(RATE / pitch_hz)] = 1.0
    signal = pulses
    for frequency, bandwidth in ((f1, 80), (f2, 100), (2600, 150)):
        radius = np.exp(-np.pi * bandwidth / RATE)
        angle = 2 * np.pi * frequency / RATE
        signal = lfilter([1 - radius], [1, -2 * radius * np.cos(angle), radius**2], signal)
    signal = lfilter([1], [1, -0.95], signal)  # the glottal source's falling spectrum
    return (peak * signal / np.abs(signal).max()).astype(np.float32)


def silence(seconds: float) -> np.ndarray:
    return np.zeros(int(seconds * RATE), np.float32)


def hiss(seconds: float, peak: float = 0.1, seed: int = 0) -> np.ndarray:
    """High-frequency noise, like an "s" or a plosive's release burst."""
    noise = np.random.default_rng(seed).standard_normal(int(seconds * RATE))
    noise = lfilter([1, -1], [1], noise)  # first difference: energy above ~3 kHz
    return (peak * noise / np.abs(noise).max()).astype(np.float32)


def frames_inside(start_s: float, end_s: float, fps: float, margin_s: float = 0.1) -> slice:
    """Frames well inside [start_s, end_s], away from transitions."""
    return slice(int(np.ceil((start_s + margin_s) * fps)), int(np.floor((end_s - margin_s) * fps)) + 1)


def channel(motion, name: str) -> np.ndarray:
    return motion.values[:, motion.channels.index(name)]


# ---------------------------------------------------------------- mouth shapes


@pytest.mark.parametrize("name", VOWELS)
def test_formants_of_a_synthetic_vowel_are_measured(name):
    features = extract_features([vowel(name, 0.6)], RATE)
    middle = slice(15, 45)
    f1, f2 = VOWELS[name]
    assert np.nanmedian(features.f1_hz[middle]) == pytest.approx(f1, rel=0.12)
    assert np.nanmedian(features.f2_hz[middle]) == pytest.approx(f2, rel=0.12)
    assert np.median(features.voicing[middle]) > 0.9


@pytest.mark.parametrize("name, jaw, pucker, wide", [
    ("ah", (0.6, 1.0), (0.0, 0.3), (0.0, 0.1)),
    ("ee", (0.1, 0.4), (0.0, 0.1), (0.6, 1.0)),
    ("oo", (0.1, 0.45), (0.6, 1.0), (0.0, 0.1)),
])
def test_vowel_sets_jaw_and_lip_shape_and_silence_closes_the_mouth(name, jaw, pucker, wide):
    signal = np.concatenate([silence(0.5), vowel(name, 1.0), silence(0.5)])
    motion = lipsync_samples(signal, RATE, LipsyncOptions(fps=25, lead_frames=0)).motion
    assert motion.channels == ("jaw_open", "pucker", "wide", "lips_part")
    assert motion.frame_count == 50
    assert not channel(motion, "lips_part").any()  # the jaw opens the mouth; a take's own parting is keyed shut
    during = frames_inside(0.5, 1.5, 25)
    for name_, (low, high) in (("jaw_open", jaw), ("pucker", pucker), ("wide", wide)):
        values = channel(motion, name_)[during]
        assert low <= values.min() and values.max() <= high, (name_, values.round(2))
    for quiet in (frames_inside(0.0, 0.5, 25), frames_inside(1.5, 2.0, 25)):
        assert np.all(motion.values[quiet] < 0.05)


def test_open_vowel_opens_the_jaw_more_than_close_vowels():
    jaw = {}
    for name in VOWELS:
        motion = lipsync_samples(np.concatenate([silence(0.3), vowel(name, 0.8), silence(0.3)]), RATE).motion
        jaw[name] = channel(motion, "jaw_open").max()
    assert jaw["ah"] > 1.8 * max(jaw["ee"], jaw["oo"])


def test_plosive_closure_shuts_the_mouth_between_vowels():
    # "a-pa": vowel, 70 ms closure, 15 ms release burst, vowel.
    signal = np.concatenate([silence(0.3), vowel("ah", 0.3), silence(0.07), hiss(0.015, 0.2), vowel("ah", 0.3),
                             silence(0.3)])
    closure_s = 0.6 + 0.035
    motion = lipsync_samples(signal, RATE, LipsyncOptions(fps=24, lead_frames=0)).motion
    jaw = channel(motion, "jaw_open")
    closure_frame = int(round(closure_s * 24))
    assert jaw[closure_frame] < 0.05
    assert jaw[frames_inside(0.3, 0.6, 24, 0.08)].min() > 0.5
    assert jaw[frames_inside(0.685, 0.985, 24, 0.08)].min() > 0.5


def test_unvoiced_noise_keeps_the_teeth_nearly_together():
    # Hissing ("sss") is loud but made with the jaw almost closed.
    signal = np.concatenate([silence(0.3), hiss(0.5, 0.3), silence(0.3), vowel("ah", 0.5, peak=0.3), silence(0.3)])
    jaw = channel(lipsync_samples(signal, RATE, LipsyncOptions(fps=25, lead_frames=0)).motion, "jaw_open")
    assert jaw[frames_inside(0.3, 0.8, 25)].max() < 0.3
    assert jaw[frames_inside(1.1, 1.6, 25)].min() > 0.6


def test_lead_makes_the_mouth_move_before_the_sound():
    signal = np.concatenate([silence(0.5), vowel("ah", 0.5), silence(0.5)])

    def first_open_frame(lead: float) -> int:
        jaw = channel(lipsync_samples(signal, RATE, LipsyncOptions(fps=24, lead_frames=lead)).motion, "jaw_open")
        return int(np.argmax(jaw > 0.3))

    assert first_open_frame(0) - first_open_frame(2) == 2
    assert first_open_frame(0) - first_open_frame(4) == 4


def test_strength_scales_every_mouth_channel():
    signal = np.concatenate([silence(0.3), vowel("oo", 0.4), vowel("ah", 0.4), vowel("ee", 0.4), silence(0.3)])
    full = lipsync_samples(signal, RATE, LipsyncOptions(strength=1.0)).motion.values
    half = lipsync_samples(signal, RATE, LipsyncOptions(strength=0.5)).motion.values
    none = lipsync_samples(signal, RATE, LipsyncOptions(strength=0.0)).motion.values
    np.testing.assert_allclose(half, 0.5 * full, atol=1e-6)
    assert not none.any()


def test_silence_and_near_silence_are_refused():
    with pytest.raises(NoSpeechError, match="only silence"):
        lipsync_samples(silence(2.0), RATE)
    faint_hum = 10 ** (-75 / 20) * np.sin(2 * np.pi * 50 * np.arange(2 * RATE) / RATE)
    with pytest.raises(NoSpeechError, match="only silence"):
        lipsync_samples(faint_hum.astype(np.float32), RATE)


def test_head_motion_and_blinks_are_seeded_and_natural():
    # 20 s of "syllables" with pauses, like speech.
    syllable = np.concatenate([vowel("ah", 0.25), silence(0.08), vowel("ee", 0.2), silence(0.2)])
    phrase = np.concatenate([np.tile(syllable, 4), silence(0.6)])
    signal = np.tile(phrase, int(np.ceil(20 / (phrase.size / RATE))))
    options = LipsyncOptions(fps=30, head_motion=1.0, blinks=True, seed=7)
    first = lipsync_samples(signal, RATE, options).motion
    again = lipsync_samples(signal, RATE, options).motion
    other = lipsync_samples(signal, RATE, LipsyncOptions(fps=30, head_motion=1.0, blinks=True, seed=8)).motion
    np.testing.assert_array_equal(first.values, again.values)
    assert not np.array_equal(first.values, other.values)
    assert set(first.channels) == {"jaw_open", "pucker", "wide", "lips_part", "head_yaw", "head_pitch", "head_roll",
                                   "blink_l", "blink_r"}

    for name in ("head_yaw", "head_pitch", "head_roll"):
        degrees = channel(first, name)
        assert 0.2 < np.abs(degrees).max() < 8.0, name  # moving, but small
        assert np.abs(np.diff(degrees)).max() < 0.5, name  # smooth: under half a degree per frame

    blink = channel(first, "blink_l")
    np.testing.assert_array_equal(blink, channel(first, "blink_r"))
    closed = np.flatnonzero((blink[1:] >= 0.95) & (blink[:-1] < 0.95)) + 1  # each blink's closing frame
    duration_s = first.frame_count / 30
    assert 3 <= closed.size <= duration_s / 1.2  # about every 3 s, never closer than 1.2 s
    assert np.diff(closed).min() >= 1.2 * 30
    assert blink.min() == 0.0 and blink.max() <= 1.0


# ---------------------------------------------------------------- decoding and streaming


def test_features_do_not_depend_on_block_size():
    signal = np.concatenate([silence(0.2), vowel("ah", 0.5), hiss(0.1), vowel("ee", 0.5), silence(0.2)])
    whole = extract_features([signal], RATE)
    blocks = extract_features(np.array_split(signal, np.arange(1237, signal.size, 1237)), RATE)
    assert whole.frame_count == blocks.frame_count == int(np.ceil(signal.size / 160))
    for name in ("level_db", "voicing", "f1_hz", "f2_hz"):
        np.testing.assert_allclose(getattr(whole, name), getattr(blocks, name), rtol=1e-4, atol=1e-3, equal_nan=True)


def test_empty_stream_gives_no_frames():
    features = FeatureExtractor(RATE).finish()
    assert features.frame_count == 0 and features.duration_s == 0.0


def speech_like(seconds: float) -> np.ndarray:
    unit = np.concatenate([silence(0.2), vowel("ah", 0.3), silence(0.05), hiss(0.02, 0.2), vowel("oo", 0.25),
                           vowel("ee", 0.2)])
    return np.tile(unit, int(np.ceil(seconds * RATE / unit.size)))[: int(seconds * RATE)]


def encode(source: Path, target: Path, *extra: str) -> Path:
    subprocess.run([FFMPEG, "-v", "error", "-y", "-i", str(source), *extra, str(target)], check=True)
    return target


@pytest.fixture(scope="module")
def speech_wav(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("audio") / "speech.wav"
    write_wav(path, speech_like(3.0), RATE)
    return path


@pytest.mark.parametrize("suffix, options", [
    (".flac", ()), (".mp3", ("-ar", "44100")), (".ogg", ("-c:a", "libvorbis", "-ar", "22050")), (".opus", ()),
])
def test_compressed_formats_decode_like_the_wav(speech_wav, tmp_path, suffix, options):
    reference = lipsync_audio(speech_wav).motion
    motion = lipsync_audio(encode(speech_wav, tmp_path / f"speech{suffix}", *options)).motion
    # Encoders may add up to a few dozen milliseconds of padding.
    assert abs(motion.frame_count - reference.frame_count) <= 2
    count = min(motion.frame_count, reference.frame_count)
    jaw, expected = mouth_opening(motion)[:count], mouth_opening(reference)[:count]
    assert np.corrcoef(jaw, expected)[0, 1] > 0.9


def test_stereo_float_wav_and_a_videos_sound_track(speech_wav, tmp_path):
    stereo = encode(speech_wav, tmp_path / "stereo.wav", "-ac", "2", "-c:a", "pcm_f32le", "-ar", "48000")
    assert lipsync_audio(stereo).motion.frame_count == 72
    video = tmp_path / "talk.mp4"
    subprocess.run([FFMPEG, "-v", "error", "-y", "-f", "lavfi", "-i", "color=c=gray:s=64x64:r=25:d=3",
                    "-i", str(speech_wav), "-c:v", "mpeg4", "-c:a", "aac", "-shortest", str(video)], check=True)
    motion = lipsync_audio(video, LipsyncOptions(fps=25)).motion
    assert abs(motion.frame_count - 75) <= 2
    assert channel(motion, "jaw_open").max() > 0.5


def test_samples_are_streamed_in_blocks(speech_wav):
    blocks = list(stream_audio(speech_wav, RATE, block_seconds=0.5))
    assert [block.size for block in blocks[:-1]] == [8000] * (len(blocks) - 1)
    assert sum(block.size for block in blocks) == 3 * RATE
    np.testing.assert_allclose(np.concatenate(blocks), speech_like(3.0), atol=1e-4)
    np.testing.assert_array_equal(read_audio(speech_wav), np.concatenate(blocks))


def test_ten_minute_file_streams_with_flat_memory(tmp_path):
    """Peak memory of a whole `lipsync` run on 10 minutes must stay close to
    that on 30 seconds: decoding 10 minutes at once would add 40-120 MB."""
    long_path, short_path = tmp_path / "ten_minutes.wav", tmp_path / "half_minute.wav"
    write_wav(long_path, np.tile(speech_like(30.0), 20), RATE)
    write_wav(short_path, speech_like(30.0), RATE)
    measure = textwrap.dedent("""
        import resource, sys
        from enliven.speech.lipsync import LipsyncOptions, lipsync_audio
        result = lipsync_audio(sys.argv[1], LipsyncOptions(fps=30))
        print(result.motion.frame_count, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
    """)

    def run(path: Path) -> tuple[int, float]:
        output = subprocess.run([sys.executable, "-c", measure, str(path)], capture_output=True, text=True, check=True)
        frames, peak_kib = output.stdout.split()
        return int(frames), int(peak_kib) / 1024

    long_frames, long_peak_mib = run(long_path)
    short_frames, short_peak_mib = run(short_path)
    assert long_frames == frame_count(600.0, 30) == 18000
    assert short_frames == 900
    assert long_peak_mib - short_peak_mib < 25, (long_peak_mib, short_peak_mib)


# ---------------------------------------------------------------- bad input


def wav_header(format_tag: int, bits: int, rate: int = RATE, channels: int = 1) -> bytes:
    data = bytes(3200)
    block = channels * max(1, bits // 8)
    fmt = struct.pack("<HHIIHH", format_tag, channels, rate, rate * block, block, bits)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", len(data)) + data
    return b"RIFF" + struct.pack("<I", len(body)) + body


@pytest.mark.parametrize("name, content, message", [
    ("missing.wav", None, "no such file"),
    ("empty.wav", b"", "the file is empty"),
    ("notes.wav", b"this is a text file, not sound\n" * 20, "not an audio or video file"),
    ("adpcm_unknown.wav", wav_header(0x7777, 16), "unsupported WAV sample format (format tag 0x7777)"),
    ("twelve_bit.wav", wav_header(1, 12), "unsupported sample format: 12-bit PCM"),
    ("phone.wav", wav_header(1, 16, rate=4000), "sample rate 4000 Hz is too low"),
])
def test_unreadable_audio_is_explained(tmp_path, name, content, message):
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(AudioError, match=message.replace("(", r"\(").replace(")", r"\)")):
        lipsync_audio(path)


def test_folder_and_silent_video_are_explained(tmp_path):
    with pytest.raises(AudioError, match="is a folder"):
        lipsync_audio(tmp_path)
    video = tmp_path / "mute.mp4"
    subprocess.run([FFMPEG, "-v", "error", "-y", "-f", "lavfi", "-i", "color=c=gray:s=64x64:r=25:d=1",
                    "-c:v", "mpeg4", str(video)], check=True)
    with pytest.raises(AudioError, match="has no audio track"):
        lipsync_audio(video)


# ---------------------------------------------------------------- command line


def test_lipsync_command_writes_motion_matching_the_audio(speech_wav, tmp_path):
    out = tmp_path / "motion" / "talk.json"
    result = run_enliven("lipsync", speech_wav, "--out", out, "--fps", "30", "--blinks", "--head-motion", "1")
    assert result.returncode == 0, result.stderr
    motion = load_motion(out)
    assert motion.fps == 30 and motion.frame_count == 90
    assert {"jaw_open", "pucker", "wide", "blink_l", "head_pitch"} <= set(motion.channels)
    assert "90 frames" in result.stdout
    assert json.loads(out.read_text())["format"] == "enliven-motion"

    csv_out = tmp_path / "talk.csv"
    assert run_enliven("lipsync", speech_wav, "--out", csv_out).returncode == 0
    assert load_motion(csv_out).frame_count == 72


def test_lipsync_command_errors(tmp_path, speech_wav):
    silent = tmp_path / "silent.wav"
    write_wav(silent, silence(1.0), RATE)
    result = run_enliven("lipsync", silent, "--out", tmp_path / "m.json")
    assert result.returncode == 6
    assert "no speech found, only silence" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "m.json").exists()

    result = run_enliven("lipsync", tmp_path / "nothing.mp3", "--out", tmp_path / "m.json")
    assert result.returncode == 6 and "no such file" in result.stderr

    result = run_enliven("lipsync", speech_wav, "--out", tmp_path / "m.txt")
    assert result.returncode == 2 and "use .json or .csv" in result.stderr  # a usage error

    result = run_enliven("lipsync", speech_wav, "--out", tmp_path / "m.json", "--strength", "9")
    assert result.returncode == 2 and "out of range" in result.stderr

    for command in (["lipsync", speech_wav, "--out", tmp_path / "m.json"], ["say", "hello", "--out", tmp_path / "s"]):
        result = run_enliven(*command, "--seed", "-1")  # (a traceback, exit 1)
        assert result.returncode == 2 and "--seed: -1 is out of range" in result.stderr, result.stderr


def test_pauses_seal_the_lips_so_an_open_mouthed_photo_closes_them():
    """A shut mouth is keyed jaw_open -1 (which closes the lips of a photo whose mouth is open, and does
    nothing to closed lips), rising smoothly to the ordinary opening of speech; strength scales it too."""
    signal = np.concatenate([silence(0.5), vowel("ah", 0.6), silence(0.5)])
    full = lipsync_samples(signal, RATE, LipsyncOptions(lead_frames=0)).motion
    jaw = channel(full, "jaw_open")
    fps = full.fps
    assert np.allclose(jaw[: int(0.3 * fps)], -1.0) and np.allclose(jaw[-int(0.3 * fps):], -1.0)
    assert jaw[int(0.7 * fps): int(0.9 * fps)].min() > 0.2
    half = channel(lipsync_samples(signal, RATE, LipsyncOptions(lead_frames=0, strength=0.5)).motion, "jaw_open")
    assert np.allclose(half[: int(0.3 * fps)], -0.5)
    openness = np.linspace(0.0, 1.0, 101)
    assert np.all(np.diff(sealed_jaw(openness)) > 0) and sealed_jaw(openness)[0] == -1.0
    assert np.allclose(sealed_jaw(openness[openness >= SEAL_BELOW]), openness[openness >= SEAL_BELOW])


def test_a_short_talk_blinks_whatever_its_seed_and_its_blinks_stay_when_it_grows_a_frame():
    """A 2.5 s talk drew its first blink after its end for about a third of the seeds (a face that never
    blinks looks dead), and one frame more of sound moved every blink (the head's noise drew from the same
    random stream first)."""
    signal = np.concatenate([vowel("ah", 1.0), silence(0.3), vowel("oo", 1.2)])
    index = None
    for seed in range(12):
        motion = lipsync_samples(signal, RATE, LipsyncOptions.talking(24, seed=seed)).motion
        index = motion.channels.index("blink_l")
        assert motion.values[:, index].max() > 0.99, seed
    longer = np.concatenate([signal, silence(1 / 24)])
    blinks = [lipsync_samples(sound, RATE, LipsyncOptions.talking(24, seed=3)).motion.values[:, index]
              for sound in (signal, longer)]
    assert len(blinks[1]) == len(blinks[0]) + 1 and np.array_equal(blinks[1][:-1], blinks[0])
