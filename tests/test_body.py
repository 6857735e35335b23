"""The upper body: Pose's shoulders in analysis, the body channels moving them in the frames.

Real MediaPipe models and the real warp engine on the bundled astronaut (she shows her shoulders and her
hips). How far the output moved is measured on the output itself, optically: phase correlation of a patch
around each shoulder joint between the photo and the frame. (MediaPipe Pose run again on the frame is the
measure bench/body.py reports; on this photo its shoulder joints, under the suit's rigid collar ring, follow
a rise by a third to two thirds, too little to be the yardstick here.)
"""
from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from conftest import channel_values as values
from enliven import landmarks as lm
from enliven.analysis import analyze_faces, analyze_image, find_landmarks
from enliven.animator import Animator
from enliven.artifacts import rise_at
from enliven.engines.body import BREATH_SHOULDER_RISE, SHRUG_RISE, BodyField, BodyMotion
from enliven.engines.warp import WarpEngine
from enliven.geometry import estimate_head_pose
from enliven.group import GroupAnimator
from enliven.shared.channels import CHANNEL_INDEX, GROUPS
from enliven.shared.motion import load_motion

BODY_CHANNELS = ("breathing", "shrug_l", "shrug_r", "torso_lean", "torso_turn")


@pytest.fixture(scope="module")
def photo(astronaut) -> np.ndarray:
    return astronaut


CUT = 330  # shoulder_to_shoulder: where the first person ends and her mirrored neighbour begins


@pytest.fixture(scope="module")
def shoulder_to_shoulder(photo) -> tuple[np.ndarray, list, object]:
    """(photo, subjects, the first person's subject): two people shoulder to shoulder, each copy of the
    astronaut cut off CUT px from her left edge, the second mirrored, so the first one's body region (0.75
    shoulder widths beyond her shoulders) reaches 90 px over the second."""
    pair = np.ascontiguousarray(np.hstack([photo[:, :CUT], photo[:, ::-1][:, photo.shape[1] - CUT:]]))
    subjects = analyze_faces(pair, None)
    return pair, subjects, next(subject for subject in subjects if subject.face_box[0] < CUT)


def face_measures(frame: np.ndarray, subject) -> np.ndarray:
    points = find_landmarks(frame, subject.face_box)
    eyes = (lm.eye_aspect_ratio(points, "left") + lm.eye_aspect_ratio(points, "right")) / 2
    return np.array([estimate_head_pose(points).angles[0], eyes, lm.mouth_openness(points)])


def test_the_astronaut_has_shoulders_and_hips(subject):
    body = subject.body
    assert body is not None and body.hips is not None
    left, right = body.shoulders
    assert left[0] > right[0]  # the subject's left shoulder is on the image's right
    assert 1.4 * subject.face_width < body.width < 2.2 * subject.face_width
    assert (left[1] > subject.landmarks[lm.CHIN, 1]) and (right[1] > subject.landmarks[lm.CHIN, 1])
    x0, y0, x1, y1 = body.region
    assert y1 == subject.image.shape[0] and body.mask.shape == (y1 - y0, x1 - x0)
    assert subject.summary()["body"]["shoulder_width_px"] == round(body.width, 1)


def test_body_channels_at_their_defaults_return_the_photo_exactly(photo, animator):
    assert GROUPS["body"] == BODY_CHANNELS
    assert np.array_equal(animator.render(values()), photo)
    assert np.array_equal(animator.render(values(**{name: 0.0 for name in BODY_CHANNELS})), photo)
    # and back to rest after a move (the reused frame buffers are restored over the body too)
    animator.render(values(torso_lean=10.0, breathing=1.0))
    assert np.array_equal(animator.render(values()), photo)


def test_breathing_in_lifts_both_shoulders_as_far_as_asked_and_leaves_the_face_as_it_was(photo, subject, animator):
    frame = animator.render(values(breathing=1.0))
    asked = BREATH_SHOULDER_RISE * subject.body.width
    for shoulder in subject.body.shoulders:
        assert 0.75 * asked <= rise_at(photo, frame, shoulder, 64) <= 1.25 * asked
    breathing_out = animator.render(values(breathing=-1.0))
    for shoulder in subject.body.shoulders:
        assert -1.25 * asked <= rise_at(photo, breathing_out, shoulder, 64) <= -0.75 * asked
    # The face, found again on the frame, turns, blinks and opens its mouth as in the photo: within 1.5
    # degrees of yaw (the tracker's own jitter on a re-rendered face), 0.02 of eye aspect ratio (a blink
    # closes it by about 0.25) and 0.02 of mouth openness (speech opens it by 0.2 to 0.5).
    change = face_measures(frame, subject) - face_measures(photo, subject)
    assert np.all(np.abs(change) <= (1.5, 0.02, 0.02)), change


def test_a_head_rolling_on_a_leaning_body_uncovers_one_backdrop(photo, animator):
    """A head rolling while the body leans: the backdrop the hair uncovered was filled by the head's plate
    where the head alone moved, and by the body's own plate, filled another way, where the lean moved it on:
    the two met in a band of another tone along where the hair had been (d9, head_roll 25 with torso_lean 6).
    Inside the head region the body's plate is now the head engine's."""
    body = animator.body
    hx0, hy0, hx1, hy1 = body.head_box
    inner = body.seam >= 1.0
    assert np.abs(body.plate[hy0:hy1, hx0:hx1][inner].astype(int) - animator.engine.background_plate[inner]).max() <= 1


def test_the_body_field_s_backward_map_undoes_its_forward_one(subject):
    """Each frame inverts the body's forward field (where a point goes) into the backward map the frame is
    resampled by (where a pixel comes from), reading the field between the points of a coarse grid: a pixel
    taken from where the map says must land back on itself, within the fraction of a pixel a breath allows."""
    field = BodyField.of(subject.body, subject.landmarks[lm.CHIN, :2], subject.image.shape)
    for motion in (BodyMotion(breathing=1.0), BodyMotion(breathing=-0.6, carried_turn_deg=2.0, carried_rise=0.01)):
        backward = field.backward(motion)
        grid = field.grid.reshape(backward.shape)
        source = (grid + backward).reshape(-1, 2)
        landed = source + field.forward(source, motion)
        miss = np.linalg.norm(landed - grid.reshape(-1, 2), axis=1)
        moved = np.linalg.norm(backward, axis=2).max()
        assert moved > 3.0  # (a field that moves nothing would pass trivially)
        assert np.percentile(miss, 95) < 0.1 and miss.max() < 0.5, (np.percentile(miss, 95), miss.max())


def test_a_shrug_lifts_its_own_shoulder_only(photo, subject, animator):
    asked = SHRUG_RISE * subject.body.width
    left, right = subject.body.shoulders
    frame = animator.render(values(shrug_l=1.0))  # the subject's left: the image's right
    assert 0.75 * asked <= rise_at(photo, frame, left, 96) <= 1.25 * asked
    assert abs(rise_at(photo, frame, right, 96)) < 0.15 * asked
    frame = animator.render(values(shrug_r=1.0))
    assert 0.75 * asked <= rise_at(photo, frame, right, 96) <= 1.25 * asked
    assert abs(rise_at(photo, frame, left, 96)) < 0.15 * asked


@pytest.mark.parametrize("name", BODY_CHANNELS)
def test_every_body_channel_moves_the_frame_and_the_head_with_it(name, photo, subject, animator):
    extreme = {"torso_lean": 10.0, "torso_turn": 20.0}.get(name, 1.0)
    assert not np.array_equal(animator.render(values(**{name: extreme})), photo)
    moved = animator.body.move_points(subject.landmarks, values(**{name: extreme})) - subject.landmarks
    assert np.abs(moved[:, :2]).max() > 0.5  # where the head's landmarks go with the body (passes, refine)


def test_the_head_rides_with_the_body_and_the_photo_edges_stay(photo, subject, animator):
    """A lean carries the head along (no rubber neck); where the photo cuts the body off (its bottom) and
    away from the person nothing moves."""
    frame = animator.render(values(torso_lean=8.0))
    points = find_landmarks(frame, subject.face_box)
    shift = (points[:, :2] - subject.landmarks[:, :2]).mean(axis=0)
    assert shift[0] > 0.1 * subject.body.width  # toward the image's right, as the shoulders lean
    assert np.array_equal(frame[-1], photo[-1])
    assert np.array_equal(frame[:, -40:], photo[:, -40:])  # the backdrop beyond the body region


def test_a_lean_carries_the_hair_up_to_the_photo_s_top_edge_with_the_head(photo, subject):
    # The field used to fall to 0 over a third of a shoulder width below the photo's top edge, so a lean
    # sheared the top of the hair back toward where it was (s12 at 768 px, torso_lean 8: streaked hair). At the
    # edge it now moves as the head does; only the bottom, where the photo cuts the body off, stays.
    field = BodyField.of(subject.body, subject.landmarks[lm.CHIN, :2], photo.shape)
    lean = BodyMotion.from_values(values(torso_lean=8.0))
    head = subject.landmarks[lm.NOSE_BRIDGE, :2]
    at_top = np.array([head[0], 1.0])
    moved = field.forward(np.array([head, at_top]) - field.origin, lean)
    assert moved[0, 0] > 0.1 * subject.body.width
    assert moved[1, 0] > 0.9 * moved[0, 0]  # (measured: 63 px against the head's 51; 5 px before)


def test_a_head_turn_carries_into_the_shoulders_while_the_body_moves(photo, subject, animator):
    """While the body moves (idle-alive always breathes) a head turn takes the chest along a little; a
    motion that leaves the body channels alone (talking, a showcase) keeps the body still, because moving
    the whole torso for the carry costs more than the head itself."""
    chest = subject.body.shoulders.mean(axis=0) + (0, 0.4 * subject.body.width)
    rows = slice(int(chest[1]) - 10, int(chest[1]) + 10)
    breathing = animator.render(values(breathing=0.3))[rows].astype(int)
    turning = animator.render(values(breathing=0.3, head_yaw=20.0))[rows].astype(int)
    assert np.abs(turning - breathing).max() > 10
    below_head = slice(subject.head_region[3], None)
    assert np.array_equal(animator.render(values(head_yaw=20.0))[below_head], photo[below_head])


def test_a_photo_cropped_at_the_neck_has_no_body_and_ignores_the_body_channels(photo):
    cropped = np.ascontiguousarray(photo[:200])
    subject = analyze_image(cropped)
    assert subject.body is None and subject.summary()["body"] is None
    animator = Animator(subject)
    assert animator.body is None
    assert np.array_equal(animator.render(values(breathing=1.0, shrug_l=1.0, torso_lean=10.0, torso_turn=20.0)),
                          cropped)


def test_old_motion_files_without_body_channels_load_and_render_as_before(tmp_path, subject, animator):
    path = tmp_path / "old.json"
    path.write_text(json.dumps({"format": "enliven-motion", "version": 1, "fps": 24,
                                "channels": ["blink_l", "jaw_open", "gaze_x"],
                                "frames": [[0.0, 0.0, 0.0], [1.0, 0.5, 0.3]]}))
    full = load_motion(path).full()
    assert np.all(full[:, [CHANNEL_INDEX[name] for name in BODY_CHANNELS]] == 0)
    head = WarpEngine(subject)
    for row in full:
        assert np.array_equal(animator.render(row), head.render(row))


def test_frames_with_alpha_move_the_body_too(subject, animator):
    still = animator.render_layers(values(), alpha=True)
    moved = animator.render_layers(values(shrug_l=1.0), alpha=True)
    assert moved.alpha is not None and not np.array_equal(moved.alpha, still.alpha)
    left = subject.body.shoulders[0]
    column = int(left[0])
    edge_still = np.argmax(still.alpha[:, column] > 0.5)
    edge_moved = np.argmax(moved.alpha[:, column] > 0.5)
    assert edge_moved < edge_still  # the shoulder's outline rose in the alpha as in the colour


def test_a_body_is_moved_only_as_far_as_its_person_reaches_and_that_changes_no_pixel(shoulder_to_shoulder):
    """Two people shoulder to shoulder: each body's moving box ends at its person's reach, and the frames
    (plain and with alpha) are exactly those its whole moving box gives."""
    _, subjects, _ = shoulder_to_shoulder
    group = GroupAnimator(subjects)
    bodies = [animator.body for animator in group.animators.values()]
    rows = {face: values(breathing=1.0, shrug_l=0.5, torso_lean=4.0, head_yaw=10.0) for face in group.faces}
    frames = (group.render(rows).copy(), group.render_layers(rows, alpha=True))
    cut_boxes = [body.moves(rows[0])[1] for body in bodies]
    for body in bodies:
        body.person_box = (-10**6, -10**6, 10**6, 10**6)  # the whole moving box
    assert any(body.moves(rows[0])[1] != box for body, box in zip(bodies, cut_boxes))  # (it was cut)
    whole = (group.render(rows), group.render_layers(rows, alpha=True))
    assert np.array_equal(frames[0], whole[0])
    assert np.array_equal(frames[1].rgb, whole[1].rgb) and np.array_equal(frames[1].alpha, whole[1].alpha)


def test_an_opaque_frame_for_compositing_moves_the_body_as_a_plain_frame_does(animator):
    """The colour of an EXR frame (opaque, with passes) is the plain frame's, body and head moving together
    (before, the body dragged the backdrop around the person along with it, up to 185 levels apart)."""
    for row in (values(breathing=1.0), values(shrug_l=1.0, head_yaw=20.0, head_roll=10.0), values(torso_lean=8.0, head_pitch=15.0)):
        assert np.array_equal(animator.render_layers(row, passes=True).rgb, animator.render(row))


def test_each_face_of_a_group_moves_its_own_body(photo):
    pair = np.ascontiguousarray(np.hstack([photo, photo[:, ::-1]]))
    subjects = analyze_faces(pair, None)
    assert len(subjects) == 2 and all(subject.body is not None for subject in subjects)
    group = GroupAnimator(subjects)
    assert np.array_equal(group.render({0: values(), 1: values()}), pair)
    first = next(subject for subject in subjects if subject.face_index == 0)
    frame = group.render({first.face_index: values(shrug_l=1.0)})
    changed = np.flatnonzero(np.abs(frame.astype(int) - pair).max(axis=(0, 2)) > 2)
    x0, _, x1, _ = first.body.region
    assert changed.size and x0 <= changed.min() and changed.max() < x1


def test_a_body_moves_without_dragging_the_person_beside_it(shoulder_to_shoulder):
    # Two people shoulder to shoulder (the fixture). The segmenter's person mask covers both: before each body
    # kept to its own person, her breathing and shrug dragged the neighbour's suit along all the way to the
    # region's edge.
    pair, subjects, first = shoulder_to_shoulder
    cut = CUT
    assert len(subjects) == 2 and all(subject.body is not None for subject in subjects)
    assert first.body.region[2] > cut + 80  # (her region does reach over the neighbour)
    margin = round(0.25 * first.face_width)  # where the two people meet, the moving shoulder may cover a little
    group = GroupAnimator(subjects)
    for channels in ({"breathing": 1.0}, {"shrug_l": 1.0}):  # shrug_l: her left, the shoulder beside him
        frame = group.render({first.face_index: values(**channels)})
        changed = np.abs(frame.astype(int) - pair).max(axis=2) > 0
        assert changed[:, :cut].sum() > 2000, channels  # she moved
        assert not changed[:, cut + margin:].any(), (channels, np.flatnonzero(changed[:, cut:].any(axis=0)).max())
        # The same in frames for compositing: with alpha (the person cut out) and opaque with passes, the
        # colour and the person's alpha (every person's; its matte with passes). Before, those frames moved
        # whatever lay in her body's region, the neighbour's suit and alpha with it.
        for alpha, passes in ((True, False), (False, True)):
            still, moved = (group.render_layers({first.face_index: row}, alpha=alpha, passes=passes)
                            for row in (values(), values(**channels)))
            people = [layers.alpha if alpha else layers.mattes["person"] for layers in (still, moved)]
            changed = ((np.abs(moved.rgb.astype(int) - still.rgb).max(axis=2) > 0)
                       | (np.abs(people[1] - people[0]) > 1e-3))
            assert changed[:, :cut].sum() > 2000, (channels, alpha)
            assert not changed[:, cut + margin:].any(), (channels, alpha, np.flatnonzero(changed[:, cut:].any(axis=0)).max())


def test_a_lean_uncovers_the_backdrop_s_grain_not_a_smooth_patch(photo, subject):
    # The astronaut's backdrop given a film grain (the person left clean, so she is found as before): the band
    # a lean uncovers, away from her outline, shows grain as strong as the backdrop's (smooth before: 0.3
    # levels of fine detail against the backdrop's 8.8; now 8.9).
    person = np.zeros(photo.shape[:2], np.float32)
    x0, y0, x1, y1 = subject.body.region
    person[y0:y1, x0:x1] = subject.body.mask
    grain = np.random.default_rng(0).normal(0.0, 10.0, photo.shape[:2]) * (person < 0.5)
    grainy = np.clip(photo + grain[..., None], 0, 255).astype(np.uint8)
    animator = Animator(analyze_image(grainy))
    leaning = values(torso_lean=-8.0)
    frame = animator.render(leaning)
    still_person, moved_person = (animator.render_layers(row, alpha=True).alpha for row in (values(), leaning))
    uncovered = ((still_person > 0.9) & (moved_person < 0.02)).astype(np.uint8)
    inner = cv2.distanceTransform(uncovered, cv2.DIST_L2, 5) > 16  # well away from the outline
    backdrop = cv2.distanceTransform(((still_person < 0.02) & (moved_person < 0.02)).astype(np.uint8),
                                     cv2.DIST_L2, 5) > 4
    luma = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY).astype(np.float32)
    fine = luma - cv2.GaussianBlur(luma, (0, 0), 1.0)
    assert inner.sum() > 500
    assert fine[inner].std() > 0.6 * fine[backdrop].std()


def test_a_leaning_person_cut_out_drags_no_copy_of_the_person_beside_it(shoulder_to_shoulder):
    # Two people shoulder to shoulder (as above), the first leaning: with alpha, every pixel that shows (alpha
    # over a half) shows what the opaque frame shows there. The whole alpha was moved with her body, the
    # neighbour's with it: a second copy of the neighbour's suit, opaque where the opaque frame shows the
    # backdrop (found by a visual pass on 2008_001322: a second cheek and mouth beside a woman's face).
    _, subjects, first = shoulder_to_shoulder
    group = GroupAnimator(subjects)
    for lean in (-8.0, 8.0):
        rows = {first.face_index: values(torso_lean=lean)}
        opaque = group.render(rows).astype(int)
        cut_out = group.render_layers(rows, alpha=True)
        shown = cut_out.alpha > 0.5
        differs = shown & (np.abs(cut_out.rgb.astype(int) - opaque).max(axis=2) > 40)
        # (0.0025: the astronaut's hazy mask inside the torso blends the plate in there: 448 such pixels at a lean of
        # -8 with the plate of a smooth fill, 468 with the backdrop's texture mirrored into it, 459 with the head's
        # plate inside the head region; 0.002 of those shown)
        assert differs.sum() < 0.0025 * shown.sum(), (lean, differs.sum(), shown.sum())
        # and the face matte shows her face once, moved whole, with no dragged copy
        still, moved = ((group.render_layers(row, passes=True).mattes["face"] > 0.5).astype(np.uint8)
                        for row in ({first.face_index: values()}, rows))
        assert cv2.connectedComponents(moved)[0] == cv2.connectedComponents(still)[0] == 2, lean
        assert moved.sum() == pytest.approx(still.sum(), rel=0.05), lean


def test_a_group_s_moving_alpha_keeps_its_faint_haze_away_from_the_person(shoulder_to_shoulder):
    # The segmenter's alpha holds a faint haze over the backdrop. A group's moving body cleared it wherever the
    # nearest person was this one, so the haze switched off inside the moving box, cut along its edge (found
    # by a review: 4,274 of 6,643 faint pixels cleared at a breath of 0.05).
    _, subjects, first = shoulder_to_shoulder
    group = GroupAnimator(subjects)
    still = group.render_layers({first.face_index: values()}, alpha=True).alpha
    moved = group.render_layers({first.face_index: values(breathing=0.05)}, alpha=True).alpha
    person = (still > 0.3) | (moved > 0.3)
    away = cv2.distanceTransform((~person).astype(np.uint8), cv2.DIST_L2, 5) > 12
    faint = away & (still > 0.01) & (still < 0.3)
    assert faint.sum() > 1000  # (the case has haze to keep)
    assert np.abs(moved[faint] - still[faint]).max() < 0.01
