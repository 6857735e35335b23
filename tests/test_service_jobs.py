"""`enliven serve` capture and lip-sync jobs, end to end: a real server
subprocess reads a video, a Live Link CSV or speech the test makes, streams
progress and answers with a `motion` reply; bad paths are clear errors, a
server with --input-root reads nothing outside it, and cancel stops a job."""
from __future__ import annotations

import numpy as np
import pytest

from enliven.shared.channels import CHANNEL_INDEX, CHANNEL_NAMES, default_vector
from enliven.shared.client import Client, RemoteError, motion_of

from service_helpers import ServerProcess, collect, serving, wait_for

VIDEO_FPS = 12.0
VIDEO_FRAMES = 12
MOUTH_CHANNELS = ("jaw_open", "pucker", "wide", "lips_part")
SENTENCE = "Hello, my name is Enliven. Papa bought a map."


@pytest.fixture(scope="module")
def server():
    with serving() as srv:
        yield srv


def _write_video(path, frames, fps: float) -> None:
    import imageio.v2 as imageio

    with imageio.get_writer(path, fps=fps, codec="libx264", quality=8, macro_block_size=16) as writer:
        for frame in frames:
            writer.append_data(frame)


@pytest.fixture(scope="module")
def jaw_motion() -> np.ndarray:
    """Full-table motion: the jaw opens and closes once."""
    motion = np.tile(default_vector().astype(np.float64), (VIDEO_FRAMES, 1))
    motion[:, CHANNEL_INDEX["jaw_open"]] = 0.8 * np.sin(np.linspace(0, np.pi, VIDEO_FRAMES))
    return motion


@pytest.fixture(scope="module")
def performance_frames(animator, jaw_motion) -> list[np.ndarray]:
    return [animator.render(values) for values in jaw_motion]


@pytest.fixture(scope="module")
def performance_video(tmp_path_factory, performance_frames):
    path = tmp_path_factory.mktemp("jobs") / "performance.mp4"
    _write_video(path, performance_frames, VIDEO_FPS)
    return path


@pytest.fixture(scope="module")
def speech_wav(tmp_path_factory):
    from enliven.speech.audio import write_wav
    from enliven.speech.tts import synthesize

    speech = synthesize(SENTENCE)
    path = tmp_path_factory.mktemp("jobs") / "speech.wav"
    write_wav(path, speech.samples, speech.sample_rate)
    return path, speech.duration_s


def _ended_with_motion(events) -> tuple[np.ndarray, tuple[str, ...], float, dict]:
    last = events[-1]
    assert last.type == "motion", (last.type, last.fields)
    values, channels, fps = motion_of(last)
    return values, channels, fps, last.fields


def test_capture_of_a_video_returns_its_motion_at_its_frame_rate(client, performance_video, jaw_motion):
    job = client.capture(performance_video, smoothing="none")
    events = collect(client, job, timeout_s=120)
    assert any(e.type == "progress" and e.fields.get("stage") == "tracking" for e in events)
    values, channels, fps, fields = _ended_with_motion(events)
    assert channels == tuple(CHANNEL_NAMES)
    assert values.shape == (VIDEO_FRAMES, len(CHANNEL_NAMES)) and values.dtype == np.float32
    assert fps == pytest.approx(VIDEO_FPS)
    assert fields["reference_frame"] == 0 and fields["missing_frames"] == 0
    assert fields["body_followed"] is True  # the astronaut shows her shoulders
    assert any(e.type == "progress" and e.fields.get("stage") == "body" for e in events)
    # The captured jaw follows the performed one.
    jaw = values[:, CHANNEL_NAMES.index("jaw_open")]
    assert np.corrcoef(jaw, jaw_motion[:, CHANNEL_INDEX["jaw_open"]])[0, 1] > 0.9


def test_capture_of_a_live_link_csv_with_strengths(client, tmp_path):
    rows = 30
    lines = ["Timecode,BlendShapeCount,JawOpen,EyeBlinkLeft,HeadYaw"]
    for row in range(rows):
        lines.append(f"10:00:00:{row:02d}.000,3,{row / (rows - 1):.4f},0.0,0.1")
    csv_path = tmp_path / "take.csv"
    csv_path.write_text("\n".join(lines) + "\n")
    full = collect(client, client.capture(livelink_path=csv_path, fps=30.0))
    half = collect(client, client.capture(livelink_path=csv_path, fps=30.0, strengths={"mouth": 0.5}))
    values, channels, fps, _ = _ended_with_motion(full)
    halved, _, _, _ = _ended_with_motion(half)
    assert fps == 30.0 and values.shape[0] == rows
    jaw = channels.index("jaw_open")
    assert values[-1, jaw] == pytest.approx(1.0, abs=1e-4)
    assert halved[-1, jaw] == pytest.approx(0.5, abs=1e-4)


def test_lipsync_of_an_audio_file_returns_mouth_motion(client, speech_wav):
    path, duration_s = speech_wav
    events = collect(client, client.lipsync(path, fps=25.0), timeout_s=60)
    assert any(e.type == "progress" for e in events)
    values, channels, fps, fields = _ended_with_motion(events)
    assert channels == MOUTH_CHANNELS and fps == 25.0
    count = values.shape[0]  # the last frame starts within the sound and lasts to its end
    assert (count - 1) / 25.0 < duration_s <= count / 25.0 + 1e-6
    assert values[:, 0].max() > 0.2  # the jaw opens while speaking
    assert fields["method"] == "acoustic" and fields["speech_s"] > 1.0


def test_say_writes_the_wav_into_output_dir_and_returns_its_motion(client, tmp_path):
    events = collect(client, client.lipsync(text=SENTENCE, output_dir=tmp_path / "say", fps=24.0), timeout_s=60)
    values, channels, fps, fields = _ended_with_motion(events)
    wav = tmp_path / "say" / fields["audio_path"].rsplit("/", 1)[-1]
    assert fields["audio_path"] == str(wav) and wav.is_file()
    assert channels == MOUTH_CHANNELS and fields["method"] == "phonemes"
    count = values.shape[0]
    assert (count - 1) / 24.0 < fields["duration_s"] <= count / 24.0 + 1e-6
    assert values[:, 0].max() > 0.2


def test_say_for_a_portrait_fits_the_mouth_to_its_photo(client, animator, tmp_path):
    """Named the portrait (its subject from analyze), lip-sync opens a wide-open photo's lips from closed:
    every spoken frame is a negative jaw_open. A subject the server does not hold still gets a lip-sync, for
    closed lips, and a warning."""
    from conftest import channel_values

    wide_open = animator.render(channel_values(jaw_open=1.0))
    subject = client.wait(client.analyze(wide_open), timeout_s=60).fields["subject"]
    events = collect(client, client.lipsync(text=SENTENCE, output_dir=tmp_path / "say", fps=24.0, subject=subject),
                     timeout_s=60)
    values, channels, _, fields = _ended_with_motion(events)
    jaw = values[:, channels.index("jaw_open")]
    assert jaw.max() < 0.0 and jaw.min() == pytest.approx(-1.0) and not fields["warnings"]
    events = collect(client, client.lipsync(text=SENTENCE, output_dir=tmp_path / "say", fps=24.0,
                                            subject="no-such-subject"), timeout_s=60)
    values, channels, _, fields = _ended_with_motion(events)
    assert values[:, channels.index("jaw_open")].max() > 0.2 and "not fitted" in fields["warnings"][0]


@pytest.mark.parametrize("request_kind, arguments, code, words", [
    ("capture", {"video_path": "relative/video.mp4"}, "bad_path", "absolute"),
    ("capture", {"video_path": "/nowhere/video.mp4"}, "bad_video", "no such file"),
    ("capture", {"video_path": "__TEXT__"}, "bad_video", "not a video"),
    ("capture", {"livelink_path": "/nowhere/take.csv"}, "bad_motion", "Cannot read"),
    ("lipsync", {"audio_path": "/nowhere/speech.wav"}, "bad_audio", "speech.wav"),
    ("lipsync", {"audio_path": "__SILENCE__"}, "no_speech", ""),
    ("lipsync", {"text": "Hello"}, "bad_field", "output_dir"),
])
def test_bad_inputs_are_clear_errors(client, tmp_path, request_kind, arguments, code, words):
    from enliven.speech.audio import write_wav

    text_file = tmp_path / "notes.txt"
    text_file.write_text("not a video\n" * 100)
    silence = tmp_path / "silence.wav"
    write_wav(silence, np.zeros(16000, np.float32), 16000)
    replace = {"__TEXT__": str(text_file), "__SILENCE__": str(silence)}
    arguments = {k: replace.get(v, v) for k, v in arguments.items()}
    if request_kind == "capture":
        job = client.capture(arguments.pop("video_path", None), **arguments)
    elif "text" in arguments:
        job = client._request("lipsync", {"fps": 24.0, **arguments})  # the helper itself refuses this
    else:
        job = client.lipsync(arguments["audio_path"])
    with pytest.raises(RemoteError) as caught:
        client.wait(job, timeout_s=60)
    assert caught.value.code == code
    assert words.lower() in caught.value.message.lower()


def test_input_root_limits_what_a_client_may_have_read(tmp_path, speech_wav):
    allowed = tmp_path / "shared"
    allowed.mkdir()
    inside = allowed / "speech.wav"
    inside.write_bytes(speech_wav[0].read_bytes())
    outside = tmp_path / "secret.wav"
    outside.write_bytes(b"RIFF")
    (allowed / "link.wav").symlink_to(outside)
    with ServerProcess("--input-root", str(allowed)) as srv, Client(srv.address, timeout_s=10.0) as c:
        for path in (outside, allowed / "link.wav", allowed / ".." / "secret.wav"):
            with pytest.raises(RemoteError) as caught:
                c.wait(c.lipsync(path), timeout_s=30)
            assert caught.value.code == "forbidden" and str(allowed) in caught.value.message
        assert c.wait(c.lipsync(inside), timeout_s=60).type == "motion"


def test_cancel_stops_a_running_capture_and_a_queued_one(client, tmp_path, performance_frames):
    # A longer clip, so the capture is surely still running when cancelled.
    long_video = tmp_path / "long.mp4"
    _write_video(long_video, performance_frames * 6, VIDEO_FPS)
    running = client.capture(long_video)
    queued = client.capture(long_video)
    wait_for(client, running, lambda e: e.type == "progress" and e.fields.get("stage") == "tracking", 60)
    client.cancel(queued)
    client.cancel(running)
    for job in (queued, running):
        last = collect(client, job, timeout_s=30)[-1]
        assert last.type == "done" and last.fields["status"] == "cancelled"
    # The lane is free again.
    assert client.wait(client.lipsync(text="Hi.", output_dir=tmp_path, fps=24.0), timeout_s=60).type == "motion"


def test_a_server_reachable_from_other_machines_reads_and_writes_no_client_paths_by_default(tmp_path):
    from enliven.device import detect_device
    from enliven.server import Server, ServiceError
    from enliven.service.control import hello_fields

    # Not opened: only its path rules are exercised (a real public bind needs CurveZMQ keys).
    public = Server("tcp://0.0.0.0:5999", device=detect_device("cpu"))
    local = Server("tcp://127.0.0.1:5999", device=detect_device("cpu"))
    try:
        for check in (public.paths.readable_path, public.paths.writable_dir):
            with pytest.raises(ServiceError) as caught:
                check(str(tmp_path / "anything"))
            assert caught.value.code == "forbidden" and "remote clients" in str(caught.value)
        assert local.paths.readable_path(str(tmp_path / "a.wav")) == (tmp_path / "a.wav").resolve()
        assert hello_fields(public)["input_files"] == "no" and hello_fields(local)["input_files"] == "any"
    finally:
        for server in (public, local):
            server.close()
