"""The lanes that run jobs, and the flow control between a job and its client.

* the **interactive** lane (one thread) runs quick jobs (analyze, preview); a
  newest-wins kind (preview) replaces the same client's one still waiting,
  which gets ``done`` with status ``superseded``;
* the **heavy** lane (``Limits.heavy_lanes`` threads, one by default: one
  GPU-heavy job at a time) runs the long jobs, round robin between clients
  (:func:`fair_place`); waiting jobs get ``queued`` messages with their position;
* the **training** lane (one thread) runs one hours-long training at a time,
  so previews and generation go on beside it.

A kind's row in JOB_KINDS names its lane; nothing here knows kind names.

Flow control: a job may have only ``job_window`` messages not yet accepted by
ZeroMQ (:meth:`Scheduler.emit` waits for a slot), so a slow client slows its
own job down instead of growing the server's memory; a client that reads
nothing for ``stall_timeout_s`` loses its job."""
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


@dataclass
class Lane:
    name: str
    workers: int
    reports_position: bool  # its waiting jobs are told their place in line
    bounded: bool  # its waiting jobs count toward Limits.max_queued_jobs
    stop_wait_s: float = 5.0  # at shutdown, how long its running job may take to stop
    queue: deque = field(default_factory=deque)
    running: list = field(default_factory=list)


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
            HEAVY: Lane(HEAVY, max(1, limits.heavy_lanes), reports_position=True, bounded=True),
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
            # progress message, which a worker could otherwise overtake.
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
                if lane.reports_position and (len(lane.running) >= lane.workers or len(lane.queue) > 1):
                    for i in range(at, len(lane.queue)):  # this job's place, and everyone it went ahead of
                        other = lane.queue[i]
                        self.post(Out(other.identity, protocol.encode("queued", other.id, {"position": i + 1})))
            self._lock.notify_all()

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

    # -- workers ------------------------------------------------------------

    def start(self) -> None:
        for lane in self.lanes.values():
            for i in range(lane.workers):
                t = threading.Thread(target=self._work, args=(lane,), name=f"enliven-{lane.name}-{i}", daemon=True)
                t.start()
                self._threads.append((t, lane.stop_wait_s))

    def _next(self, lane: Lane) -> Job | None:
        with self._lock:
            while not lane.queue and not self.stopping.is_set():
                self._lock.wait(0.5)
            if self.stopping.is_set():
                return None
            job = lane.queue.popleft()
            job.state = "running"
            lane.running.append(job)
            if lane.reports_position:
                for i, other in enumerate(lane.queue, start=1):  # everyone behind moved up one
                    self.post(Out(other.identity, protocol.encode("queued", other.id, {"position": i})))
        return job

    def _work(self, lane: Lane) -> None:
        while True:
            job = self._next(lane)
            if job is None:
                return
            self._run(job)  # (finish takes it off the lane)

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
            running = self.lanes[job.spec.lane].running
            if job in running:
                running.remove(job)
        self.release_output(job)  # also for jobs cancelled before they started
        self.post(Out(job.identity, frames, job, end=True))

    def release_output(self, job: Job) -> None:
        """Free the job's output target; only its own claim (it may be released
        twice, by the job's body and when it finishes, and another job may hold
        the target by then)."""
        if job.output_key and self.outputs.get(job.output_key) is job:
            self.outputs.pop(job.output_key, None)

    # -- flow control (worker threads) --------------------------------------

    def emit(self, job: Job, frames: list) -> bool:
        """Hand a non-final message to the socket thread, waiting while the job
        has `job_window` messages in flight. False when the job was cancelled."""
        window = self.limits.job_window
        started = time.monotonic()
        with job.cond:
            while job.inflight >= window and not job.cancel.is_set():
                job.cond.wait(0.25)
                if time.monotonic() - started > self.limits.stall_timeout_s:
                    self.log(f"job {job.id}: client read nothing for {self.limits.stall_timeout_s:.0f} s; cancelling")
                    job.stalled = True
                    job.cancel.set()
            if job.cancel.is_set():
                return False
            job.inflight += 1
        self.post(Out(job.identity, frames, job, credited=True))
        return True

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
        """Cancel `jobs` and every running one, and wait for the workers (a training saves first)."""
        self.stopping.set()
        for job in jobs + self.running_jobs():
            job.cancel.set()
            with job.cond:
                job.cond.notify_all()
        with self._lock:
            self._lock.notify_all()
        for t, wait_s in self._threads:
            t.join(timeout=wait_s)
