"""The server: a router, a scheduler, the engine caches and the path policy,
put together, and :func:`serve`, which runs one until it is told to stop."""
from __future__ import annotations

import os
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable

import cv2

from .. import __version__
from ..device import DeviceInfo, detect_device
from ..errors import EnlivenError
from ..shared import protocol
from ..shared.protocol import PROTOCOL_VERSION, Limits, ProtocolError
from .control import CONTROL
from .jobs import Job, ServiceError
from .keys import is_local_endpoint
from .kinds import JOB_KINDS
from .log import Log, stderr_log
from .paths import PathPolicy
from .router import Router
from .scheduler import Scheduler
from .subjects import Engines

DEFAULT_BIND = "tcp://127.0.0.1:5570"


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
        log: Log = stderr_log,
        checkpoint: str | os.PathLike | None = None,
        allow_shutdown: bool = False,
    ):
        self.bind = bind
        self.device = device
        self.limits = limits or Limits()
        self.keys_dir = Path(keys_dir).expanduser() if keys_dir else None
        self.log = log
        self.local = is_local_endpoint(bind)
        # A loopback server is its user's own (the add-on stops the backend it started); on a shared
        # GPU box one client must not be able to stop everyone's work.
        self.shutdown_allowed = allow_shutdown
        self.paths = PathPolicy(self.local, Path(input_root).expanduser().resolve() if input_root else None,
                                Path(output_root).expanduser().resolve() if output_root else None)
        self.server_id = os.urandom(6).hex()  # lets clients notice a restart
        self.started = time.monotonic()
        self.engines = Engines(self.limits, engine, checkpoint)
        from ..shared.channels import CHANNEL_NAMES

        self.channel_names = tuple(CHANNEL_NAMES)
        self.encode_threads = max(2, min(4, (os.cpu_count() or 2) - 1))
        self.encoders = ThreadPoolExecutor(max_workers=self.encode_threads, thread_name_prefix="enliven-encode")
        self.router = Router(bind, self.limits, log, self.keys_dir, self.handle, self._peer_gone)
        self.scheduler = Scheduler(self.limits, log, self.router.post, lambda job: job.spec.run(self, job))
        self._stopping = threading.Event()

    @property
    def endpoint(self) -> str:
        return self.router.endpoint

    def open(self) -> str:
        """Create and bind the ROUTER; returns the endpoint actually bound."""
        if not self.local and self.keys_dir is None:
            raise ServiceError(protocol.E_INSECURE_BIND,
                               f"refusing to bind {self.bind} without encryption: only loopback "
                               "(127.0.0.1, localhost, ::1) or ipc:// may be served in the clear. "
                               "Create keys with `enliven keys` and pass --keys DIR.")
        return self.router.open()

    def run(self) -> int:
        try:
            self.router.loop(self._stopping)
        finally:
            self._shutdown()
        return 0

    def stop(self) -> None:
        self._stopping.set()
        self.router.wake()

    def close(self) -> None:
        """Release what a server that was never run holds."""
        self.encoders.shutdown()
        self.router.close_wake()

    # -- requests (socket thread) -------------------------------------------

    def handle(self, identity: bytes, client: str, frames: list) -> None:
        """One request: decoded, then answered (control) or admitted and queued (a job)."""
        reply = self.router.reply
        try:
            msg = protocol.decode_request(frames, max_bytes=self.limits.max_message_bytes)
        except ProtocolError as e:
            if e.code == protocol.E_VERSION:
                theirs = e.details.get("received")
                reply(identity, protocol.error_frames(
                    e.job, e.code, f"this server (enliven {__version__}) speaks protocol {PROTOCOL_VERSION}, but the "
                    f"request uses protocol {theirs}; install matching versions of the add-on and the backend",
                    server_protocol=PROTOCOL_VERSION, client_protocol=theirs, server_version=__version__))
            else:
                reply(identity, protocol.error_frames(e.job, e.code, str(e)))
            return
        peer = self.router.peers.get(identity)
        if peer is not None and msg.job in peer.jobs:
            reply(identity, protocol.error_frames(msg.job, protocol.E_DUPLICATE_JOB, f"job {msg.job} is already running"))
            return
        try:
            if msg.type in CONTROL:
                CONTROL[msg.type](self, identity, msg)
                return
            job = Job(identity, msg.job, JOB_KINDS[msg.type], msg, client=client)
            if job.spec.admit(self, job):
                self.router.peer(identity).jobs[job.id] = job
                self.scheduler.submit(job)
        except (ProtocolError, EnlivenError) as e:
            reply(identity, protocol.error_frames(msg.job, e.code, str(e)))

    def _peer_gone(self, identity: bytes, jobs: list[Job]) -> None:
        """The client disconnected: cancel its jobs so nothing keeps running for nobody. A kind that
        outlives its client (training: hours of work, and the machine is there for it) goes on once
        started; its progress goes nowhere until a client resumes the same run folder and so watches it."""
        for job in jobs:
            if job.spec.outlives_client and job.state == "running":
                self.log(f"client {identity.hex()[:12]} went away; {job.kind} job {job.id} goes on without a client")
            else:
                self.log(f"client {identity.hex()[:12]} went away; cancelling job {job.id}")
                self.scheduler.cancel(job)

    def _shutdown(self) -> None:
        self._stopping.set()
        # A running training may have no client any more (see _peer_gone): the scheduler stops it too.
        self.scheduler.stop([j for peer in list(self.router.peers.values()) for j in peer.jobs.values()])
        self.encoders.shutdown(wait=False, cancel_futures=True)
        self.router.close()


def serve(
    bind: str = DEFAULT_BIND,
    device: str = "auto",
    engine: str = "warp",
    keys_dir: str | os.PathLike | None = None,
    limits: Limits | None = None,
    log: Log = stderr_log,
    output_root: str | os.PathLike | None = None,
    ready: Callable[[str], None] | None = None,
    input_root: str | os.PathLike | None = None,
    checkpoint: str | os.PathLike | None = None,
    allow_shutdown: bool = False,
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
                        output_root=output_root, input_root=input_root, log=log, checkpoint=checkpoint,
                        allow_shutdown=allow_shutdown)
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
