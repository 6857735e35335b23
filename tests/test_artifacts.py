"""The artifact figures (enliven.artifacts) on synthetic images whose answer is known by construction."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from enliven import artifacts as af
from enliven import landmarks as lm

SIDE = 160


def ellipse_outline(centre=(80.0, 80.0), axes=(45.0, 60.0), count=36) -> np.ndarray:
    angles = np.linspace(0, 2 * np.pi, count, endpoint=False)
    return np.column_stack([centre[0] + axes[0] * np.cos(angles), centre[1] + axes[1] * np.sin(angles)])


def face_on_hair(scale: int) -> np.ndarray:
    """A bright face ellipse on a dark backdrop, drawn at SIDE / scale and enlarged nearest-neighbour
    by `scale` (scale 1: drawn anti-aliased at full size, the smooth outline of a photo)."""
    small = np.full((SIDE // scale, SIDE // scale, 3), 40, np.uint8)
    outline = (ellipse_outline() + 0.5) / scale - 0.5
    cv2.fillPoly(small, [np.round(outline * 16).astype(np.int32)], (220, 180, 160), cv2.LINE_AA, shift=4)
    return cv2.resize(small, (SIDE, SIDE), interpolation=cv2.INTER_NEAREST)


def test_a_stair_step_outline_is_rougher_than_a_smooth_one():
    smooth, stairs = face_on_hair(1), face_on_hair(4)
    outline = ellipse_outline()
    assert af.outline_roughness(smooth, outline, smooth, outline, 6) == pytest.approx(1.0)
    assert af.outline_roughness(stairs, outline, smooth, outline, 6) > 5
    # The same staircase in both: as rough as its source.
    assert af.outline_roughness(stairs, outline, stairs, outline, 6) == pytest.approx(1.0)
    # A flat photo has no outline to compare with.
    assert np.isnan(af.outline_roughness(stairs, outline, np.full_like(smooth, 90), outline, 6))


def test_a_lone_bright_pixel_is_a_speck_and_an_edge_is_not():
    image = face_on_hair(1)
    assert not af.speck_mask(image).any()
    specked = image.copy()
    specked[10, 10] = 255
    specked[100, 70] = 0
    assert af.speck_mask(specked).sum() == 2
    assert af.new_specks(specked, image) == 2
    assert af.new_specks(image, specked) == 0  # specks the source had and the frame lost are no artifact


def eye(iris_centre, smear: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """A white almond eye with a dark, textured iris disc of radius 12 (optionally smeared sideways into a
    chevron, as a piecewise-affine warp stretches it), and the eye's opening polygon."""
    rng = np.random.default_rng(0)
    image = np.full((80, 120, 3), 190, np.uint8)  # skin
    opening = np.array([[20, 40], [45, 25], [75, 25], [100, 40], [75, 55], [45, 55]], np.float64)
    cv2.fillPoly(image, [opening.astype(np.int32)], (235, 235, 235))
    ys, xs = np.mgrid[:80, :120]
    texture = (60 + 40 * rng.random((80, 120))).astype(np.uint8)
    # The smear pulls the disc's middle rows sideways more than its top and bottom rows: "<" shapes.
    dx = xs - iris_centre[0] - smear * (1 - np.abs(ys - iris_centre[1]) / 12.0).clip(0, 1)
    disc = dx ** 2 + (ys - iris_centre[1]) ** 2 <= 144
    inside = af.polygon_mask(image.shape, opening)
    image[disc & inside] = texture[disc & inside, None]
    return image, opening


def test_iris_disc_error_is_small_for_a_rigid_shift_and_large_for_a_smear():
    source, opening = eye((60.0, 40.0))
    # A rigid shift: the texture moves with the disc.
    moved = np.full_like(source, 190)
    cv2.fillPoly(moved, [opening.astype(np.int32)], (235, 235, 235))
    shift = np.float32([[1, 0, 8], [0, 1, 0]])
    shifted = cv2.warpAffine(source, shift, (120, 80), flags=cv2.INTER_NEAREST)
    inside = af.polygon_mask(source.shape, opening)
    moved[inside] = shifted[inside]
    rigid = af.iris_disc_error(moved, opening, (68.0, 40.0), source, opening, (60.0, 40.0), 12.0)
    smeared, _ = eye((60.0, 40.0), smear=10.0)
    smear = af.iris_disc_error(smeared, opening, (68.0, 40.0), source, opening, (60.0, 40.0), 12.0)
    assert rigid < 5
    assert smear > rigid + 10


def test_the_uncovered_white_counts_only_a_white_brighter_than_the_photos():
    """The iris moves 14 px; the white behind it is drawn as bright as the photo's own white (no excess), or
    as a cream blot 40 levels brighter (as d9's was: 230 against 190)."""
    source, opening = eye((60.0, 40.0))
    source[source == 235] = 190  # a white in soft light, no brighter than the skin
    moved, _ = eye((74.0, 40.0))
    moved[moved == 235] = 190
    as_bright = af.uncovered_white_excess(moved, opening, (74.0, 40.0), source, opening, (60.0, 40.0), 12.0)
    blot = moved.copy()
    uncovered = af.disc_mask(blot.shape, (60.0, 40.0), 12.0) & ~af.disc_mask(blot.shape, (74.0, 40.0), 14.4)
    blot[uncovered & af.polygon_mask(blot.shape, opening)] = 230
    brighter = af.uncovered_white_excess(blot, opening, (74.0, 40.0), source, opening, (60.0, 40.0), 12.0)
    assert abs(as_bright) < 3
    assert brighter == pytest.approx(40, abs=3)


def test_iris_roundness_and_travel():
    angles = np.linspace(0, 2 * np.pi, 4, endpoint=False)
    circle = np.column_stack([10 + 5 * np.cos(angles), 20 + 5 * np.sin(angles)])
    assert af.iris_roundness(circle) < 1e-9
    squashed = np.column_stack([10 + 8 * np.cos(angles), 20 + 4 * np.sin(angles)])
    assert af.iris_roundness(squashed) > 0.2
    assert af.travel_ratio((0, 0), (2, 0.5), (4, 0)) == pytest.approx(0.5)
    assert af.travel_ratio((0, 0), (-1, 0), (4, 0)) < 0  # moved the wrong way


def test_lash_line_thickness_counts_the_dark_rows_across_the_lid():
    image = np.full((60, 100, 3), 200, np.uint8)
    lid = np.array([[20.0, 30.0], [50.0, 30.0], [80.0, 30.0]])  # 60 px wide
    image[29:32] = 40  # a 3-row line
    assert af.lash_line_thickness(image, lid) == pytest.approx(3 / 60)
    image[29:41] = 40  # a 12-row crescent
    assert af.lash_line_thickness(image, lid) == pytest.approx(12 / 60)


def test_lash_line_thickness_leaves_out_a_socket_shadow_off_the_line():
    """A deep-set eye: the brow's shadow lies dark on the upper lid, lighter lid skin between it and the line.
    Only the line counts; the same shadow running down into the line counts whole, as a crescent would."""
    image = np.full((60, 100, 3), 200, np.uint8)
    lid = np.array([[20.0, 30.0], [50.0, 30.0], [80.0, 30.0]])
    image[29:32] = 40  # the line
    image[16:24] = 30  # the shadow, 6 rows above it
    assert af.lash_line_thickness(image, lid) == pytest.approx(3 / 60)
    image[24:29] = 60
    assert af.lash_line_thickness(image, lid) == pytest.approx(16 / 60)
    image[24:29] = 200
    image[29:32] = 180  # no line at all: the shadow alone reads as none
    assert af.lash_line_thickness(image, lid) == 0
    image[29:32] = 40
    image[16:26] = 20  # a shadow darker than the line, its lower edge within reach of the line: still the line
    assert af.lash_line_thickness(image, lid) == pytest.approx(3 / 60)
    assert af.lash_line_thickness(image, lid - (200, 0)) == 0  # a lid outside the picture shows no line


def test_hair_slip_counts_the_ring_on_the_person_not_the_backdrop():
    """The ring beside the upper face moves with the face. On hair it must find the photo's hair again; on the
    backdrop the backdrop stays put, and a busy one (bald_guys' collage tiles) differs there by design."""
    points = np.zeros((lm.MESH_POINTS, 3))
    oval = ellipse_outline(count=len(lm.FACE_OVAL))
    points[list(lm.FACE_OVAL), :2] = oval
    photo = np.full((SIDE, SIDE, 3), 90, np.uint8)
    person = np.zeros((SIDE, SIDE), np.float32)
    person[:, :80] = 1.0  # hair on the left half of the ring; backdrop on the right
    backdrop_changed, hair_changed = photo.copy(), photo.copy()
    backdrop_changed[:, 80:] = 200
    hair_changed[:, :80] = 200
    assert af.hair_slip(backdrop_changed, points, photo, points) > 50  # blind to where the ring lies
    assert af.hair_slip(backdrop_changed, points, photo, points, person) == 0
    assert af.hair_slip(hair_changed, points, photo, points, person) == pytest.approx(110)
    # The mask may cover a region of the photo only (a head region): its origin places it.
    region = person[20:, 10:]
    assert af.hair_slip(backdrop_changed, points, photo, points, region, (10, 20)) == 0
    assert np.isnan(af.hair_slip(hair_changed, points, photo, points, np.zeros_like(person)))


def test_hair_slip_forgives_a_ring_that_drifts_a_pixel_or_two_but_not_a_face_sliding_over_its_hair():
    """The ring is a scaled oval, not a point of the head: on a turn it drifts a pixel or two against the
    head's real edge (off a bald scalp onto the backdrop). That is not slip; a face slid over its hair is."""
    points = np.zeros((lm.MESH_POINTS, 3))
    points[list(lm.FACE_OVAL), :2] = ellipse_outline(count=len(lm.FACE_OVAL))  # 90 px wide
    ring = ellipse_outline(axes=(45.0 * af.HAIR_RING, 60.0 * af.HAIR_RING), count=len(lm.FACE_OVAL))
    def head(axes: tuple[float, float], centre=(80.0, 80.0)) -> np.ndarray:  # a scalp, then a face on it
        image = np.full((SIDE + 40, SIDE + 40, 3), 230, np.uint8)  # a bright backdrop
        cv2.ellipse(image, (round(centre[0]), round(centre[1])), (round(axes[0]), round(axes[1])), 0, 0, 360,
                    (60, 40, 30), -1)
        cv2.ellipse(image, (round(centre[0]), round(centre[1])), (45, 60), 0, 0, 360, (220, 170, 150), -1)
        return image
    edge = (45.0 * af.HAIR_RING + 1, 60.0 * af.HAIR_RING + 1)  # the ring lies a pixel inside the scalp's edge
    photo = head(edge)
    assert np.all(photo[np.round(ring[:, 1]).astype(int), np.round(ring[:, 0]).astype(int)] == (60, 40, 30))
    drifted = head((edge[0] - 2, edge[1] - 2))  # the ring now lies on the backdrop, 1-2 px past the edge
    assert af.hair_slip(drifted, points, photo, points) < 1
    # The head drawn 9 px to the right of where the rig put the ring: the ring's left side lies on the
    # backdrop, its right side on the face.
    slid = head(edge, centre=(89.0, 80.0))
    assert af.hair_slip(slid, points, photo, points) > 40


def test_the_hairs_edge_left_behind_is_counted_but_not_the_backdrops_grain():
    """A dark line left on the backdrop along where the person's edge was is counted; the blotches of a
    coarse-grained backdrop (s12's old print: 42 pixels beside a coat that moved a pixel) are not."""
    rng = np.random.default_rng(0)
    blotches = cv2.GaussianBlur(rng.normal(0.0, 1.0, (SIDE, SIDE)).astype(np.float32), (0, 0), 2.0)
    backdrop = np.clip(150 + 18 * blotches / blotches.std(), 0, 255).astype(np.uint8)
    photo = np.repeat(backdrop[..., None], 3, axis=2)
    person = np.zeros((SIDE, SIDE), np.float32)
    cv2.circle(person, (80, 80), 30, 1.0, -1)
    photo[person > 0.5] = (200, 160, 140)
    plate = np.full_like(photo, 150)  # the smooth inpainted backdrop
    moved_away = np.zeros_like(person)  # the person moved off everything around it
    face_width = 60.0  # the band is EDGE_REACH * 60 = 3.6 px wide
    assert af.edge_left_behind(photo, photo, plate, person, moved_away, face_width) <= 5
    with_line = photo.copy()
    ring = np.zeros((SIDE, SIDE), np.uint8)
    cv2.circle(ring, (80, 80), 32, 1, 2)
    with_line[ring > 0] = 60  # the hair's dark fuzz, just outside the mask
    assert af.edge_left_behind(with_line, with_line, plate, person, moved_away, face_width) > 100
    # Beside an outline that stayed, or moved a pixel, the dark line is the photo's own, not left behind (s12's
    # blotches and 2008_001322's leaves beside a turned ear read 42 and 32 before; an edge the person really
    # left, as before the mask's tail, 85-177 either way); 10 px away, the side it left is counted.
    for shift, counted in ((0, False), (1, False), (10, True)):
        moved = np.zeros_like(person)
        cv2.circle(moved, (80 + shift, 80), 30, 1.0, -1)
        left = af.edge_left_behind(with_line, with_line, plate, person, moved, face_width)
        assert left > 40 if counted else left <= 5
