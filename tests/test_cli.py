"""The `enliven` command line, run as a real process: outputs and error paths."""
from __future__ import annotations

import json
import os
import subprocess

import cv2
import numpy as np
import pytest
from PIL import Image

from enliven.analysis import ASTRONAUT_PATH
from enliven.shared.motion import Motion, save_motion
from enliven.shared.presets import preset_motion

from conftest import run_enliven, small_disk, write_rgb
from hostile_motion import HOSTILE_MOTION_FILES, motion_json


def test_analyze_json_and_overlay(astronaut_path, tmp_path):
    overlay = tmp_path / "overlay.png"
    result = run_enliven("analyze", astronaut_path, "--json", "--overlay", overlay)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["face_found"] is True and report["faces_found"] == 1
    assert set(report["head_pose_deg"]) == {"yaw", "pitch", "roll"}
    assert report["eye_openness"]["left"] > 0.2
    assert cv2.imread(str(overlay)).shape == (512, 512, 3)


def test_generate_preset_writes_sequence_video_and_sheet(astronaut_path, tmp_path):
    out = tmp_path / "frames"
    result = run_enliven("generate", astronaut_path, "--preset", "blink", "--fps", "12", "--out", out,
                         "--video", tmp_path / "blink.mp4", "--contact-sheet", tmp_path / "sheet.png")
    assert result.returncode == 0, result.stderr
    frames = sorted(out.glob("frame_*.png"))
    count = preset_motion("blink", fps=12).frame_count
    assert count >= 6
    assert [f.name for f in frames] == [f"frame_{i:05d}.png" for i in range(1, count + 1)]
    middle = cv2.imread(str(frames[2]))
    assert middle.shape == (512, 512, 3)
    assert not np.array_equal(middle, cv2.imread(str(frames[0])))  # the eyes closed
    assert (tmp_path / "blink.mp4").stat().st_size > 1000
    assert cv2.imread(str(tmp_path / "sheet.png")) is not None
    assert not list(out.glob("*.part"))


def test_generate_with_size_and_motion_file(astronaut_path, tmp_path):
    motion = Motion(fps=10, channels=("jaw_open",), values=np.array([[0.0], [0.8]], np.float32))
    save_motion(motion, tmp_path / "m.csv")
    result = run_enliven("generate", astronaut_path, "--motion", tmp_path / "m.csv", "--size", "256", "--out", tmp_path / "o")
    assert result.returncode == 0, result.stderr
    assert cv2.imread(str(tmp_path / "o" / "frame_00002.png")).shape == (256, 256, 3)


def test_presets_lists_the_required_motions():
    result = run_enliven("presets")
    assert result.returncode == 0
    for name in ("blink", "look-around", "nod", "shake", "smile", "talk", "idle-alive"):
        assert name in result.stdout
    (idle,) = [line for line in result.stdout.splitlines() if line.startswith("idle-alive")]
    assert " loop " in idle  # marked as loopable, unlike the gestures
    (nod,) = [line for line in result.stdout.splitlines() if line.startswith("nod")]
    assert " loop " not in nod


def test_generate_loop_leaves_out_the_frame_that_repeats_the_first(astronaut_path, tmp_path):
    out = tmp_path / "loop"
    result = run_enliven("generate", astronaut_path, "--preset", "idle-alive", "--loop", "--duration", "0.5",
                         "--fps", "8", "--size", "128", "--out", out)
    assert result.returncode == 0, result.stderr
    assert len(list(out.glob("frame_*.png"))) == 4  # 0.5 s at 8 fps: frames 0..3; frame 4 would be frame 0
    refused = run_enliven("generate", astronaut_path, "--motion", tmp_path / "m.csv", "--loop", "--out", out)
    assert refused.returncode == 2 and "--loop makes a preset loop" in refused.stderr


def test_no_face_exit_code_and_message(tmp_path):
    blank = write_rgb(tmp_path / "wall.png", np.full((300, 300, 3), 180, np.uint8))
    result = run_enliven("analyze", blank)
    assert result.returncode == 3
    assert "No face found" in result.stderr and "Traceback" not in result.stderr
    # generate, into folders that do not exist yet: it fails the same way and leaves no empty folders behind
    (tmp_path / "shots").mkdir()
    result = run_enliven("generate", blank, "--preset", "blink", "--out", tmp_path / "shots" / "take1" / "frames")
    assert result.returncode == 3 and "No face found" in result.stderr
    assert list((tmp_path / "shots").iterdir()) == []


def test_generate_animates_the_face_analyze_describes_when_face_0_has_no_landmarks(astronaut, tmp_path):
    """A soft, grainy old photo: its largest face is detected but its landmarks are not found. `analyze`
    described face 1, while `generate` without --face insisted on face 0 and failed (exit 3)."""
    canvas = np.full((512, 900, 3), 200, np.uint8)
    soft = cv2.GaussianBlur(astronaut, (0, 0), 3).astype(np.float32) + np.random.default_rng(0).normal(0, 30, astronaut.shape)
    canvas[:, :512] = np.clip(soft, 0, 255).astype(np.uint8)
    canvas[100:400, 560:860] = cv2.resize(astronaut, (300, 300), interpolation=cv2.INTER_AREA)
    photo = write_rgb(tmp_path / "old.png", canvas)
    described = json.loads(run_enliven("analyze", photo, "--json").stdout)
    result = run_enliven("generate", photo, "--preset", "blink", "--out", tmp_path / "frames")
    assert result.returncode == 0, result.stderr
    assert f"using face {described['face_index']}" in result.stderr and described["face_index"] == 1
    named = run_enliven("generate", photo, "--face", "0", "--preset", "blink", "--out", tmp_path / "named")
    assert named.returncode == 3 and "landmarks could not be found (face 0)" in named.stderr


@pytest.mark.parametrize("content, expected", [
    (b"not an image at all", "not an image"),
    (b"", "not an image"),  # (0-3 bytes: a traceback from Pillow's BMP test, exit 1)
    (b"ab", "not an image"),
    ("truncated", "truncated"),
    ("header damaged", "starts as a PNG file but is damaged"),
])
def test_unreadable_images(astronaut_path, tmp_path, content, expected):
    path = tmp_path / "bad.png"
    photo = astronaut_path.read_bytes()
    if content == "truncated":
        content = photo[:30000]
    elif content == "header damaged":  # the PNG signature, then its header chunk's bytes overwritten
        content = photo[:8] + bytes(24) + photo[32:]
    path.write_bytes(content)
    result = run_enliven("analyze", path)
    assert result.returncode == 4
    assert expected in result.stderr and "Traceback" not in result.stderr


def test_a_floating_point_grey_photo_of_0_to_1_reads_as_the_picture(astronaut, tmp_path):
    """A 32-bit float greyscale TIFF holding 0..1 was clipped to all but black: "No face found" (exit 3)."""
    from enliven.images import load_image

    grey = astronaut.astype(np.float32) @ np.float32([0.299, 0.587, 0.114])
    Image.fromarray(grey / 255, mode="F").save(tmp_path / "unit.tif")
    Image.fromarray(grey, mode="F").save(tmp_path / "levels.tif")
    unit, levels = load_image(tmp_path / "unit.tif"), load_image(tmp_path / "levels.tif")
    assert np.abs(unit.astype(int) - levels).max() <= 1 and abs(unit.mean() - grey.mean()) < 1
    lit = grey / 255  # with highlights past 1 (a bright window, 1 % of it) and a hot pixel, still 0..1
    lit[:5, :] = 4.0
    lit[10, 10] = np.inf
    Image.fromarray(lit, mode="F").save(tmp_path / "lit.tif")
    assert abs(load_image(tmp_path / "lit.tif")[10:].mean() - grey[10:].mean()) < 2
    assert run_enliven("analyze", tmp_path / "unit.tif").returncode == 0


@pytest.mark.parametrize("command, address", [
    (("generate", "PHOTO", "--preset", "blink", "--out", "OUT", "--server"), "garbage"),
    (("generate", "PHOTO", "--preset", "blink", "--out", "OUT", "--server"), "tcp://127.0.0.1:abc"),
    (("generate", "PHOTO", "--preset", "blink", "--out", "OUT", "--server"), "udp://127.0.0.1:5593"),
    (("serve", "--bind"), "tcp://127.0.0.1:99999"),
])
def test_a_malformed_server_address_is_a_usage_error(astronaut_path, tmp_path, command, address):
    """A bad --server was a pyzmq traceback (exit 1); a --bind port past 65535 served quietly on another port
    (99999 on 34463), where no client would look for it."""
    arguments = [{"PHOTO": astronaut_path, "OUT": tmp_path / "frames"}.get(part, part) for part in command]
    result = run_enliven(*arguments, address)
    assert result.returncode == 2, result.stderr
    assert address in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "frames").exists()


def test_image_over_the_size_limit(astronaut_path):
    result = run_enliven("analyze", astronaut_path, "--max-pixels", "0.1")
    assert result.returncode == 4
    assert "over the limit" in result.stderr


def test_a_photo_over_pillows_own_limit_is_read_when_max_pixels_allows_it(tmp_path):
    """--max-pixels raises the limit past Pillow's fixed 89 MP (a 100 MP scan)."""
    from PIL import Image

    path = tmp_path / "scan.png"
    Image.new("RGB", (10000, 10000), (120, 100, 90)).save(path)  # a blank, deflated to a small file
    refused = run_enliven("analyze", path)
    assert refused.returncode == 4 and "raise the limit with --max-pixels" in refused.stderr
    read = run_enliven("analyze", path, "--max-pixels", "101")
    assert read.returncode == 3, read.stderr  # decoded and searched: no face on a blank
    assert "No face found" in read.stderr and "Traceback" not in read.stderr


@pytest.mark.parametrize("arguments", [
    ["--max-pixels", "-5"], ["--max-pixels", "nan"], ["--max-pixels", "0"],
    ["--size", "12000"], ["--size", "10"], ["--engine", "bogus"],
    ["--video", "x.gif"], ["--video", "x.webm"],  # (a GIF was a traceback, a WebM a broken pipe after 3 frames)
])
def test_bad_photo_and_engine_arguments_are_usage_errors(astronaut_path, tmp_path, arguments):
    result = run_enliven("generate", astronaut_path, "--preset", "blink", *arguments, "--out", tmp_path / "o")
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr and not (tmp_path / "o").exists()


def test_a_rerun_into_the_same_folder_leaves_one_sequence_that_others_can_read(astronaut_path, tmp_path):
    """A shorter run into a folder a longer one filled: the old frames past its end go (an image-sequence
    reader would play them after the new ones), and every frame has the umask's permissions (not owner-only)."""
    out = tmp_path / "shot"
    assert run_enliven("generate", astronaut_path, "--preset", "nod", "--fps", "12", "--out", out).returncode == 0
    longer = len(list(out.glob("frame_*.png")))
    kept = {"frame_00099.exr": b"another format: not this sequence's", "notes.txt": b"mine",
            "frame_01001.png": b"an offset sequence: past a gap in the numbers"}
    for name, content in kept.items():
        (out / name).write_bytes(content)
    old_umask = os.umask(0o027)
    try:
        result = run_enliven("generate", astronaut_path, "--preset", "blink", "--fps", "12", "--out", out)
    finally:
        os.umask(old_umask)
    assert result.returncode == 0, result.stderr
    count = preset_motion("blink", fps=12).frame_count
    assert count < longer
    assert sorted(f.name for f in out.glob("frame_0000*.png")) == [f"frame_{i:05d}.png" for i in range(1, count + 1)]
    assert not any(out.glob("frame_000[1-9]*.png")), "the earlier run's frames past the new last one are gone"
    assert f"removed {longer - count} frame(s)" in result.stderr
    # on a line of its own, after the progress bar's last (it was printed through the bar)
    assert result.stderr.rstrip().splitlines()[-1].startswith(f"enliven: removed {longer - count} frame(s)")
    assert all((out / name).read_bytes() == content for name, content in kept.items())
    made = [out / f"frame_{i:05d}.png" for i in range(1, count + 1)]
    assert {oct(path.stat().st_mode & 0o777) for path in made} == {oct(0o640)}


def test_a_frame_that_cannot_be_written_is_named_in_one_line(astronaut_path, tmp_path):
    out = tmp_path / "frames"
    (out / "frame_00001.png").mkdir(parents=True)  # a folder where the first frame goes
    result = run_enliven("generate", astronaut_path, "--preset", "blink", "--out", out)
    assert result.returncode == 1
    (line,) = [line for line in result.stderr.splitlines() if line.startswith("enliven")]  # (and the progress bar)
    assert line == f"enliven: error: Is a directory: '{out / 'frame_00001.png'}'"
    assert not list(out.glob(".*.part"))


def test_an_icon_file_is_refused_before_its_picture_is_decoded(tmp_path):
    """An .ico holds a PNG that Pillow decodes while opening the file, at whatever size the PNG has, before a
    size limit can look: a small file could cost gigabytes (the server reads photos the same way)."""
    import io
    import struct

    from PIL import Image

    inner = io.BytesIO()
    Image.new("1", (12000, 12000)).save(inner, "PNG")  # 144 MP of black, deflated to a few hundred KB
    png = inner.getvalue()
    icon = tmp_path / "icon.ico"
    icon.write_bytes(struct.pack("<HHH", 0, 1, 1) + struct.pack("<BBBBHHII", 0, 0, 0, 0, 1, 32, len(png), 22) + png)
    result = run_enliven("analyze", icon)
    assert result.returncode == 4, result.stderr
    assert "not an image format we can read" in result.stderr and "Traceback" not in result.stderr


def test_an_output_folder_that_is_a_file_is_refused_before_any_work(astronaut_path, tmp_path):
    blocker = tmp_path / "taken"
    blocker.write_text("a file")
    for command in (["generate", astronaut_path, "--preset", "blink", "--out", blocker],
                    ["generate", astronaut_path, "--preset", "talk", "--out", blocker / "frames"],
                    ["generate", astronaut_path, "--preset", "blink", "--out", tmp_path / "o",
                     "--video", blocker / "v.mp4"],
                    ["talk", astronaut_path, "--text", "Hello.", "--out", blocker / "hello.mp4"],
                    ["capture", tmp_path / "acting.mp4", "--out", blocker / "motion.json"]):
        result = run_enliven(*command)
        assert result.returncode == 2, result.stderr
        (line,) = result.stderr.splitlines()
        assert line.startswith("enliven: error: ") and f"'{blocker}' is a file" in line
    assert blocker.read_text() == "a file"


def test_an_output_file_that_is_one_of_the_inputs_is_refused_before_any_work(astronaut_path, tmp_path):
    """The sound recording named as the video to write (or the photo as the contact sheet) was overwritten."""
    recording = tmp_path / "take.mp4"
    recording.write_bytes(b"the actor's only take")
    photo = tmp_path / "photo.png"
    photo.write_bytes(astronaut_path.read_bytes())
    for command in (["generate", photo, "--preset", "blink", "--out", tmp_path / "o", "--video", recording,
                     "--audio", recording],
                    ["generate", photo, "--preset", "blink", "--out", tmp_path / "o", "--contact-sheet",
                     tmp_path / "." / "photo.png"],
                    ["talk", photo, "--audio", recording, "--out", recording]):
        result = run_enliven(*command)
        assert result.returncode == 2, result.stderr
        (line,) = result.stderr.splitlines()
        assert line.startswith("enliven: error: ") and "is also an input" in line
    assert recording.read_bytes() == b"the actor's only take"
    assert photo.read_bytes() == astronaut_path.read_bytes()


def test_several_faces_are_reported(astronaut, tmp_path):
    face = astronaut[30:230, 125:325]
    canvas = np.full((400, 700, 3), 200, np.uint8)
    canvas[50:350, 20:320] = cv2.resize(face, (300, 300))
    canvas[100:300, 450:650] = face
    path = write_rgb(tmp_path / "two.png", canvas)
    result = run_enliven("analyze", path, "--json")
    assert result.returncode == 0
    assert "2 faces found" in result.stderr and "--face" in result.stderr
    result = run_enliven("analyze", path, "--face", "5")
    assert result.returncode == 3


def test_motion_with_unknown_channel(astronaut_path, tmp_path):
    (tmp_path / "m.json").write_text(json.dumps({"format": "enliven-motion", "version": 1, "fps": 24,
                                                 "channels": ["jaw_opn"], "frames": [[0.5]]}))
    result = run_enliven("generate", astronaut_path, "--motion", tmp_path / "m.json", "--out", tmp_path / "o")
    assert result.returncode == 5
    assert "jaw_opn" in result.stderr and "jaw_open" in result.stderr


def test_nan_and_out_of_range_are_clamped_or_refused(astronaut_path, tmp_path):
    motion = Motion(fps=24, channels=("jaw_open", "head_yaw"),
                    values=np.array([[np.nan, 0.0], [2.5, 90.0]], np.float32))
    save_motion(motion, tmp_path / "m.json")
    lenient = run_enliven("generate", astronaut_path, "--motion", tmp_path / "m.json", "--out", tmp_path / "o")
    assert lenient.returncode == 0, lenient.stderr
    assert "warning" in lenient.stderr and "clamped" in lenient.stderr
    assert (tmp_path / "o" / "frame_00002.png").exists()
    strict = run_enliven("generate", astronaut_path, "--motion", tmp_path / "m.json", "--out", tmp_path / "s", "--strict")
    assert strict.returncode == 5
    assert not (tmp_path / "s" / "frame_00001.png").exists()


def test_generate_on_a_server_without_engine_runs_the_server_s_default_engine(astronaut_path, tmp_path):
    """`enliven serve --engine refine` runs the refine engine for requests that name none; the command line sent
    "warp" unless told otherwise, so its frames were the warp engine's (found by an exploratory pass)."""
    from service_helpers import ServerProcess

    blink = ["--preset", "blink", "--duration", "0.5", "--fps", "8"]
    for engine in ("warp", "refine"):
        local = run_enliven("generate", astronaut_path, *blink, "--engine", engine, "--out", tmp_path / engine)
        assert local.returncode == 0, local.stderr
    with ServerProcess("--engine", "refine") as server:
        remote = run_enliven("generate", astronaut_path, *blink, "--out", tmp_path / "remote", "--server", server.address)
        assert remote.returncode == 0, remote.stderr + server.log()
    frames = {name: [cv2.imread(str(path)) for path in sorted((tmp_path / name).glob("frame_*.png"))]
              for name in ("warp", "refine", "remote")}
    assert len(frames["remote"]) == len(frames["refine"]) == 5
    assert all(np.array_equal(a, b) for a, b in zip(frames["remote"], frames["refine"]))
    assert not all(np.array_equal(a, b) for a, b in zip(frames["remote"], frames["warp"]))


def test_generate_on_a_running_server_matches_a_local_run(astronaut_path, tmp_path):
    from service_helpers import ServerProcess

    # Talk: its speech is fitted to the photo's lips, by the server's analysis of them on a server.
    preset = ["--preset", "talk", "--duration", "1", "--fps", "8"]
    local = run_enliven("generate", astronaut_path, *preset, "--out", tmp_path / "local")
    assert local.returncode == 0, local.stderr
    with ServerProcess() as server:
        remote = run_enliven("generate", astronaut_path, *preset, "--out", tmp_path / "remote",
                             "--contact-sheet", tmp_path / "sheet.png", "--server", server.address)
        assert remote.returncode == 0, remote.stderr + server.log()
        no_face = write_rgb(tmp_path / "wall.png", np.full((300, 300, 3), 180, np.uint8))
        refused = run_enliven("generate", no_face, "--preset", "blink", "--out", tmp_path / "x", "--server", server.address)
        assert refused.returncode == 3 and "No face" in refused.stderr
        # A photo format the protocol does not carry (TIFF, WebP, GIF) is sent as a PNG: the server refused it.
        tiff = tmp_path / "astronaut.tiff"
        Image.open(astronaut_path).save(tiff)
        blink = ["--preset", "blink", "--duration", "0.5", "--fps", "8"]
        from_tiff = run_enliven("generate", tiff, *blink, "--out", tmp_path / "tiff", "--server", server.address)
        assert from_tiff.returncode == 0, from_tiff.stderr
        # --max-pixels holds for a photo sent as it is, too (it was not applied), and says its limit: 0.1 MP
        too_large = run_enliven("generate", astronaut_path, *blink, "--out", tmp_path / "big", "--max-pixels", "0.1",
                                "--server", server.address)
        assert too_large.returncode == 4 and "and 0.1 MP" in too_large.stderr, too_large.stderr
    local_blink = run_enliven("generate", astronaut_path, *blink, "--out", tmp_path / "png")
    assert local_blink.returncode == 0, local_blink.stderr
    tiff_frames, png_frames = (sorted((tmp_path / name).glob("frame_*.png")) for name in ("tiff", "png"))
    assert len(tiff_frames) == len(png_frames) == 5  # 0.5 s at 8 fps, and its last frame
    assert all(np.array_equal(cv2.imread(str(a)), cv2.imread(str(b))) for a, b in zip(tiff_frames, png_frames))
    local_frames = sorted((tmp_path / "local").glob("frame_*.png"))
    remote_frames = sorted((tmp_path / "remote").glob("frame_*.png"))
    assert [f.name for f in remote_frames] == [f.name for f in local_frames]
    for a, b in zip(local_frames, remote_frames):
        assert np.array_equal(cv2.imread(str(a)), cv2.imread(str(b)))
    assert cv2.imread(str(tmp_path / "sheet.png")) is not None


def test_generate_with_no_server_listening_fails_quickly(astronaut_path, tmp_path):
    result = run_enliven("generate", astronaut_path, "--preset", "blink", "--out", tmp_path / "o",
                         "--server", "tcp://127.0.0.1:9")
    assert result.returncode != 0
    assert "Traceback" not in result.stderr and "tcp://127.0.0.1:9" in result.stderr


@pytest.mark.parametrize("name, text, complaint", HOSTILE_MOTION_FILES)
def test_hostile_motion_files_exit_5_with_one_line(astronaut_path, tmp_path, name, text, complaint):
    path = tmp_path / name
    path.write_text(text)
    result = run_enliven("generate", astronaut_path, "--motion", path, "--out", tmp_path / "o")
    assert result.returncode == 5, result.stderr
    (line,) = result.stderr.splitlines()  # one line, no traceback
    assert line.startswith(f"enliven: error: {path}: ") and complaint in line
    assert not (tmp_path / "o").exists()


def test_huge_finite_values_close_the_eye_like_any_value_above_the_range(astronaut_path, tmp_path):
    path = tmp_path / "huge.json"
    path.write_text(motion_json("[0], [1], [1e30], [1e308]"))
    result = run_enliven("generate", astronaut_path, "--motion", path, "--size", "128", "--out", tmp_path / "o")
    assert result.returncode == 0, result.stderr
    assert "blink_l: 2 frames above 1" in result.stderr and "non-finite" not in result.stderr
    assert "RuntimeWarning" not in result.stderr
    frames = [cv2.imread(str(tmp_path / "o" / f"frame_{i:05d}.png")) for i in range(1, 5)]
    assert not np.array_equal(frames[0], frames[1])  # the eye closes at 1 ...
    assert np.array_equal(frames[1], frames[2]) and np.array_equal(frames[1], frames[3])  # ... and at 1e30 and 1e308
    strict = run_enliven("generate", astronaut_path, "--motion", path, "--strict", "--out", tmp_path / "s")
    assert strict.returncode == 5 and "blink_l: 2 frames above 1" in strict.stderr


@pytest.mark.parametrize("arguments, complaint", [
    (["--preset", "blnk"], "unknown preset 'blnk' (did you mean 'blink'?)"),
    (["--preset", "blink", "--seed", "-1"], "--seed must be 0 or more"),
    (["--preset", "blink", "--duration", "-2"], "preset duration must be a positive number"),
    # These three ran for ever (or, --fps 0, quietly at 24 fps): more frames than a motion may have.
    (["--preset", "talk", "--duration", "1e308"], "preset duration 1e+308 s at 24 fps is more than the 500000 frames"),
    (["--preset", "talk", "--duration", "1e9"], "(at most 20833.3 s at that rate)"),
    (["--preset", "talk", "--duration", "1000", "--fps", "1e308"],
     "--fps must be above 0 and at most 1000, got 1e+308"),
    (["--preset", "blink", "--fps", "0"], "--fps must be above 0 and at most 1000, got 0"),
    (["--preset", "blink", "--fps", "nan"], "--fps must be above 0 and at most 1000, got nan"),
    (["--preset", "nod", "--loop"], "preset 'nod' cannot loop; presets that can: idle-alive"),
    (["--preset", "idle-alive", "--loop", "--duration", "0.05"], "a loop needs at least 2 frames"),
    # A speaking preset is fitted to the lips of the server's analysis: the mistake is refused before that
    # (nobody listens at that address), for one face and for several.
    (["--preset", "talk", "--seed", "-1", "--server", "tcp://127.0.0.1:9"], "--seed must be 0 or more"),
    (["--preset", "talk", "--seed", "-1", "--face", "0,1", "--server", "tcp://127.0.0.1:9"], "--seed must be 0"),
])
def test_bad_preset_arguments_are_usage_errors(astronaut_path, tmp_path, arguments, complaint):
    # Exit 2 as docs/cli.md's exit code table says, the same as argparse gives for a bad argument.
    result = run_enliven("generate", astronaut_path, *arguments, "--out", tmp_path / "o")
    assert result.returncode == 2, result.stderr
    (line,) = result.stderr.splitlines()
    assert line.startswith("enliven: error: ") and complaint in line


def test_absurd_fps_for_a_motion_file_is_a_usage_error_not_a_bad_file(astronaut_path, tmp_path):
    path = tmp_path / "blink.csv"
    path.write_text("blink_l\n0\n1\n0\n")
    result = run_enliven("generate", astronaut_path, "--motion", path, "--fps", "5000", "--out", tmp_path / "o")
    assert result.returncode == 2, result.stderr  # the argument is wrong, not the file (exit 5)
    (line,) = result.stderr.splitlines()
    assert line == "enliven: error: --fps must be above 0 and at most 1000, got 5000"


def test_an_install_where_no_cache_can_be_written_still_generates(astronaut_path, tmp_path):
    # A read-only install run by a user whose cache folder cannot be written either (a container image, a
    # render farm): Numba found nowhere to cache the warp engine's compiled loops and refused to import it,
    # so every command failed. The package is copied as pip installs it, with `__pycache__` made a file (so
    # no folder can be made there, whoever runs the test) and the user's cache folder under a file too.
    import shutil
    import sys
    from pathlib import Path

    import enliven
    import enliven.shared

    install = tmp_path / "site"
    ignore = shutil.ignore_patterns("__pycache__")
    shutil.copytree(Path(enliven.__file__).parent, install / "enliven", ignore=ignore)
    shutil.rmtree(install / "enliven" / "shared", ignore_errors=True)
    shutil.copytree(Path(enliven.shared.__file__).parent, install / "enliven" / "shared", ignore=ignore)
    (install / "enliven" / "engines" / "__pycache__").write_text("not a folder")
    (tmp_path / "cache").write_text("not a folder")
    env = {name: value for name, value in os.environ.items() if not name.startswith("NUMBA_")}
    env.update(PYTHONPATH=str(install), XDG_CACHE_HOME=str(tmp_path / "cache" / "numba"), HOME=str(tmp_path / "cache"))
    motion = Motion(fps=10, channels=("jaw_open",), values=np.array([[0.0], [0.8]], np.float32))
    save_motion(motion, tmp_path / "m.csv")
    result = subprocess.run([sys.executable, "-c", "import enliven, sys; print(enliven.__file__, file=sys.stderr); "
                             "from enliven.cli import main; sys.exit(main())", "generate", str(astronaut_path),
                             "--motion", str(tmp_path / "m.csv"), "--size", "256", "--out", str(tmp_path / "o")],
                            capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    assert result.returncode == 0, result.stderr
    assert str(install) in result.stderr  # (the copy ran, not the checkout)
    assert "NUMBA_CACHE_DIR" in result.stderr  # said once how to keep the compiled loops
    frames = [cv2.imread(str(tmp_path / "o" / f"frame_{n:05d}.png")) for n in (1, 2)]
    assert np.abs(frames[1].astype(int) - frames[0]).max() > 30  # the mouth opened: the warp engine ran


def test_talk_on_a_photo_with_parted_lips_brings_them_together_between_syllables(astronaut_path, subject, tmp_path):
    """The astronaut smiles with her lips apart, teeth showing. The talk preset's speech is fitted to her lips,
    as lip-sync's is: they meet between syllables and part on the vowels, instead of only opening further
    from the photo's own gap (the mouth of a photo that never closes)."""
    from enliven import landmarks as lm
    from enliven.analysis import analyze_image
    from enliven.images import load_image

    out = tmp_path / "talk"
    result = run_enliven("generate", astronaut_path, "--preset", "talk", "--duration", "1.5", "--out", out)
    assert result.returncode == 0, result.stderr
    frames = sorted(out.glob("frame_*.png"))
    gaps = np.array([lm.mouth_openness(analyze_image(load_image(frame)).landmarks) for frame in frames[::2]])
    photo = subject.mouth_openness
    assert abs(gaps[0] - photo) < 0.02  # it starts at the photo's own mouth
    assert gaps.min() < 0.5 * photo  # the lips come (nearly) together
    assert np.count_nonzero((gaps[1:] < 0.5 * photo) & (gaps[:-1] >= 0.5 * photo)) >= 2  # again and again


def test_a_server_that_gives_no_lips_leaves_the_speech_unfitted_and_says_so(capsys):
    """A server older than the lips in its analysis (or one sending something else there): the faces it gives
    lips for are fitted, the others play the preset as keyed, with one warning."""
    from enliven.generate_faces import server_mouths
    from enliven.shared.mouth import MouthOpening

    lips = {"gap": 0.7, "opens": 0.43, "closes": 0.74}
    assert server_mouths({0: {"mouth": lips}, 2: {"mouth": lips}}) == {face: MouthOpening(**lips) for face in (0, 2)}
    assert "warning" not in capsys.readouterr().err
    assert server_mouths({0: {"mouth": lips}, 1: {}, 2: {"mouth": {"gap": "?"}}}) == {0: MouthOpening(**lips)}
    assert capsys.readouterr().err.count("enliven: warning: the server does not say where the photo's lips are") == 1


@pytest.mark.parametrize("disk, motion", [
    ("size=40k", ["--preset", "idle-alive", "--duration", "4"]),  # full while frames stream in
    ("size=4k", ["--preset", "blink", "--size", "128"]),  # full only as ffmpeg finishes the file
])
def test_a_video_on_a_full_disk_is_reported_as_such_and_removed(astronaut_path, tmp_path, disk, motion):
    # ffmpeg stops on a full disk, and imageio reports a broken pipe (with ffmpeg's whole command line), or
    # nothing (the streams of an empty file): the run now says the disk is full, in one line, and leaves no
    # partial video (found by an exploratory pass).
    with small_disk(tmp_path / "full", disk) as full:
        result = run_enliven("generate", astronaut_path, *motion, "--out", tmp_path / "o", "--video", full / "v.mp4")
        assert result.returncode == 1, result.stderr
        assert result.stderr.strip().splitlines()[-1] == f"enliven: error: ffmpeg could not write {full / 'v.mp4'}: " \
                                                         "no space left on the disk"
        assert not list(full.iterdir())
        assert (tmp_path / "o" / "frame_00001.png").exists()  # frames already written stay written


def test_an_output_that_cannot_be_written_is_refused_before_any_work(astronaut_path, tmp_path):
    # Both failed only after the whole render (found by an exploratory pass): a video named as a folder, and a
    # contact sheet on a read-only disk.
    (tmp_path / "folder.mp4").mkdir()
    result = run_enliven("generate", astronaut_path, "--preset", "blink", "--out", tmp_path / "o",
                         "--video", tmp_path / "folder.mp4")
    assert result.returncode == 2 and "is a folder; name a file to write" in result.stderr, result.stderr
    assert not (tmp_path / "o").exists()
    with small_disk(tmp_path / "read_only", "ro,size=16k") as read_only:
        result = run_enliven("generate", astronaut_path, "--preset", "blink", "--out", tmp_path / "o",
                             "--contact-sheet", read_only / "sheet.png")
        assert result.returncode == 2 and f"'{read_only}' cannot be written in" in result.stderr, result.stderr
        assert not (tmp_path / "o").exists()
    # A system folder that permissions call writable (for root, or anyone: /proc): the video failed after the
    # whole render, said to be a full disk.
    if os.access("/proc", os.W_OK):
        result = run_enliven("generate", astronaut_path, "--preset", "blink", "--out", tmp_path / "o",
                             "--video", "/proc/v.mp4")
        assert result.returncode == 2 and "'/proc' cannot be written in" in result.stderr, result.stderr
        assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("option, value, message", [
    ("--duration", "3", "--duration is a preset's"), ("--seed", "4", "--seed is a preset's"),
    ("--audio-offset", "0.5", "--audio-offset moves the --audio sound"),
])
def test_options_that_would_change_nothing_are_refused(astronaut_path, tmp_path, option, value, message):
    # A preset's --duration and --seed with a motion file, and --audio-offset without --audio, were ignored
    # silently (found by an exploratory pass), where --loop with a motion file was refused.
    save_motion(preset_motion("blink"), tmp_path / "m.json")
    result = run_enliven("generate", astronaut_path, "--motion", tmp_path / "m.json", option, value,
                         "--out", tmp_path / "o")
    assert result.returncode == 2 and message in result.stderr, result.stderr
    assert not (tmp_path / "o").exists()


def test_fps_replacing_a_motion_file_s_own_rate_says_so(astronaut_path, tmp_path):
    # (It changed the speed silently: a voice from `say` put to it with --audio ran out of step; found by a
    # docs pass.)
    save_motion(preset_motion("blink", fps=24), tmp_path / "m.json")
    result = run_enliven("generate", astronaut_path, "--motion", tmp_path / "m.json", "--fps", "30", "--size", "64",
                         "--out", tmp_path / "o")
    assert result.returncode == 0, result.stderr
    assert "--fps 30 replaces" in result.stderr and "own 24 fps" in result.stderr and "1.25 times as fast" in result.stderr
    same = run_enliven("generate", astronaut_path, "--motion", tmp_path / "m.json", "--fps", "24", "--size", "64",
                       "--out", tmp_path / "p")
    assert same.returncode == 0 and "replaces" not in same.stderr


@pytest.mark.parametrize("keys, message", [
    (["--server-key", "KEY"], "--server-key and --client-key go together"),
    (["--client-key", "KEY"], "--server-key and --client-key go together"),
    (["--server-key", "KEY", "--client-key", "KEY"], "cannot read the key"),
])
def test_server_keys_that_cannot_work_are_usage_errors(astronaut_path, tmp_path, keys, message):
    # (One key alone was a traceback; a file that is no key, exit 1 after the photo's analysis.)
    (tmp_path / "not_a.key").write_text("hello")
    keys = [str(tmp_path / "not_a.key") if key == "KEY" else key for key in keys]
    for command in (["generate", astronaut_path, "--preset", "blink", "--out", tmp_path / "o"],
                    ["talk", astronaut_path, "--text", "hi", "--out", tmp_path / "v.mp4"]):
        result = run_enliven(*command, "--server", "tcp://127.0.0.1:9", *keys)
        assert result.returncode == 2 and message in result.stderr, result.stderr
        assert "Traceback" not in result.stderr


def test_a_photo_in_the_output_folder_under_a_frame_s_name_is_not_overwritten(astronaut_path, tmp_path):
    # An earlier run's frame animated again into its own folder (it became this run's first frame; found by a
    # docs pass).
    (tmp_path / "o").mkdir()
    photo = tmp_path / "o" / "frame_00001.png"
    photo.write_bytes(open(astronaut_path, "rb").read())
    before = photo.read_bytes()
    result = run_enliven("generate", photo, "--preset", "blink", "--size", "64", "--out", tmp_path / "o")
    assert result.returncode == 2 and "under a frame's name" in result.stderr, result.stderr
    assert photo.read_bytes() == before


def test_the_hint_on_a_group_photo_offers_only_what_the_command_takes(tmp_path):
    # talk, say and capture take one face: they suggested --face 0,2 and --face all, which they refuse.
    photo = tmp_path / "two.png"
    face = cv2.imread(str(ASTRONAUT_PATH))[30:230, 125:325]
    cv2.imwrite(str(photo), np.hstack([face, np.full((200, 100, 3), 200, np.uint8), face[:, ::-1]]))
    said = run_enliven("say", "hi", "--photo", photo, "--out", tmp_path / "s")
    assert "faces found" in said.stderr and "Choose another with --face N." in said.stderr, said.stderr
    generated = run_enliven("generate", photo, "--preset", "blink", "--size", "64", "--out", tmp_path / "g")
    assert "or several with --face 0,2 or --face all" in generated.stderr, generated.stderr
    # on a line of its own, not written into the progress bar's
    assert any(line.startswith("enliven: 2 faces found") for line in generated.stderr.splitlines())


def test_an_overlay_that_cannot_be_written_is_refused_before_the_analysis(astronaut_path, tmp_path):
    # (A folder was exit 1 after the analysis; the photo itself was overwritten with the overlay.)
    folder = run_enliven("analyze", astronaut_path, "--overlay", tmp_path)
    assert folder.returncode == 2 and "is a folder" in folder.stderr, folder.stderr
    photo = tmp_path / "photo.png"
    photo.write_bytes(open(astronaut_path, "rb").read())
    itself = run_enliven("analyze", photo, "--overlay", photo)
    assert itself.returncode == 2 and "is also an input" in itself.stderr, itself.stderr
    assert photo.read_bytes() == open(astronaut_path, "rb").read()
