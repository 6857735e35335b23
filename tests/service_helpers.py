"""Helpers for tests that run `enliven serve` as a real subprocess on a real socket."""
from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import tempfile
import threading
import time
import weakref
from pathlib import Path

import numpy as np
import zmq

from enliven.shared import protocol
from enliven.shared.channels import CHANNEL_NAMES, default_vector
from enliven.shared.client import Client, Event

ROOT = Path(__file__).resolve().parents[1]
ASTRONAUT = ROOT / "backend" / "assets" / "astronaut.png"
START_TIMEOUT_S = 60.0  # a cold start imports OpenCV/MediaPipe; a loaded 2-core box is slow


# `python -m enliven.cli`, except that on Linux the server also dies with the
# test process (PR_SET_PDEATHSIG), so a crashed test run leaves no orphan servers.
_SERVE_ORPHAN_SAFE = """
import ctypes, runpy, signal, sys
if sys.platform.startswith("linux"):
    ctypes.CDLL(None).prctl(1, signal.SIGTERM)
sys.argv[0] = "enliven"
runpy.run_module("enliven.cli", run_name="__main__", alter_sys=True)
"""


@contextlib.contextmanager
def serving(*extra: str, env: dict | None = None):
    """A server for a test module; fails the module if the server died during its tests."""
    with ServerProcess(*extra, env=env) as srv:
        yield srv
        assert srv.alive(), "the server died during the tests:\n" + srv.log()


class ServerProcess:
    """`python -m enliven.cli serve` on a free loopback port (port 0, read back from stdout)."""

    def __init__(self, *extra: str, bind: str = "tcp://127.0.0.1:0", env: dict | None = None):
        self.stderr_file = tempfile.NamedTemporaryFile("w+", prefix="enliven-serve-", suffix=".log", delete=False)
        # Kept for log() after the process is gone; removed once this object is, with or without `with`.
        self.remove_log = weakref.finalize(self, _remove_file, self.stderr_file.name)
        cmd = [sys.executable, "-c", _SERVE_ORPHAN_SAFE, "serve", "--bind", bind, *extra]
        # cwd: `python -m` puts it first on sys.path, so a stray ./enliven must not shadow the package.
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=self.stderr_file, text=True,
                                     cwd=ROOT, env={**os.environ, **(env or {})})
        self.address = self._read_endpoint()

    def _read_endpoint(self) -> str:
        box: list[str] = []
        reader = threading.Thread(target=lambda: box.append(self.proc.stdout.readline()), daemon=True)
        reader.start()
        reader.join(START_TIMEOUT_S)
        line = box[0] if box else ""
        if not line.startswith("listening on "):
            self.kill()
            raise RuntimeError(f"server did not start: {line!r}\n{self.log()}")
        endpoint = line.split()[-1]
        # A wildcard bind reports 0.0.0.0; connect over loopback.
        return endpoint.replace("tcp://0.0.0.0:", "tcp://127.0.0.1:")

    def log(self) -> str:
        try:
            return Path(self.stderr_file.name).read_text()
        except OSError:
            return ""

    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)

    def stop(self, timeout_s: float = 15.0) -> int:
        """SIGTERM (the server shuts down cleanly on it), then kill."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                return self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.kill()
        return self.proc.returncode

    def __enter__(self) -> "ServerProcess":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
        self.remove_log()


def _remove_file(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def astronaut_bytes() -> bytes:
    return ASTRONAUT.read_bytes()


def variant_png(seed: int) -> bytes:
    """A different photo each time (mirrored, one pixel changed): forces a fresh analysis."""
    import cv2

    rgb = cv2.cvtColor(cv2.imread(str(ASTRONAUT)), cv2.COLOR_BGR2RGB)[:, ::-1].copy()
    rgb[0, 0] = (seed % 256, (seed // 256) % 256, 7)
    ok, data = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    assert ok
    return data.tobytes()


def motion(frames: int, amplitude: float = 15.0) -> np.ndarray:
    """A head turn back and forth, full channel table order."""
    m = np.tile(default_vector(), (frames, 1)).astype(np.float32)
    m[:, CHANNEL_NAMES.index("head_yaw")] = amplitude * np.sin(np.linspace(0, 2 * np.pi, frames))
    return m


def collect(client: Client, job: str, timeout_s: float = 60.0) -> list[Event]:
    """Every event of one job until its last one (or fail after timeout_s)."""
    return wait_for(client, job, lambda ev: ev.end, timeout_s)


def wait_for(client: Client, job: str, predicate, timeout_s: float = 60.0) -> list[Event]:
    """Events of `job` until one satisfies predicate (the job may go on)."""
    events: list[Event] = []
    others: list[Event] = []
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline:
            batch = client.poll(timeout_ms=50)
            for i, ev in enumerate(batch):
                if ev.job != job:
                    others.append(ev)
                    continue
                events.append(ev)
                if predicate(ev):
                    others.extend(batch[i + 1:])
                    return events
                if ev.end:
                    raise AssertionError(f"job {job} ended before the condition: {ev.type} {ev.fields}")
    finally:
        client.unread(others)
    raise AssertionError(f"condition not met for {job} within {timeout_s} s")


class RawPeer:
    """A bare DEALER for sending hand-made (broken) frames and reading raw replies."""

    def __init__(self, address: str, ctx: zmq.Context | None = None):
        self.ctx = ctx or zmq.Context.instance()
        self.sock = self.ctx.socket(zmq.DEALER)
        self.sock.linger = 0
        self.sock.connect(address)

    def send(self, frames: list) -> None:
        self.sock.send_multipart(frames)

    def recv(self, timeout_s: float = 20.0) -> protocol.Message | None:
        if not self.sock.poll(int(timeout_s * 1000), zmq.POLLIN):
            return None
        return protocol.decode_reply(self.sock.recv_multipart())

    def request(self, frames: list, timeout_s: float = 20.0) -> protocol.Message | None:
        self.send(frames)
        return self.recv(timeout_s)

    def close(self) -> None:
        self.sock.close(0)
