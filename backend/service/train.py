"""`train`: the refine engine trained on a dataset on the server's disk, in a
lane of its own. A cancel (or shutdown) stops after the current step with the
run saved, so `resume` continues it; a run whose client goes away goes on (the
table row's ``outlives_client``), and a client that resumes the same run folder
watches it."""
from __future__ import annotations

import math
import os
from dataclasses import replace
from pathlib import Path
from typing import Any

from ..shared import protocol
from .admission import check_room
from .jobs import Job, JobCancelled, ServiceError


def admit(server: Any, job: Job) -> bool:
    from ..neural.run_folder import LAST, check_run_folder

    if not server.engines.can_train:
        raise ServiceError(protocol.E_NO_TRAINING, "this server cannot train: PyTorch is not installed there "
                                                   "(pip install 'enliven[neural]')")
    fields = job.msg.fields
    paths = server.paths
    # Everything that can be checked is checked now, not after a queue wait of hours.
    dataset = paths.readable_path(fields["dataset_dir"])
    if not (dataset / "dataset.json").is_file():
        raise ServiceError(protocol.E_BAD_PATH, f"{dataset} is not a dataset on the server (make one with `enliven prepare`)")
    config_of(job.msg.fields)
    if "vgg_weights" in fields and not paths.readable_path(fields["vgg_weights"]).is_file():
        raise ServiceError(protocol.E_BAD_PATH, f"no VGG19 weights file {fields['vgg_weights']} on the server")
    run_dir = paths.writable_dir(fields["run_dir"], "run_dir")
    output_key = f"{run_dir}{os.sep}{LAST}"
    running = server.scheduler.running_with_output(output_key)
    if running is not None:  # this run is being trained right now (perhaps for a client that went away)
        if not fields.get("resume"):
            raise ServiceError(protocol.E_OUTPUT_BUSY, f"{run_dir} is being trained right now: resume it to watch it")
        _watch(server, running, job)
        return False
    check_run_folder(run_dir, bool(fields.get("resume")))
    job.total = int(fields.get("steps", 0))
    if output_key in server.scheduler.outputs:  # queued, not yet running
        raise ServiceError(protocol.E_OUTPUT_BUSY, f"another training run is waiting to write {run_dir}")
    job.output_key = output_key
    check_room(server, job)
    return True


def _watch(server: Any, running: Job, request: Job) -> None:
    """Hand a running training job to the client that resumed its run folder: from now on its
    progress, and its final reply, go to that client under that job id, and that client can cancel it."""
    old_peer = server.router.peers.get(running.identity)
    if old_peer is not None:
        old_peer.jobs.pop(running.id, None)
    # A progress message the worker is posting right now may still go out under the old id: clients
    # ignore job ids they do not know.
    running.identity, running.id = request.identity, request.id
    server.router.peer(request.identity).jobs[request.id] = running
    server.log(f"job {request.id}: now watching the training of {running.output_key}")
    server.router.reply(request.identity, protocol.encode("progress", request.id, {
        "state": "running", "stage": "watching", "done": running.done, "total": running.total}))


def run(server: Any, job: Job) -> list:
    """Train in this lane's thread. Progress goes out every config.log_every
    steps; a cancel (or the client going away, or shutdown) stops after the
    current step, and the run is saved either way, so `resume` continues it."""
    try:
        from ..neural.run_folder import BEST, LAST, SAMPLES
        from ..neural.train import Trainer
    except ImportError as e:
        raise ServiceError(protocol.E_NO_TRAINING, f"this server cannot train: PyTorch does not load there ({e})") from None

    f = job.msg.fields
    paths = server.paths
    run_dir = paths.writable_dir(f["run_dir"], "run_dir")
    report = server.scheduler.progress_reporter(job)
    try:
        report("preparing", 0, None)
    except JobCancelled:
        return summary(job, protocol.DONE_CANCELLED, 0, job.total)

    def progress(step: int, total: int, losses: dict[str, float]) -> None:
        job.done, job.total = step, total
        fields = {"state": "running", "stage": "training", "done": step, "total": total,
                  "losses": finite(losses), "run_dir": str(run_dir), "samples": str(run_dir / SAMPLES)}
        server.scheduler.emit(job, protocol.encode("progress", job.id, fields))  # False once cancelled: stop_when sees it

    vgg = paths.readable_path(f["vgg_weights"]) if "vgg_weights" in f else None
    trainer = Trainer(paths.readable_path(f["dataset_dir"]), run_dir, config_of(f),
                      resume=bool(f.get("resume", False)), vgg_weights=vgg, device=server.device.kind,
                      progress=progress, show_progress_bar=False, steps=f.get("steps"),
                      stop_when=job.cancel.is_set)
    job.total = trainer.config.steps
    if job.cancel.is_set():  # cancelled while the dataset loaded: nothing trained, nothing to save
        return summary(job, protocol.DONE_CANCELLED, trainer.step, trainer.config.steps)
    server.log(f"job {job.id}: training {run_dir} from step {trainer.step} to {trainer.config.steps}")
    losses = trainer.run()
    if trainer.step >= trainer.config.steps:
        status = protocol.DONE_COMPLETED
    else:
        status = protocol.DONE_STALLED if job.stalled else protocol.DONE_STOPPED
    server.log(f"job {job.id}: training {status} at step {trainer.step}")
    model = run_dir / (BEST if trainer.best else LAST)  # best.pt: chosen on validation clips
    return summary(job, status, trainer.step, trainer.config.steps, run_dir, losses, model)


def cancelled(job: Job) -> list:
    """A training cancelled before it started: nothing trained, nothing saved."""
    return summary(job, protocol.DONE_CANCELLED, 0, job.total)


def summary(job: Job, status: str, step: int, total: int, run_dir: Path | None = None,
            losses: dict[str, float] | None = None, model: Path | None = None) -> list:
    """A training's final reply: completed, stopped (saved: resume continues it), or cancelled (nothing
    trained, nothing saved) or stalled."""
    from ..neural.run_folder import LAST, SAMPLES

    fields: dict[str, Any] = {"status": status, "step": step, "total": total}
    if run_dir is not None:
        fields.update(checkpoint=str(model or run_dir / LAST), samples=str(run_dir / SAMPLES),
                      losses=finite(losses or {}))
    return protocol.encode("done", job.id, fields, end=True)


def config_of(fields: dict) -> Any:
    """The RefineConfig a train request asks for (a preset name or an object of settings)."""
    from ..neural.config import PRESETS, ConfigError, RefineConfig

    raw = fields.get("config")
    try:
        if raw is None:
            config = None
        elif isinstance(raw, str):
            if raw not in PRESETS:
                raise ConfigError(f"unknown preset {raw!r}; choose one of {', '.join(PRESETS)}")
            config = PRESETS[raw]
        else:
            config = RefineConfig.from_dict(raw)
        if "holdout" in fields:
            config = replace(config or RefineConfig(), holdout=tuple(fields["holdout"]))
        return config
    except (TypeError, ValueError, ConfigError) as e:
        raise ServiceError(protocol.E_BAD_CONFIG, f"train: {e}") from None


def finite(losses: dict[str, float]) -> dict[str, float]:
    """Loss values for the wire: JSON has no NaN or infinity (a diverged loss is left out)."""
    return {name: round(float(value), 6) for name, value in losses.items() if math.isfinite(value)}
