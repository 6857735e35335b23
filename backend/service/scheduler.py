"""The lanes that run jobs, and the flow control between a job and its client.

* the **interactive** lane (one job at a time) runs quick jobs (analyze, preview);
  a newest-wins kind (preview) replaces the same client's one still waiting,
  which gets ``done`` with status ``superseded``;
* the **heavy** lane (``Limits.heavy_lanes`` jobs at a time, one by default: one
  GPU-heavy job at a time) runs the long jobs, round robin between clients
  (:func:`fair_place`); waiting jobs get ``queued`` messages with their position;
* the **training** lane (one job at a time) runs one hours-long training at a
  time, so previews and generation go on beside it.

A kind's row in JOB_KINDS names its lane; nothing here knows kind names. Each
job runs on a thread of its own, started when it gets one of its lane's slots.

Flow control: a job may have only ``job_window`` messages not yet accepted by
ZeroMQ (:meth:`Scheduler.emit` waits for a place), so a slow client slows its
own job down instead of growing the server's memory; a client that reads
nothing for ``stall_timeout_s`` loses its job. A heavy job whose window stays
full while others wait *parks*: it gives its slot to the next job and its
thread waits, where it stopped, for its client to read again; then it takes
the next free slot, before the jobs not yet started. Without parking, one
client that stopped reading would hold the only render slot, and so everyone's
jobs, for the whole stall timeout. (The job's own thread keeps its place: a job
cannot be stopped and restarted midway, as a capture or lip-sync waits inside
library code.)"""
from __future__ import annotations

import threading
import time
import traceback
from collections import deque
from dataclasses import dataclass, field
from typing import Callable

from ..errors import EnlivenError
from ..shared import protocol
from ..shared.protocol import Limits, ProtocolError
from .jobs import HEAVY, INTERACTIVE, PROGRESS_EVERY_S, TRAINING, Job, JobCancelled, Out
from .log import Log

TRAINING_STOP_WAIT_S = 120  # at shutdown, how long a training run may take to finish its step and save
# How long a job's window must stay full (nothing read) before it parks: long enough that a client on a
# slow link reads on (an 8 MB EXR frame at 5 MB/s is taken every 1.6 s), and at most a quarter of the stall
# timeout (Scheduler._park_after_s), so the others wait well short of it.
PARK_AFTER_S = 10.0
# At most this many parked jobs a lane: each keeps its thread, its frames in flight and its worker processes,
# and clients that stop reading one after another would otherwise pile them up until memory ran out.
MAX_PARKED = 2


@dataclass
class Lane:
    name: str
    slots: int  # jobs it runs at once
    reports_position: bool  # its waiting jobs are told their place in line
    bounded: bool  # its waiting jobs count toward Limits.max_queued_jobs
    # A job whose client stops reading gives its slot to the next job. Not training: a second run
    # beside a parked one would need the GPU's memory twice over.
    parks: bool = False
    stop_wait_s: float = 5.0  # at shutdown, how long its running job may take to stop
    queue: deque = field(default_factory=deque)
    running: list = field(default_factory=list)  # started and not finished, the parked ones too
    resuming: list = field(default_factory=list)  # parked jobs whose client reads again, waiting for a slot

    def busy_slots(self) -> int:
        return sum(1 for job in self.running if not job.parked)


def fair_place(queue: deque, client: str) -> int:
    """Where a new job of `client` goes in a lane's queue: round robin between clients.
    The queue is ordered by round (a client's first waiting job is in round 0, its second
    in round 1, ...), then by arrival; the new job goes after every job of its own round
    or an earlier one. So one client with many jobs waiting delays another by at most
    one of its jobs, however many it queued first."""
    rounds: dict[str, int] = {}
    mine = sum(1 for other in queue if other.client == client)
    for i, other in enumerate(queue):
        rounds[other.client] = rounds.get(other.client, -1) + 1
        if rounds[other.client] > mine:
            return i
    return len(queue)


def cancelled_reply(job: Job) -> list:
    """The final reply of a job cancelled before it started, for kinds with no reply of their own."""
    return protocol.encode("done", job.id, {"status": protocol.DONE_CANCELLED, "frames": 0, "total": job.total,
                                            "rendered": 0}, end=True)


class Scheduler:
    def __init__(self, limits: Limits, log: Log, post: Callable[[Out], None], run_body: Callable[[Job], list]):
        self.limits = limits
        self.log = log
        self.post = post
        self.run_body = run_body
        self.lanes = {
            INTERACTIVE: Lane(INTERACTIVE, 1, reports_position=False, bounded=True),
            HEAVY: Lane(HEAVY, max(1, limits.heavy_lanes), reports_position=True, bounded=True, parks=True),
            TRAINING: Lane(TRAINING, 1, reports_position=True, bounded=False, stop_wait_s=TRAINING_STOP_WAIT_S),
        }
        self.outputs: dict[str, Job] = {}  # output target of a live job (a folder + prefix, a run's last.pt) -> the job
        self.stopping = threading.Event()
        self._lock = threading.Condition()
        self._threads: list[tuple[threading.Thread, float]] = []

    # -- submitting and cancelling (socket thread) --------------------------

    def submit(self, job: Job) -> None:
        if job.output_key:
            self.outputs[job.output_key] = job
        lane = self.lanes[job.spec.lane]
        with self._lock:
            # Posting under the lock keeps "queued" ahead of the job's first
            # progress message, which its thread could otherwise overtake.
            old = self._queued_same(lane, job) if job.spec.newest_wins else None
            if old is not None:
                # Newest wins: take the place of this client's one that has not started.
                lane.queue[lane.queue.index(old)] = job
                old.state = "finished"
                self.post(Out(job.identity, protocol.encode(
                    "done", old.id, {"status": protocol.DONE_SUPERSEDED, "by": job.id}, end=True), old, end=True))
            else:
                at = fair_place(lane.queue, job.client)
                lane.queue.insert(at, job)
                if lane.reports_position and (not self._can_start(lane) or len(lane.queue) > 1):
                    for i in range(at, len(lane.queue)):  # this job's place, and everyone it went ahead of
                        other = lane.queue[i]
                        self.post(Out(other.identity, protocol.encode("queued", other.id, {"position": i + 1})))
            self._start_next(lane)

    @staticmethod
    def _queued_same(lane: Lane, job: Job) -> Job | None:
        return next((j for j in lane.queue if j.spec is job.spec and j.identity == job.identity), None)

    def cancel(self, job: Job) -> None:
        job.cancel.set()
        with job.cond:
            job.cond.notify_all()
        removed = False
        with self._lock:
            for lane in self.lanes.values():
                if job in lane.queue:
                    lane.queue.remove(job)
                    removed = True
            self._lock.notify_all()  # a parked job waiting for a slot stops waiting
        if removed:  # never started: finish it here
            self.finish(job, (job.spec.cancelled or cancelled_reply)(job))

    def waiting(self) -> int:
        """Jobs waiting in the lanes that Limits.max_queued_jobs bounds."""
        with self._lock:
            return sum(len(lane.queue) for lane in self.lanes.values() if lane.bounded)

    def snapshot(self) -> dict[str, tuple[list[Job], list[Job]]]:
        """Each lane's (waiting, running) jobs, for status replies."""
        with self._lock:
            return {name: (list(lane.queue), list(lane.running)) for name, lane in self.lanes.items()}

    def running_with_output(self, output_key: str) -> Job | None:
        with self._lock:
            return next((j for lane in self.lanes.values() for j in lane.running if j.output_key == output_key), None)

    def running_jobs(self) -> list[Job]:
        with self._lock:
            return [j for lane in self.lanes.values() for j in lane.running]

    # -- running jobs (called with self._lock held) ---------------------------

    def _can_start(self, lane: Lane) -> bool:
        """A slot is free for a job that has not started: parked jobs whose client reads again go first."""
        return lane.busy_slots() + len(lane.resuming) < lane.slots and not self.stopping.is_set()

    def _start_next(self, lane: Lane) -> None:
        while lane.queue and self._can_start(lane):
            job = lane.queue.popleft()
            job.state = "running"
            lane.running.append(job)
            if lane.reports_position:
                for i, other in enumerate(lane.queue, start=1):  # everyone behind moved up one
                    self.post(Out(other.identity, protocol.encode("queued", other.id, {"position": i})))
            thread = threading.Thread(target=self._run, args=(job,), name=f"enliven-{lane.name}", daemon=True)
            try:
                thread.start()
            except RuntimeError as error:  # no thread to be had: the job ends, and frees its slot and output
                self.finish(job, protocol.error_frames(job.id, protocol.E_INTERNAL,
                                                       f"the server could not start the job: {error}"))
                return
            self._threads = [(t, wait_s) for t, wait_s in self._threads if t.is_alive()]
            self._threads.append((thread, lane.stop_wait_s))

    # -- a job's thread -----------------------------------------------------

    def _run(self, job: Job) -> None:
        """Run a job's body; whatever happens, the job ends with one final reply."""
        try:
            final = self.run_body(job)
        except (ProtocolError, EnlivenError) as e:
            final = protocol.error_frames(job.id, e.code, str(e))
        except MemoryError:
            final = protocol.error_frames(job.id, protocol.E_TOO_LARGE, "the server ran out of memory for this job")
        except Exception as e:  # noqa: BLE001 - one broken job must not take the lane down
            self.log(f"job {job.id} failed: {e!r}\n{traceback.format_exc()}")
            final = protocol.error_frames(job.id, protocol.E_INTERNAL, f"internal error: {e}")
        self.finish(job, final)

    def finish(self, job: Job, frames: list) -> None:
        # Off its lane before its final reply goes out: once a client has seen its job end,
        # `status` must not count it as running any more.
        with self._lock:
            job.state = "finished"
            lane = self.lanes[job.spec.lane]
            if job in lane.running:
                lane.running.remove(job)
                self._lock.notify_all()  # its slot is free: for a parked job whose client reads again...
                self._start_next(lane)  # ...else for the next in line
        self.release_output(job)  # also for jobs cancelled before they started
        self.post(Out(job.identity, frames, job, end=True))

    def release_output(self, job: Job) -> None:
        """Free the job's output target; only its own claim (it may be released
        twice, by the job's body and when it finishes, and another job may hold
        the target by then)."""
        if job.output_key and self.outputs.get(job.output_key) is job:
            self.outputs.pop(job.output_key, None)

    # -- flow control (job threads) -----------------------------------------

    def emit(self, job: Job, frames: list) -> bool:
        """Hand a non-final message to the socket thread, waiting while the job
        has `job_window` messages in flight (parked, if others wait meanwhile).
        False when the job was cancelled, or its client read nothing for stall_timeout_s."""
        if not self._wait_for_window(job):
            return False
        if job.parked and not self._resume(job):
            return False
        with job.cond:
            job.inflight += 1
        self.post(Out(job.identity, frames, job, credited=True))
        return True

    def _wait_for_window(self, job: Job) -> bool:
        """Wait for a place in the job's window: True once there is one, False once the job is cancelled.
        Full for PARK_AFTER_S (a quarter of stall_timeout_s at most), the job parks; full for stall_timeout_s,
        it is ended as stalled."""
        full_since = time.monotonic()
        while True:
            with job.cond:
                if job.cancel.is_set():
                    return False
                if job.inflight < self.limits.job_window:
                    return True
                job.cond.wait(0.25)
            full_s = time.monotonic() - full_since
            if full_s > self.limits.stall_timeout_s:
                self.log(f"job {job.id}: client read nothing for {self.limits.stall_timeout_s:.0f} s; cancelling")
                job.stalled = True
                job.cancel.set()
            elif full_s > min(PARK_AFTER_S, self.limits.stall_timeout_s / 4) and not job.parked:
                self._park(job)  # (asked again every wait: a job may come to the queue later)

    def _park(self, job: Job) -> None:
        """Give the job's slot to the next job, if one waits for it (the job's thread waits on in emit)."""
        with self._lock:
            lane = self.lanes[job.spec.lane]
            parked = sum(1 for other in lane.running if other.parked)
            if not lane.parks or not (lane.queue or lane.resuming) or parked >= MAX_PARKED:
                return
            job.parked = True
            self._lock.notify_all()
            self._start_next(lane)
        self.log(f"job {job.id}: its client is not reading; the {lane.name} lane goes on with the next job")

    def _resume(self, job: Job) -> bool:
        """The parked job's client reads again: wait for a free slot. False when the job is cancelled meanwhile."""
        with self._lock:
            lane = self.lanes[job.spec.lane]
            lane.resuming.append(job)
            while lane.busy_slots() >= lane.slots and not job.cancel.is_set():
                self._lock.wait(0.25)
            lane.resuming.remove(job)
            resumed = not job.cancel.is_set()
            job.parked = not resumed
            self._start_next(lane)  # with this job no longer waiting, a queued one may fit
        return resumed

    def progress_reporter(self, job: Job) -> Callable[[str, int | float, int | float | None], None]:
        """A progress(stage, done, total) callback for library code: sends a
        ``progress`` reply at most every PROGRESS_EVERY_S, and stops the job
        (raises JobCancelled) once it is cancelled."""
        last = {"stage": None, "sent": 0.0}

        def report(stage: str, done: int | float, total: int | float | None) -> None:
            if job.cancel.is_set():
                raise JobCancelled()
            now = time.perf_counter()
            # The first report of each stage always goes out, so a client sees every stage.
            new_stage = stage != last["stage"]
            finished_stage = total is not None and done >= total
            if now - last["sent"] < PROGRESS_EVERY_S and not (new_stage or finished_stage):
                return
            last.update(stage=stage, sent=now)
            job.done = int(done)
            job.total = int(total) if total is not None else 0
            fields = {"state": "running", "stage": stage, "done": done, "total": total}
            if not self.emit(job, protocol.encode("progress", job.id, fields)):
                raise JobCancelled()

        return report

    # -- shutdown -----------------------------------------------------------

    def stop(self, jobs: list[Job]) -> None:
        """Cancel `jobs` and every running one, and wait for their threads (a training saves first)."""
        self.stopping.set()
        for job in jobs + self.running_jobs():
            job.cancel.set()
            with job.cond:
                job.cond.notify_all()
        with self._lock:
            self._lock.notify_all()
            threads = list(self._threads)
        for t, wait_s in threads:
            t.join(timeout=wait_s)
