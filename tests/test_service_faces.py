"""Several faces through a real `enliven serve`: analyze lists every face, preview and generate name them."""
from __future__ import annotations

import time

import cv2
import numpy as np
import pytest

from enliven.shared.channels import CHANNEL_INDEX, CHANNEL_NAMES, default_vector
from enliven.shared.client import Client, RemoteError

from conftest import run_enliven
from service_helpers import ASTRONAUT, collect, serving, wait_for
from test_frame_workers import ON_PROC, alive, workers_of

N_CH = len(CHANNEL_NAMES)


@pytest.fixture(scope="module")
def server():
    with serving() as srv:
        yield srv


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    """The astronaut's face twice, side by side, the left one larger."""
    astronaut = cv2.cvtColor(cv2.imread(str(ASTRONAUT)), cv2.COLOR_BGR2RGB)
    face = astronaut[30:230, 125:325]
    canvas = np.full((260, 500, 3), 200, np.uint8)
    canvas[30:230, 0:200] = face
    canvas[40:220, 300:480] = cv2.resize(face, (180, 180), interpolation=cv2.INTER_AREA)
    return canvas


@pytest.fixture(scope="module")
def analysis(server, photo):
    with Client(server.address, timeout_s=10.0) as c:
        return c.wait(c.analyze(cv2.imencode(".png", photo[..., ::-1])[1].tobytes()), timeout_s=120).fields


def moved(**channels: float) -> np.ndarray:
    values = default_vector().astype(np.float32)
    for name, value in channels.items():
        values[CHANNEL_INDEX[name]] = value
    return values


def outside(region: list[int], image: np.ndarray) -> np.ndarray:
    x0, y0, x1, y1 = region
    image = image.copy()
    image[y0:y1, x0:x1] = 0
    return image


def test_analyze_lists_every_face_each_with_its_subject(analysis):
    faces = analysis["faces"]
    assert [face["face_index"] for face in faces] == [0, 1]
    assert faces[0]["subject"] == analysis["subject"] and faces[1]["subject"] != analysis["subject"]
    assert all(face["summary"]["faces_found"] == 2 for face in faces)


def test_preview_names_the_faces_and_moves_each_by_its_own_row(client, analysis, photo):
    still = client.wait(client.preview(np.stack([default_vector()] * 2), subject=analysis["subject"], faces=[0, 1]),
                        timeout_s=60).image()
    assert np.array_equal(still, photo)
    region_1 = analysis["faces"][1]["summary"]["head_region"]
    frame = client.wait(client.preview(np.stack([default_vector(), moved(head_yaw=15, blink_l=1)]),
                                       subject=analysis["subject"], faces=[0, 1]), timeout_s=60).image()
    changed = np.abs(frame.astype(int) - photo).max(axis=2)
    assert outside(region_1, changed).max() == 0 and changed.max() > 30
    # Named by the second face's own subject, in another order: the same frame.
    again = client.wait(client.preview(np.stack([moved(head_yaw=15, blink_l=1), default_vector()]),
                                       subject=analysis["faces"][1]["subject"], faces=[1, 0]), timeout_s=60).image()
    assert np.array_equal(again, frame)


def test_generate_streams_frames_of_every_named_face(client, analysis, photo):
    frames = 4
    motion = np.zeros((2, frames, N_CH), np.float32) + default_vector()
    motion[0, :, CHANNEL_INDEX["head_pitch"]] = np.linspace(0, 10, frames)
    motion[1, :, CHANNEL_INDEX["jaw_open"]] = np.linspace(0, 0.8, frames)
    events = collect(client, client.generate(motion, 24, subject=analysis["subject"], faces=[0, 1], format="raw"),
                     timeout_s=120)
    images = [event.image() for event in events if event.type == "frame"]
    assert len(images) == frames and events[-1].fields["status"] == "completed"
    assert np.array_equal(images[0], photo)
    for face in (0, 1):
        x0, y0, x1, y1 = analysis["faces"][face]["summary"]["head_region"]
        assert np.abs(images[-1][y0:y1, x0:x1].astype(int) - photo[y0:y1, x0:x1]).max() > 30


def test_a_preview_of_several_faces_with_alpha_cuts_out_each_person(client, analysis, photo):
    frame = client.wait(client.preview(np.stack([moved(head_yaw=15), moved(head_yaw=-15)]), subject=analysis["subject"],
                                       faces=[0, 1], alpha=True), timeout_s=60).image()
    assert frame.shape[2] == 4 and frame[5, 250, 3] == 0  # the backdrop between them is transparent
    for face in analysis["faces"]:
        x0, y0, x1, y1 = face["summary"]["head_region"]
        assert frame[(y0 + y1) // 2, (x0 + x1) // 2, 3] == 255


def test_cli_renders_several_faces_on_a_server_as_it_does_here(server, photo, tmp_path):
    path = tmp_path / "two.png"
    cv2.imwrite(str(path), photo[..., ::-1])
    here, there = tmp_path / "here", tmp_path / "there"
    # Nine frames: the server renders them in worker processes (frame_workers), here one process renders them.
    # Talk: each face's speech is fitted to its lips, there as the server's analysis gives them.
    for out, extra in ((here, ("--workers", "1")), (there, ("--server", server.address))):
        result = run_enliven("generate", path, "--face", "all", "--preset", "talk", "--duration", "1",
                             "--fps", "8", "--alpha", "--out", out, *extra)
        assert result.returncode == 0, result.stderr
    frames = sorted(p.name for p in here.iterdir())
    assert len(frames) == 9 and frames == sorted(p.name for p in there.iterdir())
    for name in frames:
        assert np.array_equal(cv2.imread(str(here / name), cv2.IMREAD_UNCHANGED),
                              cv2.imread(str(there / name), cv2.IMREAD_UNCHANGED)), name


def test_a_resumed_generate_of_several_faces_renders_only_the_missing_frames_as_they_were(client, analysis, tmp_path):
    """Twelve frames: rendered by worker processes, which take the frames not kept, in order."""
    frames = 12
    motion = np.zeros((2, frames, N_CH), np.float32) + default_vector()
    motion[0, :, CHANNEL_INDEX["head_yaw"]] = np.linspace(0, 15, frames)
    motion[1, :, CHANNEL_INDEX["jaw_open"]] = np.linspace(0, 0.8, frames)
    out = tmp_path / "frames"

    def generate(**extra):
        return collect(client, client.generate(motion, 24, subject=analysis["subject"], faces=[0, 1], format="none",
                                               output_dir=str(out), png_compression=0, **extra), timeout_s=120)

    assert generate()[-1].fields["rendered"] == frames
    names = sorted(p.name for p in out.iterdir())
    first = {name: cv2.imread(str(out / name)) for name in names}
    for name in (names[2], names[6], names[7]):
        (out / name).unlink()
    done = generate(resume=True)[-1].fields
    assert (done["rendered"], done["skipped"]) == (3, frames - 3)
    for name in names:
        assert np.array_equal(cv2.imread(str(out / name)), first[name]), name


@ON_PROC
def test_a_cancelled_generate_of_several_faces_stops_its_worker_processes(server, client, analysis, photo):
    motion = np.zeros((2, 2000, N_CH), np.float32) + default_vector()
    motion[0, :, CHANNEL_INDEX["head_yaw"]] = 10 * np.sin(np.arange(2000) / 10)
    job = client.generate(motion, 24, subject=analysis["subject"], faces=[0, 1], format="raw")
    seen = wait_for(client, job, lambda e: e.type == "frame" and e.fields["index"] >= 4, timeout_s=120)
    workers = workers_of(server.proc.pid)
    assert len(workers) == 2  # the frames come from two worker processes
    client.cancel(job)
    rest = collect(client, job, timeout_s=30)
    assert rest[-1].fields["status"] == "cancelled" and rest[-1].fields["frames"] < 2000
    indices = [e.fields["index"] for e in seen + rest if e.type == "frame"]
    assert indices == list(range(len(indices)))  # in order, no gaps
    deadline = time.monotonic() + 10
    while any(alive(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(alive(pid) for pid in workers)
    # The server goes on serving.
    frame = client.wait(client.preview(np.stack([moved(head_yaw=15), moved()]), subject=analysis["subject"],
                                       faces=[0, 1]), timeout_s=60).image()
    assert frame.shape == photo.shape


def test_requests_for_several_faces_that_cannot_be_served_are_refused(client, analysis):
    subject = analysis["subject"]
    with pytest.raises(RemoteError) as error:
        client.wait(client.generate(np.zeros((3, N_CH), np.float32) + default_vector(), 24, subject=subject,
                                    faces=[0, 1]), timeout_s=30)
    assert error.value.code == "bad_motion" and "2 groups" in error.value.message
    with pytest.raises(RemoteError) as error:
        client.wait(client.preview(np.stack([default_vector()] * 2), subject=subject, faces=[0, 7]), timeout_s=60)
    assert error.value.code == "no_face"


def test_the_subject_cache_counts_a_group_photo_once_whichever_faces_are_cached(photo):
    """Its memory bound holds for group photos: the photo's pixels count once while any face of it is
    cached, whether the faces came one by one or all at once (they once counted nowhere)."""
    from enliven.analysis import analyze_image
    from enliven.service.subjects import Engines, subject_nbytes
    from enliven.shared.protocol import Limits

    engines = Engines(Limits(), "warp")
    first = analyze_image(photo)
    engines._remember([first])
    everyone = engines.faces_of(first, None)
    assert len(everyone) == 2 and engines.subjects_cached == 2
    own = sum(subject_nbytes(face) - face.image.nbytes for face in everyone)
    assert engines.subject_cache_bytes == own + photo.nbytes
