"""Client for `enliven serve`: a DEALER socket that never blocks its caller.

Blender calls :meth:`Client.poll` from a ``bpy.app.timers`` callback, so every
method here returns at once: requests are queued on the socket (or in a small
Python outbox when ZeroMQ's own queue is full) and replies come back as
:class:`Event` objects from ``poll()``.

Liveness is the "lazy pirate" pattern of the ZeroMQ guide, adapted to
streaming: while any job is waiting, a quiet socket is pinged every
``heartbeat_s``; the server answers pings from its socket thread even while a
GPU job runs, and lists the jobs it still holds for us. If nothing at all
arrives for ``timeout_s``, every waiting job gets an ``error`` event with code
``timeout`` and the socket is closed and reopened, so a dead, restarted or
unreachable backend is reported within a few seconds and never hangs anyone.
A job the server no longer knows (its request was lost with a dropped
connection, or the server restarted) is reported as ``lost`` /
``server_restarted``.

Scripts that just want a result use :meth:`Client.wait` or
:func:`generate_remote`, which are blocking wrappers over the same machinery.

Vendored into the Blender add-on: stdlib + numpy + pyzmq, relative imports only.
"""
from __future__ import annotations

import os
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np
import zmq

from . import protocol
from .protocol import Message, ProtocolError

DEFAULT_ADDRESS = "tcp://127.0.0.1:5570"


@dataclass
class Event:
    """One reply from the server (or a failure the client detected itself)."""

    type: str
    job: str
    fields: dict
    parts: dict = field(default_factory=dict)
    end: bool = False

    @classmethod
    def from_message(cls, msg: Message) -> "Event":
        return cls(msg.type, msg.job, msg.fields, msg.parts, msg.end)

    @property
    def code(self) -> str | None:
        return self.fields.get("code") if self.type == "error" else None

    @property
    def message(self) -> str:
        return str(self.fields.get("message", ""))

    def image(self) -> bytes | np.ndarray | None:
        """A frame's picture: PNG/JPEG/EXR bytes, an (H, W, 3) (RGBA: 4) uint8 array for raw, or None."""
        part = self.parts.get("image")
        if part is None:
            return None
        return part.array() if part.kind == "array" else part.tobytes()


class RemoteError(RuntimeError):
    """An error reply (or a detected failure) for a job the caller waited on."""

    def __init__(self, code: str, message: str, job: str = ""):
        super().__init__(f"{message} [{code}]")
        self.code = code
        self.message = message
        self.job = job


@dataclass
class _Pending:
    kind: str
    sent_at: float


class Client:
    """Non-blocking client. Not thread-safe: use it from one thread (Blender's)."""

    def __init__(
        self,
        address: str = DEFAULT_ADDRESS,
        *,
        timeout_s: float = 5.0,
        heartbeat_s: float = 1.0,
        server_public_key: bytes | str | None = None,
        client_keys: tuple[bytes | str, bytes | str] | None = None,
        context: zmq.Context | None = None,
        recv_hwm: int = 64,
    ):
        if (server_public_key is None) != (client_keys is None):
            raise ValueError("CurveZMQ needs both the server's public key and this client's key pair")
        self.address = address
        self.timeout_s = float(timeout_s)
        self.heartbeat_s = float(heartbeat_s)
        self._server_key = _as_key(server_public_key) if server_public_key is not None else None
        self._client_keys = (_as_key(client_keys[0]), _as_key(client_keys[1])) if client_keys else None
        self._ctx = context or zmq.Context.instance()
        self._recv_hwm = recv_hwm
        # A per-instance prefix keeps job ids unique across clients and restarts.
        self._prefix = os.urandom(3).hex()
        self._counter = 0
        self._pending: dict[str, _Pending] = {}
        self._pings: dict[str, tuple[float, frozenset[str]]] = {}
        self._outbox: deque[list] = deque()
        self._stash: deque[Event] = deque()
        self._socket: zmq.Socket | None = None
        self._monitor: zmq.Socket | None = None
        self._auth_failed = False
        self._server_id: str | None = None
        self._last_heard = 0.0
        self._waiting_since = 0.0
        self._last_ping = 0.0
        self.server_info: dict | None = None  # the last hello_reply's fields
        self.bad_replies = 0  # replies that failed to decode (diagnostics)
        self._open()

    # -- socket lifecycle ---------------------------------------------------

    def _open(self) -> None:
        sock = self._ctx.socket(zmq.DEALER)
        sock.linger = 0  # closing must never wait for an absent server
        sock.rcvhwm = self._recv_hwm
        sock.sndhwm = 64
        # A fixed routing id: after a TCP reconnect the server still knows us by it.
        sock.setsockopt(zmq.ROUTING_ID, b"enliven-" + os.urandom(8))
        sock.setsockopt(zmq.RECONNECT_IVL, 200)
        sock.setsockopt(zmq.RECONNECT_IVL_MAX, 2000)
        if self._server_key is not None:
            sock.curve_serverkey = self._server_key
            sock.curve_publickey, sock.curve_secretkey = self._client_keys
            # A refused key is otherwise silent (ZeroMQ just retries); the
            # monitor lets us say "refused" instead of "timeout".
            self._monitor = sock.get_monitor_socket(zmq.EVENT_HANDSHAKE_FAILED_AUTH | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL)
        sock.connect(self.address)
        self._socket = sock
        self._auth_failed = False

    def _reset(self) -> None:
        """Lazy pirate: drop the socket (and anything queued on it) and start afresh."""
        self._close_socket()
        self._outbox.clear()
        self._pings.clear()
        self._server_id = None
        self._open()

    def _close_socket(self) -> None:
        if self._socket is not None:
            if self._monitor is not None:
                try:
                    self._socket.disable_monitor()
                except zmq.ZMQError:
                    pass
                self._monitor.close(linger=0)
                self._monitor = None
            self._socket.close(linger=0)
            self._socket = None

    def close(self) -> None:
        self._close_socket()
        self._pending.clear()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    @property
    def pending(self) -> list[str]:
        """Job ids still waiting for their last reply."""
        return list(self._pending)

    # -- requests (all return the job id at once) ---------------------------

    def hello(self, client_name: str = "enliven-client") -> str:
        return self._request("hello", {"client": client_name[:200]})

    def status(self) -> str:
        return self._request("status", {})

    def shutdown(self) -> str:
        return self._request("shutdown", {})

    def cancel(self, job: str) -> str:
        return self._request("cancel", {"target": job})

    def analyze(self, image: bytes | np.ndarray, face_index: int = 0) -> str:
        """Analyse a photo (PNG/JPEG bytes or an HxWx3 uint8 array); answered by an ``analysis`` event."""
        return self._request("analyze", {"face_index": face_index}, {"image": _image_part(image)})

    def preview(
        self,
        values: np.ndarray,
        *,
        subject: str | None = None,
        image: bytes | np.ndarray | None = None,
        engine: str | None = None,
        format: str = "raw",
        channels: Iterable[str] | None = None,
        face_index: int = 0,
        checkpoint: str | os.PathLike | None = None,
        alpha: bool = False,
        max_side: int | None = None,
        faces: Sequence[int] | None = None,
    ) -> str:
        """Render one frame. A newer preview supersedes this one if it is still queued
        (it then ends with a ``done`` event whose status is ``superseded``). ``alpha``:
        an RGBA frame with the person cut out. ``max_side``: render a large photo
        scaled down to at most this many pixels a side (a quick look). ``faces``:
        several faces of the photo in one frame, ``values`` then (faces, channels),
        one row per face in this order."""
        fields = _job_fields(subject, image, engine, channels, face_index, checkpoint, faces)
        if faces is not None:
            values = np.asarray(values, np.float32).reshape(len(faces), 1, -1)
        fields["format"] = format
        if alpha:
            fields["alpha"] = True
        if max_side is not None:
            fields["max_side"] = int(max_side)
        return self._request("preview", fields, _motion_parts(values, image))

    def generate(
        self,
        motion: np.ndarray,
        fps: float,
        *,
        subject: str | None = None,
        image: bytes | np.ndarray | None = None,
        engine: str | None = None,
        format: str = "png",
        channels: Iterable[str] | None = None,
        face_index: int = 0,
        output_dir: str | None = None,
        resume: bool = False,
        prefix: str | None = None,
        first_number: int | None = None,
        digits: int | None = None,
        png_compression: int = 1,
        checkpoint: str | os.PathLike | None = None,
        alpha: bool = False,
        faces: Sequence[int] | None = None,
    ) -> str:
        """Render every row of ``motion`` (frames x channels; with ``faces``, several faces
        of the photo in each frame: (faces, frames, channels), a group per face in this order). Frames stream back as
        ``frame`` events in order, with ``progress`` events, then one ``done``.

        With ``output_dir`` (a directory on the *server's* disk) the server writes
        ``{prefix}{first_number + index:0{digits}d}.png`` itself, atomically (by
        default shared/naming.py's rule: frame_00001.png ...); with ``resume`` it
        skips frames already there. Use ``format="none"`` to get
        only the paths back. ``png_compression`` trades file size for speed:
        0 stores pixels uncompressed (fastest), 1 (default) is a fast
        Huffman-only deflate, up to 9 (smallest, slowest). ``checkpoint`` is the
        refine engine's trained model on the server's disk (default: the one
        the server was started with). ``alpha`` cuts the person out: RGBA PNG
        frames, the uncovered background transparent. ``format="exr"`` makes
        multilayer OpenEXR frames (linear colour, the alpha, the person, face,
        eye and mouth mattes and the motion vectors as named layers); EXR
        frames come back (and are written) as EXR files.
        """
        fields = _job_fields(subject, image, engine, channels, face_index, checkpoint, faces)
        fields.update(fps=float(fps), format=format, png_compression=int(png_compression))
        if alpha:
            fields["alpha"] = True
        for key, value in (("prefix", prefix), ("first_number", first_number), ("digits", digits)):
            if value is not None:  # else the server's rule (shared/naming.py)
                fields[key] = value
        if output_dir is not None:
            fields["output_dir"] = str(output_dir)
            fields["resume"] = bool(resume)
        return self._request("generate", fields, _motion_parts(motion, image))

    def capture(
        self,
        video_path: str | os.PathLike | None = None,
        *,
        livelink_path: str | os.PathLike | None = None,
        reference: str | int | None = None,
        smoothing: str | None = None,
        strengths: Mapping[str, float] | None = None,
        max_gap_s: float | None = None,
        face_index: int = 0,
        fps: float | None = None,
        body: bool | None = None,
    ) -> str:
        """Capture motion from a video, or read a Live Link Face CSV, on the server.

        Paths are on the *server's* disk (the same disk when it runs locally).
        ``progress`` events follow, then one ``motion`` event: see
        :func:`motion_of`. ``reference`` is "first", "auto" or a frame number;
        ``smoothing`` a level name (default "normal" for video, "none" for
        CSV); ``strengths`` scales channel groups ({"mouth": 0.8}); ``fps``
        overrides a CSV's frame rate; ``body=False`` leaves the body channels
        at rest (by default they are captured where the video shows shoulders).
        """
        if (video_path is None) == (livelink_path is None):
            raise ValueError("pass a video_path or a livelink_path")
        fields: dict[str, Any] = {"face_index": int(face_index)}
        if video_path is not None:
            fields["video_path"] = os.fspath(video_path)
        else:
            fields["livelink_path"] = os.fspath(livelink_path)
        optional = {"reference": reference, "smoothing": smoothing, "max_gap_s": max_gap_s, "fps": fps, "body": body}
        fields.update({k: v for k, v in optional.items() if v is not None})
        if strengths:
            fields["strengths"] = {str(k): float(v) for k, v in strengths.items()}
        return self._request("capture", fields)

    def lipsync(
        self,
        audio_path: str | os.PathLike | None = None,
        *,
        text: str | None = None,
        voice: str | None = None,
        rate_wpm: int | None = None,
        output_dir: str | os.PathLike | None = None,
        fps: float = 24.0,
        strength: float = 1.0,
        lead: float = 2.0,
        head_motion: float = 0.0,
        blinks: bool = False,
        seed: int = 0,
        subject: str | None = None,
    ) -> str:
        """Mouth motion from speech on the server: an audio file (or a video's
        sound), or ``text`` it speaks first ("say"). With ``subject`` (from
        analyze) the mouth is fitted to that photo's own: on a photo whose mouth
        is open, speech opens the lips from closed.

        For text the server writes the speech as a WAV into ``output_dir`` (a
        folder on the server's disk) and the ``motion`` event's
        ``audio_path`` field names it. ``lead`` is in frames (the mouth moves
        before the sound); ``head_motion`` and ``blinks`` add those channels.
        """
        if (audio_path is None) == (text is None):
            raise ValueError("pass an audio_path or a text")
        fields: dict[str, Any] = {"fps": float(fps), "strength": float(strength), "lead": float(lead),
                                  "head_motion": float(head_motion), "blinks": bool(blinks), "seed": int(seed)}
        if audio_path is not None:
            fields["audio_path"] = os.fspath(audio_path)
        else:
            fields["text"] = text
            if output_dir is None:
                raise ValueError("say (text=) needs output_dir, where the server writes the WAV")
        if voice is not None:
            fields["voice"] = voice
        if rate_wpm is not None:
            fields["rate_wpm"] = int(rate_wpm)
        if output_dir is not None:
            fields["output_dir"] = os.fspath(output_dir)
        if subject is not None:
            fields["subject"] = subject
        return self._request("lipsync", fields)

    def talk(
        self,
        output_dir: str | os.PathLike,
        *,
        text: str | None = None,
        audio_path: str | os.PathLike | None = None,
        subject: str | None = None,
        image: bytes | np.ndarray | None = None,
        video_name: str | None = None,
        voice: str | None = None,
        rate_wpm: int | None = None,
        fps: float = 24.0,
        head_motion: float | None = None,
        seed: int = 0,
        engine: str | None = None,
        face_index: int = 0,
        checkpoint: str | os.PathLike | None = None,
    ) -> str:
        """The photo says ``text`` (spoken by the server) or the recording at
        ``audio_path`` (on the server's disk): the server writes an H.264 + AAC
        video with the sound into ``output_dir`` (default name talk.mp4). The
        ``done`` event names it (``video``) and carries the motion it made."""
        if (audio_path is None) == (text is None):
            raise ValueError("pass an audio_path or a text")
        fields = _job_fields(subject, image, engine, None, face_index, checkpoint)
        fields.update(output_dir=os.fspath(output_dir), fps=float(fps), seed=int(seed))
        if text is not None:
            fields["text"] = text
        else:
            fields["audio_path"] = os.fspath(audio_path)
        for key, value in (("video_name", video_name), ("voice", voice), ("rate_wpm", rate_wpm),
                           ("head_motion", head_motion)):
            if value is not None:
                fields[key] = value
        return self._request("talk", fields, {"image": _image_part(image)} if image is not None else {})

    def train(
        self,
        dataset_dir: str | os.PathLike,
        run_dir: str | os.PathLike,
        *,
        config: str | Mapping[str, Any] | None = None,
        resume: bool = False,
        steps: int | None = None,
        holdout: Iterable[str] | None = None,
        vgg_weights: str | os.PathLike | None = None,
    ) -> str:
        """Train the refine engine on the server: ``dataset_dir`` (made by
        ``enliven prepare``) and ``run_dir`` are folders on the *server's* disk.

        ``progress`` events carry ``done`` (the step), ``total`` (steps in all)
        and ``losses``; ``cancel`` stops after the current step and saves. The
        final ``done`` event's ``checkpoint`` is the model to use, for the
        refine engine's ``checkpoint=``: RUN_DIR/best.pt once the run has
        scored its ``validation`` clips, else RUN_DIR/last.pt. ``config`` is a preset name
        or an object of settings (enliven.neural.config); ``resume`` continues
        the run in ``run_dir``.
        """
        fields: dict[str, Any] = {"dataset_dir": os.fspath(dataset_dir), "run_dir": os.fspath(run_dir),
                                  "resume": bool(resume)}
        if config is not None:
            fields["config"] = config if isinstance(config, str) else dict(config)
        if steps is not None:
            fields["steps"] = int(steps)
        if holdout is not None:
            fields["holdout"] = list(holdout)
        if vgg_weights is not None:
            fields["vgg_weights"] = os.fspath(vgg_weights)
        return self._request("train", fields)

    def send_raw(self, frames: list, job: str | None = None, kind: str = "raw") -> None:
        """Send hand-made frames (tests and debugging); ``job`` is tracked if given."""
        if job is not None:
            self._track(job, kind)
        self._send(frames)

    def _request(self, kind: str, fields: Mapping[str, Any], parts: Mapping[str, Any] | None = None) -> str:
        self._counter += 1
        job = f"{self._prefix}-{self._counter}"
        frames = protocol.encode(kind, job, fields, parts)
        self._track(job, kind)
        self._send(frames)
        return job

    def _track(self, job: str, kind: str) -> None:
        now = time.monotonic()
        if not self._pending:
            # The silence clock starts when we begin waiting, not at the last reply.
            self._waiting_since = now
        self._pending[job] = _Pending(kind, now)

    def _send(self, frames: list) -> None:
        self._outbox.append(frames)
        self._flush()

    def _flush(self) -> None:
        while self._outbox and self._socket is not None:
            try:
                self._socket.send_multipart(self._outbox[0], flags=zmq.NOBLOCK, copy=False)
            except zmq.Again:
                return  # ZeroMQ's queue is full; poll() retries
            self._outbox.popleft()

    # -- receiving ----------------------------------------------------------

    def poll(self, timeout_ms: int = 0, max_events: int = 1000) -> list[Event]:
        """Events received so far. Returns at once unless ``timeout_ms`` > 0, in which
        case it waits at most that long for the first one (for scripts)."""
        events: list[Event] = []
        while self._stash and len(events) < max_events:
            events.append(self._stash.popleft())
        self._flush()
        if not events and timeout_ms > 0 and self._socket is not None:
            self._socket.poll(min(timeout_ms, max(1, int(self.heartbeat_s * 1000))), zmq.POLLIN)
        now = time.monotonic()
        while self._socket is not None and len(events) < max_events:
            try:
                frames = self._socket.recv_multipart(zmq.NOBLOCK, copy=False)
            except zmq.Again:
                break
            now = time.monotonic()
            self._last_heard = now
            try:
                msg = protocol.decode_reply(frames)
            except ProtocolError as e:
                # A broken reply is the server's bug, never the caller's crash. A
                # reply in another protocol version still ends its job, clearly.
                self.bad_replies += 1
                if e.code == protocol.E_VERSION and e.job in self._pending:
                    self._fail([e.job], e.code, str(e), events)
                continue
            if msg.type == "pong" and msg.job in self._pings:
                self._on_pong(msg, events)
                continue
            if msg.type == "hello_reply":
                self.server_info = msg.fields
            events.append(Event.from_message(msg))
            if msg.end:
                self._pending.pop(msg.job, None)
        self._check_monitor(events)
        self._check_liveness(time.monotonic(), events)
        return events

    def unread(self, events: Iterable[Event]) -> None:
        """Put events back; the next poll() returns them first (for callers that
        wait on one job but must not lose the others' events)."""
        self._stash.extend(events)

    def wait(self, job: str, timeout_s: float | None = None, on_event: Callable[[Event], None] | None = None) -> Event:
        """Block until ``job`` ends and return its last event (scripts only).

        Other jobs' events are kept for the next ``poll()``. Raises RemoteError
        if the job ends with an error, TimeoutError after ``timeout_s`` overall.
        """
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        others: list[Event] = []
        try:
            while True:
                batch = self.poll(timeout_ms=100)
                for i, ev in enumerate(batch):
                    if ev.job != job:
                        others.append(ev)
                        continue
                    if on_event is not None:
                        on_event(ev)
                    if ev.end:
                        others.extend(batch[i + 1:])  # not ours: keep for the next poll()
                        if ev.type == "error":
                            raise RemoteError(ev.fields.get("code", protocol.E_ERROR), ev.message, job)
                        return ev
                if job not in self._pending:
                    raise RemoteError(protocol.E_UNKNOWN_JOB, f"job {job} is not waiting for anything", job)
                if deadline is not None and time.monotonic() > deadline:
                    raise TimeoutError(f"job {job} did not finish within {timeout_s} s")
        finally:
            self._stash.extend(others)

    # -- liveness -----------------------------------------------------------

    def _check_liveness(self, now: float, events: list[Event]) -> None:
        if not self._pending:
            return
        silence = now - max(self._last_heard, self._waiting_since)
        if silence > self.timeout_s or self._auth_failed:
            if self._auth_failed:
                code, text = protocol.E_AUTH_REFUSED, (
                    f"the Enliven backend at {self.address} refused this client's CurveZMQ key "
                    "(is its public key in the server's allowed clients directory?)"
                )
            else:
                code, text = protocol.E_TIMEOUT, (
                    f"no answer from the Enliven backend at {self.address} for {silence:.1f} s "
                    "(is `enliven serve` running and reachable?)"
                )
            self._fail_all(code, text, events)
            self._reset()
            return
        if silence > self.heartbeat_s and now - self._last_ping > self.heartbeat_s:
            self._last_ping = now
            self._counter += 1
            job = f"{self._prefix}.ping{self._counter}"
            # Remember which jobs were already sent: the pong must list those
            # the server still holds; anything missing was lost.
            self._pings[job] = (now, frozenset(k for k in self._pending))
            while len(self._pings) > 8:
                self._pings.pop(next(iter(self._pings)))
            self._send(protocol.encode("ping", job, {}))

    def _on_pong(self, msg: Message, events: list[Event]) -> None:
        _, sent_before = self._pings.pop(msg.job)
        server_id = msg.fields.get("server")
        restarted = self._server_id is not None and server_id != self._server_id
        self._server_id = server_id
        # Only what the server does not hold is lost. After a restart that is
        # what the old process took with it; a job that already reached the new
        # process (sent after the restart, or delivered there by ZeroMQ's
        # reconnect) is held and will be answered.
        held = set(msg.fields.get("jobs", []))
        lost = [j for j in sent_before if j in self._pending and j not in held]
        if restarted:
            self._fail(lost, protocol.E_SERVER_RESTARTED, f"the Enliven backend at {self.address} restarted; the job was lost", events)
        else:
            self._fail(lost, protocol.E_LOST, f"the Enliven backend at {self.address} no longer knows this job (connection dropped?)", events)

    def _check_monitor(self, events: list[Event]) -> None:
        if self._monitor is None:
            return
        while True:
            try:
                self._monitor.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            self._auth_failed = True

    def abandon(self, code: str, text: str) -> list[Event]:
        """Give up every job in flight, now, when the caller knows the server is gone (its process exited): an
        error event (`code`, `text`) for each, as the timeout would give later, and a fresh socket."""
        events: list[Event] = []
        self._fail_all(code, text, events)
        self._reset()
        return events

    def _fail(self, jobs: Iterable[str], code: str, text: str, events: list[Event]) -> None:
        for job in list(jobs):
            self._pending.pop(job, None)
            events.append(Event("error", job, {"code": code, "message": text}, {}, True))

    def _fail_all(self, code: str, text: str, events: list[Event]) -> None:
        self._fail([j for j in self._pending], code, text, events)


# --------------------------------------------------------------------------
# helpers


def _as_key(key: bytes | str) -> bytes:
    return key.encode("ascii") if isinstance(key, str) else bytes(key)


def load_client_keys(secret_file: str | os.PathLike) -> tuple[bytes, bytes]:
    """(public, secret) from a ``*.key_secret`` file made by ``enliven keys``."""
    import zmq.auth

    public, secret = zmq.auth.load_certificate(os.fspath(secret_file))
    if secret is None:
        raise ValueError(f"{secret_file} holds no secret key; pass the .key_secret file")
    return public, secret


def load_public_key(key_file: str | os.PathLike) -> bytes:
    """The public key from a ``*.key`` file made by ``enliven keys``."""
    import zmq.auth

    public, _ = zmq.auth.load_certificate(os.fspath(key_file))
    return public


def motion_of(event: Event) -> tuple[np.ndarray, tuple[str, ...], float]:
    """(values (frames x channels) float32, channel names, fps) of an event that
    carries a motion: a ``motion`` reply, or the ``done`` of a talk request."""
    if "motion" not in event.parts:
        raise ValueError(f"a {event.type} event carries no motion")
    values = np.array(event.parts["motion"].array(), dtype=np.float32)  # a copy: the message buffer is read-only
    if values.ndim == 1:
        values = values.reshape(-1, 1)
    channels = tuple(str(name) for name in event.fields.get("channels", ()))
    if len(channels) != values.shape[1]:
        raise ValueError(f"the motion has {values.shape[1]} columns but names {len(channels)} channels")
    return values, channels, float(event.fields["fps"])


def _image_part(image: bytes | np.ndarray) -> bytes | np.ndarray:
    if isinstance(image, np.ndarray):
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] not in (3, 4):
            raise ValueError("an image array must be HxWx3 or HxWx4 uint8")
        return image
    return bytes(image)


def _job_fields(subject, image, engine, channels, face_index, checkpoint=None, faces=None) -> dict:
    if subject is None and image is None:
        raise ValueError("pass subject= (from an analysis) or image=")
    fields: dict[str, Any] = {"face_index": int(face_index)}
    if faces is not None:
        fields["faces"] = [int(face) for face in faces]
    if subject is not None:
        fields["subject"] = subject
    if engine is not None:
        fields["engine"] = engine
    if channels is not None:
        fields["channels"] = list(channels)
    if checkpoint is not None:
        fields["checkpoint"] = os.fspath(checkpoint)
    return fields


def _motion_parts(values: np.ndarray, image) -> dict:
    parts: dict[str, Any] = {}
    if image is not None:
        parts["image"] = _image_part(image)
    parts["motion"] = np.ascontiguousarray(values, dtype=np.float32)
    return parts
