"""The backend connection: the ZeroMQ client, the timer that polls it, the
local `enliven serve` subprocess, and the jobs that run through them
(analysis, live preview, generate, and bakes: capture or lip-sync jobs whose
motion comes back and is keyed on the rig).

Threading, and why: Blender's data may only be touched from the main thread,
and the UI must never wait for the network. So:

* every request goes out through `shared.client.Client`, whose calls return
  at once (requests are queued on a DEALER socket);
* replies are collected by `poll()`, a `bpy.app.timers` callback on the main
  thread, which hands each one to the handler of its job. Handlers may change
  bpy data because they run on the main thread. The timer runs every 10 ms
  while anything is in flight and backs off when idle. (Timers never fire in
  the `bpy` module or `blender -b`, so tests call `poll()` themselves.)
* the only other threads are the reader of the local backend's log pipe and
  one file writer for generated frames; neither touches bpy.

Errors end up where the artist looks: the panel's status line and per-portrait
status, and a report in the Info editor / status bar. The console is never the
only place.
"""
from __future__ import annotations

import atexit
import hashlib
import json
import math
import os
import re
import signal
import subprocess
import tempfile
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

import bpy
import numpy as np
from bpy.app.handlers import persistent

from . import compat, keying, preferences, sampling
from .shared import protocol
from .shared.channels import CHANNEL_NAMES
from .shared.client import Client, Event, motion_of

PREVIEW_IMAGE = "Enliven Preview"
# A preview is for looking at; bigger photos are shown subsampled so that
# copying pixels into Blender stays a few milliseconds.
PREVIEW_MAX_SIDE = 1024
FRAME_PREFIX = "frame_"
FRAME_DIGITS = 5
CACHE_FILE = ".enliven_cache.json"
CACHE_FORMAT = "enliven-frame-cache"
LOCAL_START_TIMEOUT_S = 60.0
# A local backend stopped while it trains finishes the step and saves before it exits (the server waits up to
# 120 s for that): it is given this long, off Blender's UI thread, before it is killed.
LOCAL_TRAINING_STOP_S = 150.0
CLIENT_NAME = "blender-enliven"

# Timer intervals (seconds): fast while a reply is due, slower when idle
# (a poll is one non-blocking recv), slowest with no connection at all.
ACTIVE_INTERVAL = 0.01
IDLE_INTERVAL = 0.05
SLEEP_INTERVAL = 0.5
# Events handled per timer tick, so a fast stream cannot freeze the UI.
EVENTS_PER_TICK = 32


# Errors after which the same request may well succeed later: worth retrying.
TRANSIENT_ERRORS = ("timeout", "auth_refused", "lost", "server_restarted", "busy", "too_many_jobs", "internal")


class UserError(Exception):
    """A problem the artist can fix; its message is shown as is."""


def describe_error(code: str | None, message: str) -> str:
    """An error reply as one line for the panel and the report."""
    code = code or "error"
    if code in ("timeout", "auth_refused"):
        return f"Backend not reachable: {message}"
    if code == protocol.E_VERSION:
        return f"Version mismatch between the add-on and the backend: {message}"
    if code == "no_face":
        return f"No face found in the photo: {message}"
    if code in ("lost", "server_restarted"):
        return f"The backend lost the job: {message}"
    return f"{message} [{code}]" if message else f"The backend reported an error [{code}]"


# --------------------------------------------------------------------------- local backend


def find_python(env: str) -> str:
    """The python executable of environment `env` (a folder or the executable)."""
    if not env:
        raise UserError("Set the Python environment where `enliven` is installed in the add-on preferences")
    path = bpy.path.abspath(env)
    if os.path.isfile(path):
        return path
    candidates = ("bin/python3", "bin/python", "Scripts/python.exe", "python.exe", "python3", "python")
    for candidate in candidates:
        full = os.path.join(path, candidate)
        if os.path.isfile(full):
            return full
    raise UserError(f"No Python found in {path} (expected bin/python or Scripts/python.exe)")


class LocalBackend:
    """`enliven serve` as a child process, with its log kept for the artist."""

    LISTENING = re.compile(r"^listening on (\S+)\s*$")

    def __init__(self, python: str, port: int = 0):
        self.python = python
        self.log: deque[str] = deque(maxlen=1000)
        self.endpoint: str | None = None
        self.started = time.monotonic()
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONHOME", "PYTHONPATH")}
        env["PYTHONUNBUFFERED"] = "1"
        command = [python, "-m", "enliven.cli", "serve", "--bind", f"tcp://127.0.0.1:{port}"]
        self.log.append("$ " + " ".join(command))
        try:
            self.proc = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                text=True, encoding="utf-8", errors="replace", bufsize=1, env=env,
                # No console window popping up next to Blender on Windows; a process group of its own there,
                # so that it can be asked to stop cleanly (ask_to_stop).
                creationflags=getattr(subprocess, "CREATE_NO_WINDOW", 0) | getattr(subprocess,
                                                                                  "CREATE_NEW_PROCESS_GROUP", 0),
            )
        except OSError as error:
            raise UserError(f"Cannot start {python}: {error.strerror or error}") from None
        self._reader = threading.Thread(target=self._read, name="enliven-backend-log", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        # Runs in its own thread: a pipe read blocks, and must not block Blender.
        for line in self.proc.stdout:
            line = line.rstrip("\n")
            self.log.append(line)
            match = self.LISTENING.match(line)
            if match and self.endpoint is None:
                self.endpoint = match.group(1)

    @property
    def running(self) -> bool:
        return self.proc.poll() is None

    def log_tail(self, lines: int = 8) -> str:
        return "\n".join(list(self.log)[-lines:])

    def ask_to_stop(self) -> None:
        """The server finishes its replies, stops and saves a training run, and exits. SIGTERM; on Windows,
        where terminate() kills at once, a Ctrl+Break to its process group (the server handles SIGBREAK)."""
        if self.proc.poll() is not None:
            return
        if os.name == "nt":
            self.proc.send_signal(signal.CTRL_BREAK_EVENT)
        else:
            self.proc.terminate()

    def stop(self, timeout: float = 5.0, block: bool = True) -> None:
        """Ask it to stop, then kill it if it is still there after `timeout`. With block=False the waiting
        happens on a thread of its own: for a backend that is saving a training run, which Blender must not
        wait for (nor cut short)."""
        self.ask_to_stop()
        if not block:
            threading.Thread(target=self._wait_or_kill, args=(timeout,), name="enliven-backend-stop",
                             daemon=True).start()
            return
        self._wait_or_kill(timeout)

    def _wait_or_kill(self, timeout: float) -> None:
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5.0)
        self._reader.join(5.0)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


def curve_keys(server_key: str, client_key: str) -> dict:
    """Client arguments for CurveZMQ, from the key files `enliven keys` made
    (both or neither: a remote backend refuses clear text)."""
    server_key, client_key = server_key.strip(), client_key.strip()
    if not server_key and not client_key:
        return {}
    if not (server_key and client_key):
        raise UserError("Encryption needs both the server's public key and this client's secret key file")
    from .shared.client import load_client_keys, load_public_key

    try:
        return {"server_public_key": load_public_key(bpy.path.abspath(server_key)),
                "client_keys": load_client_keys(bpy.path.abspath(client_key))}
    except (OSError, ValueError) as error:
        raise UserError(f"Cannot read the CurveZMQ keys: {error}") from None


# --------------------------------------------------------------------------- photos


@dataclass
class Photo:
    data: bytes | np.ndarray  # PNG/JPEG file bytes, or HxWx3 uint8 pixels
    digest: str  # sha256 of what is sent: the cache key of the photo


_PNG = b"\x89PNG\r\n\x1a\n"
_JPEG = b"\xff\xd8\xff"


def _pixels_of(image: bpy.types.Image) -> np.ndarray:
    width, height = image.size
    if width == 0 or height == 0:
        raise UserError(f"Image '{image.name}' has no pixels (is its file missing?)")
    channels = image.channels
    buffer = np.empty(width * height * channels, dtype=np.float32)
    image.pixels.foreach_get(buffer)
    rgb = buffer.reshape(height, width, channels)[::-1, :, :3]
    if image.is_float and "linear" in image.colorspace_settings.name.lower():
        # Float images hold scene-linear values; the backend wants sRGB pixels.
        rgb = np.where(rgb <= 0.0031308, rgb * 12.92, 1.055 * np.power(np.clip(rgb, 0, None), 1 / 2.4) - 0.055)
    return np.ascontiguousarray((np.clip(rgb, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8))


def _file_signature(image: bpy.types.Image) -> tuple:
    if image.packed_file is not None:
        return ("packed", image.packed_file.size)
    path = bpy.path.abspath(image.filepath, library=image.library) if image.filepath else ""
    if path and os.path.isfile(path):
        stat = os.stat(path)
        return ("file", path, stat.st_mtime_ns, stat.st_size)
    return ("pixels", tuple(image.size), image.is_dirty)


def read_photo(image: bpy.types.Image) -> Photo:
    """What to send the backend for `image`: the file's own bytes when it is a
    PNG or JPEG (the backend decodes them exactly), else its pixels."""
    signature = _file_signature(image)
    data: bytes | np.ndarray | None = None
    if signature[0] == "packed":
        data = bytes(image.packed_file.data)
    elif signature[0] == "file":
        try:
            with open(signature[1], "rb") as fh:
                data = fh.read()
        except OSError as error:
            raise UserError(f"Cannot read {signature[1]}: {error.strerror or error}") from None
    if data is not None and not data.startswith((_PNG, _JPEG)):
        data = None  # TIFF, EXR, WebP...: send what Blender decoded
    if data is None:
        data = _pixels_of(image)
        digest = hashlib.sha256(np.asarray(data.shape, np.int64).tobytes() + data.tobytes()).hexdigest()
    else:
        digest = hashlib.sha256(data).hexdigest()
    return Photo(data, digest)


# --------------------------------------------------------------------------- output files


def frame_filename(frame: int) -> str:
    return f"{FRAME_PREFIX}{frame:0{FRAME_DIGITS}d}.png"


def output_dir(obj: bpy.types.Object) -> tuple[str, str | None]:
    """(absolute output folder of rig `obj`, warning or None)."""
    raw = obj.enliven.output_dir.strip() or f"//enliven/{bpy.path.clean_name(obj.name)}/"
    if raw.startswith("//") and not bpy.data.filepath:
        # "//" means "next to the .blend", which an unsaved file does not have.
        fallback = os.path.join(tempfile.gettempdir(), "enliven", bpy.path.clean_name(obj.name))
        return fallback, f"The .blend is not saved yet: frames go to {fallback}"
    return os.path.normpath(bpy.path.abspath(raw)), None


def speech_dir(obj: bpy.types.Object) -> str:
    """Where Say Text has the backend write its WAV files: a `speech` folder
    beside the rig's frames. The backend writes it, so this works when Blender
    and the backend share a disk (a local backend, or a remote one whose
    --output-root is mounted at the same path here)."""
    frames, _ = output_dir(obj)
    return os.path.join(frames, "speech")


def backend_path(path: str) -> str:
    """A path typed in the panel for the backend's disk: blend-relative (//) and relative paths are made
    absolute here; an absolute one is sent as typed (a remote backend's disk may be another OS's)."""
    path = bpy.path.abspath(path.strip())
    return path if os.path.isabs(path) else os.path.abspath(path)


def _losses(fields: dict) -> dict[str, float]:
    """A training reply's losses by name."""
    return {str(name): float(value) for name, value in (fields.get("losses") or {}).items()}


def rig_checkpoint(obj: bpy.types.Object) -> str | None:
    """The trained model the rig's refine engine uses (a path on the backend's
    disk), or None: the backend's own default."""
    rig = obj.enliven
    if rig.engine.strip() != "refine" or not rig.checkpoint.strip():
        return None
    return backend_path(rig.checkpoint)


def engine_key(engine: str, checkpoint: str | None) -> str:
    """The engine as frame caches see it: a retrained model (a newer last.pt) renders different frames."""
    if checkpoint is None:
        return engine
    try:
        version = os.stat(checkpoint).st_mtime_ns
    except OSError:  # a remote backend's disk: the path is all we know
        version = "unseen"
    return f"{engine}:{checkpoint}:{version}"


def frames_reusable(engine: str, checkpoint: str | None) -> bool:
    """Whether frames already on disk may be kept: not when they came from a model this machine cannot see
    (on a remote backend's disk, or the backend's own `serve --checkpoint`), which may have been retrained
    since under the same name."""
    if checkpoint is None:
        return engine != "refine"
    return os.path.isfile(checkpoint)


def frame_key(photo_digest: str, engine: str, face_index: int, row: np.ndarray) -> str:
    """Cache key of one frame: the photo, the engine, the face and that frame's motion."""
    digest = hashlib.sha256(b"enliven-frame-1\0")
    digest.update(f"{photo_digest}\0{engine}\0{face_index}\0".encode())
    # Rounded to 1e-5 (far below anything visible) so float noise from
    # re-evaluating the same curves never invalidates a frame.
    digest.update(np.round(np.asarray(row, dtype=np.float64), 5).astype("<f8").tobytes())
    return digest.hexdigest()[:32]


def load_cache(directory: str) -> dict[str, str]:
    try:
        with open(os.path.join(directory, CACHE_FILE), encoding="utf-8") as fh:
            data = json.load(fh)
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict) or data.get("format") != CACHE_FORMAT or not isinstance(data.get("frames"), dict):
        return {}
    return {str(k): str(v) for k, v in data["frames"].items()}


def save_cache(directory: str, frames: dict[str, str]) -> None:
    _write_atomic(os.path.join(directory, CACHE_FILE),
                  json.dumps({"format": CACHE_FORMAT, "version": 1, "frames": frames}, indent=0).encode())


def _write_atomic(path: str, data: bytes) -> None:
    # Temp file + rename in the same folder: readers (and a later cache
    # check) never see half a PNG.
    temporary = f"{path}.{os.getpid()}.part"
    with open(temporary, "wb") as fh:
        fh.write(data)
    os.replace(temporary, path)


# --------------------------------------------------------------------------- jobs


@dataclass
class PreviewState:
    job: str | None = None  # the preview in flight (at most one)
    sent_values: np.ndarray | None = None
    sent_key: tuple | None = None
    shown_values: np.ndarray | None = None
    shown_key: tuple | None = None
    sent_at: float = 0.0
    again: bool = False  # something changed while a preview was in flight
    retried_subject: bool = False
    failed_key: tuple | None = None  # the last request that failed: not retried until something changes
    rgba: np.ndarray | None = None  # reused pixel buffer
    updates: int = 0  # previews shown so far (benchmarks and tests watch this)


@dataclass
class GenerateState:
    rig: str
    scene: str
    out_dir: str
    frames: list[int]  # every frame of the range
    motion: np.ndarray  # (len(frames), channels)
    fps: float
    photo: Photo
    face_index: int
    engine: str = ""
    checkpoint: str | None = None  # the refine engine's model (None: the backend's default)
    keys: list[str] = field(default_factory=list)
    todo: list[int] = field(default_factory=list)  # positions in `frames` to render
    job: str | None = None
    state: str = "PREPARING"  # PREPARING, RUNNING, FINISHING, DONE, CANCELLED, FAILED
    rendered: int = 0
    written: int = 0
    cache: dict[str, str] = field(default_factory=dict)
    writes: list[tuple[Future, str, str]] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)
    cancel_requested: bool = False
    message: str = ""
    status_bar_final: bool = False  # the status bar was redrawn after the job ended
    retried_subject: bool = False

    @property
    def cached(self) -> int:
        return len(self.frames) - len(self.todo)

    @property
    def progress(self) -> float:
        return (self.cached + self.written) / max(1, len(self.frames))

    @property
    def active(self) -> bool:
        return self.state in ("PREPARING", "RUNNING", "FINISHING")


@dataclass
class TrainState:
    """One training run of the refine engine on the backend."""

    run_dir: str
    job: str | None = None
    state: str = "PREPARING"  # PREPARING, RUNNING, STOPPING, DONE, STOPPED, FAILED
    step: int = 0
    total: int = 0
    losses: dict[str, float] = field(default_factory=dict)
    message: str = ""
    checkpoint: str | None = None  # the model to use once the backend has written it (best.pt or last.pt)
    samples: str | None = None  # RUN_DIR/samples.png (source | warp | refined | target)

    @property
    def progress(self) -> float:
        return self.step / self.total if self.total else 0.0

    @property
    def active(self) -> bool:
        return self.state in ("PREPARING", "RUNNING", "STOPPING")


@dataclass
class BakeSettings:
    """What to do with a capture's or lip-sync's motion when it arrives."""

    frame: int  # scene frame of the motion's first frame
    relative_tolerance: float | None = None  # None: a key on every frame; else see shared/keyframes.py
    only: tuple[str, ...] | None = None  # the channels to key; None: every channel the motion has
    blend_factor: float = 1.0  # 1 replaces the existing keys; less mixes with the existing animation
    sound_path: str | None = None  # add a sound strip playing this file at `frame`
    sound_from_reply: bool = False  # ... or the WAV the backend wrote (Say Text)


@dataclass
class BakeState:
    """One capture or lip-sync job: sent to the backend, then keyed on the rig."""

    title: str  # "Capture from video", "Lip-sync"...: starts every message
    rig: str
    scene: str
    settings: BakeSettings
    send: Callable[[Client], str]  # sends the request, returns its job id
    job: str | None = None
    state: str = "PREPARING"  # PREPARING, RUNNING, DONE, CANCELLED, FAILED
    progress: float = 0.0  # 0..1 when the backend knows the total
    message: str = ""
    cancel_requested: bool = False
    keys: int = 0
    frames: tuple[int, int] | None = None  # first and last keyed frame
    strip: str | None = None  # the sound strip added
    warnings: list[str] = field(default_factory=list)

    @property
    def active(self) -> bool:
        return self.state in ("PREPARING", "RUNNING")


class Runtime:
    """Connection state and jobs: one per Blender session, never saved."""

    def __init__(self) -> None:
        self.client: Client | None = None
        self.address = ""
        self.server_info: dict | None = None
        self.state = "DISCONNECTED"  # DISCONNECTED, STARTING, CONNECTING, CONNECTED, ERROR
        self.message = "Not connected"
        self.local: LocalBackend | None = None
        self.saving_local: LocalBackend | None = None  # stopped while it trained: saving its run, then exiting
        self.latency_ms: float | None = None
        self.handlers: dict[str, Callable[[Event], None]] = {}
        self.waiting: list[tuple[Callable[[], None], Callable[[str], None]]] = []  # until connected
        self.subjects: dict[tuple[str, int], str] = {}  # (photo digest, face) -> subject id
        self.unusable: dict[tuple[str, int], str] = {}  # photos the backend refused -> why
        self.analyzing: dict[tuple[str, int], list[tuple[Callable[[str], None], Callable[[str], None]]]] = {}
        self.photos: dict[str, tuple[tuple, Photo]] = {}  # image name -> (signature, photo)
        self.rig_status: dict[str, tuple[str, str]] = {}  # rig name -> (icon, text)
        self.preview = PreviewState()
        self.generate: GenerateState | None = None
        self.bake: BakeState | None = None
        self.training: TrainState | None = None
        self.writer: ThreadPoolExecutor | None = None
        self.last_error = ""
        self.redraw_due = False
        self.status_bar_at = 0.0

    # -- status -------------------------------------------------------------

    def status_line(self) -> tuple[str, str]:
        """(icon, text) for the panel: connected / device / engine / latency."""
        if self.state == "CONNECTED" and self.server_info:
            device = (self.server_info.get("device") or {}).get("name", "?")
            engine = self.server_info.get("default_engine", "?")
            latency = f" · {self.latency_ms:.0f} ms" if self.latency_ms is not None else ""
            return 'CHECKMARK', f"Connected · {device} · {engine}{latency}"
        if self.state == "ERROR":
            return 'ERROR', self.message
        if self.state in ("STARTING", "CONNECTING"):
            return 'SORTTIME', self.message
        return 'UNLINKED', self.message

    def has_log(self) -> bool:
        return self.local is not None and bool(self.local.log)

    def notify(self, level: str, text: str, rig: str | None = None) -> None:
        """Show `text` where the artist looks: the panel, the portrait's status
        line and a report (Info editor + status bar)."""
        if rig is not None:
            self.rig_status[rig] = ('ERROR' if level == 'ERROR' else 'INFO', text)
        if level == 'ERROR':
            self.last_error = text
        print(f"Enliven: {text}")  # for logs; never the only signal
        _report(level, text)
        self.redraw_due = True

    def fail_connection(self, text: str) -> None:
        self.state = "ERROR"
        self.message = text
        waiting, self.waiting = self.waiting, []
        for _, on_error in waiting:
            on_error(text)
        self.notify('ERROR', text)

    # -- connecting ---------------------------------------------------------

    def settings_changed(self) -> None:
        """Preferences changed: drop the connection; the next action reconnects."""
        self.disconnect(stop_local=True)

    def disconnect(self, stop_local: bool = True) -> None:
        if self.client is not None:
            self.client.close()
        self.client = None
        self.server_info = None
        self.handlers.clear()
        self.subjects.clear()
        self.unusable.clear()
        self.analyzing.clear()
        self.preview.job = None
        if self.generate is not None and self.generate.active:
            self._end_generate("CANCELLED", "Cancelled: the connection was closed")
        if self.bake is not None and self.bake.active:
            self._end_bake(self.bake, "CANCELLED", "Cancelled: the connection was closed")
        training_here = self.training is not None and self.training.active
        if training_here:
            if stop_local and self.local is not None:  # stopping the backend stops its training, saved first
                text = "Training stopped with the backend (it saves the run as it stops; Resume continues it)"
            else:  # a backend trains on without its client
                text = ("Training goes on in the backend: Start Training with Resume and the same run folder "
                        "to watch it again")
            self._end_training(self.training, "STOPPED", text)
        if stop_local and self.local is not None:
            if training_here:  # it may need a while to finish its step and save: let it, without waiting here
                self.local.stop(LOCAL_TRAINING_STOP_S, block=False)
                self.saving_local = self.local
            else:
                self.local.stop()
            self.local = None
        self.state = "DISCONNECTED"
        self.message = "Not connected"
        waiting, self.waiting = self.waiting, []
        for _, on_error in waiting:
            on_error("Disconnected")

    def connect(self, force: bool = False) -> None:
        """Start connecting (and, in local mode, start the backend). Returns at once."""
        if force:
            self.disconnect(stop_local=False)
        if self.state in ("STARTING", "CONNECTING"):
            return
        prefs = preferences.get()
        try:
            if prefs.mode == 'LOCAL':
                if self.saving_local is not None and self.saving_local.running:
                    # Another backend now would train the same run folder while the old one still writes it.
                    raise UserError("The stopped local backend is still saving its training run; "
                                    "connect again in a moment")
                self.saving_local = None
                if self.local is not None and not self.local.running:
                    self.local = None
                if self.local is None:
                    self.local = LocalBackend(find_python(prefs.python_env), prefs.local_port)
                if self.local.endpoint is None:
                    self.state = "STARTING"
                    self.message = "Starting the local backend…"
                    self.redraw_due = True
                    return  # the timer continues once it prints its address
                address = self.local.endpoint
                keys = {}
            else:
                address = prefs.address.strip()
                keys = curve_keys(prefs.server_key, prefs.client_key)
            self._hello(address, float(prefs.timeout), keys)
        except UserError as error:
            self.fail_connection(str(error))
        ensure_timer()

    def _hello(self, address: str, timeout_s: float, keys: dict | None = None) -> None:
        if self.client is None or self.address != address:
            if self.client is not None:
                self.client.close()
            try:
                self.client = Client(address, timeout_s=timeout_s, heartbeat_s=min(1.0, timeout_s / 3), **(keys or {}))
            except Exception as error:  # noqa: BLE001 - a bad address is a ZMQError
                raise UserError(f"Cannot use backend address {address!r}: {error}") from None
            self.address = address
        self.state = "CONNECTING"
        self.message = f"Connecting to {address}…"
        job = self.client.hello(f"{CLIENT_NAME} (Blender {bpy.app.version_string})")
        self.handlers[job] = self._on_hello
        self.redraw_due = True

    def _on_hello(self, event: Event) -> None:
        if event.type == "hello_reply":
            fields = event.fields
            if fields.get("protocol") != protocol.PROTOCOL_VERSION:
                self.fail_connection(describe_error(
                    protocol.E_VERSION,
                    f"the backend speaks protocol {fields.get('protocol')}, this add-on "
                    f"{protocol.PROTOCOL_VERSION}; update them together"))
                return
            missing = [name for name in CHANNEL_NAMES if name not in fields.get("channels", CHANNEL_NAMES)]
            if missing:
                self.fail_connection(describe_error(
                    protocol.E_VERSION, f"the backend does not know the channels {', '.join(missing)}"))
                return
            self.server_info = fields
            self.state = "CONNECTED"
            self.message = "Connected"
            self.last_error = ""
            waiting, self.waiting = self.waiting, []
            for on_ready, _ in waiting:
                on_ready()
            self.redraw_due = True
        elif event.type == "error":
            self.fail_connection(describe_error(event.code, event.message))

    def when_connected(self, on_ready: Callable[[], None], on_error: Callable[[str], None]) -> None:
        """Run `on_ready` once connected (now, if already), else `on_error(text)`."""
        if self.state == "CONNECTED" and self.client is not None:
            on_ready()
            return
        self.waiting.append((on_ready, on_error))
        if self.state == "ERROR":
            self.state = "DISCONNECTED"  # an action retries a failed connection
        self.connect()

    def request(self, job: str, handler: Callable[[Event], None]) -> str:
        self.handlers[job] = handler
        ensure_timer()
        return job

    # -- subjects (analysis) ------------------------------------------------

    def photo_for(self, obj: bpy.types.Object) -> Photo:
        image = obj.enliven.photo
        if image is None:
            raise UserError(f"Portrait '{obj.name}' has no photo")
        signature = _file_signature(image)
        cached = self.photos.get(image.name)
        if cached is not None and cached[0] == signature:
            return cached[1]
        photo = read_photo(image)
        self.photos[image.name] = (signature, photo)
        return photo

    def with_subject(self, photo: Photo, face: int, on_ready: Callable[[str], None],
                     on_error: Callable[[str], None], rig: str | None = None) -> None:
        """Analyse `photo` once per backend; `on_ready(subject_id)` when known."""
        key = (photo.digest, face)
        if key in self.subjects:
            subject = self.subjects[key]
            # Through when_connected: after a lost connection this reconnects
            # first instead of sending into the void.
            self.when_connected(lambda: on_ready(subject), on_error)
            return
        if key in self.unusable:
            # The backend already said this photo cannot be used (no face...):
            # do not ask again on every slider move.
            on_error(self.unusable[key])
            return
        waiting = self.analyzing.get(key)
        if waiting is not None:
            waiting.append((on_ready, on_error))
            return
        self.analyzing[key] = [(on_ready, on_error)]

        def send() -> None:
            job = self.client.analyze(photo.data, face_index=face)
            self.request(job, lambda event: self._on_analysis(key, event, rig))

        def fail(text: str) -> None:
            if rig is not None:
                self.rig_status[rig] = ('ERROR', text)
            for _, callback in self.analyzing.pop(key, []):
                callback(text)

        if rig is not None:
            self.rig_status[rig] = ('SORTTIME', "Analysing the photo…")
        self.when_connected(send, fail)

    def _on_analysis(self, key: tuple[str, int], event: Event, rig: str | None) -> None:
        callbacks = self.analyzing.pop(key, [])
        if event.type == "analysis":
            subject = event.fields["subject"]
            self.subjects[key] = subject
            summary = event.fields.get("summary", {})
            if rig is not None:
                faces = summary.get("faces_found", 1)
                pose = summary.get("head_pose_deg", {})
                extra = f" ({faces} faces, using #{key[1]})" if faces and faces > 1 else ""
                self.rig_status[rig] = (
                    'CHECKMARK',
                    f"Face found{extra}: {summary.get('width', '?')}×{summary.get('height', '?')} px, "
                    f"yaw {pose.get('yaw', 0):+.0f}°")
            self.redraw_due = True
            for on_ready, _ in callbacks:
                on_ready(subject)
        elif event.type == "error":
            text = describe_error(event.code, event.message)
            if event.code in ("no_face", "bad_image", "too_large"):
                self.unusable[key] = text
            if rig is not None:
                self.notify('ERROR', text, rig)
            for _, on_error in callbacks:
                on_error(text)

    def analyze_rig(self, obj: bpy.types.Object) -> None:
        """Analyse a rig's photo now (Add Portrait), to report "no face" early."""
        try:
            photo = self.photo_for(obj)
        except UserError as error:
            self.notify('ERROR', str(error), obj.name)
            return
        self.with_subject(photo, obj.enliven.face_index, lambda subject: None, lambda text: None, obj.name)

    # -- live preview -------------------------------------------------------

    def request_preview(self, scene: bpy.types.Scene | None = None) -> None:
        """Render the active portrait's current pose, unless that is already shown.

        At most one preview is in flight: changes made meanwhile are folded
        into one follow-up request with the newest values (newest wins).
        """
        scene = scene or bpy.context.scene
        if scene is None or not scene.enliven.live_preview:
            return
        obj = active_rig(bpy.context, scene)
        if obj is None or obj.enliven.photo is None:
            return
        values = sampling.current_values(obj)
        rig = obj.enliven
        checkpoint = rig_checkpoint(obj)
        key = (obj.name, rig.photo.name, engine_key(rig.engine, checkpoint), rig.face_index)
        state = self.preview
        if state.job is not None:
            if not (key == state.sent_key and np.array_equal(values, state.sent_values)):
                state.again = True
            return
        if key == state.shown_key and state.shown_values is not None and np.array_equal(values, state.shown_values):
            return
        if key == state.failed_key:
            return  # already reported for this portrait/engine; a change of those retries
        try:
            photo = self.photo_for(obj)
        except UserError as error:
            self.notify('ERROR', str(error), obj.name)
            return
        state.job = "pending"  # holds the slot until the request is actually sent
        state.sent_key, state.sent_values, state.again = key, values, False
        name, engine, face = obj.name, rig.engine.strip(), rig.face_index

        def send(subject: str) -> None:
            if self.client is None:
                state.job = None
                return
            state.sent_at = time.perf_counter()
            job = self.client.preview(values, subject=subject, engine=engine or None, format="raw", face_index=face,
                                      checkpoint=checkpoint)
            state.job = self.request(job, lambda event: self._on_preview(event, name, photo))

        def fail(text: str) -> None:
            state.job = None
            if (photo.digest, face) in self.unusable:
                state.failed_key = key
            self.rig_status[name] = ('ERROR', text)
            self.redraw_due = True

        self.with_subject(photo, face, send, fail, name)

    def _on_preview(self, event: Event, rig: str, photo: Photo) -> None:
        state = self.preview
        if event.type == "frame":
            image = event.image()
            if isinstance(image, np.ndarray):
                self._show_preview(image)
                state.shown_key, state.shown_values = state.sent_key, state.sent_values
                self.latency_ms = (time.perf_counter() - state.sent_at) * 1000.0
                state.retried_subject = False
                state.updates += 1
                if self.rig_status.get(rig, ('', ''))[0] == 'ERROR':
                    self.rig_status.pop(rig, None)
                notes = event.fields.get("warnings") or []
                if notes:  # e.g. the refine engine rendering with the warp alone where its model cannot run
                    self.rig_status[rig] = ('INFO', str(notes[0]))
        elif event.type == "error":
            if event.code in ("unknown_subject", "lost", "server_restarted") and not state.retried_subject:
                # The backend restarted or evicted the photo: analyse again, once.
                state.retried_subject = True
                self.subjects = {k: v for k, v in self.subjects.items() if k[0] != photo.digest}
                state.again = True
            else:
                self.notify('ERROR', describe_error(event.code, event.message), rig)
                state.shown_key = None
                if event.code not in TRANSIENT_ERRORS:
                    state.failed_key = state.sent_key
                state.again = False
        if event.end:
            state.job = None
            if state.again:
                state.again = False
                self.request_preview()

    def _show_preview(self, rgb: np.ndarray) -> None:
        height, width = rgb.shape[:2]
        step = max(1, math.ceil(max(height, width) / PREVIEW_MAX_SIDE))
        if step > 1:
            rgb = rgb[::step, ::step]
            height, width = rgb.shape[:2]
        image = bpy.data.images.get(PREVIEW_IMAGE)
        if image is None or image.source != 'GENERATED':
            image = bpy.data.images.new(PREVIEW_IMAGE, width, height, alpha=False)
        if tuple(image.size) != (width, height):
            image.scale(width, height)
        state = self.preview
        if state.rgba is None or state.rgba.shape[:2] != (height, width):
            state.rgba = np.ones((height, width, 4), dtype=np.float32)
        # Blender's rows run bottom-up; pixels are 0..1 floats.
        np.multiply(rgb[::-1], np.float32(1.0 / 255.0), out=state.rgba[:, :, :3], casting="unsafe")
        image.pixels.foreach_set(state.rgba.ravel())
        image.update()
        self.redraw_due = True

    # -- generate -----------------------------------------------------------

    def start_generate(self, scene: bpy.types.Scene, obj: bpy.types.Object) -> str | None:
        """Sample the rig and start rendering its frames; returns a warning or None.
        Raises UserError when it cannot start."""
        if self.generate is not None and self.generate.active:
            raise UserError(f"Already generating '{self.generate.rig}'; cancel it first")
        first, last = sampling.frame_range(scene, obj)
        if first < 0:
            raise UserError("Frames before 0 cannot be written as a numbered sequence")
        frames = list(range(first, last + 1))
        max_frames = int((self.server_info or {}).get("limits", {}).get("max_frames", 20_000))
        if len(frames) > max_frames:
            raise UserError(f"{len(frames)} frames is more than the backend allows ({max_frames}); "
                            "generate a shorter range")
        photo = self.photo_for(obj)
        directory, warning = output_dir(obj)
        try:
            os.makedirs(directory, exist_ok=True)
        except OSError as error:
            raise UserError(f"Cannot create the output folder {directory}: {error.strerror or error}") from None
        job = GenerateState(
            rig=obj.name, scene=scene.name, out_dir=directory, frames=frames,
            motion=sampling.sample(obj, frames), fps=sampling.scene_fps(scene), photo=photo,
            face_index=obj.enliven.face_index, engine=obj.enliven.engine.strip(), checkpoint=rig_checkpoint(obj),
        )
        self.generate = job
        job.message = "Connecting…"
        self.rig_status[obj.name] = ('SORTTIME', "Preparing…")
        self.when_connected(lambda: self._generate_connected(job), lambda text: self._generate_failed(job, text))
        self.redraw_due = True
        return warning

    def _generate_connected(self, job: GenerateState) -> None:
        if job is not self.generate or not job.active:
            return
        if job.cancel_requested:
            self._end_generate("CANCELLED", "Cancelled")
            return
        job.engine = job.engine or (self.server_info or {}).get("default_engine", "warp")
        engine = engine_key(job.engine, job.checkpoint)
        job.keys = [frame_key(job.photo.digest, engine, job.face_index, row) for row in job.motion]
        job.cache = load_cache(job.out_dir)
        reusable = frames_reusable(job.engine, job.checkpoint)
        job.todo = [
            i for i, frame in enumerate(job.frames)
            if not reusable or job.cache.get(frame_filename(frame)) != job.keys[i]
            or not os.path.isfile(os.path.join(job.out_dir, frame_filename(frame)))
        ]
        if not job.todo:
            self._end_generate("DONE", f"All {len(job.frames)} frames are up to date in {job.out_dir}")
            return
        job.message = "Analysing the photo…"

        def send(subject: str) -> None:
            if job is not self.generate or not job.active:
                return
            if job.cancel_requested:
                self._end_generate("CANCELLED", "Cancelled")
                return
            job.job = self.client.generate(
                job.motion[job.todo], job.fps, subject=subject, engine=job.engine,
                format="png", face_index=job.face_index, checkpoint=job.checkpoint)
            self.request(job.job, lambda event: self._on_generate(job, event))
            job.state = "RUNNING"
            job.message = f"Generating {len(job.todo)} frames…"
            self.redraw_due = True

        self.with_subject(job.photo, job.face_index, send, lambda text: self._generate_failed(job, text), job.rig)

    def _generate_failed(self, job: GenerateState, text: str) -> None:
        if job is self.generate and job.active:
            self._end_generate("FAILED", text)

    def _on_generate(self, job: GenerateState, event: Event) -> None:
        if job is not self.generate:
            return
        if event.type == "frame":
            position = job.todo[int(event.fields["index"])]
            frame = job.frames[position]
            data = event.image()
            if not isinstance(data, (bytes, bytearray)):
                self._end_generate("FAILED", f"The backend sent frame {frame} without PNG data")
                return
            name = frame_filename(frame)
            if self.writer is None:
                self.writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="enliven-writer")
            future = self.writer.submit(_write_atomic, os.path.join(job.out_dir, name), bytes(data))
            job.writes.append((future, name, job.keys[position]))
            job.rendered += 1
            job.message = f"Generating: {job.cached + job.rendered}/{len(job.frames)} frames"
            self.redraw_due = True
        elif event.type == "queued":
            job.message = f"Queued behind other jobs (position {event.fields.get('position', '?')})"
            self.redraw_due = True
        elif event.type == "done":
            status = event.fields.get("status")
            if status == "completed":
                took = time.monotonic() - job.started
                cached = f", {job.cached} unchanged" if job.cached else ""
                self._end_generate("DONE", f"Generated {job.rendered} frames{cached} in {took:.1f} s into {job.out_dir}")
            else:
                self._end_generate("CANCELLED", f"Generate {status}: {job.rendered} frames written")
        elif event.type == "error":
            if event.code == "unknown_subject" and not job.retried_subject and job.rendered == 0:
                # The backend restarted since the analysis: analyse again, once.
                job.retried_subject = True
                self.subjects.pop((job.photo.digest, job.face_index), None)
                job.job = None
                self._generate_connected(job)
                return
            self._end_generate("FAILED", describe_error(event.code, event.message))

    def _collect_writes(self, wait: bool = False) -> str | None:
        """Account for frames the writer finished; returns the first write error."""
        job = self.generate
        if job is None:
            return None
        remaining, error_text = [], None
        for future, name, key in job.writes:
            if not (wait or future.done()):
                remaining.append((future, name, key))
                continue
            try:
                future.result()
            except OSError as error:
                error_text = error_text or f"Cannot write {name} in {job.out_dir}: {error.strerror or error}"
                continue
            job.cache[name] = key  # only frames really on disk count as cached
            job.written += 1
        job.writes = remaining
        return error_text

    def _end_generate(self, state: str, text: str) -> None:
        job = self.generate
        if job is None:
            return
        was_active = job.active
        if job.job is not None and job.job in self.handlers and self.client is not None:
            self.client.cancel(job.job)  # ending early (write error, disconnect): stop the backend too
        job.state = "FINISHING"
        write_error = self._collect_writes(wait=True)
        if write_error is not None:
            state, text = "FAILED", write_error
        if job.keys:
            try:
                save_cache(job.out_dir, job.cache)
            except OSError as error:
                text += f" (the frame cache could not be saved: {error.strerror or error})"
        job.state, job.message = state, text
        if job.job is not None:
            self.handlers.pop(job.job, None)
        if state == "DONE":
            _reload_sequence_images(job.out_dir)
        if was_active:
            level = 'ERROR' if state == "FAILED" else ('WARNING' if state == "CANCELLED" else 'INFO')
            self.notify(level, text, job.rig)
        self.redraw_due = True

    def cancel_generate(self) -> bool:
        job = self.generate
        if job is None or not job.active:
            return False
        job.cancel_requested = True
        if job.job is not None and self.client is not None:
            self.client.cancel(job.job)  # the job then ends with done/cancelled
            job.message = "Cancelling…"
        elif job.state == "PREPARING":
            self._end_generate("CANCELLED", "Cancelled")
        self.redraw_due = True
        return True

    # -- bakes: capture and lip-sync ---------------------------------------

    def start_bake(self, job: BakeState) -> None:
        """Send a capture or lip-sync job; its motion is keyed when it arrives
        (in the timer). Returns at once; raises UserError when one is running."""
        if self.bake is not None and self.bake.active:
            raise UserError(f"{self.bake.title} is still running on '{self.bake.rig}'; wait or cancel it")
        self.bake = job
        job.message = f"{job.title}: connecting…"
        self.rig_status.pop(job.rig, None)
        self.when_connected(lambda: self._bake_connected(job), lambda text: self._end_bake(job, "FAILED", text))
        self.redraw_due = True

    def _bake_connected(self, job: BakeState) -> None:
        if job is not self.bake or not job.active:
            return
        if job.cancel_requested:
            self._end_bake(job, "CANCELLED", f"{job.title}: cancelled")
            return
        job.job = self.request(job.send(self.client), lambda event: self._on_bake(job, event))
        job.state = "RUNNING"
        job.message = f"{job.title}: waiting for the backend…"
        self.redraw_due = True

    def _on_bake(self, job: BakeState, event: Event) -> None:
        if job is not self.bake:
            return
        if event.type == "queued":
            job.message = f"{job.title}: queued behind other jobs (position {event.fields.get('position', '?')})"
        elif event.type == "progress":
            stage, done, total = event.fields.get("stage", ""), event.fields.get("done"), event.fields.get("total")
            if isinstance(total, (int, float)) and total > 0 and isinstance(done, (int, float)):
                job.progress = min(1.0, done / total)
                job.message = f"{job.title}: {stage} {done:g}/{total:g}"
            elif isinstance(done, (int, float)) and done:
                job.message = f"{job.title}: {stage} {done:g}…"
            else:
                job.message = f"{job.title}: {stage}…"
        elif event.type == "motion" and job.cancel_requested:
            # Finished before the cancel reached the backend: the artist still
            # asked for no keys, so none are made.
            self._end_bake(job, "CANCELLED", f"{job.title}: cancelled")
        elif event.type == "motion":
            self._key_bake(job, event)
        elif event.type == "done":
            status = event.fields.get("status", "ended")
            self._end_bake(job, "CANCELLED", f"{job.title}: {status}")
        elif event.type == "error":
            self._end_bake(job, "FAILED", f"{job.title} failed: {describe_error(event.code, event.message)}")
        self.redraw_due = True

    def _key_bake(self, job: BakeState, event: Event) -> None:
        """The job's motion arrived: key it on the rig and add its sound strip."""
        obj, scene = bpy.data.objects.get(job.rig), bpy.data.scenes.get(job.scene)
        if obj is None or scene is None:
            self._end_bake(job, "FAILED", f"{job.title}: the portrait or its scene was deleted meanwhile")
            return
        settings = job.settings
        try:
            values, channels, fps = motion_of(event)
            job.keys, first, last = keying.bake_channels(
                obj, values, channels, fps, settings.frame, sampling.scene_fps(scene), only=settings.only,
                relative_tolerance=settings.relative_tolerance, blend_factor=settings.blend_factor)
        except ValueError as error:
            self._end_bake(job, "FAILED", f"{job.title}: the backend's motion cannot be keyed: {error}")
            return
        job.frames = (first, last)
        job.warnings = [str(w) for w in event.fields.get("warnings", [])][:5]
        text = f"{job.title}: {job.keys} keys on frames {first}-{last}"
        sound = settings.sound_path or (event.fields.get("audio_path") if settings.sound_from_reply else None)
        if sound:
            text += self._add_sound(job, scene, sound, last - first + 1)
        scene.frame_set(scene.frame_current)  # the channel sliders show the new keys
        self._end_bake(job, "DONE", text)

    def _add_sound(self, job: BakeState, scene: bpy.types.Scene, path: str, length: int) -> str:
        """Add the sound strip; returns the text to append to the job's message."""
        if not compat.can_add_sound():
            job.warnings.append(f"This Blender has no audio support: add {path} to the sequencer yourself, "
                                f"at frame {job.settings.frame}")
            return ""
        try:
            strip = compat.add_sound_strip(scene, path, job.settings.frame, length)
        except RuntimeError as error:
            job.warnings.append(f"The sound strip could not be added ({error}); add {path} at frame "
                                f"{job.settings.frame} yourself")
            return ""
        job.strip = strip.name
        return f"; sound strip '{strip.name}' at frame {compat.strip_content_start(strip)}, channel {strip.channel}"

    def _end_bake(self, job: BakeState, state: str, text: str) -> None:
        if job is not self.bake or not job.active:
            return
        if job.job is not None and job.job in self.handlers and self.client is not None and state != "DONE":
            self.client.cancel(job.job)  # ending early (disconnect): stop the backend too
            self.handlers.pop(job.job, None)
        job.state, job.message = state, text
        if state == "DONE":
            job.progress = 1.0
        level = {'FAILED': 'ERROR', 'CANCELLED': 'WARNING'}.get(state, 'INFO')
        self.notify(level, text, job.rig)
        for warning in job.warnings:
            self.notify('WARNING', warning)
        self.redraw_due = True

    def cancel_bake(self) -> bool:
        job = self.bake
        if job is None or not job.active:
            return False
        job.cancel_requested = True
        if job.job is not None and self.client is not None:
            self.client.cancel(job.job)  # the job then ends with done/cancelled
            job.message = f"{job.title}: cancelling…"
        else:
            self._end_bake(job, "CANCELLED", f"{job.title}: cancelled")
        self.redraw_due = True
        return True

    # -- training the refine engine -------------------------------------------

    def start_training(self, dataset_dir: str, run_dir: str, config: str | dict | None, steps: int | None,
                       resume: bool) -> None:
        """Start training on the backend; progress arrives in the timer. Raises
        UserError when a run is already going."""
        if self.training is not None and self.training.active:
            raise UserError(f"Training into {self.training.run_dir} is still running; stop it first")
        job = TrainState(run_dir=run_dir, message="Training: connecting…")
        self.training = job

        def send() -> None:
            if job is not self.training or not job.active:
                return
            if job.state == "STOPPING":
                self._end_training(job, "STOPPED", "Training: stopped before it started")
                return
            training = (self.server_info or {}).get("training")
            if training is None:
                self._end_training(job, "FAILED", "This backend is too old to train from Blender; update it")
                return
            if not training:
                self._end_training(job, "FAILED", "This backend cannot train: it has no PyTorch "
                                                  "(pip install 'enliven[neural]' where it runs)")
                return
            job.job = self.request(self.client.train(dataset_dir, run_dir, config=config, steps=steps, resume=resume),
                                   lambda event: self._on_training(job, event))
            job.message = "Training: loading the dataset…"
            self.redraw_due = True

        self.when_connected(send, lambda text: self._end_training(job, "FAILED", text))
        self.redraw_due = True

    def _on_training(self, job: TrainState, event: Event) -> None:
        if job is not self.training:
            return
        fields = event.fields
        if event.type == "queued":
            job.message = f"Training: waiting for another run to finish (position {fields.get('position', '?')})"
        elif event.type == "progress" and fields.get("stage") == "preparing" and job.state == "PREPARING":
            job.message = "Training: loading the dataset…"
        elif event.type == "progress" and fields.get("stage") == "watching":  # resumed a run that was going on
            job.step, job.total = int(fields.get("done", 0)), int(fields.get("total", 0))
            job.state, job.message = "RUNNING", f"Training (watching the running run): step {job.step}/{job.total}"
        elif event.type == "progress" and fields.get("stage") == "training":
            job.step, job.total = int(fields.get("done", 0)), int(fields.get("total", 0))
            job.losses = _losses(fields)
            job.samples = fields.get("samples") or job.samples
            if job.state == "PREPARING":
                job.state = "RUNNING"
            if job.state == "RUNNING":
                job.message = f"Training: step {job.step}/{job.total}"
        elif event.type == "done":
            job.step = int(fields.get("step", job.step))
            job.checkpoint, job.samples = fields.get("checkpoint"), fields.get("samples")
            job.losses = _losses(fields) or job.losses
            status = fields.get("status")
            if status == "completed":
                self._end_training(job, "DONE", f"Training finished at step {job.step}: {job.checkpoint}")
            elif status in ("stopped", "stalled"):
                self._end_training(job, "STOPPED", f"Training stopped at step {job.step} (saved; Resume continues it)")
            else:  # cancelled before it trained a step
                self._end_training(job, "STOPPED", "Training stopped before it started; nothing was saved")
        elif event.type == "error":
            self._end_training(job, "FAILED", f"Training failed: {describe_error(event.code, event.message)}")
        self.redraw_due = True

    def _end_training(self, job: TrainState, state: str, text: str) -> None:
        if job is not self.training or not job.active:
            return
        job.state, job.message = state, text
        self.notify({'FAILED': 'ERROR', 'STOPPED': 'WARNING'}.get(state, 'INFO'), text)
        self.redraw_due = True

    def stop_training(self) -> bool:
        """Ask the backend to stop after the current step; it saves the run first."""
        job = self.training
        if job is None or not job.active:
            return False
        job.state, job.message = "STOPPING", "Training: stopping after this step and saving…"
        if job.job is not None and self.client is not None:
            self.client.cancel(job.job)
        self.redraw_due = True
        return True

    # -- the timer ----------------------------------------------------------

    def busy(self) -> bool:
        """Work that wants the fast timer. A training run alone does not: it reports every few seconds
        for hours, and the idle interval picks that up."""
        training = self.training.job if self.training is not None else None
        return any(job != training for job in self.handlers) or self.state == "STARTING" or (
            self.generate is not None and (self.generate.active or bool(self.generate.writes))) or (
            self.bake is not None and self.bake.active)

    def tick(self) -> float:
        if self.local is not None and self.state == "STARTING":
            if self.local.endpoint is not None:
                try:
                    self._hello(self.local.endpoint, float(preferences.get().timeout), {})
                except UserError as error:
                    self.fail_connection(str(error))
            elif not self.local.running:
                code = self.local.proc.returncode
                self.fail_connection(f"The local backend exited (code {code}): {self.local.log_tail(3)}")
            elif time.monotonic() - self.local.started > LOCAL_START_TIMEOUT_S:
                self.fail_connection(f"The local backend did not start within {LOCAL_START_TIMEOUT_S:.0f} s: "
                                     f"{self.local.log_tail(3)}")
        if self.client is not None:
            events = self.client.poll(max_events=EVENTS_PER_TICK)
            for event in events:
                if event.type == "error" and event.code in ("timeout", "auth_refused") and self.state == "CONNECTED":
                    # Every job of a dead connection fails the same way; say it once, up top.
                    self.state, self.message = "ERROR", describe_error(event.code, event.message)
                handler = self.handlers.get(event.job)
                if event.end:
                    self.handlers.pop(event.job, None)
                if handler is not None:
                    handler(event)
            if self.state == "CONNECTED" and self.local is not None and not self.local.running:
                self.fail_connection(f"The local backend stopped (code {self.local.proc.returncode}): "
                                     f"{self.local.log_tail(3)}")
        job = self.generate
        if job is not None and job.writes:
            write_error = self._collect_writes()
            if write_error is not None and job.active:
                self._end_generate("FAILED", write_error)
        if self.redraw_due:
            self.redraw_due = False
            _redraw(self._status_bar_due())
        if self.busy():
            return ACTIVE_INTERVAL
        return IDLE_INTERVAL if self.client is not None else SLEEP_INTERVAL

    def _status_bar_due(self) -> bool:
        """Refresh the status bar's progress at most 4 times a second while
        generating, and once after: refreshing it clears the status text
        that a running modal tool shows there (it comes back on the next event)."""
        job = self.generate
        if job is None or job.status_bar_final:
            return False
        now = time.monotonic()
        if now - self.status_bar_at < 0.25 and job.active:
            return False
        self.status_bar_at = now
        job.status_bar_final = not job.active
        return True

    def shutdown(self) -> None:
        """Close everything and forget all state (unregister)."""
        self.disconnect(stop_local=True)
        if self.writer is not None:
            self.writer.shutdown(wait=True)
        self.__init__()


RUNTIME = Runtime()


def active_rig(context: bpy.types.Context, scene: bpy.types.Scene | None = None) -> bpy.types.Object | None:
    """The portrait the UI works on: the active object when it is a portrait,
    else the scene's chosen one."""
    scene = scene or context.scene
    view_layer = getattr(context, "view_layer", None)
    active = view_layer.objects.active if view_layer is not None else None
    if active is not None and active.enliven.is_rig:
        return active
    if scene is not None:
        rig = scene.enliven.rig
        if rig is not None and rig.enliven.is_rig:
            return rig
    return None


def _reload_sequence_images(directory: str) -> None:
    """Make images that show this sequence pick up the new frames."""
    directory = os.path.normcase(os.path.normpath(directory))
    for image in bpy.data.images:
        if image.source in ('SEQUENCE', 'FILE') and image.filepath:
            folder = os.path.dirname(bpy.path.abspath(image.filepath, library=image.library))
            if os.path.normcase(os.path.normpath(folder)) == directory:
                image.reload()


def _redraw(status_bar: bool = False) -> None:
    wm = bpy.context.window_manager
    if wm is None:
        return
    for window in wm.windows:
        for area in window.screen.areas:
            if area.type in {'VIEW_3D', 'IMAGE_EDITOR', 'PREFERENCES', 'NODE_EDITOR', 'SEQUENCE_EDITOR'}:
                area.tag_redraw()
        if not status_bar:
            continue
        # The status bar is not one of the screen's areas; clearing its text
        # is the one Python call that tags it for a redraw.
        try:
            with bpy.context.temp_override(window=window):
                if bpy.context.workspace is not None:
                    bpy.context.workspace.status_text_set(None)
        except (RuntimeError, TypeError, AttributeError):
            pass


def _report(level: str, text: str) -> None:
    """A report in the Info editor and status bar, even from the timer (reports
    belong to operators, so a tiny internal operator makes it)."""
    wm = bpy.context.window_manager
    if wm is None or not wm.windows:
        return  # background mode / tests: the panel and the status hold it
    try:
        with bpy.context.temp_override(window=wm.windows[0]):
            bpy.ops.enliven.report(level=level, message=text[:1000])
    except (RuntimeError, AttributeError):
        pass


# --------------------------------------------------------------------------- timer + handlers


def poll() -> float:
    """The timer callback. Never raises: an internal error becomes a status line."""
    global _in_tick
    _in_tick = True
    try:
        return RUNTIME.tick()
    except Exception as error:  # noqa: BLE001 - a raising timer is unregistered silently by Blender
        traceback.print_exc()
        RUNTIME.notify('ERROR', f"Internal error in Enliven: {error!r} (details in the system console)")
        return SLEEP_INTERVAL
    finally:
        _in_tick = False


_in_tick = False


def ensure_timer() -> None:
    """Make the timer run soon: work was just sent. Inside the timer itself
    the returned interval does this instead."""
    if _in_tick:
        return
    if bpy.app.timers.is_registered(poll):
        bpy.app.timers.unregister(poll)
    bpy.app.timers.register(poll, first_interval=0.0, persistent=True)


def channels_changed(obj: bpy.types.Object) -> None:
    """A channel property was set (UI or script)."""
    scene = bpy.context.scene
    if scene is not None and scene.enliven.live_preview and active_rig(bpy.context, scene) == obj:
        RUNTIME.request_preview(scene)


def preview_toggled(scene: bpy.types.Scene) -> None:
    if scene.enliven.live_preview:
        # Show the current pose even if it did not change, and retry after an error.
        RUNTIME.preview.shown_key = RUNTIME.preview.failed_key = None
        RUNTIME.request_preview(scene)


@persistent
def _on_frame_change(scene: bpy.types.Scene, depsgraph=None) -> None:
    if scene.enliven.live_preview:
        RUNTIME.request_preview(scene)


@persistent
def _on_depsgraph_update(scene: bpy.types.Scene, depsgraph=None) -> None:
    # Catches what no property callback sees: F-curve edits in the Graph
    # Editor, undo, a different active object. Requests are deduplicated by
    # value, so this is cheap when nothing that matters changed.
    if scene.enliven.live_preview:
        RUNTIME.request_preview(scene)


@persistent
def _on_load_post(*args) -> None:
    # A different file: its portraits and images are different objects.
    RUNTIME.cancel_generate()
    RUNTIME.cancel_bake()
    RUNTIME.preview = PreviewState()
    RUNTIME.rig_status.clear()
    RUNTIME.photos.clear()


HANDLERS = (
    ("frame_change_post", _on_frame_change),
    ("depsgraph_update_post", _on_depsgraph_update),
    ("load_post", _on_load_post),
)


def _remove_handlers() -> None:
    # By name as well as by identity: after a script reload the old module's
    # functions are different objects, and they must not stay behind.
    names = {function.__name__ for _, function in HANDLERS}
    for attribute, _ in HANDLERS:
        handlers = getattr(bpy.app.handlers, attribute)
        for function in list(handlers):
            if getattr(function, "__module__", "") == __name__ and getattr(function, "__name__", "") in names:
                handlers.remove(function)


def _atexit() -> None:
    local = RUNTIME.local
    if local is None:
        return
    if RUNTIME.training is not None and RUNTIME.training.active:
        local.ask_to_stop()  # it saves the run and exits by itself; Blender does not wait for that
    else:
        local.stop(timeout=3.0)


def register() -> None:
    _remove_handlers()
    for attribute, function in HANDLERS:
        getattr(bpy.app.handlers, attribute).append(function)
    if not bpy.app.timers.is_registered(poll):
        bpy.app.timers.register(poll, first_interval=SLEEP_INTERVAL, persistent=True)
    atexit.register(_atexit)  # Blender quitting does not call unregister()


def unregister() -> None:
    if bpy.app.timers.is_registered(poll):
        bpy.app.timers.unregister(poll)
    _remove_handlers()
    atexit.unregister(_atexit)
    RUNTIME.shutdown()
