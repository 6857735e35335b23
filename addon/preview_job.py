"""The live preview: one frame of the active portrait's current pose, the
lowest latency the backend has. Free of bpy (the runtime samples the rig and
shows the pixels).

At most one preview is in flight: changes made meanwhile are folded into one
follow-up request with the newest values (newest wins). A request that
failed is not sent again until something changes.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from .jobs import Job
from .states import TRANSIENT_ERRORS, describe_error

if TYPE_CHECKING:
    from .shared.client import Event

PENDING = "pending"  # holds the slot until the request is actually sent
PREVIEW_SIDE = 1024  # previews of larger photos are rendered scaled down to this many pixels a side (fast)


@dataclass(kw_only=True, eq=False)
class PreviewJob(Job):
    kind = "preview"

    request_again: Callable[[], None] = field(default=lambda: None, repr=False)  # sample the rig anew and request
    sent_values: np.ndarray | None = None
    sent_key: tuple | None = None
    shown_values: np.ndarray | None = None
    shown_key: tuple | None = None
    sent_at: float = 0.0
    again: bool = False  # something changed while a preview was in flight
    retried_subject: bool = False
    failed_key: tuple | None = None  # the last request that failed: not retried until something changes
    rgba: np.ndarray | None = None  # reused pixel buffer (the runtime's)
    updates: int = 0  # previews shown so far (benchmarks and tests watch this)
    latency_ms: float | None = None
    rig: str = ""
    photo_digest: str = ""

    @property
    def active(self) -> bool:
        return self.job is not None

    def wanted(self, key: tuple, values: np.ndarray) -> bool:
        """Whether (portrait, photo, engine, face) `key` at channel `values` should be sent now.
        With one in flight, a change is remembered for the follow-up instead."""
        if self.job is not None:
            if not (key == self.sent_key and np.array_equal(values, self.sent_values)):
                self.again = True
            return False
        if key == self.shown_key and self.shown_values is not None and np.array_equal(values, self.shown_values):
            return False
        return key != self.failed_key  # already reported for this portrait/engine; a change of those retries

    def send_preview(self, key: tuple, values: np.ndarray, rig: str, photo_data, photo_digest: str, engine: str,
                     face: int, checkpoint: str | None, faces: list[int] | None = None) -> None:
        """Analyse the photo if need be, then ask for the frame (with `faces`, of every face, a row of
        `values` each)."""
        self.job = PENDING
        self.sent_key, self.sent_values, self.again = key, values, False
        self.rig, self.photo_digest = rig, photo_digest
        host = self.host

        def send(subject: str) -> None:
            client = host.session.client
            if client is None:
                self.job = None
                return
            self.sent_at = time.perf_counter()
            self.send(client.preview(values, subject=subject, engine=engine or None, format="raw", face_index=face,
                                     checkpoint=checkpoint, max_side=PREVIEW_SIDE, faces=faces))

        def fail(text: str) -> None:
            self.job = None
            if host.subjects.is_unusable(photo_digest, face):
                self.failed_key = key
            host.rig_status[rig] = ('ERROR', text)
            host.redraw_due = True

        host.subjects.with_subject(photo_data, photo_digest, face, send, fail, rig)

    def on_event(self, event: Event) -> None:
        host, rig = self.host, self.rig
        if event.type == "frame":
            image = event.image()
            if isinstance(image, np.ndarray):
                host.show_preview(image)
                self.shown_key, self.shown_values = self.sent_key, self.sent_values
                self.latency_ms = (time.perf_counter() - self.sent_at) * 1000.0
                self.retried_subject = False
                self.updates += 1
                if host.rig_status.get(rig, ('', ''))[0] == 'ERROR':
                    host.rig_status.pop(rig, None)
                notes = event.fields.get("warnings") or []
                if notes:  # e.g. the refine engine rendering with the warp alone where its model cannot run
                    host.rig_status[rig] = ('INFO', str(notes[0]))
                host.redraw_due = True
        elif event.type == "error":
            if host.subjects.reanalyse_once(event.code, self.photo_digest, self.retried_subject):
                self.retried_subject = True
                self.again = True
            else:
                host.notify('ERROR', describe_error(event.code, event.message), rig)
                self.shown_key = None
                if event.code not in TRANSIENT_ERRORS:
                    self.failed_key = self.sent_key
                self.again = False
        if event.end:
            self.job = None
            if self.again:
                self.again = False
                self.request_again()

    def show_again(self) -> None:
        """Show the current pose even if it did not change, and retry after an error."""
        self.shown_key = self.failed_key = None

    def cancel(self) -> bool:
        return False  # newest wins: a preview is replaced, never cancelled

    def on_disconnect(self, stopped_local: bool) -> None:
        self.job = None

    def on_file_loaded(self) -> None:
        self.job = None
        self.sent_values = self.sent_key = self.shown_values = self.shown_key = self.failed_key = None
        self.again = self.retried_subject = False
        self.rgba = None
        self.updates = 0
