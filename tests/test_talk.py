"""`enliven talk`: photo + text or recording -> one MP4 with sound; and
`generate --audio`. Everything runs the real command line in a fresh process
and reads the real MP4 back with the ffmpeg that imageio-ffmpeg bundles."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import imageio_ffmpeg
import numpy as np
import pytest

from enliven.shared.motion import load_motion
from enliven.speech.audio import write_wav
from enliven.speech.tts import INSTALL_HINT, espeak_available, synthesize

from conftest import run_enliven

ROOT = Path(__file__).resolve().parents[1]
ASTRONAUT = ROOT / "backend" / "assets" / "astronaut.png"
FFMPEG = imageio_ffmpeg.get_ffmpeg_exe()
SAMPLE_RATE = 16000
SENTENCE = "Hello there, this is a test of the talking portrait."


@pytest.fixture(scope="module")
def espeak() -> None:
    if not espeak_available():
        pytest.fail(f"eSpeak NG is not installed, and `enliven talk --text` needs it: {INSTALL_HINT}", pytrace=False)


@pytest.fixture(scope="module")
def spoken_wav(espeak, tmp_path_factory) -> Path:
    """Real synthesised speech after 0.6 s of silence, as a recording on disk."""
    speech = synthesize(SENTENCE)
    silence = np.zeros(int(0.6 * speech.sample_rate), np.float32)
    path = tmp_path_factory.mktemp("audio") / "speech.wav"
    write_wav(path, np.concatenate([silence, speech.samples]), speech.sample_rate)
    return path


def streams(video: Path) -> list[str]:
    """The kinds of the streams in a media file: ["video", "audio"] ..."""
    info = subprocess.run([FFMPEG, "-hide_banner", "-i", str(video)], capture_output=True, text=True).stderr
    return re.findall(r"Stream #\d+:\d+.*?: (Video|Audio):", info)


def video_seconds(video: Path) -> tuple[int, float]:
    frames, _ = imageio_ffmpeg.count_frames_and_secs(str(video))
    fps = float(re.search(r"(\d+(?:\.\d+)?) fps", subprocess.run(
        [FFMPEG, "-hide_banner", "-i", str(video)], capture_output=True, text=True).stderr).group(1))
    return frames, frames / fps


def sound_of(media: Path) -> np.ndarray:
    """The sound track decoded to mono float samples at SAMPLE_RATE."""
    raw = subprocess.run([FFMPEG, "-v", "error", "-i", str(media), "-vn", "-f", "s16le", "-ac", "1",
                          "-ar", str(SAMPLE_RATE), "-"], capture_output=True, check=True).stdout
    return np.frombuffer(raw, np.int16).astype(np.float32) / 32768.0


def speech_onset_s(samples: np.ndarray) -> float:
    """When the sound first rises above its noise floor (a tenth of its peak)."""
    loud = np.flatnonzero(np.abs(samples) > 0.1 * np.abs(samples).max())
    return loud[0] / SAMPLE_RATE


def mouth_onset_s(motion_path: Path) -> float:
    """When the lips first part clearly: the jaw a quarter of the way from sealed to its widest (talk fits
    the jaw to the photo's own mouth, so its values depend on how open the photo's mouth is)."""
    motion = load_motion(motion_path)
    jaw = motion.full()[:, motion_channel_index("jaw_open")]
    return int(np.flatnonzero(jaw > jaw.min() + 0.25 * np.ptp(jaw))[0]) / motion.fps


def motion_channel_index(name: str) -> int:
    from enliven.shared.channels import CHANNEL_INDEX
    return CHANNEL_INDEX[name]


def one_error_line(result: subprocess.CompletedProcess) -> str:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("enliven: error:"), result.stderr
    return lines[0]


def test_talk_from_text_writes_one_video_with_its_speech_in_sync(espeak, tmp_path):
    video, motion = tmp_path / "hello.mp4", tmp_path / "motion.json"
    result = run_enliven("talk", ASTRONAUT, "--text", SENTENCE, "--out", video, "--motion-out", motion,
                         "--frames", tmp_path / "frames", "--size", "256")
    assert result.returncode == 0, result.stderr
    assert streams(video) == ["Video", "Audio"]
    frames, seconds = video_seconds(video)
    sound = sound_of(video)
    assert abs(len(sound) / SAMPLE_RATE - seconds) <= 1 / 24, (len(sound) / SAMPLE_RATE, seconds)
    assert len(list((tmp_path / "frames").glob("frame_*.png"))) == frames
    # The mouth opens with the first word, within 100 ms of the sound in the file.
    assert abs(mouth_onset_s(motion) - speech_onset_s(sound)) <= 0.1
    # Alive, not only a mouth: blinks and head motion come with the speech.
    values = load_motion(motion).full()
    assert values[:, motion_channel_index("blink_l")].max() > 0.5
    assert np.ptp(values[:, motion_channel_index("head_yaw")]) > 0.2


def test_a_wide_open_mouth_talks_from_closed_lips_not_by_shouting(espeak, tmp_path):
    """On a photo whose mouth is wide open, speech used to open it further still on every vowel (jaw_open
    is relative to the photo). `talk` fits the speech to the photo: vowels open the lips from closed, so they
    stay narrower than the photo's own mouth, and pauses seal them."""
    from enliven.analysis import analyze_image
    from enliven.animator import Animator
    from enliven.images import load_image, write_png
    from enliven.shared.channels import CHANNEL_INDEX, default_vector

    values = default_vector().astype(np.float64)
    values[CHANNEL_INDEX["jaw_open"]] = 1.0
    photo = tmp_path / "shouting.png"
    write_png(photo, Animator(analyze_image(load_image(ASTRONAUT))).render(values))
    motion = tmp_path / "motion.json"
    result = run_enliven("talk", photo, "--text", SENTENCE, "--out", tmp_path / "talk.mp4", "--motion-out", motion,
                         "--size", "256")
    assert result.returncode == 0, result.stderr
    jaw = load_motion(motion).full()[:, motion_channel_index("jaw_open")]
    assert jaw.max() < 0.0 and np.ptp(jaw) > 0.3  # it talks, always less open than the photo
    assert jaw.min() == -1.0  # and seals its lips
    # The same speech on a plain lip-sync (no photo named) opens past the photo's mouth on its vowels.
    plain = tmp_path / "plain"
    assert run_enliven("say", SENTENCE, "--out", plain).returncode == 0
    assert load_motion(plain / "motion.json").full()[:, motion_channel_index("jaw_open")].max() > 0.2
    fitted = tmp_path / "fitted"
    assert run_enliven("say", SENTENCE, "--out", fitted, "--photo", photo).returncode == 0
    assert load_motion(fitted / "motion.json").full()[:, motion_channel_index("jaw_open")].max() < 0.0


def test_talk_from_a_recording_keeps_its_timing(spoken_wav, tmp_path):
    video, motion = tmp_path / "rec.mp4", tmp_path / "motion.json"
    result = run_enliven("talk", ASTRONAUT, "--audio", spoken_wav, "--out", video, "--motion-out", motion,
                         "--size", "256", "--fps", "25")
    assert result.returncode == 0, result.stderr
    assert streams(video) == ["Video", "Audio"]
    _, seconds = video_seconds(video)
    recorded = sound_of(spoken_wav)
    assert abs(seconds - len(recorded) / SAMPLE_RATE) <= 1 / 25
    sound = sound_of(video)
    assert abs(speech_onset_s(sound) - speech_onset_s(recorded)) <= 0.05  # 0.6 s of silence first, kept
    assert abs(mouth_onset_s(motion) - speech_onset_s(sound)) <= 0.1


def sound_on_timeline(media: Path) -> np.ndarray:
    """As sound_of, from the file's time 0: a sound track that starts later in its file is preceded by
    silence, as a player plays it."""
    raw = subprocess.run([FFMPEG, "-v", "error", "-i", str(media), "-vn", "-af", "aresample=async=1:first_pts=0",
                          "-f", "s16le", "-ac", "1", "-ar", str(SAMPLE_RATE), "-"], capture_output=True, check=True).stdout
    return np.frombuffer(raw, np.int16).astype(np.float32) / 32768.0


def test_a_sound_track_that_starts_late_in_its_file_plays_with_the_lips(spoken_wav, tmp_path):
    """A camera's clip, or one cut with `-c copy`, often has its sound start after its picture (here 1 s). The
    lips were timed from the sound's first sample while the video kept the file's timeline: the mouth moved
    a second before the voice, and the sound ran on past the last frame. Both follow the file's timeline now,
    as capture's motion does (the picture's first frame is time 0)."""
    late = tmp_path / "late.mp4"
    subprocess.run([FFMPEG, "-v", "error", "-f", "lavfi", "-i", "color=black:s=64x64:r=25:d=5", "-itsoffset", "1.0",
                    "-i", str(spoken_wav), "-map", "0:v", "-map", "1:a", "-c:v", "libx264", "-c:a", "aac",
                    str(late)], check=True)
    assert speech_onset_s(sound_on_timeline(late)) - speech_onset_s(sound_of(spoken_wav)) > 0.9  # it is late
    video, motion = tmp_path / "talk.mp4", tmp_path / "motion.json"
    result = run_enliven("talk", ASTRONAUT, "--audio", late, "--out", video, "--motion-out", motion,
                         "--size", "128", "--fps", "25")
    assert result.returncode == 0, result.stderr
    sound = sound_on_timeline(video)
    assert abs(mouth_onset_s(motion) - speech_onset_s(sound)) <= 0.1
    assert abs(mouth_onset_s(motion) - speech_onset_s(sound_on_timeline(late))) <= 0.1
    _, seconds = video_seconds(video)
    assert len(sound) / SAMPLE_RATE <= seconds + 0.03  # the sound ends with the picture


def test_generate_muxes_audio_at_an_offset(spoken_wav, tmp_path):
    onsets = []
    for offset in ("0", "0.5"):
        video = tmp_path / f"offset{offset}.mp4"
        result = run_enliven("generate", ASTRONAUT, "--preset", "talk", "--duration", "3", "--size", "128",
                             "--out", tmp_path / f"frames{offset}", "--video", video,
                             "--audio", spoken_wav, "--audio-offset", offset)
        assert result.returncode == 0, result.stderr
        assert streams(video) == ["Video", "Audio"]
        onsets.append(speech_onset_s(sound_of(video)))
        # The recording is longer than the 3 s of frames: it ends with them (it ran on past the last frame).
        assert len(sound_on_timeline(video)) / SAMPLE_RATE <= video_seconds(video)[1] + 0.03
    assert abs(onsets[1] - onsets[0] - 0.5) <= 0.03


@pytest.mark.parametrize("offset", ["inf", "nan", "100000"])
def test_an_audio_offset_out_of_range_is_a_usage_error(spoken_wav, tmp_path, offset):
    # (inf was a traceback that left an empty folder, nan was ignored, 100000 wrote 27 hours of silence)
    result = run_enliven("generate", ASTRONAUT, "--preset", "blink", "--out", tmp_path / "f", "--video",
                         tmp_path / "v.mp4", "--audio", spoken_wav, f"--audio-offset={offset}")
    assert result.returncode == 2 and "--audio-offset" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "f").exists()


def test_a_sound_that_starts_after_the_last_frame_is_said(spoken_wav, tmp_path):
    result = run_enliven("generate", ASTRONAUT, "--preset", "blink", "--size", "64", "--out", tmp_path / "f",
                         "--video", tmp_path / "v.mp4", "--audio", spoken_wav, "--audio-offset", "5")
    assert result.returncode == 0, result.stderr
    assert "starts the sound after the last frame (0.54 s): the video is silent" in result.stderr


def test_generate_audio_needs_a_video(spoken_wav, tmp_path):
    result = run_enliven("generate", ASTRONAUT, "--preset", "blink", "--out", tmp_path / "f", "--audio", spoken_wav)
    assert result.returncode == 2 and "--video" in one_error_line(result)


@pytest.mark.parametrize("content", [b"", b"RIFF\x10\x00\x00\x00WAVEjunkjunk", b"this is not sound at all" * 50])
def test_unusable_audio_exits_6_with_one_line(tmp_path, content):
    bad = tmp_path / "speech.wav"
    bad.write_bytes(content)
    result = run_enliven("talk", ASTRONAUT, "--audio", bad, "--out", tmp_path / "v.mp4")
    assert result.returncode == 6, result.stderr
    assert "speech.wav" in one_error_line(result)
    assert not (tmp_path / "v.mp4").exists()


def test_failed_speech_synthesis_exits_7(espeak, tmp_path):
    result = run_enliven("talk", ASTRONAUT, "--text", "hi", "--voice", "zz-nowhere", "--out", tmp_path / "v.mp4")
    assert result.returncode == 7 and "unknown voice 'zz-nowhere'" in one_error_line(result)


def test_a_photo_without_a_face_exits_3(espeak, tmp_path):
    import cv2
    blank = tmp_path / "wall.png"
    cv2.imwrite(str(blank), np.full((256, 256, 3), 128, np.uint8))
    result = run_enliven("talk", blank, "--text", "hello", "--out", tmp_path / "v.mp4")
    assert result.returncode == 3, result.stderr
    one_error_line(result)
    assert not (tmp_path / "v.mp4").exists()


@pytest.mark.parametrize("how", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL])
def test_an_interrupted_run_leaves_no_video(spoken_wav, tmp_path, how):
    # A minute of speech, so the run is still rendering when it is stopped.
    long_wav = tmp_path / "long.wav"
    one = sound_of(spoken_wav)
    write_wav(long_wav, np.tile(one, int(np.ceil(60 * SAMPLE_RATE / len(one)))), SAMPLE_RATE)
    video, frames = tmp_path / "long.mp4", tmp_path / "frames"
    process = subprocess.Popen([sys.executable, "-m", "enliven.cli", "talk", str(ASTRONAUT), "--audio", str(long_wav),
                                "--out", str(video), "--size", "256", "--frames", str(frames)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               env=dict(os.environ, TMPDIR=str(tmp_path)),  # a killed run leaves its scratch here
                               # As from a terminal: a shell's background job starts with Ctrl-C ignored.
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    partial = tmp_path / ".long.partial.mp4"
    deadline = time.monotonic() + 120
    # Rendering has begun (frames are on disk), and 1,440 frames is far from done.
    while not (frames / "frame_00010.png").exists() and time.monotonic() < deadline:
        assert process.poll() is None, process.stderr.read().decode()
        time.sleep(0.02)
    assert partial.exists() and process.poll() is None, "the run never got to rendering"
    process.send_signal(how)
    process.wait(60)
    assert not video.exists()
    assert (frames / "frame_00010.png").exists()  # frames already written stay written
    if how != signal.SIGKILL:  # a clean stop also removes the unfinished file
        assert process.returncode == 130
        assert not partial.exists()


# -- the service's `talk` request ----------------------------------------------------


@pytest.fixture(scope="module")
def server():
    from service_helpers import serving

    with serving() as srv:
        yield srv


def test_a_talk_request_writes_the_video_with_its_sound(espeak, server, tmp_path):
    from service_helpers import astronaut_bytes, collect
    from enliven.shared.client import Client, motion_of

    with Client(server.address, timeout_s=30) as client:
        job = client.talk(tmp_path / "out", text=SENTENCE, image=astronaut_bytes(), video_name="hello.mp4", fps=25)
        events = collect(client, job, timeout_s=120)
    done = events[-1]
    assert done.type == "done" and done.fields["status"] == "completed", (done.type, done.fields)
    video = Path(done.fields["video"])
    assert video == tmp_path / "out" / "hello.mp4"
    assert streams(video) == ["Video", "Audio"]
    frames, seconds = video_seconds(video)
    assert frames == done.fields["frames"]
    assert abs(len(sound_of(video)) / SAMPLE_RATE - seconds) <= 1 / 25
    assert any(e.type == "progress" and e.fields.get("stage") == "rendering" for e in events)
    # The motion it made comes back too, e.g. to key it in Blender.
    values, channels, fps = motion_of(done)
    assert fps == 25 and values.shape == (frames, len(channels)) and "jaw_open" in channels


def test_a_cancelled_talk_request_leaves_no_video(spoken_wav, server, tmp_path):
    from service_helpers import astronaut_bytes, collect, wait_for
    from enliven.shared.client import Client

    long_wav = tmp_path / "long.wav"
    one = sound_of(spoken_wav)
    write_wav(long_wav, np.tile(one, int(np.ceil(60 * SAMPLE_RATE / len(one)))), SAMPLE_RATE)
    with Client(server.address, timeout_s=30) as client:
        job = client.talk(tmp_path / "out", audio_path=long_wav, image=astronaut_bytes())
        wait_for(client, job, lambda e: e.type == "progress" and e.fields.get("stage") == "rendering", 120)
        client.cancel(job)
        done = collect(client, job, timeout_s=60)[-1]
    assert done.fields["status"] == "cancelled"
    assert not [p.name for p in tmp_path.rglob("*") if p.suffix in (".mp4", ".part")]


def test_a_talk_request_needs_exactly_one_kind_of_speech(spoken_wav, server, tmp_path):
    from service_helpers import astronaut_bytes, collect
    from enliven.shared import protocol
    from enliven.shared.client import Client

    with Client(server.address, timeout_s=30) as client:
        both = protocol.encode("talk", "both-1", {"output_dir": str(tmp_path), "text": "hi",
                                                  "audio_path": str(spoken_wav)}, {"image": astronaut_bytes()})
        client.send_raw(both, job="both-1", kind="talk")
        reply = collect(client, "both-1", timeout_s=30)[-1]
    assert reply.type == "error" and reply.code == protocol.E_BAD_FIELD and "exactly one" in reply.message


def test_talk_renders_on_a_server_and_muxes_here(espeak, server, tmp_path):
    video = tmp_path / "remote.mp4"
    result = run_enliven("talk", ASTRONAUT, "--text", SENTENCE, "--out", video, "--size", "256",
                         "--server", server.address)
    assert result.returncode == 0, result.stderr
    assert streams(video) == ["Video", "Audio"]
    _, seconds = video_seconds(video)
    assert abs(len(sound_of(video)) / SAMPLE_RATE - seconds) <= 1 / 24


def test_talk_on_a_server_keeps_the_no_face_exit_code(espeak, server, tmp_path):
    import cv2
    blank = tmp_path / "wall.png"
    cv2.imwrite(str(blank), np.full((256, 256, 3), 128, np.uint8))
    result = run_enliven("talk", blank, "--text", "hello", "--out", tmp_path / "v.mp4", "--server", server.address)
    assert result.returncode == 3, result.stderr
    assert not (tmp_path / "v.mp4").exists()


@pytest.mark.parametrize("content", [b"this is not sound at all" * 50, b"\x00" * 4096])
def test_generate_with_unusable_audio_exits_6_before_rendering(tmp_path, content):
    bad = tmp_path / "voice.mp3"
    bad.write_bytes(content)
    result = run_enliven("generate", ASTRONAUT, "--preset", "blink", "--out", tmp_path / "frames",
                         "--video", tmp_path / "v.mp4", "--audio", bad)
    assert result.returncode == 6, result.stderr
    assert "voice.mp3" in one_error_line(result)
    assert not list(tmp_path.glob("*.mp4")) and not list(tmp_path.glob(".*.mp4"))
