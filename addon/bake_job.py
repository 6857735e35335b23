"""Bakes: a capture, Live Link import, lip-sync or Say job runs in the backend
and sends a motion back, which is keyed on the rig. Free of bpy (keying the
motion is the host's `key_motion`, see keying.key_job_motion).

States: PREPARING (connecting), RUNNING, then DONE, CANCELLED or FAILED.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .jobs import Job
from .states import JobState, UserError, describe_error

if TYPE_CHECKING:
    from .shared.client import Event


@dataclass
class BakeSettings:
    """What to do with a capture's or lip-sync's motion when it arrives."""

    frame: int  # scene frame of the motion's first frame
    relative_tolerance: float | None = None  # None: a key on every frame; else see shared/keyframes.py
    only: tuple[str, ...] | None = None  # the channels to key; None: every channel the motion has
    blend_factor: float = 1.0  # 1 replaces the existing keys; less mixes with the existing animation
    sound_path: str | None = None  # add a sound strip playing this file at `frame`
    sound_from_reply: bool = False  # ... or the WAV the backend wrote (Say Text)


@dataclass(frozen=True)
class Portrait:
    """The photo a lip-sync is fitted to (its own mouth may be open): what analyze sends, and which face."""

    data: Any
    digest: str
    face: int


@dataclass(eq=False)
class BakeJob(Job):
    """One capture or lip-sync job: sent to the backend, then keyed on the rig."""

    kind = "bake"

    title: str  # "Capture from video", "Lip-sync"...: starts every message
    rig: str
    scene: str
    settings: BakeSettings
    request: Callable[..., str]  # sends the request (client[, subject id]), returns its job id
    progress: float = 0.0  # 0..1 when the backend knows the total
    keys: int = 0
    frames: tuple[int, int] | None = None  # first and last keyed frame
    strip: str | None = None  # the sound strip added
    warnings: list[str] = field(default_factory=list)
    portrait: Portrait | None = None  # lip-sync: analysed first, and its subject sent with the request

    def still_running(self) -> str:
        return f"{self.title} is still running on '{self.rig}'; wait or cancel it"

    def start(self, host) -> None:
        super().start(host)
        self.message = f"{self.title}: connecting…"
        host.rig_status.pop(self.rig, None)
        host.session.when_connected(self._connected, lambda text: self.end(JobState.FAILED, text))
        host.redraw_due = True

    def _connected(self) -> None:
        if self.portrait is None:
            self._send(None)
            return
        portrait = self.portrait
        self.host.subjects.with_subject(portrait.data, portrait.digest, portrait.face, self._send, self._unfitted)

    def _unfitted(self, text: str) -> None:
        """The portrait could not be analysed: the lip-sync is still made, for closed lips."""
        self.warnings.append(f"{self.title}: the mouth is not fitted to the portrait's photo ({text})")
        self._send(None)

    def _send(self, subject: str | None) -> None:
        if not self.active:
            return
        if self.cancel_requested:
            self.end(JobState.CANCELLED, f"{self.title}: cancelled")
            return
        client = self.host.session.client
        self.send(self.request(client) if subject is None else self.request(client, subject))
        self.state = JobState.RUNNING
        self.message = f"{self.title}: waiting for the backend…"
        self.host.redraw_due = True

    def on_event(self, event: Event) -> None:
        if not self.active:
            return
        if event.type == "queued":
            self.message = f"{self.title}: queued behind other jobs (position {event.fields.get('position', '?')})"
        elif event.type == "progress":
            stage, done, total = event.fields.get("stage", ""), event.fields.get("done"), event.fields.get("total")
            if isinstance(total, (int, float)) and total > 0 and isinstance(done, (int, float)):
                self.progress = min(1.0, done / total)
                self.message = f"{self.title}: {stage} {done:g}/{total:g}"
            elif isinstance(done, (int, float)) and done:
                self.message = f"{self.title}: {stage} {done:g}…"
            else:
                self.message = f"{self.title}: {stage}…"
        elif event.type == "motion" and self.cancel_requested:
            # Finished before the cancel reached the backend: the artist still
            # asked for no keys, so none are made.
            self.end(JobState.CANCELLED, f"{self.title}: cancelled")
        elif event.type == "motion":
            try:
                text = self.host.key_motion(self, event)
            except UserError as error:
                self.end(JobState.FAILED, f"{self.title}: {error}")
            else:
                self.end(JobState.DONE, text)
        elif event.type == "done":
            self.end(JobState.CANCELLED, f"{self.title}: {event.fields.get('status', 'ended')}")
        elif event.type == "error":
            self.end(JobState.FAILED, f"{self.title} failed: {describe_error(event.code, event.message)}")
        self.host.redraw_due = True

    def end(self, state: JobState, text: str) -> None:
        if not self.active:
            return
        host = self.host
        if self.job is not None and self.job in host.session.handlers and state != JobState.DONE:
            host.session.cancel(self.job)  # ending early (disconnect): stop the backend too
            host.session.forget(self.job)
        self.state, self.message = state, text
        if state == JobState.DONE:
            self.progress = 1.0
        self.report_end(text, self.rig)
        for warning in self.warnings:
            host.notify('WARNING', warning)
        host.redraw_due = True

    def cancel_texts(self) -> tuple[str, str]:
        return f"{self.title}: cancelling…", f"{self.title}: cancelled"
