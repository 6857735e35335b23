"""The service's job, peer and outgoing-message records, and the job-kind row
that every job kind registers in :data:`enliven.service.kinds.JOB_KINDS`."""
from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from ..errors import EnlivenError
from ..shared.protocol import Message

PROGRESS_EVERY_S = 0.5

# Lanes (see scheduler.py): interactive answers at once, heavy runs long jobs in
# order, training runs one hours-long run beside them.
INTERACTIVE, HEAVY, TRAINING = "interactive", "heavy", "training"


class ServiceError(EnlivenError):
    """A request the server understood but will not do; ``code`` goes on the wire."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


class JobCancelled(Exception):
    """Raised from a progress callback to stop a capture or lip-sync midway
    (those run inside library code that has no cancel flag of its own)."""


@dataclass(frozen=True)
class JobKind:
    """One row of the job-kind table: everything the router and scheduler need
    to know about a kind, so neither branches on kind names.

    ``admit(server, job)`` runs in the socket thread when the request arrives:
    it checks everything that can be checked before a queue wait, fills in the
    job (motion, total, output_key) and returns True to queue it, or False when
    it answered the request itself. ``run(server, job)`` runs in the job's
    own thread and returns the job's final reply frames. ``cancelled(job)``
    is the final reply of a job cancelled before it started."""

    name: str
    lane: str
    admit: Callable[[Any, "Job"], bool]
    run: Callable[[Any, "Job"], list]
    cancelled: Callable[["Job"], list] | None = None
    newest_wins: bool = False  # a newer one from the same client replaces one still waiting (previews)
    outlives_client: bool = False  # goes on, once started, when its client disconnects (training)


@dataclass(eq=False)
class Job:
    identity: bytes
    id: str
    spec: JobKind
    msg: Message
    client: str = ""  # who sent it, for per-client limits (see router.client_of)
    motion: np.ndarray | None = None  # (frames, len(CHANNEL_NAMES)) float32
    warnings: list[str] = field(default_factory=list)
    state: str = "queued"  # queued | running | finished
    done: int = 0
    total: int = 0
    cancel: threading.Event = field(default_factory=threading.Event)
    cond: threading.Condition = field(default_factory=threading.Condition)
    inflight: int = 0  # messages handed to the socket thread but not yet to ZeroMQ
    output_key: str | None = None
    stalled: bool = False  # cancelled because the client read nothing for too long
    parked: bool = False  # gave its lane's slot up while its client reads nothing (see scheduler.py)
    rendered_after_cancel: int = 0  # proof of "stops within one frame": at most the frame in progress

    @property
    def kind(self) -> str:
        return self.spec.name

    def release(self) -> None:
        with self.cond:
            self.inflight = max(0, self.inflight - 1)
            self.cond.notify_all()


@dataclass
class Peer:
    jobs: dict[str, Job] = field(default_factory=dict)  # live jobs by id, until their last reply is sent
    backlog: deque = field(default_factory=deque)  # messages ZeroMQ would not take yet (HWM)
    dropped: int = 0


@dataclass
class Out:
    identity: bytes
    frames: list
    job: Job | None = None
    credited: bool = False  # took one of the job's window slots
    end: bool = False
