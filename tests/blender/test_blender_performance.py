"""Performance capture and lip-sync in Blender, through a real backend: the
operators start a backend job, the timer keys its motion on the portrait at
the chosen frames (every frame, or reduced keys within a tolerance),
lip-sync keys only the mouth and adds its sound strip at the same frame."""
from __future__ import annotations

import subprocess
import sys

import bpy
import numpy as np
import pytest

from .conftest import ADDON_MODULE, ASTRONAUT, backend_python, in_window, pump, undo_step
from .test_blender_ui import draw_all

FPS = 30
ROWS = 45


def sub(name: str):
    return sys.modules[f"{ADDON_MODULE}.{name}"]


def jaw_curve(rows: int = ROWS) -> np.ndarray:
    """A jaw that opens and closes twice, with a flat stretch: something to reduce."""
    phase = np.linspace(0.0, 1.0, rows)
    return np.round(np.clip(np.sin(4 * np.pi * phase), 0.0, 1.0) * 0.9, 4)


def write_livelink_csv(path, jaw: np.ndarray) -> None:
    lines = ["Timecode,BlendShapeCount,JawOpen,EyeBlinkLeft,HeadYaw"]
    for row, value in enumerate(jaw):
        lines.append(f"10:00:{row // FPS:02d}:{row % FPS:02d}.000,3,{value:.4f},0.0,0.0")
    path.write_text("\n".join(lines) + "\n")


def fcurve(obj, channel: str):
    return sub("compat").fcurves_by_path(obj, f"enliven.{channel}").get(f"enliven.{channel}")


def key_frames(obj, channel: str) -> list[float]:
    curve = fcurve(obj, channel)
    return [] if curve is None else [point.co.x for point in curve.keyframe_points]


def run_bake(runtime, operator, timeout: float = 60.0, **properties):
    """Press a bake operator and run the timer until its job ends; returns the job."""
    assert operator(**properties) == {'FINISHED'}
    job = runtime.bake
    pump(lambda: not job.active, timeout, f"{job.title} to finish")
    assert job.state == "DONE", job.message
    return job


@pytest.fixture
def scene30(connected, portrait):
    scene = bpy.context.scene
    scene.render.fps, scene.render.fps_base = FPS, 1.0
    scene.frame_current = 1
    return scene


def test_live_link_import_keys_every_frame_at_the_frame_offset(connected, portrait, scene30, tmp_path):
    jaw = jaw_curve()
    write_livelink_csv(tmp_path / "take.csv", jaw)
    job = run_bake(connected, bpy.ops.enliven.import_livelink, filepath=str(tmp_path / "take.csv"), frame=10)
    assert job.frames == (10, 10 + ROWS - 1)
    assert key_frames(portrait, "jaw_open") == [float(f) for f in range(10, 10 + ROWS)]
    curve = fcurve(portrait, "jaw_open")
    keyed = np.array([curve.evaluate(f) for f in range(10, 10 + ROWS)])
    assert np.abs(keyed - jaw).max() < 1e-4
    assert job.message.startswith("Live Link import: ") and "frames 10-54" in job.message
    # The panel shows how it ended, and the capture buttons.
    drawn = draw_all()
    assert ("label", job.message) in drawn
    for idname in ("enliven.capture_video", "enliven.import_livelink", "enliven.lipsync_audio", "enliven.say_text"):
        assert ("operator", idname) in drawn


def test_reduced_keys_stay_within_the_tolerance(connected, portrait, scene30, tmp_path):
    jaw = jaw_curve()
    write_livelink_csv(tmp_path / "take.csv", jaw)
    scene30.frame_current = 5  # frame -1: the current frame
    run_bake(connected, bpy.ops.enliven.import_livelink, filepath=str(tmp_path / "take.csv"),
             key_mode='REDUCED', tolerance=2.0)
    frames = key_frames(portrait, "jaw_open")
    assert frames[0] == 5.0 and frames[-1] == 5.0 + ROWS - 1
    assert len(frames) < ROWS // 2
    curve = fcurve(portrait, "jaw_open")
    keyed = np.array([curve.evaluate(f) for f in range(5, 5 + ROWS)])
    assert np.abs(keyed - jaw).max() <= 0.02 * 2.0 + 1e-4  # 2 % of jaw_open's -1..1 range
    # A channel that did not move needs only its two end keys.
    assert len(key_frames(portrait, "blink_l")) == 2


# A video of the astronaut breathing deeply and opening its mouth (argv: path, photo, fps, frames), made by the
# backend's own warp engine.
MAKE_VIDEO = """
import sys
import numpy as np
from enliven.animator import Animator
from enliven.analysis import analyze_image
from enliven.images import load_image
from enliven.sequence import VideoWriter
from enliven.shared.channels import CHANNEL_INDEX, default_vector

animator = Animator(analyze_image(load_image(sys.argv[2])))
writer = VideoWriter(sys.argv[1], float(sys.argv[3]))
for frame in range(int(sys.argv[4])):
    values = default_vector().astype(float)
    values[CHANNEL_INDEX["breathing"]] = 0.8 * np.sin(4 * np.pi * frame / int(sys.argv[4]))
    values[CHANNEL_INDEX["jaw_open"]] = 0.6 * max(0.0, np.sin(6 * np.pi * frame / int(sys.argv[4])))
    writer.add(animator.render(values))
writer.close()
"""


@pytest.fixture(scope="module")
def breathing_video(tmp_path_factory):
    path = tmp_path_factory.mktemp("capture") / "breathing.mp4"
    result = subprocess.run([backend_python(), "-c", MAKE_VIDEO, str(path), str(ASTRONAUT), str(FPS), str(ROWS)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    return path


def keyed_curve(obj, channel: str, frames: range) -> np.ndarray:
    curve = fcurve(obj, channel)
    return np.zeros(len(frames)) if curve is None else np.array([curve.evaluate(f) for f in frames])


def test_capture_from_video_keys_the_body_unless_its_strength_is_zero(connected, portrait, scene30, breathing_video):
    job = run_bake(connected, bpy.ops.enliven.capture_video, timeout=180, filepath=str(breathing_video), frame=1)
    frames = range(job.frames[0], job.frames[1] + 1)
    assert len(frames) == ROWS
    breathing = keyed_curve(portrait, "breathing", frames)
    jaw = keyed_curve(portrait, "jaw_open", frames)
    # The video's two breaths are keyed, in phase with it, and so is its mouth.
    asked = 0.8 * np.sin(4 * np.pi * np.arange(ROWS) / ROWS)
    assert np.ptp(breathing) > 0.4 and np.corrcoef(breathing, asked)[0, 1] > 0.7
    assert np.ptp(jaw) > 0.3

    # Body strength 0: the same video keys the same mouth and leaves the body at rest.
    run_bake(connected, bpy.ops.enliven.capture_video, timeout=180, filepath=str(breathing_video), frame=1,
             strength_body=0.0)
    assert np.abs(keyed_curve(portrait, "breathing", frames)).max() < 1e-6
    assert np.abs(keyed_curve(portrait, "jaw_open", frames) - jaw).max() < 0.05


# The astronaut with her mouth wide open (argv: path, photo), made by the backend's own warp engine.
MAKE_OPEN_MOUTH = """
import sys
from enliven.animator import Animator
from enliven.analysis import analyze_image
from enliven.images import load_image, write_png
from enliven.shared.channels import CHANNEL_INDEX, default_vector

values = default_vector().astype(float)
values[CHANNEL_INDEX["jaw_open"]] = 1.0
write_png(sys.argv[1], Animator(analyze_image(load_image(sys.argv[2]))).render(values))
"""


def test_say_on_a_wide_open_mouth_talks_from_closed_lips(connected, scene30, tmp_path):
    """Lip-sync keys are fitted to the portrait's own mouth: on a photo whose mouth is wide open, the said
    words open the lips from closed (negative jaw_open) instead of opening the mouth wider on every vowel."""
    photo = tmp_path / "open_mouth.png"
    result = subprocess.run([backend_python(), "-c", MAKE_OPEN_MOUTH, str(photo), str(ASTRONAUT)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert bpy.ops.enliven.add_portrait(filepath=str(photo)) == {'FINISHED'}
    rig = bpy.context.scene.enliven.rig
    job = run_bake(connected, bpy.ops.enliven.say_text, text="Hello, papa bought a map.", frame=1, add_sound=False)
    jaw = keyed_curve(rig, "jaw_open", range(job.frames[0], job.frames[1] + 1))
    assert jaw.min() == pytest.approx(-1.0) and jaw.max() < 0.0 and np.ptp(jaw) > 0.3


def _key_other_channels(obj) -> dict:
    """Keys a lip-sync must leave alone: a head turn, a smile, and jaw keys before its range."""
    for frame, yaw, smile, jaw in ((1, 0.0, 0.0, 0.3), (5, 0.2, 0.5, 0.1), (200, -0.1, 0.2, 0.0)):
        obj.enliven.head_yaw, obj.enliven.smile_l, obj.enliven.jaw_open = yaw, smile, jaw
        for name in ("head_yaw", "smile_l", "jaw_open"):
            obj.keyframe_insert(f"enliven.{name}", frame=frame)
    return {name: [tuple(p.co) for p in fcurve(obj, name).keyframe_points] for name in ("head_yaw", "smile_l")}


def _sound_strip_checked(job, scene, frame: int) -> None:
    compat = sub("compat")
    if not compat.can_add_sound():
        # The 4.2 bpy module is built without audio: the artist is told instead.
        assert job.strip is None and any("no audio support" in w for w in job.warnings)
        return
    strip = next(s for s in compat.sound_strips(scene) if s.name == job.strip)
    assert compat.strip_content_start(strip) == frame
    first_shown, end_shown = compat.strip_span(strip)
    assert end_shown - first_shown >= job.frames[1] - job.frames[0]


def test_say_keys_only_the_mouth_over_its_frames_and_adds_the_sound(connected, portrait, scene30):
    untouched = _key_other_channels(portrait)
    # A captured take's own lip parting: the jaw opens lip-sync's words, so Replace keys it shut over them.
    portrait.enliven.lips_part = 0.6
    for frame in (1, 300):
        portrait.keyframe_insert("enliven.lips_part", frame=frame)
    job = run_bake(connected, bpy.ops.enliven.say_text, text="Hello, papa bought a map.", frame=20)
    first, last = job.frames
    assert first == 20 and last > 40
    assert last < 300
    assert max(abs(fcurve(portrait, "lips_part").evaluate(f)) for f in range(first, last + 1)) < 1e-6
    assert fcurve(portrait, "lips_part").evaluate(1) == pytest.approx(0.6)  # before the range: the take's
    for name in ("jaw_open", "pucker", "wide"):
        inside = [f for f in key_frames(portrait, name) if first <= f <= last]
        assert inside == [float(f) for f in range(first, last + 1)], name
    assert 1.0 in key_frames(portrait, "jaw_open") and 5.0 in key_frames(portrait, "jaw_open")  # before the range
    assert max(fcurve(portrait, "jaw_open").evaluate(f) for f in range(first, last + 1)) > 0.2
    for name, keys in untouched.items():
        assert [tuple(p.co) for p in fcurve(portrait, name).keyframe_points] == keys, name
    assert fcurve(portrait, "head_pitch") is None  # never keyed
    _sound_strip_checked(job, scene30, 20)


def test_undo_after_a_bake_landed_keeps_its_keys_and_sound(connected, portrait, scene30):
    # The keys arrive from the timer, after Say Text's undo step: undoing the next thing done took them away
    # with it, and redo never brought them back.
    undo_step("Before")
    name = portrait.name
    assert bpy.ops.enliven.say_text(text="Hello, papa.", frame=20) == {'FINISHED'}
    undo_step("Say Text")  # Blender's step for the operator, before the timer keys what the backend sends
    job = connected.bake
    pump(lambda: not job.active, 60, "say to finish")
    assert job.state == "DONE", job.message
    keys = [tuple(p.co) for p in fcurve(bpy.data.objects[name], "jaw_open").keyframe_points]
    bpy.context.scene.frame_end = 400
    undo_step("End Frame")
    assert in_window(bpy.ops.ed.undo) == {'FINISHED'}
    assert [tuple(p.co) for p in fcurve(bpy.data.objects[name], "jaw_open").keyframe_points] == keys
    # (4.2's bpy module has no audio: no strip to keep)
    assert [strip.name for strip in sub("compat").sound_strips(bpy.context.scene)] == [job.strip] * bool(job.strip)


def test_lipsync_from_a_file_blends_with_existing_mouth_keys(connected, portrait, scene30):
    said = run_bake(connected, bpy.ops.enliven.say_text, text="Open wide.", frame=1, add_sound=False)
    wav = _speech_files(portrait)[0]
    assert said.strip is None and not sub("compat").sound_strips(scene30)
    # A jaw held half open over the whole range, then lip-sync blended in at 50 %.
    for channel in ("jaw_open", "pucker", "wide"):
        curve = fcurve(portrait, channel)
        if curve is not None:
            curve.keyframe_points.clear()
    portrait.enliven.jaw_open = 0.4
    portrait.keyframe_insert("enliven.jaw_open", frame=0)
    portrait.keyframe_insert("enliven.jaw_open", frame=500)
    job = run_bake(connected, bpy.ops.enliven.lipsync_audio, filepath=wav, frame=30, mix='BLEND', blend_factor=0.5)
    first, last = job.frames
    assert first == 30
    values = np.array([fcurve(portrait, "jaw_open").evaluate(f) for f in range(first, last + 1)])
    # Half of 0.4 plus half of lip-sync's jaw, which is -1 (lips sealed) in pauses and up to 1 when open.
    assert values.min() >= -0.3 - 1e-4 and values.max() <= 0.7 + 1e-4 and values.max() > 0.25
    _sound_strip_checked(job, scene30, 30)


def test_lipsync_of_a_sound_strip_keys_where_the_strip_plays(connected, portrait, scene30):
    compat = sub("compat")
    if not compat.can_add_sound():
        pytest.skip("this Blender (the 4.2 bpy module) has no audio: no sound strips")
    run_bake(connected, bpy.ops.enliven.say_text, text="Strip.", frame=1, add_sound=False)
    strip = compat.add_sound_strip(scene30, _speech_files(portrait)[0], 70, 30)
    job = run_bake(connected, bpy.ops.enliven.lipsync_audio, source='STRIP', strip=strip.name, key_mode='REDUCED')
    assert job.frames[0] == 70 and key_frames(portrait, "jaw_open")[-1] == job.frames[1]
    assert len(compat.sound_strips(scene30)) == 1  # the strip it read is not added again


def test_errors_and_cancel_leave_the_keys_alone(connected, portrait, scene30, tmp_path):
    (tmp_path / "notes.txt").write_text("not audio at all\n" * 50)
    assert bpy.ops.enliven.lipsync_audio(filepath=str(tmp_path / "notes.txt")) == {'FINISHED'}
    job = connected.bake
    pump(lambda: not job.active, 30, "the lip-sync to fail")
    assert job.state == "FAILED" and "bad_audio" in job.message
    assert fcurve(portrait, "jaw_open") is None
    with pytest.raises(RuntimeError, match="No such video"):
        bpy.ops.enliven.capture_video(filepath=str(tmp_path / "missing.mp4"))

    assert bpy.ops.enliven.say_text(text="This will be cancelled before it is keyed. " * 4) == {'FINISHED'}
    job = connected.bake
    assert bpy.ops.enliven.cancel_bake() == {'FINISHED'}
    pump(lambda: not job.active, 30, "the cancel")
    assert job.state == "CANCELLED" and fcurve(portrait, "jaw_open") is None


def _speech_files(obj) -> list[str]:
    import glob
    import os

    return sorted(glob.glob(os.path.join(sub("connection").speech_dir(obj), "say_*.wav")), key=os.path.getmtime,
                  reverse=True)
