"""The add-on inside real Blender, without a backend: registration, the rig,
keyframes (API, presets, motion files) and F-curve sampling."""
from __future__ import annotations

import json
import math
import sys

import bpy
import numpy as np
import pytest
from .conftest import ADDON_MODULE, ASTRONAUT

import addon_utils


def sub(name: str):
    return sys.modules[f"{ADDON_MODULE}.{name}"]


def our_handlers() -> list:
    found = []
    for attribute in dir(bpy.app.handlers):
        handlers = getattr(bpy.app.handlers, attribute)
        if isinstance(handlers, list):
            found += [f for f in handlers if getattr(f, "__module__", "").startswith(ADDON_MODULE)]
    return found


def test_register_unregister_twice_leaves_nothing_behind(addon):
    connection = sub("connection")
    for _ in range(2):
        addon_utils.disable(ADDON_MODULE, default_set=True)
        assert not hasattr(bpy.types.Object, "enliven")
        assert not hasattr(bpy.types.Scene, "enliven")
        assert not any(name.startswith("ENLIVEN_") for name in dir(bpy.types))
        assert our_handlers() == []
        assert not bpy.app.timers.is_registered(connection.poll)
        assert connection.RUNTIME.client is None and connection.RUNTIME.local is None
        status_draw = [f for f in bpy.types.STATUSBAR_HT_header._dyn_ui_initialize()
                       if getattr(f, "__module__", "").startswith(ADDON_MODULE)]
        assert status_draw == []

        addon_utils.enable(ADDON_MODULE, default_set=True)
        connection = sub("connection")
        assert hasattr(bpy.types.Object, "enliven")
        assert bpy.app.timers.is_registered(connection.poll)
        assert len(our_handlers()) == len(connection.HANDLERS)


def test_shared_code_is_vendored_under_the_extension(addon):
    # No generic top-level names in Blender's sys.modules: shared/ lives
    # inside the extension's package.
    assert f"{ADDON_MODULE}.shared.channels" in sys.modules
    assert "shared" not in sys.modules and "shared.channels" not in sys.modules
    assert sub("shared.client").Client is not None


def test_add_portrait_creates_a_rig_with_every_channel_animatable(portrait):
    channels = sub("shared.channels")
    properties = sub("properties")
    obj = portrait
    assert obj.enliven.is_rig and obj.enliven.photo is not None
    assert obj.enliven.photo.filepath.endswith("astronaut.png")
    assert obj.type == 'EMPTY' and obj.empty_display_type == 'IMAGE' and obj.data == obj.enliven.photo
    assert bpy.context.view_layer.objects.active == obj

    rna = obj.enliven.bl_rna.properties
    for ch in channels.CHANNELS:
        prop = rna[ch.name]
        assert prop.is_animatable, ch.name
        k = properties.scale(ch.name)
        assert prop.hard_min == pytest.approx(ch.minimum * k, abs=1e-6)
        assert prop.hard_max == pytest.approx(ch.maximum * k, abs=1e-6)
        assert prop.default == pytest.approx(ch.default * k)
        assert ch.description[:40] in prop.description
        if ch.unit == "deg":
            assert prop.unit == 'ROTATION'  # shown in degrees, stored in radians like every rotation
        # The I-key path works on every channel.
        assert obj.keyframe_insert(properties.data_path(ch.name), frame=1)
    # Settings are not animatable (no stray diamonds).
    assert not rna["output_dir"].is_animatable and not rna["photo"].is_animatable
    compat = sub("compat")
    assert len(compat.fcurves_by_path(obj, "enliven.")) == len(channels.CHANNELS)


def test_several_portraits_are_separate_rigs(portrait):
    image = bpy.data.images.load(str(ASTRONAUT), check_existing=False)
    assert bpy.ops.enliven.add_portrait(image_name=image.name) == {'FINISHED'}
    rigs = [o for o in bpy.data.objects if o.enliven.is_rig]
    assert len(rigs) == 2 and rigs[0] != rigs[1]
    rigs[0].enliven.jaw_open = 0.7
    assert rigs[1].enliven.jaw_open == 0.0
    assert bpy.context.scene.enliven.rig == bpy.context.view_layer.objects.active


def test_add_portrait_missing_file_is_a_clear_error(scene):
    with pytest.raises(RuntimeError, match="No such file"):
        bpy.ops.enliven.add_portrait(filepath="/nonexistent/photo.png")
    assert not any(o.enliven.is_rig for o in bpy.data.objects)


def test_keyframes_through_the_api_are_sampled_with_interpolation(portrait):
    sampling = sub("sampling")
    channels = sub("shared.channels")
    obj = portrait
    # Linear jaw from 0 at frame 1 to 1 at frame 11; Bezier yaw 0 -> 20 deg.
    obj.enliven.jaw_open = 0.0
    obj.keyframe_insert("enliven.jaw_open", frame=1)
    obj.enliven.jaw_open = 1.0
    obj.keyframe_insert("enliven.jaw_open", frame=11)
    obj.enliven.head_yaw = 0.0
    obj.keyframe_insert("enliven.head_yaw", frame=1)
    obj.enliven.head_yaw = math.radians(20.0)
    obj.keyframe_insert("enliven.head_yaw", frame=11)
    compat = sub("compat")
    for fc in compat.fcurves_by_path(obj, "enliven.jaw_open").values():
        for point in fc.keyframe_points:
            point.interpolation = 'LINEAR'
    obj.enliven.smile_l = 0.25  # no keys: holds its value

    frames = np.arange(0, 13)
    motion = sampling.sample(obj, frames)
    assert motion.shape == (13, len(channels.CHANNELS)) and motion.dtype == np.float32
    jaw = motion[:, channels.CHANNEL_INDEX["jaw_open"]]
    np.testing.assert_allclose(jaw, np.clip((frames - 1) / 10, 0, 1), atol=1e-6)  # holds outside the keys
    yaw = motion[:, channels.CHANNEL_INDEX["head_yaw"]]
    assert yaw[1] == pytest.approx(0.0, abs=1e-4) and yaw[11] == pytest.approx(20.0, abs=1e-4)
    assert yaw[6] == pytest.approx(10.0, abs=1e-3)  # symmetric Bezier: half way at the middle
    assert 0 < yaw[3] < 4.0  # eases in: slower than linear (4 deg) at the start
    assert np.all(np.diff(yaw[1:12]) > 0)
    np.testing.assert_allclose(motion[:, channels.CHANNEL_INDEX["smile_l"]], 0.25)
    np.testing.assert_allclose(motion[:, channels.CHANNEL_INDEX["blink_l"]], 0.0)

    # Blender's own animation system agrees at every frame (degrees round trip included).
    scene = bpy.context.scene
    for frame in (1, 3, 6, 9, 11):
        scene.frame_set(frame)
        assert yaw[frame] == pytest.approx(math.degrees(obj.enliven.head_yaw), abs=1e-3)
        assert jaw[frame] == pytest.approx(obj.enliven.jaw_open, abs=1e-6)


def test_sampling_clamps_to_the_channel_range_and_ignores_muted_curves(portrait):
    sampling = sub("sampling")
    channels = sub("shared.channels")
    compat = sub("compat")
    obj = portrait
    fc = compat.ensure_fcurve(obj, "enliven.jaw_open", "Enliven")
    fc.keyframe_points.insert(1, 0.0)
    fc.keyframe_points.insert(5, 3.0)  # beyond the channel's max of 1
    motion = sampling.sample(obj, [5])
    assert motion[0, channels.CHANNEL_INDEX["jaw_open"]] == 1.0
    fc.mute = True
    obj.enliven.jaw_open = 0.3
    assert sampling.sample(obj, [5])[0, channels.CHANNEL_INDEX["jaw_open"]] == pytest.approx(0.3)


def test_presets_insert_keys_at_the_current_frame(portrait):
    presets = sub("shared.presets")
    sampling = sub("sampling")
    compat = sub("compat")
    channels = sub("shared.channels")
    scene = bpy.context.scene
    scene.render.fps = 24
    scene.frame_set(10)
    assert bpy.ops.enliven.insert_preset(preset="blink") == {'FINISHED'}
    curves = compat.fcurves_by_path(portrait, "enliven.")
    assert set(curves) == {"enliven.blink_l", "enliven.blink_r"}
    expected = presets.preset_keys("blink", fps=24)
    for name in ("blink_l", "blink_r"):
        keys = [(p.co.x, p.co.y) for p in curves[f"enliven.{name}"].keyframe_points]
        assert keys == [(10 + f, pytest.approx(v)) for f, v in expected[name]]
        assert all(p.handle_left_type == 'AUTO_CLAMPED' for p in curves[f"enliven.{name}"].keyframe_points)
        assert curves[f"enliven.{name}"].group.name == "Enliven"  # grouped in the Dope Sheet
    motion = sampling.sample(portrait, range(10, 23))
    blink = motion[:, channels.CHANNEL_INDEX["blink_l"]]
    assert blink[0] == 0.0 and blink.max() == pytest.approx(1.0, abs=1e-3) and blink[-1] == 0.0
    # The channel sliders show the animated value after the operator.
    peak = 10 + max(expected["blink_l"], key=lambda k: k[1])[0]
    scene.frame_set(peak)
    assert portrait.enliven.blink_l == pytest.approx(1.0, abs=1e-4)

    # Degrees land as radians.
    assert bpy.ops.enliven.insert_preset(preset="nod", frame=100) == {'FINISHED'}
    nod = presets.preset_keys("nod", fps=24)["head_pitch"]
    pitch = compat.fcurves_by_path(portrait, "enliven.head_pitch")["enliven.head_pitch"]
    lowest = min(nod, key=lambda k: k[1])
    assert pitch.evaluate(100 + lowest[0]) == pytest.approx(math.radians(lowest[1]), abs=1e-4)
    # Every other preset of the issue inserts too.
    for name in ("shake", "look-around", "smile", "talk", "showcase"):
        assert bpy.ops.enliven.insert_preset(preset=name, frame=200) == {'FINISHED'}


def test_idle_alive_fills_a_frame_range_and_replaces_keys(portrait):
    compat = sub("compat")
    scene = bpy.context.scene
    scene.render.fps = 24
    assert bpy.ops.enliven.insert_preset(preset="idle-alive", frame=1, use_range=True, frame_end=241, seed=3) == {'FINISHED'}
    curves = compat.fcurves_by_path(portrait, "enliven.")
    assert {"enliven.blink_l", "enliven.gaze_x", "enliven.head_pitch", "enliven.head_yaw"} <= set(curves)
    for fc in curves.values():
        xs = [p.co.x for p in fc.keyframe_points]
        assert xs[0] == 1 and xs[-1] == 241
    before = len(curves["enliven.blink_l"].keyframe_points)
    # Again with another seed over the same range: replaced, not mixed.
    assert bpy.ops.enliven.insert_preset(preset="idle-alive", frame=1, use_range=True, frame_end=241, seed=4) == {'FINISHED'}
    blink = compat.fcurves_by_path(portrait, "enliven.blink_l")["enliven.blink_l"]
    expected = sub("shared.presets").preset_keys("idle-alive", fps=24, seed=4, duration_s=10.0)["blink_l"]
    assert len(blink.keyframe_points) == len(expected)
    assert before > 0


def test_idle_alive_loop_repeats_seamlessly_with_cycles_modifiers(portrait):
    compat = sub("compat")
    scene = bpy.context.scene
    scene.render.fps = 24
    scene.frame_start, scene.frame_end = 1, 120
    assert bpy.ops.enliven.insert_preset(preset="idle-alive", use_range=True, frame=1, frame_end=120, seed=2,
                                         loop=True) == {'FINISHED'}
    curves = compat.fcurves_by_path(portrait, "enliven.")
    assert {"enliven.blink_l", "enliven.gaze_x", "enliven.head_pitch", "enliven.head_yaw"} <= set(curves)
    steps = []
    for path, fc in curves.items():
        assert [modifier.type for modifier in fc.modifiers] == ['CYCLES'], path
        xs = [p.co.x for p in fc.keyframe_points]
        assert xs[0] == 1 and xs[-1] == 121, path  # the key after End Frame repeats Start
        # Frame End flows into Frame Start: the frame after End shows Start again, and so on for ever.
        assert fc.evaluate(scene.frame_end + 1) == pytest.approx(fc.evaluate(scene.frame_start), abs=1e-6), path
        assert fc.evaluate(scene.frame_end + 1 + 37) == pytest.approx(fc.evaluate(scene.frame_start + 37), abs=1e-5)
        values = np.array([fc.evaluate(frame) for frame in range(1, 122)])
        span = max(np.ptp(values), 1e-9)
        wrap = abs(values[-1] - values[-2]) / span  # End to the repeat of Start
        steps.append((wrap, np.percentile(np.abs(np.diff(values[:-1])) / span, 95)))
    assert all(wrap <= typical + 1e-6 for wrap, typical in steps)
    # A preset inserted after it without Loop: the loop plays on up to it, and it plays once (the Cycles
    # modifier, kept, made the nod part of the cycle: the loop stopped at 121 and the nod repeated for ever).
    loop_at = {frame: curves["enliven.head_pitch"].evaluate(frame) for frame in (38, 100)}
    assert bpy.ops.enliven.insert_preset(preset="nod", frame=300) == {'FINISHED'}
    curves = compat.fcurves_by_path(portrait, "enliven.")
    pitch = curves["enliven.head_pitch"]
    assert not pitch.modifiers
    for frame, value in loop_at.items():
        assert pitch.evaluate(frame + 120) == pytest.approx(value, abs=1e-5)  # the loop, again, up to the nod
    nod_end = pitch.keyframe_points[-1].co.x
    assert pitch.evaluate(nod_end + 50) == pytest.approx(pitch.evaluate(nod_end), abs=1e-6)  # once
    assert [modifier.type for modifier in curves["enliven.blink_l"].modifiers] == ['CYCLES']  # not the nod's
    # A loop after keys of its channels is refused, changing nothing (its Cycles modifier would repeat them).
    keys = [tuple(p.co) for p in pitch.keyframe_points]
    with pytest.raises(RuntimeError, match="and [0-9]+ more channels have keys before frame 500"):
        bpy.ops.enliven.insert_preset(preset="idle-alive", frame=500, loop=True)
    assert [tuple(p.co) for p in compat.fcurves_by_path(portrait, "enliven.head_pitch")["enliven.head_pitch"]
            .keyframe_points] == keys
    with pytest.raises(RuntimeError, match="cannot loop"):
        bpy.ops.enliven.insert_preset(preset="nod", frame=400, loop=True)


def test_a_muted_loop_is_left_as_the_artist_set_it_when_keys_come_after_it(portrait):
    # Keys after a loop write the loop out up to them (a plain Cycles modifier). A muted one played no loop:
    # writing it out put repeats into frames that had shown none.
    compat = sub("compat")
    bpy.context.scene.render.fps = 24
    assert bpy.ops.enliven.insert_preset(preset="idle-alive", use_range=True, frame=1, frame_end=120, seed=2,
                                         loop=True) == {'FINISHED'}
    blink = compat.fcurves_by_path(portrait, "enliven.blink_l")["enliven.blink_l"]
    blink.modifiers[0].mute = True
    before = len(blink.keyframe_points)
    assert bpy.ops.enliven.insert_preset(preset="blink", frame=400) == {'FINISHED'}
    blink = compat.fcurves_by_path(portrait, "enliven.blink_l")["enliven.blink_l"]
    assert [(modifier.type, modifier.mute) for modifier in blink.modifiers] == [('CYCLES', True)]
    assert all(point.co.x <= 121 or point.co.x >= 400 for point in blink.keyframe_points)
    assert len(blink.keyframe_points) > before


def test_bake_from_motion_file(portrait, tmp_path):
    motion_module = sub("shared.motion")
    sampling = sub("sampling")
    channels = sub("shared.channels")
    values = np.stack([np.linspace(0, 1, 13), np.linspace(-10, 10, 13)], axis=1).astype(np.float32)
    path = tmp_path / "capture.json"
    motion_module.save_motion(motion_module.Motion(24.0, ("jaw_open", "head_yaw"), values), path)
    scene = bpy.context.scene
    scene.render.fps = 24
    assert bpy.ops.enliven.bake_motion(filepath=str(path), frame=5) == {'FINISHED'}
    motion = sampling.sample(portrait, range(5, 18))
    np.testing.assert_allclose(motion[:, channels.CHANNEL_INDEX["jaw_open"]], values[:, 0], atol=1e-5)
    np.testing.assert_allclose(motion[:, channels.CHANNEL_INDEX["head_yaw"]], values[:, 1], atol=1e-3)

    # CSV at another frame rate lands by time: 12 fps motion in a 24 fps scene.
    csv = tmp_path / "slow.csv"
    csv.write_text("frame,time,blink_l\n0,0,0\n1,0.083333,1\n2,0.166667,0\n")
    assert bpy.ops.enliven.bake_motion(filepath=str(csv), frame=30) == {'FINISHED'}
    blink = sampling.sample(portrait, [30, 31, 32, 34])[:, channels.CHANNEL_INDEX["blink_l"]]
    np.testing.assert_allclose(blink, [0, 0.5, 1, 0], atol=1e-5)


def test_bad_motion_file_is_reported_not_raised_as_a_traceback(portrait, tmp_path):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"format": "enliven-motion", "version": 1, "fps": 24,
                                "channels": ["jaw_opn"], "frames": [[0.1]]}))
    with pytest.raises(RuntimeError, match="did you mean 'jaw_open'"):
        bpy.ops.enliven.bake_motion(filepath=str(path))
    assert sub("compat").fcurves_by_path(portrait) == {}


def test_sampling_works_with_channelbags(portrait):
    # 5.0 has no action.fcurves; 4.2 has nothing else. compat hides it.
    compat = sub("compat")
    portrait.keyframe_insert("enliven.wide", frame=3)
    action = portrait.animation_data.action
    if hasattr(action, "layers"):
        from bpy_extras import anim_utils

        bag = anim_utils.action_get_channelbag_for_slot(action, portrait.animation_data.action_slot)
        assert bag.fcurves.find("enliven.wide") is not None
    else:
        assert action.fcurves.find("enliven.wide") is not None
    assert list(compat.fcurves_by_path(portrait)) == ["enliven.wide"]


def test_path_settings_take_blend_relative_paths_without_a_warning(portrait):
    # The add-on reads these with bpy.path.abspath, and its own default is "//enliven/<portrait>/": Blender
    # 4.5+ must not mark "//" red (nor warn) as if the add-on could not take it.
    import warnings

    scene = bpy.context.scene
    targets = [(portrait.enliven, name) for name in ("output_dir", "checkpoint")]
    targets += [(scene.enliven, name) for name in ("train_dataset", "train_run_dir", "train_config_file")]
    for owner, name in targets:
        with warnings.catch_warnings():
            warnings.simplefilter("error", RuntimeWarning)
            setattr(owner, name, "//somewhere/")
        if "is_path_supports_blend_relative" in bpy.types.Property.bl_rna.properties:
            assert owner.bl_rna.properties[name].is_path_supports_blend_relative, name


def test_a_sound_strip_of_a_saved_file_is_relative_to_it(scene, tmp_path):
    # Say Text and Lip-sync place their sound as the frames are placed, relative to the .blend, so a project
    # that moves keeps its speech (the strip kept the absolute path).
    import wave

    compat = sys.modules[f"{ADDON_MODULE}.compat"]
    if not compat.can_add_sound():
        pytest.skip("this bpy is built without audio")
    bpy.ops.wm.save_as_mainfile(filepath=str(tmp_path / "shot.blend"))
    (tmp_path / "speech").mkdir()
    with wave.open(str(tmp_path / "speech" / "say.wav"), "wb") as sound:
        sound.setnchannels(1), sound.setsampwidth(2), sound.setframerate(16000)
        sound.writeframes(bytes(2 * 16000))
    strip = compat.add_sound_strip(bpy.context.scene, str(tmp_path / "speech" / "say.wav"), 1, 24)
    assert strip.sound.filepath.replace("\\", "/") == "//speech/say.wav"
    assert compat.sound_strip_path(strip) == str(tmp_path / "speech" / "say.wav")
