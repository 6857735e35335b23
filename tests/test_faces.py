"""Several faces in one photo: analysis of every face, a motion per face (file format and per-face preset
seeds), the group renderer (each face moved by its own motion, still when it is default, overlapping faces
not erasing each other) and `enliven analyze` / `generate --face`.

The photos are made here: the public-domain astronaut's face pasted twice into one picture.
"""
from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from enliven import landmarks as lm
from enliven.analysis import analyze_faces, detect_faces
from enliven.errors import EnlivenError, NoFaceError
from enliven.frame_formats import read_exr
from enliven.geometry import inside_polygon
from enliven.group import GroupAnimator, back_to_front, faces_to_wait_for, union_box
from enliven.shared.channels import CHANNEL_INDEX
from enliven.shared.face_motion import (FaceMotions, face_motions_from_dict, face_motions_to_dict, load_face_motions,
                                        save_face_motions)
from enliven.shared.naming import EXR_LAYER
from enliven.shared.motion import Motion, MotionError, motion_from_dict, save_motion
from enliven.shared.presets import face_seed, preset_face_motions, preset_motion

from conftest import channel_values, run_enliven, write_rgb

TURN = channel_values(head_yaw=18, jaw_open=0.5, blink_l=1, blink_r=1)
BLINK = channel_values(blink_l=1, blink_r=1)


def two_faces(astronaut: np.ndarray, gap: int) -> np.ndarray:
    """The astronaut's face, then a smaller copy `gap` pixels to its right (over it, where they overlap)."""
    face = astronaut[30:230, 125:325]
    canvas = np.full((260, gap + 200, 3), 200, np.uint8)
    canvas[30:230, 0:200] = face
    canvas[40:220, gap:gap + 180] = cv2.resize(face, (180, 180), interpolation=cv2.INTER_AREA)
    return canvas


@pytest.fixture(scope="module")
def apart(astronaut):
    """Two faces whose head regions do not overlap."""
    return two_faces(astronaut, 300)


@pytest.fixture(scope="module")
def apart_group(apart):
    return GroupAnimator(analyze_faces(apart))


@pytest.fixture(scope="module")
def touching(astronaut):
    """Two faces close enough that each head region holds part of the other face."""
    return two_faces(astronaut, 130)


def difference(frame: np.ndarray, photo: np.ndarray) -> np.ndarray:
    return np.abs(frame.astype(np.int16) - photo.astype(np.int16)).max(axis=2)


def outside(region: tuple[int, int, int, int], image: np.ndarray) -> np.ndarray:
    x0, y0, x1, y1 = region
    image = image.copy()
    image[y0:y1, x0:x1] = 0
    return image


def test_every_face_is_analysed_largest_first(apart):
    subjects = analyze_faces(apart)
    assert [subject.face_index for subject in subjects] == [0, 1]
    assert all(subject.faces_found == 2 for subject in subjects)
    assert subjects[0].face_width > subjects[1].face_width
    assert subjects[0].face_box[2] < subjects[1].face_box[0]  # the larger face is the left one
    assert [s.face_index for s in analyze_faces(apart, [1, 0])] == [1, 0]  # in the order asked, from the cache
    assert all(again is first for again, first in zip(analyze_faces(apart), subjects))  # every face, cached too
    with pytest.raises(NoFaceError, match="no face number 2"):
        analyze_faces(apart, [0, 2])


def test_each_face_moves_by_its_own_motion_and_is_still_when_default(apart, apart_group):
    still = apart_group.render({0: channel_values(), 1: channel_values()})
    assert np.array_equal(still, apart)
    for moving, resting in ((0, 1), (1, 0)):
        frame = apart_group.render({moving: TURN, resting: channel_values()})
        changed = difference(frame, apart)
        region = apart_group.subjects[moving].head_region
        assert outside(region, changed).max() == 0  # the other face is exactly as in the photo
        x0, y0, x1, y1 = region
        assert (changed[y0:y1, x0:x1] > 30).sum() > 500
        # A face not named at all stays still too.
        assert np.array_equal(apart_group.render({moving: TURN}), frame)


def test_both_faces_move_together_as_each_does_alone(apart, apart_group):
    alone = [apart_group.render({face: values}).copy() for face, values in ((0, TURN), (1, BLINK))]
    both = apart_group.render({0: TURN, 1: BLINK})
    for face, frame in enumerate(alone):
        x0, y0, x1, y1 = apart_group.subjects[face].head_region
        assert np.array_equal(both[y0:y1, x0:x1], frame[y0:y1, x0:x1])


def test_a_group_frame_cuts_out_every_person_and_carries_every_face_s_mattes_and_motion(apart, apart_group):
    """Alpha and compositing passes for several faces: each face's matte and alpha where it is, and a face
    that moves changes the alpha, mattes and motion vectors inside its own head region only."""
    still = apart_group.render_layers({0: channel_values(), 1: channel_values()}, alpha=True, passes=True)
    assert np.array_equal(still.rgb, apart)
    assert still.alpha[0, 250] < 0.01  # the backdrop between the faces is cut out
    for subject in apart_group.subjects.values():
        x, y = subject.landmarks[:, :2].mean(axis=0).astype(int)
        assert still.alpha[y, x] == 1.0 and still.mattes["face"][y, x] == 1.0
        x0, y0, x1, y1 = subject.head_region
        assert still.mattes["eyes"][y0:y1, x0:x1].sum() > 100  # both eyes of each face, a few hundred pixels
    assert np.array_equal(still.mattes["person"], still.alpha) and not still.vector.any()

    moved = apart_group.render_layers({0: channel_values(), 1: TURN}, {0: channel_values(), 1: channel_values()},
                                      alpha=True, passes=True)
    region_1 = apart_group.subjects[1].head_region
    for name in ("person", "face", "eyes", "mouth"):
        assert np.array_equal(outside(region_1, moved.mattes[name]), outside(region_1, still.mattes[name])), name
    x0, y0, x1, y1 = region_1
    assert moved.mattes["mouth"][y0:y1, x0:x1].sum() > 2 * still.mattes["mouth"][y0:y1, x0:x1].sum()  # jaw open
    assert np.abs(moved.alpha - still.alpha).max() > 0.5  # the turned head's outline moved
    assert not outside(region_1, moved.vector).any() and np.abs(moved.vector).max() > 5

    opaque = apart_group.render_layers({0: channel_values(), 1: TURN}, passes=True)  # EXR without alpha
    assert opaque.alpha is None and set(opaque.mattes) == {"person", "face", "eyes", "mouth"}


def test_faces_are_drawn_back_to_front_smallest_first(apart):
    subjects = analyze_faces(apart)
    assert back_to_front(subjects) == [1, 0]
    assert union_box([(5, 6, 10, 12), (0, 8, 7, 20)]) == (0, 6, 10, 20)


def test_faces_whose_regions_do_not_overlap_are_drawn_side_by_side_into_the_same_frame(apart, apart_group, touching):
    """Faces apart wait for none, drawn on threads at once; a face overlapping one before it in the
    back-to-front order waits for it. Drawn so, the frame is the one the faces make one after another, to the level."""
    regions = {3: (0, 0, 10, 10), 1: (20, 0, 30, 10), 2: (5, 5, 25, 15), 0: (40, 0, 50, 10)}
    assert faces_to_wait_for([3, 1, 2, 0], regions) == {3: [], 1: [], 2: [3, 1], 0: []}
    assert apart_group.waits_for == {face: [] for face in apart_group.order}
    touching_group = GroupAnimator(analyze_faces(touching))
    back, front = touching_group.order
    assert touching_group.waits_for == {back: [], front: [back]}
    values = {0: TURN, 1: BLINK}
    together = apart_group.render(values).copy()
    one_after_another = apart.copy()
    for face in apart_group.order:
        apart_group.animators[face].render_onto(values[face], onto=one_after_another)
    assert np.array_equal(together, one_after_another)


def eye_box(subject, side: str) -> tuple[int, int, int, int]:
    points = subject.landmarks[list(lm.eye_polygon(side)), :2]
    (x0, y0), (x1, y1) = np.floor(points.min(axis=0)).astype(int), np.ceil(points.max(axis=0)).astype(int)
    return x0, y0, x1, y1


def test_a_nearer_face_turning_carries_the_face_behind_it_without_erasing_its_motion(touching):
    group = GroupAnimator(analyze_faces(touching))
    front, back = group.order[-1], group.order[0]
    # The face behind has an eye inside the head region of the face in front: that face's warp covers it.
    fx0, fy0, fx1, fy1 = group.subjects[front].head_region
    x0, y0, x1, y1 = next(box for side in ("left", "right") if fx0 <= (box := eye_box(group.subjects[back], side))[0]
                          and box[2] <= fx1 and fy0 <= box[1] and box[3] <= fy1)
    blinked = group.render({back: BLINK}).copy()
    both = group.render({back: BLINK, front: channel_values(head_yaw=10, head_pitch=5)})
    eye = np.s_[y0:y1, x0:x1]
    closing = np.abs(blinked[eye].astype(float) - touching[eye]).mean()
    kept = np.abs(both[eye].astype(float) - blinked[eye]).mean()
    assert closing > 20  # the blink changes the eye a lot ...
    assert kept < closing / 4  # ... and the turning face in front carries it along; it does not paste the open eye back


@pytest.mark.parametrize("values", [channel_values(head_roll=15), channel_values(head_yaw=15),
                                    channel_values(head_pitch=-12)], ids=["roll", "yaw", "pitch"])
def test_a_face_moving_leaves_the_face_beside_it_still(touching, values):
    """One face of a group moving, the other not animated at all: what moves behind the moving face (its hair
    and backdrop) dragged and sheared the still face's cheek, eye and outline where it lies in the moving
    face's head region (2008_002506: a neighbour's roll of 15 degrees changed 1,905 pixels of the still face by
    over 20 levels). The still face's middle (80 % of its oval) now keeps its pixels (before: 8-26 % of them
    changed by more than 8 levels)."""
    subjects = analyze_faces(touching)
    for mover, still in ((0, 1), (1, 0)):
        frame = GroupAnimator([subjects[mover]]).render({mover: values})
        oval = subjects[still].landmarks[list(lm.FACE_OVAL), :2]
        middle = oval.mean(axis=0) + 0.8 * (oval - oval.mean(axis=0))
        ys, xs = np.mgrid[:touching.shape[0], :touching.shape[1]]
        inside = inside_polygon(np.stack([xs.ravel(), ys.ravel()], 1).astype(np.float64), middle).reshape(xs.shape)
        changed = difference(frame, touching)[inside] > 8
        assert changed.mean() <= 0.01, (mover, changed.mean())


def test_the_overlay_numbers_each_face(apart):
    """The overlay drew every face's box and landmarks but not its number, so the numbers --face takes could
    only be matched to people through the box coordinates printed."""
    from enliven.analysis import draw_overlay

    overlay = None
    subjects = analyze_faces(apart)
    for subject in subjects:
        overlay = draw_overlay(subject, overlay)
    for subject in subjects:
        x0, y0 = (int(v) for v in subject.face_box[:2])
        label = overlay[max(0, y0 - 30):y0 + 4, max(0, x0 - 4):x0 + 30].reshape(-1, 3)
        assert (label == 0).all(axis=1).sum() > 20 and (label > 200).all(axis=1).sum() > 5, subject.face_index


def test_per_face_seeds_desynchronise_blinks_and_breathing():
    motions = preset_face_motions("idle-alive", [0, 1, 2], fps=24, seed=4, duration_s=20.0).full()
    onsets = {}
    for face, values in motions.items():
        blink = values[:, CHANNEL_INDEX["blink_l"]]
        onsets[face] = tuple(np.flatnonzero((blink[1:] > 0.5) & (blink[:-1] <= 0.5)))
        assert len(onsets[face]) >= 3
    assert len(set(onsets.values())) == 3  # nobody blinks when another does, frame for frame
    shared = set(onsets[0]) & set(onsets[1]) & set(onsets[2])
    assert not shared
    pitch = {face: values[:, CHANNEL_INDEX["head_pitch"]] for face, values in motions.items()}
    assert not np.allclose(pitch[0], pitch[1]) and not np.allclose(pitch[1], pitch[2])
    # Face 0 of a group moves exactly as a photo's single face does with that seed.
    np.testing.assert_array_equal(motions[0], preset_motion("idle-alive", fps=24, seed=4, duration_s=20.0).full())
    assert face_seed(4, 0) == 4 and len({face_seed(4, face) for face in range(50)}) == 50


def test_a_face_motion_file_round_trips_and_single_face_files_still_load(tmp_path):
    blink = preset_motion("blink", fps=12)
    nod = Motion(12, ("head_pitch",), np.linspace(0, 10, 7)[:, None])
    motions = FaceMotions(12, {3: nod, 0: blink})
    path = tmp_path / "faces.json"
    save_face_motions(motions, path)
    data = json.loads(path.read_text())
    assert data["version"] == 2 and [group["face"] for group in data["faces"]] == [0, 3]
    loaded = load_face_motions(path)
    assert loaded.faces == (0, 3) and loaded.per_face and loaded.frame_count == blink.frame_count
    full = loaded.full()
    assert full[3].shape == full[0].shape  # the shorter motion holds its last frame
    assert full[3][-1, CHANNEL_INDEX["head_pitch"]] == pytest.approx(10)
    np.testing.assert_allclose(full[0], blink.full(), atol=1e-6)
    assert face_motions_from_dict(face_motions_to_dict(loaded)).faces == (0, 3)
    # Today's single-face files load as they did, and as one face's motion here.
    single = tmp_path / "single.json"
    save_motion(blink, single)
    assert not load_face_motions(single).per_face and load_face_motions(single).faces == (0,)
    save_motion(blink, tmp_path / "single.csv")
    assert load_face_motions(tmp_path / "single.csv").frame_count == blink.frame_count
    with pytest.raises(MotionError, match="several faces"):
        motion_from_dict(data, "faces.json")


@pytest.mark.parametrize("change, complaint", [
    (lambda d: d["faces"].append(dict(d["faces"][0])), "face 0 is given more than once"),
    (lambda d: d["faces"][0].update(face=-1), "must be a face number"),
    (lambda d: d["faces"][0].update(face=True), "must be a face number"),
    (lambda d: d["faces"][1].pop("frames"), "faces\\[1\\]: missing 'frames'"),
    (lambda d: d["faces"][1]["frames"][0].append(1.0), "face 3: frame 0 has 2 values"),
    (lambda d: d.update(faces=[]), "a list of face motions"),
    (lambda d: d.update(fps=0), "fps must be above 0"),
    # The file's own fault, not its first face's ("face 0: \"fps\" must be a number, got null"):
    (lambda d: d.pop("fps"), "^m.json: \"fps\", the frame rate of every face's motion, must be a number, got none"),
    (lambda d: d.update(fps=None), "^m.json: \"fps\", the frame rate .* got null"),
])
def test_bad_face_motion_files_say_which_face(change, complaint):
    data = face_motions_to_dict(FaceMotions(24, {0: preset_motion("blink"), 3: Motion(24, ("jaw_open",), [[0.1]])}))
    change(data)
    with pytest.raises(MotionError, match=complaint):
        face_motions_from_dict(data, "m.json")


def test_a_face_strict_sanitising_names_the_face():
    motions = FaceMotions(24, {2: Motion(24, ("jaw_open",), [[3.0]])})
    fixed, warnings = motions.sanitized()
    assert warnings == ["face 2: jaw_open: 1 frame above 1 (max 3), clamped"]
    assert fixed.motions[2].values.max() == 1
    with pytest.raises(MotionError, match="^face 2: "):
        motions.sanitized(strict=True)
    # Every face refused is named, not only the first (face 0's error hid face 2's).
    both = FaceMotions(24, {0: Motion(24, ("jaw_open",), [[3.0]]), 2: Motion(24, ("blink_l",), [[-2.0]])})
    with pytest.raises(MotionError, match="^face 0: .*jaw_open.*; face 2: .*blink_l"):
        both.sanitized(strict=True)


def test_a_group_s_motion_is_refused_before_its_photo_is_analysed(apart, tmp_path):
    """A loop too short, a negative seed or a --strict refusal on a group came after "2 face(s) found", the
    analysis of every face (seconds on a group photo) spent for nothing."""
    photo = write_rgb(tmp_path / "two.png", apart)
    for arguments in (("--preset", "idle-alive", "--loop", "--duration", "0.05"), ("--preset", "blink", "--seed", "-1")):
        result = run_enliven("generate", photo, "--face", "all", *arguments, "--out", tmp_path / "frames")
        assert result.returncode == 2, result.stderr
        assert "found" not in result.stderr, result.stderr


def test_group_refuses_faces_of_different_photos_or_unknown_faces(apart, astronaut, subject):
    assert analyze_faces(astronaut) == [subject]  # a face analysed before is that same subject
    subjects = analyze_faces(apart)
    with pytest.raises(EnlivenError, match="one photo"):
        GroupAnimator([subjects[1], analyze_faces(astronaut)[0]])
    with pytest.raises(EnlivenError, match="No face 5"):
        GroupAnimator(subjects).render({5: channel_values()})


def test_cli_analyze_lists_every_face_and_generate_animates_each_by_its_own_motion(apart, tmp_path):
    photo = write_rgb(tmp_path / "two.png", apart)
    result = run_enliven("analyze", photo, "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert [face["face_index"] for face in report["faces"]] == [0, 1]
    listed = run_enliven("analyze", photo)
    assert "face 0" in listed.stdout and "face 1" in listed.stdout

    # A motion for face 1 only: face 0 stays exactly as the photo shows it.
    motion = tmp_path / "faces.json"
    save_face_motions(FaceMotions(8, {1: preset_motion("nod", fps=8, duration_s=1.0)}), motion)
    out = tmp_path / "frames"
    result = run_enliven("generate", photo, "--motion", motion, "--out", out)
    assert result.returncode == 0, result.stderr
    frames = sorted(out.glob("frame_*.png"))
    assert len(frames) == 9
    region_1 = analyze_faces(apart, [1])[0].head_region
    middle = cv2.cvtColor(cv2.imread(str(frames[4])), cv2.COLOR_BGR2RGB)
    assert outside(region_1, difference(middle, apart)).max() <= 1  # PNG round trip of the still pixels
    assert difference(middle, apart).max() > 30

    # Every face, the preset with each face's own seed.
    out = tmp_path / "all"
    result = run_enliven("generate", photo, "--face", "all", "--preset", "idle-alive", "--duration", "0.5",
                         "--fps", "8", "--out", out)
    assert result.returncode == 0, result.stderr
    assert len(list(out.glob("frame_*.png"))) == 5
    # Both faces cut out: a PNG with alpha; and every face's mattes in an EXR.
    out, nod = tmp_path / "alpha", tmp_path / "nod.json"
    save_motion(preset_motion("nod", fps=8, duration_s=1.0), nod)
    result = run_enliven("generate", photo, "--face", "0,1", "--motion", nod, "--motion", nod, "--alpha",
                         "--out", out)
    assert result.returncode == 0, result.stderr
    rgba = cv2.imread(str(sorted(out.glob("frame_*.png"))[4]), cv2.IMREAD_UNCHANGED)
    assert rgba.shape[2] == 4 and rgba[0, 250, 3] == 0
    for subject in analyze_faces(apart):
        x, y = subject.landmarks[:, :2].mean(axis=0).astype(int)
        assert rgba[y, x, 3] == 255
    result = run_enliven("generate", photo, "--face", "all", "--motion", nod, "--format", "exr", "--out",
                         tmp_path / "exr")
    assert result.returncode == 0, result.stderr
    eyes = read_exr(str(tmp_path / "exr" / "frame_00005.exr"))[f"{EXR_LAYER}.Eyes.X"].astype(np.float32)
    assert eyes[:, :250].sum() > 100 and eyes[:, 250:].sum() > 100
    refused = run_enliven("generate", photo, "--face", "0", "--motion", motion, "--out", out)
    assert refused.returncode == 2 and "moves faces 1" in refused.stderr


def test_small_faces_of_a_large_group_photo_are_found_in_its_quarters(astronaut):
    # Ten faces about 75 px wide on a 2800 px photo: scaled whole to the detector's 1024 px they are too small.
    face = cv2.resize(astronaut[30:230, 125:325], (170, 170), interpolation=cv2.INTER_AREA)
    canvas = np.full((1400, 2800, 3), 200, np.uint8)
    for column in range(5):
        for row in range(2):
            canvas[150 + row * 700:320 + row * 700, 150 + column * 540:320 + column * 540] = face
    boxes = detect_faces(canvas)
    assert len(boxes) >= 6
    centres = {(round((x0 + x1) / 540), round((y0 + y1) / 1400)) for x0, y0, x1, y1 in boxes}
    assert len(centres) == len(boxes)  # each face once


def test_a_face_plays_the_same_preset_alone_or_with_the_others(apart, tmp_path):
    """--face 1 --preset gives face 1 the motion it has in --face 0,1 (its own seed), not face 0's."""
    photo = write_rgb(tmp_path / "two.png", apart)
    common = ("--preset", "idle-alive", "--duration", "3", "--fps", "8", "--seed", "4")
    for name, faces in (("alone", "1"), ("both", "0,1")):
        result = run_enliven("generate", photo, "--face", faces, *common, "--out", tmp_path / name)
        assert result.returncode == 0, result.stderr
    x0, y0, x1, y1 = analyze_faces(apart, [1])[0].head_region
    alone, both = (np.stack([cv2.imread(str(path))[y0:y1, x0:x1] for path in sorted((tmp_path / name).glob("*.png"))])
                   for name in ("alone", "both"))
    assert np.abs(alone.astype(int) - apart[y0:y1, x0:x1, ::-1]).max() > 30  # face 1 does move
    assert np.abs(alone.astype(int) - both).max() <= 1


def test_one_motion_file_per_face_at_different_rates_asks_for_fps(apart, tmp_path):
    photo = write_rgb(tmp_path / "two.png", apart)
    slow, fast = tmp_path / "slow.json", tmp_path / "fast.json"
    save_motion(preset_motion("nod", fps=8, duration_s=1.0), slow)
    save_motion(preset_motion("nod", fps=12, duration_s=1.0), fast)
    refused = run_enliven("generate", photo, "--face", "0,1", "--motion", slow, "--motion", fast, "--out", tmp_path / "f")
    assert refused.returncode == 2 and "give them one with --fps" in refused.stderr
    result = run_enliven("generate", photo, "--face", "0,1", "--motion", slow, "--motion", fast, "--fps", "8",
                         "--out", tmp_path / "f")
    assert result.returncode == 0, result.stderr


def test_a_photo_s_faces_are_detected_once_however_its_faces_are_asked_for(apart, monkeypatch):
    """The face detector (up to five passes on a large or colourless photo) runs once per photo: face 0
    first, then every face, then face 1, reuse its boxes."""
    import enliven.analysis as analysis

    calls = []
    real = analysis.detect_faces
    monkeypatch.setattr(analysis, "detect_faces", lambda rgb: calls.append(1) or real(rgb))
    photo = apart.copy()
    photo[0, 0] = (1, 2, 3)  # content no other test has analysed
    analysis.analyze_image(photo)
    assert len(analysis.analyze_faces(photo)) == 2
    analysis.analyze_image(photo, face_index=1)
    assert len(calls) == 1


def test_the_refine_engine_animates_a_group_with_one_copy_of_its_networks(apart, apart_group, one_torch_thread):
    """Every face's refine engine uses the same loaded region generators, and the group renders each face
    by its own values (a blink of face 1 leaves face 0 as the warp group leaves it)."""
    subjects = analyze_faces(apart)
    group = GroupAnimator(subjects, engine="refine")
    engines = [animator.engine for animator in group.animators.values()]
    assert engines[0].regions is engines[1].regions
    frame = group.render({1: BLINK})
    region_1 = subjects[1].head_region
    assert outside(region_1, difference(frame, apart)).max() == 0
    assert difference(frame, apart).max() > 30
