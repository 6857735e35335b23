"""Whole frames of a group of faces rendered side by side in worker processes, a frame each.

Threads drawing the faces of one frame (group.py) share Python's lock, and a
face waits for the faces it overlaps: on this project's two cores they do
about 1.4 times the work of one. The frames of a sequence do not depend on one
another, so `enliven generate` of several faces hands every Nth frame to each
of N worker processes, each with its own GroupAnimator, and takes the frames
back in order: the work of N cores.

The subjects go to each worker once, as the arguments of the process
(multiprocessing pickles those over the pipe it starts the child with: the
same program on both ends, never a socket). Everything after that crosses as a
small JSON header and raw array bytes, on two one-way pipes per worker: first
the faces' background plates (made once, here, while the workers start), then
the channel values of each frame asked for; and the frame's arrays sent back. (Not
shared.protocol's messages: the channel values are float64, which the wire
does not carry, and a frame with every pass is larger than its 64 MB.)
"""
from __future__ import annotations

import json
import multiprocessing
import os
import signal
import threading
import traceback
from collections import deque
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, fields
from multiprocessing.connection import Connection
from pathlib import Path
from queue import Queue

import numpy as np

from .errors import EnlivenError
from .frame_layers import FrameLayers

IN_FLIGHT = 2  # frames asked of each worker ahead of the one being taken back: a worker never waits for the next
MAX_WORKERS = 8  # each holds every face's engine (13 faces of a 3-megapixel photo: 320 MB); more cores go unused
FEW_FRAMES = 8  # fewer frames than this are rendered in-process: starting the workers costs a few frames' time


@dataclass
class FrameRequest:
    """One frame of the sequence: each face's channel values, and the frame before's (for motion vectors)."""

    values: Mapping[int, np.ndarray]
    previous: Mapping[int, np.ndarray] | None = None
    alpha: bool = False
    passes: bool = False


def frame_request(motions: Mapping[int, np.ndarray], index: int, alpha: bool = False,
                  passes: bool = False) -> FrameRequest:
    """Frame `index` of each face's motion (face -> (frames, channels)), with the frame before's values."""
    previous = None if index == 0 else {face: motion[index - 1] for face, motion in motions.items()}
    return FrameRequest({face: motion[index] for face, motion in motions.items()}, previous, alpha, passes)


def usable_cores() -> int:
    """The cores this process may run on (a container or `taskset` may allow fewer than the machine has)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def worker_count(engine: str, frames: int, subjects: Sequence, asked: int | None = None) -> int:
    """How many worker processes render `frames` frames of `subjects` (several faces) with `engine`: `asked`,
    or one per core up to MAX_WORKERS and as many as half the memory now available holds; 1 (render in
    this process) for the refine engine, whose networks take every core already (and a GPU is one
    device), and for a few frames."""
    if engine != "warp" or frames < FEW_FRAMES:
        return 1
    if asked:
        return asked
    count = min(usable_cores(), MAX_WORKERS)
    available = available_memory()
    if available is not None:
        count = min(count, int(available / 2 // worker_memory(subjects)))
    return max(count, 1)


def worker_memory(subjects: Sequence) -> float:
    """About the bytes a worker holds at its peak for `subjects`: Python with numpy, OpenCV and Numba's compiler,
    the photo, then per pixel of the head and body regions its engines' maps, masks and plates. (Measured, VmHWM:
    2007_007763's 6 faces 177 MB; bald_guys' 13 faces, 6.3 million region pixels, 400 MB; before the engines
    used Numba, 125 and 320 MB, and bald_guys' 24 faces, 8.7 million, 371 MB.)"""
    regions = [subject.head_region for subject in subjects]
    regions += [subject.body.region for subject in subjects if subject.body is not None]
    pixels = sum((x1 - x0) * (y1 - y0) for x0, y0, x1, y1 in regions)
    return 180e6 + 4 * subjects[0].image.nbytes + 30 * pixels


def available_memory() -> float | None:
    """The bytes the system can give without swapping (Linux's MemAvailable), or None where unknown."""
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return float(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def rendered_frames(subjects: Sequence, engine: str, checkpoint: str | Path | None, count: int,
                    requests: Iterable[FrameRequest]) -> Iterator[FrameLayers]:
    """The frames of `requests` in order, by `count` workers (in this process, its GroupAnimator's faces on
    threads, when count is 1: made now, so its errors come before any frame). Closing the iterator stops
    the workers."""
    if count < 2:
        from .group import GroupAnimator

        group = GroupAnimator(subjects, engine=engine, checkpoint=checkpoint)
        return (group.render_layers(r.values, r.previous, r.alpha, r.passes) for r in requests)
    return _rendered_by_workers(subjects, engine, checkpoint, count, requests)


def _rendered_by_workers(subjects: Sequence, engine: str, checkpoint: str | Path | None, count: int,
                         requests: Iterable[FrameRequest]) -> Iterator[FrameLayers]:
    with FrameWorkers(subjects, engine, checkpoint, count) as workers:
        yield from workers.render(requests)


@dataclass
class Worker:
    process: multiprocessing.Process
    requests: Connection  # we write the frames asked for
    frames: Connection  # we read the frames made


class FrameWorkers:
    """`count` worker processes that render frames of `subjects` (faces of one photo) with `engine`."""

    def __init__(self, subjects: Sequence, engine: str = "warp", checkpoint: str | Path | None = None, count: int = 2):
        # Spawned, not forked: a fork would copy OpenCV's and ZeroMQ's threads' locks in whatever state they are.
        context = multiprocessing.get_context("spawn")
        self._workers: list[Worker] = []
        their_ends: list[Connection] = []
        try:
            try:
                for _ in range(count):
                    their_requests, our_requests = context.Pipe(duplex=False)
                    our_frames, their_frames = context.Pipe(duplex=False)
                    their_ends += [their_requests, their_frames]
                    process = context.Process(target=serve_frames, daemon=True, name="enliven-frames",
                                              args=(their_requests, their_frames, list(subjects), engine, checkpoint))
                    self._workers.append(Worker(process, our_requests, our_frames))
                # Started side by side: each start waits until its child, importing enliven, has read the subjects.
                with ThreadPoolExecutor(count, thread_name_prefix="enliven-start") as starting:
                    list(starting.map(start_without_ctrl_c, [worker.process for worker in self._workers]))
            finally:
                # The children's own copies are theirs now. (Closed before anything is sent: while this process
                # held a pipe's reading end, writing to a worker that had died filled the pipe and waited for ever.)
                for end in their_ends:
                    end.close()
            # The faces' background plates are made here, once, while the workers import the engines, and
            # handed to each: a patterned backdrop's takes a second or two a face, and every worker made all
            # of them on its one core (13 faces of bald_guys: 8.6 s to the first four frames instead of 2.9).
            plates = head_plates(subjects)
            for worker in self._workers:
                try:
                    send_arrays(worker.requests, {}, {str(face): plate for face, plate in plates.items()})
                except OSError:  # it is gone
                    raise worker_stopped(worker.process) from None
        except BaseException:
            self.close()
            raise

    def render(self, requests: Iterable[FrameRequest]) -> Iterator[FrameLayers]:
        """The frames of `requests`, in order; frame i is rendered by worker i mod count. (A sequence left
        midway leaves frames on their way: close the workers then.)"""
        waiting: deque[Worker] = deque()
        for index, request in enumerate(requests):
            worker = self._workers[index % len(self._workers)]
            try:
                send_request(worker.requests, request)
            except OSError:  # it is gone
                raise worker_stopped(worker.process) from None
            waiting.append(worker)
            if len(waiting) >= IN_FLIGHT * len(self._workers):
                yield receive_frame(waiting.popleft())
        while waiting:
            yield receive_frame(waiting.popleft())

    def peak_memory(self) -> list[int | None]:
        """Each worker's peak resident memory so far, in bytes (Linux's VmHWM; None where unknown)."""
        peaks = []
        for worker in self._workers:
            try:
                with open(f"/proc/{worker.process.pid}/status") as status:
                    peaks.append(next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmHWM:")))
            except (OSError, StopIteration):
                peaks.append(None)
        return peaks

    def close(self) -> None:
        """Stop every worker now (a frame half-rendered is of no use to anyone)."""
        for worker in self._workers:
            if worker.process.is_alive():
                worker.process.terminate()
            if worker.process.pid is not None:  # (started)
                worker.process.join()
            worker.requests.close()
            worker.frames.close()
        self._workers = []

    def __enter__(self) -> "FrameWorkers":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


def head_plates(subjects: Sequence) -> dict[int, np.ndarray]:
    """Each face's head background plate (engines.background.head_plate), made side by side on the face
    threads."""
    from .engines.background import head_plate
    from .group import FACE_THREADS

    return dict(zip((subject.face_index for subject in subjects), FACE_THREADS.map(head_plate, subjects)))


def start_without_ctrl_c(process: multiprocessing.Process) -> None:
    """Start `process` with Ctrl-C (SIGINT) blocked in this thread, which the child inherits: Ctrl-C reaches
    the whole process group, and a worker still importing would print a traceback; this process stops its
    workers itself. (Blocked, not ignored: a Ctrl-C meanwhile reaches this process once it is unblocked.)"""
    if not hasattr(signal, "pthread_sigmask"):  # Windows
        process.start()
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        process.start()
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def worker_stopped(process: multiprocessing.Process) -> EnlivenError:
    process.join(timeout=5)
    return EnlivenError(f"A rendering worker process stopped (exit code {process.exitcode}); the frames already "
                        "written stay.")


# ----- the messages ---------------------------------------------------------

def send_arrays(connection: Connection, header: dict, arrays: Mapping[str, np.ndarray]) -> None:
    """`header` (JSON) naming `arrays`' shapes and types, then each array's bytes."""
    header = dict(header, arrays=[[name, list(array.shape), array.dtype.str] for name, array in arrays.items()])
    connection.send_bytes(json.dumps(header).encode())
    for array in arrays.values():
        connection.send_bytes(flat_bytes(np.ascontiguousarray(array)))


def flat_bytes(array: np.ndarray) -> np.ndarray:
    """A contiguous array's bytes, as one flat uint8 view: a Connection measures a buffer by its first axis."""
    return array.reshape(-1).view(np.uint8)


def receive_arrays(connection: Connection) -> tuple[dict, dict[str, np.ndarray]]:
    """What send_arrays sent: the header and the arrays by name."""
    header = json.loads(connection.recv_bytes())
    arrays = {}
    for name, shape, dtype in header.pop("arrays"):
        array = np.empty(shape, np.dtype(dtype))
        connection.recv_bytes_into(flat_bytes(array))
        arrays[name] = array
    return header, arrays


def send_request(connection: Connection, request: FrameRequest) -> None:
    faces = sorted(request.values)
    arrays = {"values": np.array([request.values[face] for face in faces], np.float64).reshape(len(faces), -1)}
    previous_faces = sorted(request.previous or {})
    if previous_faces:
        arrays["previous"] = np.array([request.previous[face] for face in previous_faces], np.float64)
    send_arrays(connection, {"faces": faces, "previous_faces": previous_faces, "alpha": request.alpha,
                             "passes": request.passes}, arrays)


def receive_request(connection: Connection) -> FrameRequest:
    header, arrays = receive_arrays(connection)
    previous = dict(zip(header["previous_faces"], arrays["previous"])) if header["previous_faces"] else None
    return FrameRequest(dict(zip(header["faces"], arrays["values"])), previous, header["alpha"], header["passes"])


def send_frame(connection: Connection, layers: FrameLayers) -> None:
    arrays = {}
    for field in fields(FrameLayers):
        value = getattr(layers, field.name)
        if isinstance(value, dict):
            arrays.update({f"{field.name}.{key}": array for key, array in value.items()})
        elif value is not None:
            arrays[field.name] = value
    send_arrays(connection, {}, arrays)


def receive_frame(worker: Worker) -> FrameLayers:
    try:
        header, arrays = receive_arrays(worker.frames)
    except (EOFError, OSError):
        raise worker_stopped(worker.process) from None
    if "error" in header:
        raise error_of(header)
    layers = {}
    for field in fields(FrameLayers):  # (send_frame's names: a dict's arrays as "field.key")
        prefix = f"{field.name}."
        keyed = {name[len(prefix):]: array for name, array in arrays.items() if name.startswith(prefix)}
        layers[field.name] = arrays.get(field.name, keyed or None)
    return FrameLayers(**layers)


def send_error(connection: Connection, error: EnlivenError) -> None:
    send_arrays(connection, {"error": error.message, "kind": type(error).__name__, "code": error.code,
                             "exit_code": error.exit_code}, {})


def error_of(header: dict) -> EnlivenError:
    """The error a worker sent, as the same kind of EnlivenError where enliven.errors has it."""
    from . import errors

    kind = getattr(errors, header["kind"], None)
    try:
        error = kind(header["error"]) if isinstance(kind, type) and issubclass(kind, EnlivenError) else None
    except TypeError:  # one made with other arguments
        error = None
    error = error or EnlivenError(header["error"])
    error.code, error.exit_code = header["code"], header["exit_code"]
    return error


# ----- the worker -----------------------------------------------------------

def serve_frames(requests: Connection, frames: Connection, subjects: list, engine: str,
                 checkpoint: str | Path | None) -> None:
    """A worker process: render each frame asked for, until the requests' pipe closes."""
    for name in ("SIGINT", "SIGBREAK"):  # (SIGBREAK: Windows' Ctrl-Break) the parent stops its workers itself
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), signal.SIG_IGN)
    import cv2

    from .group import GroupAnimator

    cv2.setNumThreads(1)  # a worker a core: OpenCV's own threads would only compete with the other workers
    try:  # the faces' background plates come first (FrameWorkers)
        plates = {int(face): plate for face, plate in receive_arrays(requests)[1].items()}
    except (EOFError, OSError):  # the parent stopped before sending them
        return
    asked: Queue[FrameRequest | None] = Queue()
    threading.Thread(target=read_requests, args=(requests, asked), daemon=True, name="enliven-requests").start()
    try:
        group, failure = GroupAnimator(subjects, engine=engine, checkpoint=checkpoint, threads=False, plates=plates), None
    except EnlivenError as error:
        group, failure = None, error
    while (request := asked.get()) is not None:
        try:
            if failure is not None:
                raise failure
            layers = group.render_layers(request.values, request.previous, request.alpha, request.passes)
        except EnlivenError as error:
            send_error(frames, error)
            continue
        except Exception as error:  # a bug: its traceback goes to stderr, and the run ends with what it was
            traceback.print_exc()
            send_error(frames, EnlivenError(f"A rendering worker failed: {type(error).__name__}: {error}"))
            continue
        send_frame(frames, layers)


def read_requests(requests: Connection, asked: Queue) -> None:
    """Each request into `asked` as it comes (None when the pipe closes). Read on a thread of its own, so
    that the parent can always send one: were the worker to read only between frames, a worker sending a
    frame the parent is not yet reading (it takes them in order) and the parent sending that worker a
    request longer than the pipe holds (two dozen faces' channels, on macOS or Windows) would each wait
    for the other for ever."""
    while True:
        try:
            asked.put(receive_request(requests))
        except (EOFError, OSError):
            asked.put(None)
            return
