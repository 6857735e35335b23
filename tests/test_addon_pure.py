"""The add-on's logic that needs no Blender - frame cache, states, the local
backend launcher, the session, the subject cache and the job state machines -
run here in the backend environment against a real `enliven serve` over real
ZeroMQ.

How the add-on's modules are imported without bpy: the add-on package's own
`__init__.py` imports bpy (it registers classes), so it must not run. A bare
package module named PACKAGE, whose __path__ is addon/, is put in sys.modules
first; importing PACKAGE.frame_cache and friends then finds the files in
addon/ without executing addon/__init__.py. Their `from .shared import ...`
resolves to PACKAGE.shared, a second bare package whose __path__ is shared/:
the same source build.py vendors into the extension as its `shared`
subpackage, loaded apart from `enliven.shared` so that the backend's own
modules (and their exception classes) stay untouched. The modules loaded this
way import only the standard library, numpy, pyzmq, `.shared` and each other;
a module that imports bpy would fail here, which is the point.
"""
from __future__ import annotations

import importlib
import json
import os
import shutil
import sys
import time
import types
from pathlib import Path

import numpy as np
import pytest

from service_helpers import ASTRONAUT, motion, serving

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "enliven_addon_without_bpy"


def _addon_module(name: str) -> types.ModuleType:
    if PACKAGE not in sys.modules:
        for package_name, folder in ((PACKAGE, "addon"), (PACKAGE + ".shared", "shared")):
            package = types.ModuleType(package_name)
            package.__path__ = [str(ROOT / folder)]
            sys.modules[package_name] = package
    return importlib.import_module(f"{PACKAGE}.{name}")


frame_cache = _addon_module("frame_cache")
states = _addon_module("states")
local_backend = _addon_module("local_backend")
session_module = _addon_module("session")
jobs = _addon_module("jobs")
subjects_module = _addon_module("subjects")
generate_job = _addon_module("generate_job")
preview_job = _addon_module("preview_job")
bake_job = _addon_module("bake_job")
training_job = _addon_module("training_job")
Event = importlib.import_module(PACKAGE + ".shared.client").Event
JobState = states.JobState


def test_no_addon_module_loaded_here_imports_bpy():
    assert "bpy" not in sys.modules
    assert not hasattr(sys.modules[PACKAGE], "register")  # addon/__init__.py never ran
    import enliven.shared.protocol

    assert states.protocol is not enliven.shared.protocol  # the backend's own copy is left alone


# --------------------------------------------------------------------------- states


def test_states_are_the_strings_the_panel_and_tests_compare():
    assert JobState.DONE == "DONE" and f"{JobState.FAILED}" == "FAILED"
    assert states.ConnectionState.CONNECTED == "CONNECTED"
    assert json.dumps({"state": JobState.RUNNING}) == '{"state": "RUNNING"}'
    assert {s.value for s in states.ACTIVE_STATES} == {"PREPARING", "RUNNING", "FINISHING", "STOPPING"}


def test_error_descriptions():
    assert states.describe_error("timeout", "no reply").startswith("Backend not reachable")
    no_face = "No face found in the photo. Use a photo where one face is clearly visible."
    assert states.describe_error("no_face", no_face) == no_face  # said once, not prefixed with itself
    assert states.describe_error("no_face", "").startswith("No face found")
    assert states.describe_error("server_restarted", "x").startswith("The backend lost the job")
    assert states.describe_error("odd", "text") == "text [odd]"
    assert states.describe_error(None, "") == "The backend reported an error [error]"


# --------------------------------------------------------------------------- frame cache


def test_frame_keys_ignore_float_noise_and_see_everything_else():
    row = np.linspace(-1, 1, 20).astype(np.float32)
    key = frame_cache.frame_key("photo", "warp", 0, row)
    assert frame_cache.frame_key("photo", "warp", 0, row + 1e-7) == key
    assert frame_cache.frame_key("photo", "warp", 0, row + 1e-3) != key
    assert frame_cache.frame_key("photo", "warp", 1, row) != key
    assert frame_cache.frame_key("photo", "refine", 0, row) != key
    assert frame_cache.frame_key("other", "warp", 0, row) != key
    assert frame_cache.frame_filename(7) == "frame_00007.png"


def test_cache_file_round_trip_and_foreign_files(tmp_path):
    assert frame_cache.load_cache(str(tmp_path)) == {}
    frame_cache.save_cache(str(tmp_path), {"frame_00001.png": "abc"})
    assert frame_cache.load_cache(str(tmp_path)) == {"frame_00001.png": "abc"}
    assert [p.name for p in tmp_path.iterdir()] == [frame_cache.CACHE_FILE]  # no temporary left behind
    (tmp_path / frame_cache.CACHE_FILE).write_text('{"format": "something else", "frames": {"a": "b"}}')
    assert frame_cache.load_cache(str(tmp_path)) == {}
    (tmp_path / frame_cache.CACHE_FILE).write_text('{"format": "enliven-frame-c')  # cut short
    assert frame_cache.load_cache(str(tmp_path)) == {}


def test_frames_to_render(tmp_path):
    frames, keys = [1, 2, 3], ["k1", "k2", "k3"]
    for frame in frames:
        frame_cache.write_atomic(str(tmp_path / frame_cache.frame_filename(frame)), b"png")
    cache = {frame_cache.frame_filename(1): "k1", frame_cache.frame_filename(2): "old"}
    assert frame_cache.frames_to_render(str(tmp_path), frames, keys, cache) == [1, 2]
    os.unlink(tmp_path / frame_cache.frame_filename(1))
    assert frame_cache.frames_to_render(str(tmp_path), frames, keys, cache) == [0, 1, 2]
    cache[frame_cache.frame_filename(1)] = "k1"
    frame_cache.write_atomic(str(tmp_path / frame_cache.frame_filename(1)), b"png")
    assert frame_cache.frames_to_render(str(tmp_path), frames, keys, cache, reusable=False) == [0, 1, 2]


def test_engine_keys_follow_the_model_file(tmp_path):
    model = tmp_path / "last.pt"
    assert frame_cache.engine_key("warp", None) == "warp"
    assert frame_cache.engine_key("refine", str(model)).endswith(":unseen")
    assert not frame_cache.frames_reusable("refine", str(model))
    model.write_bytes(b"1")
    first = frame_cache.engine_key("refine", str(model))
    os.utime(model, ns=(1, 10**18))
    assert frame_cache.engine_key("refine", str(model)) != first
    assert frame_cache.frames_reusable("refine", str(model))
    assert frame_cache.frames_reusable("warp", None) and not frame_cache.frames_reusable("refine", None)


# --------------------------------------------------------------------------- the local backend


def _other_python() -> str | None:
    """A Python that is not 3.11, to point the preferences at by mistake."""
    for candidate in ("/root/.pyenv/versions/3.13.0/bin/python3.13", shutil.which("python3.13"),
                      shutil.which("python3.12"), shutil.which("python3.10")):
        if candidate and os.path.isfile(candidate):
            return candidate
    return None


def test_find_python(tmp_path):
    with pytest.raises(states.UserError, match="Set the Python environment"):
        local_backend.find_python("")
    with pytest.raises(states.UserError, match="No Python found"):
        local_backend.find_python(str(tmp_path))
    assert local_backend.find_python(sys.executable) == sys.executable
    venv = Path(sys.executable).parents[1]
    assert os.path.isfile(local_backend.find_python(str(venv)))


def test_the_backend_python_version_is_checked():
    assert local_backend.python_version_problem(sys.executable) is None  # this environment is the backend's
    other = _other_python()
    if other is None:
        pytest.skip("no Python other than 3.11 on this machine")
    problem = local_backend.python_version_problem(other)
    assert problem.startswith(f"The Enliven backend needs Python 3.11; {other} is Python 3.")
    backend = local_backend.LocalBackend(other)  # returns at once: the check runs on its own thread
    deadline = time.monotonic() + 30
    while backend.failure is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert backend.failure == problem and not backend.running and backend.proc is None
    backend.stop()


# --------------------------------------------------------------------------- session, subjects and jobs


@pytest.fixture(scope="module")
def server():
    with serving() as srv:
        yield srv


class Harness:
    """The pieces the runtime joins, without Blender: a real session, the subject cache and a job host."""

    def __init__(self, address: str):
        self.reports: list[tuple[str, str]] = []
        self.shown: list[np.ndarray] = []
        self.host = jobs.JobHost(lambda level, text: self.reports.append((level, text)))
        settings = session_module.ConnectionSettings(address=address, timeout=10.0)
        self.session = session_module.Session(lambda: settings, self.host.notify, wake=lambda: None,
                                              on_connected=self.host.clear_error)
        self.subjects = subjects_module.SubjectCache(self.session, self.host.rig_status, self.host.notify)
        self.host.session, self.host.subjects = self.session, self.subjects
        self.host.show_preview = self.shown.append
        self.jobs: list = []

    def start(self, job):
        self.jobs.append(job)
        job.start(self.host)
        return job

    def pump(self, condition, timeout_s: float = 60.0) -> None:
        """What the add-on's timer does, until `condition()` holds."""
        deadline = time.monotonic() + timeout_s
        while not condition():
            assert time.monotonic() < deadline, f"timed out; state={self.session.state} {self.reports}"
            self.session.tick()
            for job in self.jobs:
                job.tick()
            time.sleep(0.005)

    def close(self) -> None:
        self.session.close()
        self.host.shutdown()


@pytest.fixture
def harness(server):
    h = Harness(server.address)
    yield h
    h.close()


def _generate(harness, out_dir, values, photo):
    return harness.start(generate_job.GenerateJob(
        rig="Portrait", scene="Scene", out_dir=str(out_dir), frames=list(range(1, len(values) + 1)),
        motion=values, fps=24.0, photo_data=photo, photo_digest="astronaut", face_index=0))


def test_session_connects_and_generate_keeps_unchanged_frames(harness, tmp_path):
    photo = ASTRONAUT.read_bytes()
    harness.session.connect()
    harness.pump(lambda: harness.session.state != "CONNECTING")
    assert harness.session.state == "CONNECTED" and "warp" in harness.session.server_info["engines"]

    values = motion(3)
    job = _generate(harness, tmp_path, values, photo)
    assert job.state == "PREPARING"
    harness.pump(lambda: not job.active)
    assert job.state == "DONE", job.message
    assert job.rendered == 3 and job.written == 3 and job.progress == 1.0
    assert sorted(p.name for p in tmp_path.glob("frame_*.png")) == [f"frame_0000{i}.png" for i in (1, 2, 3)]
    assert len(frame_cache.load_cache(str(tmp_path))) == 3
    assert harness.host.rig_status["Portrait"] == ('INFO', job.message)
    assert ('INFO', job.message) in harness.reports

    again = _generate(harness, tmp_path, values, photo)  # nothing changed: nothing is sent
    harness.pump(lambda: not again.active)
    assert again.state == "DONE" and again.rendered == 0 and "up to date" in again.message

    changed = values.copy()
    changed[1] += 0.1
    partly = _generate(harness, tmp_path, changed, photo)
    harness.pump(lambda: not partly.active)
    assert partly.state == "DONE" and partly.rendered == 1 and partly.cached == 2


def test_generate_cancelled_before_it_is_sent(harness, tmp_path):
    job = _generate(harness, tmp_path, motion(2), ASTRONAUT.read_bytes())
    assert job.cancel()
    assert job.state == "CANCELLED" and job.message == "Cancelled" and not job.cancel()
    assert not list(tmp_path.glob("frame_*.png"))


def test_preview_newest_wins(harness):
    requested = []
    preview = harness.start(preview_job.PreviewJob(request_again=lambda: requested.append(True)))
    photo, values = ASTRONAUT.read_bytes(), motion(1)[0]
    key = ("Portrait", "astronaut.png", "warp", 0)
    assert preview.wanted(key, values)
    preview.send_preview(key, values, "Portrait", photo, "astronaut", "warp", 0, None)
    assert preview.active and not preview.wanted(key, values) and not preview.again
    assert not preview.wanted(key, values + 0.1) and preview.again  # folded into one follow-up
    harness.pump(lambda: not preview.active)
    assert preview.updates == 1 and harness.shown[0].ndim == 3 and preview.latency_ms > 0
    assert requested == [True]  # the follow-up with the newest values
    assert not preview.wanted(key, values)  # that pose is shown already
    preview.show_again()
    assert preview.wanted(key, values)


def test_the_subject_is_analysed_again_once(harness):
    cache = harness.subjects
    cache.subjects = {("photo", 0): "s1", ("photo", 1): "s2", ("other", 0): "s3"}
    assert not cache.reanalyse_once("no_face", "photo", already_retried=False)
    assert not cache.reanalyse_once("unknown_subject", "photo", already_retried=True)
    assert cache.subjects == {("photo", 0): "s1", ("photo", 1): "s2", ("other", 0): "s3"}
    for code in ("unknown_subject", "lost", "server_restarted"):
        cache.subjects[("photo", 0)] = "s1"
        assert cache.reanalyse_once(code, "photo", already_retried=False)
        assert cache.subjects == {("other", 0): "s3"}


def _event(kind: str, job: str = "j1", end: bool = False, **fields) -> Event:
    return Event(kind, job, fields, end=end)


def test_bake_state_machine(harness):
    keyed = []

    def key_motion(job, event):
        keyed.append(event.fields["frames"])
        return f"{job.title}: keyed"

    harness.host.key_motion = key_motion
    settings = bake_job.BakeSettings(frame=1)
    job = bake_job.BakeJob("Lip-sync", "Portrait", "Scene", settings, lambda client: "never sent")
    job.host = harness.host  # not started: the events alone drive it
    job.on_event(_event("progress", stage="analysing", done=5, total=10))
    assert job.progress == 0.5 and job.message == "Lip-sync: analysing 5/10"
    job.on_event(_event("motion", frames=12))
    assert job.state == "DONE" and job.message == "Lip-sync: keyed" and keyed == [12] and job.progress == 1.0

    failing = bake_job.BakeJob("Capture", "Portrait", "Scene", settings, lambda client: "never sent")
    failing.host = harness.host
    harness.host.key_motion = jobs._cannot_key
    failing.on_event(_event("motion"))
    assert failing.state == "FAILED" and failing.message.startswith("Capture: motion can only be keyed")
    assert harness.host.last_error == failing.message

    late = bake_job.BakeJob("Say", "Portrait", "Scene", settings, lambda client: "never sent")
    late.host, late.cancel_requested = harness.host, True
    late.on_event(_event("motion"))  # finished before the cancel arrived: no keys
    assert late.state == "CANCELLED"


def test_training_state_machine(harness):
    job = training_job.TrainingJob(run_dir="/runs/a")
    job.host = harness.host
    job.on_event(_event("progress", stage="preparing"))
    assert job.state == "PREPARING" and job.message == "Training: loading the dataset…"
    job.on_event(_event("progress", stage="training", done=3, total=10, losses={"l1": 0.5}))
    assert job.state == "RUNNING" and job.progress == 0.3 and job.losses == {"l1": 0.5}
    assert job.cancel() and job.state == "STOPPING"
    job.on_event(_event("progress", stage="training", done=4, total=10))
    assert job.state == "STOPPING" and job.step == 4  # still saving: the message stays
    job.on_event(_event("done", end=True, status="stopped", step=4, checkpoint="/runs/a/last.pt"))
    assert job.state == "STOPPED" and job.checkpoint == "/runs/a/last.pt" and not job.active
    assert harness.reports[-1] == ('WARNING', job.message)

    watching = training_job.TrainingJob(run_dir="/runs/b")
    watching.host = harness.host
    watching.on_event(_event("progress", stage="watching", done=7, total=9))
    assert watching.state == "RUNNING" and watching.saves_on_stop
    watching.on_disconnect(stopped_local=False)
    assert watching.state == "STOPPED" and watching.message.startswith("Training goes on in the backend")


def test_remove_empty_folders_goes_up_to_the_folders_make_folder_made(tmp_path):
    frame_cache = _addon_module("frame_cache")
    (tmp_path / "mine").mkdir()
    top = frame_cache.make_folder(str(tmp_path / "mine" / "a" / "b"))
    assert top == str(tmp_path / "mine" / "a")
    frame_cache.remove_empty_folders(str(tmp_path / "mine" / "a" / "b"), top)
    assert (tmp_path / "mine").is_dir() and not (tmp_path / "mine" / "a").exists()
    assert frame_cache.make_folder(str(tmp_path / "mine")) is None
    top = frame_cache.make_folder(str(tmp_path / "mine" / "c" / "d"))
    (tmp_path / "mine" / "c" / "keep.txt").write_text("x")
    frame_cache.remove_empty_folders(str(tmp_path / "mine" / "c" / "d"), top)
    assert (tmp_path / "mine" / "c" / "keep.txt").exists() and not (tmp_path / "mine" / "c" / "d").exists()
