"""The local backend: `enliven serve` as a child process of Blender, started
from the Python environment named in the preferences. Free of bpy.

Kept apart from the connection (as jupyter_client keeps launching a kernel
apart from talking to it): the session only needs the address it prints.

Nothing here blocks Blender's UI thread: checking the environment's Python
version, starting the process and reading its output happen on a thread of
the backend's own; the session's timer looks at `endpoint` and `failure`.
"""
from __future__ import annotations

import os
import re
import signal
import subprocess
import threading
import time
from collections import deque

from .states import UserError

# The backend's dependencies (MediaPipe 0.10.21) exist for Python 3.11 only. Blender 5.1+ itself runs
# Python 3.13, so an artist may well point the preferences at that interpreter by mistake.
REQUIRED_PYTHON = (3, 11)
VERSION_PROBE_TIMEOUT_S = 30.0
# No console window popping up next to Blender on Windows; a process group of its own there,
# so that it can be asked to stop cleanly (ask_to_stop).
_CREATION_FLAGS = getattr(subprocess, "CREATE_NO_WINDOW", 0) | getattr(subprocess, "CREATE_NEW_PROCESS_GROUP", 0)


def find_python(path: str) -> str:
    """The python executable of environment `path` (an absolute folder or the executable)."""
    if not path:
        raise UserError("Set the Python environment where `enliven` is installed in the add-on preferences")
    if os.path.isfile(path):
        return path
    candidates = ("bin/python3", "bin/python", "Scripts/python.exe", "python.exe", "python3", "python")
    for candidate in candidates:
        full = os.path.join(path, candidate)
        if os.path.isfile(full):
            return full
    raise UserError(f"No Python found in {path} (expected bin/python or Scripts/python.exe)")


def _clean_environment() -> dict[str, str]:
    # Blender's own Python settings must not leak into the backend's interpreter.
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONHOME", "PYTHONPATH")}
    env["PYTHONUNBUFFERED"] = "1"
    return env


def python_version_problem(python: str) -> str | None:
    """Why `python` cannot run the backend (not Python 3.11, or it does not run at all), or None.
    Runs the interpreter: call it off Blender's UI thread."""
    try:
        result = subprocess.run(
            [python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"], stdin=subprocess.DEVNULL,
            capture_output=True, text=True, timeout=VERSION_PROBE_TIMEOUT_S, env=_clean_environment(),
            creationflags=_CREATION_FLAGS)
    except OSError as error:
        return f"Cannot start {python}: {error.strerror or error}"
    except subprocess.TimeoutExpired:
        return f"{python} did not answer within {VERSION_PROBE_TIMEOUT_S:.0f} s"
    if result.returncode != 0:
        return f"{python} does not run (code {result.returncode}): {result.stderr.strip()[-300:]}"
    version = result.stdout.strip()
    required = "%d.%d" % REQUIRED_PYTHON
    if version != required:
        return f"The Enliven backend needs Python {required}; {python} is Python {version}"
    return None


class LocalBackend:
    """`enliven serve` as a child process, with its log kept for the artist."""

    LISTENING = re.compile(r"^listening on (\S+)\s*$")

    def __init__(self, python: str, port: int = 0):
        self.python = python
        self.log: deque[str] = deque(maxlen=1000)
        self.endpoint: str | None = None  # set once the server prints its address
        self.failure: str | None = None  # why it could not be started
        self.started = time.monotonic()
        self.proc: subprocess.Popen | None = None
        self._lock = threading.Lock()  # between starting the process and being asked to stop
        self._stop_asked = False
        # -P (Python 3.11): Blender's working folder is not put on sys.path. One holding a folder named enliven
        # (the repository cloned as ~/enliven, Blender started from ~; the temporary folder with the frames of
        # unsaved files) shadowed the editable install, and the backend exited with an ImportError.
        self._command = [python, "-P", "-m", "enliven.cli", "serve", "--bind", f"tcp://127.0.0.1:{port}"]
        self.log.append("$ " + " ".join(self._command))
        self._thread = threading.Thread(target=self._launch, name="enliven-backend-log", daemon=True)
        self._thread.start()

    def _launch(self) -> None:
        # Its own thread: the version check runs an interpreter and a pipe read blocks; neither may block Blender.
        problem = python_version_problem(self.python)
        if problem is not None:
            self.log.append(problem)
            self.failure = problem
            return
        with self._lock:
            if self._stop_asked:
                return
            try:
                self.proc = subprocess.Popen(
                    self._command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                    text=True, encoding="utf-8", errors="replace", bufsize=1, env=_clean_environment(),
                    creationflags=_CREATION_FLAGS)
            except OSError as error:
                self.failure = f"Cannot start {self.python}: {error.strerror or error}"
                return
        for line in self.proc.stdout:
            line = line.rstrip("\n")
            self.log.append(line)
            match = self.LISTENING.match(line)
            if match and self.endpoint is None:
                self.endpoint = match.group(1)

    @property
    def running(self) -> bool:
        """Starting or serving (not failed, exited or stopped)."""
        if self.failure is not None:
            return False
        if self.proc is None:
            return not self._stop_asked
        return self.proc.poll() is None

    @property
    def returncode(self) -> int | None:
        return self.proc.returncode if self.proc is not None else None

    def log_tail(self, lines: int = 8) -> str:
        return "\n".join(list(self.log)[-lines:])

    def last_log_line(self) -> str:
        """The log's last line that says something; of a process that has exited, once the log thread has read
        the rest of what it wrote (its why came after the exit was seen), waited for 0.2 s at most."""
        if self.proc is not None and self.proc.poll() is not None:
            self._thread.join(0.2)
        return next((line.strip() for line in reversed(list(self.log)) if line.strip()), "")

    def ask_to_stop(self) -> None:
        """The server finishes its replies, stops and saves a training run, and exits. SIGTERM; on Windows,
        where terminate() kills at once, a Ctrl+Break to its process group (the server handles SIGBREAK).
        Asked before the process exists, it is never started."""
        with self._lock:
            self._stop_asked = True
            proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        if os.name == "nt":
            proc.send_signal(signal.CTRL_BREAK_EVENT)
        else:
            proc.terminate()

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
        proc = self.proc
        if proc is None:
            return  # still checking the Python version: it will not start the server now
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5.0)
        self._thread.join(5.0)
        if proc.stdout is not None:
            proc.stdout.close()
