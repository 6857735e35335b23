"""What every job controller shares, and the host they run in. Free of bpy.

A controller is one running piece of work - the live preview, a generate, a
bake (capture, lip-sync, say) or a training run - with its state machine and
the handler of its replies. The runtime keeps one controller per kind and
treats them alike: `on_event` (routed by job id through the session),
`cancel`, `on_disconnect`, `on_file_loaded` and `tick`. What only Blender can
do (key a motion, show a preview, reload images) the host's effects do; the
runtime sets them.
"""
from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .states import ACTIVE_STATES, REPORT_LEVEL, JobState, UserError

if TYPE_CHECKING:
    from .session import Session
    from .shared.client import Event
    from .subjects import SubjectCache


def _cannot_key(job, event) -> str:
    raise UserError("motion can only be keyed inside Blender")


class JobHost:
    """The session, the subject cache and the artist's feedback, as the jobs see them."""

    def __init__(self, report: Callable[[str, str], None] = lambda level, text: None):
        self.report = report  # a report in the Info editor and the status bar
        self.session: Session | None = None
        self.subjects: SubjectCache | None = None
        self.rig_status: dict[str, tuple[str, str]] = {}  # rig name -> (icon, text)
        self.last_error = ""
        self.redraw_due = False
        self._writer: ThreadPoolExecutor | None = None
        # Effects only Blender has (the runtime sets them).
        self.key_motion: Callable[[Any, Event], str] = _cannot_key  # bake: key the motion, return what was done
        self.show_preview: Callable[[Any], None] = lambda rgb: None  # preview: show (H, W, 3) uint8 pixels
        # generate: (scene, rig, folder, format, frame numbers) has new frames; returns a warning or ""
        self.frames_written: Callable[[str, str, str, str, list], str] = \
            lambda scene, rig, directory, fmt, frames: ""

    def notify(self, level: str, text: str, rig: str | None = None) -> None:
        """Show `text` where the artist looks: the panel, the portrait's status
        line and a report (Info editor + status bar)."""
        if rig is not None:
            self.rig_status[rig] = ('ERROR' if level == 'ERROR' else 'INFO', text)
        if level == 'ERROR':
            self.last_error = text
        print(f"Enliven: {text}")  # for logs; never the only signal
        self.report(level, text)
        self.redraw_due = True

    def clear_error(self) -> None:
        self.last_error = ""

    def writer(self) -> ThreadPoolExecutor:
        """The one thread that writes generated frames to disk."""
        if self._writer is None:
            self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="enliven-writer")
        return self._writer

    def shutdown(self) -> None:
        if self._writer is not None:
            self._writer.shutdown(wait=True)
            self._writer = None


@dataclass(kw_only=True, eq=False)  # a controller is itself, not its fields
class Job:
    """A running job's controller; subclasses are the state machines of each kind."""

    kind = ""  # the runtime runs one job of each kind at a time
    quiet = False  # its replies need not the fast timer (training reports every few seconds for hours)

    job: str | None = None  # the backend's job id once sent
    state: JobState = JobState.PREPARING
    message: str = ""
    cancel_requested: bool = False
    host: JobHost | None = field(default=None, repr=False, compare=False)

    @property
    def active(self) -> bool:
        return self.state in ACTIVE_STATES

    @property
    def busy(self) -> bool:
        """Work that wants the fast timer even without a reply due."""
        return False

    @property
    def saves_on_stop(self) -> bool:
        """A local backend stopped now must be given time to save this job's work."""
        return False

    def still_running(self) -> str:
        """Why another job of this kind cannot start now."""
        return f"{self.kind} is still running"

    def start(self, host: JobHost) -> None:
        self.host = host

    def on_event(self, event: Event) -> None:
        raise NotImplementedError

    def cancel(self) -> bool:
        """Stop the job (the artist asked); False when there was nothing to stop. One sent to the backend is
        asked to cancel there and ends with its reply; one not sent yet ends now."""
        if not self.active:
            return False
        self.cancel_requested = True
        cancelling, cancelled = self.cancel_texts()
        if self.job is not None and self.host.session.client is not None:
            self.host.session.cancel(self.job)  # the job then ends with done/cancelled
            self.message = cancelling
        elif self.state == JobState.PREPARING:
            self.end(JobState.CANCELLED, cancelled)
        self.host.redraw_due = True
        return True

    def cancel_texts(self) -> tuple[str, str]:
        """The messages of a job being cancelled, and of one cancelled."""
        return "Cancelling…", "Cancelled"

    def end(self, state: JobState, text: str) -> None:
        """The job ends in `state`, saying `text`."""
        raise NotImplementedError

    def on_disconnect(self, stopped_local: bool) -> None:
        """The connection was closed (and with `stopped_local` the local backend stopped)."""
        if self.active:
            self.end(JobState.CANCELLED, "Cancelled: the connection was closed")

    def on_file_loaded(self) -> None:
        """Another .blend was opened: its portraits and images are different objects."""
        self.cancel()

    def tick(self) -> None:
        """Called by every timer tick, after the replies were handled."""

    def send(self, job_id: str) -> str:
        """Route the replies of backend job `job_id` here."""
        self.job = self.host.session.request(job_id, self.on_event)
        return self.job

    def report_end(self, text: str, rig: str | None = None) -> None:
        self.host.notify(REPORT_LEVEL.get(self.state, 'INFO'), text, rig)
