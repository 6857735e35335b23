"""Shared fixtures: the public-domain astronaut photo and its analysis, and a
client of the test module's own `server` fixture (a real `enliven serve`).

Analysis runs real MediaPipe models, so subjects are computed once per session.
"""
from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from enliven.analysis import ASTRONAUT_PATH, analyze_image
from enliven.images import load_image
from enliven.shared.channels import CHANNEL_INDEX, default_vector


@pytest.fixture()
def client(server):
    """A client of the `server` fixture that the test module defines (each module starts its own)."""
    from enliven.shared.client import Client

    with Client(server.address, timeout_s=10.0) as c:
        yield c


@pytest.fixture(scope="session")
def astronaut_path() -> Path:
    return ASTRONAUT_PATH


@pytest.fixture(scope="session")
def astronaut() -> np.ndarray:
    return load_image(ASTRONAUT_PATH)


@pytest.fixture(scope="session")
def subject(astronaut):
    return analyze_image(astronaut)


@pytest.fixture(scope="session")
def animator(subject):
    from enliven.animator import Animator

    return Animator(subject)


def channel_values(**channels: float) -> np.ndarray:
    """A full channel vector: defaults, with the named channels set."""
    values = default_vector().astype(np.float64)
    for name, value in channels.items():
        values[CHANNEL_INDEX[name]] = value
    return values


def write_rgb(path: Path, rgb: np.ndarray) -> Path:
    cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    return path


def run_enliven(*args: str, cwd: Path | None = None, largest_file: int | None = None) -> subprocess.CompletedProcess:
    """Run the real command line in a fresh process, as a person would. `largest_file`: the bytes a file it
    writes may grow to (RLIMIT_FSIZE); a write past them fails as on a full disk ("File too large", not "No
    space left on device": the same OSError to handle), without root or a small file system."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")

    def limit_file_size() -> None:  # (Python ignores SIGXFSZ, so a write past the limit is an OSError)
        import resource

        resource.setrlimit(resource.RLIMIT_FSIZE, (largest_file, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))

    return subprocess.run([sys.executable, "-m", "enliven.cli", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, env=env, timeout=300, preexec_fn=limit_file_size if largest_file else None)


@pytest.fixture(scope="module")
def one_torch_thread():
    """PyTorch on one thread for a module's tests: small networks run faster so, and tests in parallel
    processes do not fight over the cores."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@contextlib.contextmanager
def small_disk(folder, options: str):
    """A tmpfs mounted at `folder` with mount `options` (a full disk, a read-only one), or the test skipped
    where this machine does not let the tests mount one."""
    folder.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)], capture_output=True).returncode:
        pytest.skip("this machine does not let the tests mount a small disk")
    try:
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], capture_output=True)
