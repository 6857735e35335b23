"""Training the refine engine on the backend: start (or resume, or watch a
run that goes on), follow its progress and losses, stop it. Free of bpy.

States: PREPARING (connecting, loading the dataset), RUNNING, STOPPING (after
this step, saving), then DONE, STOPPED or FAILED.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .jobs import Job
from .shared import protocol
from .states import JobState, describe_error

if TYPE_CHECKING:
    from .shared.client import Event


def _losses(fields: dict) -> dict[str, float]:
    """A training reply's losses by name."""
    return {str(name): float(value) for name, value in (fields.get("losses") or {}).items()}


@dataclass(kw_only=True, eq=False)
class TrainingJob(Job):
    """One training run of the refine engine on the backend."""

    kind = "training"
    quiet = True

    run_dir: str
    dataset_dir: str = ""
    config: str | dict | None = None
    steps: int | None = None
    resume: bool = False
    step: int = 0
    total: int = 0
    losses: dict[str, float] = field(default_factory=dict)
    checkpoint: str | None = None  # the model to use once the backend has written it (best.pt or last.pt)
    samples: str | None = None  # RUN_DIR/samples.png (source | warp | refined | target)

    @property
    def progress(self) -> float:
        return self.step / self.total if self.total else 0.0

    @property
    def saves_on_stop(self) -> bool:
        return self.active

    def still_running(self) -> str:
        return f"Training into {self.run_dir} is still running; stop it first"

    def start(self, host) -> None:
        super().start(host)
        self.message = "Training: connecting…"
        host.session.when_connected(self._connected, lambda text: self.end(JobState.FAILED, text))
        host.redraw_due = True

    def _connected(self) -> None:
        if not self.active:
            return
        if self.state == JobState.STOPPING:
            self.end(JobState.STOPPED, "Training: stopped before it started")
            return
        session = self.host.session
        training = (session.server_info or {}).get("training")
        if training is None:
            self.end(JobState.FAILED, "This backend is too old to train from Blender; update it")
            return
        if not training:
            self.end(JobState.FAILED, "This backend cannot train: it has no PyTorch "
                                      "(pip install 'enliven[neural]' where it runs)")
            return
        self.send(session.client.train(self.dataset_dir, self.run_dir, config=self.config, steps=self.steps,
                                       resume=self.resume))
        self.message = "Training: loading the dataset…"
        self.host.redraw_due = True

    def on_event(self, event: Event) -> None:
        fields = event.fields
        if event.type == "queued":
            self.message = f"Training: waiting for another run to finish (position {fields.get('position', '?')})"
        elif event.type == "progress" and fields.get("stage") == "preparing" and self.state == JobState.PREPARING:
            self.message = "Training: loading the dataset…"
        elif event.type == "progress" and fields.get("stage") == "watching":  # resumed a run that was going on
            self.step, self.total = int(fields.get("done", 0)), int(fields.get("total", 0))
            self.state = JobState.RUNNING
            self.message = f"Training (watching the running run): step {self.step}/{self.total}"
        elif event.type == "progress" and fields.get("stage") == "training":
            self.step, self.total = int(fields.get("done", 0)), int(fields.get("total", 0))
            self.losses = _losses(fields)
            self.samples = fields.get("samples") or self.samples
            if self.state == JobState.PREPARING:
                self.state = JobState.RUNNING
            if self.state == JobState.RUNNING:
                self.message = f"Training: step {self.step}/{self.total}"
        elif event.type == "done":
            self.step = int(fields.get("step", self.step))
            self.checkpoint, self.samples = fields.get("checkpoint"), fields.get("samples")
            self.losses = _losses(fields) or self.losses
            status = fields.get("status")
            if status == protocol.DONE_COMPLETED:
                self.end(JobState.DONE, f"Training finished at step {self.step}: {self.checkpoint}")
            elif status in (protocol.DONE_STOPPED, protocol.DONE_STALLED):
                self.end(JobState.STOPPED, f"Training stopped at step {self.step} (saved; Resume continues it)")
            else:  # cancelled before it trained a step
                self.end(JobState.STOPPED, "Training stopped before it started; nothing was saved")
        elif event.type == "error":
            self.end(JobState.FAILED, f"Training failed: {describe_error(event.code, event.message)}")
        self.host.redraw_due = True

    def end(self, state: JobState, text: str) -> None:
        if not self.active:
            return
        self.state, self.message = state, text
        self.report_end(text)
        self.host.redraw_due = True

    def cancel(self) -> bool:
        """Ask the backend to stop after the current step; it saves the run first."""
        if not self.active:
            return False
        self.state, self.message = JobState.STOPPING, "Training: stopping after this step and saving…"
        self.host.session.cancel(self.job)
        self.host.redraw_due = True
        return True

    def on_disconnect(self, stopped_local: bool) -> None:
        if not self.active:
            return
        if stopped_local:  # stopping the backend stops its training, saved first
            text = "Training stopped with the backend (it saves the run as it stops; Resume continues it)"
        else:  # a backend trains on without its client
            text = "Training goes on in the backend: Start Training with Resume and the same run folder to watch it again"
        self.end(JobState.STOPPED, text)

    def on_file_loaded(self) -> None:
        """A training run does not belong to a .blend: it goes on."""
