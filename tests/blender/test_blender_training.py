"""Training the refine engine from Blender, through a real backend: the Training panel starts a run on a
dataset the backend made, shows its steps and losses, stops it (saved, resumable), and Use Trained Model
makes the portrait render with the model it saved."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import bpy
import numpy as np
import pytest

from .conftest import ADDON_MODULE, ASTRONAUT, animate, backend_python, generate, image_pixels, local_backend, pump
from .test_blender_ui import draw_all

# A model small enough to train in seconds on a CPU (the same settings an ML engineer puts in a JSON file).
TINY = {"preset": "small", "side": 64, "generator_channels": 8, "generator_downsamples": 2,
        "generator_max_channels": 16, "generator_res_blocks": 1, "generator_groups": 4, "discriminator_channels": 8,
        "discriminator_layers": 2, "discriminator_scales": 2, "batch_pairs": 2, "sources_per_clip": 2,
        "gan_start_step": 2, "steps": 4, "log_every": 1, "sample_every": 2, "checkpoint_every": 2,
        "lr_generator": 0.002, "refine_region": "head", "detail_region": "anywhere"}

# Two short clips of the astronaut animated by the warp engine, stored the way `enliven prepare` stores clips.
MAKE_DATASET = """
import sys
import numpy as np
from enliven.analysis import analyze_image
from enliven.images import load_image
from enliven.neural.prepare import add_clip, clip_from_animation
from enliven.shared.channels import CHANNEL_INDEX, default_vector

subject = analyze_image(load_image(sys.argv[2]))
def frames(channel, amount):
    out = []
    for t in np.linspace(0.0, 1.0, 6):
        values = default_vector().astype(float)
        values[CHANNEL_INDEX[channel]] = amount * t
        out.append(values)
    return out
add_clip(sys.argv[1], "talking", clip_from_animation(subject, frames("jaw_open", 0.7), side=96))
add_clip(sys.argv[1], "turning", clip_from_animation(subject, frames("head_yaw", -15.0), side=96))
"""


def sub(name: str):
    return sys.modules[f"{ADDON_MODULE}.{name}"]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    out = tmp_path_factory.mktemp("dataset")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "BLENDER_USER_RESOURCES")}
    result = subprocess.run([backend_python(), "-c", MAKE_DATASET, str(out), str(ASTRONAUT)], capture_output=True,
                            text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr
    return out


@pytest.fixture
def training(connected, dataset, tmp_path):
    """The scene's Training settings: the dataset, a run folder, the tiny model as a config file."""
    if not connected.server_info.get("training"):
        pytest.skip("this backend has no PyTorch")
    config = tmp_path / "tiny.json"
    config.write_text(json.dumps(TINY))
    settings = bpy.context.scene.enliven
    settings.train_dataset = str(dataset)
    settings.train_run_dir = str(tmp_path / "run")
    settings.train_preset = 'FILE'
    settings.train_config_file = str(config)
    yield settings
    job = connected.training
    if job is not None and job.active:
        connected.stop_training()
        pump(lambda: not job.active, 60, "the training to stop")


def run_training(runtime, timeout: float = 240.0):
    assert bpy.ops.enliven.train_start() == {'FINISHED'}
    job = runtime.training
    pump(lambda: not job.active, timeout, "the training to finish")
    return job


def test_training_runs_shows_its_losses_and_its_model_renders_the_portrait(connected, training, portrait, tmp_path):
    job = run_training(connected)
    assert job.state == "DONE", job.message
    assert job.step == TINY["steps"] and job.checkpoint == str(tmp_path / "run" / "last.pt")
    assert os.path.isfile(job.checkpoint) and os.path.isfile(job.samples)
    assert {"l1", "l1_warp"} <= set(job.losses)
    drawn = draw_all()
    assert ("operator", "enliven.train_start") in drawn and any(
        entry[0] == "label" and entry[1].startswith("l1 ") for entry in drawn), drawn
    assert bpy.ops.enliven.show_training_samples() == {'FINISHED'}
    assert bpy.data.images[os.path.basename(job.samples)].size[0] > 0

    # Warp frames first, then the same frames with the trained model.
    animate(portrait, 1, 2)
    portrait.enliven.output_dir = str(tmp_path / "warp")
    assert generate().state == "DONE"
    # The refine engine with no model named: the eye and mouth generators that ship with Enliven.
    portrait.enliven.engine, portrait.enliven.checkpoint = "refine", ""
    portrait.enliven.output_dir = str(tmp_path / "shipped")
    shipped = generate()
    assert shipped.state == "DONE" and shipped.rendered == 2, shipped.message
    assert not np.array_equal(image_pixels(tmp_path / "warp" / "frame_00002.png"),
                              image_pixels(tmp_path / "shipped" / "frame_00002.png")), "the mouth is redrawn"
    assert bpy.ops.enliven.use_trained_model() == {'FINISHED'}
    assert (portrait.enliven.engine, portrait.enliven.checkpoint) == ("refine", job.checkpoint)
    assert ("prop", "checkpoint") in draw_all(), "the Generate panel shows the model in use"
    portrait.enliven.output_dir = str(tmp_path / "refine")
    refined = generate()
    assert refined.state == "DONE" and refined.rendered == 2, refined.message
    warp = image_pixels(tmp_path / "warp" / "frame_00002.png")
    refine = image_pixels(tmp_path / "refine" / "frame_00002.png")
    assert warp.shape == refine.shape and not np.array_equal(warp, refine), "the model changes the frames"

    # Frames are kept while the model is unchanged, and made again once it is retrained (a newer file).
    assert generate().rendered == 0
    stat = os.stat(job.checkpoint)
    os.utime(job.checkpoint, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    assert generate().rendered == 2
    # A model on a remote backend's disk, or the backend's own default one, cannot be checked from here: its
    # frames are always made again.
    reusable = sub("connection").frames_reusable
    assert not reusable("refine", str(tmp_path / "on-the-server-only" / "best.pt"))
    assert not reusable("refine", None) and reusable("warp", None) and reusable("refine", job.checkpoint)


def test_a_run_with_validation_clips_shows_their_score_and_offers_its_best_model(connected, training, portrait,
                                                                                tmp_path):
    config = tmp_path / "validated.json"
    config.write_text(json.dumps({**TINY, "validation": ["turning"], "validate_every": 2, "validation_pairs": 2}))
    training.train_config_file = str(config)
    job = run_training(connected)
    assert job.state == "DONE", job.message
    assert job.checkpoint == str(tmp_path / "run" / "best.pt") and os.path.isfile(job.checkpoint)
    assert {"val_l1", "val_l1_warp", "val_strength"} <= set(job.losses)
    assert any(entry[0] == "label" and entry[1].startswith("validation l1 ") for entry in draw_all())
    assert bpy.ops.enliven.use_trained_model() == {'FINISHED'}
    assert portrait.enliven.checkpoint == job.checkpoint


def test_stop_saves_the_run_and_resume_continues_it(connected, training, tmp_path):
    training.train_steps = 100_000
    assert bpy.ops.enliven.train_start() == {'FINISHED'}
    job = connected.training
    pump(lambda: job.step >= 2, 240, "the first training steps")
    assert ("operator", "enliven.train_stop") in draw_all()
    assert bpy.ops.enliven.train_stop() == {'FINISHED'}
    pump(lambda: not job.active, 60, "the training to stop")
    assert job.state == "STOPPED" and 2 <= job.step < 100_000, job.message
    assert os.path.isfile(tmp_path / "run" / "last.pt")

    # Start again without Resume: the backend refuses to overwrite the run.
    failed = run_training(connected)
    assert failed.state == "FAILED" and "resume" in failed.message.lower(), failed.message
    # Resume keeps the run's own settings, whatever the panel's model size says now.
    training.train_resume, training.train_steps, training.train_preset = True, job.step + 1, 'large'
    resumed = run_training(connected)
    assert resumed.state == "DONE" and resumed.step == job.step + 1, resumed.message


def test_missing_settings_are_reported_without_starting(connected, training):
    training.train_dataset = ""
    with pytest.raises(RuntimeError, match="dataset folder"):
        bpy.ops.enliven.train_start()
    assert connected.training is None or not connected.training.active


def test_a_run_goes_on_when_blender_disconnects_and_resume_watches_it(connected, training, tmp_path):
    training.train_steps = 100_000
    assert bpy.ops.enliven.train_start() == {'FINISHED'}
    job = connected.training
    pump(lambda: job.step >= 1, 240, "the first training steps")
    connected.disconnect(stop_local=False)  # e.g. the add-on's preferences changed
    assert job.state == "STOPPED" and "goes on" in job.message
    connected.connect(force=True)
    pump(lambda: connected.state == "CONNECTED", 20, "the connection")
    training.train_resume = True
    assert bpy.ops.enliven.train_start() == {'FINISHED'}
    watching = connected.training
    pump(lambda: watching.state == "RUNNING" and watching.step > job.step, 120, "the run's progress again")
    assert bpy.ops.enliven.train_stop() == {'FINISHED'}
    pump(lambda: not watching.active, 60, "the training to stop")
    assert watching.state == "STOPPED" and "saved" in watching.message


def test_stopping_the_local_backend_saves_its_training_run(addon, prefs, scene, dataset, tmp_path):
    with local_backend(prefs) as runtime:
        if not runtime.server_info.get("training"):
            pytest.skip("this backend has no PyTorch")
        config = tmp_path / "tiny.json"  # saved only when it stops: no checkpoints on the way
        config.write_text(json.dumps({**TINY, "checkpoint_every": 10**6, "sample_every": 10**6}))
        settings = bpy.context.scene.enliven
        settings.train_dataset, settings.train_run_dir = str(dataset), str(tmp_path / "run")
        settings.train_preset, settings.train_config_file, settings.train_steps = 'FILE', str(config), 100_000
        assert bpy.ops.enliven.train_start() == {'FINISHED'}
        job = runtime.training
        pump(lambda: job.step >= 2, 240, "the first training steps")
        process = runtime.local.proc

        assert bpy.ops.enliven.stop_backend() == {'FINISHED'}
        assert job.state == "STOPPED" and "saves the run" in job.message
        pump(lambda: process.poll() is not None, 180, "the backend to save the run and exit")
        assert process.returncode == 0, "the backend exited by itself, not killed"
        assert os.path.isfile(tmp_path / "run" / "last.pt"), "the run was saved as the backend stopped"
