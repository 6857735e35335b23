"""Performance capture: a video the test makes (the astronaut animated with known motion) captured back,
Live Link Face CSV import, gaps, reference frames, retargeting and the errors a person sees."""
from __future__ import annotations

import argparse
import math
import time

import numpy as np
import pytest

from enliven import landmarks as lm
from enliven.capture import (Capture, VideoError, add_commands, capture_video, choose_reference, describe_gaps,
                             fill_gaps, missing_runs, motion_from_landmarks, parse_strengths,
                             retarget)
from enliven.errors import BadMotionError, EnlivenError, NoFaceError, UsageError
from enliven.livelink import load_livelink_csv
from enliven.sequence import VideoWriter
from enliven.shared.channels import CHANNEL_INDEX, CHANNEL_NAMES, default_vector
from enliven.shared.motion import MAX_FILE_BYTES, Motion, load_motion

from conftest import channel_values, run_enliven
from hostile_motion import HOSTILE_LIVELINK_FILES

FPS = 12.0
FRAMES = 26
BLANK = (12, 13)  # frames with no face in them: a grey wall


def _known_motion() -> np.ndarray:
    """A head turn and nod with a blink, speech-like jaw, a smile and raised brows, in table order."""
    phase = np.linspace(0.0, 1.0, FRAMES)
    motion = np.tile(default_vector().astype(np.float64), (FRAMES, 1))
    motion[:, CHANNEL_INDEX["head_yaw"]] = 15 * np.sin(2 * np.pi * phase)
    motion[:, CHANNEL_INDEX["head_pitch"]] = 8 * np.sin(4 * np.pi * phase)
    motion[:, CHANNEL_INDEX["head_roll"]] = 6 * np.cos(2 * np.pi * phase) - 6
    motion[:, CHANNEL_INDEX["head_x"]] = 0.05 * np.sin(2 * np.pi * phase)
    for side in ("blink_l", "blink_r"):
        motion[7:10, CHANNEL_INDEX[side]] = [0.5, 1.0, 0.5]
    motion[:, CHANNEL_INDEX["jaw_open"]] = 0.7 * np.clip(np.sin(3 * np.pi * phase), 0, 1)
    motion[15:21, CHANNEL_INDEX["smile_l"]] = motion[15:21, CHANNEL_INDEX["smile_r"]] = 0.8
    motion[19:26, CHANNEL_INDEX["brow_l"]] = motion[19:26, CHANNEL_INDEX["brow_r"]] = 0.8
    return motion


@pytest.fixture(scope="module")
def known_motion() -> np.ndarray:
    return _known_motion()


@pytest.fixture(scope="module")
def performance_video(tmp_path_factory, animator, known_motion):
    """An MP4 of the astronaut performing `known_motion`, with two frames of wall where the face is missing."""
    path = tmp_path_factory.mktemp("capture") / "performance.mp4"
    writer = VideoWriter(path, FPS)
    wall = np.tile(np.linspace(90, 200, 512, dtype=np.uint8)[None, :, None], (512, 1, 3))
    for index, values in enumerate(known_motion):
        writer.add(wall if index in BLANK else animator.render(values))
    writer.close()
    return path


@pytest.fixture(scope="module")
def captured(performance_video) -> Capture:
    return capture_video(performance_video, smoothing=None)


def _column(values: np.ndarray, name: str) -> np.ndarray:
    return values[:, CHANNEL_INDEX[name]]


# ---------------------------------------------------------------- video capture


def test_a_reference_frame_past_the_end_is_refused_before_the_video_is_tracked(performance_video):
    started = time.perf_counter()
    with pytest.raises(UsageError, match="Reference frame 999 is outside the video"):
        capture_video(performance_video, reference=999)
    assert time.perf_counter() - started < 5  # not after tracking every frame


def test_capture_reads_every_frame_at_the_videos_rate_and_finds_the_gap(captured):
    assert captured.motion.fps == FPS
    assert captured.motion.frame_count == FRAMES
    assert captured.motion.channels == CHANNEL_NAMES
    assert captured.missing == [(BLANK[0], BLANK[-1] + 1)]
    assert captured.reference_frame == 0
    assert np.isnan(captured.raw_values[list(BLANK)]).all()
    assert np.nanmedian(captured.fit_error_px) < 3.0


def test_capture_recovers_the_head_motion(captured, known_motion):
    got = captured.motion.full()
    # MediaPipe reads the astronaut turned 15 degrees away up to 5.0 degrees short (the irises drawn where the
    # rig puts them, 3.6 when they were warped with the skin; 4.3 before the white beside them carried the
    # lower lid's rim, which reproduces the still photo no worse); a user sees a turn of the right size and sign.
    for name, tolerance in (("head_yaw", 5.5), ("head_pitch", 4.5), ("head_roll", 3.0), ("head_x", 0.06),
                            ("head_y", 0.06)):
        error = np.abs(_column(got, name) - _column(known_motion, name))
        assert error.max() < tolerance, f"{name}: off by up to {error.max():.2f}"
    assert np.corrcoef(_column(got, "head_yaw"), _column(known_motion, "head_yaw"))[0, 1] > 0.98


def test_capture_recovers_blink_jaw_smile_and_brows(captured, known_motion):
    got = captured.motion.full()
    for side in ("blink_l", "blink_r"):
        blink = _column(got, side)
        # MediaPipe never quite closes an eye, so a full blink reads as about 0.7.
        assert int(np.argmax(blink)) == 8 and blink[8] > 0.5, f"{side}: {np.round(blink, 2)}"
        assert np.delete(blink, [7, 8, 9]).mean() < 0.1
    jaw = _column(got, "jaw_open")
    assert np.corrcoef(jaw, _column(known_motion, "jaw_open"))[0, 1] > 0.9
    assert jaw.max() > 0.3 and jaw[[0, 8, 9, 10]].max() < 0.15
    smiling = np.zeros(FRAMES, bool)
    smiling[15:21] = True
    for side in ("smile_l", "smile_r"):
        assert _column(got, side)[smiling].mean() > _column(got, side)[~smiling].mean() + 0.3, side
    raised = np.zeros(FRAMES, bool)
    raised[20:26] = True
    for side in ("brow_l", "brow_r"):
        assert _column(got, side)[raised].mean() > _column(got, side)[:15].mean() + 0.3, side


def test_frames_without_a_face_are_interpolated(captured):
    got = captured.motion.full()
    before, after = BLANK[0] - 1, BLANK[-1] + 1
    for index in BLANK:
        share = (index - before) / (after - before)
        assert np.allclose(got[index], got[before] + share * (got[after] - got[before]), atol=1e-4)


def test_capture_command_writes_the_motion_file(performance_video, tmp_path, known_motion):
    out = tmp_path / "take.json"
    code, printed = _run_capture_command([str(performance_video), "--out", str(out), "--max-gap", "0.1",
                                          "--strength", "pose=0.5"])
    assert code == 0
    motion = load_motion(out)
    assert motion.fps == FPS and motion.frame_count == FRAMES
    yaw = _column(motion.full(), "head_yaw")
    # Smoothed (default) and halved by --strength pose=0.5: about half the performed turn.
    assert np.abs(yaw - 0.5 * _column(known_motion, "head_yaw")).max() < 3.0
    assert "wrote" in printed


def test_a_variable_frame_rate_video_gives_motion_as_long_as_the_video(performance_video, tmp_path):
    """A phone's clip changes its frame rate as it goes. Here: every frame for the first second, then every
    third. Its frames came through ffmpeg's pipe at the nominal rate, gaps filled with copies, and were
    given the average rate: the motion was 1.6 times as long as the clip. (The clip is made without B-frames:
    with them the encoder, choosing frame types by the picture, gave the last frame a quarter second or a
    twelfth by where its B-frames fell, and the motion ran 23 frames or 21 for the same timestamps.)"""
    import subprocess

    import imageio_ffmpeg

    variable = tmp_path / "variable.mp4"
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-i", str(performance_video), "-vf",
                    f"select='lt(t,1)+not(mod(n,3))'", "-fps_mode", "passthrough", "-bf", "0", str(variable)], check=True)
    seconds = FRAMES / FPS  # (within a frame: its last kept frame lasts to the clip's end)
    captured = capture_video(variable, body=False)
    motion = captured.motion
    assert abs(motion.frame_count / motion.fps - seconds) <= 1.5 / motion.fps


# ---------------------------------------------------------------- errors a person sees


def test_a_video_without_a_face_is_a_clear_error(tmp_path):
    path = tmp_path / "wall.mp4"
    writer = VideoWriter(path, 10)
    for shade in range(4):
        writer.add(np.full((128, 160, 3), 60 + 40 * shade, np.uint8))
    writer.close()
    with pytest.raises(NoFaceError, match="No face found in any of the 4 frames"):
        capture_video(path)


@pytest.mark.parametrize("arguments, complaint", [
    (["--reference", "abc"], "--reference must be 'auto', 'first' or a frame number"),
    (["--strength", "ears=2"], "Unknown channel group 'ears'"),
    (["--strength", "mouth=abc"], "--strength expects GROUP=FACTOR"),
    (["--out", "motion.txt"], "unknown motion file type '.txt'; use .json or .csv"),
])
def test_bad_capture_arguments_are_usage_errors_before_the_video_is_read(tmp_path, arguments, complaint):
    result = run_enliven("capture", tmp_path / "not-there.mp4", "--out", tmp_path / "m.json", *arguments)
    assert result.returncode == 2, result.stderr
    (line,) = result.stderr.splitlines()
    assert line.startswith("enliven: error: ") and complaint in line


def test_a_max_gap_that_is_no_number_of_seconds_is_a_usage_error(tmp_path):
    # (nan turned the gap warnings off without a word)
    result = run_enliven("capture", tmp_path / "not-there.mp4", "--out", tmp_path / "m.json", "--max-gap", "nan")
    assert result.returncode == 2 and "--max-gap: nan is out of range" in result.stderr, result.stderr


def test_a_face_number_no_frame_has_is_named_in_the_error(performance_video):
    with pytest.raises(NoFaceError, match=r"shows a face number 3 \(numbered from 0, largest first\): choose a "
                                          r"lower --face"):
        capture_video(performance_video, face_index=3, body=False)


@pytest.mark.parametrize("content", [b"", b"this is not a video" * 50, bytes(range(256)) * 40],
                         ids=["empty", "text", "bytes"])
def test_a_corrupt_video_is_a_clear_error(tmp_path, content):
    path = tmp_path / "broken.mp4"
    path.write_bytes(content)
    with pytest.raises(VideoError, match="not a video we can read"):
        capture_video(path)


def test_a_constant_rate_video_decodes_every_frame_once(tmp_path):
    """An NTSC-rate clip (24000/1001 fps) is decoded as it is: forcing the rate for every video (imageio writes
    it rounded, 23.98) copied a frame every few minutes."""
    import subprocess

    import imageio_ffmpeg

    from enliven.capture import iter_video_frames, open_video

    clip = tmp_path / "ntsc.mp4"
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-f", "lavfi", "-i",
                    "testsrc=s=32x32:r=24000/1001:d=300", "-c:v", "libx264", "-preset", "ultrafast", str(clip)],
                   check=True)
    encoded, _ = imageio_ffmpeg.count_frames_and_secs(str(clip))
    reader, info = open_video(clip)
    assert sum(1 for _ in iter_video_frames(reader, info)) == encoded == 7193


def test_a_phone_video_stored_on_its_side_captures_without_imageio_s_warning(performance_video, tmp_path):
    # ffmpeg turns it as its rotation metadata says; imageio-ffmpeg warned "The frame size for reading (...)
    # is different from the source frame size (...)" on every such capture.
    import subprocess

    import imageio_ffmpeg

    wide, turned = tmp_path / "wide.mp4", tmp_path / "turned.mp4"
    ffmpeg = imageio_ffmpeg.get_ffmpeg_exe()
    subprocess.run([ffmpeg, "-v", "error", "-i", str(performance_video), "-vf", "crop=iw:ih*3/4", str(wide)],
                   check=True)
    subprocess.run([ffmpeg, "-v", "error", "-display_rotation", "90", "-i", str(wide), "-c", "copy", str(turned)],
                   check=True)
    result = run_enliven("capture", turned, "--out", tmp_path / "m.json", "--no-body")
    assert "frame size" not in result.stderr and "Traceback" not in result.stderr, result.stderr


def test_a_photo_or_a_sound_given_as_the_video_says_so_in_our_words(astronaut_path, tmp_path):
    sound = tmp_path / "speech.mp3"
    sound.write_bytes(b"ID3" + bytes(200))
    for path in (astronaut_path, sound):
        with pytest.raises(VideoError, match=r"is not a video we can read \(MP4, MOV, MKV, AVI, WebM\.\.\.\)\.$"):
            capture_video(path)


def test_a_missing_video_is_a_clear_error(tmp_path):
    with pytest.raises(VideoError, match="no such file"):
        capture_video(tmp_path / "nowhere.mp4")


def test_command_line_errors_have_exit_codes_and_one_line_messages(tmp_path):
    """Through the real `enliven` command (skipped until cli.py registers `capture`)."""
    from enliven.cli import build_parser

    if " capture " not in build_parser().format_help():
        pytest.skip("cli.py does not register the capture command yet")
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"junk" * 100)
    result = run_enliven("capture", broken, "--out", tmp_path / "m.json")
    assert result.returncode == VideoError.exit_code
    assert "not a video we can read" in result.stderr and "Traceback" not in result.stderr
    csv_path = tmp_path / "notes.csv"
    csv_path.write_text("a,b\n1,2\n")
    result = run_enliven("capture", "--livelink", csv_path, "--out", tmp_path / "m.json")
    assert result.returncode == BadMotionError.exit_code
    assert "no ARKit blendshape columns" in result.stderr


# ---------------------------------------------------------------- Live Link Face CSV


def _livelink_csv(path, rows: int = 90, rate: int = 60, start_frame: int = 30, drop: int | None = None,
                  camel_case: bool = False) -> None:
    shapes = ["EyeBlinkLeft", "EyeBlinkRight", "JawOpen", "MouthSmileLeft", "MouthFrownRight", "BrowInnerUp",
              "EyeLookOutLeft", "EyeLookInRight", "MouthPucker", "MouthFunnel", "CheekPuff"]
    head = ["HeadYaw", "HeadPitch", "HeadRoll", "LeftEyeYaw", "LeftEyePitch", "LeftEyeRoll"]
    header = shapes + head
    if camel_case:
        header = [name[0].lower() + name[1:] for name in header]
    lines = ["Timecode,BlendShapeCount," + ",".join(header)]
    for row in range(rows):
        if row == drop:
            continue
        frame = start_frame + row
        timecode = f"14:03:{52 + frame // rate:02d}:{frame % rate:02d}.{row * 37 % 1000:03d}"
        jaw = row / (rows - 1)
        blink = 1.0 if 40 <= row < 46 else 0.0
        values = [blink, blink * 0.9, jaw, 0.6, 0.3, 0.25, 0.4, 0.4, 0.5, 1.0, 0.8, 0.2, -0.1, 0.05, 0.3, 0.0, 0.0]
        lines.append(f"{timecode},{len(header)}," + ",".join(f"{v:.6f}" for v in values))
    path.write_text("\n".join(lines) + "\n")


def test_livelink_csv_maps_arkit_columns_through_the_channel_table(tmp_path):
    path = tmp_path / "take.csv"
    _livelink_csv(path)
    motion = load_livelink_csv(path)
    assert motion.fps == 60.0  # from the timecodes' frame field rolling over after frame 59
    assert motion.frame_count == 90
    assert "head_x" not in motion.channels and "head_y" not in motion.channels  # ARKit has no head shift
    values = {name: motion.values[:, i] for i, name in enumerate(motion.channels)}
    assert np.allclose(values["jaw_open"], np.linspace(0, 1, 90), atol=1e-5)
    assert values["blink_l"][42] == pytest.approx(1.0) and values["blink_l"][10] == 0.0
    assert values["blink_r"][42] == pytest.approx(0.9)
    assert values["smile_l"][0] == pytest.approx(0.6)
    assert values["smile_r"][0] == pytest.approx(-0.3)  # a frown is a negative smile
    assert values["gaze_x"][0] == pytest.approx(0.4)  # 0.5 * out-left + 0.5 * in-right
    assert values["pucker"][0] == pytest.approx(0.7 * 0.5 + 0.3 * 1.0)
    assert values["head_yaw"][0] == pytest.approx(math.degrees(0.2), abs=1e-4)
    assert values["head_pitch"][0] == pytest.approx(math.degrees(-0.1), abs=1e-4)


def test_livelink_csv_with_a_dropped_frame_and_camel_case_names(tmp_path):
    path = tmp_path / "take.csv"
    _livelink_csv(path, drop=20, camel_case=True)
    motion = load_livelink_csv(path)
    assert motion.frame_count == 90  # resampled onto an even grid: the dropped frame is interpolated
    jaw = motion.values[:, motion.channels.index("jaw_open")]
    assert np.allclose(jaw, np.linspace(0, 1, 90), atol=2e-3)
    assert load_livelink_csv(path, fps=30.0).fps == 30.0


@pytest.mark.parametrize("text, message", [
    ("", "is empty"),
    ("Timecode,Foo,Bar\n00:00:00:00,1,2\n", "no ARKit blendshape columns"),
    ("Timecode,JawOpen\n", "no frames"),
    ("Timecode,JawOpen\n00:00:00:01,wide\n", "not a number"),
    ("Timecode,JawOpen\nlunchtime,0.5\n", "not HH:MM:SS:FF"),
])
def test_bad_livelink_csv_is_a_clear_error(tmp_path, text, message):
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(BadMotionError, match=message):
        load_livelink_csv(path)


def test_livelink_through_the_capture_command(tmp_path):
    path = tmp_path / "take.csv"
    _livelink_csv(path)
    out = tmp_path / "take_motion.csv"
    code, _ = _run_capture_command(["--livelink", str(path), "--out", str(out), "--strength", "mouth=0.5"])
    assert code == 0
    motion = load_motion(out)
    assert motion.frame_count == 90 and motion.fps == pytest.approx(60.0)
    jaw = motion.values[:, motion.channels.index("jaw_open")]
    assert np.allclose(jaw, 0.5 * np.linspace(0, 1, 90), atol=1e-4)  # no smoothing by default for ARKit data


@pytest.mark.parametrize("name, text, complaint", HOSTILE_LIVELINK_FILES)
def test_hostile_livelink_files_exit_5_with_one_line(tmp_path, name, text, complaint):
    path = tmp_path / name
    path.write_text(text)
    out = tmp_path / "motion.json"
    result = run_enliven("capture", "--livelink", path, "--out", out)
    assert result.returncode == BadMotionError.exit_code, result.stderr
    (line,) = result.stderr.splitlines()  # one line, no traceback
    assert line.startswith(f"enliven: error: {path}: ") and complaint in line
    assert len(line) < 500, "one readable line, not the file's hostile cell"
    assert not out.exists()


def test_livelink_file_larger_than_a_motion_file_is_refused_unread(tmp_path):
    path = tmp_path / "huge.csv"
    with open(path, "wb") as file:
        file.truncate(MAX_FILE_BYTES + 1)  # sparse: costs no disk
    with pytest.raises(BadMotionError, match=r"huge\.csv: larger than the 64 MiB a Live Link Face CSV may have"):
        load_livelink_csv(path)


def test_livelink_values_past_any_range_are_clamped_without_a_numpy_warning(tmp_path):
    path = tmp_path / "huge.csv"
    path.write_text("Timecode,JawOpen,HeadYaw\n00:00:00:00,1e308,1e308\n00:00:00:01,-1e999,-1e308\n")
    out = tmp_path / "motion.json"
    result = run_enliven("capture", "--livelink", path, "--out", out)
    assert result.returncode == 0, result.stderr
    assert "Warning" not in result.stderr and "overflow" not in result.stderr
    motion = load_motion(out)
    values = {name: motion.values[:, i].tolist() for i, name in enumerate(motion.channels)}
    assert values["jaw_open"] == [1.0, -1.0] and values["head_yaw"] == [45.0, -45.0]  # each channel's limits


@pytest.mark.parametrize("fps", ["0", "-30", "1e308", "nan"])
def test_absurd_livelink_fps_is_a_usage_error(tmp_path, fps):
    path = tmp_path / "take.csv"
    _livelink_csv(path)
    result = run_enliven("capture", "--livelink", path, "--fps", fps, "--out", tmp_path / "motion.json")
    assert result.returncode == 2, result.stderr
    (line,) = result.stderr.splitlines()
    assert line.startswith("enliven: error: --fps must be above 0 and at most 1000")


# ---------------------------------------------------------------- gaps, reference, retarget


def test_missing_runs_and_gap_filling():
    present = np.array([False, True, True, False, False, True, False])
    assert missing_runs(present) == [(0, 1), (3, 5), (6, 7)]
    values = np.array([[np.nan], [1.0], [2.0], [np.nan], [np.nan], [5.0], [np.nan]])
    assert fill_gaps(values)[:, 0].tolist() == [1.0, 1.0, 2.0, 3.0, 4.0, 5.0, 5.0]
    warnings = describe_gaps([(3, 5), (10, 40)], fps=10, max_gap_s=0.5)
    assert len(warnings) == 1 and "frames 10-39 (3.0 s)" in warnings[0]
    with pytest.raises(NoFaceError):
        fill_gaps(np.full((3, 2), np.nan))


def test_reference_frame_choices(rig_landmarks):
    sequence = rig_landmarks
    assert choose_reference(sequence, "first") == 1  # frame 0 has no face
    assert choose_reference(sequence, 3) == 3
    assert choose_reference(sequence, "auto") == 3  # the neutral one among expressions
    with pytest.raises(NoFaceError, match="nearest frame with a face is 1"):
        choose_reference(sequence, 0)
    with pytest.raises(EnlivenError, match="outside the video"):
        choose_reference(sequence, 99)
    with pytest.raises(NoFaceError):
        choose_reference(np.full((3, 478, 3), np.nan), "first")


def test_motion_is_relative_to_the_chosen_reference(rig_landmarks):
    automatic = motion_from_landmarks(rig_landmarks, fps=24, reference="auto", smoothing=None)
    assert automatic.reference_frame == 3
    neutral_values = automatic.motion.full()[3]
    assert np.abs(neutral_values).max() < 1e-5
    assert automatic.motion.full()[2, CHANNEL_INDEX["jaw_open"]] == pytest.approx(0.6, abs=0.03)
    first = motion_from_landmarks(rig_landmarks, fps=24, reference="first", smoothing=None)
    assert first.reference_frame == 1 and first.missing == [(0, 1)]
    # Relative to a smiling first frame, the neutral frame frowns.
    assert first.motion.full()[3, CHANNEL_INDEX["smile_l"]] < -0.2


@pytest.fixture(scope="module")
def rig_landmarks(subject):
    """Frames from the rig: none, smile + blink, jaw open, neutral, brows raised + head turned."""
    from enliven.rig import Rig

    rig = Rig(subject.landmarks, subject.pose)
    frames = [np.full((478, 3), np.nan),
              rig.targets(channel_values(smile_l=0.7, smile_r=0.7, blink_l=0.6)),
              rig.targets(channel_values(jaw_open=0.6)),
              rig.targets(channel_values()),
              rig.targets(channel_values(brow_l=0.8, brow_r=0.8, head_yaw=20))]
    return np.stack(frames)


def test_retarget_scales_channel_groups_about_their_defaults():
    names = ("head_yaw", "blink_l", "brow_l", "jaw_open", "smile_r")
    motion = Motion(30, names, np.array([[20.0, 0.5, 0.4, 0.6, -0.8], [40.0, 1.0, -0.6, 0.2, 0.5]], np.float32))
    scaled = retarget(motion, {"pose": 1.5, "eyes": 0.5, "mouth": 2.0})
    assert scaled.values[:, 0].tolist() == pytest.approx([30.0, 45.0])  # 60 is clamped to the yaw range
    assert scaled.values[:, 1].tolist() == pytest.approx([0.25, 0.5])
    assert scaled.values[:, 2].tolist() == pytest.approx([0.4, -0.6])  # brows untouched
    assert scaled.values[:, 3].tolist() == pytest.approx([1.0, 0.4])
    assert scaled.values[:, 4].tolist() == pytest.approx([-1.0, 1.0])
    assert scaled.fps == 30 and scaled.channels == names
    with pytest.raises(EnlivenError, match="Unknown channel group 'teeth'"):
        retarget(motion, {"teeth": 1.0})


def test_strength_arguments():
    assert parse_strengths(["pose=0.5", "mouth=1.2"]) == {"pose": 0.5, "mouth": 1.2}
    assert parse_strengths(None) == {}
    with pytest.raises(EnlivenError, match="GROUP=FACTOR"):
        parse_strengths(["mouth"])
    with pytest.raises(EnlivenError, match="groups are: pose, eyes, brows, mouth"):
        parse_strengths(["lips=1"])
    with pytest.raises(EnlivenError, match=">= 0"):
        parse_strengths(["eyes=-1"])


# ---------------------------------------------------------------- helpers


def _run_capture_command(argv: list[str]) -> tuple[int, str]:
    """Parse and run `capture` through add_commands, in this process, as cli.py will."""
    import contextlib
    import io

    parser = argparse.ArgumentParser(prog="enliven")
    add_commands(parser.add_subparsers())
    args = parser.parse_args(["capture", *argv])
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        code = args.func(args)
    return code, printed.getvalue()


def test_lips_that_touch_in_the_video_are_pressed_shut(subject):
    """Against a reference whose mouth is open (the astronaut's smile), a frame whose lips touch is fitted
    with negative jaw_open, then pressed to -1: no sliver of teeth left between just-touching lip lines."""
    from enliven.capture import press_touching_lips, solve_landmarks
    from enliven.rig import SEAL_PRESS, Rig

    rig = Rig(subject.landmarks, subject.pose)
    touching = rig.targets(channel_values(jaw_open=-1.0 / (1.0 + 2.0 * SEAL_PRESS)))
    half_open = rig.targets(channel_values(jaw_open=-0.5))
    landmarks = np.stack([subject.landmarks, touching, half_open])
    raw, _ = solve_landmarks(landmarks, reference=0)
    jaw = CHANNEL_NAMES.index("jaw_open")
    assert raw[1, jaw] == pytest.approx(-0.86, abs=0.03)
    pressed = press_touching_lips(raw, landmarks)
    assert pressed[1, jaw] == pytest.approx(-1.0, abs=0.01)
    assert pressed[2, jaw] == pytest.approx(raw[2, jaw]) and pressed[0, jaw] == pytest.approx(raw[0, jaw])


def test_touching_lips_are_not_parted_again_by_lips_part(subject):
    """A frame whose lips touch is pressed shut: a little lips_part the fit found beside the closing jaw
    would part them again, so it goes to 0 there (and stays where the lips are apart)."""
    from enliven.capture import press_touching_lips
    from enliven.rig import SEAL_PRESS, Rig

    rig = Rig(subject.landmarks, subject.pose)
    touching = rig.targets(channel_values(jaw_open=-1.0 / (1.0 + 2.0 * SEAL_PRESS)))
    half_open = rig.targets(channel_values(jaw_open=-0.5))
    landmarks = np.stack([subject.landmarks, touching, half_open])
    raw = np.zeros((3, len(CHANNEL_NAMES)))
    raw[:, CHANNEL_INDEX["jaw_open"]] = (0.0, -0.86, -0.5)
    raw[:, CHANNEL_INDEX["lips_part"]] = 0.2
    pressed = press_touching_lips(raw, landmarks)
    assert pressed[1, CHANNEL_INDEX["lips_part"]] == pytest.approx(0.0, abs=1e-6)
    assert pressed[[0, 2], CHANNEL_INDEX["lips_part"]] == pytest.approx([0.2, 0.2])


def test_speech_jaw_counts_the_lips_own_parting_as_jaw(subject):
    """Lip-sync opens mouths with jaw_open alone: a captured take whose lips part by lips_part reads, for
    lip-sync, as the jaw that parts them as far; one whose lips close (the astronaut's smile is open, so
    jaw_open below 0 closes it) as the jaw that closes them as far."""
    from enliven.rig import Rig

    rig = Rig(subject.landmarks, subject.pose)
    frames = [channel_values(), channel_values(lips_part=0.8), channel_values(jaw_open=0.4),
              channel_values(jaw_open=0.2, lips_part=0.5), channel_values(jaw_open=-0.4),
              channel_values(jaw_open=-0.5, lips_part=0.2)]
    landmarks = np.stack([rig.targets(values) for values in frames])
    capture = motion_from_landmarks(landmarks, fps=24, reference="first", smoothing=None)
    mouth = rig.mouth_opening()
    assert mouth.closes > 0.05  # an open photo: closing is a rate of its own
    expected = [mouth.jaw_for(lm.signed_lip_gap(points) / mouth.opens) for points in landmarks]
    speech_jaw = capture.speech_jaw()
    assert speech_jaw == pytest.approx(np.array(expected, float), abs=0.03)
    assert speech_jaw[1] > 0.3  # the lips' own parting, which jaw_open alone misses
    assert speech_jaw[5] < 0  # closing more than the lips' parting opens
