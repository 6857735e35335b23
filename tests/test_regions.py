"""The neural region generator (eyes and mouth): patches line up with the landmarks, the generator keeps
its shapes and learns, paste-back leaves no seam, the shipped model loads safely and works in every
surface, and training runs (also as two DDP ranks) on a clip the test makes."""
from __future__ import annotations

import json
import os
import pickle
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest

from conftest import channel_values, run_enliven
from enliven import landmarks as lm
from enliven.engines.regions import (cut_patch, paste_correction, paste_mask, patch_transform, region_specs,
                                     shape_raster, to_patch)

torch = pytest.importorskip("torch")
import torch.multiprocessing as mp  # noqa: E402

from enliven.animator import Animator  # noqa: E402
from enliven.engines.refine import DEFAULT_REGIONS, RefineEngine  # noqa: E402
from enliven.errors import CheckpointError  # noqa: E402
from enliven.neural.prepare import add_clip, clip_from_animation  # noqa: E402
from enliven.neural.region_config import CPU  # noqa: E402
from enliven.neural.region_generator import RegionGenerator  # noqa: E402

TINY = replace(CPU, eye_side=32, mouth_side=32, channels=8, max_channels=16, downsamples=2, res_blocks=1, groups=4,
               discriminator_channels=8, discriminator_layers=2, batch=4, steps=3, gan_start_step=1, log_every=1,
               checkpoint_every=2)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


# ---------------------------------------------------------------- patches


def test_patches_put_each_region_upright_and_the_left_eye_mirrored(subject):
    points = subject.landmarks
    right, left, mouth = region_specs()
    for spec, outer, inner in ((right, 33, 133), (left, 263, 362), (mouth, 61, 291)):
        placed = to_patch(patch_transform(points, spec), points[[outer, inner]])
        assert placed[0, 0] < placed[1, 0], f"{spec.name}: the first landmark lands on the patch's left"
        assert abs(placed[0, 1] - placed[1, 1]) < 1e-6, f"{spec.name}: the landmarks lie on one row"
        width = placed[1, 0] - placed[0, 0]
        assert width == pytest.approx(spec.side / spec.span, rel=1e-6)
    # Mirrored: the left eye's upper lid is above its lower lid in the patch, like the right eye's.
    for spec, upper, lower in ((right, 159, 145), (left, 386, 374)):
        placed = to_patch(patch_transform(points, spec), points[[upper, lower]])
        assert placed[0, 1] < placed[1, 1]


def test_shape_rasters_follow_the_landmarks(subject):
    right, _, mouth = region_specs()
    points = subject.landmarks
    transform = patch_transform(points, right)
    shape = shape_raster(points, transform, right)
    iris = to_patch(transform, points[[lm.RIGHT_IRIS[0]]])[0].round().astype(int)
    assert shape[iris[1], iris[0], 1] > 0.9, "the iris disc is drawn at the iris landmark"
    assert shape[0, 0].max() == 0.0, "nothing drawn in the patch's corner"
    closed = points.copy()
    closed[list(lm.RIGHT_EYE_LOWER), 1] = closed[list(lm.RIGHT_EYE_UPPER), 1]  # lids together
    assert shape_raster(closed, transform, right)[..., 0].sum() < 0.2 * shape[..., 0].sum()
    mouth_shape = shape_raster(points, patch_transform(points, mouth), mouth)
    assert mouth_shape[..., 1].sum() > mouth_shape[..., 0].sum(), "the lips enclose the opening"


def test_paste_back_touches_nothing_outside_the_feathered_mask(astronaut, subject):
    spec = region_specs()[2]
    transform = patch_transform(subject.landmarks, spec)
    frame = astronaut.copy()
    correction = np.full((spec.side, spec.side, 3), 40.0, np.float32) * paste_mask(spec)[..., None]
    paste_correction(frame, correction, transform)
    changed = np.abs(frame.astype(int) - astronaut).max(axis=2) > 0
    inside = mask_in_image(spec, transform, astronaut.shape)
    assert changed.any() and not (changed & ~inside).any(), "changes only where the paste mask is above zero"
    assert np.array_equal(cut_patch(frame, transform, spec.side)[0, 0], cut_patch(astronaut, transform, spec.side)[0, 0])


def mask_in_image(spec, transform, shape) -> np.ndarray:
    """Where a region's paste mask reaches in the image."""
    inverse = cv2.invertAffineTransform(transform)
    back = cv2.warpAffine(paste_mask(spec), inverse, (shape[1], shape[0]), flags=cv2.INTER_LINEAR)
    return back > 0


# ---------------------------------------------------------------- the networks


@pytest.mark.parametrize("side", [32, 64])
def test_the_generator_keeps_the_patch_shape_and_starts_as_the_warp(side):
    generator = RegionGenerator(TINY, side)
    warped = torch.rand(2, 3, side, side) * 2 - 1
    out = generator(warped, torch.rand(2, 3, side, side), torch.rand(2, 3, side, side), torch.rand(2, 3, side, side),
                    torch.ones(1, 1, side, side), generator.inference_noise(2))
    assert out.shape == warped.shape
    assert torch.equal(out, warped.clamp(-1, 1)), "an untrained generator returns the warp"


@pytest.mark.parametrize("bfloat16", [False, True])
def test_overfitting_a_tiny_batch_lowers_the_loss(bfloat16):
    """In float32, and in bfloat16 (forced on: emulated on a CPU that lacks it), as training runs where it has it."""
    from enliven.neural.region_train import KindTrainer

    rng = np.random.default_rng(0)
    count, side = 4, TINY.eye_side
    bank = {name: rng.integers(0, 255, (count, side, side, 3), dtype=np.uint8)
            for name in ("warped", "source", "real", "target_shape", "source_shape")}
    bank["real"] = (0.6 * bank["warped"] + 40).astype(np.uint8)  # something a warp cannot make
    bank.update(flag=np.zeros(count, bool), person=np.arange(count))
    config = replace(TINY, lr_generator=3e-3, precision="auto" if bfloat16 else "fp32")
    trainer = KindTrainer("eye", bank, config, torch.device("cpu"), world=1)
    trainer.autocast["enabled"] = bfloat16
    batch = trainer.batch(np.arange(count), None)
    losses = [trainer.step(batch, None, adversarial=step >= 30)["l1"] for step in range(40)]
    assert np.mean(losses[-5:]) < 0.6 * losses[0], losses
    assert all(parameter.dtype == torch.float32 for parameter in trainer.generator.parameters())


# ---------------------------------------------------------------- the shipped model in the engine


def test_the_shipped_model_loads_with_weights_only_and_the_engine_uses_it(subject, astronaut):
    from enliven.engines.warp import WarpEngine
    from enliven.neural.checkpoint import load_checkpoint
    from enliven.neural.region_config import REGION_FORMAT

    assert DEFAULT_REGIONS.stat().st_size < 20 * 2**20
    payload = load_checkpoint(DEFAULT_REGIONS, expected_format=REGION_FORMAT)  # torch.load(weights_only=True)
    assert payload["step"] > 0 and {"eye", "mouth"} <= set(payload)
    engine = RefineEngine(subject)
    warp = WarpEngine(subject)
    still = channel_values()
    assert np.array_equal(engine.render(still), astronaut), "every channel at default returns the photo exactly"
    blink = channel_values(blink_l=1.0, blink_r=1.0)
    neural, warped = engine.render(blink), warp.render(blink)
    changed = np.abs(neural.astype(int) - warped).max(axis=2) > 0
    assert changed.any(), "the eye generator redraws closed eyes"
    inside = np.zeros(changed.shape, bool)
    target = warp.rig.targets(blink)
    for spec in region_specs(engine.regions.config.eye_side, engine.regions.config.mouth_side)[:2]:
        inside |= mask_in_image(spec, patch_transform(target, spec), astronaut.shape)
    assert not (changed & ~inside).any(), "no change outside the eyes' feathered masks: no seam"
    mouth_only = channel_values(jaw_open=0.7)
    assert np.abs(engine.render(mouth_only).astype(int) - warp.render(mouth_only)).max() > 0


def test_an_unknown_training_precision_is_a_clear_config_error():
    from enliven.neural.config import ConfigError
    from enliven.neural.region_config import RegionConfig

    assert RegionConfig.from_dict({"precision": "fp32"}).precision == "fp32"
    with pytest.raises(ConfigError, match="precision must be auto or fp32"):
        RegionConfig.from_dict({"precision": "bf16"})


def test_network_widths_that_groups_cannot_split_are_a_clear_config_error():
    """channels 10 with 4 GroupNorm groups was PyTorch's ValueError (a traceback) once training started; the
    head refiner's settings are checked the same way. Every preset passes."""
    from enliven.neural.config import PRESETS, ConfigError, RefineConfig
    from enliven.neural.region_config import PRESETS as REGION_PRESETS, RegionConfig
    from enliven.neural.region_generator import RegionGenerator

    with pytest.raises(ConfigError, match=r"groups 4 does not divide the network's widths \[10, 20, 40"):
        RegionConfig.from_dict({"channels": 10})
    with pytest.raises(ConfigError, match="generator_groups 8 does not divide"):
        RefineConfig.from_dict({"generator_channels": 12})
    for preset in (*PRESETS, *REGION_PRESETS):
        (RefineConfig if preset in PRESETS else RegionConfig).from_dict({"preset": preset})
    RegionGenerator(RegionConfig.from_dict({"channels": 12, "groups": 4}), 32)  # what passes can be made


def test_bfloat16_inference_draws_what_float32_draws(subject):
    """Where the CPU computes in bfloat16 the networks run in it (a third faster); the frames must not show it.
    Forced on here, so that a CPU without bfloat16 (where it is emulated) checks it too."""
    engine = RefineEngine(subject)
    corrector = engine.regions  # shared by every engine of this model: restored below
    saved = dict(corrector.autocast)
    motion = channel_values(blink_l=0.9, blink_r=0.6, gaze_x=0.7, jaw_open=0.6, smile_l=0.4)
    try:
        frames = {}
        for enabled in (False, True):
            corrector.autocast.update(device_type="cpu", dtype=torch.bfloat16, enabled=enabled)
            frames[enabled] = engine.render(motion).astype(int)
    finally:
        corrector.autocast.clear()
        corrector.autocast.update(saved)
    difference = np.abs(frames[True] - frames[False])
    assert difference.any(), "the networks ran in bfloat16"
    assert difference.max() <= 2 and (difference > 1).mean() < 1e-4


def test_a_saved_model_gets_the_umasks_permissions(tmp_path):
    """Not tempfile's owner-only ones: a render farm's other accounts read the models a training run writes."""
    from enliven.neural.checkpoint import save_checkpoint

    old_umask = os.umask(0o022)
    try:
        path = save_checkpoint(tmp_path / "best.pt", {"step": 1, "config": {}}, checkpoint_format="enliven-regions")
    finally:
        os.umask(old_umask)
    assert oct(path.stat().st_mode & 0o777) == oct(0o644)
    assert [p.name for p in tmp_path.iterdir()] == ["best.pt"]


class RunsCode:
    def __reduce__(self):
        return os.system, ("echo this ran >&2",)


def test_corrupt_and_pickled_models_are_refused_with_exit_8(tmp_path, astronaut_path, subject):
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(b"PK\x03\x04 not a model")
    pickled = tmp_path / "pickled.pt"
    torch.save({"format": "enliven-regions", "object": Exception("runs code when unpickled")}, pickled)
    evil = tmp_path / "evil.pt"  # a plain pickle: torch warned about its protocol before refusing it
    evil.write_bytes(pickle.dumps(RunsCode(), protocol=4))
    for path in (corrupt, pickled, evil):
        done = subprocess.run([sys.executable, "-m", "enliven.cli", "generate", str(astronaut_path), "--engine", "refine",
                               "--checkpoint", str(path), "--preset", "blink", "--out", str(tmp_path / "frames")],
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 8, done.stderr
        assert str(path) in done.stderr and "Traceback" not in done.stderr
        assert "Warning" not in done.stderr and len(done.stderr.splitlines()) == 1, done.stderr
        with pytest.raises(CheckpointError):
            RefineEngine(subject, checkpoint=path)


# ---------------------------------------------------------------- training


@pytest.fixture(scope="module")
def dataset(tmp_path_factory, subject):
    out = tmp_path_factory.mktemp("region-dataset")
    ramp = np.linspace(0.0, 1.0, 6)
    add_clip(out, "blinking", clip_from_animation(
        subject, [channel_values(blink_l=t, blink_r=t, jaw_open=0.5 * t) for t in ramp], side=160))
    return out


def test_train_regions_on_a_made_clip_and_render_with_the_result(dataset, tmp_path, subject, astronaut):
    config = tmp_path / "tiny.json"
    config.write_text(json.dumps({k: v for k, v in TINY.to_dict().items() if k != "preset"}))
    done = subprocess.run([sys.executable, "-m", "enliven.cli", "train-regions", str(dataset), "--out",
                           str(tmp_path / "run"), "--config", str(config), "--examples", "24"],
                          capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr
    assert "fewer than 10 people in the dataset, so none is held out" in done.stderr  # one person: said, not silent
    for name in ("last.pt", "best.pt", "samples.png", "scores.json", "bank/eye.npz", "bank/mouth.npz"):
        assert (tmp_path / "run" / name).exists(), name
    engine = Animator(subject, engine="refine", checkpoint=tmp_path / "run" / "best.pt")
    assert engine.render(channel_values(blink_l=1.0)).shape == astronaut.shape


QUIET = dict(device="cpu", log=lambda _: None)


def _tiny_model_and_a_run_on_its_bank(dataset, tmp_path) -> tuple[Path, Path]:
    """(a tiny model's last.pt, a new run folder that shares its bank of examples, drawn once)."""
    from enliven.neural.region_train import train_regions

    train_regions(dataset, tmp_path / "first", replace(TINY, steps=2), examples=16, **QUIET)
    (tmp_path / "tuned").mkdir()
    (tmp_path / "tuned" / "bank").symlink_to(tmp_path / "first" / "bank")
    return tmp_path / "first" / "last.pt", tmp_path / "tuned"


def _regions_file(path: Path) -> dict:
    from enliven.neural.checkpoint import load_checkpoint
    from enliven.neural.region_config import REGION_FORMAT

    return load_checkpoint(path, expected_format=REGION_FORMAT)


def test_resuming_with_other_network_settings_is_refused_by_name(dataset, tmp_path):
    """Its weights fit no other networks: resumed with other channels, PyTorch's size mismatch was a traceback."""
    from enliven.neural.config import ConfigError
    from enliven.neural.region_train import train_regions

    train_regions(dataset, tmp_path / "run", replace(TINY, steps=1), examples=16, **QUIET)
    with pytest.raises(ConfigError, match=r"other settings \(channels 8 -> 4\)"):
        train_regions(dataset, tmp_path / "run", replace(TINY, steps=2, channels=4), examples=16, **QUIET)
    assert train_regions(dataset, tmp_path / "run", replace(TINY, steps=2), examples=16, **QUIET).step == 2


def test_a_resumed_run_keeps_its_own_settings(dataset, tmp_path):
    """Resumed without --config, a run goes on with the settings it was started with (it took the cpu
    preset's: an L1 fine-tune became a GAN run at another learning rate); a --config that changes more than
    the bookkeeping (steps, logging, checkpoints) is refused by name, exit 2 (its batch, seed and GAN start
    took effect, its learning rate did not)."""
    from enliven.neural.region_train import train_regions

    l1_only = replace(TINY, steps=1, gan_start_step=10**8, lr_generator=1e-4, seed=3)
    run = tmp_path / "run"
    train_regions(dataset, run, l1_only, examples=16, **QUIET)
    other = tmp_path / "other.json"
    other.write_text(json.dumps({**l1_only.to_dict(), "steps": 2, "lr_generator": 1e-3, "batch": 8}))
    refused = subprocess.run([sys.executable, "-m", "enliven.cli", "train-regions", str(dataset), "--out", str(run),
                              "--config", str(other)], capture_output=True, text=True, timeout=300,
                             env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert refused.returncode == 2, refused.stderr
    assert refused.stderr.startswith("enliven: error: resuming with other settings (") and "Traceback" not in refused.stderr
    assert "lr_generator 0.0001 -> 0.001" in refused.stderr and "batch 4 -> 8" in refused.stderr
    assert "steps" not in refused.stderr.split(" than ")[0]  # more steps may be asked for
    resumed = subprocess.run([sys.executable, "-m", "enliven.cli", "train-regions", str(dataset), "--out", str(run)],
                             capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert resumed.returncode == 0, resumed.stderr
    assert _regions_file(run / "last.pt")["config"] == l1_only.to_dict()
    more = train_regions(None, run, replace(l1_only, steps=2, log_every=5, checkpoint_every=7), **QUIET)
    assert more.step == 2
    assert _regions_file(run / "last.pt")["config"] == replace(l1_only, steps=2, log_every=5, checkpoint_every=7).to_dict()


def test_a_new_run_never_overwrites_an_earlier_runs_model(dataset, tmp_path):
    """A folder that holds best.pt but no last.pt (a model kept, its checkpoint removed) is refused, as
    `enliven train` refuses it; it was trained over, and the model was lost."""
    from enliven.neural.run_folder import RunExistsError
    from enliven.neural.region_train import train_regions

    run = tmp_path / "run"
    run.mkdir()
    model = run / "best.pt"
    model.write_bytes(b"an earlier run's model")
    with pytest.raises(RunExistsError, match=r"holds a model from an earlier run \(best.pt\): choose another folder"):
        train_regions(dataset, run, replace(TINY, steps=1), examples=16, **QUIET)
    assert model.read_bytes() == b"an earlier run's model"


def test_a_full_disk_is_one_line_naming_the_file_and_leaves_no_partial_files(dataset, tmp_path):
    """A full disk (here: a limit on the size of a file) while the bank is written, then while last.pt is:
    one line naming the file, exit 1, no traceback, and nothing half-written left filling the disk (torch's zip
    writer's RuntimeError was a traceback; the bank left .eye.partial.npz and a second error from its zip)."""
    from enliven.neural.region_data import BankConfig, build_bank

    config = tmp_path / "tiny.json"
    config.write_text(json.dumps({**TINY.to_dict(), "steps": 1}))
    run = tmp_path / "run"

    def train_on_a_full_disk(unwritten: Path) -> None:
        # The eye bank of 16 examples is about 490 kB, best.pt 180, last.pt 700. (Where in last.pt the disk fills
        # decides whether torch's writer said RuntimeError or OSError: this one gave the RuntimeError.)
        done = run_enliven("train-regions", dataset, "--out", run, "--config", config, "--examples", 16,
                           largest_file=250_000)
        assert done.returncode == 1, done.stderr
        assert done.stderr.splitlines()[-1] == f"enliven: error: File too large: '{unwritten}'", done.stderr
        assert "Traceback" not in done.stderr and "Exception ignored" not in done.stderr, done.stderr
        assert not unwritten.exists()
        assert not [path.name for path in run.rglob("*") if path.name.startswith(".")], "a partial file was left"

    train_on_a_full_disk(run / "bank" / "eye.npz")
    build_bank(dataset, run / "bank", BankConfig(examples=16, eye_side=TINY.eye_side, mouth_side=TINY.mouth_side))
    train_on_a_full_disk(run / "last.pt")
    # Space made, the same command again trains in that folder (best.pt, written before last.pt, was left
    # alone, and the folder refused as holding an earlier run's model: its bank with it).
    done = run_enliven("train-regions", dataset, "--out", run, "--config", config, "--examples", 16)
    assert done.returncode == 0, done.stderr


def test_a_bank_already_drawn_is_used_only_for_the_run_it_fits(dataset, tmp_path):
    """RUN_DIR/bank (kept from a run that failed before its first checkpoint, say) was used whatever the
    command asked: another dataset and --examples were ignored, other patch sides a PyTorch traceback. It is
    used, and says so, when it is what the run asks for; otherwise it is refused, by name, exit 2."""
    from enliven.neural.prepare import DatasetError
    from enliven.neural.region_data import BankConfig, build_bank
    from enliven.neural.region_train import train_regions

    run = tmp_path / "run"
    build_bank(dataset, run / "bank", BankConfig(examples=16, eye_side=TINY.eye_side, mouth_side=TINY.mouth_side))
    one_step = replace(TINY, steps=1)
    with pytest.raises(DatasetError, match=r"holds 16 examples drawn otherwise than this run asks \(examples 16 -> 24\)"):
        train_regions(dataset, run, one_step, examples=24, **QUIET)
    moved, other = tmp_path / "moved", tmp_path / "other"
    shutil.copytree(dataset, moved)  # the same dataset elsewhere: a copied run folder, a disk mounted elsewhere
    shutil.copytree(dataset, other)
    index = json.loads((other / "dataset.json").read_text())
    (other / "dataset.json").write_text(json.dumps({**index, "clips": index["clips"] + ["another"]}))
    with pytest.raises(DatasetError, match=rf"\(the dataset {dataset.resolve()} -> {other.resolve()}, whose clips "
                                           r"differ\)"):
        train_regions(other, run, one_step, examples=16, **QUIET)
    with pytest.raises(DatasetError, match=r"\(eye_side 32 -> 64\)"):
        train_regions(dataset, run, replace(one_step, eye_side=64), examples=16, **QUIET)
    logged = []
    assert train_regions(moved, run, one_step, device="cpu", log=logged.append).step == 1  # --examples left out
    assert f"using the 16 examples already drawn from {dataset.resolve()} in {run / 'bank'}" in logged
    assert not any(line.startswith("drawing") for line in logged)
    # A bank drawn before banks had a record: its patches must still fit the networks.
    (run / "bank" / "bank.json").unlink()
    for name in ("last.pt", "best.pt"):
        (run / name).unlink()
    with pytest.raises(DatasetError, match="holds eye patches of 32 pixels, this run's config makes 64"):
        train_regions(dataset, run, replace(one_step, eye_side=64), **QUIET)


@pytest.mark.parametrize("device", ["gpu", "cdua"])
def test_an_unknown_device_is_a_usage_error(device, tmp_path):
    """--device gpu (or a typo) trained on the CPU, silently; as with `enliven train`, it is refused."""
    done = run_enliven("train-regions", tmp_path / "dataset", "--out", tmp_path / "run", "--device", device)
    assert done.returncode == 2, done.stderr
    assert f"--device: invalid choice: '{device}' (choose from 'auto', 'cpu', 'cuda')" in done.stderr


def test_a_run_says_what_it_wrote_and_writes_its_last_step_once(dataset, tmp_path):
    """The last step was validated and written twice when steps was no multiple of checkpoint_every; a finished
    run run again said "wrote last.pt and best.pt; validation: " (nothing) and wrote nothing; and a run whose
    best.pt was deleted never wrote a new one."""
    from enliven.neural.checkpoint import save_checkpoint
    from enliven.neural.region_config import REGION_FORMAT
    from enliven.neural.region_train import train_regions

    run, logged = tmp_path / "run", []
    three_steps = replace(TINY, steps=3, checkpoint_every=2)
    result = train_regions(dataset, run, three_steps, examples=16, device="cpu", log=logged.append)
    assert [line.split()[0] for line in logged if line.startswith(("step", "validation"))] == [
        "step", "step", "validation", "step", "validation"]  # (logs of steps 0, 1, 2; checkpoints at 2 and 3)
    assert result.written == ("last.pt", "best.pt")

    last = (run / "last.pt").read_bytes()
    done = run_enliven("train-regions", dataset, "--out", run)
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"{run} is already trained to step 3: nothing to do (a --config with more steps trains it on)\n"
    assert (run / "last.pt").read_bytes() == last

    # best.pt deleted, and a score in last.pt that no model beats: a new best.pt all the same.
    (run / "best.pt").unlink()
    payload = _regions_file(run / "last.pt")
    save_checkpoint(run / "last.pt", {**{k: v for k, v in payload.items() if k not in ("format", "version")},
                                      "best": -1.0}, checkpoint_format=REGION_FORMAT)
    assert train_regions(None, run, replace(three_steps, steps=4), **QUIET).written == ("last.pt", "best.pt")
    assert _regions_file(run / "best.pt")["step"] == 4


def test_fine_tuning_one_kind_keeps_the_others_generator(dataset, tmp_path):
    """`--init MODEL --only mouth` starts from the model's generators and trains the mouth's alone: the eye
    generator it writes is the model's, weight for weight (the shipped model was made so), also after the run
    is resumed without naming --only again."""
    from enliven.neural.region_train import train_regions

    model_file, run = _tiny_model_and_a_run_on_its_bank(dataset, tmp_path)
    tune = replace(TINY, steps=2, seed=1)  # (another seed: networks started from scratch would differ entirely)
    train_regions(None, run, tune, init=model_file, only="mouth", **QUIET)
    resumed = train_regions(None, run, replace(tune, steps=4), **QUIET)
    model, saved = _regions_file(model_file), _regions_file(run / "last.pt")
    assert saved["step"] == 4
    for kind in ("eye", "mouth"):
        before, after = model[kind]["generator"], saved[kind]["generator"]
        assert all(torch.equal(after[k], resumed.generators[kind].state_dict()[k]) for k in before)
        if kind == "eye":
            assert all(torch.equal(before[k], after[k]) for k in before)
        else:  # trained, a few small steps from where the model was
            assert not all(torch.equal(before[k], after[k]) for k in before)
            assert all(torch.allclose(before[k].float(), after[k].float(), atol=0.01) for k in before)


def test_a_fine_tune_that_only_makes_things_worse_hands_back_the_model_as_best(dataset, tmp_path):
    """best.pt keeps the lowest held-out error, and the model a fine-tune starts from is scored first: at a
    learning rate that wrecks the networks, best.pt is that model, weight for weight, and last.pt is not."""
    from enliven.neural.region_train import train_regions

    model_file, run = _tiny_model_and_a_run_on_its_bank(dataset, tmp_path)
    train_regions(None, run, replace(TINY, steps=2, lr_generator=1.0), init=model_file, **QUIET)
    model, best, last = (_regions_file(path) for path in (model_file, run / "best.pt", run / "last.pt"))
    for kind in ("eye", "mouth"):
        weights = model[kind]["generator"]
        assert all(torch.equal(weights[k], best[kind]["generator"][k]) for k in weights), kind
        assert not all(torch.equal(weights[k], last[kind]["generator"][k]) for k in weights), kind
    assert best["step"] == 0 and last["step"] == 2


def test_fine_tuning_asks_for_a_model_that_fits(dataset, tmp_path):
    from enliven.errors import CheckpointError, UsageError
    from enliven.neural.region_train import train_regions

    with pytest.raises(UsageError, match="--init"):
        train_regions(dataset, tmp_path / "run", replace(TINY, steps=1), only="mouth", examples=16, **QUIET)
    with pytest.raises(CheckpointError, match="does not fit"):  # the shipped model's networks are larger
        train_regions(dataset, tmp_path / "run", replace(TINY, steps=1), init=DEFAULT_REGIONS, examples=16, **QUIET)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_two_ddp_ranks_train_identical_weights(dataset, tmp_path):
    from enliven.neural.region_data import BankConfig, build_bank

    run = tmp_path / "run"
    build_bank(dataset, run / "bank", BankConfig(examples=16, eye_side=TINY.eye_side, mouth_side=TINY.mouth_side))
    mp.spawn(_rank_and_dump, args=(2, _free_port(), str(run), str(tmp_path)), nprocs=2, join=True)
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(2)]
    for kind in ("eye", "mouth"):
        assert all(torch.equal(ranks[0][kind][k], ranks[1][kind][k]) for k in ranks[0][kind]), kind
    torch.manual_seed(TINY.seed)
    initial = RegionGenerator(TINY, TINY.eye_side).state_dict()
    assert any(not torch.equal(initial[k], ranks[0]["eye"][k]) for k in initial), "training moved the weights"


def _rank_and_dump(rank: int, world: int, port: int, run: str, out: str) -> None:
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port))
    torch.set_num_threads(1)
    from enliven.neural.region_train import train_regions

    result = train_regions(None, Path(run), replace(TINY, steps=2, checkpoint_every=10**6), device="cpu",
                           log=lambda _: None)
    torch.save({kind: generator.state_dict() for kind, generator in result.generators.items()},
               os.path.join(out, f"rank{rank}.pt"))
    torch.distributed.destroy_process_group()


def test_regions_only_carried_by_the_head_are_left_to_the_warp(subject):
    from enliven.engines.warp import WarpEngine

    engine, warp = RefineEngine(subject), WarpEngine(subject)
    shifted = channel_values(head_x=0.1, head_y=-0.05)
    assert np.array_equal(engine.render(shifted), warp.render(shifted)), "eyes and mouth only moved: warp as is"
    assert not np.array_equal(engine.render(channel_values(head_x=0.1, blink_r=0.8)),
                              warp.render(channel_values(head_x=0.1, blink_r=0.8)))


def test_a_photos_own_teeth_are_left_as_the_warp_moved_them(subject):
    """The astronaut smiles with her teeth showing. The mouth network learned on closed-mouthed photos whose
    teeth the warp painted, and greys hers as she talks (the model of 2 December 2026 30-45 levels darker on
    average, the one of 5 December 6-25, a tenth of her teeth 14-45 or more); the engine leaves them as the
    warp moved them, and still redraws her lips as much as before."""
    from enliven import artifacts as af
    from enliven.engines.mouth import skin_colour, teeth_pixels

    engine = RefineEngine(subject)
    assert engine.own_mouth_kept == "teeth"
    for jaw in (0.3, 0.6):
        values = channel_values(jaw_open=jaw)
        warped = engine.warp.render_with_fields(values, keep_fields=False)
        warp, points = warped.frame.copy(), warped.target_landmarks
        opening = af.polygon_mask(warp.shape, points[list(lm.inner_lip_polygon()), :2]) > 0
        lips = (af.polygon_mask(warp.shape, points[list(lm.LIPS_UPPER_OUTER + lm.LIPS_LOWER_OUTER[::-1]), :2]) > 0) & ~opening
        teeth = teeth_pixels(warp, skin_colour(subject.image, subject.landmarks)) & opening

        def refined(keeping: bool) -> tuple[np.ndarray, float]:
            engine.own_mouth_kept = "teeth" if keeping else None
            frame = engine.render(values).astype(float)
            return (warp[teeth] - frame[teeth]) @ np.array([0.299, 0.587, 0.114]), np.abs(frame[lips] - warp[lips]).mean()

        (greyed, lips_redrawn), (kept, lips_kept) = refined(False), refined(True)
        # (the premise: left to the network, her teeth go grey)
        assert teeth.sum() > 50 and np.percentile(greyed, 90) > 10
        assert np.percentile(kept, 90) < 3 and lips_kept > 0.9 * lips_redrawn > 2


def test_a_wide_open_mouths_own_interior_is_left_as_the_warp_stretched_it(animator):
    """A photo whose mouth is wide open (made from the astronaut): the warp stretches its own tongue and
    throat as the mouth opens further, and the mouth network leaves them so, where a model trained on the warp
    with lips_part darkened d9's tongue to a brownish red; it still redraws the lips around them."""
    from enliven import artifacts as af
    from enliven.analysis import analyze_image

    wide_open = analyze_image(animator.render(channel_values(jaw_open=1)))
    engine = RefineEngine(wide_open)
    assert engine.own_mouth_kept == "interior"
    for values in (channel_values(jaw_open=0.6), channel_values(lips_part=1)):
        warped = engine.warp.render_with_fields(values, keep_fields=False)
        warp, points = warped.frame.astype(int), warped.target_landmarks
        opening = af.polygon_mask(warp.shape, points[list(lm.inner_lip_polygon()), :2]) > 0
        inside = cv2.erode(opening.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0  # away from the blended rim
        lips = (af.polygon_mask(warp.shape, points[list(lm.LIPS_UPPER_OUTER + lm.LIPS_LOWER_OUTER[::-1]), :2]) > 0) & ~opening

        def redrawn(kept: str | None) -> tuple[float, float]:
            engine.own_mouth_kept = kept
            frame = engine.render(values).astype(int)
            return np.abs(frame[inside] - warp[inside]).max(), np.abs(frame[lips] - warp[lips]).mean()

        (interior_drawn, _), (interior_kept, lips_redrawn) = redrawn(None), redrawn("interior")
        assert inside.sum() > 200 and interior_drawn > 10, "(the premise: left to it, the network paints inside)"
        assert interior_kept == 0 and lips_redrawn > 1


def test_a_bank_drawn_by_two_processes_is_the_bank_one_process_draws(dataset, tmp_path):
    from enliven.neural.region_data import BANK_CHUNK, BankConfig, build_bank, load_bank

    config = BankConfig(examples=BANK_CHUNK + 16, eye_side=TINY.eye_side, mouth_side=TINY.mouth_side)
    serial = build_bank(dataset, tmp_path / "one", config, workers=1)
    parallel = build_bank(dataset, tmp_path / "two", config, workers=2)
    for kind in ("eye", "mouth"):
        one, two = load_bank(serial[kind]), load_bank(parallel[kind])
        assert one.keys() == two.keys() and len(one["warped"]) == (2 if kind == "eye" else 1) * config.examples
        for key in one:
            assert np.array_equal(one[key], two[key]), (kind, key)


def test_training_logs_every_tenth_of_a_bank_handed_back_in_chunks():
    from enliven.neural.region_data import BANK_CHUNK
    from enliven.neural.region_train import _every_tenth

    lines = []
    progress = _every_tenth(lines.append)
    total = 100 * BANK_CHUNK + 16
    for done in [*range(BANK_CHUNK, total, BANK_CHUNK), total]:  # as the workers' chunks come back
        progress(done, total)
    assert len(lines) == 10 and lines[-1] == f"  {total} / {total} examples", lines


def test_a_malformed_persons_file_is_a_clear_dataset_error(dataset, tmp_path):
    from enliven.neural.prepare import DatasetError
    from enliven.neural.region_data import PERSONS_FILE, BankConfig, build_bank

    persons = dataset / PERSONS_FILE
    for text in ("{not json", '["a list, not clip -> person"]'):
        persons.write_text(text)
        try:
            with pytest.raises(DatasetError, match=PERSONS_FILE):
                build_bank(dataset, tmp_path / "bank", BankConfig(examples=2))
        finally:
            persons.unlink()


def test_train_regions_stopped_by_sigterm_saves_its_last_step_and_exits_130(dataset, tmp_path):
    """A scheduler's stop (SIGTERM) or Ctrl-C ends the run after the step in progress, saved: nothing trained
    is lost (SIGTERM lost every step since the last checkpoint), and the exit code, 130, says it did not finish."""
    from enliven.neural.checkpoint import load_checkpoint

    config = tmp_path / "long.json"
    config.write_text(json.dumps({**{k: v for k, v in TINY.to_dict().items() if k != "preset"},
                                  "steps": 100000, "log_every": 1, "checkpoint_every": 100000}))
    log = tmp_path / "log.txt"
    with log.open("w") as stderr:
        run = subprocess.Popen([sys.executable, "-m", "enliven.cli", "train-regions", str(dataset), "--out",
                                str(tmp_path / "run"), "--config", str(config), "--examples", "16"],
                               stdout=subprocess.DEVNULL, stderr=stderr, env={**os.environ, "OMP_NUM_THREADS": "1"})
        try:
            deadline = time.monotonic() + 240
            while "\nstep 2 " not in log.read_text() and run.poll() is None and time.monotonic() < deadline:
                time.sleep(0.2)
            run.send_signal(signal.SIGTERM)
            assert run.wait(timeout=120) == 130, log.read_text()
        finally:
            run.kill()
    saved = _regions_file(tmp_path / "run" / "last.pt")["step"]
    assert 3 <= saved < 100000
    assert f"interrupted at step {saved}" in log.read_text()
    # train-regions has no --resume (it said to use one): the same command goes on
    assert "the same command again goes on from there" in log.read_text()


def test_a_persons_file_that_names_no_person_for_some_clips_is_said_before_drawing(dataset, tmp_path):
    # {"blinking.mp4": "alice"} (a file name, not the clip's name) matched no clip: every clip silently became its
    # own person, and the draws were weighted by clip, which persons.json is there to prevent
    import shutil

    from enliven.neural.region_train import train_regions

    lines = []
    copy = tmp_path / "dataset"
    shutil.copytree(dataset, copy)
    (copy / "persons.json").write_text(json.dumps({"blinking.mp4": "alice"}))
    train_regions(copy, tmp_path / "run", replace(TINY, steps=1), examples=8, device="cpu", log=lines.append)
    warned = [line for line in lines if "persons.json names no person" in line]
    assert len(warned) == 1 and "blinking" in warned[0] and "without its extension" in warned[0]

    lines.clear()
    (copy / "persons.json").write_text(json.dumps({"blinking": "alice", "a clip of another dataset": "bob"}))
    train_regions(copy, tmp_path / "run2", replace(TINY, steps=1), examples=8, device="cpu", log=lines.append)
    assert not [line for line in lines if "persons.json" in line], "a persons.json for more clips is fine"
