"""Fixtures for the Blender add-on tests: the real `bpy` module, the real
extension zip installed the way an artist installs it, and a real
`enliven serve` subprocess.

These tests run in a bpy environment (scripts/setup_blender.sh makes
.venv-blender-4.5 and .venv-blender-5.3, and 4.2 / 5.0 / 5.1 / 5.2 on request;
scripts/test_blender.sh runs them).
That environment has no backend dependencies, so nothing here imports
tests/conftest.py or the `enliven` package: the backend runs as a subprocess
of the backend environment's Python, ENLIVEN_BACKEND_PYTHON (default
<repo>/.venv/bin/python).

In the backend environment (the main test run) bpy is missing and this
folder is skipped.

Timers never fire in the bpy module, so `pump()` calls the add-on's timer
callback itself, exactly as Blender would, until a condition holds.
"""
from __future__ import annotations

import atexit
import contextlib
import importlib.util
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ASTRONAUT = ROOT / "backend" / "assets" / "astronaut.png"
ADDON_MODULE = "bl_ext.user_default.enliven"

if importlib.util.find_spec("bpy") is None:
    collect_ignore_glob = ["test_*.py"]
else:
    # Blender's user folders (preferences, installed extensions) go to a
    # throwaway place, never the developer's own ~/.config/blender. This must
    # happen before bpy is imported.
    _USER = tempfile.mkdtemp(prefix="enliven-blender-user-")
    os.environ["BLENDER_USER_RESOURCES"] = _USER
    atexit.register(shutil.rmtree, _USER, ignore_errors=True)


def pytest_configure(config) -> None:
    # A deprecation warning raised by the add-on's own code (Blender warns
    # from the Python line that touches a deprecated property, e.g. 5.3's
    # `Strip.frame_final_start`, going in 6.0) fails the test that caused it.
    config.addinivalue_line("filterwarnings", r"error::DeprecationWarning:bl_ext\.user_default\.enliven(\..*)?$")


def backend_python() -> str:
    return os.environ.get("ENLIVEN_BACKEND_PYTHON") or str(ROOT / ".venv" / "bin" / "python")


def blender_platform() -> str:
    machine = platform.machine().lower()
    arch = "arm64" if machine in ("arm64", "aarch64") else "x64"
    system = {"darwin": "macos", "win32": "windows"}.get(sys.platform, "linux")
    return f"{system}-{arch}"


def pump(condition, timeout: float = 30.0, what: str = "condition") -> None:
    """Run the add-on's timer callback until `condition()` is true."""
    connection = sys.modules[ADDON_MODULE + ".connection"]
    deadline = time.monotonic() + timeout
    while True:
        interval = connection.poll()
        if condition():
            return
        if time.monotonic() > deadline:
            runtime = connection.RUNTIME
            logs = "".join(f"\n--- backend log ({b.address}):\n{b.log_tail()}" for b in _LIVE_BACKENDS)
            raise AssertionError(f"timed out after {timeout} s waiting for {what}; state={runtime.state} "
                                 f"message={runtime.message!r} last_error={runtime.last_error!r} "
                                 f"rig_status={runtime.rig_status}{logs}")
        time.sleep(min(interval, 0.01))


_LIVE_BACKENDS: list = []


class Backend:
    """`enliven serve` on a free loopback port, from the backend environment.
    Its log goes to a file whose tail appears in timeout messages."""

    def __init__(self, *extra: str, bind: str = "tcp://127.0.0.1:0") -> None:
        python = backend_python()
        if not os.path.isfile(python):
            raise RuntimeError(f"no backend Python at {python}: run scripts/setup.sh or set ENLIVEN_BACKEND_PYTHON")
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "BLENDER_USER_RESOURCES")}
        self.log = tempfile.NamedTemporaryFile(prefix="enliven-backend-", suffix=".log", delete=False)
        self.proc = subprocess.Popen(
            [python, "-m", "enliven.cli", "serve", "--bind", bind, *extra],
            stdout=subprocess.PIPE, stderr=self.log, text=True, env=env)
        line = self.proc.stdout.readline()
        if not line.startswith("listening on "):
            self.proc.kill()
            self.proc.wait()
            raise RuntimeError(f"the backend did not start: {line!r}\n{self.log_tail()}")
        self.address = line.split()[-1]
        _LIVE_BACKENDS.append(self)

    def log_tail(self, lines: int = 15) -> str:
        with open(self.log.name, encoding="utf-8", errors="replace") as fh:
            return "".join(fh.readlines()[-lines:])

    def stop(self) -> None:
        if self in _LIVE_BACKENDS:
            _LIVE_BACKENDS.remove(self)
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc.stdout.close()
        self.log.close()
        if os.path.exists(self.log.name):
            os.unlink(self.log.name)


@pytest.fixture(scope="session")
def extension_zip(tmp_path_factory) -> Path:
    """The zip `build.py` makes for this machine's platform (wheels cached in build/)."""
    out = tmp_path_factory.mktemp("dist")
    result = subprocess.run([sys.executable, str(ROOT / "build.py"), "--platform", blender_platform(),
                             "--out", str(out), "--check"], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    (zip_path,) = out.glob("*.zip")
    return zip_path


@pytest.fixture(scope="session")
def addon(extension_zip):
    """The add-on module, installed from the zip with Blender's own
    "Install from Disk" operator and enabled."""
    import bpy

    result = bpy.ops.extensions.package_install_files(
        filepath=str(extension_zip), repo="user_default", enable_on_install=True)
    assert result == {'FINISHED'}
    module = sys.modules[ADDON_MODULE]
    yield module
    import addon_utils

    addon_utils.disable(ADDON_MODULE, default_set=True)


@pytest.fixture(scope="session")
def backend():
    server = Backend()
    yield server
    server.stop()


@pytest.fixture
def scene(addon):
    """A fresh, empty file with the add-on enabled, saved nowhere."""
    import bpy

    connection = sys.modules[ADDON_MODULE + ".connection"]
    job = connection.RUNTIME.generate
    if job is not None and job.active:
        connection.RUNTIME.cancel_generate()
        pump(lambda: not job.active, 30, "the previous generate to stop")
    bpy.ops.wm.read_homefile(use_empty=True)
    return bpy.context.scene


@pytest.fixture
def prefs(addon):
    import bpy

    return bpy.context.preferences.addons[ADDON_MODULE].preferences


@pytest.fixture
def connected(addon, backend, prefs, scene):
    """The add-on connected to the session's backend."""
    connection = sys.modules[ADDON_MODULE + ".connection"]
    prefs.mode = 'CONNECT'
    prefs.timeout = 10.0
    prefs.address = backend.address
    runtime = connection.RUNTIME
    runtime.connect(force=True)
    pump(lambda: runtime.state in ("CONNECTED", "ERROR"), 20, "the connection")
    assert runtime.state == "CONNECTED", runtime.message
    return runtime


@pytest.fixture
def portrait(addon, scene):
    """A portrait rig for the astronaut photo."""
    import bpy

    assert bpy.ops.enliven.add_portrait(filepath=str(ASTRONAUT)) == {'FINISHED'}
    return bpy.context.scene.enliven.rig


def image_channels(path):
    """An image file's channels as Blender reads them: (H, W, C) float32, top row first (linear for float
    files, 0..1 sRGB values for 8-bit ones)."""
    import bpy
    import numpy as np

    image = bpy.data.images.load(str(path), check_existing=False)
    try:
        width, height = image.size
        buffer = np.empty(width * height * image.channels, dtype=np.float32)
        image.pixels.foreach_get(buffer)
        return buffer.reshape(height, width, image.channels)[::-1]
    finally:
        bpy.data.images.remove(image)


def image_pixels(path):
    """An image file's pixels as (H, W, 3) uint8, top row first, read by Blender."""
    import numpy as np

    return np.round(image_channels(path)[..., :3] * 255.0).astype(np.uint8)


def animate(obj, first: int = 1, last: int = 6) -> None:
    """Linear keys that make every frame of first..last different: the jaw
    opens and the head turns."""
    compat = sys.modules[ADDON_MODULE + ".compat"]
    obj.enliven.use_custom_range = True
    obj.enliven.frame_start, obj.enliven.frame_end = first, last
    for name, start, end in (("jaw_open", 0.0, 0.8), ("head_yaw", 0.0, 0.2)):  # head_yaw in radians
        setattr(obj.enliven, name, start)
        obj.keyframe_insert(f"enliven.{name}", frame=first)
        setattr(obj.enliven, name, end)
        obj.keyframe_insert(f"enliven.{name}", frame=last)
        for fc in compat.fcurves_by_path(obj, f"enliven.{name}").values():
            for point in fc.keyframe_points:
                point.interpolation = 'LINEAR'


@contextlib.contextmanager
def local_backend(prefs, timeout: float = 10.0):
    """The add-on connected to a local backend it started itself; disconnected (back to Connect) after."""
    import bpy

    runtime = sys.modules[ADDON_MODULE + ".connection"].RUNTIME
    runtime.disconnect()
    prefs.mode, prefs.timeout, prefs.python_env = 'LOCAL', timeout, backend_python()
    try:
        assert bpy.ops.enliven.connect() == {'FINISHED'}
        pump(lambda: runtime.state in ("CONNECTED", "ERROR"), 60, "the local backend")
        assert runtime.state == "CONNECTED", runtime.message
        yield runtime
    finally:
        runtime.disconnect()
        prefs.mode = 'CONNECT'


def in_window(operator, **properties):
    """Run `operator` as from Blender's window (undo and redo need one; the timer has none of its own)."""
    import bpy

    with bpy.context.temp_override(window=bpy.context.window_manager.windows[0]):
        return operator(**properties)


def undo_step(name: str) -> None:
    """Record an undo step, as Blender does after each operator an artist runs (background Blender records
    none unless asked: the first one asked starts its undo history)."""
    import bpy

    in_window(bpy.ops.ed.undo_push, message=name)


def generate(timeout: float = 120.0):
    """Press Generate and run the timer until the job ends; returns the job."""
    import bpy

    runtime = sys.modules[ADDON_MODULE + ".connection"].RUNTIME
    assert bpy.ops.enliven.generate() == {'FINISHED'}
    job = runtime.generate
    pump(lambda: not job.active, timeout, "generate to finish")
    return job
