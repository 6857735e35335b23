"""The ROUTER socket, and the only code that touches it (ZeroMQ sockets are not
thread-safe, so only the socket thread, the caller of :meth:`Router.loop`, does).

It receives requests and hands each to the server, and sends every reply:
workers hand theirs over through a locked deque plus a socketpair that wakes
the poller (:meth:`Router.post`). The ROUTER's per-client queue is capped by
its high-water mark with ROUTER_MANDATORY, so what ZeroMQ will not take yet
waits in the client's backlog, bounded: a job's frames by its window (see the
scheduler), a preview by newest-wins, other replies by BACKLOG_CAP. A client
that disconnects is reported to the server, which cancels its jobs."""
from __future__ import annotations

import errno
import ipaddress
import socket
import threading
import traceback
from collections import deque
from pathlib import Path
from typing import Callable

import zmq

from ..shared import protocol
from ..shared.protocol import Limits
from .jobs import Job, Out, Peer, ServiceError
from .keys import QuietLog
from .log import Log

# Replies (not job frames: those are bounded by the job window) buffered for a
# client that sends faster than it reads; beyond this they are dropped.
BACKLOG_CAP = 4096
RECEIVE_BATCH = 64  # requests read per wake-up, so worker replies are not starved by a flood


def client_of(frame: zmq.Frame) -> str:
    """Who sent a message, for per-client limits: the CurveZMQ client key (the
    ZAP User-Id: every socket with that key is one client), else the peer's IP
    address for another machine, else "": the server then counts each socket
    on its own. That is the case on loopback, where a machine's own programs
    and everyone reaching the server through an SSH tunnel arrive from the same
    address and must not share one client's limits; and on ipc://."""
    try:
        user = frame.get("User-Id")
    except (zmq.ZMQError, UnicodeDecodeError):
        user = None
    if user:
        return f"user-id:{user}"
    try:
        address = frame.get("Peer-Address")
    except (zmq.ZMQError, UnicodeDecodeError):
        return ""
    if not address or ipaddress.ip_address(address.split("%", 1)[0]).is_loopback:
        return ""
    return f"peer-address:{address}"


class Router:
    def __init__(self, bind: str, limits: Limits, log: Log, keys_dir: Path | None,
                 on_request: Callable[[bytes, str, list], None], on_peer_gone: Callable[[bytes, list[Job]], None]):
        self.bind = bind
        self.endpoint = bind
        self.limits = limits
        self.log = log
        self.keys_dir = keys_dir
        self.on_request = on_request
        self.on_peer_gone = on_peer_gone
        self.peers: dict[bytes, Peer] = {}
        self._out: deque[Out] = deque()
        self._out_lock = threading.Lock()
        self._ctx: zmq.Context | None = None
        self._socket: zmq.Socket | None = None
        self._auth = None
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)

    # -- setup --------------------------------------------------------------

    def open(self) -> str:
        """Create and bind the ROUTER; returns the endpoint actually bound."""
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
            raise ServiceError(protocol.E_BIND_FAILED, f"cannot bind {self.bind}: {e}") from e
        self._socket = router
        self.endpoint = router.getsockopt_string(zmq.LAST_ENDPOINT)
        return self.endpoint

    def _configure_curve(self, router: zmq.Socket) -> None:
        import zmq.auth
        from zmq.auth.thread import ThreadAuthenticator

        secret_file = self.keys_dir / "server.key_secret"
        clients_dir = self.keys_dir / "clients"
        if not secret_file.is_file() or not clients_dir.is_dir():
            raise ServiceError(protocol.E_NO_KEYS, f"{self.keys_dir} has no server.key_secret or clients/ directory; "
                                                   f"run `enliven keys --dir {self.keys_dir}` first")
        public, secret = zmq.auth.load_certificate(str(secret_file))
        allowed = sorted(clients_dir.glob("*.key"))
        if not allowed:
            raise ServiceError(protocol.E_NO_KEYS, f"no client public keys in {clients_dir}; every client would be refused")
        self._auth = ThreadAuthenticator(self._ctx, log=QuietLog())
        self._auth.start()
        # Only clients whose public key file is in clients/ get through the ZAP handshake.
        self._auth.configure_curve(domain="*", location=str(clients_dir))
        router.curve_secretkey = secret
        router.curve_publickey = public
        router.curve_server = True
        self.log(f"CurveZMQ on: {len(allowed)} allowed client key(s) in {clients_dir}")

    # -- the socket thread's loop -------------------------------------------

    def loop(self, stopping: threading.Event) -> None:
        assert self._socket is not None, "call open() first"
        poller = zmq.Poller()
        poller.register(self._socket, zmq.POLLIN)
        poller.register(self._wake_r, zmq.POLLIN)
        while not stopping.is_set():
            backlog = any(p.backlog for p in self.peers.values())
            try:
                ready = dict(poller.poll(5 if backlog else 250))
            except zmq.ZMQError as e:
                if e.errno == errno.EINTR:
                    continue
                raise
            if self._socket in ready:
                self._receive_batch()
            if self._wake_r.fileno() in ready or self._wake_r in ready:
                self._drain_wake()
            self.drain_outbox()
            if backlog:
                self.flush_backlogs()

    def _receive_batch(self) -> None:
        for _ in range(RECEIVE_BATCH):
            try:
                received = self._receive()
            except zmq.Again:
                return
            if received is None:
                continue
            identity, client, frames = received
            try:
                self.on_request(identity, client, frames)
            except Exception as e:  # noqa: BLE001 - the server never dies on input
                self.log(f"internal error handling a request: {e!r}\n{traceback.format_exc()}")
                self.reply(identity, protocol.error_frames("", protocol.E_INTERNAL, f"internal server error: {e}"))

    def _receive(self) -> tuple[bytes, str, list] | None:
        """One message, read a frame at a time so that a message of a million empty frames
        (tiny in bytes) is refused without being kept: past MAX_FRAMES the rest is read and
        dropped at once and the client gets an error. None when there is nothing to answer."""
        sock = self._socket
        identity = sock.recv(zmq.NOBLOCK)
        frames: list[zmq.Frame] = []
        # The rest of a multipart message is already here (ZeroMQ delivers whole messages).
        while sock.getsockopt(zmq.RCVMORE):
            if len(frames) == protocol.MAX_FRAMES:
                self._drop_rest()
                refused = protocol.too_many_frames(frames[0])
                self.reply(identity, protocol.error_frames(refused.job, refused.code, str(refused)))
                return None
            frames.append(sock.recv(copy=False))
        if not frames:
            return None  # ROUTER always prepends an identity; nothing to answer
        return identity, client_of(frames[0]) or identity.hex(), frames

    def _drop_rest(self) -> None:
        """Read and drop the rest of the message being received (at least one frame is left). Each frame is
        taken as a zmq.Frame, whose `more` says if another follows: one call a frame where recv() and
        getsockopt(RCVMORE) were two (300,000 empty frames 0.9-1.9 -> 0.6 s on this 2-core machine, while
        every other client waits for them)."""
        recv = self._socket.recv
        while recv(copy=False).more:
            pass

    # -- sending (socket thread, fed by post() from any thread) -------------

    def post(self, out: Out) -> None:
        """Queue a message for the socket thread to send (any thread)."""
        with self._out_lock:
            self._out.append(out)
        self.wake()

    def wake(self) -> None:
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

    def drain_outbox(self) -> None:
        while True:
            with self._out_lock:
                if not self._out:
                    return
                out = self._out.popleft()
            self._deliver(out)

    def reply(self, identity: bytes, frames: list) -> None:
        """Send a reply now (socket thread only)."""
        self._deliver(Out(identity, frames))

    def peer(self, identity: bytes) -> Peer:
        return self.peers.setdefault(identity, Peer())

    def _deliver(self, out: Out) -> None:
        peer = self.peers.get(out.identity)
        if peer is not None and peer.backlog:
            self._queue_backlog(peer, out)  # keep per-client order
            return
        result = self._try_send(out)
        if result == "again":
            self._queue_backlog(self.peer(out.identity), out)

    def _queue_backlog(self, peer: Peer, out: Out) -> None:
        """Hold a message ZeroMQ would not take yet, without letting a client that
        never reads grow the server: a generate's frames are already bounded by
        the job window; a newest-wins reply (a preview frame) replaces any older
        one still waiting; other replies are capped in number."""
        if out.job is not None and out.job.spec.newest_wins and out.end:
            for i, old in enumerate(peer.backlog):
                if old.job is not None and old.job.spec is out.job.spec and old.end:
                    peer.backlog[i] = Out(old.identity, protocol.encode(
                        "done", old.job.id, {"status": protocol.DONE_SUPERSEDED, "by": out.job.id}, end=True),
                        old.job, end=True)
        if not out.credited and len(peer.backlog) >= BACKLOG_CAP:
            peer.dropped += 1
            if peer.dropped in (1, 100, 10_000):
                self.log(f"client {out.identity.hex()[:12]} reads nothing; dropped {peer.dropped} replies")
            self._sent(out)  # bookkeeping as if delivered, so the job record does not leak
            return
        peer.backlog.append(out)

    def _try_send(self, out: Out) -> str:
        try:
            self._socket.send_multipart([out.identity, *out.frames], flags=zmq.NOBLOCK, copy=False)
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

    def _sent(self, out: Out) -> None:
        if out.credited and out.job is not None:
            out.job.release()
        if out.end and out.job is not None:
            peer = self.peers.get(out.identity)
            if peer is not None and peer.jobs.get(out.job.id) is out.job:
                del peer.jobs[out.job.id]
                if not peer.jobs and not peer.backlog:
                    del self.peers[out.identity]

    def flush_backlogs(self) -> None:
        for identity, peer in list(self.peers.items()):
            while peer.backlog:
                out = peer.backlog[0]
                result = self._try_send(out)
                if result in ("again", "gone"):
                    break
                peer.backlog.popleft()
            if identity in self.peers and not peer.jobs and not peer.backlog:
                del self.peers[identity]

    def _peer_gone(self, identity: bytes) -> None:
        peer = self.peers.pop(identity, None)
        if peer is None:
            return
        for out in peer.backlog:
            if out.credited and out.job is not None:
                out.job.release()
        peer.backlog.clear()
        self.on_peer_gone(identity, list(peer.jobs.values()))

    # -- shutdown -----------------------------------------------------------

    def close(self) -> None:
        self.drain_outbox()
        self.flush_backlogs()
        if self._socket is not None:
            self._socket.close(linger=500)
        if self._auth is not None:
            self._auth.stop()
        if self._ctx is not None:
            self._ctx.term()
        self.close_wake()

    def close_wake(self) -> None:
        self._wake_r.close()
        self._wake_w.close()
