"""Whole frames of several faces rendered side by side in worker processes (`enliven generate --face`):
the frames are those one process renders, to the level, in every layer; a worker's error reaches the run
as the same clear error; a worker that dies ends the run with an error and the frames already written
stay; a stopped run leaves no worker behind.

The photo is made here: the public-domain astronaut's face pasted twice into one picture.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from enliven.analysis import analyze_faces
from enliven.errors import BadMotionError, EnlivenError
import enliven.frame_workers as frame_workers
from enliven.frame_workers import FrameRequest, FrameWorkers, worker_count, worker_memory
from enliven.group import GroupAnimator

from conftest import channel_values, write_rgb
from test_faces import two_faces

TURN = channel_values(head_yaw=18, jaw_open=0.5, blink_l=1, blink_r=1, breathing=1)
BLINK = channel_values(blink_l=1, blink_r=1, gaze_x=0.8)


@pytest.fixture(scope="module")
def touching_subjects(astronaut):
    """Two faces close enough that each head region holds part of the other face."""
    return analyze_faces(two_faces(astronaut, 130))


def test_workers_render_the_frames_one_process_renders_in_every_layer(touching_subjects):
    requests = [FrameRequest({0: TURN, 1: BLINK}),
                FrameRequest({0: BLINK, 1: TURN}, previous={0: TURN, 1: BLINK}, alpha=True, passes=True),
                FrameRequest({1: TURN}, alpha=True),
                FrameRequest({0: TURN, 1: TURN}, previous={0: BLINK}, passes=True)]
    group = GroupAnimator(touching_subjects)
    expected = [group.render_layers(r.values, r.previous, r.alpha, r.passes) for r in requests]
    with FrameWorkers(touching_subjects, count=2) as workers:
        frames = list(workers.render(iter(requests)))
    assert len(frames) == len(requests)
    for got, wanted in zip(frames, expected):
        assert np.array_equal(got.rgb, wanted.rgb)
        for name in ("alpha", "vector"):
            assert (getattr(got, name) is None) == (getattr(wanted, name) is None)
            if getattr(wanted, name) is not None:
                assert np.array_equal(getattr(got, name), getattr(wanted, name))
        assert (got.mattes or {}).keys() == (wanted.mattes or {}).keys()
        for key, matte in (wanted.mattes or {}).items():
            assert np.array_equal(got.mattes[key], matte)
    assert not np.array_equal(frames[0].rgb, frames[1].rgb)  # the faces did move, each its own way


def test_a_worker_s_error_is_the_run_s_error_of_the_same_kind(touching_subjects):
    with FrameWorkers(touching_subjects, count=2) as workers:
        frames = workers.render(iter([FrameRequest({0: TURN}), FrameRequest({5: TURN})]))
        assert next(frames).rgb.shape == touching_subjects[0].image.shape
        with pytest.raises(EnlivenError, match="No face 5 among the faces being animated"):
            next(frames)
        nan = TURN.copy()
        nan[3] = np.nan
        with pytest.raises(BadMotionError, match="finite") as raised:  # the exit code and wire code come along
            next(workers.render(iter([FrameRequest({0: nan, 1: BLINK})])))
        assert raised.value.exit_code == BadMotionError.exit_code and raised.value.code == BadMotionError.code


def test_a_worker_that_dies_as_it_starts_is_a_clear_error_not_a_hang(touching_subjects, monkeypatch):
    """A worker killed as it starts (out of memory while importing, say): the workers are handed the faces'
    plates next, and writing them to a dead worker once waited for ever (this process still held the
    pipe's other end)."""
    start = frame_workers.start_without_ctrl_c

    def start_then_die(process):
        start(process)
        os.kill(process.pid, signal.SIGKILL)
        process.join()

    monkeypatch.setattr(frame_workers, "start_without_ctrl_c", start_then_die)
    outcome = []

    def make_workers():
        try:
            FrameWorkers(touching_subjects, count=2).close()
        except EnlivenError as error:
            outcome.append(error)

    making = threading.Thread(target=make_workers, daemon=True)
    making.start()
    making.join(timeout=60)
    assert not making.is_alive(), "FrameWorkers hung on a dead worker"
    assert outcome and "worker process stopped" in str(outcome[0])


def test_workers_are_as_many_as_cores_and_half_the_free_memory_allow(touching_subjects, monkeypatch):
    monkeypatch.setattr(frame_workers, "usable_cores", lambda: 6)
    each = worker_memory(touching_subjects)
    monkeypatch.setattr(frame_workers, "available_memory", lambda: 100 * each)
    assert worker_count("warp", 100, touching_subjects) == 6
    assert worker_count("warp", 4, touching_subjects) == 1  # a few frames: not worth starting workers
    assert worker_count("refine", 100, touching_subjects) == 1
    monkeypatch.setattr(frame_workers, "available_memory", lambda: 6.5 * each)
    assert worker_count("warp", 100, touching_subjects) == 3
    monkeypatch.setattr(frame_workers, "available_memory", lambda: each)
    assert worker_count("warp", 100, touching_subjects) == 1
    assert worker_count("warp", 100, touching_subjects, asked=4) == 4  # --workers is the person's call


def workers_of(pid: int) -> list[int]:
    """The worker processes run `pid` spawned (not multiprocessing's resource tracker, its other child)."""
    workers = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parent = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            command = (stat.parent / "cmdline").read_bytes()
        except OSError:  # gone meanwhile
            continue
        if parent == pid and b"spawn_main" in command:
            workers.append(int(stat.parent.name))
    return workers


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


ON_PROC = pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="finds the workers in /proc (Linux)")


@ON_PROC
@pytest.mark.parametrize("stop", ["kill a worker", "SIGTERM the run"])
def test_a_run_whose_worker_dies_or_that_is_stopped_keeps_its_frames_and_leaves_no_worker(astronaut, tmp_path, stop):
    photo = write_rgb(tmp_path / "two.png", two_faces(astronaut, 300))
    out = tmp_path / "frames"
    # A minute of idle-alive: still rendering when it is stopped.
    process = subprocess.Popen([sys.executable, "-m", "enliven.cli", "generate", str(photo), "--face", "all",
                                "--preset", "idle-alive", "--duration", "60", "--workers", "2", "--out", str(out)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=dict(os.environ))
    deadline = time.monotonic() + 120
    while not (out / "frame_00010.png").exists() and time.monotonic() < deadline:
        assert process.poll() is None, process.stderr.read()
        time.sleep(0.02)
    workers = workers_of(process.pid)
    assert len(workers) == 2 and process.poll() is None, "the run never got to rendering in its workers"
    if stop == "kill a worker":
        os.kill(workers[0], signal.SIGKILL)
    else:
        process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=60)
    if stop == "kill a worker":
        assert process.returncode == 1
        assert "A rendering worker process stopped" in stderr and "Traceback" not in stderr
    else:
        assert process.returncode == 130
    assert (out / "frame_00010.png").exists()  # frames already written stay written
    assert len(list(out.glob("frame_*.png"))) < 1440
    deadline = time.monotonic() + 10
    while any(alive(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(alive(pid) for pid in workers)
