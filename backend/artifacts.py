"""Figures for the warp engine's visible artifacts, one number per artifact (pure numpy/OpenCV, no I/O).

- tears: a torn silhouette (a stair-step occlusion edge, skin jutting into
  the hair in blocks) adds edges that do not follow the outline.
  `outline_roughness` is the gradient energy along the outline's tangent in a
  band on the outline (`energy_along_outline`), divided by the same energy on
  the source's own outline: 1 is as smooth as the photo. (Tried first and
  dropped: total variation, which cannot tell a staircase from a smooth edge,
  its extra steps offset by blockier, wider transitions; structure-tensor
  incoherence, which hair texture dominates; and until 5 December 2026 the
  along-share of the band's energy, whose denominator collapsed wherever the
  frame drew the skin's edge a little off the rig's outline, as under hair on
  a turned cheek, and read smooth hair as torn.)
- hair slip: a turning or nodding head must carry the hair beside its face.
  `hair_slip` is the mean colour difference between the frame and the photo
  on a ring just outside the upper face (HAIR_RING times the face oval), each
  read where the rig put the ring: a face that slides over its own hair, or a
  forehead that cuts through it, shows skin or backdrop where the photo had
  hair. Given the photo's person mask, only the ring's points on the person
  count (on the backdrop the ring moves and the backdrop must not). Each
  point's colour is looked for within HAIR_SHIFT of where the rig put it:
  the scaled oval is not a point of the head, and on a turn it drifts a few
  pixels against the head's real edge (off a bald scalp onto the backdrop)
  or across a three-quarter face's glasses, which read as slip at a single
  pixel; a face sliding over its hair leaves the photo's colour nowhere near.
- specks: isolated pixels unlike all eight neighbours (`new_specks`), counted
  beyond those the source already had.
- gaze: a gaze shift should move the iris as a rigid disc. `iris_disc_error`
  compares the iris the frame shows where the rig put it with the source's
  iris disc moved there (mean absolute difference in levels, over the part of
  the disc the lids leave visible); `iris_roundness` is the circle-fit
  residual of a re-detected iris ring, in iris radii.
- edge left behind: where a head moves away from the backdrop, the fuzz at its
  hair's edge (beyond where the person mask ends) stayed in place as a dark,
  hair-shaped line. `edge_left_behind` counts the pixels beside the photo's
  person that the moved person left, still showing the photo, and darker than
  the background plate.
- folds: a mesh that folds (a triangle the frame turns over) draws hard, stepped edges: lash sawtooth at
  an eye's corners, grey fangs of teeth hanging from closing lips. `folded_around` counts them.
- hidden strip: where a turned face folds (the nose over the far cheek), the strip of photo between them
  is hidden, and a map interpolated across the fold showed it as a dark, stepped line beside the nose.
  `hidden_by_turn` finds the face's pixels the exact mesh hides at a frame's values; `shown_hidden` paints
  them a colour no face has (MARKER), renders the frame from that photo and counts the marked pixels.
- beyond the outline: a turn may bring what lies past the face's edge (hair, backdrop) inside it, as a
  notch cut into the cheek. `shown_beyond_outline` paints the photo past its face oval MARKER, renders
  the frame onto it and counts the marked pixels inside the frame's oval.
- mouth band: moving the lips of a wide-open mouth drew a dark cavity band
  across the tongue; `share_inside` of the engine's painted mask over the
  inner-lip polygon is the share of the interior painted over.
- crisp paint: in a soft photo, paint drawn sharper than anything the photo shows looks pasted on.
  `edge_strength` is the gradient per pixel with the grain smoothed off (PAINT_EDGE_SMOOTHING); a painted
  area's strongest edge over the photo's strongest is over 1 where that happens.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import cv2
import numpy as np

from . import landmarks as lm
from .arrays import runs_of
from .engines.warp_math import piecewise_affine_displacement, signed_areas, triangle_affines

SILHOUETTE_OUTSET = 1.05  # the band along the face's outline is centred this far out (from the outline's centre)
HAIR_RING = 1.2  # hair_slip reads the ring this far out from the face oval's centre
HAIR_SHIFT = 0.03  # ... and looks for each ring point's colour this far (face widths) around it
SPECK_LEVELS = 60  # a speck differs from every one of its 8 neighbours by more than this (0..255 luma)
EDGE_REACH = 0.06  # edge_left_behind looks this far (face widths) outside the photo's person ...
EDGE_LEVELS = 12  # ... for pixels of the photo this much darker (luma) than the background plate
EDGE_SMOOTHING = 1.5  # pixels: both smoothed by a Gaussian this wide first
EDGE_BACKDROP = (2.0, 4.0)  # the backdrop's own dark blotches are counted this far out (times EDGE_REACH)
EDGE_LEFT = 2.0  # pixels: a pixel is left behind once the moved person is this much further from it than the photo's
MIN_OUTLINE_ENERGY = 1.0  # squared luma levels a band pixel: under it a photo's outline is flat
LASH_LINE_REACH = 0.1  # eye widths: lash_line_thickness's dark run lies this near the lid line (at least a pixel)
MIN_EYE_PIXELS = 20  # uncovered_white_excess reads an eye showing at least this many pixels
# Lips that meet squeeze the row of thin triangles between them flat, and some overshoot by a hair: turned
# over, they keep a few hundredths of their area and draw nothing (the astronaut's own wide-open mouth at twice
# its size, sealed at jaw_open -0.85: 13 such, 0.003-0.045 of their area, under 0.6 px² each). A fold keeps at
# least this share: it draws the texture under it mirrored (grey fangs of teeth hanging from the lower lip: 6
# on that mouth before the mesh left out the chin points MediaPipe puts on the lip, 1 now).
FOLD_KEEPS = 0.25
MARKER = (0, 0, 255)  # shown_hidden paints the hidden strip pure blue ...
MARKER_LEVELS = 80  # ... and counts pixels whose blue exceeds their red and green by this much
# face widths: hidden_by_turn reads the face this far inside its landmarks' outline: the outline's own band
# is the tears' (a turned face's far cheek folds there too, and the warp leaves that band to its sliver filter)
HIDDEN_INSET = 0.15
BEYOND_INSET = 0.02  # face widths: shown_beyond_outline reads this far inside the frame's oval (not its soft edge)
LUMA = np.array([0.299, 0.587, 0.114], np.float32)
PAINT_EDGE_SMOOTHING = 1.0  # pixels: edge_strength smooths the grain off first (a grain's pixel is no edge)


def luma(rgb: np.ndarray) -> np.ndarray:
    """(H, W) float32 luma of an RGB uint8 image (a grey image is returned as float32)."""
    if rgb.ndim == 2:
        return rgb.astype(np.float32)
    return rgb.astype(np.float32) @ LUMA


def edge_strength(rgb: np.ndarray) -> np.ndarray:
    """(H, W) gradient magnitude of an RGB image's luma, levels a pixel, the grain smoothed off first."""
    smooth = cv2.GaussianBlur(luma(rgb), (0, 0), PAINT_EDGE_SMOOTHING)
    return np.hypot(cv2.Sobel(smooth, cv2.CV_32F, 1, 0), cv2.Sobel(smooth, cv2.CV_32F, 0, 1)) / 8


def face_silhouette(points: np.ndarray) -> np.ndarray:
    """Where a face's silhouette lies, as a closed polyline: the outline of its landmarks as drawn (their
    convex hull: on a turn the far cheek's landmarks overtake MediaPipe's face oval and form the outline,
    and a band on the oval would lie on the cheek, where the face's own features crowd into it), a little
    outside it, since the oval runs a little inside the skin's edge."""
    hull = cv2.convexHull(points[:lm.MESH_POINTS, :2].astype(np.float32)).reshape(-1, 2).astype(np.float64)
    centre = hull.mean(axis=0)
    return centre + (hull - centre) * SILHOUETTE_OUTSET


def hair_slip(frame: np.ndarray, frame_points: np.ndarray, source: np.ndarray, source_points: np.ndarray,
              person: np.ndarray | None = None, person_origin: tuple[int, int] = (0, 0)) -> float:
    """Mean colour difference (0..255 levels, over RGB) between `frame` and `source` on the ring beside the
    upper half of the face (HAIR_RING times the face oval), each read where its own landmarks put the ring
    (in the frame, the closest colour within HAIR_SHIFT face widths of it).

    With the photo's `person` mask ((H, W) 0..1, its top-left pixel at `person_origin` of the photo), only
    the ring's points on the person count: hair or scalp. Where the ring lies on the backdrop, the backdrop
    must stay put while the ring moves with the face, and a busy backdrop (a collage's tile edges, foliage)
    differs there by design; a moved head's edge on the backdrop is `edge_left_behind`'s figure.
    NaN when no point of the ring is on the person."""
    def ring_points(points: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
        oval = points[list(lm.FACE_OVAL), :2].astype(np.float64)
        centre = oval.mean(axis=0)
        ring = np.round(centre + (oval - centre) * HAIR_RING).astype(int)
        ring[:, 0] = ring[:, 0].clip(0, shape[1] - 1)
        ring[:, 1] = ring[:, 1].clip(0, shape[0] - 1)
        return ring

    def colours(image: np.ndarray, ring: np.ndarray) -> np.ndarray:
        return image[ring[:, 1], ring[:, 0]].astype(np.float32)

    oval = source_points[list(lm.FACE_OVAL), 1]
    counted = oval < oval.mean()  # the forehead and temples: hair, where a face has any
    source_ring = ring_points(source_points, source.shape)
    if person is not None:
        xs, ys = source_ring[:, 0] - person_origin[0], source_ring[:, 1] - person_origin[1]
        inside = (xs >= 0) & (ys >= 0) & (xs < person.shape[1]) & (ys < person.shape[0])
        on_person = np.zeros(len(source_ring), bool)
        on_person[inside] = person[ys[inside], xs[inside]] > 0.5
        counted &= on_person
    if not counted.any():
        return float("nan")
    oval_x = source_points[list(lm.FACE_OVAL), 0]
    reach = int(round(HAIR_SHIFT * (oval_x.max() - oval_x.min())))
    frame_ring, wanted = ring_points(frame_points, frame.shape), colours(source, source_ring)
    differences = []
    for (x, y), colour in zip(frame_ring[counted], wanted[counted]):
        around = frame[max(0, y - reach):y + reach + 1, max(0, x - reach):x + reach + 1].astype(np.float32)
        differences.append(np.abs(around - colour).mean(axis=-1).min())
    return float(np.mean(differences))


def outline_directions(shape: tuple[int, int], outline: np.ndarray, width: float) -> tuple[np.ndarray, np.ndarray]:
    """The band `width` pixels wide along the closed polyline `outline`: ((H, W) bool band, (H, W, 2) unit
    tangent of the outline's nearest segment at each band pixel)."""
    band = np.zeros(shape[:2], np.uint8)
    tangent = np.zeros(shape[:2] + (2,), np.float32)
    thickness = max(1, int(round(width)))
    points = np.asarray(outline, np.float64)[:, :2]
    for start, end in zip(points, np.roll(points, -1, axis=0)):
        step = end - start
        length = float(np.hypot(*step))
        if length < 1e-6:
            continue
        segment = np.zeros(shape[:2], np.uint8)
        cv2.line(segment, tuple(np.round(start * 16).astype(int)), tuple(np.round(end * 16).astype(int)), 1, thickness,
                 cv2.LINE_8, shift=4)
        tangent[segment > 0] = step / length
        band |= segment
    return band > 0, tangent


def energy_along_outline(image: np.ndarray, outline: np.ndarray, width: float) -> float:
    """The luma's gradient energy running along `outline` (squared Sobel gradient projected on the outline's
    tangent), per pixel of a band `width` pixels wide on it (NaN where the band holds no pixel): a mean, so a
    turned face's shorter outline does not read smoother.

    A clean silhouette and hair strands lying along it have their gradients
    across the outline and add nothing; every riser of a stair-step edge,
    every side of a tooth of skin jutting into the hair and every speck adds
    gradient along it.
    """
    band, tangent = outline_directions(image.shape, outline, width)
    if not band.any():
        return float("nan")
    grey = luma(image)
    gx = cv2.Sobel(grey, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(grey, cv2.CV_32F, 0, 1, ksize=3)
    return float(((gx * tangent[..., 0] + gy * tangent[..., 1]) ** 2)[band].mean())


def outline_roughness(frame: np.ndarray, frame_outline: np.ndarray, source: np.ndarray, source_outline: np.ndarray,
                      width: float) -> float:
    """energy_along_outline on the frame's face outline / the same on the source's (1: as in the photo; NaN
    where the source's band is flat, under MIN_OUTLINE_ENERGY, or either band is empty).

    Energy, not its share of the band's: a frame whose skin edge sits a few
    pixels off the rig's outline (hair over a turned cheek) loses the strong
    edge across the band, and a share would rise with no new edge along it."""
    source_energy = energy_along_outline(source, source_outline, width)
    if not source_energy >= MIN_OUTLINE_ENERGY:  # (NaN too) a flat photo's outline has no roughness to compare
        return float("nan")
    return energy_along_outline(frame, frame_outline, width) / source_energy


def speck_mask(image: np.ndarray, levels: float = SPECK_LEVELS) -> np.ndarray:
    """(H, W) bool: pixels whose luma differs from each of their 8 neighbours by more than `levels`,
    all brighter or all darker (a lone dot, not an edge pixel)."""
    grey = luma(image)
    kernel = np.ones((3, 3), np.uint8)
    kernel[1, 1] = 0
    # The brightest and darkest neighbour, not counting the pixel itself.
    brightest = cv2.dilate(grey, kernel, borderType=cv2.BORDER_REPLICATE)
    darkest = cv2.erode(grey, kernel, borderType=cv2.BORDER_REPLICATE)
    return (grey - brightest > levels) | (darkest - grey > levels)


def new_specks(frame: np.ndarray, source: np.ndarray, where: np.ndarray | None = None) -> int:
    """Specks in `frame` beyond the number the source has (over the pixels `where`, default all)."""
    frame_specks, source_specks = speck_mask(frame), speck_mask(source)
    if where is not None:
        frame_specks, source_specks = frame_specks & where, source_specks & where
    return max(0, int(frame_specks.sum()) - int(source_specks.sum()))


def disc_mask(shape: tuple[int, int], centre: np.ndarray, radius: float) -> np.ndarray:
    """(H, W) bool: pixel centres within `radius` of `centre` (x, y)."""
    ys, xs = np.ogrid[:shape[0], :shape[1]]
    return (xs - centre[0]) ** 2 + (ys - centre[1]) ** 2 <= radius * radius


def polygon_mask(shape: tuple[int, int], polygon: np.ndarray) -> np.ndarray:
    """(H, W) bool: pixels inside `polygon` ((N, 2) pixels)."""
    mask = np.zeros(shape[:2], np.uint8)
    cv2.fillPoly(mask, [np.round(polygon[:, :2] * 16).astype(np.int32)], 1, cv2.LINE_8, shift=4)
    return mask > 0


def iris_disc_error(frame: np.ndarray, frame_opening: np.ndarray, frame_centre: np.ndarray,
                    source: np.ndarray, source_opening: np.ndarray, source_centre: np.ndarray, radius: float) -> float:
    """Mean absolute difference (levels) between the iris the frame shows at `frame_centre` and the source's
    iris disc at `source_centre` moved there, over the disc's pixels both eye openings leave visible.

    The inner 80 % of the radius is compared, so half a pixel of disagreement
    on where the iris rim lies does not count; a smeared or chevron-shaped
    iris (sclera streaks through it) does."""
    shift = np.asarray(source_centre, np.float64) - np.asarray(frame_centre, np.float64)
    inner = disc_mask(frame.shape, frame_centre, 0.8 * radius)
    visible = inner & polygon_mask(frame.shape, frame_opening)
    ys, xs = np.nonzero(visible)
    source_x, source_y = xs + shift[0], ys + shift[1]
    # Only pixels whose source counterpart is visible iris too (not under the source's lids).
    height, width = source.shape[:2]
    sx, sy = np.round(source_x).astype(int).clip(0, width - 1), np.round(source_y).astype(int).clip(0, height - 1)
    source_visible = polygon_mask(source.shape, source_opening)[sy, sx]
    if not source_visible.any():
        return 0.0
    map_x = source_x[source_visible].astype(np.float32)[None, :]
    map_y = source_y[source_visible].astype(np.float32)[None, :]
    moved_source = cv2.remap(source, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)[0]
    shown = frame[ys[source_visible], xs[source_visible]]
    return float(np.abs(shown.astype(np.float32) - moved_source.astype(np.float32)).mean())


def uncovered_white_excess(frame: np.ndarray, frame_opening: np.ndarray, frame_centre: np.ndarray,
                           source: np.ndarray, source_opening: np.ndarray, source_centre: np.ndarray,
                           radius: float) -> float:
    """How much brighter (levels) the white a gaze uncovers is than the whitest white the photo shows: the
    95th percentile of luma where the source's iris was and the frame's is not (inside the frame's eye
    opening), less the 98th of the source's eye outside its iris (from 0.9 of the tracked radius; most of it
    is lashes, lid rims and shadow, its brightest the white beside the iris). Above a few levels the
    uncovered white reads as a painted blot. NaN where either shows under MIN_EYE_PIXELS pixels (a tiny
    eye's few pixels say nothing)."""
    uncovered = (polygon_mask(frame.shape, frame_opening) & disc_mask(frame.shape, source_centre, radius)
                 & ~disc_mask(frame.shape, frame_centre, 1.2 * radius))
    white = polygon_mask(source.shape, source_opening) & ~disc_mask(source.shape, source_centre, 0.9 * radius)
    if uncovered.sum() < MIN_EYE_PIXELS or white.sum() < MIN_EYE_PIXELS:
        return float("nan")
    return float(np.percentile(luma(frame)[uncovered], 95) - np.percentile(luma(source)[white], 98))


def circle_fit(points: np.ndarray) -> tuple[np.ndarray, float, float]:
    """Least-squares circle through (N, 2) points (Kasa fit): (centre, radius, RMS radial residual)."""
    xy = np.asarray(points, np.float64)[:, :2]
    a = np.column_stack([2 * xy, np.ones(len(xy))])
    b = (xy ** 2).sum(axis=1)
    (cx, cy, c), *_ = np.linalg.lstsq(a, b, rcond=None)
    radius = float(np.sqrt(max(c + cx * cx + cy * cy, 0.0)))
    residual = float(np.sqrt(np.mean((np.linalg.norm(xy - (cx, cy), axis=1) - radius) ** 2)))
    return np.array([cx, cy]), radius, residual


def iris_roundness(ring: np.ndarray) -> float:
    """RMS distance of the iris ring points from their best circle, in radii (0: a perfect circle)."""
    _, radius, residual = circle_fit(ring)
    return residual / max(radius, 1e-6)


def travel_ratio(source_centre: np.ndarray, frame_centre: np.ndarray, target_centre: np.ndarray) -> float:
    """How far an iris moved, as a share of how far the rig asked it to move (1: all the way)."""
    asked = np.asarray(target_centre, np.float64)[:2] - np.asarray(source_centre, np.float64)[:2]
    moved = np.asarray(frame_centre, np.float64)[:2] - np.asarray(source_centre, np.float64)[:2]
    return float(moved @ asked / max(asked @ asked, 1e-9))



def lash_line_thickness(image: np.ndarray, upper_lid: np.ndarray, darker_by: float = 50.0) -> float:
    """How thick the dark line of a closed eye is, in eye widths: over the middle third of the lid line
    `upper_lid` ((N, 2) pixels, corner to corner), the median per column of the run of pixels darker than the
    surrounding skin (the box's brightest quarter) by more than `darker_by` levels that lies on the line (it
    holds the dark pixel nearest the line, within LASH_LINE_REACH eye widths of it or at least a pixel).

    Real closed lashes are a thin, soft line; a painted crescent as thick as
    a fifth of the eye reads as a drawn-on mark. Only the run on the line
    counts: a deep-set eye's socket shadow above the lid, lighter skin between,
    is the photo's, not a line drawn on the lids."""
    line = np.asarray(upper_lid, np.float64)[:, :2]
    width = float(np.linalg.norm(line[0] - line[-1]))
    height, image_width = image.shape[:2]
    x0, x1 = int(max(line[:, 0].min() + width / 3, 0)), int(min(np.ceil(line[:, 0].max() - width / 3), image_width))
    y0, y1 = int(max(line[:, 1].min() - width / 4, 0)), int(min(np.ceil(line[:, 1].max() + width / 4), height))
    if x1 <= x0 or y1 <= y0 or width <= 0:  # (a lid outside the picture: a negative end would wrap around)
        return 0.0
    grey = luma(image[y0:y1, x0:x1])
    dark = grey < np.percentile(grey, 75) - darker_by
    order = np.argsort(line[:, 0])
    line_rows = np.interp(x0 + np.arange(grey.shape[1]), line[order, 0], line[order, 1]) - y0
    rows = np.arange(grey.shape[0])
    runs = []
    for column, line_row in enumerate(line_rows):
        on_line = dark[:, column] & (np.abs(rows - line_row) <= max(LASH_LINE_REACH * width, 1.0))
        if not on_line.any():
            runs.append(0)
            continue
        # The dark pixel nearest the line (the darker of two as near): a darker shadow just within reach is
        # not the line.
        candidates = rows[on_line]
        seed = candidates[np.lexsort((grey[candidates, column], np.abs(candidates - line_row)))[0]]
        runs.append(next(stop - start for start, stop in runs_of(dark[:, column]) if start <= seed < stop))
    return float(np.median(runs)) / width


def share_inside(mask: np.ndarray, polygon: np.ndarray) -> float:
    """The mean of `mask` ((H, W), 0..1) over the pixels inside `polygon` ((N, 2) pixels); 0 if none."""
    inside = polygon_mask(mask.shape, polygon)
    return float(mask[inside].mean()) if inside.any() else 0.0


def seam_roughness(frame: np.ndarray, landmarks: np.ndarray) -> float:
    """How ragged the line where closed lips meet is: the mean luma step (levels) from one pixel to the
    next along it, on five lines from 2 px above the middle between the inner lips to 2 px below, between
    the inner corners (sampled bilinearly, so a smooth curve is smooth). Teeth and cavity left between
    sealed lips show as flecks and raise it; a lip line drawn across reads a few levels."""
    upper, lower = (landmarks[list(ids), :2] for ids in (lm.LIPS_UPPER_INNER, lm.LIPS_LOWER_INNER))
    left, right = sorted((upper[0, 0], upper[-1, 0]))
    columns = np.arange(int(np.ceil(left)) + 1, int(np.floor(right)), dtype=np.float32)
    if len(columns) < 2:
        return float("nan")

    def rows(points: np.ndarray) -> np.ndarray:
        order = np.argsort(points[:, 0])
        return np.interp(columns, points[order, 0], points[order, 1])

    middle = (rows(upper) + rows(lower)) / 2
    ys = (middle[None, :] + np.arange(-2, 3)[:, None]).astype(np.float32)
    xs = np.ascontiguousarray(np.broadcast_to(columns[None, :], ys.shape))
    along = cv2.remap(luma(frame).astype(np.float32), xs, ys, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return float(np.abs(np.diff(along, axis=1)).mean())


def in_region(box: tuple[int, int, int, int] | None, values: np.ndarray | None, shape: tuple[int, int]) -> np.ndarray:
    """(H, W) float32 over a head region of `shape`: `values` in `box` (x0, y0, x1, y1), 0 elsewhere. For the
    warp engine's moved person mask (WarpedFrame.person, over WarpedFrame.box; none when nothing moved)."""
    out = np.zeros(shape, np.float32)
    if box is not None:
        x0, y0, x1, y1 = box
        out[y0:y1, x0:x1] = values
    return out


def edge_left_behind(frame: np.ndarray, source: np.ndarray, plate: np.ndarray, person: np.ndarray,
                     moved_person: np.ndarray, face_width: float) -> int:
    """Pixels just outside the photo's person (`person` > 0.5, within EDGE_REACH face widths) that the moved
    person does not cover (`moved_person` < 0.01) and has moved away from (it is EDGE_LEFT pixels further
    from them than the photo's person is), where the frame still shows the photo (within 2 levels)
    and darker there than the background `plate` by more than EDGE_LEVELS (both smoothed by EDGE_SMOOTHING):
    the hair's edge left behind. From that count, the number the backdrop's own grain would make that dark
    is taken away: the share of such pixels on the backdrop further out (EDGE_BACKDROP times as far), applied
    to the band's pixels.
    All images are the same region: frame, source and plate RGB, the masks float 0..1."""
    outside = cv2.distanceTransform((person <= 0.5).astype(np.uint8), cv2.DIST_L2, 5)
    reach = EDGE_REACH * face_width
    kept = np.abs(frame.astype(np.int16) - source.astype(np.int16)).max(axis=2) <= 2
    # Left behind: the person moved away from it (beside an outline that stayed, or moved a pixel, the dark
    # pixels are the photo's own: s12's print grain, 2008_001322's leaves beside an ear).
    from_moved = cv2.distanceTransform((moved_person <= 0.5).astype(np.uint8), cv2.DIST_L2, 5)
    band = (outside > 0) & (outside < reach) & (moved_person < 0.01) & kept & (from_moved >= outside + EDGE_LEFT)
    # Both smoothed a little: a grainy photo's single dark grains are no edge.
    def smoothed(image: np.ndarray) -> np.ndarray:
        return cv2.GaussianBlur(luma(image), (0, 0), EDGE_SMOOTHING)

    dark = (smoothed(plate) - smoothed(frame)) > EDGE_LEVELS
    # A coarse-grained backdrop (an old print's) has blotches that dark anywhere: they are not an edge.
    backdrop = (outside >= EDGE_BACKDROP[0] * reach) & (outside < EDGE_BACKDROP[1] * reach) & kept
    grain = float(dark[backdrop].mean()) if backdrop.any() else 0.0
    return int(round(max(0.0, (band & dark).sum() - grain * band.sum())))


def triangles_around(engine, ids: Sequence[int]) -> np.ndarray:
    """(T, 3) the warp `engine`'s landmark triangles (indices into its control points, whose first are its
    `landmark_ids` in order) near the landmarks `ids`: within 0.3 of their extent around their box."""
    landmark_triangles = engine.triangles[(engine.triangles < len(engine.landmark_ids)).all(axis=1)]
    points = engine.source_work[[engine.landmark_position[i] for i in ids], :2]
    reach = 0.3 * np.ptp(points, axis=0).max()
    corners = engine.source_work[landmark_triangles, :2]
    around = ((corners > points.min(axis=0) - reach) & (corners < points.max(axis=0) + reach)).all(axis=(1, 2))
    return landmark_triangles[around]


def turned_over(still: np.ndarray, moved: np.ndarray, keeping: float = 0.0) -> np.ndarray:
    """(T,) bool: the triangles whose signed area `moved` (signed_areas) has the other sign than `still`,
    keeping at least `keeping` of its size (0: any turned over at all, such as a lid crossing another by a
    hair; FOLD_KEEPS: a fold, not lips squeezed flat where they meet)."""
    return (np.sign(moved) != np.sign(still)) & (np.abs(moved) >= keeping * np.abs(still))


def folded_around(engine, ids: Sequence[int], values: np.ndarray, keeping: float = 0.0) -> tuple[int, int]:
    """(How many of the warp `engine`'s landmark triangles near the landmarks `ids` (triangles_around) the frame
    of channel `values` turns over, keeping at least `keeping` of their area (turned_over); how many there are)."""
    triangles = triangles_around(engine, ids)
    still = signed_areas(engine.source_work, triangles)
    moved = signed_areas(engine.target_points(values)[2], triangles)
    return int(turned_over(still, moved, keeping).sum()), len(triangles)


def hidden_by_turn(engine, values: np.ndarray) -> np.ndarray:
    """(region h, region w) bool: the pixels of the warp `engine`'s head region, on its face (HIDDEN_INSET
    inside the landmarks' outline, whose own edge the silhouette figures read), that no pixel of the frame
    for channel `values` maps to through the exact mesh (every triangle's affine at full resolution,
    nearest on top): what the frame's folds hide. (The mesh's own map, not the engine's frame: this is what
    the frame must not show.)"""
    target = engine._work_to_region(engine.target_points(values)[2])
    affines, usable = triangle_affines(target, engine.source_region_points, engine.triangles)
    width, height = engine.region_size
    where_from = piecewise_affine_displacement(target, engine.triangles, affines, usable, (width, height),
                                               in_front=engine.face_triangles)
    where_from += np.dstack(np.meshgrid(np.arange(width), np.arange(height))).astype(np.float32)
    seen = np.zeros((height, width), np.uint8)
    seen[np.clip(np.rint(where_from[..., 1]).astype(int), 0, height - 1),
         np.clip(np.rint(where_from[..., 0]).astype(int), 0, width - 1)] = 1
    seen = cv2.dilate(seen, np.ones((3, 3), np.uint8))  # a pixel between two samples is not hidden
    return face_inside(engine, engine.subject.landmarks) & (seen == 0)


def face_inside(engine, landmarks: np.ndarray) -> np.ndarray:
    """(region h, region w) bool: the warp `engine`'s head region pixels HIDDEN_INSET inside the outline of
    `landmarks` ((478, 2+) photo pixels: the photo's, or where a frame put them)."""
    width, height = engine.region_size
    face = np.zeros((height, width), np.uint8)
    outline = cv2.convexHull((landmarks[:lm.MESH_POINTS, :2] - engine.region[:2]).astype(np.float32))
    cv2.fillConvexPoly(face, np.round(outline).astype(np.int32), 1)
    inset = max(1, round(HIDDEN_INSET * engine.subject.face_width))
    return cv2.erode(face, np.ones((2 * inset + 1,) * 2, np.uint8)) > 0


def shown_hidden(engine_type, subject, values: np.ndarray) -> tuple[int, int]:
    """(How many pixels of the frame for channel `values` show what that frame's folds hide, how many the
    folds hide): the hidden pixels (hidden_by_turn) painted MARKER in a copy of the photo, the frame
    rendered from it by a new `engine_type` (a warp engine class), and its marked pixels counted on the
    face (face_inside the frame's landmarks), less those of the frame from the photo itself."""
    engine = engine_type(subject)
    hidden = hidden_by_turn(engine, values)
    x0, y0, x1, y1 = engine.region
    image = subject.image.copy()
    image[y0:y1, x0:x1][hidden] = MARKER

    def marked(frame: np.ndarray) -> np.ndarray:
        frame = frame[y0:y1, x0:x1].astype(np.int16)
        return frame[..., 2] - np.maximum(frame[..., 0], frame[..., 1]) > MARKER_LEVELS

    plain = engine.render_with_fields(values, keep_fields=False)
    shown = (marked(engine_type(dataclasses.replace(subject, image=image)).render(values)) & ~marked(plain.frame)
             & face_inside(engine, plain.target_landmarks))
    return int(shown.sum()), int(hidden.sum())


def shown_beyond_outline(engine, values: np.ndarray) -> int:
    """How many pixels of the frame for channel `values`, BEYOND_INSET inside the face oval where the frame put
    it, show what lies beyond the photo's face oval (hair, backdrop): the photo painted MARKER past its oval,
    the warp `engine` rendering the frame onto that (it warps the pixels of the frame it renders onto), its
    marked pixels counted, less those of the frame from the photo itself (an eye or mouth painted blue)."""
    subject = engine.subject
    image = subject.image.copy()
    outside = np.ones(image.shape[:2], np.uint8)
    cv2.fillPoly(outside, [np.round(subject.landmarks[list(lm.FACE_OVAL), :2] * 16).astype(np.int32)], 0, cv2.LINE_8, 4)
    image[outside > 0] = MARKER

    def marked(frame: np.ndarray) -> np.ndarray:
        frame = frame.astype(np.int16)
        return frame[..., 2] - np.maximum(frame[..., 0], frame[..., 1]) > MARKER_LEVELS

    plain = engine.render_with_fields(values, keep_fields=False)
    already = marked(plain.frame)  # (read before the next frame: the engine may reuse its buffer)
    shown = marked(engine.render_with_fields(values, keep_fields=False, onto=image).frame) & ~already
    inside = np.zeros(image.shape[:2], np.uint8)
    oval = plain.target_landmarks[list(lm.FACE_OVAL), :2]
    cv2.fillPoly(inside, [np.round(oval * 16).astype(np.int32)], 1, cv2.LINE_8, 4)
    inset = max(1, round(BEYOND_INSET * subject.face_width))
    return int((shown & (cv2.erode(inside, np.ones((2 * inset + 1,) * 2, np.uint8)) > 0)).sum())


def rise_at(before: np.ndarray, after: np.ndarray, point: np.ndarray, side: int) -> float:
    """How far up the picture around `point` moved from `before` to `after` (RGB), in pixels: phase
    correlation of a Hann-windowed `side`-pixel patch, kept inside the picture. It reads what the engine
    drew, where MediaPipe Pose run again also reads its own jitter."""
    height, width = before.shape[:2]
    half = side // 2
    x = int(np.clip(round(float(point[0])), half, width - half))
    y = int(np.clip(round(float(point[1])), half, height - half))
    patches = [cv2.cvtColor(np.ascontiguousarray(image[y - half:y + half, x - half:x + half]),
                            cv2.COLOR_RGB2GRAY).astype(np.float64) for image in (before, after)]
    (_, shift_y), _ = cv2.phaseCorrelate(*patches, window=cv2.createHanningWindow((2 * half, 2 * half), cv2.CV_64F))
    return -shift_y
