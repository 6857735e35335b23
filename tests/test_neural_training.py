"""Training the refine engine on CPU: it learns, checkpoints round-trip, --resume is exact, SIGTERM saves,
bad checkpoints are refused clearly, and the engine renders with a trained checkpoint."""
from __future__ import annotations

import json
import os
import pickle
import signal
import subprocess
import sys
import time
from dataclasses import replace

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from conftest import channel_values, run_enliven  # noqa: E402
from enliven.engines.refine import RefineEngine  # noqa: E402
from enliven.engines.warp import WarpEngine  # noqa: E402
from enliven.errors import EnlivenError  # noqa: E402
from enliven.neural.checkpoint import CheckpointError, load_checkpoint, load_generator, save_checkpoint  # noqa: E402
from enliven.neural.config import RefineConfig  # noqa: E402
from enliven.neural.dataset import ExampleKey, collate_pairs  # noqa: E402
from enliven.neural.prepare import add_clip, clip_from_animation  # noqa: E402
from enliven.neural.train import Trainer  # noqa: E402

TINY = RefineConfig(side=64, generator_channels=8, generator_downsamples=2, generator_max_channels=16,
                    generator_res_blocks=1, generator_groups=4, discriminator_channels=8, discriminator_layers=2,
                    discriminator_scales=2, batch_pairs=2, sources_per_clip=2, gan_start_step=1, steps=4,
                    log_every=1, sample_every=10**6, checkpoint_every=2, lr_generator=1e-3)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def dataset(tmp_path_factory, subject):
    """Two clips made by animating the astronaut with the warp engine (exact landmarks; no video needed)."""
    out = tmp_path_factory.mktemp("dataset")
    ramp = np.linspace(0.0, 1.0, 6)
    talking = [channel_values(jaw_open=0.6 * t, smile_l=0.5 * t, smile_r=0.5 * t) for t in ramp]
    turning = [channel_values(head_yaw=-15.0 * t, blink_l=t, blink_r=t, head_pitch=5.0 * t) for t in ramp]
    add_clip(out, "talking", clip_from_animation(subject, talking, side=96))
    add_clip(out, "turning", clip_from_animation(subject, turning, side=96))
    return out


def weights(path) -> dict[str, torch.Tensor]:
    return load_checkpoint(path)["generator"]


def test_a_few_steps_fit_a_fixed_batch(dataset, tmp_path):
    config = replace(TINY, gan_start_step=10**6, weight_motion=0.0, weight_temporal=0.0, weight_mask=0.0,
                     refine_region="head")
    trainer = Trainer(dataset, tmp_path / "run", config, show_progress_bar=False)
    batch = collate_pairs([trainer.dataset[ExampleKey(0, 0, slot)] for slot in range(2)])
    # The real frames are lit differently from the source (something warping cannot do; the refiner can).
    batch["target"] = (0.8 * batch["target"] + 0.1).clamp(-1, 1)
    first = trainer.train_step(batch)
    assert first["l1"] == pytest.approx(first["l1_warp"], rel=1e-5), "an untrained refiner returns the warp"
    losses = [first["l1"]] + [trainer.train_step(batch)["l1"] for _ in range(40)]
    assert np.mean(losses[-5:]) < 0.6 * losses[0], losses


def test_checkpoint_round_trip_gives_identical_outputs(dataset, tmp_path):
    trainer = Trainer(dataset, tmp_path / "run", replace(TINY, sample_every=4), show_progress_bar=False)
    trainer.run()
    assert (tmp_path / "run" / "samples.png").exists() and (tmp_path / "run" / "loss.png").exists()
    assert (tmp_path / "run" / "log.csv").read_text().count("\n") == 1 + TINY.steps
    generator, config, step = load_generator(tmp_path / "run" / "last.pt")
    assert step == TINY.steps and config == replace(TINY, sample_every=4)
    example = trainer.dataset[ExampleKey(99, 0, 0)]
    args = (example["warped"], example["source"], example["displacement"], example["masks"])
    trainer.generator.eval()
    with torch.no_grad():
        assert torch.equal(generator(*args)[0], trainer.generator(*args)[0])


def test_resume_continues_the_same_schedule_bit_for_bit(dataset, tmp_path):
    Trainer(dataset, tmp_path / "straight", TINY, show_progress_bar=False).run()

    Trainer(dataset, tmp_path / "interrupted", replace(TINY, steps=2), show_progress_bar=False).run()
    assert load_checkpoint(tmp_path / "interrupted" / "last.pt")["step"] == 2
    resumed = Trainer(dataset, tmp_path / "interrupted", resume=True, steps=TINY.steps, show_progress_bar=False)
    assert resumed.step == 2
    resumed.run()

    straight, continued = weights(tmp_path / "straight" / "last.pt"), weights(tmp_path / "interrupted" / "last.pt")
    assert load_checkpoint(tmp_path / "interrupted" / "last.pt")["step"] == TINY.steps
    assert all(torch.equal(straight[k], continued[k]) for k in straight)


def test_worker_processes_train_the_same_weights_and_get_no_copy_of_the_frames(dataset, tmp_path):
    Trainer(dataset, tmp_path / "inline", replace(TINY, steps=2), show_progress_bar=False).run()
    with_workers = Trainer(dataset, tmp_path / "workers", replace(TINY, steps=2, workers=1), show_progress_bar=False)
    with_workers.run()
    inline, spread = weights(tmp_path / "inline" / "last.pt"), weights(tmp_path / "workers" / "last.pt")
    assert all(torch.equal(inline[k], spread[k]) for k in inline)
    frames = sum(clip.frames.nbytes for clip in with_workers.dataset.clips.values())
    assert len(pickle.dumps(with_workers.dataset)) < frames / 10, "workers reopen the dataset's files themselves"


def test_a_run_folder_is_not_overwritten_without_resume(dataset, tmp_path):
    Trainer(dataset, tmp_path / "run", replace(TINY, steps=1), show_progress_bar=False).run()
    with pytest.raises(EnlivenError, match="--resume") as refused:
        Trainer(dataset, tmp_path / "run", TINY, show_progress_bar=False)
    assert refused.value.exit_code == 2  # a usage error (--out names a run's folder), as `enliven --help` lists them
    with pytest.raises(EnlivenError, match="other settings"):
        Trainer(dataset, tmp_path / "run", replace(TINY, weight_l1=1.0), resume=True, show_progress_bar=False)


def test_a_long_message_is_cut_at_a_sentence_or_a_word_never_longer():
    from enliven.neural.checkpoint import shortened

    assert shortened("x" * 500) == "x" * 197 + "..."  # (no space: it came back 502 characters long)
    text = "Reading failed. " + "word " * 20 + "see the stored form, e.g. the archive " + "more " * 40
    assert shortened(text).endswith("...") and "e.g." not in shortened(text)[-6:] and len(shortened(text)) <= 200
    assert shortened("A first sentence that is long enough to keep. " * 5) == (
        "A first sentence that is long enough to keep. " * 4).rstrip()


def test_bad_checkpoints_are_refused_clearly(dataset, tmp_path, subject):
    good = tmp_path / "run" / "last.pt"
    Trainer(dataset, tmp_path / "run", replace(TINY, steps=1), show_progress_bar=False).run()

    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(os.urandom(4096))
    foreign = tmp_path / "foreign.pt"
    torch.save({"state_dict": {"w": torch.zeros(2)}}, foreign)
    pickled = tmp_path / "pickled.pt"
    torch.save({"format": "enliven-refine", "object": Exception("runs code when unpickled")}, pickled)

    for path, message in ((truncated, r"archive cannot be read \(a copy or download cut short\?\)"), (garbage, "damaged"),
                          (pickled, "damaged"),
                          (foreign, "not a refine engine checkpoint"), (tmp_path / "missing.pt", "No checkpoint")):
        with pytest.raises(CheckpointError, match=message):
            load_checkpoint(path)
        with pytest.raises(EnlivenError, match=message):  # a CheckpointError, or before torch is touched for a missing file
            RefineEngine(subject, checkpoint=path)

    mismatched = tmp_path / "mismatched.pt"
    payload = load_checkpoint(good)
    payload["config"]["generator_channels"] = 12
    save_checkpoint(mismatched, {k: v for k, v in payload.items() if k not in ("format", "version")})
    with pytest.raises(CheckpointError, match="do not fit"):
        load_generator(mismatched)


def test_a_missing_checkpoint_names_the_command_that_makes_the_kind_asked_for(tmp_path):
    # `train-regions --init missing.pt` said "Train one with `enliven train ...`": the whole-head refiner's command,
    # whose checkpoint --init then refuses
    missing = tmp_path / "missing.pt"
    with pytest.raises(CheckpointError, match="enliven train-regions DATASET") as regions:
        load_checkpoint(missing, expected_format="enliven-regions")
    assert "`enliven train DATASET" not in str(regions.value)
    with pytest.raises(CheckpointError, match="`enliven train DATASET") as refine:
        load_checkpoint(missing)
    assert "train-regions" not in str(refine.value)
    with pytest.raises(CheckpointError, match="`enliven train DATASET.*` or `enliven train-regions DATASET"):
        load_checkpoint(missing, expected_format=("enliven-refine", "enliven-regions"))


def test_validation_clips_pick_the_best_generator_and_its_strength(dataset, tmp_path, subject):
    config = replace(TINY, validation=("turning",), validate_every=2, validation_pairs=2, steps=4)
    trainer = Trainer(dataset, tmp_path / "run", config, show_progress_bar=False)
    assert trainer.dataset.names == ["talking"], "validation clips are never trained on"
    trainer.run()

    history = trainer.validation_history
    assert history["step"] == [2.0, 4.0]
    best = load_checkpoint(tmp_path / "run" / "best.pt")
    assert best["best"]["val_l1"] == min(history["val_l1"]) and best["step"] == best["best"]["step"]
    assert 0.0 <= best["strength"] <= 1.0
    assert load_generator(tmp_path / "run" / "best.pt")[0].correction_strength == best["strength"]

    # A strength scales the correction exactly as it was fitted: warp + s * (full refined frame - warp), also
    # where the full correction runs past white or black.
    payload = {k: v for k, v in best.items() if k not in ("format", "version")}
    payload["generator"] = {k: v.clone() for k, v in payload["generator"].items()}
    payload["generator"]["residual_head.bias"] += 3.0  # saturates
    for name, strength in (("full.pt", 1.0), ("half.pt", 0.5)):
        save_checkpoint(tmp_path / name, {**payload, "strength": strength})
    full, half = load_generator(tmp_path / "full.pt")[0], load_generator(tmp_path / "half.pt")[0]
    example = trainer.validation[ExampleKey(7, 0, 0)]
    args = (example["warped"], example["source"], example["displacement"], example["masks"], full.inference_noise(2))
    with torch.no_grad():
        full_output, half_output = full(*args)[0], half(*args)[0]
    warped = example["warped"]
    assert (full_output == 1.0).any(), "the test correction saturates"
    assert torch.allclose(half_output, warped + 0.5 * (full_output - warped), atol=1e-6)

    # A head refiner that did not help on its validation clips (strength 0) changes nothing: the frames are
    # the warp engine's with the shipped eye and mouth generators, exactly as without it.
    save_checkpoint(tmp_path / "unhelpful.pt", {**payload, "strength": 0.0})
    values = channel_values(jaw_open=0.6, head_yaw=10.0)
    assert np.array_equal(RefineEngine(subject, checkpoint=tmp_path / "unhelpful.pt", device="cpu").render(values),
                          RefineEngine(subject, device="cpu").render(values))

    with pytest.raises(EnlivenError, match="validation clip.* not in the dataset"):
        Trainer(dataset, tmp_path / "other", replace(config, validation=("nowhere",)), show_progress_bar=False)
    with pytest.raises(EnlivenError, match="holdout clip.* not in the dataset"):  # (a typo was trained on)
        Trainer(dataset, tmp_path / "other", replace(config, holdout=("nowhere",)), show_progress_bar=False)


def test_a_validated_run_resumes_against_its_best_model_and_is_never_mixed_with_another(dataset, tmp_path):
    config = replace(TINY, validation=("turning",), validate_every=1, validation_pairs=2, steps=3,
                     checkpoint_every=10**6)
    Trainer(dataset, tmp_path / "run", replace(config, steps=2), show_progress_bar=False).run()
    # best.pt can be newer than last.pt (validation runs more often than checkpoints): resuming keeps its score.
    best = load_checkpoint(tmp_path / "run" / "best.pt")
    better = {**{k: v for k, v in best.items() if k not in ("format", "version")},
              "best": {**best["best"], "val_l1": best["best"]["val_l1"] / 10}}
    save_checkpoint(tmp_path / "run" / "best.pt", better)
    resumed = Trainer(dataset, tmp_path / "run", resume=True, steps=3, show_progress_bar=False)
    assert resumed.best["val_l1"] == better["best"]["val_l1"]
    resumed.run()
    assert load_checkpoint(tmp_path / "run" / "best.pt")["best"] == better["best"], "a worse model replaced it"

    # Resume scores the same pairs, so their number may not change; a fresh run never shares a folder with a
    # model from another run.
    with pytest.raises(EnlivenError, match=r"other settings \(validation_pairs 2 -> 3\)"):  # named: it said only "no --config"
        Trainer(dataset, tmp_path / "run", replace(config, validation_pairs=3), resume=True, show_progress_bar=False)
    with pytest.raises(EnlivenError, match=r"other settings \(holdout \(\) -> \(.turning.,\)\)"):
        Trainer(dataset, tmp_path / "run", replace(config, holdout=("turning",)), resume=True, show_progress_bar=False)
    (tmp_path / "run" / "last.pt").unlink()
    with pytest.raises(EnlivenError, match="best.pt"):
        Trainer(dataset, tmp_path / "run", TINY, show_progress_bar=False)


def test_a_resumed_run_whose_best_model_was_deleted_writes_a_new_one(dataset, tmp_path):
    """It said "wrote RUN/best.pt" and wrote none: only a model better than the deleted one's score would have
    been written."""
    run = tmp_path / "run"
    config = replace(TINY, validation=("turning",), validate_every=1, validation_pairs=2, steps=2,
                     checkpoint_every=10**6)
    Trainer(dataset, run, config, show_progress_bar=False).run()
    payload = load_checkpoint(run / "last.pt")
    save_checkpoint(run / "last.pt", {**{k: v for k, v in payload.items() if k not in ("format", "version")},
                                      "best": {**payload["best"], "val_l1": 0.0}})  # a score no model beats
    (run / "best.pt").unlink()
    done = run_enliven("train", dataset, "--out", run, "--resume", "--steps", 3)
    assert done.returncode == 0, done.stderr
    assert load_checkpoint(run / "best.pt")["step"] == 3
    assert f"best on the validation clips: step 3, " in done.stdout and f"in {run / 'best.pt'}" in done.stdout


def test_refine_engine_renders_full_frames_with_a_checkpoint(dataset, tmp_path, subject, astronaut):
    Trainer(dataset, tmp_path / "run", replace(TINY, steps=2), show_progress_bar=False).run()
    engine = RefineEngine(subject, checkpoint=tmp_path / "run" / "last.pt", device="cpu")
    assert np.array_equal(engine.render(channel_values()), astronaut), "default channels reproduce the photo"
    values = channel_values(jaw_open=0.6, head_yaw=10.0)
    frame = engine.render(values)
    warped = WarpEngine(subject).render(values)
    assert frame.shape == astronaut.shape and frame.dtype == np.uint8
    x0, y0, x1, y1 = subject.head_region
    outside = np.ones(frame.shape[:2], bool)
    outside[y0:y1, x0:x1] = False
    assert np.array_equal(frame[outside], warped[outside]), "only the head region is refined"
    with pytest.raises(EnlivenError, match="leave --checkpoint out"):
        RefineEngine(subject, checkpoint=tmp_path / "run" / "missing.pt")


def test_train_command_and_sigterm_saves(dataset, tmp_path):
    config = tmp_path / "tiny.json"
    config.write_text(json.dumps({**{k: v for k, v in TINY.to_dict().items() if k != "holdout"}, "steps": 10**6,
                                  "checkpoint_every": 10**6}))
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    run = tmp_path / "run"
    process = subprocess.Popen([sys.executable, "-m", "enliven.neural.train", str(dataset), "--out", str(run),
                                "--config", str(config)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    try:
        deadline = time.monotonic() + 45
        while not (run / "log.csv").exists() or (run / "log.csv").read_text().count("\n") < 3:
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "training did not start"
            time.sleep(0.2)
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    # Saved, and 130 (not 0): a script can tell a run that was stopped from one that finished.
    assert process.returncode == 130, err
    step = load_checkpoint(run / "last.pt")["step"]
    assert 2 <= step < 10**6
    assert f"step {step}/" in out and f"interrupted at step {step}" in err


def test_perceptual_loss_joins_training_with_vgg_weights(dataset, tmp_path):
    from enliven.neural.vgg import vgg19_features

    weights_file = tmp_path / "vgg19.pth"
    torch.save({f"features.{k}": v for k, v in vgg19_features(until=36).state_dict().items()}, weights_file)
    trainer = Trainer(dataset, tmp_path / "run", replace(TINY, steps=1), vgg_weights=weights_file,
                      show_progress_bar=False)
    batch = collate_pairs([trainer.dataset[ExampleKey(0, 0, slot)] for slot in range(2)])
    losses = trainer.train_step(batch)
    assert losses["perceptual"] > 0


def test_a_full_disk_is_one_line_naming_the_checkpoint_and_leaves_no_partial_file(dataset, tmp_path):
    """torch's zip writer made a full disk a RuntimeError traceback ("unexpected pos") that named no file."""
    config = tmp_path / "tiny.json"
    config.write_text(json.dumps({**{k: v for k, v in TINY.to_dict().items() if k != "holdout"}, "steps": 1}))
    run = tmp_path / "run"
    # last.pt is about 420 kB, samples.png 140. (Where in last.pt the disk fills decides whether torch's writer
    # said RuntimeError or OSError: this one gave the RuntimeError.)
    done = run_enliven("train", dataset, "--out", run, "--config", config, largest_file=250_000)
    assert done.returncode == 1, done.stderr
    assert done.stderr.splitlines()[-1] == f"enliven: error: File too large: '{run / 'last.pt'}'", done.stderr
    assert "Traceback" not in done.stderr
    assert not [path.name for path in run.rglob("*") if path.name.startswith(".")], "a partial file was left"


@pytest.mark.parametrize("command", ["prepare", "train", "train-regions"])
@pytest.mark.parametrize("inside_a_file", [False, True])
def test_an_output_folder_that_cannot_be_made_is_a_usage_error_before_any_work(command, inside_a_file, dataset,
                                                                                tmp_path):
    """--out a file, or a folder under one: exit 2, said before any work (train-regions found it after drawing
    the whole bank, 8.5 minutes for the documented 12,000 examples; each was exit 1, "File exists")."""
    blocker = tmp_path / "notes.txt"
    blocker.write_text("a file")
    out = blocker / "run" if inside_a_file else blocker
    done = run_enliven(command, tmp_path if command == "prepare" else dataset, "--out", out)
    assert done.returncode == 2, done.stderr
    expected = (f"'{blocker}' is a file, so the folder '{out}' cannot be made there." if inside_a_file
                else f"'{blocker}' is a file, not a folder.")
    assert done.stderr.splitlines() == [f"enliven: error: {expected}"]


def test_a_resumed_run_keeps_its_perceptual_loss(dataset, tmp_path):
    """Resumed without --vgg-weights, a run dropped its perceptual loss silently (the checkpoint did not say it
    had one): it reloads the weights it recorded, or refuses, by name, to go on without them or with others."""
    from enliven.neural.vgg import VGGWeightsError, vgg19_features

    weights_file = tmp_path / "vgg19.pth"
    torch.save({f"features.{k}": v for k, v in vgg19_features().state_dict().items()}, weights_file)
    run = tmp_path / "run"
    Trainer(dataset, run, replace(TINY, steps=1), vgg_weights=weights_file, show_progress_bar=False).run()
    resumed = Trainer(dataset, run, resume=True, steps=2, show_progress_bar=False)
    batch = collate_pairs([resumed.dataset[ExampleKey(0, 0, slot)] for slot in range(2)])
    assert resumed.train_step(batch)["perceptual"] > 0

    other = tmp_path / "other.pth"
    other.write_bytes(b"other weights")
    with pytest.raises(VGGWeightsError, match=f"'{other}' are not the VGG weights .* was trained with"):
        Trainer(dataset, run, resume=True, steps=2, vgg_weights=other, show_progress_bar=False)
    moved = weights_file.rename(tmp_path / "moved.pth")
    with pytest.raises(VGGWeightsError, match=f"the VGG weights '{weights_file}', which is gone: give those weights "
                                              "with --vgg-weights"):
        Trainer(dataset, run, resume=True, steps=2, show_progress_bar=False)
    assert Trainer(dataset, run, resume=True, steps=2, vgg_weights=moved, show_progress_bar=False).perceptual

    plain = tmp_path / "plain"  # and a run trained without it is resumed without it
    Trainer(dataset, plain, replace(TINY, steps=1), show_progress_bar=False).run()
    with pytest.raises(VGGWeightsError, match="was trained without the perceptual loss"):
        Trainer(dataset, plain, resume=True, steps=2, vgg_weights=moved, show_progress_bar=False)


def test_vgg_weights_that_are_not_plain_data_are_refused_without_advice_to_run_their_code(tmp_path):
    """torch's message advised loading the file with weights_only=False, which would run code from it."""
    from enliven.neural.vgg import VGGWeightsError, load_vgg19

    pickled = tmp_path / "garbage.pth"
    torch.save({"features.0.weight": Exception("runs code when unpickled")}, pickled)
    with pytest.raises(VGGWeightsError) as refused:
        load_vgg19(pickled)
    assert refused.value.message == (f"'{pickled}' is not a torchvision VGG19 weights file (it is not a file of plain "
                                     "tensors and data, the only kind Enliven loads).")
