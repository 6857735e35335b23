"""`enliven serve`: the backend behind a ZeroMQ ROUTER socket.

Threads, and why (the ROUTER pattern of the ZeroMQ guide; sockets are not
thread-safe, so only the main thread touches the ROUTER):

* the **socket thread** (the caller of :func:`serve`) receives, validates and
  routes every request and sends every reply. It answers ``hello``, ``ping``,
  ``status``, ``cancel`` and ``shutdown`` itself, so they are never stuck
  behind rendering.
* the **interactive lane** (one thread) runs ``analyze`` and ``preview``.
  A newer preview from the same client replaces its older one while that one
  is still queued: the older gets ``done`` with status ``superseded``.
* the **heavy lane** (``Limits.heavy_lanes`` threads, one by default: one
  GPU-heavy job at a time) runs the long jobs in order: ``generate``,
  ``capture`` (motion from a video or a Live Link CSV) and ``lipsync`` (mouth
  motion from an audio file, or from text it speaks first); waiting jobs get
  ``queued`` messages with their position. Frames are encoded/written by a
  small pool so PNG compression overlaps rendering.

Files on the server's disk: a client may name files to read (capture,
lipsync) and folders to write (generate, say's WAV). A loopback server is the
artist's own machine, so any absolute path goes; a server reachable from
other machines reads only under ``--input-root`` and writes only under
``--output-root``, and without them touches no client-named path at all.

Workers hand replies to the socket thread through a locked deque plus a
socketpair that wakes its poller. Each job may have only ``job_window``
messages not yet accepted by ZeroMQ, and the ROUTER's per-client queue is
capped by its high-water mark with ROUTER_MANDATORY, so a slow client slows
its own job down instead of growing the server's memory; a client that reads
nothing for ``stall_timeout_s``, or disconnects, loses its jobs.

Everything from the network is decoded by :mod:`enliven.shared.protocol`;
every failure becomes an ``error`` reply (code + message) and the server keeps
serving.
"""
from __future__ import annotations

import argparse
import errno
import hashlib
import importlib.util
import ipaddress
import math
import os
import shutil
import signal
import socket
import sys
import threading
import time
import traceback
from warnings import catch_warnings, simplefilter
from collections import OrderedDict, deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

import cv2
import numpy as np
import zmq

from . import __version__
from .device import DEVICE_CHOICES, DeviceInfo, detect_device
from .errors import EnlivenError
from .images import encode_png
from .shared import protocol
from .shared.protocol import PROTOCOL_VERSION, Limits, Message, ProtocolError

__all__ = ["serve", "Limits", "Server", "add_serve_command", "add_keys_command", "is_local_endpoint",
           "create_keys", "DEFAULT_BIND"]

DEFAULT_BIND = "tcp://127.0.0.1:5570"
SUBJECT_CACHE = 16  # analysed photos kept in memory
ANIMATOR_CACHE = 4  # prepared (subject, engine) pairs: their setup is the expensive part
PROGRESS_EVERY_S = 0.5
# Jobs that run in the heavy lane: long, and one at a time by default.
HEAVY_KINDS = ("generate", "capture", "lipsync")
# Training runs for hours, so it has a lane of its own (one run at a time):
# previews and generation go on beside it.
TRAINING_KINDS = ("train",)
TRAINING_STOP_WAIT_S = 120  # at shutdown, how long a training run may take to finish its step and save
# Replies (not job frames: those are bounded by the job window) buffered for a
# client that sends faster than it reads; beyond this they are dropped.
BACKLOG_CAP = 4096
_PNG_END = b"\x00\x00\x00\x00IEND\xaeB`\x82"

Log = Callable[[str], None]


def _stderr_log(text: str) -> None:
    try:
        print(f"[enliven serve {time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)
    except (OSError, ValueError):  # nobody reads the log any more (Blender quit while this server saves a run)
        pass


class ServiceError(EnlivenError):
    """A request the server understood but will not do; ``code`` goes on the wire."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


class _JobCancelled(Exception):
    """Raised from a progress callback to stop a capture or lip-sync midway
    (those run inside library code that has no cancel flag of its own)."""


# --------------------------------------------------------------------------
# Jobs


@dataclass(eq=False)
class Job:
    identity: bytes
    id: str
    kind: str  # analyze | preview | generate | capture | lipsync | train
    msg: Message
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
    rendered_after_cancel: int = 0  # proof of "stops within one frame": at most the frame in progress

    def release(self) -> None:
        with self.cond:
            self.inflight = max(0, self.inflight - 1)
            self.cond.notify_all()


@dataclass
class _Peer:
    jobs: dict[str, Job] = field(default_factory=dict)  # live jobs by id, until their last reply is sent
    backlog: deque = field(default_factory=deque)  # messages ZeroMQ would not take yet (HWM)
    dropped: int = 0


@dataclass
class _Out:
    identity: bytes
    frames: list
    job: Job | None = None
    credited: bool = False  # took one of the job's window slots
    end: bool = False


# --------------------------------------------------------------------------
# Engines: subjects and animators, cached


class _Engines:
    """Subject and Animator caches shared by both lanes (imports are lazy so
    `enliven keys` and `--help` stay fast)."""

    def __init__(self, limits: Limits, default_engine: str, default_checkpoint: str | os.PathLike | None = None):
        from .animator import ENGINE_NAMES

        self.engine_names = tuple(ENGINE_NAMES)
        if default_engine not in self.engine_names:
            raise ServiceError("unknown_engine", f"unknown engine {default_engine!r}; available: {', '.join(self.engine_names)}")
        self.default_engine = default_engine
        # The refine engine's model when a request names none (`serve --checkpoint`).
        self.default_checkpoint = Path(default_checkpoint).expanduser().resolve() if default_checkpoint else None
        if self.default_checkpoint is not None and not self.default_checkpoint.is_file():
            raise ServiceError("bad_checkpoint", f"no checkpoint file {self.default_checkpoint}")
        if default_engine == "refine" and self.default_checkpoint is None:
            raise ServiceError("bad_checkpoint", "--engine refine needs --checkpoint RUN_DIR/last.pt (from `enliven train`)")
        self.can_train = _torch_installed()
        self.limits = limits
        self._lock = threading.Lock()
        self._subjects: OrderedDict[str, Any] = OrderedDict()  # subject id -> Subject
        self._by_bytes: OrderedDict[tuple[str, int], str] = OrderedDict()  # (sha256 of upload, face) -> subject id
        # (subject, engine, checkpoint, its mtime) -> (animator, its lock, warnings from setting it up)
        self._animators: OrderedDict[tuple, tuple[Any, threading.Lock, tuple[str, ...]]] = OrderedDict()
        self._create_lock = threading.Lock()

    @property
    def subjects_cached(self) -> int:
        return len(self._subjects)

    @staticmethod
    def subject_id(subject: Any) -> str:
        return f"{subject.image_hash}-{subject.face_index}"

    def has_subject(self, sid: str) -> bool:
        with self._lock:
            return sid in self._subjects

    def subject_for(self, msg: Message) -> Any:
        """The request's subject: by id when cached, else analysed from its image part."""
        sid = msg.fields.get("subject")
        face = int(msg.fields.get("face_index", 0))
        if sid is not None:
            with self._lock:
                subject = self._subjects.get(sid)
                if subject is not None:
                    self._subjects.move_to_end(sid)
                    return subject
        part = msg.parts.get("image")
        if part is None:
            raise ServiceError("unknown_subject", f"subject {sid} is not (or no longer) cached on this server; "
                                                  "send the image again (analyze, or image= with the request)")
        return self.analyze(part, face, msg.job)

    def analyze(self, part: protocol.Part, face: int, job: str) -> Any:
        from .analysis import analyze_image
        from .images import load_image

        digest = (hashlib.sha256(part.data).hexdigest(), face)
        with self._lock:
            sid = self._by_bytes.get(digest)
            if sid is not None and sid in self._subjects:
                self._subjects.move_to_end(sid)
                return self._subjects[sid]
        lim = self.limits
        if part.kind == "array":
            rgb = np.ascontiguousarray(protocol.image_array(part, max_side=lim.max_image_side, max_pixels=lim.max_image_pixels, job=job))
        else:
            rgb = load_image(part.tobytes(), max_pixels=lim.max_image_pixels, max_side=lim.max_image_side)
        subject = analyze_image(rgb, face_index=face)
        sid = self.subject_id(subject)
        with self._lock:
            self._subjects[sid] = subject
            self._subjects.move_to_end(sid)
            self._by_bytes[digest] = sid
            while len(self._subjects) > SUBJECT_CACHE:
                self._subjects.popitem(last=False)
            while len(self._by_bytes) > 4 * SUBJECT_CACHE:
                self._by_bytes.popitem(last=False)
        return subject

    def animator(self, subject: Any, engine: str,
                 checkpoint: Path | None = None) -> tuple[Any, threading.Lock, tuple[str, ...]]:
        """One prepared Animator per (subject, engine, checkpoint), with a lock: the
        two lanes may render the same subject and engines are not promised
        thread-safe. A checkpoint rewritten since (training goes on) is loaded again.
        Also returns the warnings its setup gave (the refine engine falling back
        to the warp where PyTorch cannot run), for the jobs that use it."""
        from .animator import Animator

        try:
            version = checkpoint.stat().st_mtime_ns if checkpoint is not None else None
        except OSError:
            raise ServiceError("bad_checkpoint", f"no checkpoint file {checkpoint} on the server") from None
        key = (self.subject_id(subject), engine, str(checkpoint), version)
        with self._create_lock:  # two lanes must not both pay for the same setup
            with self._lock:
                hit = self._animators.get(key)
                if hit is not None:
                    self._animators.move_to_end(key)
                    return hit
            with catch_warnings(record=True) as caught:
                simplefilter("always")
                animator = Animator(subject, engine=engine, checkpoint=checkpoint)
            entry = (animator, threading.Lock(), tuple(str(w.message) for w in caught))
            with self._lock:
                self._animators[key] = entry
                while len(self._animators) > ANIMATOR_CACHE:
                    self._animators.popitem(last=False)
            return entry


# --------------------------------------------------------------------------
# The server


class Server:
    def __init__(
        self,
        bind: str,
        *,
        device: DeviceInfo,
        engine: str = "warp",
        keys_dir: str | os.PathLike | None = None,
        limits: Limits | None = None,
        output_root: str | os.PathLike | None = None,
        input_root: str | os.PathLike | None = None,
        log: Log = _stderr_log,
        checkpoint: str | os.PathLike | None = None,
    ):
        self.bind = bind
        self.device = device
        self.limits = limits or Limits()
        self.keys_dir = Path(keys_dir).expanduser() if keys_dir else None
        self.log = log
        self.local = is_local_endpoint(bind)
        self.output_root = Path(output_root).expanduser().resolve() if output_root else None
        self.input_root = Path(input_root).expanduser().resolve() if input_root else None
        self.server_id = os.urandom(6).hex()  # lets clients notice a restart
        self.started = time.monotonic()
        self.engines = _Engines(self.limits, engine, checkpoint)
        from .shared.channels import CHANNEL_NAMES

        self.channel_names = tuple(CHANNEL_NAMES)

        self._peers: dict[bytes, _Peer] = {}
        self._out: deque[_Out] = deque()
        self._out_lock = threading.Lock()
        self._sched = threading.Condition()
        self._interactive: deque[Job] = deque()
        self._heavy: deque[Job] = deque()
        self._running_heavy: list[Job] = []
        self._training: deque[Job] = deque()
        self._running_training: list[Job] = []
        self._outputs: set[str] = set()  # output targets of live generate jobs
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._encode_threads = max(2, min(4, (os.cpu_count() or 2) - 1))
        self._encoders = ThreadPoolExecutor(max_workers=self._encode_threads, thread_name_prefix="enliven-encode")
        self.endpoint = bind
        self._ctx: zmq.Context | None = None
        self._router: zmq.Socket | None = None
        self._auth = None
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)

    # -- setup --------------------------------------------------------------

    def open(self) -> str:
        """Create and bind the ROUTER; returns the endpoint actually bound."""
        if not self.local and self.keys_dir is None:
            raise ServiceError("insecure_bind", f"refusing to bind {self.bind} without encryption: only loopback "
                                                "(127.0.0.1, localhost, ::1) or ipc:// may be served in the clear. "
                                                "Create keys with `enliven keys` and pass --keys DIR.")
        self._ctx = zmq.Context()
        router = self._ctx.socket(zmq.ROUTER)
        lim = self.limits
        router.setsockopt(zmq.ROUTER_MANDATORY, 1)  # full queue -> EAGAIN, gone peer -> EHOSTUNREACH; never silent drops
        # A client that reconnects (same routing id) takes its identity over at
        # once, rather than being refused until the dead connection times out.
        router.setsockopt(zmq.ROUTER_HANDOVER, 1)
        router.setsockopt(zmq.MAXMSGSIZE, int(lim.max_message_bytes))
        router.sndhwm = lim.send_hwm
        router.rcvhwm = lim.recv_hwm
        router.linger = 500
        # A peer whose machine vanished without closing TCP is found by kernel
        # keepalives (~1 min). Not ZMTP heartbeats: a client that is merely slow
        # stops reading (backpressure), cannot answer them, and would be cut off
        # after a few seconds with its job; slow clients are the stall timeout's job.
        router.setsockopt(zmq.TCP_KEEPALIVE, 1)
        router.setsockopt(zmq.TCP_KEEPALIVE_IDLE, 30)
        router.setsockopt(zmq.TCP_KEEPALIVE_INTVL, 10)
        router.setsockopt(zmq.TCP_KEEPALIVE_CNT, 3)
        try:
            if self.keys_dir is not None:
                self._configure_curve(router)
        except BaseException:
            router.close(0)
            raise
        try:
            if self.bind.startswith("tcp://") and self.bind.endswith(":0"):
                router.bind(self.bind[:-2] + ":*")  # port 0: let ZeroMQ pick a free port
            else:
                router.bind(self.bind)
        except zmq.ZMQError as e:
            router.close(0)
            raise ServiceError("bind_failed", f"cannot bind {self.bind}: {e}") from e
        self._router = router
        self.endpoint = router.getsockopt_string(zmq.LAST_ENDPOINT)
        return self.endpoint

    def _configure_curve(self, router: zmq.Socket) -> None:
        import zmq.auth
        from zmq.auth.thread import ThreadAuthenticator

        secret_file = self.keys_dir / "server.key_secret"
        clients_dir = self.keys_dir / "clients"
        if not secret_file.is_file() or not clients_dir.is_dir():
            raise ServiceError("no_keys", f"{self.keys_dir} has no server.key_secret or clients/ directory; "
                                          f"run `enliven keys --dir {self.keys_dir}` first")
        public, secret = zmq.auth.load_certificate(str(secret_file))
        allowed = sorted(clients_dir.glob("*.key"))
        if not allowed:
            raise ServiceError("no_keys", f"no client public keys in {clients_dir}; every client would be refused")
        self._auth = ThreadAuthenticator(self._ctx, log=_QuietLog())
        self._auth.start()
        # Only clients whose public key file is in clients/ get through the ZAP handshake.
        self._auth.configure_curve(domain="*", location=str(clients_dir))
        router.curve_secretkey = secret
        router.curve_publickey = public
        router.curve_server = True
        self.log(f"CurveZMQ on: {len(allowed)} allowed client key(s) in {clients_dir}")

    # -- main loop ----------------------------------------------------------

    def run(self) -> int:
        assert self._router is not None, "call open() first"
        self._start_threads()
        poller = zmq.Poller()
        poller.register(self._router, zmq.POLLIN)
        poller.register(self._wake_r, zmq.POLLIN)
        try:
            while not self._stopping.is_set():
                backlog = any(p.backlog for p in self._peers.values())
                try:
                    ready = dict(poller.poll(5 if backlog else 250))
                except zmq.ZMQError as e:
                    if e.errno == errno.EINTR:
                        continue
                    raise
                if self._router in ready:
                    self._receive_batch()
                if self._wake_r.fileno() in ready or self._wake_r in ready:
                    self._drain_wake()
                self._drain_outbox()
                if backlog:
                    self._flush_backlogs()
        finally:
            self._shutdown()
        return 0

    def stop(self) -> None:
        self._stopping.set()
        self._wake()

    def _receive_batch(self) -> None:
        # Bounded batch so worker replies are not starved by a flood of requests.
        for _ in range(64):
            try:
                frames = self._router.recv_multipart(zmq.NOBLOCK, copy=False)
            except zmq.Again:
                return
            if len(frames) < 2:
                continue  # ROUTER always prepends an identity; nothing to answer
            identity = frames[0].bytes
            try:
                self._handle(identity, frames[1:])
            except Exception as e:  # noqa: BLE001 - the server never dies on input
                self.log(f"internal error handling a request: {e!r}\n{traceback.format_exc()}")
                self._reply(identity, protocol.error_frames("", "internal", f"internal server error: {e}"))

    # -- request handling (socket thread) -----------------------------------

    def _handle(self, identity: bytes, frames: list) -> None:
        try:
            msg = protocol.decode_request(frames, max_bytes=self.limits.max_message_bytes)
        except ProtocolError as e:
            if e.code == protocol.E_VERSION:
                theirs = e.details.get("received")
                self._reply(identity, protocol.error_frames(
                    e.job, e.code, f"this server (enliven {__version__}) speaks protocol {PROTOCOL_VERSION}, but the "
                    f"request uses protocol {theirs}; install matching versions of the add-on and the backend",
                    server_protocol=PROTOCOL_VERSION, client_protocol=theirs, server_version=__version__))
            else:
                self._reply(identity, protocol.error_frames(e.job, e.code, str(e)))
            return
        peer = self._peers.get(identity)
        if peer is not None and msg.job in peer.jobs:
            self._reply(identity, protocol.error_frames(msg.job, "duplicate_job", f"job {msg.job} is already running"))
            return
        handler = getattr(self, f"_on_{msg.type}")
        try:
            handler(identity, msg)
        except (ProtocolError, EnlivenError) as e:
            self._reply(identity, protocol.error_frames(msg.job, e.code, str(e)))

    def _on_hello(self, identity: bytes, msg: Message) -> None:
        self._reply(identity, protocol.encode("hello_reply", msg.job, self._hello_fields(), end=True))

    def _hello_fields(self) -> dict:
        return {
            "protocol": PROTOCOL_VERSION,
            "version": __version__,
            "server": self.server_id,
            "device": self.device.to_dict(),
            "engines": list(self.engines.engine_names),
            "default_engine": self.engines.default_engine,
            "channels": list(self.channel_names),
            "limits": self.limits.to_dict(),
            "curve": self.keys_dir is not None,
            "output_dir": self._output_policy(),
            "input_files": self._input_policy(),
            "checkpoint": str(self.engines.default_checkpoint) if self.engines.default_checkpoint else None,
            "training": self.engines.can_train,
        }

    def _on_ping(self, identity: bytes, msg: Message) -> None:
        peer = self._peers.get(identity)
        jobs = list(peer.jobs) if peer else []
        self._reply(identity, protocol.encode("pong", msg.job, {"server": self.server_id, "jobs": jobs}, end=True))

    def _on_status(self, identity: bytes, msg: Message) -> None:
        peer = self._peers.get(identity)
        with self._sched:
            queue = [j for j in self._heavy]
            running = list(self._running_heavy)
            training_queue = list(self._training)
            training = list(self._running_training)
        mine = []
        for job in (peer.jobs.values() if peer else []):
            entry = {"job": job.id, "kind": job.kind, "state": job.state, "done": job.done, "total": job.total}
            if job in queue:
                entry["position"] = queue.index(job) + 1
            elif job in training_queue:
                entry["position"] = training_queue.index(job) + 1
            mine.append(entry)
        fields = {
            "server": self.server_id,
            "uptime_s": round(time.monotonic() - self.started, 1),
            "device": self.device.to_dict(),
            "jobs": mine,
            "queued": len(queue),
            "running": len(running),
            "training": len(training) + len(training_queue),
            "clients": len(self._peers),
            "subjects_cached": self.engines.subjects_cached,
        }
        self._reply(identity, protocol.encode("status_reply", msg.job, fields, end=True))

    def _on_shutdown(self, identity: bytes, msg: Message) -> None:
        self.log("shutdown requested by a client")
        self._reply(identity, protocol.encode("ok", msg.job, {"stopping": True}, end=True))
        self.stop()

    def _on_cancel(self, identity: bytes, msg: Message) -> None:
        target = msg.fields["target"]
        peer = self._peers.get(identity)
        job = peer.jobs.get(target) if peer else None
        state = "unknown" if job is None else job.state
        if job is not None:
            self._cancel(job)
        self._reply(identity, protocol.encode("ok", msg.job, {"target": target, "state": state}, end=True))

    def _on_analyze(self, identity: bytes, msg: Message) -> None:
        self._check_room(identity, "analyze")
        self._submit(Job(identity, msg.job, "analyze", msg))

    def _on_preview(self, identity: bytes, msg: Message) -> None:
        motion, warnings = self._motion(msg, 1)
        if motion.shape[0] != 1:
            raise ProtocolError(protocol.E_BAD_MOTION, f"a preview takes one motion frame, got {motion.shape[0]}", msg.job)
        self._engine_of(msg)
        self._need_subject(msg)
        self._submit(Job(identity, msg.job, "preview", msg, motion=motion, warnings=warnings, total=1))

    def _on_generate(self, identity: bytes, msg: Message) -> None:
        motion, warnings = self._motion(msg, self.limits.max_frames)
        self._engine_of(msg)
        self._need_subject(msg)
        job = Job(identity, msg.job, "generate", msg, motion=motion, warnings=warnings, total=int(motion.shape[0]))
        if "output_dir" in msg.fields:
            job.output_key = self._output_key(msg)
        self._check_room(identity, "generate")
        self._submit(job)

    def _on_capture(self, identity: bytes, msg: Message) -> None:
        fields = msg.fields
        sources = [name for name in ("video_path", "livelink_path") if name in fields]
        if len(sources) != 1:
            raise ProtocolError(protocol.E_BAD_FIELD, "capture: send exactly one of 'video_path' (a video) or "
                                "'livelink_path' (a Live Link Face CSV)", msg.job)
        self._readable_path(fields[sources[0]])
        _capture_smoothing(fields)  # a bad level or group fails now, not after a queue wait
        _capture_strengths(fields)
        self._check_room(identity, "capture")
        self._submit(Job(identity, msg.job, "capture", msg))

    def _on_lipsync(self, identity: bytes, msg: Message) -> None:
        fields = msg.fields
        if ("audio_path" in fields) == ("text" in fields):
            raise ProtocolError(protocol.E_BAD_FIELD, "lipsync: send exactly one of 'audio_path' (a sound file) "
                                "or 'text' (to speak)", msg.job)
        if "audio_path" in fields:
            self._readable_path(fields["audio_path"])
        elif "output_dir" not in fields:
            raise ProtocolError(protocol.E_BAD_FIELD, "lipsync: 'text' needs 'output_dir', the folder on the "
                                "server where the spoken WAV is written", msg.job)
        else:
            self._writable_dir(fields["output_dir"])
        self._check_room(identity, "lipsync")
        self._submit(Job(identity, msg.job, "lipsync", msg))

    def _on_train(self, identity: bytes, msg: Message) -> None:
        if not self.engines.can_train:
            raise ServiceError("no_training", "this server cannot train: PyTorch is not installed there "
                                              "(pip install 'enliven[neural]')")
        fields = msg.fields
        # Everything that can be checked is checked now, not after a queue wait of hours.
        dataset = self._readable_path(fields["dataset_dir"])
        if not (dataset / "dataset.json").is_file():
            raise ServiceError("bad_path", f"{dataset} is not a dataset on the server (make one with `enliven prepare`)")
        self._train_config(msg)
        if "vgg_weights" in fields and not self._readable_path(fields["vgg_weights"]).is_file():
            raise ServiceError("bad_path", f"no VGG19 weights file {fields['vgg_weights']} on the server")
        run_dir = self._writable_dir(fields["run_dir"], "run_dir")
        running = self._training_run_for(f"{run_dir}{os.sep}last.pt")
        if running is not None:  # this run is being trained right now (perhaps for a client that went away)
            if not fields.get("resume"):
                raise ServiceError("output_busy", f"{run_dir} is being trained right now: resume it to watch it")
            self._watch_training(running, identity, msg.job)
            return
        has_run = (run_dir / "last.pt").exists()
        if not has_run and (run_dir / "best.pt").exists() and not fields.get("resume"):
            raise ServiceError("run_exists", f"{run_dir} holds a model from an earlier run (best.pt): choose "
                                             "another folder")
        if fields.get("resume") and not has_run:
            raise ServiceError("bad_checkpoint", f"resume: there is no {run_dir / 'last.pt'} to continue from")
        if has_run and not fields.get("resume"):
            raise ServiceError("run_exists", f"{run_dir} already holds a training run: resume it, or choose another folder")
        job = Job(identity, msg.job, "train", msg, total=int(fields.get("steps", 0)))
        job.output_key = f"{run_dir}{os.sep}last.pt"
        if job.output_key in self._outputs:  # queued, not yet running
            raise ServiceError("output_busy", f"another training run is waiting to write {run_dir}")
        self._check_room(identity, "train")
        self._submit(job)

    # -- validation helpers -------------------------------------------------

    def _engine_of(self, msg: Message) -> tuple[str, Path | None]:
        """The request's engine and, for the refine engine, the checkpoint it runs
        (checked when the request arrives, so a bad one fails before any queue)."""
        engine = msg.fields.get("engine", self.engines.default_engine)
        if engine not in self.engines.engine_names:
            raise ServiceError("unknown_engine", f"unknown engine {engine!r}; this server has {', '.join(self.engines.engine_names)}")
        raw = msg.fields.get("checkpoint")
        if engine != "refine":
            if raw is not None:
                raise ProtocolError(protocol.E_BAD_FIELD, f"{msg.type}: 'checkpoint' is for the refine engine; "
                                    f"the {engine} engine has no trained model", msg.job)
            return engine, None
        checkpoint = self._checkpoint_path(raw) if raw is not None else self.engines.default_checkpoint
        if checkpoint is None:
            raise ServiceError("bad_checkpoint", "the refine engine needs a trained model: send 'checkpoint' (a "
                                                "RUN_DIR/last.pt on the server) or start the server with --checkpoint")
        if not checkpoint.is_file():
            raise ServiceError("bad_checkpoint", f"no checkpoint file {checkpoint} on the server")
        return engine, checkpoint

    def _checkpoint_path(self, raw: str) -> Path:
        """A client-named checkpoint: readable where inputs are, or where this server's training writes them
        (under --output-root), so a model trained through the service can be used at once."""
        if self.output_root is not None:
            resolved = Path(raw).resolve()
            if Path(raw).is_absolute() and resolved.is_relative_to(self.output_root):
                return resolved
        return self._readable_path(raw)

    def _train_config(self, msg: Message) -> Any:
        """The RefineConfig a train request asks for (a preset name or an object of settings)."""
        from .neural.config import PRESETS, ConfigError, RefineConfig

        raw = msg.fields.get("config")
        try:
            if raw is None:
                config = None
            elif isinstance(raw, str):
                if raw not in PRESETS:
                    raise ConfigError(f"unknown preset {raw!r}; choose one of {', '.join(PRESETS)}")
                config = PRESETS[raw]
            else:
                config = RefineConfig.from_dict(raw)
            if "holdout" in msg.fields:
                config = replace(config or RefineConfig(), holdout=tuple(msg.fields["holdout"]))
            return config
        except (TypeError, ValueError, ConfigError) as e:
            raise ServiceError("bad_config", f"train: {e}") from None

    def _motion(self, msg: Message, max_frames: int) -> tuple[np.ndarray, list[str]]:
        """Motion in table order, finite, within each channel's range (clamped, with warnings)."""
        from .shared.motion import Motion, MotionError

        arr = protocol.motion_array(msg.parts["motion"], max_frames=max_frames,
                                    max_channels=self.limits.max_channels, job=msg.job)
        names = msg.fields.get("channels")
        if names is None:
            if arr.shape[1] != len(self.channel_names):
                raise ProtocolError(protocol.E_BAD_MOTION, f"motion has {arr.shape[1]} channels but this server's table has "
                                    f"{len(self.channel_names)}; send 'channels' with the names", msg.job)
            names = self.channel_names
        elif len(names) != arr.shape[1]:
            raise ProtocolError(protocol.E_BAD_MOTION, f"'channels' names {len(names)} channels but motion has {arr.shape[1]}", msg.job)
        try:
            motion, warnings = Motion(float(msg.fields.get("fps", 24.0)), tuple(names), arr).sanitized(strict=False)
            return np.ascontiguousarray(motion.full(), dtype=np.float32), warnings
        except MotionError as e:
            raise ProtocolError(protocol.E_BAD_MOTION, str(e), msg.job) from None

    def _need_subject(self, msg: Message) -> None:
        # Fail fast (before queueing) when the job could never find its subject.
        if "image" not in msg.parts:
            if "subject" not in msg.fields:
                raise ProtocolError(protocol.E_BAD_FIELD, f"{msg.type}: send 'subject' (from analyze) or an image part", msg.job)
            if not self.engines.has_subject(msg.fields["subject"]):
                raise ServiceError("unknown_subject", f"subject {msg.fields['subject']} is not cached on this server "
                                                      "(evicted or server restarted); analyze the photo again")

    def _check_room(self, identity: bytes, kind: str) -> None:
        peer = self._peers.get(identity)
        mine = sum(1 for j in peer.jobs.values() if j.kind == kind) if peer else 0
        if mine >= self.limits.max_jobs_per_client:
            raise ServiceError("too_many_jobs", f"this client already has {mine} {kind} jobs; the limit is "
                                                f"{self.limits.max_jobs_per_client} (wait or cancel one)")
        with self._sched:
            queued = len(self._heavy) + len(self._interactive)
        if queued >= self.limits.max_queued_jobs:
            raise ServiceError("busy", f"the server has {queued} jobs waiting; try again later")

    def _output_policy(self) -> str:
        if self.output_root is not None:
            return f"under {self.output_root}"
        return "any" if self.local else "no"

    def _input_policy(self) -> str:
        if self.input_root is not None:
            return f"under {self.input_root}"
        return "any" if self.local else "no"

    def _writable_dir(self, raw: str, field: str = "output_dir") -> Path:
        """A client-named output folder, resolved, if this server may write there."""
        path = Path(raw)
        if not path.is_absolute():
            raise ServiceError("bad_output_dir", f"{field} must be an absolute path on the server, got {raw!r}")
        resolved = path.resolve()
        if resolved.exists() and not resolved.is_dir():
            raise ServiceError("bad_output_dir", f"{field} {resolved} is a file, not a folder")
        if self.output_root is not None:
            if not resolved.is_relative_to(self.output_root):
                raise ServiceError("forbidden", f"{field} must be inside {self.output_root} on this server")
        elif not self.local:
            raise ServiceError("forbidden", "this server does not write files for remote clients "
                                            "(start it with --output-root DIR to allow it)")
        return resolved

    def _readable_path(self, raw: str) -> Path:
        """A client-named input file, resolved, if this server may read it: the
        same rule as for writing, so a remote client cannot read arbitrary files
        (resolving first means a symlink cannot lead out of --input-root)."""
        path = Path(raw)
        if not path.is_absolute():
            raise ServiceError("bad_path", f"input paths must be absolute paths on the server, got {raw!r}")
        resolved = path.resolve()
        if self.input_root is not None:
            if not resolved.is_relative_to(self.input_root):
                raise ServiceError("forbidden", f"input files must be inside {self.input_root} on this server")
        elif not self.local:
            raise ServiceError("forbidden", "this server does not read files for remote clients "
                                            "(start it with --input-root DIR to allow it)")
        return resolved

    def _output_key(self, msg: Message) -> str:
        resolved = self._writable_dir(msg.fields["output_dir"])
        key = f"{resolved}{os.sep}{msg.fields.get('prefix', 'frame_')}"
        if key in self._outputs:
            raise ServiceError("output_busy", f"another job is writing {key}* right now")
        return key

    # -- scheduling ---------------------------------------------------------

    def _submit(self, job: Job) -> None:
        peer = self._peers.setdefault(job.identity, _Peer())
        peer.jobs[job.id] = job
        if job.output_key:
            self._outputs.add(job.output_key)
        with self._sched:
            # Posting under the scheduler lock keeps "queued" ahead of the job's
            # first progress message, which a worker could otherwise overtake.
            if job.kind in HEAVY_KINDS:
                self._heavy.append(job)
                busy = len(self._running_heavy) >= self.limits.heavy_lanes
                if busy or len(self._heavy) > 1:
                    self._post(_Out(job.identity, protocol.encode("queued", job.id, {"position": len(self._heavy)})))
            elif job.kind in TRAINING_KINDS:
                self._training.append(job)
                if self._running_training or len(self._training) > 1:
                    self._post(_Out(job.identity, protocol.encode("queued", job.id, {"position": len(self._training)})))
            elif job.kind == "preview" and (old := self._queued_preview(job.identity)) is not None:
                # Newest wins: take the place of this client's preview that has not started.
                self._interactive[self._interactive.index(old)] = job
                old.state = "finished"
                self._post(_Out(job.identity, protocol.encode(
                    "done", old.id, {"status": "superseded", "by": job.id}, end=True), old, end=True))
            else:
                self._interactive.append(job)
            self._sched.notify_all()

    def _queued_preview(self, identity: bytes) -> Job | None:
        return next((j for j in self._interactive if j.kind == "preview" and j.identity == identity), None)

    def _cancel(self, job: Job) -> None:
        job.cancel.set()
        with job.cond:
            job.cond.notify_all()
        removed = False
        with self._sched:
            for lane in (self._heavy, self._interactive, self._training):
                if job in lane:
                    lane.remove(job)
                    removed = True
        if removed:  # never started: finish it here
            if job.kind in TRAINING_KINDS:
                self._finish(job, self._train_summary(job, "cancelled", 0, job.total))
            else:
                self._finish(job, protocol.encode("done", job.id, {"status": "cancelled", "frames": 0, "total": job.total, "rendered": 0}, end=True))

    def _start_threads(self) -> None:
        workers = [("enliven-interactive", self._interactive_loop)]
        workers += [(f"enliven-heavy-{i}", self._heavy_loop) for i in range(max(1, self.limits.heavy_lanes))]
        workers += [("enliven-train", self._training_loop)]
        for name, target in workers:
            t = threading.Thread(target=target, name=name, daemon=True)
            t.start()
            self._threads.append(t)

    def _next(self, lane: deque, running: list | None = None) -> Job | None:
        with self._sched:
            while not lane and not self._stopping.is_set():
                self._sched.wait(0.5)
            if self._stopping.is_set():
                return None
            job = lane.popleft()
            job.state = "running"
            if running is not None:
                running.append(job)
                for i, other in enumerate(lane, start=1):  # everyone behind moved up one
                    self._post(_Out(other.identity, protocol.encode("queued", other.id, {"position": i})))
        return job

    def _interactive_loop(self) -> None:
        while True:
            job = self._next(self._interactive)
            if job is None:
                return
            self._run_job(job, self._do_analyze if job.kind == "analyze" else self._do_preview)

    def _heavy_loop(self) -> None:
        bodies = {"generate": self._do_generate, "capture": self._do_capture, "lipsync": self._do_lipsync}
        while True:
            job = self._next(self._heavy, self._running_heavy)
            if job is None:
                return
            try:
                self._run_job(job, bodies[job.kind])
            finally:
                with self._sched:
                    if job in self._running_heavy:
                        self._running_heavy.remove(job)

    def _training_loop(self) -> None:
        while True:
            job = self._next(self._training, self._running_training)
            if job is None:
                return
            try:
                self._run_job(job, self._do_train)
            finally:
                with self._sched:
                    if job in self._running_training:
                        self._running_training.remove(job)

    def _run_job(self, job: Job, body: Callable[[Job], list]) -> None:
        """Run a job body in a worker thread; whatever happens, the job ends with one final reply."""
        try:
            final = body(job)
        except (ProtocolError, EnlivenError) as e:
            final = protocol.error_frames(job.id, e.code, str(e))
        except MemoryError:
            final = protocol.error_frames(job.id, "too_large", "the server ran out of memory for this job")
        except Exception as e:  # noqa: BLE001 - one broken job must not take the lane down
            self.log(f"job {job.id} failed: {e!r}\n{traceback.format_exc()}")
            final = protocol.error_frames(job.id, "internal", f"internal error: {e}")
        self._finish(job, final)

    def _finish(self, job: Job, frames: list) -> None:
        job.state = "finished"
        self._release_output(job)  # also for jobs cancelled before they started
        self._post(_Out(job.identity, frames, job, end=True))

    def _release_output(self, job: Job) -> None:
        if job.output_key:
            self._outputs.discard(job.output_key)

    # -- job bodies (worker threads) ----------------------------------------

    def _do_analyze(self, job: Job) -> list:
        subject = self.engines.analyze(job.msg.parts["image"], int(job.msg.fields.get("face_index", 0)), job.id)
        fields = {"subject": self.engines.subject_id(subject), "summary": subject.summary()}
        return protocol.encode("analysis", job.id, fields, end=True)

    def _do_preview(self, job: Job) -> list:
        t0 = time.perf_counter()
        subject = self.engines.subject_for(job.msg)
        animator, lock, notes = self.engines.animator(subject, *self._engine_of(job.msg))
        job.warnings.extend(notes)
        if job.cancel.is_set():
            return protocol.encode("done", job.id, {"status": "cancelled"}, end=True)
        with lock:
            rgb = animator.render(job.motion[0])
        fmt = job.msg.fields.get("format", "raw")
        fields = {"index": 0, "subject": self.engines.subject_id(subject), "width": int(rgb.shape[1]),
                  "height": int(rgb.shape[0]), "render_ms": round((time.perf_counter() - t0) * 1000, 2)}
        if job.warnings:
            fields["warnings"] = job.warnings[:20]
        return protocol.encode("frame", job.id, fields, {"image": _encode_image(rgb, fmt)}, end=True)

    def _do_generate(self, job: Job) -> list:
        msg, f = job.msg, job.msg.fields
        t0 = time.perf_counter()
        try:
            subject = self.engines.subject_for(msg)
            animator, lock, notes = self.engines.animator(subject, *self._engine_of(msg))
            job.warnings.extend(notes)
            writer = _FrameWriter.from_fields(f) if "output_dir" in f else None
            fmt = f.get("format", "png")
            png_level = int(f.get("png_compression", 1))
            if not self._emit(job, protocol.encode("progress", job.id, {
                    "state": "running", "done": 0, "total": job.total,
                    "subject": self.engines.subject_id(subject), "warnings": job.warnings[:20]})):
                return self._generate_summary(job, t0, 0, 0, writer)

            pending: deque[Future] = deque()
            depth = self._encode_threads + 1  # frames being encoded while the next renders
            rendered = skipped = 0
            last_progress = time.perf_counter()
            for index in range(job.total):
                if job.cancel.is_set():
                    break
                if writer is not None and f.get("resume") and writer.complete(index):
                    fut: Future = Future()
                    fut.set_result((index, {"index": index, "path": str(writer.path(index)), "skipped": True}, {}))
                    skipped += 1
                else:
                    with lock:
                        rgb = animator.render(job.motion[index])
                    rendered += 1
                    if job.cancel.is_set():
                        job.rendered_after_cancel += 1
                    fut = self._encoders.submit(_finish_frame, index, rgb, fmt, writer, png_level)
                pending.append(fut)
                # Emit finished frames in order; never let more than `depth` pile up.
                while pending and (len(pending) > depth or pending[0].done()):
                    if not self._emit_frame(job, pending.popleft()):
                        break
                now = time.perf_counter()
                if now - last_progress >= PROGRESS_EVERY_S:
                    last_progress = now
                    self._emit(job, protocol.encode("progress", job.id, {
                        "state": "running", "done": job.done, "total": job.total,
                        "fps": round(job.done / max(now - t0, 1e-9), 2)}))
            while pending and not job.cancel.is_set():
                self._emit_frame(job, pending.popleft())
            for fut in pending:  # cancelled: let in-flight encodes finish quietly
                fut.cancel()
            return self._generate_summary(job, t0, rendered, skipped, writer)
        finally:
            self._release_output(job)

    def _do_capture(self, job: Job) -> list:
        from .capture import DEFAULT_MAX_GAP_S, capture_video, load_livelink_csv, retarget
        from .filters import smooth_channels
        from .shared.motion import Motion

        f = job.msg.fields
        report = self._progress_reporter(job)
        extra: dict[str, Any] = {}
        try:
            report("starting", 0, None)
            if "video_path" in f:
                capture = capture_video(self._readable_path(f["video_path"]), f.get("reference", "first"),
                                        _capture_smoothing(f), float(f.get("max_gap_s", DEFAULT_MAX_GAP_S)),
                                        int(f.get("face_index", 0)), progress=report)
                motion, warnings = capture.motion, list(capture.warnings)
                extra = {"reference_frame": capture.reference_frame,
                         "missing_frames": sum(stop - start for start, stop in capture.missing)}
            else:
                motion = load_livelink_csv(self._readable_path(f["livelink_path"]), f.get("fps"))
                smoothing = _capture_smoothing(f)
                if smoothing is not None:
                    motion = Motion(motion.fps, motion.channels,
                                    smooth_channels(motion.values, motion.channels, motion.fps, smoothing))
                warnings = []
        except _JobCancelled:
            return self._cancelled_summary(job)
        strengths = _capture_strengths(f)
        if strengths:
            motion = retarget(motion, strengths)
        return self._motion_reply(job, motion, warnings, extra)

    def _do_lipsync(self, job: Job) -> list:
        from .speech.lipsync import LipsyncOptions, lipsync_audio, lipsync_phonemes

        f = job.msg.fields
        options = LipsyncOptions(fps=float(f["fps"]), strength=float(f.get("strength", 1.0)),
                                 lead_frames=float(f.get("lead", 2.0)), head_motion=float(f.get("head_motion", 0.0)),
                                 blinks=bool(f.get("blinks", False)), seed=int(f.get("seed", 0)))
        report = self._progress_reporter(job)
        try:
            report("starting", 0, None)
            if "text" in f:
                speech, wav_path = self._speak(job, f)
                report("lip-sync", 1, 1)
                result = lipsync_phonemes(speech, options)
                extra = {"audio_path": str(wav_path)}
            else:
                result = lipsync_audio(self._readable_path(f["audio_path"]), options,
                                       progress=lambda seconds: report("decoding", round(seconds, 2), None))
                extra = {}
        except _JobCancelled:
            return self._cancelled_summary(job)
        extra.update(duration_s=round(result.duration_s, 4), speech_s=round(result.speech_s, 4), method=result.method)
        return self._motion_reply(job, result.motion, [], extra)

    def _do_train(self, job: Job) -> list:
        """Train in this lane's thread. Progress goes out every config.log_every
        steps; a cancel (or the client going away, or shutdown) stops after the
        current step, and the run is saved either way, so `resume` continues it."""
        try:
            from .neural.train import Trainer
        except ImportError as e:
            raise ServiceError("no_training", f"this server cannot train: PyTorch does not load there ({e})") from None

        f = job.msg.fields
        run_dir = self._writable_dir(f["run_dir"], "run_dir")
        report = self._progress_reporter(job)
        try:
            report("preparing", 0, None)
        except _JobCancelled:
            return self._train_summary(job, "cancelled", 0, job.total)

        def progress(step: int, total: int, losses: dict[str, float]) -> None:
            job.done, job.total = step, total
            fields = {"state": "running", "stage": "training", "done": step, "total": total,
                      "losses": _finite(losses), "run_dir": str(run_dir), "samples": str(run_dir / "samples.png")}
            self._emit(job, protocol.encode("progress", job.id, fields))  # False once cancelled: stop_when sees it

        vgg = self._readable_path(f["vgg_weights"]) if "vgg_weights" in f else None
        trainer = Trainer(self._readable_path(f["dataset_dir"]), run_dir, self._train_config(job.msg),
                          resume=bool(f.get("resume", False)), vgg_weights=vgg, device=self.device.kind,
                          progress=progress, show_progress_bar=False, steps=f.get("steps"),
                          stop_when=job.cancel.is_set)
        job.total = trainer.config.steps
        if job.cancel.is_set():  # cancelled while the dataset loaded: nothing trained, nothing to save
            return self._train_summary(job, "cancelled", trainer.step, trainer.config.steps)
        self.log(f"job {job.id}: training {run_dir} from step {trainer.step} to {trainer.config.steps}")
        losses = trainer.run()
        status = "completed" if trainer.step >= trainer.config.steps else ("stalled" if job.stalled else "stopped")
        self.log(f"job {job.id}: training {status} at step {trainer.step}")
        model = run_dir / ("best.pt" if trainer.best else "last.pt")  # best.pt: chosen on validation clips
        return self._train_summary(job, status, trainer.step, trainer.config.steps, run_dir, losses, model)

    def _train_summary(self, job: Job, status: str, step: int, total: int, run_dir: Path | None = None,
                       losses: dict[str, float] | None = None, model: Path | None = None) -> list:
        """A training's final reply: completed, stopped (saved: resume continues it), or cancelled (nothing
        trained, nothing saved) or stalled."""
        fields: dict[str, Any] = {"status": status, "step": step, "total": total}
        if run_dir is not None:
            fields.update(checkpoint=str(model or run_dir / "last.pt"), samples=str(run_dir / "samples.png"),
                          losses=_finite(losses or {}))
        return protocol.encode("done", job.id, fields, end=True)

    def _speak(self, job: Job, f: dict) -> tuple[Any, Path]:
        """Synthesise the text and write it as a WAV in the client's output_dir.

        The file is named by what was said and how, so saying the same line
        again reuses the same file (and a sound strip that plays it)."""
        from .speech.audio import write_wav
        from .speech.tts import DEFAULT_RATE_WPM, DEFAULT_VOICE, synthesize

        voice, rate = f.get("voice", DEFAULT_VOICE), int(f.get("rate_wpm", DEFAULT_RATE_WPM))
        speech = synthesize(f["text"], voice=voice, rate_wpm=rate)
        if job.cancel.is_set():
            raise _JobCancelled()
        directory = self._writable_dir(f["output_dir"])
        digest = hashlib.sha256(f"{voice}\0{rate}\0{f['text']}".encode()).hexdigest()[:16]
        wav_path = directory / f"say_{digest}.wav"
        try:
            directory.mkdir(parents=True, exist_ok=True)
            write_wav(wav_path, speech.samples, speech.sample_rate)
        except OSError as e:
            raise ServiceError("write_failed", f"cannot write {wav_path}: {e.strerror or e}") from e
        return speech, wav_path

    def _progress_reporter(self, job: Job) -> Callable[[str, int | float, int | float | None], None]:
        """A progress(stage, done, total) callback for library code: sends a
        ``progress`` reply at most every PROGRESS_EVERY_S, and stops the job
        (raises _JobCancelled) once it is cancelled."""
        last = {"stage": None, "sent": 0.0}

        def report(stage: str, done: int | float, total: int | float | None) -> None:
            if job.cancel.is_set():
                raise _JobCancelled()
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
            if not self._emit(job, protocol.encode("progress", job.id, fields)):
                raise _JobCancelled()

        return report

    def _motion_reply(self, job: Job, motion: Any, warnings: list[str], extra: dict) -> list:
        """The final ``motion`` reply: channel names and fps in the header, the
        (frames, channels) float32 values as the "motion" part."""
        if motion.frame_count > self.limits.max_frames:
            raise ServiceError("too_large", f"the result has {motion.frame_count} frames; this server's limit is "
                                            f"{self.limits.max_frames} (use a shorter clip)")
        values = np.ascontiguousarray(motion.values, dtype=np.float32)
        fields = {"channels": list(motion.channels), "fps": float(motion.fps), "frames": int(values.shape[0]),
                  "warnings": warnings[:20], **extra}
        return protocol.encode("motion", job.id, fields, {"motion": values}, end=True)

    def _cancelled_summary(self, job: Job) -> list:
        status = "stalled" if job.stalled else "cancelled"
        return protocol.encode("done", job.id, {"status": status, "frames": 0, "total": job.total}, end=True)

    def _emit_frame(self, job: Job, fut: Future) -> bool:
        index, fields, parts = fut.result()
        ok = self._emit(job, protocol.encode("frame", job.id, fields, parts))
        if ok:
            job.done = index + 1
        return ok

    def _generate_summary(self, job: Job, t0: float, rendered: int, skipped: int, writer: "_FrameWriter | None") -> list:
        elapsed = time.perf_counter() - t0
        cancelled = job.cancel.is_set()
        fields = {
            "status": "cancelled" if cancelled else "completed",
            "frames": job.done,
            "total": job.total,
            "rendered": rendered,
            "skipped": skipped,
            "elapsed_s": round(elapsed, 3),
            "fps": round(rendered / elapsed, 2) if elapsed > 0 else 0.0,
            "warnings": job.warnings[:20],
        }
        if cancelled:
            fields["rendered_after_cancel"] = job.rendered_after_cancel
        if writer is not None:
            fields["output_dir"] = str(writer.directory)
        if job.stalled:
            fields["status"] = "stalled"
        return protocol.encode("done", job.id, fields, end=True)

    def _emit(self, job: Job, frames: list) -> bool:
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
        self._post(_Out(job.identity, frames, job, credited=True))
        return True

    # -- sending (socket thread, fed by _post from any thread) --------------

    def _post(self, out: _Out) -> None:
        with self._out_lock:
            self._out.append(out)
        self._wake()

    def _wake(self) -> None:
        try:
            self._wake_w.send(b"\0")
        except (BlockingIOError, OSError):
            pass  # the pipe is full, so the socket thread is already due to wake

    def _drain_wake(self) -> None:
        try:
            while self._wake_r.recv(4096):
                pass
        except (BlockingIOError, OSError):
            pass

    def _drain_outbox(self) -> None:
        while True:
            with self._out_lock:
                if not self._out:
                    return
                out = self._out.popleft()
            self._deliver(out)

    def _reply(self, identity: bytes, frames: list) -> None:
        self._deliver(_Out(identity, frames))

    def _deliver(self, out: _Out) -> None:
        peer = self._peers.get(out.identity)
        if peer is not None and peer.backlog:
            self._queue_backlog(peer, out)  # keep per-client order
            return
        result = self._try_send(out)
        if result == "again":
            self._queue_backlog(self._peers.setdefault(out.identity, _Peer()), out)

    def _queue_backlog(self, peer: _Peer, out: _Out) -> None:
        """Hold a message ZeroMQ would not take yet, without letting a client that
        never reads grow the server: a generate's frames are already bounded by
        the job window; a preview frame replaces any older one still waiting
        (newest wins, here too); other replies are capped in number."""
        if out.job is not None and out.job.kind == "preview" and out.end:
            for i, old in enumerate(peer.backlog):
                if old.job is not None and old.job.kind == "preview" and old.end:
                    peer.backlog[i] = _Out(old.identity, protocol.encode(
                        "done", old.job.id, {"status": "superseded", "by": out.job.id}, end=True), old.job, end=True)
        if not out.credited and len(peer.backlog) >= BACKLOG_CAP:
            peer.dropped += 1
            if peer.dropped in (1, 100, 10_000):
                self.log(f"client {out.identity.hex()[:12]} reads nothing; dropped {peer.dropped} replies")
            self._sent(out)  # bookkeeping as if delivered, so the job record does not leak
            return
        peer.backlog.append(out)

    def _try_send(self, out: _Out) -> str:
        try:
            self._router.send_multipart([out.identity, *out.frames], flags=zmq.NOBLOCK, copy=False)
        except zmq.Again:
            return "again"
        except zmq.ZMQError as e:
            if e.errno == errno.EHOSTUNREACH:
                self._peer_gone(out.identity)
                self._sent(out)
                return "gone"
            raise
        self._sent(out)
        return "sent"

    def _sent(self, out: _Out) -> None:
        if out.credited and out.job is not None:
            out.job.release()
        if out.end and out.job is not None:
            peer = self._peers.get(out.identity)
            if peer is not None and peer.jobs.get(out.job.id) is out.job:
                del peer.jobs[out.job.id]
                if not peer.jobs and not peer.backlog:
                    del self._peers[out.identity]

    def _flush_backlogs(self) -> None:
        for identity, peer in list(self._peers.items()):
            while peer.backlog:
                out = peer.backlog[0]
                result = self._try_send(out)
                if result == "again":
                    break
                if result == "gone":
                    break
                peer.backlog.popleft()
            if identity in self._peers and not peer.jobs and not peer.backlog:
                del self._peers[identity]

    def _peer_gone(self, identity: bytes) -> None:
        """The client disconnected: cancel its jobs so nothing keeps running for nobody. A training run
        that has started goes on (it is hours of work, and the machine is there for it); its progress goes
        nowhere until a client resumes the same run folder and so watches it again (`_on_train`)."""
        peer = self._peers.pop(identity, None)
        if peer is None:
            return
        for out in peer.backlog:
            if out.credited and out.job is not None:
                out.job.release()
        peer.backlog.clear()
        for job in list(peer.jobs.values()):
            if job.kind in TRAINING_KINDS and job.state == "running":
                self.log(f"client {identity.hex()[:12]} went away; training job {job.id} goes on without a client")
            else:
                self.log(f"client {identity.hex()[:12]} went away; cancelling job {job.id}")
                self._cancel(job)

    def _training_run_for(self, output_key: str) -> Job | None:
        with self._sched:
            return next((j for j in self._running_training if j.output_key == output_key), None)

    def _watch_training(self, job: Job, identity: bytes, job_id: str) -> None:
        """Hand a running training job to the client that resumed its run folder: from now on its
        progress, and its final reply, go to that client under that job id, and that client can cancel it."""
        old_peer = self._peers.get(job.identity)
        if old_peer is not None:
            old_peer.jobs.pop(job.id, None)
        # A progress message the worker is posting right now may still go out under the old id: clients
        # ignore job ids they do not know.
        job.identity, job.id = identity, job_id
        self._peers.setdefault(identity, _Peer()).jobs[job_id] = job
        self.log(f"job {job_id}: now watching the training of {job.output_key}")
        self._reply(identity, protocol.encode("progress", job_id, {
            "state": "running", "stage": "watching", "done": job.done, "total": job.total}))

    # -- shutdown -----------------------------------------------------------

    def _shutdown(self) -> None:
        self._stopping.set()
        with self._sched:
            training = list(self._running_training)  # may have no client any more (see _peer_gone)
        for job in [j for peer in list(self._peers.values()) for j in peer.jobs.values()] + training:
            job.cancel.set()
            with job.cond:
                job.cond.notify_all()
        with self._sched:
            self._sched.notify_all()
        for t in self._threads:
            t.join(timeout=TRAINING_STOP_WAIT_S if t.name == "enliven-train" else 5)
        self._drain_outbox()
        self._flush_backlogs()
        self._encoders.shutdown(wait=False, cancel_futures=True)
        if self._router is not None:
            self._router.close(linger=500)
        if self._auth is not None:
            self._auth.stop()
        if self._ctx is not None:
            self._ctx.term()
        self._wake_r.close()
        self._wake_w.close()


# --------------------------------------------------------------------------
# Capture options


def _torch_installed() -> bool:
    """Whether PyTorch is there, without importing it (seconds, and memory, that serving warp frames never needs)."""
    try:
        return importlib.util.find_spec("torch") is not None
    except (ImportError, ValueError):  # ValueError: sys.modules["torch"] is None (blocked)
        return False


def _finite(losses: dict[str, float]) -> dict[str, float]:
    """Loss values for the wire: JSON has no NaN or infinity (a diverged loss is left out)."""
    return {name: round(float(value), 6) for name, value in losses.items() if math.isfinite(value)}


def _capture_smoothing(fields: dict) -> Any:
    """OneEuroSettings (or None) for a capture request: the named level, by
    default "normal" for a video and "none" for a Live Link CSV (the phone
    already filters)."""
    from .filters import DEFAULT_SMOOTHING, smoothing_settings

    default = "none" if "livelink_path" in fields else DEFAULT_SMOOTHING
    try:
        return smoothing_settings(fields.get("smoothing", default))
    except ValueError as e:
        raise ProtocolError(protocol.E_BAD_FIELD, f"capture: {e}") from None


def _capture_strengths(fields: dict) -> dict[str, float]:
    from .capture import RETARGET_GROUPS

    strengths = {group: float(factor) for group, factor in fields.get("strengths", {}).items()}
    unknown = sorted(set(strengths) - set(RETARGET_GROUPS))
    if unknown:
        raise ProtocolError(protocol.E_BAD_FIELD, f"capture: unknown channel group(s) {', '.join(unknown)} in "
                            f"'strengths'; groups are {', '.join(RETARGET_GROUPS)}")
    return strengths


# --------------------------------------------------------------------------
# Frame encoding and writing (encoder pool threads)


def _encode_image(rgb: np.ndarray, fmt: str, png_level: int = 1) -> bytes | np.ndarray:
    if fmt == "raw":
        return np.ascontiguousarray(rgb, dtype=np.uint8)
    if fmt == "jpeg":
        ok, data = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 92])
        if not ok:
            raise ServiceError("encode_failed", "could not encode a JPEG")
        return data.tobytes()
    return encode_png(rgb, png_level)


def _finish_frame(index: int, rgb: np.ndarray, fmt: str, writer: "_FrameWriter | None",
                  png_level: int = 1) -> tuple[int, dict, dict]:
    """Encode one frame (and write it when the server writes the sequence); runs in the encoder pool."""
    fields: dict[str, Any] = {"index": index}
    parts: dict[str, Any] = {}
    png = None
    if writer is not None:
        png = _encode_image(rgb, "png", png_level)
        fields["path"] = str(writer.write(index, png))
    if fmt == "png" and png is not None:
        parts["image"] = png
    elif fmt != "none":
        parts["image"] = _encode_image(rgb, fmt, png_level)
    return index, fields, parts


@dataclass
class _FrameWriter:
    """Writes the numbered PNG sequence atomically (temp file + rename), so a
    killed job leaves only complete frames and a resumed job can trust them."""

    directory: Path
    prefix: str
    first_number: int
    digits: int

    @classmethod
    def from_fields(cls, f: dict) -> "_FrameWriter":
        directory = Path(f["output_dir"]).resolve()
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise ServiceError("bad_output_dir", f"cannot create {directory}: {e.strerror or e}") from e
        writer = cls(directory, f.get("prefix", "frame_"), int(f.get("first_number", 0)), int(f.get("digits", 5)))
        writer._remove_stale_temps()
        return writer

    def path(self, index: int) -> Path:
        return self.directory / f"{self.prefix}{self.first_number + index:0{self.digits}d}.png"

    def complete(self, index: int) -> bool:
        """A frame counts as done only if it is a whole PNG (signature + IEND)."""
        p = self.path(index)
        try:
            size = p.stat().st_size
            if size < 8 + len(_PNG_END):
                return False
            with open(p, "rb") as fh:
                head = fh.read(8)
                fh.seek(size - len(_PNG_END))
                tail = fh.read()
        except OSError:
            return False
        return head == b"\x89PNG\r\n\x1a\n" and tail == _PNG_END

    def write(self, index: int, png: bytes) -> Path:
        from .images import write_atomic

        target = self.path(index)
        try:
            write_atomic(target, png)
        except OSError as e:
            raise ServiceError("write_failed", f"cannot write {target}: {e.strerror or e}") from e
        return target

    def _remove_stale_temps(self) -> None:
        # Temp files of a job killed mid-write (images.write_atomic names them .<name>.XXXX.part).
        for stale in self.directory.glob(f".{self.prefix}*.part"):
            try:
                stale.unlink()
            except OSError:
                pass


# --------------------------------------------------------------------------
# Endpoints and keys


def is_local_endpoint(endpoint: str) -> bool:
    """True for ipc://, inproc:// and tcp:// on a loopback address."""
    if endpoint.startswith(("ipc://", "inproc://")):
        return True
    if not endpoint.startswith("tcp://"):
        return False
    host = endpoint[len("tcp://"):].rsplit(":", 1)[0]
    if ";" in host:  # "source;dest" form: judge the bound address
        host = host.split(";")[-1]
    host = host.strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # "*", interface names, host names: all potentially public


def default_keys_dir() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return Path(base) / "enliven" / "keys"


def create_keys(directory: str | os.PathLike, client_name: str = "client", force: bool = False) -> dict[str, Path]:
    """Create the server key pair (once) and a client key pair whose public key
    goes into clients/ (the server's allow list)."""
    import zmq.auth

    if not client_name.replace("-", "").replace("_", "").isalnum():
        raise ServiceError("bad_name", f"client name {client_name!r} must be letters, digits, - or _")
    directory = Path(directory).expanduser()
    clients = directory / "clients"
    clients.mkdir(parents=True, exist_ok=True)
    os.chmod(directory, 0o700)
    server_secret = directory / "server.key_secret"
    if not server_secret.exists():  # never replaced: that would lock out every existing client
        zmq.auth.create_certificates(str(directory), "server")
    client_secret = directory / f"{client_name}.key_secret"
    if client_secret.exists() and not force:
        raise ServiceError("exists", f"{client_secret} already exists; pick another --client name or pass --force")
    pub, sec = zmq.auth.create_certificates(str(directory), client_name)
    shutil.copyfile(pub, clients / f"{client_name}.key")
    for secret in (server_secret, client_secret):
        os.chmod(secret, 0o600)
    return {"server_public": directory / "server.key", "server_secret": server_secret,
            "client_secret": Path(sec), "client_public": Path(pub), "allowed": clients / f"{client_name}.key"}


class _QuietLog:
    """ThreadAuthenticator logs every handshake; keep only warnings."""

    def debug(self, *a: Any, **k: Any) -> None: ...
    def info(self, *a: Any, **k: Any) -> None: ...
    def warning(self, msg: str, *a: Any, **k: Any) -> None: _stderr_log("auth: " + (msg % a if a else msg))
    def error(self, msg: str, *a: Any, **k: Any) -> None: _stderr_log("auth: " + (msg % a if a else msg))
    def exception(self, msg: str, *a: Any, **k: Any) -> None: _stderr_log("auth: " + (msg % a if a else msg))


# --------------------------------------------------------------------------
# Entry points


def serve(
    bind: str = DEFAULT_BIND,
    device: str = "auto",
    engine: str = "warp",
    keys_dir: str | os.PathLike | None = None,
    limits: Limits | None = None,
    log: Log = _stderr_log,
    output_root: str | os.PathLike | None = None,
    ready: Callable[[str], None] | None = None,
    input_root: str | os.PathLike | None = None,
    checkpoint: str | os.PathLike | None = None,
) -> int:
    """Run the server until `shutdown` or SIGINT/SIGTERM; returns a process exit code.

    Prints ``listening on <endpoint>`` to stdout once bound (``--bind tcp://127.0.0.1:0``
    picks a free port; the line says which), or calls ``ready(endpoint)``.
    """
    # The render lane and the PNG encoders already run side by side; OpenCV's own
    # thread pool would only make them fight over the same cores (measured: a
    # warp frame takes the same time on one OpenCV thread, with a quarter less CPU).
    cv2.setNumThreads(1)
    try:
        info = detect_device(device)
        server = Server(bind, device=info, engine=engine, keys_dir=keys_dir, limits=limits,
                        output_root=output_root, input_root=input_root, log=log, checkpoint=checkpoint)
        endpoint = server.open()
    except EnlivenError as e:
        log(f"error: {e}")
        return getattr(e, "exit_code", 2) if not isinstance(e, ServiceError) else 2
    if threading.current_thread() is threading.main_thread():
        # SIGBREAK: how a parent on Windows (the Blender add-on) asks for a clean stop; terminate() kills there.
        for sig in (signal.SIGINT, signal.SIGTERM, getattr(signal, "SIGBREAK", None)):
            if sig is not None:
                signal.signal(sig, lambda *_: server.stop())
    log(f"enliven {__version__}, protocol {PROTOCOL_VERSION}, device {info.name}, "
        f"engines {', '.join(server.engines.engine_names)}; listening on {endpoint}")
    if ready is not None:
        ready(endpoint)
    else:
        print(f"listening on {endpoint}", flush=True)
    return server.run()


def _limits_from_args(args: argparse.Namespace) -> Limits:
    base = Limits()
    return replace(
        base,
        max_message_bytes=int(args.max_message_mb * 1024 * 1024),
        max_frames=args.max_frames,
        max_image_side=args.max_image_side,
        max_image_pixels=args.max_image_pixels,
        max_jobs_per_client=args.max_jobs_per_client,
        stall_timeout_s=args.stall_timeout,
    )


def _cmd_serve(args: argparse.Namespace) -> int:
    return serve(args.bind, device=args.device, engine=args.engine, keys_dir=args.keys,
                 limits=_limits_from_args(args), output_root=args.output_root, input_root=args.input_root,
                 checkpoint=args.checkpoint)


def _engine_choices() -> list[str] | None:
    try:
        from .animator import ENGINE_NAMES

        return list(ENGINE_NAMES)
    except Exception:  # noqa: BLE001 - --help must work even if an engine fails to import
        return None


def add_serve_command(subparsers: Any) -> argparse.ArgumentParser:
    base = Limits()
    p = subparsers.add_parser(
        "serve", help="run the backend server that Blender (or `enliven generate --server`) talks to",
        description="Serve analysis, previews and generation over ZeroMQ. Loopback only unless --keys is given.")
    p.add_argument("--bind", default=DEFAULT_BIND,
                   help=f"ZeroMQ endpoint (default {DEFAULT_BIND}; port 0 picks a free port). Any non-loopback "
                        "address requires --keys")
    p.add_argument("--device", choices=DEVICE_CHOICES, default="auto", help="compute device (default auto)")
    p.add_argument("--engine", default="warp", choices=_engine_choices(), help="engine used when a request names none")
    p.add_argument("--checkpoint", metavar="PATH", default=None,
                   help="the refine engine's trained model (RUN_DIR/best.pt or last.pt from `enliven train`) for "
                        "requests that name none")
    p.add_argument("--keys", metavar="DIR", default=None,
                   help="CurveZMQ keys directory from `enliven keys` (server.key_secret + clients/*.key)")
    p.add_argument("--output-root", metavar="DIR", default=None,
                   help="let clients write frame sequences only under DIR (remote clients may write nowhere without it)")
    p.add_argument("--input-root", metavar="DIR", default=None,
                   help="let clients have videos and audio read only under DIR (remote clients may have nothing "
                        "read without it)")
    p.add_argument("--max-message-mb", type=float, default=base.max_message_bytes / 1024 / 1024, metavar="MB",
                   help="largest request accepted (default %(default)g); bigger frames drop the connection")
    p.add_argument("--max-frames", type=int, default=base.max_frames, metavar="N",
                   help="most frames in one generate job (default %(default)s)")
    p.add_argument("--max-image-side", type=int, default=base.max_image_side, metavar="PX",
                   help="largest photo side (default %(default)s)")
    p.add_argument("--max-image-pixels", type=int, default=base.max_image_pixels, metavar="N",
                   help="largest photo in pixels (default %(default)s)")
    p.add_argument("--max-jobs-per-client", type=int, default=base.max_jobs_per_client, metavar="N",
                   help="generate jobs one client may have queued or running (default %(default)s)")
    p.add_argument("--stall-timeout", type=float, default=base.stall_timeout_s, metavar="S",
                   help="seconds a client may read nothing before its job is cancelled (default %(default)g)")
    p.set_defaults(func=_cmd_serve)
    return p


def _cmd_keys(args: argparse.Namespace) -> int:
    directory = Path(args.dir).expanduser() if args.dir else default_keys_dir()
    try:
        made = create_keys(directory, args.client, force=args.force)
    except EnlivenError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"""Keys in {directory}:
  server key pair     {made['server_secret']} (stays on the GPU box)
  server public key   {made['server_public']} (copy to each workstation)
  client key pair     {made['client_secret']} (copy to the workstation that runs Blender)
  allowed client key  {made['allowed']} (the server accepts only keys in {directory / 'clients'})

On the GPU box:     enliven serve --bind tcp://0.0.0.0:5570 --keys {directory}
On the workstation: point the add-on (or `enliven generate --server tcp://GPU-BOX:5570`) at
                    server public key = {made['server_public'].name}, client keys = {made['client_secret'].name}""")
    return 0


def add_keys_command(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser("keys", help="create CurveZMQ keys for serving to other machines",
                              description="Create the server key pair (once) and a client key pair, "
                                          "and allow that client.")
    p.add_argument("--dir", default=None, help=f"keys directory (default {default_keys_dir()})")
    p.add_argument("--client", default="client", help="name of the client key pair to create (default: client)")
    p.add_argument("--force", action="store_true", help="overwrite an existing client key pair of that name")
    p.set_defaults(func=_cmd_keys)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m enliven.server")
    sub = parser.add_subparsers(dest="command", required=True)
    add_serve_command(sub)
    add_keys_command(sub)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
