"""enliven prepare and the training examples: on a clip this test makes (the astronaut animated by the
warp engine, encoded to MP4), and on a video with no face in it."""
from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from conftest import channel_values  # noqa: E402
from enliven.engines.crops import MASK_NAMES, crop_inputs  # noqa: E402
from enliven.engines.warp import WarpEngine  # noqa: E402
from enliven.neural.config import RefineConfig  # noqa: E402
from enliven.neural.dataset import ExampleKey, PairDataset, collate_pairs  # noqa: E402
from enliven.neural.prepare import DatasetError, load_clip, prepare_dataset, read_index  # noqa: E402

FRAMES = 10


def animation() -> list[np.ndarray]:
    """A short performance: the jaw opens while the head turns and the eyes blink."""
    ramp = np.linspace(0.0, 1.0, FRAMES)
    return [channel_values(jaw_open=0.5 * t, head_yaw=12.0 * t, blink_l=t, blink_r=t) for t in ramp]


@pytest.fixture(scope="module")
def videos(tmp_path_factory, subject):
    import imageio.v2 as imageio

    folder = tmp_path_factory.mktemp("videos")
    engine = WarpEngine(subject)
    with imageio.get_writer(folder / "astronaut.mp4", fps=10, codec="libx264", quality=9, macro_block_size=16) as writer:
        for values in animation():
            writer.append_data(engine.render(values))
    with imageio.get_writer(folder / "grey.mp4", fps=10, codec="libx264", macro_block_size=16) as writer:
        for _ in range(6):
            writer.append_data(np.full((128, 128, 3), 128, np.uint8))
    return folder


@pytest.fixture(scope="module")
def prepared(videos, tmp_path_factory):
    out = tmp_path_factory.mktemp("dataset")
    lines: list[str] = []
    index = prepare_dataset(videos, out, side=128, log=lines.append)
    return out, index, lines


def test_prepare_stores_frames_landmarks_and_masks(prepared, subject):
    out, index, _ = prepared
    assert index["clips"] == ["astronaut"]
    clip = load_clip(out, "astronaut")
    assert clip.frames.shape == (FRAMES, 128, 128, 3) and clip.frames.dtype == np.uint8
    assert isinstance(clip.frames, np.memmap)
    assert clip.landmarks.shape == (FRAMES, 478, 3) and clip.landmarks.dtype == np.float32
    assert clip.masks.shape == (FRAMES, 128, 128) and clip.masks.dtype == np.uint8
    assert clip.frame_numbers.tolist() == list(range(FRAMES))
    # The face is in the crop, with the person mask on it.
    assert ((clip.landmarks[..., :2] > 0) & (clip.landmarks[..., :2] < 128)).all()
    centre = clip.landmarks[0, :, :2].mean(axis=0).round().astype(int)
    assert clip.masks[0, centre[1], centre[0]] > 200
    # The jaw opens over the clip: the tracked mouth opens too.
    gap = np.linalg.norm(clip.landmarks[:, 13, :2] - clip.landmarks[:, 14, :2], axis=1)
    assert gap[-1] > gap[0] + 3


def test_prepare_skips_a_clip_without_a_face_and_says_so(prepared):
    _, index, lines = prepared
    assert index["skipped"] == {"grey": "no face found"}
    assert any("grey" in line and "skipped" in line for line in lines)


def test_prepare_resumes(prepared, videos):
    out, _, _ = prepared
    lines: list[str] = []
    before = (out / "clips" / "astronaut" / "frames.npy").stat().st_mtime_ns
    prepare_dataset(videos, out, side=128, log=lines.append)
    assert (out / "clips" / "astronaut" / "frames.npy").stat().st_mtime_ns == before
    assert lines == ["astronaut: already prepared, skipping", "grey: skipped before (no face found), and unchanged since"]
    assert json.loads((out / "dataset.json").read_text())["clips"] == ["astronaut"]


def test_a_clip_skipped_before_is_tried_again_once_its_file_changed(videos, tmp_path):
    """A damaged clip, skipped, then repaired: it was never tried again ("already prepared, skipping")."""
    folder, out = tmp_path / "videos", tmp_path / "dataset"
    folder.mkdir()
    good = (videos / "astronaut.mp4").read_bytes()
    (folder / "take.mp4").write_bytes(good[:len(good) // 8])  # cut short: no usable video
    lines: list[str] = []
    assert prepare_dataset(folder, out, side=128, log=lines.append)["clips"] == []
    assert lines[-1].startswith("take: skipped: ")
    (folder / "take.mp4").write_bytes(good)
    lines.clear()
    index = prepare_dataset(folder, out, side=128, log=lines.append)
    assert index["clips"] == ["take"] and index["skipped"] == {}
    assert "the file has changed: trying it again" in lines[0] and lines[-1] == f"take: {FRAMES} frames"


def test_two_videos_that_would_be_one_clip_are_refused_by_name(videos, tmp_path):
    folder = tmp_path / "videos"
    folder.mkdir()
    for name in ("take.mp4", "take.mov"):  # (the second was silently lost: "already prepared")
        (folder / name).write_bytes((videos / "astronaut.mp4").read_bytes())
    with pytest.raises(DatasetError, match="'take.mov' and 'take.mp4' would both be the clip 'take': rename one"):
        prepare_dataset(folder, tmp_path / "dataset", side=128, log=lambda line: None)


def test_a_clip_with_too_few_frames_kept_says_so_not_that_it_has_no_face(videos, tmp_path):
    lines: list[str] = []
    index = prepare_dataset(videos, tmp_path / "dataset", side=128, every=4, log=lines.append)  # frames 0, 4, 8
    assert index["skipped"]["astronaut"] == ("only 3 of its frames kept with --every 4; at least 4 are needed: use "
                                             "a smaller --every")


def test_render_with_fields_renders_what_render_renders(subject):
    engine = WarpEngine(subject)
    values = channel_values(jaw_open=0.7, head_yaw=15.0, blink_l=1.0)
    warped = engine.render_with_fields(values)
    assert np.array_equal(warped.frame, engine.render(values))
    assert warped.painted.any(), "an open jaw paints a mouth cavity"
    inputs = crop_inputs(engine, warped, 64)
    assert inputs.warped.shape == (64, 64, 3) and inputs.masks.shape == (64, 64, len(MASK_NAMES))
    assert np.abs(inputs.displacement).max() < 1.0


def test_examples_are_neighbour_pairs_and_reproducible(prepared):
    out, _, _ = prepared
    config = RefineConfig(side=64, sources_per_clip=2)
    dataset = PairDataset(out, config)
    key = ExampleKey(step=3, rank=0, slot=1)
    example = dataset[key]
    assert example["warped"].shape == (2, 3, 64, 64) and example["warped"].dtype.is_floating_point
    assert example["displacement"].shape == (2, 2, 64, 64)
    assert example["masks"].shape == (2, len(MASK_NAMES), 64, 64)
    assert example["target_points"].shape[0] == 2 and example["target_points"].shape[2] == 2
    assert float(example["target"].min()) >= -1 and float(example["target"].max()) <= 1
    again = PairDataset(out, config)[key]
    assert all(np.array_equal(example[k].numpy(), again[k].numpy()) for k in example)
    # Each rank draws its own examples (no sampler needed under DDP).
    assert any(dataset.choose(ExampleKey(s, 0, 0)) != dataset.choose(ExampleKey(s, 1, 0)) for s in range(5))
    batch = collate_pairs([example, dataset[ExampleKey(3, 0, 2)]])
    assert batch["warped"].shape == (4, 3, 64, 64)
    assert read_index(out)["side"] == 128


def test_refine_engine_falls_back_to_warp_without_torch(tmp_path, astronaut_path):
    """Where PyTorch cannot be imported the refine engine warns and renders what the warp engine renders."""
    import subprocess
    import sys

    checkpoint = tmp_path / "last.pt"
    checkpoint.write_bytes(b"unused: the model cannot run here anyway")
    script = f"""
import sys, warnings
sys.modules["torch"] = None  # what an environment without PyTorch looks like to `import torch`
import numpy as np
from enliven.analysis import analyze_image
from enliven.images import load_image
from enliven.engines.refine import RefineEngine
from enliven.engines.warp import WarpEngine
from enliven.shared.channels import CHANNEL_INDEX, default_vector
subject = analyze_image(load_image({str(astronaut_path)!r}))
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    engine = RefineEngine(subject, checkpoint={str(checkpoint)!r})
assert any("PyTorch is not installed" in str(w.message) for w in caught), [str(w.message) for w in caught]
values = default_vector().astype(float)
values[CHANNEL_INDEX["jaw_open"]] = 0.5
assert np.array_equal(engine.render(values), WarpEngine(subject).render(values))
print("fell back")
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and "fell back" in result.stdout, result.stderr


def test_mirroring_an_example_mirrors_its_motion(prepared):
    from dataclasses import replace

    out, _, _ = prepared
    config = RefineConfig(side=64, sources_per_clip=2, augment_colour=0.0)
    dataset = PairDataset(out, config)
    plain = PairDataset(out, replace(config, augment_flip=False))
    for step in range(20):
        key = ExampleKey(step, 0, 0)
        mirrored, original = dataset[key], plain[key]
        if not torch.equal(mirrored["warped"], original["warped"]):
            break
    else:
        pytest.fail("no example was mirrored in 20 draws")
    assert torch.equal(mirrored["target"], original["target"].flip(-1))
    assert torch.equal(mirrored["displacement"][:, 0], -original["displacement"][:, 0].flip(-1))
    assert torch.equal(mirrored["displacement"][:, 1], original["displacement"][:, 1].flip(-1))
    assert torch.allclose(mirrored["target_points"][..., 0], -original["target_points"][..., 0])


def test_prepare_and_train_commands_register_on_a_parser(videos, tmp_path, capsys):
    import argparse

    from enliven.neural.commands import add_commands

    parser = argparse.ArgumentParser(prog="enliven")
    add_commands(parser.add_subparsers())
    args = parser.parse_args(["prepare", str(videos), "--out", str(tmp_path / "data"), "--side", "64"])
    assert args.func(args) == 0
    assert "1 clip(s), 1 skipped" in capsys.readouterr().out
    args = parser.parse_args(["train", str(tmp_path / "data"), "--out", str(tmp_path / "run"), "--steps", "3",
                              "--config", "small", "--resume", "--holdout", "x"])
    assert (args.steps, args.config, args.resume, args.holdout) == (3, "small", True, ["x"])


@pytest.mark.parametrize("option, value", [("--side", "0"), ("--side", "100000"), ("--every", "0"),
                                           ("--every", "-1")])
def test_prepare_refuses_a_frame_side_or_a_frame_step_it_cannot_use(videos, tmp_path, option, value):
    """--side 0 and --every 0 were tracebacks (a division by zero), --side 100000 asked for 30 GB, --every -1
    was taken as every frame: each is a usage error now, before any video is read."""
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-m", "enliven.cli", "prepare", str(videos), "--out",
                             str(tmp_path / "data"), option, value], capture_output=True, text=True, timeout=120)
    assert result.returncode == 2, result.stderr
    assert "out of range" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "data").exists()


def test_prepare_with_no_usable_clip_fails_and_says_why(videos, tmp_path):
    """Every clip skipped (here: the one with no face, and a file that is no video) is an error, exit 2."""
    import shutil
    import subprocess
    import sys

    (tmp_path / "videos").mkdir()
    shutil.copy(videos / "grey.mp4", tmp_path / "videos")
    (tmp_path / "videos" / "notes.mp4").write_text("not a video")
    result = subprocess.run([sys.executable, "-m", "enliven.cli", "prepare", str(tmp_path / "videos"), "--out",
                             str(tmp_path / "data")], capture_output=True, text=True, timeout=120)
    assert result.returncode == 2, result.stderr
    assert "0 clip(s), 2 skipped" in result.stdout and "the dataset is empty" in result.stderr
    assert "Traceback" not in result.stderr


def test_train_on_a_folder_that_is_not_a_dataset_says_so(tmp_path):
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-m", "enliven.neural.train", str(tmp_path), "--out", str(tmp_path / "run")],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert "not a dataset made by `enliven prepare`" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_clip_cut_short_by_a_full_disk_names_its_file_and_leaves_no_partial_folder(tmp_path, monkeypatch):
    # numpy's short write said only "45465600 requested and 5119872 written" (no file, no cause), and the half-written
    # .partial folder stayed on the full disk
    from pathlib import Path

    from enliven.neural import prepare
    from enliven.neural.prepare import ClipArrays

    def short_write(path, array):
        Path(path).write_bytes(b"x" * 100)
        raise OSError(f"{array.nbytes} requested and 100 written")

    monkeypatch.setattr(prepare.np, "save", short_write)
    arrays = ClipArrays(np.zeros((2, 64, 64, 3), np.uint8), np.zeros((2, 478, 2), np.float32),
                        np.zeros((2, 64, 64), np.uint8), np.arange(2, dtype=np.int32), 25.0)
    with pytest.raises(OSError) as failed:
        prepare.write_clip(tmp_path, "take", arrays)
    assert failed.value.filename.endswith("frames.npy") and "No space left on device" in str(failed.value.strerror)
    assert not list((tmp_path / "clips").iterdir()), "nothing half written is left"
