"""Compositor-grade output: the person's alpha, the mattes, the motion vectors,
multilayer OpenEXR and RGBA PNG frames, through the engine, the command line
and a real `enliven serve`."""
from __future__ import annotations

import io

import cv2
import numpy as np
import pytest
from PIL import Image

from conftest import channel_values, run_enliven
from enliven import landmarks as lm
from enliven.engines.passes_math import SRGB_TO_LINEAR, blender_vector_pass, face_mattes, soft_polygons
from enliven.frame_formats import encode_frame, read_exr, rgba_pixels
from enliven.png import BandCache, encode_png
from enliven.shared.naming import EXR_LAYER, EXR_MATTES
from enliven.shared.client import Client
from service_helpers import astronaut_bytes, collect, motion, serving

NOSE_TIP = 1  # MediaPipe face mesh: the tip of the nose
MOVES = [channel_values(head_yaw=20, jaw_open=0.6), channel_values(head_x=0.2, head_pitch=-10, blink_l=1.0),
         channel_values(head_roll=15, smile_l=1, gaze_x=0.8)]


@pytest.fixture(scope="module")
def server():
    with serving() as srv:
        yield srv


def far_from_person(subject) -> tuple[int, int]:
    """A pixel well away from the astronaut: the top-left corner of the photo (the backdrop)."""
    return 4, 4


@pytest.mark.parametrize("values", MOVES)
def test_alpha_is_one_on_the_face_and_zero_far_away(animator, subject, values):
    layers = animator.render_layers(values, alpha=True)
    assert layers.alpha.shape == layers.rgb.shape[:2] and layers.alpha.dtype == np.float32
    assert 0.0 <= layers.alpha.min() and layers.alpha.max() <= 1.0
    moved = animator.render_layers(values, passes=True)
    # The face's inside (the matte less a rim: where a turned jaw's outline meets the hair, the warp shows
    # the layer behind it for a pixel or two).
    rim = max(1, round(0.04 * subject.face_width))
    face = cv2.erode((moved.mattes["face"] > 0.99).astype(np.uint8), np.ones((2 * rim + 1,) * 2, np.uint8)) > 0
    assert face.sum() > 1000 and layers.alpha[face].min() > 0.99
    assert layers.alpha[far_from_person(subject)] < 0.01


def test_uncovered_background_is_transparent_not_inpainted(animator, subject):
    """A head moved sideways uncovers backdrop where its hair was: alpha 0 there, and the colour is the
    cut-out, not the background plate the opaque frame shows."""
    values = channel_values(head_x=0.5)
    opaque = animator.render_layers(values)
    cut = animator.render_layers(values, alpha=True)
    still = animator.render_layers(channel_values(), alpha=True)
    uncovered = (still.alpha > 0.99) & (cut.alpha < 0.01)
    assert uncovered.sum() > 200
    assert not np.array_equal(opaque.rgb[uncovered], cut.rgb[uncovered])


def test_still_frame_equals_the_photo_in_png_and_in_linear_exr(animator, astronaut):
    still = animator.render_layers(channel_values(), alpha=True, passes=True)
    png = np.asarray(Image.open(io.BytesIO(encode_frame(still, "png"))))
    assert png.shape[2] == 4 and np.array_equal(png[..., :3], astronaut)
    opaque = animator.render_layers(channel_values(), passes=True)  # without alpha: Combined.A is 1
    assert opaque.alpha is None and opaque.mattes["person"][4, 4] < 0.01
    channels = read_exr(encode_frame(opaque, "exr"))
    linear = np.dstack([channels[f"{EXR_LAYER}.Combined.{c}"] for c in "RGB"]).astype(np.float32)
    assert np.abs(linear - SRGB_TO_LINEAR[astronaut]).max() <= 1e-3 * SRGB_TO_LINEAR[astronaut].max() + 1e-4
    assert (channels[f"{EXR_LAYER}.Combined.A"] == 1).all()
    assert np.abs(channels[f"{EXR_LAYER}.Vector.X"]).max() == 0  # no previous frame: no motion


def test_vector_pass_of_a_pure_head_shift_is_the_shift(animator, subject):
    shift = 0.2 * subject.face_width  # head_x is in face widths
    layers = animator.render_layers(channel_values(head_x=0.2), previous=channel_values(), passes=True)
    face = layers.mattes["face"] > 0.99
    # Blender's layout: X, Y = previous position minus this one (y up); Z, W the same, continued.
    assert np.allclose(layers.vector[face][:, 0], -shift, atol=0.05 * shift)
    assert np.abs(layers.vector[face][:, 1]).max() < 0.05 * shift
    assert np.array_equal(layers.vector[..., :2], layers.vector[..., 2:])
    assert np.abs(layers.vector[4:40, 4:40]).max() == 0  # the backdrop does not move
    back = animator.render_layers(channel_values(), previous=channel_values(head_x=0.2), passes=True)
    nose = np.round(subject.landmarks[NOSE_TIP, :2]).astype(int)
    assert back.vector[nose[1], nose[0], 0] == pytest.approx(shift, rel=0.05)


def test_blender_vector_layout_flips_y_up():
    motion = np.array([[[3.0, 2.0]]], np.float32)  # moved 3 right, 2 down
    assert blender_vector_pass(motion).tolist() == [[[-3.0, 2.0, -3.0, 2.0]]]


@pytest.mark.parametrize("values", [channel_values(), *MOVES])
def test_mattes_align_with_the_landmarks(animator, values):
    layers = animator.render_layers(values, passes=True)
    points = layers and animator.engine.target_points(values)[0][:, :2]
    for side in ("left", "right"):
        eye = points[list(lm.eye_polygon(side))]
        x0, y0 = np.floor(eye.min(axis=0)).astype(int) - 2
        x1, y1 = np.ceil(eye.max(axis=0)).astype(int) + 3
        window = layers.mattes["eyes"][y0:y1, x0:x1]
        if window.sum() < 4:
            continue  # a closed eye has no opening
        rows, cols = np.mgrid[y0:y1, x0:x1]
        centroid = np.array([(window * cols).sum(), (window * rows).sum()]) / window.sum()
        assert np.linalg.norm(centroid - eye.mean(axis=0)) < 0.15 * np.ptp(eye[:, 0])
        assert layers.mattes["face"][y0:y1, x0:x1][window > 0.99].max(initial=0) < 0.01
    nose = np.round(points[NOSE_TIP]).astype(int)
    assert layers.mattes["face"][nose[1], nose[0]] == 1.0
    for name, matte in layers.mattes.items():
        assert matte.dtype == np.float32 and 0 <= matte.min() and matte.max() <= 1, name
    oval = points[list(lm.FACE_OVAL)]
    outside = np.round(oval.mean(axis=0) + 1.3 * (oval[0] - oval.mean(axis=0))).astype(int)
    assert layers.mattes["face"][outside[1], outside[0]] == 0


def test_soft_polygon_edges_cover_what_the_polygon_covers():
    square = np.array([[2.0, 2.0], [7.5, 2.0], [7.5, 6.0], [2.0, 6.0]])
    matte = soft_polygons((10, 10), [square])
    assert matte[4, 4] == 1.0 and matte[0, 0] == 0.0
    # The right edge runs between pixels 7 and 8 (OpenCV's fill takes in one more supersample there).
    assert matte[4, 7] == 1.0 and matte[4, 8] < 0.26
    assert matte[4, 2] == pytest.approx(0.5, abs=0.01)  # the left edge through the middle of pixel 2
    assert matte.sum() == pytest.approx(5.5 * 4, rel=0.12)
    mattes = face_mattes(np.zeros((478, 3)), (4, 4))
    assert set(mattes) == {"face", "eyes", "mouth"}  # the person matte is the alpha, made by the renderer


def test_exr_has_every_layer_with_the_values_rendered(animator):
    layers = animator.render_layers(MOVES[0], previous=MOVES[1], alpha=True, passes=True)
    channels = read_exr(encode_frame(layers, "exr"))
    passes = {"Combined": "RGBA", "Vector": "XYZW", **{name: "X" for name in EXR_MATTES}}
    assert set(channels) == {f"{EXR_LAYER}.{p}.{c}" for p, cs in passes.items() for c in cs}
    alpha = layers.alpha.astype(np.float16)
    assert np.array_equal(channels[f"{EXR_LAYER}.Combined.A"], alpha)
    red = (SRGB_TO_LINEAR[layers.rgb[..., 0]] * alpha.astype(np.float32)).astype(np.float16)  # premultiplied, linear
    assert np.array_equal(channels[f"{EXR_LAYER}.Combined.R"], red)
    assert np.array_equal(layers.mattes["person"], layers.alpha)
    for pass_name, key in EXR_MATTES.items():
        assert np.array_equal(channels[f"{EXR_LAYER}.{pass_name}.X"], layers.mattes[key].astype(np.float16)), pass_name
    for index, c in enumerate("XYZW"):
        assert np.array_equal(channels[f"{EXR_LAYER}.Vector.{c}"], layers.vector[..., index].astype(np.float16))


def test_png_bands_reused_between_frames_decode_to_the_same_pixels(animator):
    cache = BandCache()
    for values in MOVES:
        layers = animator.render_layers(values, alpha=True)
        pixels = rgba_pixels(layers)
        decoded = np.asarray(Image.open(io.BytesIO(encode_png(pixels, 1, cache))))
        assert np.array_equal(decoded, pixels)


def test_cli_writes_rgba_png_and_multilayer_exr(tmp_path, astronaut_path):
    result = run_enliven("generate", astronaut_path, "--preset", "blink", "--out", tmp_path / "png", "--alpha")
    assert result.returncode == 0, result.stderr
    first = np.asarray(Image.open(tmp_path / "png" / "frame_00001.png"))
    assert first.shape[2] == 4 and first[4, 4, 3] == 0
    result = run_enliven("generate", astronaut_path, "--preset", "blink", "--out", tmp_path / "exr",
                         "--format", "exr", "--png-compression", "0")
    assert result.returncode == 0, result.stderr
    names = sorted(p.name for p in (tmp_path / "exr").iterdir())
    assert names[0] == "frame_00001.exr" and all(name.endswith(".exr") for name in names)
    assert f"{EXR_LAYER}.Eyes.X" in read_exr(str(tmp_path / "exr" / names[0]))
    bad = run_enliven("generate", astronaut_path, "--preset", "blink", "--out", tmp_path / "x", "--format", "tiff")
    assert bad.returncode == 2 and "tiff" in bad.stderr
    bad = run_enliven("generate", astronaut_path, "--preset", "blink", "--out", tmp_path / "x", "--alpha",
                      "--video", tmp_path / "x.mp4")
    assert bad.returncode == 2 and "no alpha channel" in bad.stderr


def test_service_streams_and_writes_exr_and_rgba(server, tmp_path):
    with Client(server.address, timeout_s=10.0) as client:
        subject = client.wait(client.analyze(astronaut_bytes()), timeout_s=60).fields["subject"]
        events = collect(client, client.generate(motion(5), 24, subject=subject, format="exr", alpha=True,
                                                 output_dir=str(tmp_path / "exr")))
        frames = [e for e in events if e.type == "frame"]
        assert [e.fields["path"].rsplit("/", 1)[1] for e in frames] == [f"frame_{i:05d}.exr" for i in range(1, 6)]
        sent = read_exr(frames[1].image())
        written = read_exr(frames[1].fields["path"])
        assert set(sent) == set(written) and all(np.array_equal(sent[k], written[k]) for k in sent)
        assert np.abs(sent[f"{EXR_LAYER}.Vector.X"]).max() > 0.5  # the head turns from frame 1 to 2
        events = collect(client, client.generate(motion(2), 24, subject=subject, alpha=True))
        png = np.asarray(Image.open(io.BytesIO(events[-2].image())))
        assert png.shape[2] == 4 and png[4, 4, 3] == 0
        preview = client.wait(client.preview(motion(1)[0], subject=subject, alpha=True), timeout_s=60)
        assert preview.image().shape == (512, 512, 4)
        quick = client.wait(client.preview(motion(1)[0], subject=subject, max_side=256), timeout_s=60)
        assert quick.image().shape == (256, 256, 3)  # a large photo's preview, rendered scaled down
        with pytest.raises(Exception, match="format"):
            client.wait(client.generate(motion(1), 24, subject=subject, format="tiff"), timeout_s=30)


# -- large photos ------------------------------------------------------------------


def test_frame_buffers_are_reused_only_once_let_go_and_come_back_clean():
    from enliven.engines.frame_buffers import FrameBuffers

    photo = np.arange(6 * 8 * 3, dtype=np.uint8).reshape(6, 8, 3)
    buffers = FrameBuffers(photo, (2, 1, 6, 5))
    first = buffers.take()
    first[1:5, 2:6] = 0  # an engine draws inside the head region
    second = buffers.take()
    assert second is not first and np.array_equal(second, photo)  # `first` is still held
    first_id = id(first)
    del first
    again = buffers.take()
    assert id(again) == first_id and np.array_equal(again, photo)


def test_scattered_samples_beyond_opencvs_map_limit():
    from enliven.engines.warp_math import sample_at

    image = np.arange(20, dtype=np.float32).reshape(4, 5)
    xs = np.tile(np.float32([0.5, 4.0]), 40_000)  # 80,000 points: more than remap takes in one row
    ys = np.tile(np.float32([1.0, 3.0]), 40_000)
    assert np.allclose(sample_at(image, xs, ys), np.tile([5.5, 19.0], 40_000))


def test_reduced_subject_scales_every_pixel_measure(subject):
    from enliven.analysis import reduced_subject

    half = reduced_subject(subject, 256)
    assert half.image.shape == (256, 256, 3) and reduced_subject(subject, 4096) is subject
    assert np.allclose(half.landmarks, subject.landmarks * 0.5, atol=1e-4)
    x0, y0, x1, y1 = half.head_region
    assert half.mask.shape == (y1 - y0, x1 - x0) and half.face_width == pytest.approx(subject.face_width / 2)
    assert half.pose.scale == pytest.approx(subject.pose.scale / 2)


def test_no_pixel_moves_further_than_the_fastest_control_point(animator):
    warp = animator.engine
    for previous, values in zip(MOVES, MOVES[1:] + MOVES[:1]):
        layers = animator.render_layers(values, previous=previous, passes=True)
        step = np.abs(warp.target_points(values)[2] - warp.target_points(previous)[2])[:, :2].max(axis=0) / warp.scale
        assert np.abs(layers.vector[..., 0]).max() <= step[0] + 0.01
        assert np.abs(layers.vector[..., 1]).max() <= step[1] + 0.01
        assert np.abs(layers.vector[..., 0]).max() > 0.5 * step[0]


def test_cli_on_a_server_writes_the_servers_exr_frames(server, tmp_path, astronaut_path):
    result = run_enliven("generate", astronaut_path, "--preset", "blink", "--out", tmp_path / "exr", "--format", "exr",
                         "--alpha", "--server", server.address)
    assert result.returncode == 0, result.stderr
    assert "(512x512, 24 fps)" in result.stdout  # the frames' size, read from the first (it was left out)
    first = read_exr(str(tmp_path / "exr" / "frame_00001.exr"))
    assert first[f"{EXR_LAYER}.Combined.A"][4, 4] == 0 and first[f"{EXR_LAYER}.Combined.A"].max() == 1


def test_mattes_and_vectors_follow_a_head_the_body_carries(animator, subject):
    """A lean carries the head ~50 px on the astronaut: its mattes go with it, and the Vector pass says so."""
    assert subject.body is not None
    still = animator.render_layers(channel_values(), passes=True)
    leaning = animator.render_layers(channel_values(torso_lean=8.0), channel_values(), passes=True)

    def centre(matte):
        ys, xs = np.nonzero(matte > 0.5)
        return np.array([xs.mean(), ys.mean()])

    nose_moves = (animator.body.move_points(subject.landmarks[[NOSE_TIP], :2], channel_values(torso_lean=8.0))
                  - subject.landmarks[[NOSE_TIP], :2])[0]
    assert np.hypot(*nose_moves) > 20
    shift = centre(leaning.mattes["face"]) - centre(still.mattes["face"])
    assert np.allclose(shift, nose_moves, atol=3)
    face = leaning.mattes["face"] > 0.99
    # Blender's layout: X, Y = previous position minus now, y up.
    assert np.allclose(np.median(leaning.vector[face][:, :2], axis=0), [-nose_moves[0], nose_moves[1]], atol=3)
    # And back: leaning in the frame before, upright now (the vectors were 0: the body did not move now).
    back = animator.render_layers(channel_values(), channel_values(torso_lean=8.0), passes=True)
    face = back.mattes["face"] > 0.99
    assert np.allclose(np.median(back.vector[face][:, :2], axis=0), [nose_moves[0], -nose_moves[1]], atol=3)


@pytest.mark.parametrize("fmt", ["png", "exr"])
def test_a_contact_sheet_of_a_server_s_frames_with_alpha_is_the_local_one(server, tmp_path, astronaut_path, fmt):
    # The cut-out person over grey, as a local run draws it; from a server's frames the sheet showed the
    # person's straight colour with the backdrop (PNG) or over black (EXR) (found by an exploratory pass).
    sheets = []
    for where in ([], ["--server", server.address]):
        sheet = tmp_path / f"sheet_{len(sheets)}.png"
        result = run_enliven("generate", astronaut_path, "--preset", "blink", "--out", tmp_path / f"o{len(sheets)}",
                             "--format", fmt, "--alpha", "--contact-sheet", sheet, *where)
        assert result.returncode == 0, result.stderr
        sheets.append(cv2.imread(str(sheet)).astype(int))
    assert np.abs(sheets[1] - sheets[0]).max() <= 2
