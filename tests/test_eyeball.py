"""The eyeball a gaze uncovers (enliven.engines.eyes), on an eye the test draws: what fills the hole the
moved iris leaves, and how far the hole reaches."""
from __future__ import annotations

import cv2
import numpy as np

from enliven.engines.eyes import IRIS_FILL, build_eyeball, eyeball_turn
from enliven.engines.palette import LUMA, palette_of, saturation

SKIN = (200, 150, 120)
IRIS = (70, 90, 60)
CENTRE = np.array([60.0, 40.0])
RADIUS = 12.0


def _lids(height: float) -> tuple[np.ndarray, np.ndarray]:
    """Upper and lower lid (9 points each, corner to corner) of an almond eye 80 px wide around CENTRE."""
    xs = np.linspace(-40.0, 40.0, 9)
    arch = np.sqrt(np.clip(1 - (xs / 40.0) ** 2, 0, 1))
    upper = np.column_stack([CENTRE[0] + xs, CENTRE[1] - height * arch])
    lower = np.column_stack([CENTRE[0] + xs, CENTRE[1] + 0.8 * height * arch])
    return upper, lower


def _eye(sclera: tuple[int, int, int], height: float = 14.0, iris_above: float = 0.0,
         skin: tuple[int, int, int] = SKIN) -> tuple[np.ndarray, ...]:
    """A photo of one eye: `skin`, the opening in `sclera`'s colour, an iris disc clipped by the lids (reaching
    `iris_above` pixels past the upper lid's contour, as a real iris shows up to the lashes)."""
    image = np.zeros((90, 130, 3), np.uint8)
    image[:] = skin
    image[80:, :40], image[80:, 40:80] = (40, 80, 200), (60, 170, 60)  # a colour photo, not a sepia one
    upper, lower = _lids(height)
    opening = np.concatenate([upper, lower[::-1][1:-1]])
    cv2.fillPoly(image, [np.round(opening).astype(np.int32)], sclera)
    shown = np.zeros(image.shape[:2], np.uint8)
    cv2.fillPoly(shown, [np.round(np.concatenate([upper - (0, iris_above), lower[::-1][1:-1]])).astype(np.int32)], 1)
    disc = np.zeros_like(shown)
    cv2.circle(disc, tuple(CENTRE.astype(int)), int(RADIUS), 1, -1)
    image[(disc & shown) > 0] = IRIS
    return image, upper, lower


def _hole_centre(eyeball) -> np.ndarray:
    """The fill where the iris was, away from the hole's edge: a few pixels around the iris's centre."""
    cx, cy = (CENTRE - eyeball.origin).astype(int)
    return eyeball.sclera[cy - 3:cy + 4, cx - 3:cx + 4].reshape(-1, 3).astype(np.float32)


def test_an_eye_showing_no_sclera_of_its_own_takes_the_other_eyes():
    """A shadowed eye whose opening shows only dusky pink (no bright, little coloured sclera) is filled in
    the tint the other eye's white shows, not in a grey guessed from its own shadow; but no brighter than
    this eye's own brightest (d19: the other eye's white, lit brighter, showed as a blot 30 levels above
    anything the shadowed eye shows)."""
    shadowed = (150, 105, 95)
    image, upper, lower = _eye(sclera=shadowed)
    palette = palette_of(image)
    other = np.array([235.0, 215.0, 205.0], np.float32)
    borrowed = _hole_centre(build_eyeball(image, CENTRE, RADIUS, upper, lower, palette, other_sclera=other))
    tint = lambda pixels: np.median(pixels / pixels.sum(axis=1, keepdims=True), axis=0)
    assert np.abs(tint(borrowed) - tint(other[None])).max() < 0.02
    assert (borrowed @ LUMA).mean() <= float(np.array(shadowed, np.float32) @ LUMA) + 4


def test_an_eye_when_neither_shows_sclera_takes_the_colour_around_the_hole():
    """Where neither eye shows sclera (small or squinting eyes, as on bald_guys' faces at 768 px) the
    guessed white, pulled toward grey, showed as a blue-white blot in a warm-lit eye. The fill takes the
    colour around the hole too: on this dusky pink opening its saturation is 0.19 (0.14 from the guess)."""
    image, upper, lower = _eye(sclera=(150, 105, 95))
    fill = _hole_centre(build_eyeball(image, CENTRE, RADIUS, upper, lower, palette_of(image)))
    assert np.median(saturation(fill)) > 0.17


def test_an_eye_showing_its_own_sclera_keeps_its_colour():
    image, upper, lower = _eye(sclera=(225, 222, 218))
    eyeball = build_eyeball(image, CENTRE, RADIUS, upper, lower, palette_of(image),
                            other_sclera=np.array([120.0, 60.0, 60.0], np.float32))
    assert eyeball.sclera_colour is not None
    fill = _hole_centre(eyeball)
    assert np.median(saturation(fill)) < 0.1 and (fill @ LUMA).mean() > 180


def test_a_white_tinted_by_a_warm_light_is_read_as_sclera():
    """A warm light tints the white of the eye too: on bald_guys' warm-lit faces the whites beside the iris
    have a saturation of 0.16-0.27 in lid skin of 0.45-0.55. Read as skin, they left the eye "showing no
    sclera": a gaze slid none of it and uncovered a grey-beige disc, the colour of what surrounds the hole,
    where the photo shows a bright white. A pixel beside the iris is sclera when it is less coloured than half
    the lid skin around it."""
    white = (240, 205, 175)  # saturation 0.27
    image, upper, lower = _eye(sclera=white, skin=(215, 140, 95))  # skin 0.56
    eyeball = build_eyeball(image, CENTRE, RADIUS, upper, lower, palette_of(image))
    assert eyeball.sclera_beside == (True, True)  # so a gaze slides the photo's own white (eyeball_turn)
    assert eyeball.sclera_colour is not None
    tint = lambda colour: np.asarray(colour, np.float32) / np.sum(colour)
    assert np.abs(tint(eyeball.sclera_colour) - tint(white)).max() < 0.02
    assert float(np.mean(_hole_centre(eyeball) @ LUMA)) > float(np.array(white, np.float32) @ LUMA) - 10


def test_the_hole_reaches_the_iris_showing_past_the_lid_contour():
    """The lid landmarks run on the rims; the iris shows a little above them, under the lashes. Those pixels
    are part of the hole (filled with sclera behind a moved iris), not left behind as a crescent of iris."""
    image, upper, lower = _eye(sclera=(225, 222, 218), height=9.0, iris_above=2.0)  # the lids clip the iris
    eyeball = build_eyeball(image, CENTRE, RADIUS, upper, lower, palette_of(image))
    x, y = int(CENTRE[0] - eyeball.origin[0]), int(round(CENTRE[1] - 9.0 - 1.0 - eyeball.origin[1]))
    assert np.array_equal(image[y + eyeball.origin[1], x + eyeball.origin[0]], IRIS)
    above_contour = eyeball.sclera[y, x - 3:x + 4].astype(np.float32)
    assert np.abs(above_contour - np.array(IRIS, np.float32)).max(axis=1).min() > 40
    assert eyeball.opening[y, x] > 0.5


def test_the_fill_joins_a_shadowed_corner_without_a_seam():
    """An eye whose white is bright on one side of the iris and in shadow on the other: the fill carries the
    shadow's brightness up to the hole's edge there, instead of the bright side's white ending in a step."""
    image, upper, lower = _eye(sclera=(225, 222, 218))
    image[(image[..., 0] == 225) & (np.arange(image.shape[1])[None, :] > CENTRE[0])] = (120, 118, 116)
    eyeball = build_eyeball(image, CENTRE, RADIUS, upper, lower, palette_of(image))
    x = int(round(CENTRE[0] + RADIUS * 1.45 - eyeball.origin[0]))  # the hole's right edge, on the middle row
    y = int(round(CENTRE[1] - eyeball.origin[1]))
    inside_edge = float(eyeball.sclera[y, x - 2].astype(np.float32) @ LUMA)
    outside_edge = float(eyeball.sclera[y, x + 2].astype(np.float32) @ LUMA)
    assert abs(inside_edge - outside_edge) < 20


def test_a_gaze_slides_the_eyeball_only_where_the_photo_shows_sclera_to_slide():
    """The eyeball's surface slides with the iris along the eye's axis: the whole gaze at the iris, none at
    the corners, none across. Where the side the iris leaves shows no sclera (a corner in deep shadow), it does
    not slide: stretched, that shadow read as iris left behind, to people and to the face tracker (d9 at
    gaze_x -1: re-detected travel 0.65 of the request with the fill, 0.09 with the shadow slid over)."""
    corners, centre, gaze = np.array([[10.0, 20.0], [90.0, 20.0]]), np.array([60.0, 20.0]), np.array([6.0, 2.0])
    shift = eyeball_turn((100, 40), corners, centre, gaze, (True, True))
    assert np.allclose(shift[20, 60], (-6.0, 0.0))  # the gaze along the axis, nothing across it
    assert np.allclose(shift[20, 10], 0.0) and np.allclose(shift[20, 90], 0.0)
    assert np.isclose(shift[20, 35, 0], -3.0) and np.isclose(shift[20, 75, 0], -3.0)
    assert np.allclose(shift[:, 60], shift[20, 60])  # every row slides alike
    # The iris moves toward the second corner: the first's side is the one it leaves.
    assert np.array_equal(eyeball_turn((100, 40), corners, centre, gaze, (False, True)), np.zeros((40, 100, 2)))
    assert np.allclose(eyeball_turn((100, 40), corners, centre, gaze, (True, False)), shift)


def test_the_eyeball_says_on_which_side_it_shows_sclera():
    image, upper, lower = _eye((235, 235, 230))
    image[:, 60:] = np.where((image[:, 60:] == (235, 235, 230)).all(axis=2)[..., None], (40, 40, 45), image[:, 60:])
    eyeball = build_eyeball(image, CENTRE, RADIUS, upper, lower, palette_of(image))
    assert eyeball.sclera_beside == (True, False)  # white toward the left corner, shadow toward the right


def test_the_fill_runs_into_what_borders_the_hole_without_a_step():
    """Where the tracked iris sits off the real one (d19: 3 px), a rim of the iris is left beside the hole, and
    the fill, kept at the white's brightness up to the hole's edge, stood against it in a hard step that a
    gaze showed as the painted white's edge (47-55 levels here). The fill runs into its border instead."""
    image, upper, lower = _eye(sclera=(225, 222, 218))
    image[(image[..., 0] == 225) & (np.arange(image.shape[1])[None, :] > CENTRE[0])] = (150, 147, 144)
    tracked, radius = CENTRE - (5.0, 0.0), RADIUS * 0.8
    eyeball = build_eyeball(image, tracked, radius, upper, lower, palette_of(image))
    x = int(round(tracked[0] + radius * IRIS_FILL - eyeball.origin[0]))  # the hole's right edge
    for row in np.round(CENTRE[1] - eyeball.origin[1] + np.array([-4, 0, 4])).astype(int):
        luma = eyeball.sclera[row].astype(np.float32) @ LUMA
        assert abs(luma[x - 1] - luma[x]) < 30  # the last pixel filled against the first left
        assert luma[x - 6] > 90  # the fill itself is still the white's, not its border's shadow


def test_the_uncovered_white_is_no_brighter_than_the_whitest_the_photo_shows():
    """A large iris leaves the photo's white only toward the corners, where the eyeball is shaded darker; the
    white scaled up from there to the shading's bright middle drew d9's uncovered white as a cream blot, 45
    levels brighter than any white in the photo. The fill is no brighter than the photo's whitest."""
    white = (190, 184, 178)
    image, upper, lower = _eye(sclera=white)
    eyeball = build_eyeball(image, CENTRE, RADIUS, upper, lower, palette_of(image))
    assert eyeball.sclera_colour is not None
    hole = np.hypot(*(np.mgrid[:eyeball.sclera.shape[0], :eyeball.sclera.shape[1]][::-1]
                      - (CENTRE - eyeball.origin)[:, None, None])) < RADIUS
    filled = eyeball.sclera[hole].astype(np.float32) @ LUMA
    assert np.percentile(filled, 95) <= float(np.array(white, np.float32) @ LUMA) + 4


def test_the_fill_fades_into_the_lower_lids_rim_it_meets():
    """The lower lid's landmarks run below its visible rim (d9, d19): the hole behind a moved iris reached
    over the rim, and the fill, unanchored there, painted the white down over it in a blot with a hard
    edge (a gaze up on d19 showed a white "U" under the iris). Where the hole meets the rim, the fill is the
    rim's colour, carried across from either side."""
    rim = (150, 95, 90)
    image, upper, lower = _eye(sclera=(225, 222, 218))
    band = np.zeros(image.shape[:2], np.uint8)
    cv2.polylines(band, [np.round(lower - (0, 1.0)).astype(np.int32)], False, 1, thickness=2)
    image[band > 0] = rim  # the rim, over the iris's foot as over the white
    eyeball = build_eyeball(image, CENTRE, RADIUS, upper, lower, palette_of(image))
    x = int(round(CENTRE[0] - eyeball.origin[0]))
    y = int(round(lower[4, 1] - 1.0 - eyeball.origin[1]))  # the rim's middle row, under the iris's centre
    shown = eyeball.sclera[y, x - 2:x + 3].astype(np.float32)
    assert np.abs(shown - np.array(rim, np.float32)).max() < 30
    middle = eyeball.sclera[int(round(CENTRE[1] - eyeball.origin[1])), x].astype(np.float32)
    assert float(middle @ LUMA) > 180  # the white above it is still white


def test_a_squinting_eyes_hole_is_no_brighter_than_the_eye():
    """A squinting eye shows no white: its narrow opening is the dark of the lashes' shadow, hardly wider than
    its iris, and the hole a moved iris leaves is nearly all lid rim, carried across from the skin either
    side. That drew a grey blot beside the iris, brighter than anything the eye shows (bald_guys #8 at the
    photo's own size: 14 levels). Inside the opening the hole is no brighter than the eye's own brightest."""
    image = np.zeros((40, 60, 3), np.uint8)
    image[:] = SKIN
    centre, radius = np.array([30.0, 20.0]), 6.5
    xs = np.linspace(-11.0, 11.0, 9)
    arch = np.sqrt(np.clip(1 - (xs / 11.0) ** 2, 0, 1))
    upper = np.column_stack([centre[0] + xs, centre[1] - 3.0 * arch])
    lower = np.column_stack([centre[0] + xs, centre[1] + 2.5 * arch])
    outline = np.concatenate([upper, lower[::-1][1:-1]])
    cv2.fillPoly(image, [np.round(outline).astype(np.int32)], (70, 52, 46))  # the lashes' shadow
    disc = np.zeros(image.shape[:2], np.uint8)
    cv2.circle(disc, (30, 20), 6, 1, -1)
    opening = np.zeros_like(disc)
    cv2.fillPoly(opening, [np.round(outline).astype(np.int32)], 1)
    image[(disc & opening) > 0] = (35, 30, 28)  # a dark iris
    brightest = np.percentile(image[(opening > 0) & (disc == 0)].astype(np.float32) @ LUMA, 95)
    eyeball = build_eyeball(image, centre, radius, upper, lower, palette_of(image))
    x0, y0 = eyeball.origin
    height, width = eyeball.sclera.shape[:2]
    hole = (opening[y0:y0 + height, x0:x0 + width] > 0) & (disc[y0:y0 + height, x0:x0 + width] > 0)
    filled = eyeball.sclera[hole].astype(np.float32) @ LUMA
    assert np.percentile(filled, 95) <= brightest + 4
