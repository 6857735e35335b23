"""Warp engine output checks that would catch a broken warp."""
from __future__ import annotations

import dataclasses

import cv2
import numpy as np
import pytest
from scipy.spatial import Delaunay

from enliven import artifacts as af
from enliven import landmarks as lm
from enliven.analysis import analyze_image
from enliven.animator import Animator
from enliven.engines.mouth import lip_edge_offsets
from enliven.engines.palette import LUMA
from enliven.engines.folds import fold_cells
from enliven.engines.background import mirrored_into
from enliven.engines.region_edges import border_ramp
from enliven.engines.warp_math import (closed_lash_line, edge_coverage, fill_notches, layer_coverage,
                                      piecewise_affine_displacement, smooth_behind_face, smooth_curve,
                                      triangle_affines, triangle_index_image, upsampled_to_box)
from enliven.errors import BadMotionError
from enliven.geometry import (estimate_head_pose, fit_pose_to_image_points, image_to_camera, inside_polygon,
                              outline_depths, without_inward_lead)
from enliven.shared.presets import preset_motion

from conftest import channel_values


def outside_head_region(frame: np.ndarray, region) -> np.ndarray:
    x0, y0, x1, y1 = region
    keep = np.ones(frame.shape[:2], bool)
    keep[y0:y1, x0:x1] = False
    return frame[keep]


def mouth_box(points: np.ndarray, pad: int = 4):
    mouth = points[list(lm.LIPS_UPPER_OUTER + lm.LIPS_LOWER_OUTER), :2]
    (x0, y0), (x1, y1) = mouth.min(0).astype(int) - pad, mouth.max(0).astype(int) + pad
    return slice(y0, y1), slice(x0, x1)


def bilinear_reference(values: np.ndarray, scale: float, box) -> np.ndarray:
    """upsampled_to_box's contract written out in numpy: pixel p sampled at working position (p + 0.5) scale
    - 0.5, bilinearly, the grid's edge held beyond it."""
    x0, y0, x1, y1 = box
    height, width = values.shape[:2]

    def taps(start, stop, size):
        at = np.clip((np.arange(start, stop) + 0.5) * scale - 0.5, 0, size - 1)
        first = np.minimum(np.floor(at).astype(int), size - 2)
        return first, at - first

    cols, fx = taps(x0, x1, width)
    rows, fy = taps(y0, y1, height)
    fx, fy = fx[None, :, None], fy[:, None, None]
    v = values.astype(np.float64)
    top = v[rows][:, cols] * (1 - fx) + v[rows][:, cols + 1] * fx
    bottom = v[rows + 1][:, cols] * (1 - fx) + v[rows + 1][:, cols + 1] * fx
    return top * (1 - fy) + bottom * fy


def test_a_working_field_is_upsampled_to_full_resolution_without_rounding_positions():
    """The working-resolution fields (a head's displacement, a body's map) are read at every full-resolution
    pixel of a box anywhere in the region, exactly where the pixel's centre falls: OpenCV's warpAffine, used
    before, rounded each position to 1/32 of a working pixel (a head's map off by up to a fifth of a pixel)."""
    rng = np.random.default_rng(3)
    for region, side in (((1004, 1545), 96), ((700, 700), 128), ((480, 667), 96), ((40, 50), 96)):
        scale = min(1.0, side / max(region))
        size = (max(2, round(region[1] * scale)), max(2, round(region[0] * scale)))
        values = cv2.GaussianBlur(rng.normal(0, 10, size + (2,)).astype(np.float32), (0, 0), 2)
        for box in ((0, 0) + region, (region[0] // 3, region[1] // 4, region[0], region[1] - 1), (5, 7, 9, 30)):
            upsampled = upsampled_to_box(values, scale, box)
            assert upsampled.shape == (box[3] - box[1], box[2] - box[0], 2)
            assert np.abs(upsampled - bilinear_reference(values, scale, box)).max() < 1e-3


def test_defaults_give_back_the_photo(animator, subject):
    frame = animator.render(channel_values())
    assert frame.shape == subject.image.shape and frame.dtype == np.uint8
    assert np.abs(frame.astype(int) - subject.image).max() <= 1


def test_a_breath_or_a_small_turn_keeps_the_face_s_fine_detail(astronaut, animator, subject):
    # Every moved pixel is resampled, and an idle frame resamples the head twice (the head's turn, then the
    # breath that carries it). Bilinear samples a fraction of a pixel off average their neighbours: an idle
    # frame of the bundled photo kept half the face's fine detail (0.51 of the photo's mean Laplacian; a
    # breath alone 0.66, a half-degree roll 0.73), and an idle loop pulsed from sharp to soft. Bicubic keeps
    # most of it.
    x0, y0, x1, y1 = (int(round(v)) for v in subject.face_box)

    def detail(rgb: np.ndarray) -> float:
        grey = cv2.cvtColor(np.ascontiguousarray(rgb[y0:y1, x0:x1]), cv2.COLOR_RGB2GRAY).astype(np.float32)
        return float(np.abs(cv2.Laplacian(grey, cv2.CV_32F)).mean())

    photo = detail(astronaut)
    for channels, kept in (({"breathing": 0.33}, 0.8), ({"head_roll": 0.5}, 0.8),
                           ({"head_yaw": -0.9, "head_pitch": 0.5, "head_roll": 0.5, "breathing": 0.33}, 0.7)):
        frame = animator.render(channel_values(**channels))
        assert not np.array_equal(frame, astronaut)
        assert detail(frame) >= kept * photo, (channels, detail(frame) / photo)


def test_defaults_give_back_a_photo_that_cuts_the_face_off(astronaut, subject):
    """A face cut off by the photo's edge has landmarks outside it: the mesh's source and target points must
    both lie where the landmarks are, or the still frame moved the pixels along the cut (up to 38 levels
    with the face cut at the side)."""
    from enliven.engines.warp import WarpEngine

    chin_y = int(subject.landmarks[lm.CHIN, 1])
    right_x = int(subject.landmarks[lm.FACE_RIGHT_EDGE, 0])
    for photo in (astronaut[:chin_y - 15], np.ascontiguousarray(astronaut[:, right_x + 15:])):
        engine = WarpEngine(analyze_image(photo))
        assert np.abs(engine.render(channel_values()).astype(int) - photo).max() <= 1


def test_a_turn_brings_no_streaks_in_past_the_photo_s_edge(astronaut):
    """A face cut through one eye by the photo's edge, turned toward the cut: what comes in from past the edge
    was the edge's last columns repeated (the mesh held inside the photo, the iris and a fold redrawn from what
    the photo shows of the eye), grey bars across the eye with hard edges. In the eye's rows beside the edge
    the picture changes from row to row about as much as from column to column, as the photo's own eye does
    (dy / dx 1.1 in the photo; the streaks read 2.4 at yaw 8)."""
    photo = np.ascontiguousarray(astronaut[:, 205:])
    subject = analyze_image(photo)
    eye = subject.landmarks[list(lm.eye_polygon("right")), :2]
    assert eye[:, 0].min() < 0 < eye[:, 0].max()  # the edge cuts the eye
    rows = slice(int(eye[:, 1].min()) - 6, int(eye[:, 1].max()) + 7)
    animator = Animator(subject)
    for yaw in (6.0, 8.0, 10.0):
        band = (animator.render(channel_values(head_yaw=yaw)) @ LUMA)[rows, :16]
        across, down = np.abs(np.diff(band, axis=1)).mean(), np.abs(np.diff(band, axis=0)).mean()
        assert down <= 1.8 * across, (yaw, down, across)


def turned_over_behind_face(engine, values: np.ndarray) -> np.ndarray:
    """(work h, work w) bool: the cells that show a triangle behind the face (hair, neck, backdrop) turned
    over by the frame's mesh (its corners in the other order than in the photo's)."""
    from enliven.engines.warp_math import signed_areas

    target = engine.target_points(values)[2]
    affines, usable = triangle_affines(target, engine.source_work, engine.triangles)
    index = triangle_index_image(target, engine.triangles, usable, engine.work_size, in_front=engine.face_triangles)
    turned = ((signed_areas(target, engine.triangles) > 0) != (signed_areas(engine.source_work, engine.triangles) > 0))
    turned &= ~engine.face_triangles
    return turned[np.maximum(index, 0)] & (index >= 0)


def test_a_neck_the_photo_s_bottom_edge_cuts_rolls_without_turning_its_mesh_over(astronaut, subject):
    """The astronaut cut a little below her chin: her head region, clipped by the photo's bottom edge, ends
    there, with the ring that carries her neck and collar with the head a few working pixels above it. The
    border's pins held the bottom edge still under it, and a roll turned the triangles between them over:
    the few pixels of neck they were stretched from lay over the collar as a flat block with a stair-stepped
    edge (d19's hoodie). The person runs off that edge, so nothing holds it there: no triangle behind the
    face turns over in the bottom tenth of the region (before: up to 116 working pixels at roll 45)."""
    from enliven.engines.warp import WarpEngine

    chin_y = subject.landmarks[lm.CHIN, 1]
    for below_chin in (0.15, 0.25):
        engine = WarpEngine(analyze_image(np.ascontiguousarray(astronaut[:int(chin_y + below_chin * subject.face_width)])))
        assert engine.open_sides == (False, False, False, True)
        bottom = int(0.9 * engine.work_size[1])
        for channels in ({"head_roll": -45}, {"head_roll": 45}, {"head_roll": -30, "jaw_open": 0.5},
                         {"head_roll": 30, "jaw_open": 0.5}):
            turned = turned_over_behind_face(engine, channel_values(**channels))
            assert turned[bottom:].sum() == 0, (below_chin, channels, turned[bottom:].sum())


def test_the_person_runs_off_a_side_of_the_region_on_the_photo_s_edge():
    """A side of the head region is open where it lies on the photo's edge and the person covers a tenth of
    it or more; past an open side, the border's pins lie as far again as the region is long."""
    from enliven.engines.region_edges import border_pins, sides_running_off

    mask = np.zeros((100, 120), np.float32)
    mask[60:, 40:80] = 1.0  # a neck running off the bottom
    assert sides_running_off(mask, (10, 20, 130, 120), (120, 200)) == (False, False, False, True)
    assert sides_running_off(mask, (10, 20, 130, 120), (121, 200)) == (False,) * 4  # the region ends inside the photo
    mask[60:, 48:80] = 0.0  # under a tenth of the bottom side
    assert sides_running_off(mask, (10, 20, 130, 120), (120, 200)) == (False,) * 4
    pins = border_pins((50, 40), 4, (False, False, False, True))
    assert pins[:, 1].max() == 79 and pins[:, 1].min() == 0 and pins[:, 0].min() == 0 and pins[:, 0].max() == 49


def test_what_comes_in_past_a_side_that_cuts_the_person_leaves_the_photo_s_frame_line_out():
    """A montage's white frame line along the photo's bottom row (bald_guys'): past a side that cuts only the
    person it is taken as the row inside it, or a roll drew it across the clothes as a white curve; past a
    side that cuts the face the photo is extended as it is."""
    from enliven.engines.region_edges import extended_past_edges

    photo = np.full((40, 30, 3), 30, np.uint8)
    photo[-1] = 255
    sides = (False, False, False, True)
    extended, shift = extended_past_edges(photo, sides, 50.0, face_sides=(False,) * 4)
    assert tuple(shift) == (0, 0) and extended.shape[0] > 40 and extended.max() == 30
    extended, _ = extended_past_edges(photo, sides, 50.0, face_sides=sides)
    assert extended[39].min() == 255


def test_jaw_open_changes_the_mouth_and_darkens_it(animator, subject):
    frame = animator.render(channel_values(jaw_open=1))
    rows, cols = mouth_box(subject.landmarks)
    before, after = subject.image[rows, cols].astype(float), frame[rows, cols].astype(float)
    assert np.abs(after - before).mean() > 10
    # The opened mouth shows a dark cavity the closed-teeth photo did not have (about half as bright as her
    # lips, as real open mouths read).
    assert (after.mean(axis=2) < 80).mean() > (before.mean(axis=2) < 80).mean() + 0.05


def test_lips_open_in_the_photo_close_over_the_teeth(animator, subject):
    """The astronaut smiles with her teeth showing; jaw_open -1 seals her lips, as the tracker sees it,
    and the lips cover her teeth: most of the mouth's white (bright, uncoloured) pixels are gone."""
    assert subject.mouth_openness > 0.12
    frame = animator.render(channel_values(jaw_open=-1))
    assert analyze_image(frame).mouth_openness < 0.05
    rows, cols = mouth_box(subject.landmarks)

    def white(rgb: np.ndarray) -> int:
        return int(white_pixels(rgb).sum())

    assert white(subject.image[rows, cols]) > 50 and white(frame[rows, cols]) < 0.3 * white(subject.image[rows, cols])


def white_pixels(rgb: np.ndarray) -> np.ndarray:
    """(...) bool of RGB pixels (..., 3): white ones (bright and uncoloured), as teeth in a photo are."""
    return (rgb @ np.array([0.299, 0.587, 0.114]) > 170) & (np.ptp(rgb.astype(int), axis=-1) < 40)


def upper_teeth_kept(photo: np.ndarray, photo_points: np.ndarray, frame: np.ndarray, frame_points: np.ndarray) -> float:
    """Of the white pixels between the photo's inner lips in the middle of the mouth, the share that the frame
    still shows right under its upper inner lip (as far down as the photo's lips were apart): the upper teeth,
    which belong to the skull, stay with the upper lip when the jaw opens."""
    def rows(points: np.ndarray, ids, columns: np.ndarray) -> np.ndarray:
        contour = points[list(ids), :2]
        order = np.argsort(contour[:, 0])
        return np.interp(columns, contour[order, 0], contour[order, 1])

    middle = photo_points[list(lm.LIPS_UPPER_INNER[3:-3]), 0]
    columns = np.arange(int(np.ceil(middle.min())), int(middle.max()) + 1)
    photo_top, photo_bottom = rows(photo_points, lm.LIPS_UPPER_INNER, columns), rows(photo_points, lm.LIPS_LOWER_INNER, columns)
    frame_top = rows(frame_points, lm.LIPS_UPPER_INNER, columns)
    shown = kept = 0
    for x, top, bottom, moved_top in zip(columns, photo_top, photo_bottom, frame_top):
        shown += int(white_pixels(photo[int(np.ceil(top)):int(bottom) + 1, x]).sum())
        kept += int(white_pixels(frame[int(np.ceil(moved_top)):int(moved_top + bottom - top) + 1, x]).sum())
    return kept / max(shown, 1)


def test_talking_from_a_smile_keeps_the_upper_teeth_whole(animator, subject):
    """The astronaut smiles with her upper teeth showing down to her lower lip. Opening her jaw moves them
    with her upper lip, whole, and the cavity opens below them (splitting her mouth halfway cut her teeth in
    two: a sliver under the upper lip, the rest carried down by the lower one; 0.29 of them kept, now 0.93)."""
    for jaw in (0.5, 1.0):
        opened = animator.engine.render_with_fields(channel_values(jaw_open=jaw), keep_fields=False)
        assert upper_teeth_kept(subject.image, subject.landmarks, opened.frame, opened.target_landmarks) > 0.8


def test_a_mouth_splits_where_it_shows_no_teeth(subject):
    """The interior splits into its upper and lower halves below upper teeth, above lower teeth that show
    alone, and halfway where no teeth show (fractions from the upper inner lip to the lower)."""
    from enliven.engines.mouth import interior_split

    photo, points = subject.image, subject.landmarks
    split = interior_split(photo, points, 0.3)
    assert split[3:6].min() > 0.85  # in the middle her upper teeth reach her lower lip
    # Every column's split leaves room inside its own lips for the two rows of points either side of it (the
    # narrow corners take a wide column's split).
    gaps = np.linalg.norm(points[list(lm.LIPS_LOWER_INNER[1:-1]), :2] - points[list(lm.LIPS_UPPER_INNER[1:-1]), :2],
                          axis=1)
    assert (np.minimum(split, 1 - split) * gaps >= 0.3 + 0.25 - 1e-3).all()  # (to float32 rounding)
    opening = af.polygon_mask(photo.shape, points[list(lm.inner_lip_polygon()), :2])
    no_teeth = photo.copy()
    no_teeth[opening] = (60, 30, 30)
    assert np.allclose(interior_split(no_teeth, points, 0.3), 0.5)
    glint = no_teeth.copy()  # a highlight on a tongue is no tooth
    y, x = np.round(points[list(lm.LIPS_UPPER_INNER[5:6]) + list(lm.LIPS_LOWER_INNER[5:6]), :2].mean(axis=0)).astype(int)
    glint[y:y + 2, x:x + 2] = (236, 232, 222)
    assert np.allclose(interior_split(glint, points, 0.3), 0.5)
    lower_teeth = no_teeth.copy()
    ys = np.nonzero(opening)[0]
    lower_teeth[opening & (np.arange(photo.shape[0])[:, None] > np.median(ys))] = (236, 232, 222)
    assert interior_split(lower_teeth, points, 0.3)[2:-2].max() < 0.4


@pytest.mark.parametrize("bite_colour", [(196, 190, 180), (214, 208, 198)])
def test_a_clenched_grin_splits_along_its_bite(wide_open_mouth, bite_colour):
    """Teeth from lip to lip, taller than upper teeth show, are both rows meeting: the split follows the bite,
    the (here only a little) darker line between them, so the lower row goes down with the jaw. (The faint
    bite is lighter than the teeth's last pixels, blurred with the lower lip: the bite is not looked for
    there.)"""
    from enliven.engines.mouth import interior_split

    photo, points = wide_open_mouth.subject.image, wide_open_mouth.subject.landmarks
    opening = af.polygon_mask(photo.shape, points[list(lm.inner_lip_polygon()), :2])
    rows = np.nonzero(opening)[0]
    bite = rows.min() + 0.6 * (rows.max() - rows.min())
    grin = photo.copy()
    grin[opening] = (236, 232, 222)
    grin[opening & (np.abs(np.arange(photo.shape[0]) - bite) < 1.5)[:, None]] = bite_colour  # still tooth-bright
    split = interior_split(grin, points, 0.3)
    upper, lower = points[list(lm.LIPS_UPPER_INNER[1:-1]), 1], points[list(lm.LIPS_LOWER_INNER[1:-1]), 1]
    assert np.abs(upper + split * (lower - upper) - bite)[3:6].max() < 2.0


def test_sealed_lips_meet_in_a_smooth_line(animator, wide_open_mouth):
    """The rims of a photo's open lips hold teeth and cavity; sealed, they met in a pale, ragged seam with dark
    flecks (luma steps of 9.8 along it on the astronaut's smile, 11.5 on the wide-open mouth). The line
    where the lips meet is repainted from the lips: about 5."""
    for engine in (animator.engine, wide_open_mouth):
        sealed = engine.render_with_fields(channel_values(jaw_open=-1), keep_fields=False)
        assert af.seam_roughness(sealed.frame, sealed.target_landmarks) < 7.5
    # Lips that are closed in the photo are not repainted: the photo is given back.
    closed_photo = wide_open_mouth.render(channel_values(jaw_open=-1))
    from enliven.engines.warp import WarpEngine

    engine = WarpEngine(analyze_image(closed_photo))
    assert np.array_equal(engine.render(channel_values()), closed_photo)


def test_sealed_lips_meet_in_a_line_of_their_own_colour(animator):
    """Where closed lips meet, a photo shows the lips' colour deepened (a shadow on lips: d9's real closed
    frames, saturation 0.70 on a lip of 0.48), not a grey-brown pencil line. The astronaut's sealed smile:
    the line's saturation was the lower lip's (0.26 for 0.27); now about 1.6 times it."""
    from enliven.engines.palette import saturation

    sealed = animator.engine.render_with_fields(channel_values(jaw_open=-1), keep_fields=False)
    frame, points = sealed.frame.astype(np.float32), sealed.target_landmarks
    right, left = points[lm.MOUTH_RIGHT_CORNER, :2], points[lm.MOUTH_LEFT_CORNER, :2]
    line = []
    for share in np.linspace(0.2, 0.8, 13):  # the darkest pixel across the line, column by column
        x, y = np.round(right + share * (left - right)).astype(int)
        column = frame[y - 6:y + 7, x]
        line.append(column[(column @ np.array([0.299, 0.587, 0.114])).argmin()])
    middle = np.round((points[lm.LIPS_LOWER_OUTER[len(lm.LIPS_LOWER_OUTER) // 2], :2]
                       + points[lm.LIPS_LOWER_INNER[len(lm.LIPS_LOWER_INNER) // 2], :2]) / 2).astype(int)
    lip = frame[middle[1] - 1:middle[1] + 2, middle[0] - 3:middle[0] + 4].reshape(-1, 3).mean(axis=0)
    assert float(np.median(saturation(np.array(line)))) > 1.3 * float(saturation(lip))


def test_sealing_repaints_the_teeth_a_lower_lips_rim_holds(wide_open_mouth):
    """Sealed lips no longer press far past each other (the upper lip would vanish), so what the lower lip's
    rim holds shows under the meeting line: on d19, whose inner-lip landmarks run through its lower teeth,
    a grey tooth. The test paints a grey strip under the sealed line and seals with and without the rims."""
    from enliven.engines.mouth import seal_lips

    engine = wide_open_mouth
    sealed = engine.render_with_fields(channel_values(jaw_open=-1), keep_fields=False)
    points = sealed.target_landmarks
    lower = points[list(lm.LIPS_LOWER_INNER), :2]
    width = float(np.linalg.norm(points[lm.MOUTH_LEFT_CORNER, :2] - points[lm.MOUTH_RIGHT_CORNER, :2]))
    frame = sealed.frame.copy()
    strip = np.zeros(frame.shape[:2], np.uint8)
    # Under whichever inner lip lies lower (sealed lips press a little past each other), between the inner corners
    upper = points[list(lm.LIPS_UPPER_INNER), :2]
    middle = np.where((upper[:, 1] > lower[:, 1])[:, None], upper, lower)[3:-3]
    # below the band the seal always repaints (SEAL_MARGIN, 0.02 mouth widths), within the rims' reach
    polygon = np.concatenate([middle + (0, 0.03 * width), middle[::-1] + (0, (0.015 + engine.seal_rims) * width)])
    cv2.fillPoly(strip, [np.round(polygon).astype(np.int32)], 1)
    frame[strip > 0] = (150, 150, 150)
    assert engine.seal_rims > 0.04  # the photo's mouth is wide open (its lips half a mouth width apart)

    def grey_left(rims: float) -> int:
        painted = seal_lips(frame, points, (0, 0), 1.0, engine.palette, rims)
        pixels = painted[strip > 0].astype(int)
        return int(((np.ptp(pixels, axis=1) < 12) & (pixels.min(axis=1) > 120)).sum())

    assert grey_left(0.0) > 0.4 * strip.sum()  # (the premise: without the rims, much of it stays grey)
    assert grey_left(engine.seal_rims) < 0.1 * strip.sum()


def test_the_sealed_line_fades_into_the_mouths_corners(animator):
    """The line where sealed lips meet ran at full strength to the mouth's corners and stopped there square,
    the band's pale lip colours beside its end (d9, d19). It fades out into the corners: drawn over plain
    skin, a pixel inside each corner it is under half as dark as in the middle."""
    from enliven.engines.mouth import seal_lips

    sealed = animator.engine.render_with_fields(channel_values(jaw_open=-1), keep_fields=False)
    points = sealed.target_landmarks
    skin = np.full_like(sealed.frame, (200, 150, 130))
    luma = af.luma(seal_lips(skin, points, (0, 0), 1.0, animator.engine.palette))
    skin_luma = float(af.luma(skin[:1, :1])[0, 0])

    def darkness(x: float, y: float) -> float:
        column = luma[int(round(y)) - 6:int(round(y)) + 7, int(round(x))]
        return skin_luma - float(column.min())

    right, left = points[lm.MOUTH_RIGHT_CORNER, :2], points[lm.MOUTH_LEFT_CORNER, :2]
    middle = darkness(*(right + left) / 2)
    assert middle > 30
    for corner, inward in ((right, 1.0), (left, -1.0)):
        assert darkness(corner[0] + inward, corner[1]) < middle / 2


@pytest.fixture(scope="module")
def wide_open_mouth(animator):
    """A photo with a wide-open mouth, made from the astronaut: its own interior is what shows."""
    from enliven.engines.warp import WarpEngine

    photo = animator.render(channel_values(jaw_open=1))
    engine = WarpEngine(analyze_image(photo))
    assert engine.subject.mouth_openness > 0.3
    return engine


@pytest.mark.parametrize("channel", ["jaw_open", "pucker", "wide"])
def test_moving_a_wide_open_mouth_paints_no_band_across_it(wide_open_mouth, channel):
    """Opening, rounding or stretching a mouth that is already wide open stretches what the photo shows
    (nothing painted inside it), and sealing it closes the lips."""
    result = wide_open_mouth.render_with_fields(channel_values(**{channel: 1}))
    interior = result.target_landmarks[list(lm.inner_lip_polygon()), :2]
    x0, y0 = wide_open_mouth.region[:2]
    painted = np.zeros(result.frame.shape[:2], np.float32)
    painted[y0:y0 + result.painted.shape[0], x0:x0 + result.painted.shape[1]] = result.painted
    assert af.polygon_mask(painted.shape, interior).sum() > 100 and af.share_inside(painted, interior) < 0.01
    moved = np.abs(result.frame.astype(int) - wide_open_mouth.subject.image).max(axis=2)
    assert af.share_inside((moved > 10).astype(np.float32), interior) > 0.1  # it did move


def test_a_wide_open_mouth_closes(wide_open_mouth):
    """-1 brings the lips of a wide-open mouth together (the tracker, on this painted mouth, still reads a
    sliver between them: under a fifth of the photo's opening)."""
    closed = analyze_image(wide_open_mouth.render(channel_values(jaw_open=-1)))
    assert closed.mouth_openness < 0.2 * wide_open_mouth.subject.mouth_openness


def test_closing_a_wide_open_mouth_folds_no_lip_or_skin_over_its_corners(wide_open_mouth):
    """Half-closing a wide-open mouth moved the lips' middle contours by the jaw's blend, not with their lip,
    and the skin beside the corners rose past them: the mesh folded there, a lip-coloured wedge with hard
    edges at each corner (d19 at jaw_open -0.7: 33 folded triangles around the mouth, 20 now). Counted
    here: the landmark triangles around the mouth that the frame turns over (26 on this photo, 2 now)."""
    folded, count = af.folded_around(wide_open_mouth, lm.LIPS_UPPER_OUTER + lm.LIPS_LOWER_OUTER,
                                  channel_values(jaw_open=-0.7))
    assert count > 300
    assert folded <= 10


def test_lips_parted_by_their_own_muscles_fold_no_skin_beside_them(animator):
    """lips_part moves the lips and not the jaw, so the skin between the lower lip and the chin (and the
    upper lip and the nose) gathers or stretches: faded over a fixed reach, a lower lip that dropped further
    than that slid past the skin below it (8 landmark triangles around the lips turned over at lips_part 1)."""
    folded, count = af.folded_around(animator.engine, lm.LIPS_UPPER_OUTER + lm.LIPS_LOWER_OUTER,
                                     channel_values(lips_part=1))
    assert count > 300
    assert folded == 0


def test_chin_points_on_the_lower_lip_fold_nothing_as_the_lips_close(animator):
    """On a wide-open mouth MediaPipe puts chin points (18, 200, 83, ...) on the lower lip, some even inside
    the mouth (d19 and d9 alike). As mesh points they folded the lower lip as the lips closed: grey fangs of
    teeth and cavity hanging from it. The mesh leaves them out. Counted on the test's wide-open mouth at twice
    its size (at the astronaut's, the lip's triangles are a pixel or two): at jaw_open -0.85, 6 triangles
    around the lower lip's inner contour folded before (turned over keeping over a quarter of their area),
    1 now."""
    from enliven.engines.warp import WarpEngine

    photo = cv2.resize(animator.render(channel_values(jaw_open=1)), None, fx=2, fy=2, interpolation=cv2.INTER_CUBIC)
    engine = WarpEngine(analyze_image(photo))
    points = engine.subject.landmarks
    lips = points[list(lm.LIPS_UPPER_OUTER + lm.LIPS_LOWER_OUTER[::-1]), :2]
    rings = {i for ring in lm.LIPS_UPPER_RINGS + lm.LIPS_LOWER_RINGS for i in ring}
    strays = [i for i in np.flatnonzero(inside_polygon(points, lips)) if i not in rings]
    assert len(strays) >= 3
    assert not set(strays) & set(engine.landmark_ids.tolist())
    folded, count = af.folded_around(engine, lm.LIPS_LOWER_INNER[1:-1], channel_values(jaw_open=-0.85), af.FOLD_KEEPS)
    assert count > 100
    assert folded <= 2


def test_the_mesh_s_inner_lips_lie_on_the_photo_s_lip_edges():
    """Where an open mouth's inner contour runs over the lower teeth (as MediaPipe's does, by a few pixels,
    on d19), the mesh's contour moves out to where the lip's own colour starts; an accurate contour (the
    upper one here) and closed lips stay where they are. Drawn: skin, lips, a dark mouth, and a row of
    grey teeth 5 px high above the lower lip; the lower contour given runs 4 px inside the lip's edge."""
    image = np.empty((200, 200, 3), np.float32)
    image[:] = (200, 150, 130)
    columns = np.linspace(60.0, 140.0, 11)  # from the corner at image left (61) to the one at image right (291)
    rise = np.sqrt(np.clip(1.0 - ((columns - 100.0) / 40.0) ** 2, 0.0, 1.0))
    contours = {"upper_outer": 100 - 30 * rise, "upper_inner": 100 - 10 * rise,
                "lower_inner": 100 + 16 * rise, "lower_outer": 100 + 28 * rise}

    def polygon(top: np.ndarray, bottom: np.ndarray) -> np.ndarray:
        return np.round(np.concatenate([np.column_stack([columns, top]), np.column_stack([columns, bottom])[::-1]]) * 16).astype(np.int32)

    cv2.fillPoly(image, [polygon(contours["upper_outer"], contours["lower_outer"])], (180, 80, 80), cv2.LINE_8, 4)
    teeth_top = contours["lower_inner"] - 5 * rise
    cv2.fillPoly(image, [polygon(contours["upper_inner"], teeth_top)], (60, 25, 25), cv2.LINE_8, 4)
    cv2.fillPoly(image, [polygon(teeth_top, contours["lower_inner"])], (150, 150, 140), cv2.LINE_8, 4)
    image = cv2.GaussianBlur(image, (0, 0), 0.8).clip(0, 255).astype(np.uint8)

    def landmarks(lower_inner: np.ndarray, upper_inner: np.ndarray) -> np.ndarray:
        points = np.zeros((478, 3))
        for rings, inner, outer in ((lm.LIPS_UPPER_RINGS, upper_inner, contours["upper_outer"]),
                                    (lm.LIPS_LOWER_RINGS, lower_inner, contours["lower_outer"])):
            for k, ring in enumerate(rings):  # outer ring first, inner last
                points[list(ring), 0] = columns
                points[list(ring), 1] = outer + (inner - outer) * k / (len(rings) - 1)
        return points

    given = landmarks(contours["lower_inner"] - 4 * rise, contours["upper_inner"])
    offsets = lip_edge_offsets(image, given)
    middle = np.abs(columns - 100.0) < 25.0
    lower, upper = offsets[list(lm.LIPS_LOWER_INNER)], offsets[list(lm.LIPS_UPPER_INNER)]
    drawn_edge = 4 * rise + 0.5  # (drawn without anti-aliasing into a float image, the edge falls between pixel rows)
    assert np.all(np.abs(lower[middle, 1] - drawn_edge[middle]) < 0.75) and np.abs(lower[:, 0]).max() < 0.5
    assert np.abs(upper).max() <= 0.5
    ring3 = offsets[list(lm.LIPS_LOWER_RINGS[2]), 1]
    assert np.all((ring3[middle] > 0.3 * lower[middle, 1]) & (ring3[middle] < lower[middle, 1]))
    assert np.abs(offsets[list(lm.LIPS_LOWER_OUTER)]).max() == 0.0
    closed = landmarks(contours["upper_inner"], contours["upper_inner"])
    assert np.abs(lip_edge_offsets(image, closed)).max() == 0.0


def test_the_lip_edges_meet_where_the_rig_seals_the_lips(animator):
    """The mesh's inner lips sit on the photo's lip edges, the same in source and frame (the neutral frame is
    the photo), fully while the mouth is as open as the photo's or more, and on the rig's contours once the
    lips are sealed. The photo: a wide-open mouth made from the astronaut, at twice the size, its lower inner
    contour given 5 px inside the mouth (as MediaPipe's runs over d19's teeth)."""
    from enliven.engines.warp import WarpEngine

    photo = cv2.resize(animator.render(channel_values(jaw_open=1)), None, fx=2, fy=2, interpolation=cv2.INTER_CUBIC)
    subject = analyze_image(photo)
    landmarks = subject.landmarks.copy()
    landmarks[list(lm.LIPS_LOWER_INNER[1:-1]), 1] -= 5.0  # image y points down: into the mouth
    engine = WarpEngine(dataclasses.replace(subject, landmarks=landmarks))
    lower = [engine.landmark_position[i] for i in lm.LIPS_LOWER_INNER]
    assert np.abs(engine.lip_edges[list(lm.LIPS_LOWER_INNER)]).max() > 1.0
    assert np.abs(engine.render(channel_values()).astype(int) - photo).max() <= 1

    def offset_in_mesh(values: np.ndarray) -> np.ndarray:
        """How far the mesh's lower inner lip lies from the rig's (image pixels)."""
        target_image, _, target_work = engine.target_points(values)
        rig = (target_image[list(lm.LIPS_LOWER_INNER), :2] - engine.region[:2] + 0.5) * engine.scale - 0.5
        return (target_work[lower, :2] - rig) / engine.scale

    edges = engine.lip_edges[list(lm.LIPS_LOWER_INNER)]
    assert np.allclose(offset_in_mesh(channel_values(jaw_open=0.5)), edges, atol=1e-6)
    assert np.abs(offset_in_mesh(channel_values(jaw_open=-1))).max() < 1e-6


def test_an_eye_looking_down_folds_no_lid_over_its_corners(animator):
    """Looking down, every upper-lid point dropped as far as the middle's, and near the corners, where the
    eye is narrow, that is past the lower lid: the mesh folded there and drew the lashes as a sawtooth at
    both corners (4-7 triangles around each eye on every evaluation face, 4 on the astronaut's here). The
    lid now drops at most 0.6 of the opening where it is, and its skin goes with it."""
    for side in ("left", "right"):
        folded, count = af.folded_around(animator.engine, lm.eye_polygon(side), channel_values(gaze_y=-1))
        assert count > 50
        assert folded == 0


def test_a_blink_while_looking_down_keeps_the_lids_from_crossing(animator):
    """Each channel's shape adds to the others': a blink brings the lids together and a downward gaze drops
    the upper lid, so together they sent it past the lower one, and the closed lash line sagged into the
    cheek. Lids now meet and never cross: at blink 0.5 with gaze_y -1, 13 and 11 triangles around the
    astronaut's eyes turned over; now at most 5. (A full blink collapses the opening by design.)"""
    for side in ("left", "right"):
        folded, _ = af.folded_around(animator.engine, lm.eye_polygon(side), channel_values(blink_l=0.5, blink_r=0.5,
                                                                                        gaze_y=-1))
        assert folded <= 5


def mesh_edges(triangles: np.ndarray) -> set[tuple[int, int]]:
    return {tuple(sorted(edge)) for triangle in triangles.tolist() for edge in
            ((triangle[0], triangle[1]), (triangle[1], triangle[2]), (triangle[2], triangle[0]))}


def test_the_mesh_keeps_open_lips_and_lids_as_edges(wide_open_mouth, closed_mouth):
    """A plain Delaunay mesh joined points across the contours of an open mouth (a third of the inner lips'
    segments were no edge): a triangle held lip at one corner and teeth or throat at another, and closing the
    mouth dragged teeth over the lower lip. Every segment of the lips and of open lids is now an edge. Lips
    that touch in the photo are not kept (running along each other, they would make slivers)."""
    def missing(engine, contours) -> int:
        edges, position = mesh_edges(engine.triangles), engine.landmark_position
        return sum(tuple(sorted((position[a], position[b]))) not in edges
                   for ids in contours for a, b in zip(ids, ids[1:]))

    open_contours = (lm.LIPS_UPPER_INNER, lm.LIPS_LOWER_INNER, lm.LIPS_UPPER_OUTER, lm.LIPS_LOWER_OUTER,
                     lm.LEFT_EYE_UPPER, lm.LEFT_EYE_LOWER, lm.RIGHT_EYE_UPPER, lm.RIGHT_EYE_LOWER)
    assert missing(wide_open_mouth, open_contours) == 0
    assert missing(closed_mouth, (lm.LIPS_UPPER_OUTER, lm.LIPS_LOWER_OUTER)) == 0
    # The mouth's interior points are enclosed by the inner lips: no triangle joins one to a point outside them.
    engine = wide_open_mouth
    points = engine.source_work[:, :2].astype(np.float32)
    loop = points[[engine.landmark_position[i] for i in lm.inner_lip_polygon()]]
    count = len(engine.landmark_ids)
    interior = np.arange(count + engine.mouth_split_upper.start, count + engine.mouth_split_lower.stop)
    touching = engine.triangles[np.isin(engine.triangles, interior).any(axis=1)]
    assert len(touching) > 20
    assert all(cv2.pointPolygonTest(loop, tuple(map(float, points[i])), True) > -0.01 for i in np.unique(touching))


@pytest.fixture(scope="module")
def closed_mouth(animator):
    """A photo with closed lips, made from the astronaut (sealed, at twice the size): no teeth to move."""
    from enliven.engines.warp import WarpEngine

    photo = cv2.resize(animator.render(channel_values(jaw_open=-1)), None, fx=2, fy=2, interpolation=cv2.INTER_CUBIC)
    engine = WarpEngine(analyze_image(photo))
    assert engine.paints_teeth
    return engine


def upper_teeth_profile(engine, reach: float) -> tuple[np.ndarray, np.ndarray, float, float]:
    """At jaw_open 0.7, the luma along the painted upper teeth (0.06 mouth widths below the upper inner lip)
    over `reach` mouth widths either side of the mouth's middle: (luma per column, the columns, the middle
    column, the mouth's width)."""
    result = engine.render_with_fields(channel_values(jaw_open=0.7), keep_fields=False)
    target = result.target_landmarks
    width = float(np.linalg.norm(target[lm.MOUTH_LEFT_CORNER, :2] - target[lm.MOUTH_RIGHT_CORNER, :2]))
    lip = target[list(lm.LIPS_UPPER_INNER), :2]
    order = np.argsort(lip[:, 0])
    centre = lip[:, 0].mean()
    columns = np.arange(int(centre - reach * width), int(centre + reach * width) + 1)
    rows = np.round(np.interp(columns, lip[order, 0], lip[order, 1]) + 0.06 * width).astype(int)
    return af.luma(result.frame)[rows, columns].astype(float), columns, centre, width


def test_an_opened_mouth_shows_a_row_of_teeth_not_a_bar(closed_mouth):
    """Opening a closed mouth paints upper teeth: brightest in the middle, darker toward the corners where
    the row turns into the mouth, with a darker line between each two teeth (before: a flat white bar)."""
    profile, columns, centre, width = upper_teeth_profile(closed_mouth, reach=0.3)
    middle, sides = profile[np.abs(columns - centre) < 0.05 * width], profile[np.abs(columns - centre) > 0.25 * width]
    assert middle.mean() > 150 and middle.mean() > sides.mean() + 15
    smooth = np.convolve(profile, np.ones(3) / 3, mode="same")[2:-2]
    dips = [i for i in range(2, len(smooth) - 2) if smooth[i] == smooth[i - 2:i + 3].min()
            and smooth[i - 2:i + 3].max() - smooth[i] > 8]
    assert len(dips) >= 3


def painted_teeth_brightness(engine) -> float:
    """The luma of the painted upper teeth's middle (a fifth of the mouth's width) at jaw_open 0.7."""
    return float(np.median(upper_teeth_profile(engine, reach=0.1)[0]))


def test_painted_teeth_take_the_light_of_the_photos_eyes_not_its_lips(closed_mouth):
    """The painted teeth are lit like the photo's sclera: in the same photo printed dim they are as much
    dimmer (before: the same white in every photo, a bright bar in a dim print), while darker lips alone, in
    the same light, leave them as they are (a rule read from the lips would grey a dark-lipped person's teeth)."""
    from enliven.engines.warp import WarpEngine

    photo = closed_mouth.subject.image
    bright = painted_teeth_brightness(closed_mouth)
    dim = painted_teeth_brightness(WarpEngine(analyze_image((photo * 0.55).astype(np.uint8))))
    assert bright > 150 and 0.45 < dim / bright < 0.65

    points = closed_mouth.subject.landmarks[:, :2]
    lips = np.zeros(photo.shape[:2], np.uint8)
    for contour in (lm.LIPS_UPPER_OUTER, lm.LIPS_LOWER_OUTER):
        cv2.fillPoly(lips, [np.round(points[list(contour)]).astype(np.int32)], 1)
    dark_lips = photo.copy()
    dark_lips[lips > 0] = (dark_lips[lips > 0] * 0.5).astype(np.uint8)
    assert abs(painted_teeth_brightness(WarpEngine(analyze_image(dark_lips))) - bright) < 0.05 * bright


def with_eyes_darkened(engine, sides: tuple[str, ...], factor: float) -> np.ndarray:
    """The engine's photo with the eyes of `sides` (and a little around them) darkened by `factor`."""
    photo = engine.subject.image.copy()
    points = engine.subject.landmarks[:, :2]
    shade = np.zeros(photo.shape[:2], np.uint8)
    for side in sides:
        cv2.fillPoly(shade, [np.round(points[list(lm.eye_polygon(side))]).astype(np.int32)], 1)
    shade = cv2.dilate(shade, np.ones((9, 9), np.uint8)) > 0
    photo[shade] = (photo[shade] * factor).astype(np.uint8)
    return photo


def test_painted_teeth_are_lit_by_the_eye_in_the_light(closed_mouth):
    """One eye in shadow (behind glasses, a face lit from one side) leaves the painted teeth as bright as
    the lit eye says (the mean of both eyes painted LivePortrait's d8 a grey grille darker than its lips);
    and however dark the eyes read, the teeth are lit at least as the lips are, as real teeth are."""
    from enliven.engines.warp import WarpEngine

    bright = painted_teeth_brightness(closed_mouth)
    one_shaded = WarpEngine(analyze_image(with_eyes_darkened(closed_mouth, ("left",), 0.35)))
    assert abs(painted_teeth_brightness(one_shaded) - bright) < 0.05 * bright

    both_shaded = WarpEngine(analyze_image(with_eyes_darkened(closed_mouth, ("left", "right"), 0.25)))
    lips = float(both_shaded.mouth_colour @ LUMA)
    assert float(both_shaded.teeth_colour @ LUMA) >= lips - 1
    assert painted_teeth_brightness(both_shaded) > 0.85 * lips


def test_a_painted_mouth_is_redder_where_it_is_darkest(closed_mouth):
    """Deep in an open mouth the tissue is redder than the lips (the training clips' people: the darkest
    30 % of an opening at 1.30 times the lips' red over green, median), not the lips' own colour darkened
    (which read as a grey-brown slot: 1.02)."""
    result = closed_mouth.render_with_fields(channel_values(jaw_open=1), keep_fields=True)
    x0, y0 = closed_mouth.region[:2]
    painted = np.zeros(result.frame.shape[:2], bool)
    painted[y0:y0 + result.painted.shape[0], x0:x0 + result.painted.shape[1]] = result.painted > 0.95
    pixels = result.frame[painted].astype(float)
    pixels = pixels[pixels @ LUMA <= np.percentile(pixels @ LUMA, 30)]
    lips = closed_mouth.mouth_colour
    assert len(pixels) > 50
    assert (pixels[:, 0].mean() / pixels[:, 1].mean()) / (lips[0] / lips[1]) > 1.1, (pixels.mean(axis=0), lips)


def test_a_wide_open_mouth_shows_lower_teeth_and_a_tongue_not_a_hole(closed_mouth):
    """Wide open, the painted mouth is not darkest at the bottom like a hole: the lower teeth and the tongue's
    back make the bottom of the opening brighter than the cavity under the upper teeth (before: darker toward
    the throat), and the tongue is a dome, its top higher in the middle than toward the corners (before: a
    flat, dim shelf)."""
    result = closed_mouth.render_with_fields(channel_values(jaw_open=1), keep_fields=False)
    target = result.target_landmarks
    upper = target[list(lm.LIPS_UPPER_INNER), :2]
    lower = target[list(lm.LIPS_LOWER_INNER), :2]
    width = float(np.linalg.norm(target[lm.MOUTH_LEFT_CORNER, :2] - target[lm.MOUTH_RIGHT_CORNER, :2]))
    x = int(round(upper[:, 0].mean()))
    top, bottom = float(upper[:, 1].max()), float(lower[:, 1].max())
    luma = af.luma(result.frame).astype(float)
    column = luma[:, x - 2:x + 3].mean(axis=1)
    span = bottom - top
    cavity = column[int(top + 0.1 * span):int(top + 0.3 * span)].mean()
    low = column[int(top + 0.75 * span):int(top + 0.92 * span)].mean()
    assert span > 20 and low > cavity + 15

    def tongue_top(at: int) -> int:  # the first row, down from the cavity, half way to the tongue's brightness
        rows = luma[int(top + 0.1 * span):int(bottom), at - 1:at + 2].mean(axis=1)
        return int(np.argmax(rows > (cavity + low) / 2))

    middle, sides = tongue_top(x), min(tongue_top(x - int(0.3 * width)), tongue_top(x + int(0.3 * width)))
    assert sides - middle >= 0.1 * span


def test_background_outside_the_head_never_moves(animator, subject):
    # Outside the head region and the body's (the head's turns carry a little into the shoulders).
    motion = preset_motion("showcase", fps=6)
    for values in motion.full():
        frame = animator.render(values)
        assert np.array_equal(outside_head_region(frame, animator.changed_region),
                              outside_head_region(subject.image, animator.changed_region))


def test_uncovered_background_is_not_smeared_skin(animator, subject):
    """Turning the head uncovers backdrop beside it; it must look like backdrop, not hair or skin."""
    frame = animator.render(channel_values(head_x=0.35))
    x0, y0, x1, y1 = subject.head_region
    left_of_face = int(subject.landmarks[:, 0].min()) - 25  # hair on the left edge of the head moved right
    row = int(subject.landmarks[lm.FACE_RIGHT_EDGE, 1])
    backdrop = subject.image[y0 + 5:y0 + 25, x0 + 5:x0 + 25].reshape(-1, 3).mean(axis=0)
    assert np.abs(frame[row, left_of_face].astype(float) - backdrop).mean() < 45


def moved_person(result, subject) -> np.ndarray:
    """The person mask of a warp engine frame, over the subject's head region."""
    return af.in_region(result.box, result.person, subject.mask.shape)


def test_a_turning_head_leaves_no_trace_of_its_hairs_edge(animator, subject):
    """The fuzz at the hair's edge lies a few pixels beyond where the segmenter's mask ends. Left out of the
    person, it stayed in place when the head turned away from it: a dark, hair-shaped line on the backdrop
    (8 pixels of it on the astronaut at yaw -20 before; 60 to 200 on the evaluation portraits)."""
    x0, y0, x1, y1 = subject.head_region
    for yaw in (20, -20):
        result = animator.engine.render_with_fields(channel_values(head_yaw=yaw), keep_fields=False)
        assert af.edge_left_behind(result.frame[y0:y1, x0:x1], subject.image[y0:y1, x0:x1],
                                   animator.engine.background_plate, subject.mask, moved_person(result, subject),
                                   subject.face_width) <= 2


def test_uncovered_backdrop_keeps_the_photos_grain(astronaut):
    """Where a moving head uncovers the backdrop of a grainy photo (an old print), the backdrop shown keeps
    the photo's grain instead of a smooth, painted-looking strip (its fine detail measured 0.16 of the
    backdrop's before)."""
    noise = np.random.default_rng(3).normal(0.0, 12.0, astronaut.shape[:2])[..., None]
    grainy = np.clip(astronaut + noise, 0, 255).astype(np.uint8)
    made = analyze_image(grainy)
    engine = Animator(made).engine
    result = engine.render_with_fields(channel_values(head_x=0.35), keep_fields=False)
    x0, y0, x1, y1 = made.head_region
    uncovered = (made.mask > 0.9) & (moved_person(result, made) < 0.01)
    assert uncovered.sum() > 500

    def fine_detail(image: np.ndarray, where: np.ndarray) -> float:
        grey = af.luma(image)
        return float(np.std((grey - cv2.GaussianBlur(grey, (0, 0), 1.5))[where]))

    shown = fine_detail(result.frame[y0:y1, x0:x1], uncovered)
    assert shown > 0.7 * fine_detail(made.image[y0:y1, x0:x1], made.mask < 0.01)


def test_the_backdrop_is_mirrored_into_a_hole_across_its_nearest_edge():
    """A pixel of the hole takes the value as far beyond the hole's nearest edge; beyond the grid's edge the
    grid mirrors it back, and where that lands in the hole again it takes what that pixel took."""
    columns = np.tile(np.arange(30, dtype=np.int16), (8, 1))[..., None]
    hole = np.zeros((8, 30), np.uint8)
    hole[:, 10:20] = 1
    mirrored = mirrored_into(columns, hole)[..., 0]
    assert mirrored[3, 12] == 6 and mirrored[3, 17] == 23  # edges at columns 9 and 20
    assert not mirrored[:, :10].any() and not mirrored[:, 20:].any()
    wide = np.zeros((8, 30), np.uint8)
    wide[:, 3:25] = 1
    # Column 8's nearest edge is column 2, and its mirror is column -4: the grid's edge gives column 4, in
    # the hole, which took column 0.
    into_wide = mirrored_into(columns, wide)[3, :, 0]
    assert into_wide[8] == 0 and into_wide[5] == 1 and into_wide[4] == 0 and into_wide[23] == 27


def test_head_yaw_is_measured_back_on_the_output(animator, subject):
    """Measured as bench/controllability.py does: the photo's own 3D face fitted to the landmarks found again
    (the tracker's own depth guesses flatten a warped turn: it reads about 16 degrees here)."""
    frame = animator.render(channel_values(head_yaw=20))
    start = estimate_head_pose(subject.landmarks)
    model = start.to_head(image_to_camera(subject.landmarks))
    before = fit_pose_to_image_points(model, subject.landmarks, start).angles[0]
    measured = fit_pose_to_image_points(model, analyze_image(frame).landmarks, start).angles[0] - before
    assert measured == pytest.approx(20, abs=4)


def test_blink_and_jaw_are_seen_by_the_face_tracker(animator, subject):
    blinked = analyze_image(animator.render(channel_values(blink_l=1, blink_r=1)))
    assert max(blinked.eye_openness) < 0.7 * min(subject.eye_openness)
    opened = analyze_image(animator.render(channel_values(jaw_open=1)))
    assert opened.mouth_openness > 0.25


def test_gaze_moves_the_dark_iris(animator, subject):
    frame = animator.render(channel_values(gaze_x=1))
    tracked = analyze_image(frame).landmarks
    for centre in (468, 473):
        assert tracked[centre, 0] - subject.landmarks[centre, 0] > 1.0


def test_full_resolution_photo_stays_full_resolution(astronaut):
    big = cv2.resize(astronaut, (1536, 1536), interpolation=cv2.INTER_CUBIC)
    animator = Animator(analyze_image(big))
    frame = animator.render(channel_values(jaw_open=0.6, head_yaw=10))
    assert frame.shape == big.shape
    assert np.array_equal(outside_head_region(frame, animator.changed_region),
                          outside_head_region(big, animator.changed_region))


def test_bad_channel_values_are_refused(animator):
    with pytest.raises(BadMotionError):
        animator.render(channel_values(jaw_open=float("nan")))
    with pytest.raises(BadMotionError):
        animator.render(np.zeros(3))


# ----- artifacts (#13): each figure of bench/artifacts.py with a threshold the old engine failed ---------------------

@pytest.fixture(scope="module")
def face_on_white(astronaut, subject):
    """The astronaut's face alone on a white backdrop (everything beyond a little outside the face oval
    painted white, with an anti-aliased edge as a photo has), so that a turned face's silhouette is a
    high-contrast edge where any tear shows."""
    oval = subject.landmarks[list(lm.FACE_OVAL), :2]
    centre = oval.mean(axis=0)
    face = af.polygon_mask(astronaut.shape, centre + (oval - centre) * 1.1)
    alpha = cv2.GaussianBlur(face.astype(np.float32), (0, 0), 1.0)[..., None]
    photo = np.round(alpha * astronaut + (1 - alpha) * 255).astype(np.uint8)
    made = analyze_image(photo)
    return made, Animator(made).engine


@pytest.mark.parametrize("yaw", [20, -20])
def test_a_turned_face_keeps_a_clean_silhouette(face_on_white, yaw):
    """The turning face is drawn over what lies beside it. Its edge must stay a smooth outline, not a
    staircase of working pixels with specks in it (the engine before #13 measured 1.32 and 1.44 here, this one
    0.90 and 0.96; 1 is the photo)."""
    made, engine = face_on_white
    result = engine.render_with_fields(channel_values(head_yaw=yaw), keep_fields=False)
    roughness = af.outline_roughness(result.frame, af.face_silhouette(result.target_landmarks), made.image,
                                     af.face_silhouette(made.landmarks), 0.1 * made.face_width)
    assert roughness < 1.15
    x0, y0, x1, y1 = made.head_region
    head = np.zeros(made.image.shape[:2], bool)
    head[y0:y1, x0:x1] = True
    assert af.new_specks(result.frame, made.image, head) == 0


@pytest.fixture(scope="module")
def large_astronaut(astronaut):
    """The astronaut enlarged three times (1536 px): her head region is warped at a sixth of its pixels, so a
    fold in the map spans several pixels, as on a large photo."""
    return analyze_image(cv2.resize(astronaut, None, fx=3, fy=3, interpolation=cv2.INTER_CUBIC))


@pytest.mark.parametrize("yaw", [20, -20])
def test_a_turned_nose_shows_nothing_of_what_it_hides(large_astronaut, yaw):
    """On a turn the nose moves over the far cheek and hides the strip between them. The map, interpolated
    from the working resolution across that fold, showed the strip as a dark, stepped line beside the nose
    (s12 and d19 at yaw -20). Here the strip is painted a marker colour in the photo, and the frame may show
    almost none of it on the face (the engine before showed 29 and 40 marked pixels; this one 0 and 0)."""
    from enliven.engines.warp import WarpEngine

    shown, hidden = af.shown_hidden(WarpEngine, large_astronaut, channel_values(head_yaw=yaw))
    assert hidden > 50  # the turn does hide a strip
    assert shown <= 5


@pytest.mark.parametrize("yaw", [30, -30])
def test_a_turn_brings_nothing_from_beyond_the_face_outline_into_the_face(large_astronaut, yaw):
    """MediaPipe's row of landmarks beside its face oval lies on the oval in the photo (or past it) but a sixth
    of a face width nearer, and a turn carried them ahead of the oval: the skin's edge went with them, and
    the backdrop or hair beyond it showed in a notch cut into the cheek between each pair of oval points (d9
    at yaw -20 and -30, a bite of hair; here the backdrop under the ear). With the photo painted a marker
    colour past its oval, the frame shows none of it inside its own oval (the engine before: 857 marked
    pixels at yaw 30, 617 at -30)."""
    from enliven.engines.warp import WarpEngine

    assert af.shown_beyond_outline(WarpEngine(large_astronaut), channel_values(head_yaw=yaw)) == 0


def test_a_point_is_no_nearer_than_the_outline_allows():
    """outline_depths holds a point on or past the outline at the outline's depth there (interpolated along
    its nearest segment), one inside it at most `slope` pixels nearer per pixel inside, and leaves a deeper
    point as it is."""
    outline = np.array([[0, 0, 10], [40, 0, 10], [40, 40, 30], [0, 40, 30]], float)
    points = np.array([[45, 20, 0],    # past the right side, halfway down it: 20 deep there
                       [20, 0, 0],     # on the top side: 10
                       [20, 3, 0],     # 3 inside the top: 10 - 2 * 3
                       [20, 20, 0],    # 20 inside: the cap (10 - 40 or so) is nearer than its own depth
                       [20, 3, 50]], float)  # deeper than the outline already
    np.testing.assert_allclose(outline_depths(points, outline, 2.0), [20, 10, 4, 0, 50])


def test_only_the_inward_part_of_a_lead_is_taken_back():
    """without_inward_lead keeps what a point moved past `held` outward or along the outline, and takes back
    what it moved toward the centre (a revealed side's band opening inside the outline)."""
    held = np.array([[10.0, 0.0, 5.0], [-10.0, 0.0, 5.0], [0.0, 10.0, 5.0]])
    moved = held + np.array([[-3.0, 0.0, 1.0], [-3.0, 0.0, 1.0], [-3.0, 2.0, 1.0]])
    np.testing.assert_allclose(without_inward_lead(moved, held, np.zeros(2)),
                               [[10, 0, 6],    # ran 3 inward: held back
                                [-13, 0, 6],   # ran 3 outward: kept
                                [-3, 12, 6]])  # along the outline (and outward): kept


def test_a_fold_is_a_jump_between_neighbours_not_a_stretch():
    """fold_cells marks the cells either side of a jump in the map (and their neighbours), never a smooth
    stretch however strong, and only inside the given mask."""
    ramp = np.zeros((20, 30, 2), np.float32)
    ramp[..., 0] = 0.8 * np.arange(30)[None, :]  # every cell 0.8 further than the last: a strong stretch
    inside = np.ones((20, 30), bool)
    assert not fold_cells(ramp, inside, 1.0).any()
    step = ramp.copy()
    step[:, 15:, 0] += 3.0  # the nose over the cheek: 3 cells of photo skipped between columns 14 and 15
    cells = fold_cells(step, inside, 1.0)
    assert cells[:, 13:17].all() and not cells[:, :13].any() and not cells[:, 17:].any()
    inside[:10] = False
    assert not fold_cells(step, inside, 1.0)[:9].any()


def test_a_thin_line_the_warp_squeezes_stays_a_line():
    """A map that squeezes the photo (a collar under a head that rolls or drops) samples it more sparsely
    than one sample a pixel, and bilinear sampling drew bald_guys' own 1-pixel white lines as dotted lines
    (39 specks on his face #1 at head_roll -45, at the photo's own size). Squeezed 2x, a thin line drawn
    without the prefilter breaks into dots; with it (engines/squeeze.py) it stays a continuous, fainter line."""
    from enliven.engines.squeeze import prefilter_squeezed, squeeze, squeeze_weight

    texture = np.full((220, 220, 3), 30, np.uint8)
    cv2.line(texture, (0, 20), (219, 130), (255, 255, 255), 1, cv2.LINE_8)  # one pixel thin, half as steep as a diagonal
    grid = np.dstack(np.meshgrid(np.arange(100, dtype=np.float32), np.arange(100, dtype=np.float32)))
    field = grid.copy()  # where_from = 2 p: each frame pixel spans two photo pixels each way
    assert squeeze(field)[50, 50] == pytest.approx(2.0)
    where_from = grid + field
    sharp = cv2.remap(texture, where_from, None, cv2.INTER_LINEAR)
    squeezed = squeeze_weight(field, field, np.ones((100, 100), bool))
    assert squeezed is not None and squeezed[0][1:-1, 1:-1].min() == 1.0
    softened = sharp.copy()
    prefilter_squeezed(softened, texture, where_from, squeezed, 1.0, (0, 0, 100, 100))
    inside = np.zeros((100, 100), bool)
    inside[5:-5, 5:-5] = True
    assert (af.speck_mask(sharp) & inside).sum() > 20  # without the prefilter: dots
    assert (af.speck_mask(softened) & inside).sum() == 0
    line = softened[inside].max(axis=-1) > 60  # ... and the line is still there, every column of it
    assert line.sum() >= 80


def test_thin_lines_squeezed_harder_than_the_rest_get_a_stronger_blur():
    """One blur for the whole squeezed part, set by its 90th percentile, left the few pixels squeezed much
    harder dotted (a collar under bald_guys #2's head dropped by half a face, at the photo's own size: 4-5x
    and sheared there, 2x around; 6 specks). A map squeezing 2x, and one patch of it 4-5x and sheared, over
    one-pixel lines: one blur leaves the patch dotted, the stronger blur taking over there does not."""
    from enliven.engines.squeeze import prefilter_squeezed, squeeze_weight

    grid = np.dstack(np.meshgrid(np.arange(200, dtype=np.float32), np.arange(200, dtype=np.float32)))
    x, y = grid[..., 0], grid[..., 1]
    patch = (x >= 100) & (x < 130) & (y >= 100) & (y < 130)
    where_from = np.dstack([2 * x, np.where(patch, 200 + 4 * (y - 100) + 2.5 * (x - 100), 2 * y)])
    texture = np.full((int(where_from[..., 1].max()) + 10, 410, 3), 30, np.uint8)
    texture[::9] = 255  # one-pixel lines across, as a collar's stripes
    sharp = cv2.remap(texture, where_from, None, cv2.INTER_LINEAR)
    squeezed = squeeze_weight(where_from - grid, where_from - grid, np.ones((200, 200), bool))
    assert squeezed.stronger is not None and squeezed.stronger_sigma > 2 * squeezed.sigma
    inner = np.zeros((200, 200), bool)
    inner[104:126, 104:126] = True
    specks = []
    for blurs in (squeezed._replace(stronger=None), squeezed):  # one blur (as before), then both
        softened = sharp.copy()
        prefilter_squeezed(softened, texture, where_from, blurs, 1.0, (0, 0, 200, 200))
        specks.append((af.speck_mask(softened) & inner).sum())
    assert specks[0] > 10 and specks[1] == 0  # (measured: 28 and 0; 81 unfiltered)


def _blotches(rgb: np.ndarray) -> np.ndarray:
    """Dark blotches: pixels over 30 levels darker than the median of their 11 x 11 neighbours, in patches at
    least 3 pixels across (a photo's thin shading line is no blotch)."""
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    dark = ((cv2.medianBlur(grey, 11).astype(int) - grey) > 30).astype(np.uint8)
    return cv2.morphologyEx(dark, cv2.MORPH_OPEN, np.ones((3, 3), np.uint8)).view(bool)


def test_flecks_on_a_strip_a_turn_widens_are_not_blown_up_into_blotches():
    """A turn brings round a surface the photo saw nearly edge-on (the side of s12's nose) and the map widens
    the strip of photo it was drawn from several times: the flecks of a shading line on it, two pixels wide
    in the photo, came out as dark blotches (s12 at yaw 15-25). Widened 3 times, a dotted line drawn without
    the prefilter is a column of blotches; with it (squeeze.widen_weight), soft shading. A map that widens as
    much by an expression (turn_widening: 1) is left sharp."""
    from enliven.engines.squeeze import WIDENED_BLUR, prefilter_squeezed, turn_widening, widen_weight, widening

    texture = np.full((120, 120, 3), (205, 170, 150), np.uint8)
    for y in range(10, 110):
        texture[y, 59:61] = (70, 50, 40) if (y // 5) % 2 else (150, 120, 100)
    grid = np.dstack(np.meshgrid(np.arange(120, dtype=np.float32), np.arange(120, dtype=np.float32)))
    x = grid[..., 0]
    where_from = grid.copy()  # frame x 50..62 is drawn from photo x 58..62; left of it shifted, right of it still
    where_from[..., 0] = np.where(x < 50, x + 8, np.where(x < 62, 58 + (x - 50) / 3, x))
    field = where_from - grid
    assert widening(field)[60, 52:60] == pytest.approx(3.0, abs=1e-4)
    strip = np.array([[58, 0], [62, 0], [62, 119], [58, 119]], np.float64)  # ... and so the head's turn alone
    frame_strip = np.array([[50, 0], [62, 0], [62, 119], [50, 119]], np.float64)
    by_turn = turn_widening((120, 120), strip, frame_strip, frame_strip, np.array([[0, 1, 2], [0, 2, 3]]))
    face, mouth = np.ones((120, 120), bool), np.array([[2, 110], [8, 110], [5, 115]], np.float64)  # (far away)
    widened = widen_weight(field, face, 5, mouth, by_turn)
    assert widened is not None and widened.sigma == WIDENED_BLUR and widened.weight[20:100, 53:59].min() > 0.99
    assert widen_weight(field, face, 5, mouth, np.ones((120, 120), np.float32)) is None  # an expression's
    sharp = cv2.remap(texture, where_from, None, cv2.INTER_LINEAR)
    softened = sharp.copy()
    prefilter_squeezed(softened, texture, where_from, widened, 1.0, (0, 0, 120, 120))
    assert not _blotches(texture).any()
    assert _blotches(sharp)[15:105].sum() > 200  # without the prefilter (measured: 270)
    assert not _blotches(softened).any()
    grey = cv2.cvtColor(softened, cv2.COLOR_RGB2GRAY).astype(np.float32)
    assert grey[15:105, 50:62].mean() < grey[15:105, 20:40].mean() - 20  # ... and the shading is still there
    assert (softened[:, :44] == sharp[:, :44]).all() and (softened[:, 68:] == sharp[:, 68:]).all()


def test_a_nose_side_seen_edge_on_turned_to_the_camera_keeps_no_blotches(subject):
    """The engine end to end: the astronaut with the landmarks of her nose's image-left side pressed into a
    strip 3 pixels wide (as a photo of a face turned a little away sees it, s12's), a dotted shading line
    painted on it. Turned 20 and 25 degrees, the strip widens 2-3 times: its flecks came out as dark blotches
    (measured: 65 and 58 blotch pixels; the photo none), now soft shading (35 and 23)."""
    from enliven.engines.warp import WarpEngine

    wall = [47, 126, 209, 217, 198, 131, 114, 174, 236, 134, 3, 51, 196, 188, 122, 245]
    landmarks = subject.landmarks.copy()
    bridge = landmarks[wall, 0].max()
    landmarks[wall, 0] = bridge - 0.3 * (bridge - landmarks[wall, 0])
    photo = subject.image.copy()
    column = int(np.floor(bridge)) - 2
    for y in range(int(round(landmarks[wall, 1].min())), int(round(landmarks[wall, 1].max()))):
        photo[y, column:column + 2] = (70, 50, 40) if (y // 4) % 2 else (150, 115, 95)
    engine = WarpEngine(dataclasses.replace(subject, image=photo, landmarks=landmarks))

    def blotches_beside_nose(rgb: np.ndarray, points: np.ndarray) -> int:
        side = np.zeros(rgb.shape[:2], np.uint8)
        cv2.fillConvexPoly(side, cv2.convexHull(np.round(points[wall, :2]).astype(np.int32)), 1)
        return int((_blotches(rgb) & cv2.dilate(side, np.ones((5, 5), np.uint8)).view(bool)).sum())

    assert blotches_beside_nose(photo, landmarks) == 0
    blotches = []
    for yaw in (20, 25):
        values = channel_values(head_yaw=yaw)
        blotches.append(blotches_beside_nose(engine.render(values), engine.target_points(values)[0]))
    assert sum(blotches) < 85, blotches  # (without the prefilter 123)


@pytest.mark.parametrize("roll", [45, -45])
def test_thin_lines_under_a_rolling_head_stay_lines(astronaut, roll):
    """The astronaut enlarged twice with one-pixel white lines drawn across her collar (as bald_guys has
    of its own): a head rolled 45 degrees squeezes them, and drawn without the prefilter they broke into
    dots (120 and 106 new specks here); with it, a handful."""
    photo = cv2.resize(astronaut, None, fx=2, fy=2, interpolation=cv2.INTER_CUBIC)
    found = analyze_image(photo)
    x0, y0, x1, y1 = found.head_region
    chin = int(found.landmarks[lm.CHIN, 1])
    photo[[y for y in range(chin + 6, y1 - 2, 6)], x0:x1] = 255
    lined = analyze_image(photo)
    x0, y0, x1, y1 = lined.head_region
    head = np.zeros(photo.shape[:2], bool)
    head[y0:y1, x0:x1] = True
    frame = Animator(lined).engine.render(channel_values(head_roll=roll))
    assert af.new_specks(frame, photo, head) <= 10


def test_a_redrawn_fold_fades_in_and_its_edge_fades_across():
    """draw_folds on a flat mesh (the exact map is the identity) over a photo black on the left and white
    on the right, into a box the engine had drawn grey: inside the fold the photo is drawn, its black-white
    step blurred over the fade; at the fold's edge, also where it meets its window's edge, it fades in from
    the grey over FOLD_FEATHER pixels instead of a step."""
    from enliven.engines.folds import FOLD_FEATHER, draw_folds

    texture = np.zeros((40, 40, 3), np.uint8)
    texture[:, 20:] = 255
    corners = np.array([[-1.0, -1.0, 0.0], [41.0, -1.0, 0.0], [41.0, 41.0, 0.0], [-1.0, 41.0, 0.0]])
    triangles = np.array([[0, 1, 2], [0, 2, 3]])
    region = np.full((40, 40, 3), 128, np.uint8)
    folds = np.zeros((20, 20), bool)
    folds[5:15, 5:15] = True  # at half resolution: pixels 10-29 each way
    drawn = draw_folds(region, texture, (0, 0, 40, 40), folds, 0.5, corners, corners, triangles,
                       np.zeros(2, bool), 2.0)
    assert drawn[10:30, 10:30].all() and drawn.sum() == 400
    assert (region[~drawn] == 128).all()
    row = region[20, :, 0].astype(int)
    assert row[13] < 5 and row[27] > 245  # the photo, inside the fold
    assert ((row[13:28] > 20) & (row[13:28] < 235)).sum() >= 3  # its step, blurred over the 2-pixel fade
    for edge in (row[10], int(region[10, 14, 0])):  # the fold's outermost pixels, on its window's edge
        assert 128 - 128 * 0.5 < edge < 128  # a third of the way from the grey to the black
    assert row[10 + FOLD_FEATHER + 1] < 10  # faded in fully a pixel further in


def test_an_iris_is_clipped_softly_only_where_a_fold_runs():
    from enliven.engines.folds import soften_at_folds

    coverage = np.zeros((10, 10), np.float32)
    coverage[:, :5] = 1.0
    folded = np.zeros((14, 14), bool)
    folded[2:7, 2:14] = True  # the box's pixels; the coverage is of its window (2, 2, 12, 12): rows 0-4
    softened = soften_at_folds(coverage, folded, (2, 2, 12, 12))
    assert softened[:5, 4] == pytest.approx(2 / 3) and softened[:5, 5] == pytest.approx(1 / 3)
    assert (softened[5:] == coverage[5:]).all()
    assert soften_at_folds(coverage, None, (2, 2, 12, 12)) is coverage


@pytest.mark.parametrize("pose", [dict(head_yaw=20), dict(head_yaw=-20), dict(head_pitch=15), dict(head_pitch=-15)])
def test_a_turning_head_carries_its_hair(animator, subject, pose):
    """The hair beside the forehead and temples moves with the face: where the rig puts the ring just outside
    the upper face, the frame shows what the photo had on that ring, within a pixel or two (the engine before
    measured 2.6 to 7.5 levels here, 18 to 29 read at single pixels: the face slid over its own hair and
    uncovered backdrop beside it, or cut through it; this one 0.9 to 1.2)."""
    result = animator.engine.render_with_fields(channel_values(**pose), keep_fields=False)
    assert af.hair_slip(result.frame, result.target_landmarks, subject.image, subject.landmarks) < 2.5


def test_the_nose_hides_the_far_eye_from_the_gaze(animator, subject):
    """On a turn the nose passes in front of the far eye's inner corner; the iris drawn for the gaze (the
    eyeball's parallax) must not show through it. Pixels warped from outside the eye are left as warped
    (at yaw -45 the engine before drew iris over 5 pixels of the nose of the astronaut; 2008_002506 showed a
    purple wedge at the bridge of his glasses at yaw -20)."""
    engine = animator.engine
    values = channel_values(head_yaw=-45, gaze_x=1)
    result = engine.render_with_fields(values, keep_fields=False)
    x0, y0 = engine.region[:2]
    box = result.box
    full = engine._full_resolution_displacement(result.displacement, box, engine.control_points_work(
        *engine.target_points(values)[:2]))
    # Where each frame pixel came from in the photo: outside both eyes' openings means skin (the nose, lids).
    rows, cols = np.mgrid[box[1]:box[3], box[0]:box[2]]
    source_x = (full[..., 0] + cols + x0).round().astype(int).clip(0, subject.image.shape[1] - 1)
    source_y = (full[..., 1] + rows + y0).round().astype(int).clip(0, subject.image.shape[0] - 1)
    openings = np.zeros(subject.image.shape[:2], np.uint8)
    for side in ("left", "right"):
        openings |= cv2.dilate(af.polygon_mask(subject.image.shape, subject.landmarks[list(lm.eye_polygon(side)), :2])
                               .astype(np.uint8), np.ones((7, 7), np.uint8))
    from_skin = openings[source_y, source_x] == 0
    drawn = result.frame[y0 + box[1]:y0 + box[3], x0 + box[0]:x0 + box[2]]
    warped_only = engine.render_with_fields(channel_values(head_yaw=-45), keep_fields=False).frame
    assert np.array_equal(drawn[from_skin], warped_only[y0 + box[1]:y0 + box[3], x0 + box[0]:x0 + box[2]][from_skin])


@pytest.mark.parametrize("gaze", [dict(gaze_x=1), dict(gaze_x=-1), dict(gaze_y=1), dict(gaze_y=-1)])
def test_gaze_moves_each_iris_as_a_rigid_disc(animator, subject, gaze):
    """A gaze at its extreme shows the photo's own iris, whole and round, where the rig put it, and the
    face tracker follows it there (the engine before #13 drew "<<" chevrons with sclera streaks through
    them: disc error 17 to 61 levels, and the tracker saw a quarter to 0.44 of the requested travel; until
    the iris was mapped rigidly, a vertical gaze squashed it between the moving lids: 5 to 7 levels, and
    the tracker saw 0.47 of an upward gaze)."""
    result = animator.engine.render_with_fields(channel_values(**gaze), keep_fields=False)
    tracked = analyze_image(result.frame).landmarks
    for iris, side in ((lm.RIGHT_IRIS, "right"), (lm.LEFT_IRIS, "left")):
        source_centre = subject.landmarks[iris[0], :2]
        radius = float(np.linalg.norm(subject.landmarks[list(iris[1:]), :2] - source_centre, axis=1).mean())
        target_centre = result.target_landmarks[iris[0], :2]
        opening = list(lm.eye_polygon(side))
        error = af.iris_disc_error(result.frame, result.target_landmarks[opening], target_centre,
                                   subject.image, subject.landmarks[opening], source_centre, radius)
        assert error < 4.5
        assert af.travel_ratio(source_centre, tracked[iris[0], :2], target_centre) > 0.6
        if "gaze_x" in gaze:  # the white a sideways gaze uncovers: no brighter than the photo's (bench threshold 10)
            assert af.uncovered_white_excess(result.frame, result.target_landmarks[opening], target_centre,
                                             subject.image, subject.landmarks[opening], source_centre, radius) <= 10


def test_closed_eyes_show_a_thin_lash_line(animator):
    """Closed lids meet in a line of lashes as thin as real closed eyes show (the training clips' closed eyes
    read 0.145 eye widths, median, 0.2 at the 90th percentile), not a painted crescent (the engine before
    #13 drew one 0.16 and 0.22 eye widths thick), and a line there is (a lid with none reads open)."""
    result = animator.engine.render_with_fields(channel_values(blink_l=1, blink_r=1), keep_fields=False)
    for upper in (lm.LEFT_EYE_UPPER, lm.RIGHT_EYE_UPPER):
        assert 0.05 < af.lash_line_thickness(result.frame, result.target_landmarks[list(upper)]) < 0.2


@pytest.mark.parametrize("yaw", [-30.0, 15.0, 30.0])
def test_eyes_closing_on_a_turned_head_paint_only_the_eyes(animator, yaw):
    """Closed lids on a turned head were smeared sideways out of the eyes, across the temple and the hair: the
    lid margin a blink stretches was measured from where the lid lies in the photo, 30 px from where the turned
    head has it, and the whole band between was painted as lid skin. The blink changes nothing beyond half an
    eye's width around each eye (before, on the 512 px astronaut: 31-190 pixels by over 20 levels)."""
    turned = animator.engine.render_with_fields(channel_values(head_yaw=yaw), keep_fields=False)
    closed = animator.engine.render_with_fields(channel_values(head_yaw=yaw, blink_l=1, blink_r=1), keep_fields=False)
    changed = np.abs(closed.frame.astype(int) - turned.frame).max(axis=2) > 20
    for side in ("left", "right"):
        eye = closed.target_landmarks[list(lm.eye_polygon(side)), :2]
        reach = 0.5 * np.ptp(eye[:, 0])
        (x0, y0), (x1, y1) = np.floor(eye.min(axis=0) - reach).astype(int), np.ceil(eye.max(axis=0) + reach).astype(int)
        changed[max(y0, 0):y1, max(x0, 0):x1] = False
    assert changed.sum() <= 20, changed.sum()


@pytest.mark.parametrize("seed, duration_s", [(0, 3.0), (5, 4.5)])
def test_a_rendered_loop_has_no_jump_at_the_wrap(animator, seed, duration_s):
    # `generate --preset idle-alive --loop` as a looping GIF shows: the last
    # frame's pixels step into the first's no more than frame into frame.
    from test_presets import wrap_and_steps

    values = preset_motion("idle-alive", fps=12, seed=seed, duration_s=duration_s, loop=True).full()
    frames = np.stack([animator.render(row).astype(np.float32) for row in values])
    wrap, steps = wrap_and_steps(frames)
    assert 0 < wrap <= np.median(steps)  # mean absolute pixel difference, 0..255


def test_gaze_uncovers_a_shaded_eyeball_not_a_flat_fill(animator, subject):
    """Where the iris was before a gaze moved it, the eye shows sclera: little coloured, and in the upper
    lid's shadow at the top (the flat fill before #13's second pass: top and middle within 2 levels)."""
    result = animator.engine.render_with_fields(channel_values(gaze_x=1), keep_fields=False)
    for iris, side in ((lm.RIGHT_IRIS, "right"), (lm.LEFT_IRIS, "left")):
        centre = subject.landmarks[iris[0], :2]
        radius = np.linalg.norm(subject.landmarks[list(iris[1:]), :2] - centre, axis=1).mean()
        opening = af.polygon_mask(result.frame.shape, result.target_landmarks[list(lm.eye_polygon(side)), :2])
        revealed = (opening & af.disc_mask(result.frame.shape, centre, radius)
                    & ~af.disc_mask(result.frame.shape, result.target_landmarks[iris[0], :2], 1.2 * radius))
        rows = np.nonzero(revealed)[0]
        pixels = result.frame[revealed].astype(float)
        luma = af.luma(result.frame)[revealed]
        top, middle = (luma[(rows >= np.percentile(rows, low)) & (rows < np.percentile(rows, high))].mean()
                       for low, high in ((0, 33), (33, 66)))
        assert len(rows) > 20 and top < middle - 10
        assert np.median((pixels.max(axis=1) - pixels.min(axis=1)) / pixels.max(axis=1)) < 0.25


def test_a_sideways_gaze_turns_the_photo_s_own_sclera(astronaut, subject):
    """The white the iris leaves is the photo's own, slid along with the eyeball as it turns, not paint: a red
    fleck on the astronaut's sclera, on the side the iris leaves, travels toward it and stays red (before,
    the fleck stayed where it was and the iris's old place showed a flat, painted white). An eye whose side
    the iris leaves shows no sclera to slide (a white in deep shadow) keeps its fleck where it is."""
    photo, flecks = astronaut.copy(), {}
    for iris, side in ((lm.RIGHT_IRIS, "right"), (lm.LEFT_IRIS, "left")):
        centre = subject.landmarks[iris[0], :2]
        radius = np.linalg.norm(subject.landmarks[list(iris[1:]), :2] - centre, axis=1).mean()
        opening = af.polygon_mask(photo.shape, subject.landmarks[list(lm.eye_polygon(side)), :2])
        left_of_iris = np.arange(photo.shape[1]) < centre[0]
        rows, cols = np.nonzero(opening & ~af.disc_mask(photo.shape, centre, 1.6 * radius) & left_of_iris)
        brightest = np.argmax(af.luma(photo)[rows, cols])  # sclera, left of the iris
        flecks[side] = rows[brightest], cols[brightest]
        photo[rows[brightest]:rows[brightest] + 2, cols[brightest]:cols[brightest] + 2] = (255, 0, 0)
    made = analyze_image(photo)
    engine = Animator(made).engine

    def fleck_shifts() -> list[float]:
        frame = engine.render(channel_values(gaze_x=1)).astype(int)  # the iris moves right, away from the flecks
        shifts = []
        for row, col in flecks.values():
            window = frame[row - 4:row + 6, col - 12:col + 14]
            red_columns = np.nonzero(window[..., 0] - window[..., 1:].max(axis=2) > 60)[1]
            assert len(red_columns) > 0
            shifts.append(red_columns.mean() - 12.5)
        return shifts

    assert min(fleck_shifts()) >= 0.75
    # Each eye told that the photo shows no sclera on its image-left side, the side the iris leaves.
    for eyeball, side in zip(engine.eyeballs, ("right", "left")):
        upper = lm.eye_lids(side)[0]
        first_is_left = made.landmarks[upper[0], 0] < made.landmarks[upper[-1], 0]
        eyeball.sclera_beside = (False, True) if first_is_left else (True, False)
    assert max(np.abs(fleck_shifts())) < 0.5


def test_a_wide_open_mouth_full_of_teeth_splits_instead_of_stretching(wide_open_mouth):
    """Stretched, teeth smear into long white bars: a wide-open mouth that shows mostly teeth (a grin) keeps
    the split interior, its teeth moving with their lips, and the same mouth showing throat stretches."""
    from enliven.engines.mouth import interior_stretches

    photo, points = wide_open_mouth.subject.image, wide_open_mouth.subject.landmarks
    assert interior_stretches(photo, points)
    grin = photo.copy()
    opening = af.polygon_mask(grin.shape, points[list(lm.inner_lip_polygon()), :2])
    grin[opening] = (236, 232, 222)
    assert not interior_stretches(grin, points)


def test_the_map_behind_the_face_bends_in_curves_and_is_exact_at_the_border():
    """Hair strands crossing the hair rings' triangles bent at each triangle edge (a V-shaped map here);
    smoothed, they bend in curves, while the region's border keeps the exact map (the identity there in
    the engine), so the region still pastes back without a seam; the map reaches under the face's edge."""
    size = 60
    columns = np.arange(size, dtype=np.float32)
    displacement = np.zeros((size, size, 2), np.float32)
    displacement[..., 0] = 0.1 * np.abs(columns - 30)[None, :]
    behind = np.ones((size, size), bool)
    behind[25:36, 25:36] = False  # the face
    field, weight = smooth_behind_face(displacement, behind, 3.0, border_ramp((size, size), 9.0), 0.02)

    def bend(map_row: np.ndarray) -> float:
        return abs(map_row[29, 0] - 2 * map_row[30, 0] + map_row[31, 0])

    assert bend(field[15]) < 0.3 * bend(displacement[15])
    assert np.array_equal(field[0], displacement[0]) and np.array_equal(field[:, 0], displacement[:, 0])
    assert np.array_equal(field[-1], displacement[-1]) and np.array_equal(field[:, -1], displacement[:, -1])
    assert weight[26, 26] > 0.05 and field[26, 26, 0] > 0  # defined a little under the face's edge


def test_a_notch_in_the_face_outline_is_filled_but_a_bay_is_not():
    """On a turn the far cheek's mesh folds, and the face's outline got a notch a few pixels wide that the
    hair behind showed through as a dark wedge (d9 at yaw 20). A notch narrower than twice the radius is
    filled where the face's map reaches; a wide bay, and anything beyond the map's reach, is left alone."""
    yy, xx = np.mgrid[:80, :80]
    face = (yy - 40) ** 2 + (xx - 40) ** 2 < 30 ** 2
    notch = (np.abs(yy - 30) <= 1) & (xx > 62)  # 3 px wide, cut 8 px into the right edge
    bay = (np.abs(yy - 50) <= 9) & (xx < 22)  # 19 px wide, on the left
    cut = face & ~notch & ~bay
    defined = np.ones_like(face)
    defined[:, 67:] = False  # the map reaches only columns up to 66 on the right
    filled = fill_notches(cut, defined, 3.0)
    assert filled[30, 62:67].all() and not filled[30, 67:].any()  # filled as far as the map reaches
    assert not filled[45:56, 13:22].any()  # the bay stays (only its inner corners are rounded)
    assert not (filled & ~cut & ~notch & ~bay).any()  # nothing outside the cuts is added
    assert np.array_equal(fill_notches(cut, defined, 0.4), cut)


def outline_at_full_resolution(coverage: np.ndarray, scale: int) -> np.ndarray:
    """Per full-resolution row (`scale` pixels a working cell), the column (in cells) where a working-resolution
    `coverage`, interpolated bilinearly as the engine samples it, falls through 0.5 (the face on the left)."""
    height, width = coverage.shape
    centres = ((np.arange(scale * max(height, width)) + 0.5) / scale - 0.5).astype(np.float32)
    grid_x, grid_y = np.meshgrid(centres[:scale * width], centres[:scale * height])
    full = cv2.remap(coverage, grid_x, grid_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    columns = []
    for row in full:
        i = np.flatnonzero((row[:-1] >= 0.5) & (row[1:] < 0.5))[0]
        columns.append(centres[i] + (row[i] - 0.5) / (row[i] - row[i + 1]) / scale)
    return np.array(columns)


def test_the_face_outline_is_smooth_at_full_resolution():
    """The face's outline comes from the working resolution, a staircase of cells, with spikes a cell or two
    long where the far cheek's mesh folds on a turn. Drawn at full resolution it must be a smooth curve: with
    the ordering smoothed too little (as before), d9's far cheek showed a stair-step edge and a spike of hair
    jutting into it at yaw 20 (here: a staircase wiggling 0.52 cells, a spike bulging 1.37 cells)."""
    rows, cols = np.mgrid[:64, :64]
    staircase = cols < np.floor(24 + rows / 8.0)  # a nearly vertical outline, one cell over every 8 rows
    outline = outline_at_full_resolution(layer_coverage(staircase), 4)[40:200]  # away from the grid's ends
    along = np.arange(len(outline))
    wiggle = outline - np.polyval(np.polyfit(along, outline, 1), along)
    assert np.ptp(wiggle) < 0.2
    spiked = cols < 30
    spiked[30:32, 30:32] = True  # a spike two cells wide and two long
    outline = outline_at_full_resolution(layer_coverage(spiked), 4)
    assert outline.max() - np.median(outline) < 0.8


@pytest.mark.parametrize("fade", [1.0, 2.0])
def test_the_face_fades_into_what_is_behind_it_over_the_fade(fade):
    """A face cut one pixel sharp from the hair or backdrop behind it reads as pasted on; a photo's own edges
    are 2-3 px soft. Across a straight outline at full resolution (2.5 pixels a working cell, as d9's), the
    face's coverage goes from nothing to all over `fade` pixels, wherever the outline falls between pixels."""
    scale = 0.4
    cover = np.zeros((24, 24), bool)
    cover[:, :12] = True  # the face on the left
    soft = layer_coverage(cover)
    steepest = []
    for shift in (0.0, 0.25, 0.5):  # the outline at several places between full-resolution pixels
        columns = ((np.arange(60) + shift + 0.5) * scale - 0.5).astype(np.float32)
        row = cv2.remap(soft, columns[None, :], np.full((1, 60), 12, np.float32), cv2.INTER_LINEAR)[0]
        coverage = edge_coverage(row, scale, fade)
        assert coverage[:20].min() == 1.0 and coverage[40:].max() == 0.0
        steepest.append(np.abs(np.diff(coverage)).max())  # the most coverage lost from one pixel to the next
    assert 1 / fade - 0.1 <= max(steepest) <= 1 / fade + 0.05


def test_a_moved_mesh_draws_every_pixel_inside_it_and_none_far_outside():
    """Every pixel under a moved mesh belongs to a triangle that reaches it: a pixel left to no triangle
    inside the mesh would keep the photo where it was (a speck of the still photo in a moving face), and
    a pixel labelled with a triangle that does not reach it would be pulled from the wrong place."""
    rng = np.random.default_rng(3)
    points = np.vstack([[[4.4, 4.4], [59.6, 4.4], [59.6, 59.6], [4.4, 59.6]], rng.uniform(6, 58, (60, 2))])
    triangles = Delaunay(points).simplices.astype(np.int32)
    moved = np.column_stack([points + rng.uniform(-1.5, 1.5, points.shape) * (np.arange(len(points)) >= 4)[:, None],
                             np.zeros(len(points))])
    index_image = triangle_index_image(moved, triangles, np.ones(len(triangles), bool), (64, 64))
    # Drawn: every pixel inside, and those whose centres lie within half a pixel outside (0.4 here), as
    # OpenCV's polygon fill draws them: the mesh's outline stays where it was drawn before this rasteriser.
    assert (index_image[4:61, 4:61] >= 0).all()
    ys, xs = np.mgrid[0:64, 0:64]
    assert (index_image[(xs < 4) | (xs > 60) | (ys < 4) | (ys > 60)] == -1).all()
    # Each drawn pixel's centre lies in its triangle, or within half a pixel of one of its edges.
    corners = moved[triangles[index_image[index_image >= 0]], :2]  # (P, 3, 2)
    centres = np.column_stack([xs[index_image >= 0], ys[index_image >= 0]]).astype(float)
    signed_area = np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0])
    for a, b in ((0, 1), (1, 2), (2, 0)):
        edge = corners[:, b] - corners[:, a]
        distance_inside = np.cross(edge, centres - corners[:, a]) * np.sign(signed_area) / np.linalg.norm(edge, axis=1)
        assert distance_inside.min() >= -0.5 * np.sqrt(2) - 1e-9


def test_where_a_moved_mesh_folds_the_nearer_surface_shows():
    """Triangles are drawn far to near, and those flagged in front (the face over the hair it turns over)
    after all others whatever their depth."""
    target = np.array([[10, 10, 0], [50, 10, 0], [30, 50, 0], [10, 40, 0], [50, 40, 0], [30, 0, 0]], float)
    triangles = np.array([[0, 1, 2], [3, 4, 5]], np.int32)
    everywhere = np.ones(2, bool)
    target[[3, 4, 5], 2] = 1.0  # the second triangle farther
    assert triangle_index_image(target, triangles, everywhere, (64, 64))[25, 30] == 0
    target[[3, 4, 5], 2] = -1.0  # nearer
    assert triangle_index_image(target, triangles, everywhere, (64, 64))[25, 30] == 1
    in_front = np.array([True, False])
    assert triangle_index_image(target, triangles, everywhere, (64, 64), in_front=in_front)[25, 30] == 0
    assert triangle_index_image(target, triangles, np.array([True, False]), (64, 64))[25, 30] == 0  # not drawn


def test_a_triangle_squashed_to_a_sliver_shows_only_its_own_pixels():
    """Lips pressed thin are slivers of the mesh, mapped back to the photo several times larger. The pixels
    the rasteriser draws along a sliver's edge were mapped from that far outside its source triangle: on
    d19 at jaw_open -0.7 the cavity beside the thin upper lip showed as a dotted dark line along its top
    (18 dark dots along the lips; none now). Here the photo is white inside the source triangle only."""
    source = np.array([[10.0, 10.0, 0.0], [50.0, 10.0, 0.0], [30.0, 40.0, 0.0]])
    target = np.array([[10.0, 30.0, 0.0], [50.0, 31.0, 0.0], [30.4, 32.2, 0.0]])  # 30 px tall, squashed to 2
    triangles = np.array([[0, 1, 2]])
    photo = np.zeros((64, 64), np.uint8)
    cv2.fillConvexPoly(photo, np.round(source[:, :2] * 16).astype(np.int32), 255, cv2.LINE_AA, 4)
    affines, usable = triangle_affines(target, source, triangles)
    index_image = triangle_index_image(target, triangles, usable, (64, 64))
    grid = np.dstack(np.meshgrid(np.arange(64, dtype=np.float32), np.arange(64, dtype=np.float32)))

    def dark_pixels_drawn(displacement: np.ndarray) -> int:
        shown = cv2.remap(photo, grid + displacement, None, cv2.INTER_LINEAR)
        return int(((shown < 128) & (index_image >= 0)).sum())

    grid_x, grid_y = grid[..., 0], grid[..., 1]
    affine = affines[0]
    alone = np.dstack([affine[0, 0] * grid_x + affine[0, 1] * grid_y + affine[0, 2] - grid_x,
                       affine[1, 0] * grid_x + affine[1, 1] * grid_y + affine[1, 2] - grid_y]).astype(np.float32)
    assert dark_pixels_drawn(alone) > 10  # the affine alone lands far outside (34 of the 75 pixels drawn)
    assert dark_pixels_drawn(piecewise_affine_displacement(target, triangles, affines, usable, (64, 64))) == 0


def test_a_closed_lash_line_is_a_curve_not_a_polyline():
    """The lash line follows a smooth curve through the lid's nine landmarks: on a lid that is an arc of a
    circle 120 px wide, it stays within a twentieth of a pixel of the arc (the landmarks joined by straight
    lines cut half a pixel inside it at each chord's middle, a corner at every landmark)."""
    angles = np.linspace(np.pi * 0.2, np.pi * 0.8, 9)
    radius = 60.0 / np.cos(np.pi * 0.2)
    lid = np.column_stack([radius * np.cos(angles), -radius * np.sin(angles)])
    curve = smooth_curve(lid)
    assert np.allclose(curve[::4], lid)
    off_arc = np.abs(np.linalg.norm(curve, axis=1) - radius)
    chord_middles = (lid[1:] + lid[:-1]) / 2
    assert off_arc.max() < 0.05 < 0.4 < np.abs(np.linalg.norm(chord_middles, axis=1) - radius).max()


def test_a_closed_lash_line_is_a_soft_line_in_a_shade_fading_at_the_corners():
    """Across the lids a closed eye shows a soft dark line in a wider, fainter shade (as real closed eyes read
    across the lid: darkest on the line and still a tenth darker 0.1 eye widths off it), not a crisp stroke
    on a flat lid; it fades out toward the corners; and on a small eye the line holds no more darkness across
    it, for the eye's size, than on a large one (the blur's one-pixel floor would make it a stroke)."""
    def across_middle(eye_width: int) -> np.ndarray:
        line = np.column_stack([np.linspace(20, 20 + eye_width, 9), np.full(9, 50.0)])
        valley = closed_lash_line((101, eye_width + 40), line, eye_width)
        return valley, valley[:, 20 + eye_width // 2]

    valley, profile = across_middle(60)
    middle = int(profile.argmax())
    assert 50 <= middle <= 52  # on the line, or a pixel or two below it, where the lashes hang
    assert 0.9 < profile[middle] <= 1.0
    assert max(profile[middle - 3], profile[middle + 3]) < 0.5 * profile[middle]  # a line 0.1 eye widths across
    assert min(profile[middle - 6], profile[middle + 6]) > 0.05  # in a shade
    assert max(profile[middle - 18], profile[middle + 18]) < 0.01  # and the lid beyond it untouched
    assert valley[middle, 23] < 0.4 * valley[middle, 50]  # fading at the corners
    small_valley, small = across_middle(10)
    assert small.sum() / 10 <= 1.1 * profile.sum() / 60


def test_a_closed_lash_line_in_a_soft_photo_is_as_soft_and_as_dark():
    """In a photo whose edges are blurred by 3 px, the line is drawn at least that soft (a crisp stroke on a
    blurred face looks pasted on), and no fainter (blurred after drawing, it faded until the tracker read the
    lids as parted)."""
    line = np.column_stack([np.linspace(20, 80, 9), np.full(9, 50.0)])
    crisp = closed_lash_line((101, 100), line, 60)[:, 50]
    soft = closed_lash_line((101, 100), line, 60, photo_blur=3.0)[:, 50]
    assert soft.max() == pytest.approx(crisp.max(), abs=0.02)
    middle = int(soft.argmax())
    assert soft[middle + 3] > 0.6 * soft[middle] > crisp[middle + 3]  # 3 px off the line: still half dark


def test_a_small_eye_closes_without_a_painted_stroke(astronaut):
    """On a small face (the astronaut at 256 px: eyes 9 px wide) the closed eyes' lash line stays a faint
    line, at most a pixel of it dark, not a stroke (before: 0.22 of the eye's width, two pixels, a grey stroke
    drawn from the lid landmarks' pixels)."""
    small = analyze_image(cv2.resize(astronaut, (256, 256), interpolation=cv2.INTER_AREA))
    result = Animator(small).engine.render_with_fields(channel_values(blink_l=1, blink_r=1), keep_fields=False)
    for upper in (lm.LEFT_EYE_UPPER, lm.RIGHT_EYE_UPPER):
        lid = result.target_landmarks[list(upper), :2]
        eye_width = float(np.linalg.norm(lid[0] - lid[-1]))
        assert eye_width < 12
        assert af.lash_line_thickness(result.frame, lid) * eye_width <= 1.0


def test_closed_eyes_leave_no_white_at_their_corners(astronaut):
    """The white of a photo's eye often reaches past its corner landmarks (the astronaut's does not: the test
    paints a white wedge beyond each corner). Left outside the repainted lid, it was inpainted into the lid as
    a pale streak by the lash line, which people and the face tracker read as an open eye (d9 at blink 1:
    eye aspect 0.36 of neutral; 0.23 now)."""
    subject = analyze_image(astronaut)
    photo = astronaut.copy()
    corners = []
    for side in ("left", "right"):
        eye = subject.landmarks[list(lm.eye_polygon(side)), :2]
        width = float(np.ptp(eye[:, 0]))
        for corner in (eye[np.argmin(eye[:, 0])], eye[np.argmax(eye[:, 0])]):
            outward = np.sign(corner[0] - eye[:, 0].mean())
            wedge = np.array([corner, corner + (outward * 0.15 * width, -0.05 * width),
                              corner + (outward * 0.15 * width, 0.05 * width)])
            cv2.fillPoly(photo, [np.round(wedge).astype(np.int32)], (245, 245, 242))
            corners.append((corner, width))
    frame = Animator(analyze_image(photo)).render(channel_values(blink_l=1, blink_r=1))
    white = []
    for corner, width in corners:
        reach = int(np.ceil(0.25 * width))
        x, y = np.round(corner).astype(int)
        near = frame[y - reach:y + reach + 1, x - reach:x + reach + 1].astype(int)
        white.append(int(((near.min(axis=2) > 200) & (np.ptp(near, axis=2) < 30)).sum()))
    assert white == [0, 0, 0, 0]  # (before: [2, 3, 0, 0])


def test_a_small_closed_eyes_lid_is_lit_like_a_large_ones(monkeypatch):
    """A closed upper lid bulges forward and catches the light: its middle is pulled (LID_LIGHT) toward the
    skin around the eye from the inpainting, which takes the socket's shadow above it. That middle was found
    by eroding the lid by its soft margin, which on a small eye (bald_guys' at 768 px, 13 px wide) left a
    sliver: the pull reached 72 % of its share there, and the lid stayed a dark grey band."""
    import enliven.engines.warp_math as warp_math
    from enliven.engines.palette import LUMA

    width, skin, shadow, lashes = 13, (200, 150, 120), (110, 80, 60), (70, 45, 35)
    patch = np.full((21, 26, 3), skin, np.uint8)
    eye = np.zeros(patch.shape[:2], np.uint8)
    cv2.ellipse(patch, (13, 8), (8, 4), 0, 180, 360, shadow, -1)  # the socket's shade above the eye
    cv2.ellipse(eye, (13, 10), (6, 2), 0, 0, 360, 255, -1)
    patch[eye > 0] = lashes
    line = np.column_stack([np.linspace(6.5, 19.5, 9), np.full(9, 11.5)])  # where the lids meet
    upper = (eye > 0) & (np.arange(patch.shape[0])[:, None] < 10)

    def lid_luma() -> float:
        return float((warp_math.closed_lid(patch, eye, line, float(width))[upper].astype(np.float32) @ LUMA).mean())

    lit, share = lid_luma(), warp_math.LID_LIGHT
    monkeypatch.setattr(warp_math, "LID_LIGHT", 0.0)
    inpainted = lid_luma()
    skin_luma = float(np.array(skin, np.float32) @ LUMA)
    assert lit - inpainted > 0.9 * share * (skin_luma - inpainted)


def test_long_lashes_leave_no_dotted_arc_on_a_closed_lid(astronaut):
    """Long (or mascara) lashes reach well above the upper lid; their tips lay beyond the repainted lid and
    stayed on the closed eye as a dotted arc (d10). The test paints nine lashes a fifth of the eye long on
    each eye of the astronaut at twice her size, closes the eyes, and counts thin dark strokes left above
    the closed lid (28 before)."""
    big = cv2.resize(astronaut, None, fx=2, fy=2, interpolation=cv2.INTER_CUBIC)
    landmarks = analyze_image(big).landmarks
    lids = [smooth_curve(landmarks[list(ids), :2]) for ids in (lm.LEFT_EYE_UPPER, lm.RIGHT_EYE_UPPER)]
    photo = big.copy()
    for lid in lids:
        width = float(np.linalg.norm(lid[0] - lid[-1]))
        for share in np.linspace(0.2, 0.8, 9):
            root = lid[int(share * (len(lid) - 1))]
            tip = root + (0.12 * width * (share - 0.5), -0.2 * width)
            cv2.line(photo, tuple(np.round(root * 16).astype(int)), tuple(np.round(tip * 16).astype(int)), (40, 30, 30),
                     1, cv2.LINE_AA, 4)
    made = analyze_image(photo)
    animator = Animator(made)
    values = channel_values(blink_l=1, blink_r=1)
    frame = animator.render(values)
    closed = animator.engine.target_points(values)[0]
    strokes = cv2.morphologyEx(af.luma(frame), cv2.MORPH_BLACKHAT, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (7, 7)))
    left = 0
    for ids in (lm.LEFT_EYE_UPPER, lm.RIGHT_EYE_UPPER):
        lid, shut = made.landmarks[list(ids), :2], closed[list(ids), :2]
        width = float(np.linalg.norm(lid[0] - lid[-1]))
        x0, x1 = int(lid[:, 0].min()), int(np.ceil(lid[:, 0].max()))
        y0, y1 = int(lid[:, 1].min() - 0.22 * width), int(shut[:, 1].min() - 0.1 * width)
        left += int((strokes[y0:y1, x0:x1] > 12).sum())
    assert left <= 8


def test_a_winged_outer_lash_leaves_no_dark_dot_beside_a_closed_eye(astronaut):
    """A closing eye's corners are repainted a little past the lids; a lash or liner wing running on from the
    outer corner was cut there and its tip stayed beside the closed lid as a dark dot (bald_guys #1, whose
    eyes are 16 px wide). The test draws a wing a quarter of the eye long from each outer corner of the
    astronaut (eyes 18 px wide), closes the eyes and looks for dark strokes left around the corners."""
    photo = astronaut.copy()
    subject = analyze_image(photo)
    corners = []
    for ids in (lm.LEFT_EYE_UPPER, lm.RIGHT_EYE_UPPER):
        lid = subject.landmarks[list(ids), :2].astype(np.float64)
        outer = lid[0]  # the upper lid runs from the outer corner
        width = float(np.linalg.norm(lid[0] - lid[-1]))
        tip = outer + (outer - lid[-1]) / width * 0.25 * width + (0, -0.05 * width)
        cv2.line(photo, tuple(np.round(outer * 16).astype(int)), tuple(np.round(tip * 16).astype(int)), (35, 25, 20),
                 2, cv2.LINE_AA, 4)
        corners.append((outer, (outer - lid[-1]) / width, width))
    made = analyze_image(photo)
    frame = Animator(made).render(channel_values(blink_l=1, blink_r=1))
    strokes = cv2.morphologyEx(af.luma(frame), cv2.MORPH_BLACKHAT, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (5, 5)))
    ys, xs = np.mgrid[:frame.shape[0], :frame.shape[1]]
    for outer, outward, width in corners:  # past the corner (where the closed lash line ends), within the wing
        along = (xs - outer[0]) * outward[0] + (ys - outer[1]) * outward[1]
        beside = (along > 1.5) & (along < 0.4 * width) & (np.hypot(xs - outer[0], ys - outer[1]) < 0.4 * width)
        assert (strokes[beside] > 25).sum() <= 1


@pytest.mark.parametrize("channels", [
    {"head_yaw": 0.001}, {"head_yaw": 0.004, "blink_l": 0.0005}, {"breathing": 0.01},  # too small to move a pixel
    {"head_yaw": 0.3}, {"jaw_open": 0.05}, {"gaze_x": 0.05}, {"head_roll": 0.03, "blink_l": 0.02},  # moving a little
])
def test_skipping_a_still_face_draws_the_same_frame_as_drawing_it(subject, channels, monkeypatch):
    """A face whose control points hardly move is skipped before its fields are made; the frame must be
    the one the full path draws (which finds no moving pixel there, or draws the same small motion)."""
    import enliven.engines.warp as warp

    skipping = Animator(subject, engine="warp")
    drawing = Animator(subject, engine="warp")
    values = channel_values(**channels)
    skipped = skipping.render(values).copy()
    monkeypatch.setattr(warp, "STILL_POINTS", -1.0)  # never skip
    assert np.array_equal(skipped, drawing.render(values))


def test_turned_cells_mark_a_triangle_the_frame_turns_over_however_thin():
    """turned_cells marks the working cells under a triangle whose corners cross over (and TURNED_REACH
    around it), also one turned so flat that it covers no cell's centre, and nothing when none turns."""
    from enliven.engines.folds import TURNED_REACH, turned_cells

    still = np.array([[10.0, 10.0], [20.0, 10.0], [15.0, 20.0], [30.0, 10.0], [25.0, 20.0]])
    triangles = np.array([[0, 1, 2], [1, 3, 4]])
    assert turned_cells(still, still + 0.3, triangles, (40, 40)) is None
    moved = still.copy()
    moved[4] = [25.0, 9.9]  # the second triangle's apex crosses its base: turned over, a sliver 0.1 cells thin
    cells = turned_cells(still, moved, triangles, (40, 40))
    assert cells is not None and cells[10, 20:31].all()  # along the sliver ...
    assert cells[10 + TURNED_REACH, 25] and not cells[10 + TURNED_REACH + 1, 25]  # ... and TURNED_REACH around it
    assert not cells[15, 12]  # the first triangle did not turn


@pytest.mark.parametrize("yaw", [30, -30])
def test_a_fold_thinner_than_a_working_pixel_shows_nothing_it_hides(astronaut, yaw, monkeypatch):
    """At 1024 px a head turned 30 degrees hides a strip beside the nose so thin that the map jumps by less
    than a working pixel across it, so the jump alone does not find that fold; interpolated across it, the map
    showed the strip as a line (26 and 19 marked pixels with the fold found by the jump alone). Found also
    where the frame turns a triangle of the face over, it is redrawn from the exact map: at most 5."""
    import enliven.engines.warp as warp

    subject = analyze_image(cv2.resize(astronaut, None, fx=2, fy=2, interpolation=cv2.INTER_CUBIC))
    values = channel_values(head_yaw=yaw)
    shown, hidden = af.shown_hidden(warp.WarpEngine, subject, values)
    assert hidden > 200  # the turn does hide a strip
    assert shown <= 5
    monkeypatch.setattr(warp, "turned_cells", lambda *arguments: None)
    assert af.shown_hidden(warp.WarpEngine, subject, values)[0] > 10  # found by the jump alone: a line


def test_no_fold_is_redrawn_along_the_near_cheeks_outline(astronaut, monkeypatch):
    """Along a turned face's outline the oval's triangles and the skin ring's beyond it turn over too, into
    slivers the outline's own filter removes; redrawn from the exact map they cut hard streaks of hair into the
    near cheek (376 pixels changed by over 8 levels there at yaw 45 on the astronaut at 1024 px). Only the
    triangles inside the face count (inner_triangles): the near side is as it is with no turned folds at all."""
    import enliven.engines.warp as warp

    subject = analyze_image(cv2.resize(astronaut, None, fx=2, fy=2, interpolation=cv2.INTER_CUBIC))
    values = channel_values(head_yaw=45)
    engine = warp.WarpEngine(subject)
    with_folds = engine.render(values).astype(np.int16)
    monkeypatch.setattr(warp, "turned_cells", lambda *arguments: None)
    without = engine.render(values).astype(np.int16)
    nose_x = engine.target_points(values)[0][lm.NOSE_TIP, 0]
    near_side = np.arange(with_folds.shape[1]) < nose_x - 0.4 * subject.face_width
    changed = np.abs(with_folds - without).max(axis=2) > 8
    assert changed[:, ~near_side].any()  # the nose's fold is redrawn ...
    assert not changed[:, near_side].any()  # ... the near cheek's outline is not
