"""Training the refine engine through the service, and rendering with its checkpoint: a real `enliven serve`
subprocess, a real dataset on disk, real checkpoints."""
from __future__ import annotations

import os
import time
from dataclasses import replace

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from conftest import channel_values  # noqa: E402
from enliven.neural.checkpoint import load_checkpoint  # noqa: E402
from enliven.neural.config import RefineConfig  # noqa: E402
from enliven.neural.prepare import add_clip, clip_from_animation  # noqa: E402
from enliven.shared.client import Client  # noqa: E402
from service_helpers import ServerProcess, astronaut_bytes, collect, serving, wait_for  # noqa: E402

TINY = RefineConfig(side=64, generator_channels=8, generator_downsamples=2, generator_max_channels=16,
                    generator_res_blocks=1, generator_groups=4, discriminator_channels=8, discriminator_layers=2,
                    discriminator_scales=2, batch_pairs=2, sources_per_clip=2, gan_start_step=2, steps=6,
                    log_every=1, sample_every=3, checkpoint_every=3, lr_generator=2e-3, refine_region="head",
                    detail_region="anywhere", workers=0)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory, subject):
    out = tmp_path_factory.mktemp("dataset")
    ramp = np.linspace(0.0, 1.0, 6)
    add_clip(out, "talking", clip_from_animation(subject, [channel_values(jaw_open=0.7 * t) for t in ramp], side=96))
    add_clip(out, "turning", clip_from_animation(subject, [channel_values(head_yaw=-15.0 * t) for t in ramp], side=96))
    return out


@pytest.fixture(scope="module")
def server():
    with serving() as srv:
        yield srv


def train(client: Client, dataset, run_dir, config: RefineConfig = TINY, **options) -> list:
    return collect(client, client.train(dataset, run_dir, config=config.to_dict(), **options), timeout_s=240)


def test_training_streams_steps_and_losses_and_ends_with_a_checkpoint(client, dataset, tmp_path):
    hello = client.wait(client.hello(), timeout_s=10).fields
    assert hello["training"] is True and hello["checkpoint"] is None
    events = train(client, dataset, tmp_path / "run")
    progress = [e for e in events if e.type == "progress" and e.fields.get("stage") == "training"]
    assert [e.fields["done"] for e in progress] == list(range(1, TINY.steps + 1))
    assert all(e.fields["total"] == TINY.steps for e in progress)
    assert {"l1", "total"} <= set(progress[-1].fields["losses"]), progress[-1].fields
    assert "discriminator" in progress[-1].fields["losses"], "the GAN joins at gan_start_step"
    done = events[-1]
    assert done.type == "done" and done.fields["status"] == "completed", done.fields
    assert done.fields["step"] == TINY.steps
    assert load_checkpoint(done.fields["checkpoint"])["step"] == TINY.steps
    assert (tmp_path / "run" / "samples.png").stat().st_size > 0


def test_a_run_with_validation_clips_reports_them_and_offers_its_best_model(client, dataset, tmp_path):
    config = replace(TINY, validation=("turning",), validate_every=2, validation_pairs=2)
    events = train(client, dataset, tmp_path / "run", config)
    progress = [e.fields["losses"] for e in events if e.type == "progress" and e.fields.get("stage") == "training"]
    assert "val_l1" not in progress[0] and {"val_l1", "val_l1_warp", "val_strength"} <= set(progress[-1])
    done = events[-1]
    assert done.fields["status"] == "completed" and done.fields["checkpoint"] == str(tmp_path / "run" / "best.pt")
    assert 0.0 <= load_checkpoint(done.fields["checkpoint"])["strength"] <= 1.0
    assert render(client, engine="refine", checkpoint=done.fields["checkpoint"]).shape[2] == 3

    # A new run in that folder, even with last.pt gone, would leave this best.pt to be taken for its own model.
    (tmp_path / "run" / "last.pt").unlink()
    refused = collect(client, client.train(dataset, tmp_path / "run", config=TINY.to_dict()))[-1]
    assert refused.type == "error" and refused.code == "run_exists" and "best.pt" in refused.fields["message"]


def test_data_loader_workers_start_cleanly_inside_the_server(client, dataset, tmp_path):
    events = train(client, dataset, tmp_path / "run", replace(TINY, steps=3, workers=2))
    assert events[-1].fields["status"] == "completed" and events[-1].fields["step"] == 3, events[-1].fields


def test_cancel_stops_training_saves_and_resume_continues(client, dataset, tmp_path):
    long = replace(TINY, steps=100_000, checkpoint_every=100_000)
    job = client.train(dataset, tmp_path / "run", config=long.to_dict())
    wait_for(client, job, lambda e: e.type == "progress" and e.fields.get("done", 0) >= 2, timeout_s=240)

    # Training has its own lane: previews still render, and a second run waits its turn.
    assert render(client, engine="warp").shape[2] == 3
    waiting = client.train(dataset, tmp_path / "second", config=long.to_dict())
    queued = wait_for(client, waiting, lambda e: e.type == "queued")[-1]
    assert queued.fields["position"] == 1
    client.cancel(waiting)
    never_ran = collect(client, waiting)[-1]
    assert never_ran.fields["status"] == "cancelled" and not (tmp_path / "second" / "last.pt").exists()

    client.cancel(job)
    done = collect(client, job)[-1]
    assert done.type == "done" and done.fields["status"] == "stopped", done.fields
    stopped_at = done.fields["step"]
    assert 2 <= stopped_at < long.steps
    assert load_checkpoint(tmp_path / "run" / "last.pt")["step"] == stopped_at, "stopping saves the run"

    # The same folder again without resume would throw the run away: refused, and the run is untouched.
    refused = collect(client, client.train(dataset, tmp_path / "run", config=long.to_dict()))[-1]
    assert refused.type == "error" and refused.code == "run_exists", refused.fields
    resumed = collect(client, client.train(dataset, tmp_path / "run", resume=True, steps=stopped_at + 2),
                      timeout_s=240)
    assert [e.fields["done"] for e in resumed if e.type == "progress" and e.fields.get("stage") == "training"] \
        == [stopped_at + 1, stopped_at + 2]
    assert resumed[-1].fields["status"] == "completed"


@pytest.mark.parametrize("options, code", [
    ({"config": {"side": 64, "no_such_setting": 1}}, "bad_config"),
    ({"config": "huge"}, "bad_config"),
    ({"config": {"side": "128"}}, "bad_config"),
    ({"config": {"side": 1 << 30}}, "bad_config"),  # would exhaust the server's memory
    ({"config": {"log_every": 0}}, "bad_config"),  # would divide by zero after the first step
    ({"resume": True}, "bad_checkpoint"),
])
def test_bad_training_requests_are_refused_at_once(client, dataset, tmp_path, options, code):
    error = collect(client, client.train(dataset, tmp_path / "run", **options))[-1]
    assert error.type == "error" and error.code == code, error.fields
    assert not (tmp_path / "run").exists()


def test_a_folder_that_is_not_a_dataset_is_refused_before_queueing(client, tmp_path):
    events = collect(client, client.train(tmp_path, tmp_path / "run", config=TINY.to_dict()))
    assert [e.type for e in events] == ["error"] and "dataset" in events[0].message, events[0].fields


def render(client: Client, **options) -> np.ndarray:
    values = channel_values(jaw_open=0.8, head_yaw=10.0).astype(np.float32)[None]
    events = collect(client, client.preview(values, image=astronaut_bytes(), **options))
    frame = events[-1]
    assert frame.type == "frame", (frame.type, frame.fields)
    return frame.image()


def test_the_refine_engine_renders_with_a_trained_checkpoint_and_refuses_bad_ones(client, dataset, tmp_path):
    checkpoint = train(client, dataset, tmp_path / "run")[-1].fields["checkpoint"]
    warped = render(client, engine="warp")
    refined = render(client, engine="refine", checkpoint=checkpoint)
    assert refined.shape == warped.shape
    assert np.abs(refined.astype(int) - warped).max() > 0, "the trained model changes the warp's frame"

    shipped = render(client, engine="refine")  # no checkpoint: the region generators that ship with Enliven
    assert np.abs(shipped.astype(int) - warped).max() > 0 and not np.array_equal(shipped, refined)
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(b"PK\x03\x04 not really a checkpoint")
    broken = collect(client, client.preview(channel_values()[None], image=astronaut_bytes(), engine="refine",
                                            checkpoint=corrupt))[-1]
    assert broken.type == "error" and broken.code == "bad_checkpoint", broken.fields
    wrong_engine = collect(client, client.preview(channel_values()[None], image=astronaut_bytes(), engine="warp",
                                                  checkpoint=checkpoint))[-1]
    assert wrong_engine.type == "error" and "refine engine" in wrong_engine.message
    assert np.array_equal(render(client, engine="warp"), warped), "the server goes on serving"


def test_serve_checkpoint_is_the_default_model(client, dataset, tmp_path):
    checkpoint = train(client, dataset, tmp_path / "run")[-1].fields["checkpoint"]
    explicit = render(client, engine="refine", checkpoint=checkpoint)
    with serving("--checkpoint", checkpoint, "--engine", "refine") as other, \
            Client(other.address, timeout_s=10) as other_client:
        hello = other_client.wait(other_client.hello(), timeout_s=10).fields
        assert hello["checkpoint"] == checkpoint and hello["default_engine"] == "refine"
        assert np.array_equal(render(other_client), explicit)


def test_without_pytorch_the_refine_engine_falls_back_to_warp_and_says_so(tmp_path, dataset):
    """A backend where PyTorch cannot load: refine requests render the warp frame with a warning, and the
    backend says it cannot train instead of failing inside the job."""
    blocker = tmp_path / "no_torch"
    blocker.mkdir()
    (blocker / "sitecustomize.py").write_text('import sys\nsys.modules["torch"] = None\n')
    checkpoint = tmp_path / "last.pt"
    checkpoint.write_bytes(b"never read: the model cannot run here")
    path = os.pathsep.join(filter(None, [str(blocker), os.environ.get("PYTHONPATH")]))
    with serving(env={"PYTHONPATH": path}) as srv, Client(srv.address, timeout_s=10) as client:
        assert client.wait(client.hello(), timeout_s=10).fields["training"] is False
        values = channel_values(jaw_open=0.8, head_yaw=10.0).astype(np.float32)[None]
        refine = collect(client, client.preview(values, image=astronaut_bytes(), engine="refine",
                                                checkpoint=checkpoint))[-1]
        assert refine.type == "frame" and any("PyTorch" in w for w in refine.fields["warnings"]), refine.fields
        assert np.array_equal(refine.image(), render(client, engine="warp"))
        refused = collect(client, client.train(dataset, tmp_path / "run", config=TINY.to_dict()))[-1]
        assert refused.type == "error" and refused.code == "no_training", refused.fields


def test_training_goes_on_without_its_client_and_resuming_the_run_watches_it(server, dataset, tmp_path):
    long = replace(TINY, steps=100_000, checkpoint_every=100_000)
    with Client(server.address, timeout_s=10) as first:
        job = first.train(dataset, tmp_path / "run", config=long.to_dict())
        wait_for(first, job, lambda e: e.type == "progress" and e.fields.get("done", 0) >= 1, timeout_s=240)
    # The first client is gone (Blender closed). The run goes on; another client resumes it to watch it.
    with Client(server.address, timeout_s=10) as second:
        busy = collect(second, second.train(dataset, tmp_path / "run", config=long.to_dict()))[-1]
        assert busy.type == "error" and busy.code == "output_busy" and "resume" in busy.message
        watch = second.train(dataset, tmp_path / "run", resume=True)
        events = wait_for(second, watch, lambda e: e.type == "progress" and e.fields.get("stage") == "training",
                          timeout_s=120)
        assert events[0].fields["stage"] == "watching" and events[0].fields["done"] >= 1
        step = events[-1].fields["done"]
        second.cancel(watch)
        done = collect(second, watch)[-1]
    assert done.fields["status"] == "stopped" and done.fields["step"] >= step
    assert load_checkpoint(tmp_path / "run" / "last.pt")["step"] == done.fields["step"]


def test_stopping_the_server_saves_a_run_that_has_no_client(dataset, tmp_path):
    long = replace(TINY, steps=100_000, checkpoint_every=100_000)
    with ServerProcess() as srv:
        with Client(srv.address, timeout_s=10) as client:
            job = client.train(dataset, tmp_path / "run", config=long.to_dict())
            wait_for(client, job, lambda e: e.type == "progress" and e.fields.get("done", 0) >= 1, timeout_s=240)
        deadline = time.monotonic() + 60
        while "goes on without a client" not in srv.log() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert "goes on without a client" in srv.log()
        assert srv.stop() == 0
        assert "training stopped at step" in srv.log(), srv.log()
    assert load_checkpoint(tmp_path / "run" / "last.pt")["step"] >= 1
