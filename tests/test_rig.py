"""Rig properties: defaults reproduce the source, each channel does what its name says."""
from __future__ import annotations

import numpy as np
import pytest

from enliven import landmarks as lm
from enliven.geometry import angles_from_rotation, estimate_head_pose, inside_polygon, rotation_from_angles
from enliven.rig import SEAL_PRESS, Rig
from enliven.shared.channels import CHANNELS

from conftest import channel_values


@pytest.fixture(scope="module")
def rig(subject):
    return Rig(subject.landmarks, subject.pose)


def test_defaults_reproduce_the_source_exactly(rig, subject):
    assert np.abs(rig.targets(channel_values()) - subject.landmarks).max() < 1e-4


def test_every_channel_moves_landmarks(rig, subject):
    # The body channels move the whole person under the head (tests/test_body.py), not the face's rig.
    for channel in (c for c in CHANNELS if c.group != "body"):
        extreme = channel.maximum if channel.maximum != channel.default else channel.minimum
        moved = np.abs(rig.targets(channel_values(**{channel.name: extreme})) - subject.landmarks)[:, :2].max()
        assert moved > 1.0, f"{channel.name} at {extreme} moves landmarks only {moved:.2f} px"


@pytest.mark.parametrize("yaw, pitch, roll", [(20, 0, 0), (-30, 0, 0), (0, 15, 0), (0, -20, 0), (0, 0, 25), (15, 10, -10)])
def test_head_pose_channels_turn_the_head_by_the_requested_angles(rig, subject, yaw, pitch, roll):
    targets = rig.targets(channel_values(head_yaw=yaw, head_pitch=pitch, head_roll=roll))
    measured = estimate_head_pose(targets).rotation
    expected = rotation_from_angles(yaw, pitch, roll) @ subject.pose.rotation
    assert np.allclose(measured, expected, atol=1e-3)


def test_pose_angles_round_trip():
    for angles in [(10, -5, 3), (-40, 25, -30), (0, 0, 0)]:
        assert np.allclose(angles_from_rotation(rotation_from_angles(*angles)), angles, atol=1e-9)


def test_head_translation_directions(rig, subject):
    right = rig.targets(channel_values(head_x=0.2)) - subject.landmarks
    up = rig.targets(channel_values(head_y=0.2)) - subject.landmarks
    assert right[:, 0].mean() == pytest.approx(0.2 * subject.face_width, rel=0.05)
    assert up[:, 1].mean() == pytest.approx(-0.2 * subject.face_width, rel=0.05)  # image y points down


def test_blink_closes_only_the_named_eye_and_sides_mirror(rig, subject):
    left = rig.targets(channel_values(blink_l=1))
    right = rig.targets(channel_values(blink_r=1))
    assert lm.eye_aspect_ratio(left, "left") < 0.05
    assert lm.eye_aspect_ratio(left, "right") == pytest.approx(subject.eye_openness[1], abs=1e-3)
    assert lm.eye_aspect_ratio(right, "right") < 0.05
    left_travel = np.abs(left - subject.landmarks)[list(lm.LEFT_EYE_UPPER)].max()
    right_travel = np.abs(right - subject.landmarks)[list(lm.RIGHT_EYE_UPPER)].max()
    assert left_travel == pytest.approx(right_travel, rel=0.25)


def test_half_blink_is_half_way(rig, subject):
    half = lm.eye_aspect_ratio(rig.targets(channel_values(blink_l=0.5)), "left")
    assert 0.35 < half / subject.eye_openness[0] < 0.7


def test_gaze_moves_the_irises(rig, subject):
    for channel, axis, sign in (("gaze_x", 0, +1), ("gaze_y", 1, -1)):
        for value in (1.0, -1.0):
            moved = rig.targets(channel_values(**{channel: value})) - subject.landmarks
            for centre in (468, 473):
                assert np.sign(moved[centre, axis]) == sign * value
                assert abs(moved[centre, axis]) > 1.0


def test_a_gaze_stops_the_iris_short_of_the_eye_s_corner(subject):
    """An iris the photo shows near a corner (looking that way already, or a turned face's eye) moves toward it
    only until its centre is GAZE_CORNER_MARGIN radii inside: carried past the corner, the lids clipped it away
    and the eye showed no pupil (2007_007763, gaze_x -1). Away from that corner it moves as far as any."""
    from enliven.rig import GAZE_CORNER_MARGIN
    points = subject.landmarks.copy()
    upper = lm.eye_lids("right")[0]
    corner = points[[upper[0], upper[-1]], 0].min()  # the right eye's corner toward -x
    iris = list(lm.RIGHT_IRIS)
    radius = lm.iris_circle(points, lm.RIGHT_IRIS)[1]
    points[iris, 0] += corner + 1.0 * radius - points[iris[0], 0]  # its centre one radius from that corner
    rig = Rig(points, subject.pose)
    toward, away = (rig.targets(channel_values(gaze_x=v))[iris[0], 0] for v in (-1, 1))
    assert toward - corner == pytest.approx(GAZE_CORNER_MARGIN * radius, abs=1e-3)
    free = Rig(subject.landmarks, subject.pose)
    assert away - points[iris[0], 0] == pytest.approx(
        free.targets(channel_values(gaze_x=1))[iris[0], 0] - subject.landmarks[iris[0], 0], rel=0.02)
    # Without the stop it would have gone further than the room it had.
    assert free.targets(channel_values(gaze_x=-1))[iris[0], 0] - subject.landmarks[iris[0], 0] < -(1 - GAZE_CORNER_MARGIN) * radius


def test_a_small_eye_s_gaze_stops_a_pixel_and_a_half_short_of_its_corner(subject):
    """On a face a few dozen pixels wide (eyes 7 px, irises 3 px across: 2007_007763) half a radius is under a
    pixel: the iris went into the corner's last pixel, the lids hid more than half of it and its dark dot faded.
    There the stop is GAZE_CORNER_MARGIN_PX pixels; a large eye keeps its half radius."""
    from enliven.rig import GAZE_CORNER_MARGIN, GAZE_CORNER_MARGIN_PX
    upper = lm.eye_lids("right")[0]
    iris = list(lm.RIGHT_IRIS)
    for scale in (0.2, 1.0):
        points = subject.landmarks * scale  # the same face, as a small one in a larger photo (or as it is)
        corner = points[[upper[0], upper[-1]], 0].min()
        radius = lm.iris_circle(points, lm.RIGHT_IRIS)[1]
        margin = max(GAZE_CORNER_MARGIN * radius, GAZE_CORNER_MARGIN_PX)
        points[iris, 0] += corner + margin + 0.5 * radius - points[iris[0], 0]  # half a radius short of the stop
        toward = Rig(points, subject.pose).targets(channel_values(gaze_x=-1))[iris[0], 0]
        assert toward - corner == pytest.approx(margin, abs=1e-3)
        assert (margin > 1.2 * GAZE_CORNER_MARGIN * radius) == (scale < 1)  # the floor holds only on the small eye


def test_the_upper_lid_follows_a_vertical_gaze(rig, subject):
    """Looking down, the upper lid drops with the iris, so no white shows above it; looking up, it lifts."""
    for value in (1.0, -1.0):
        moved = rig.targets(channel_values(gaze_y=value)) - subject.landmarks
        for iris, upper in ((lm.LEFT_IRIS, lm.LEFT_EYE_UPPER), (lm.RIGHT_IRIS, lm.RIGHT_EYE_UPPER)):
            lid = moved[list(upper[1:-1]), 1]
            assert np.all(np.sign(lid) == np.sign(moved[iris[0], 1]))
            assert np.abs(lid).mean() > 0.6 * abs(moved[iris[0], 1])


def test_the_lid_s_skin_comes_down_with_a_lid_looking_down(rig, subject):
    """Looking down, the skin between the lash line and the crease goes part of the lid's way: left still,
    the lid dropped away from it and the lash line was stretched into a dark band."""
    moved = rig.targets(channel_values(gaze_y=-1.0)) - subject.landmarks
    for upper in (lm.LEFT_EYE_UPPER, lm.RIGHT_EYE_UPPER):
        middle = subject.landmarks[upper[len(upper) // 2], :2]
        width = np.linalg.norm(subject.landmarks[upper[0], :2] - subject.landmarks[upper[-1], :2])
        offset = subject.landmarks[:, :2] - middle
        above = (offset[:, 1] < -0.05 * width) & (np.abs(offset[:, 0]) < 0.2 * width)  # image y points down
        above[list(upper)] = False
        nearest_skin = np.flatnonzero(above)[np.argmin(np.linalg.norm(offset[above], axis=1))]
        lid_drop = moved[upper[len(upper) // 2], 1]
        assert 0.25 * lid_drop < moved[nearest_skin, 1] < 0.8 * lid_drop


def test_smile_raises_and_widens_its_own_corner(rig, subject):
    moved = rig.targets(channel_values(smile_l=1)) - subject.landmarks
    assert moved[lm.MOUTH_LEFT_CORNER, 1] < -1 and moved[lm.MOUTH_LEFT_CORNER, 0] > 1  # up and toward image right
    assert np.abs(moved[lm.MOUTH_RIGHT_CORNER]).max() < 0.5 * np.abs(moved[lm.MOUTH_LEFT_CORNER]).max()
    frown = rig.targets(channel_values(smile_r=-1)) - subject.landmarks
    assert frown[lm.MOUTH_RIGHT_CORNER, 1] > 1  # down


def test_jaw_open_parts_the_lips_as_an_oval_and_keeps_the_upper_lip_s_middle(rig, subject):
    opened = rig.targets(channel_values(jaw_open=1))
    assert lm.mouth_openness(opened) > subject.mouth_openness + 0.3
    upper_moved = np.abs(opened - subject.landmarks)[list(lm.LIPS_UPPER_OUTER), :2].max(axis=1)
    assert upper_moved[5] < 0.5 and upper_moved[4:7].max() < 1.0
    assert opened[lm.CHIN, 1] > subject.landmarks[lm.CHIN, 1] + 5
    # The lips part most in the middle and less and less toward the corners, which they keep joined: not
    # a box whose straight sides drop from the ends of a still upper lip to the corners.
    gap = opened[list(lm.LIPS_LOWER_INNER), 1] - opened[list(lm.LIPS_UPPER_INNER), 1]
    middle = len(gap) // 2
    assert gap[0] == gap[-1] == 0  # one point, each corner
    assert (np.diff(gap[:middle + 1]) >= -0.05).all() and (np.diff(gap[middle:]) <= 0.05).all()
    assert max(gap[1], gap[-2]) < 0.65 * gap[middle]


def test_lips_part_opens_the_lips_as_talkers_do_with_the_chin_and_nose_still(rig, subject):
    """Speech parts the lips mostly by their own muscles: the upper lip rises, the lower drops further, and
    the jaw hardly moves (jaw_open alone drops the chin with the lower lip)."""
    parted = rig.targets(channel_values(lips_part=1))
    mouth_width = np.linalg.norm(subject.landmarks[lm.MOUTH_LEFT_CORNER, :2]
                                 - subject.landmarks[lm.MOUTH_RIGHT_CORNER, :2])
    gap_growth = lm.signed_lip_gap(parted) - lm.signed_lip_gap(subject.landmarks)
    assert 0.25 < gap_growth < 0.35
    upper_rise = subject.landmarks[lm.MOUTH_INNER_TOP, 1] - parted[lm.MOUTH_INNER_TOP, 1]
    lower_drop = parted[lm.MOUTH_INNER_BOTTOM, 1] - subject.landmarks[lm.MOUTH_INNER_BOTTOM, 1]
    assert 0.05 * mouth_width < upper_rise < lower_drop
    still = [lm.CHIN, lm.NOSE_BOTTOM, lm.NOSE_TIP]
    assert np.abs(parted[still, :2] - subject.landmarks[still, :2]).max() < 0.02 * mouth_width
    jaw = rig.targets(channel_values(jaw_open=gap_growth / (lm.signed_lip_gap(rig.targets(channel_values(jaw_open=1)))
                                                           - lm.signed_lip_gap(subject.landmarks))))
    assert jaw[lm.CHIN, 1] - subject.landmarks[lm.CHIN, 1] > 0.2 * mouth_width  # the same parting by the jaw


def test_pucker_narrows_and_wide_widens_the_mouth(rig, subject):
    def width(points):
        return np.linalg.norm(points[lm.MOUTH_LEFT_CORNER, :2] - points[lm.MOUTH_RIGHT_CORNER, :2])

    neutral = width(subject.landmarks)
    assert width(rig.targets(channel_values(pucker=1))) < 0.85 * neutral
    assert width(rig.targets(channel_values(wide=1))) > 1.1 * neutral


def test_brows_move_up_and_down(rig, subject):
    brow = list(lm.LEFT_BROW)
    raised = rig.targets(channel_values(brow_l=1)) - subject.landmarks
    lowered = rig.targets(channel_values(brow_l=-1)) - subject.landmarks
    assert raised[brow, 1].mean() < -2 and lowered[brow, 1].mean() > 1
    assert np.abs(raised[list(lm.RIGHT_BROW)]).max() < 0.5
    inner = rig.targets(channel_values(brow_inner_up=1)) - subject.landmarks
    assert inner[list(lm.LEFT_BROW_INNER + lm.RIGHT_BROW_INNER), 1].mean() < -2


def test_expressions_combine_with_pose(rig, subject):
    both = rig.targets(channel_values(jaw_open=1, head_yaw=20))
    assert lm.mouth_openness(both) > subject.mouth_openness + 0.25
    assert angles_from_rotation(estimate_head_pose(both).rotation)[0] > subject.pose.angles[0] + 15


def test_negative_jaw_seals_a_mouth_that_is_open_in_the_photo(rig, subject):
    """A photo mid-word (here: the astronaut's landmarks with the jaw opened) can close its lips: -1 presses
    them together, -0.5 is about half way, and the upper lip moves less than the lower (the jaw closes)."""
    open_photo = rig.targets(channel_values(jaw_open=0.8))
    opened = Rig(open_photo, estimate_head_pose(open_photo))
    photo_gap = lm.signed_lip_gap(open_photo)
    assert photo_gap > 0.3
    sealed = opened.targets(channel_values(jaw_open=-1.0))
    assert -0.25 * photo_gap < lm.signed_lip_gap(sealed) <= 0.0
    assert 0.3 * photo_gap < lm.signed_lip_gap(opened.targets(channel_values(jaw_open=-0.5))) < 0.6 * photo_gap
    upper_moved = np.abs(sealed[lm.MOUTH_INNER_TOP, 1] - open_photo[lm.MOUTH_INNER_TOP, 1])
    lower_moved = np.abs(sealed[lm.MOUTH_INNER_BOTTOM, 1] - open_photo[lm.MOUTH_INNER_BOTTOM, 1])
    assert 0.2 * lower_moved < upper_moved < 0.6 * lower_moved
    assert sealed[lm.CHIN, 1] < open_photo[lm.CHIN, 1] - 0.5 * lower_moved  # the chin rises with the jaw
    eyes = list(lm.RIGHT_EYE_UPPER + lm.LEFT_EYE_UPPER)
    assert np.abs(sealed[eyes] - open_photo[eyes]).max() < 0.05


def test_sealing_a_wide_open_mouth_keeps_its_upper_lip(rig):
    """Sealed lips press a little past each other, but by less than the upper lip is thick: pressed by a
    share of a wide-open mouth's gap, the lower lip rose over the whole (stretched, thin) upper lip, and
    the sealed mouth had none (d19; here it was 1.4 px under the lower one). Half of it shows now."""
    open_photo = rig.targets(channel_values(jaw_open=1.0))
    opened = Rig(open_photo, estimate_head_pose(open_photo))
    sealed = opened.targets(channel_values(jaw_open=-1.0))
    top, inner = lm.MOUTH_OUTER_TOP, lm.MOUTH_INNER_TOP
    photo_lip = open_photo[inner, 1] - open_photo[top, 1]
    shown = min(sealed[lm.MOUTH_INNER_BOTTOM, 1], sealed[inner, 1]) - sealed[top, 1]  # down to the lower lip
    assert lm.signed_lip_gap(open_photo) > 0.5 and lm.signed_lip_gap(sealed) <= 0.0
    assert shown > 0.4 * photo_lip  # (pressed by a quarter of it from each side: half of it shows)


def test_sealing_keeps_the_skin_beside_the_corners_below_them(rig):
    """Sealing raises the chin by a blend of the lower lip's rise, which carried the middle's large rise to
    the skin beside the mouth's corners: it rose past them and folded over them (lip-coloured wedges at the
    corners of d19's closing mouth). Of the skin points just below and beside the corners of this wide-open
    mouth, sealed, 4 rose above the corners' line; at most 1 does now."""
    open_photo = rig.targets(channel_values(jaw_open=1.0))
    opened = Rig(open_photo, estimate_head_pose(open_photo))
    corners = [lm.MOUTH_RIGHT_CORNER, lm.MOUTH_LEFT_CORNER]
    corner_y, width = open_photo[corners, 1].mean(), np.ptp(open_photo[corners, 0])
    lips = open_photo[list(lm.LIPS_UPPER_OUTER + lm.LIPS_LOWER_OUTER[::-1]), :2]
    beside = np.abs(open_photo[:, 0, None] - open_photo[corners, 0][None, :]).min(axis=1) < 0.15 * width
    near = ((open_photo[:, 1] > corner_y) & (open_photo[:, 1] < corner_y + 0.3 * width) & beside
            & ~inside_polygon(open_photo, lips))
    sealed = opened.targets(channel_values(jaw_open=-1.0))
    assert near.sum() >= 4
    assert (sealed[near, 1] < sealed[corners, 1].mean()).sum() <= 1


def test_sealing_an_o_mouth_raises_its_corners_to_where_the_lips_meet(rig):
    """A wide-open "O" has its corners halfway down its opening; the lips meet higher, and the sealed line
    hooked down to the corners at both ends (d19: 0.08 mouth widths). On this O with low corners the corners
    lay 0.095 mouth widths below where the lips meet two points in; now they are level with it."""
    open_photo = rig.targets(channel_values(jaw_open=1.0, pucker=1.0, smile_l=-1.0, smile_r=-1.0))
    sealed = Rig(open_photo, estimate_head_pose(open_photo)).targets(channel_values(jaw_open=-1.0))
    meeting = (sealed[list(lm.LIPS_UPPER_INNER), :2] + sealed[list(lm.LIPS_LOWER_INNER), :2]) / 2
    width = np.linalg.norm(sealed[lm.MOUTH_LEFT_CORNER, :2] - sealed[lm.MOUTH_RIGHT_CORNER, :2])
    for corner, inward in ((0, 2), (-1, -3)):
        assert (meeting[corner, 1] - meeting[inward, 1]) / width < 0.03  # image y points down


def test_negative_jaw_leaves_closed_lips_alone(rig, subject):
    """On a photo whose lips touch (the astronaut's smile, closed) negative jaw_open moves nothing."""
    touching = -1.0 / (1.0 + 2.0 * SEAL_PRESS)  # where the lips just meet, before they press
    closed_photo = rig.targets(channel_values(jaw_open=touching))
    assert abs(lm.signed_lip_gap(closed_photo)) < 1e-3 < lm.mouth_openness(subject.landmarks)
    closed = Rig(closed_photo, estimate_head_pose(closed_photo))
    moved = np.abs(closed.targets(channel_values(jaw_open=-1.0)) - closed_photo)[:, :2].max()
    assert moved < 0.05


def test_sealing_a_closed_down_turned_mouth_keeps_its_corners(rig):
    """Sealing raises a corner that lies below where the lips meet beside it (an open "O"), but only as far
    as the lips beside it are apart: a closed mouth turned down at the corners has no opening to close, and
    its corners stay where the photo has them."""
    frowning = rig.targets(channel_values(jaw_open=-1.0 / (1.0 + 2.0 * SEAL_PRESS)))  # lips that just touch
    corners = [lm.MOUTH_RIGHT_CORNER, lm.MOUTH_LEFT_CORNER]
    width = np.ptp(frowning[corners, 0])
    ring_ends = [ring[end] for ring in lm.LIPS_UPPER_RINGS + lm.LIPS_LOWER_RINGS for end in (0, -1)]
    frowning[ring_ends, 1] += 0.08 * width  # image y points down
    beside = [lm.LIPS_UPPER_INNER[1], lm.LIPS_UPPER_INNER[-2]]
    assert np.all(frowning[corners, 1] > frowning[beside, 1] + 0.03 * width)
    assert lm.signed_lip_gap(frowning) <= 0.0
    sealed = Rig(frowning, estimate_head_pose(frowning)).targets(channel_values(jaw_open=-1.0))
    assert np.abs(sealed[corners] - frowning[corners])[:, :2].max() < 0.05


def test_the_jaw_for_an_opening_parts_any_photo_s_lips_by_that_much(rig):
    """Lip-sync and talk open the lips by how open the speech is, from closed, on any photo: on one whose
    mouth is wide open, a half-open vowel is a negative jaw_open that closes the lips part way."""
    open_photo = rig.targets(channel_values(jaw_open=0.8))
    closed_photo = rig.targets(channel_values(jaw_open=-1.0 / (1.0 + 2.0 * SEAL_PRESS)))
    for photo in (open_photo, closed_photo):
        photo_rig = Rig(photo, estimate_head_pose(photo))
        mouth = photo_rig.mouth_opening()
        assert 0.3 < mouth.opens < 0.7
        for opening in (0.0, 0.15, 0.4, 0.8):
            jaw = float(mouth.jaw_for(opening))
            gap = lm.signed_lip_gap(photo_rig.targets(channel_values(jaw_open=jaw)))
            assert abs(gap - opening * mouth.opens) < 0.01, (opening, jaw, gap)
    wide = Rig(open_photo, estimate_head_pose(open_photo)).mouth_opening()
    assert wide.gap > 0.3 and -1.0 < float(wide.jaw_for(0.4)) < 0.0


def test_pursed_lips_stay_together(rig):
    """pucker ("oo") rounds closed lips without parting them (it showed teeth before)."""
    closed_photo = rig.targets(channel_values(jaw_open=-1.0 / (1.0 + 2.0 * SEAL_PRESS)))
    closed = Rig(closed_photo, estimate_head_pose(closed_photo))
    puckered = closed.targets(channel_values(pucker=1.0))
    assert abs(lm.signed_lip_gap(puckered)) < 0.01
    assert np.linalg.norm(puckered[lm.MOUTH_LEFT_CORNER] - puckered[lm.MOUTH_RIGHT_CORNER]) < 0.9 * np.linalg.norm(
        closed_photo[lm.MOUTH_LEFT_CORNER] - closed_photo[lm.MOUTH_RIGHT_CORNER])


def test_looking_down_the_eye_still_shows_most_of_its_iris(rig):
    """Looking down, the upper lid drops with the iris and the lower lid a little under it: with the lower lid
    held still, the iris sank behind it and the eye read as a squint (0.58 of the astronaut's iris disc inside
    the opening; the tracker then saw the iris move a third of the way on d9)."""
    from enliven import artifacts as af

    still, down = rig.targets(channel_values()), rig.targets(channel_values(gaze_y=-1))
    shape = (int(still[:, 1].max()) + 20, int(still[:, 0].max()) + 20)
    for iris, side in ((lm.RIGHT_IRIS, "right"), (lm.LEFT_IRIS, "left")):
        lower = list(lm.eye_lids(side)[1][1:-1])
        assert (down[lower, 1] - still[lower, 1]).mean() > 0.2 * (down[iris[0], 1] - still[iris[0], 1])  # (y grows down)
        centre = down[iris[0], :2]
        radius = float(np.linalg.norm(down[list(iris[1:]), :2] - centre, axis=1).mean())
        disc = af.disc_mask(shape, centre, radius)
        assert (disc & af.polygon_mask(shape, down[list(lm.eye_polygon(side)), :2])).sum() > 2 / 3 * disc.sum()


def test_looking_up_the_lower_lid_rises_a_little_after_the_iris(rig):
    """Looking up, a lower lid held still left a band of white under the iris that read as a startled stare
    (d9, d19); it rises a little after the iris, as lower lids do, and stays under it."""
    still, up = rig.targets(channel_values()), rig.targets(channel_values(gaze_y=1))
    for iris, side in ((lm.RIGHT_IRIS, "right"), (lm.LEFT_IRIS, "left")):
        lower = list(lm.eye_lids(side)[1][1:-1])
        rise = (still[lower, 1] - up[lower, 1]).mean()  # (y grows down)
        iris_rise = still[iris[0], 1] - up[iris[0], 1]
        assert 0.2 * iris_rise < rise < 0.5 * iris_rise
        radius = float(np.linalg.norm(up[list(iris[1:]), :2] - up[iris[0], :2], axis=1).mean())
        assert up[lower, 1].min() > up[iris[0], 1] + 0.5 * radius
