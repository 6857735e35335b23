"""The eyeball behind a moving iris, for the warp engine's gaze (pure numpy/OpenCV, no I/O).

A gaze moves the photo's iris as a rigid disc (warp.py draws it); what it
uncovers is sclera the photo never showed. It is built once per eye:
- the hole reaches past the lid contour (the landmarks run on the rims) up
  to the lashes wherever the photo's iris shows there, so a moved iris
  leaves no crescent of itself behind;
- it is filled with a model: an eyeball shaded darker under the upper lid,
  toward the lower lid and toward the corners, in the colour of the sclera
  the photo shows beside the iris (bright pixels less coloured than the lid
  skin around them: not lid rims, lashes, skin or the caruncle; a warm light
  tints the white too), or the other eye's, or where
  neither shows any, of the eye's whitest, least coloured pixels pulled
  toward neutral;
- the model is corrected smoothly toward the pixels around the hole (their
  colour beside the iris, their brightness at the hole's edge; where neither
  eye shows sclera, their colour at the edge too), so the fill joins a
  shadowed corner without a seam;
- it is no brighter than the whitest white the eye shows;
- near the lower lid, where the photo flanks the hole with the lid's rim
  rather than white (the landmarks run below the rim), and under the upper
  lashes, the rim and lid beside the hole are carried across it instead;
- it takes the photo's tint (grey in a black-and-white photo) and grain.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from .. import landmarks as lm
from .palette import LUMA, Palette, saturation
from .warp_math import polygon_mask

IRIS_DISC = 1.1  # iris radii: the disc that moves, the dark limbal ring included
IRIS_FILL = 1.45  # iris radii: the sclera is filled in this far behind the iris (the tracked radius runs small)
IRIS_STILL = 0.1  # iris radii of gaze over which the drawn iris fades in (none: the warped eye as it is)
OPENING_MARGIN = 0.25  # iris radii: the lid landmarks run on the rims, inside the visible eye; it reaches this much further
LID_SHADOW = 0.35  # how much darker the sclera is right under the upper lid ...
LID_SHADOW_REACH = 0.25  # ... fading over this share of the eye's height
LOWER_SHADOW = 0.1  # darker toward the lower lid ...
LOWER_SHADOW_REACH = 0.15
CORNER_SHADOW = 0.15  # ... and toward the corners (at the corner, quadratic in between)
MAX_SCLERA_SATURATION = 0.12  # a sclera colour more coloured than this is pulled toward grey
SCLERA_SATURATION = 0.22  # a pixel beside the iris is read as sclera when less coloured than this ...
SKIN_SATURATION_SHARE = 0.5  # ... or than this share of the lid skin's colour (a warm light tints the white too) ...
SCLERA_BRIGHTNESS = 0.6  # ... and brighter than this share of the eye's brightest
SCLERA_RING = 0.6  # iris radii beyond the hole where the photo's own sclera is read ...
MIN_SCLERA_PIXELS = 8  # ... when it shows at least this many pixels of it
MIN_SCLERA_SIDE = 4  # a gaze slides the photo's own sclera over the iris's place if this much shows on the side it leaves
FILL_REACH = 0.5  # iris radii: how far the photo's own sclera around the hole carries into it ...
MIN_FILL_REACH = 1.5  # ... and at least this many pixels (a small eye's fill is all edge)
FLANK = 5  # columns beside a run of the hole whose typical pixel it is carried across from
RIM_REACH = 0.35  # iris radii above the lower lid's contour where the hole may show the lid's rim
FILL_RELAXATION = 60  # steps relaxing the fill toward its border's brightness (they reach about 8 px into it)
EDGE_WIDTH = 1.5  # pixels: the ring just outside the hole that the fill must join
LASH_OR_PUPIL = 0.3  # a pixel darker than this share of the eye's brightest is lash or pupil, not eye to join
SCLERA_GRAIN = 0.6  # the sclera is smoother than the skin: this share of the photo's grain


@dataclass
class Eyeball:
    """One eye of the source, for drawing its iris elsewhere: patches start at `origin` (region pixels)."""

    centre: np.ndarray  # (2,) iris centre, region pixels
    radius: float  # iris radius, pixels
    origin: tuple[int, int]
    sclera: np.ndarray  # (h, w, 3) uint8, the eye with its iris replaced by sclera
    iris: np.ndarray  # (h, w, 3) uint8, the eye with its iris completed under the lids
    opening: np.ndarray  # (h, w) float32, 1 where the eye shows (up to the lashes), 0 outside, anti-aliased
    sclera_colour: np.ndarray | None = None  # RGB of the sclera the photo shows beside the iris, if it shows enough
    sclera_beside: tuple[bool, bool] = (False, False)  # whether it shows sclera toward the first, the second corner
    whole: bool = True  # False: the photo's edge cuts the eye, whose iris cannot be drawn elsewhere


def build_eyeball(image: np.ndarray, centre: np.ndarray, radius: float, upper_lid: np.ndarray,
                  lower_lid: np.ndarray, palette: Palette, other_sclera: np.ndarray | None = None) -> Eyeball:
    """The eyeball of one eye of `image` (the head region): `centre` and `radius` of its iris, its lids
    ((N, 2) pixels each, corner to corner, the same two corners); the photo's `palette` (its tint, grain);
    `other_sclera`, the other eye's Eyeball.sclera_colour, for an eye that shows too little of its own."""
    opening = np.concatenate([upper_lid, lower_lid[::-1][1:-1]])
    pad = radius * IRIS_FILL + 2
    x0, y0 = np.floor(np.minimum(opening.min(axis=0), centre - pad)).astype(int) - 2
    x1, y1 = np.ceil(np.maximum(opening.max(axis=0), centre + pad)).astype(int) + 3
    whole = min(x0, y0) >= 0 and x1 <= image.shape[1] and y1 <= image.shape[0]
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, image.shape[1]), min(y1, image.shape[0])
    patch = np.ascontiguousarray(image[y0:y1, x0:x1])
    origin = np.array([x0, y0], np.float64)
    local_centre = centre - origin
    inside = polygon_mask(patch.shape[:2], [opening - origin]) > 0
    ys, xs = np.mgrid[:patch.shape[0], :patch.shape[1]]
    distance = np.hypot(xs - local_centre[0], ys - local_centre[1])
    pixels = patch.astype(np.float32)
    luma = pixels @ LUMA
    brightest = np.percentile(luma[inside], 95) if inside.any() else 255.0
    # The contour runs on the lid rims: the iris shows a little beyond it, up to the lashes. The opening a gaze
    # redraws reaches that far where the pixels look like iris rather than the lids beyond them, or a moved
    # iris leaves a crescent of itself behind, under the lashes.
    grown = grow_opening(inside.astype(np.float32), radius) > 0.5
    lids = (grow_opening(grown.astype(np.float32), radius) > 0.5) & ~grown
    iris_core = inside & (distance <= radius)
    visible = inside.copy()
    if iris_core.any() and lids.any():
        iris_colour, lid_colour = np.median(pixels[iris_core], axis=0), np.median(pixels[lids], axis=0)
        like_iris = np.linalg.norm(pixels - iris_colour, axis=-1) < np.linalg.norm(pixels - lid_colour, axis=-1)
        visible |= grown & (distance <= radius * IRIS_DISC) & like_iris
    # Shown: a pixel wider still, for the anti-aliased rim of the contour.
    shown = cv2.GaussianBlur(cv2.dilate(visible.astype(np.float32), np.ones((3, 3), np.uint8)), (0, 0), 0.7)
    iris_area = distance <= radius * IRIS_FILL
    sclera_samples = patch[inside & ~iris_area].reshape(-1, 3).astype(np.float32)
    iris_samples = patch[inside & iris_area].reshape(-1, 3).astype(np.float32)
    if len(sclera_samples) < 4 or len(iris_samples) < 4:
        return Eyeball(centre, radius, (x0, y0), patch, patch, shown, whole=whole)

    hole = iris_area & visible
    shade = sclera_shading(patch.shape[:2], upper_lid - origin, lower_lid - origin)
    colour = sclera_colour(sclera_samples)
    # The photo's own sclera beside the iris (in the hole's margin, too, where a large iris leaves most of
    # it; and up to the lashes: a small eye's landmarks run inside its white): only bright pixels, less
    # coloured than the lid skin, count, not lid rims, lashes, skin or the pink caruncle in the corners.
    # They set the model's colour and brightness.
    coloured = saturation(pixels)
    skin_saturation = float(np.median(coloured[lids])) if lids.any() else 0.0
    beside = (grown & (distance > radius * IRIS_DISC) & (distance < radius * (IRIS_FILL + SCLERA_RING))
              & (coloured < max(SCLERA_SATURATION, SKIN_SATURATION_SHARE * skin_saturation))
              & (luma > SCLERA_BRIGHTNESS * brightest))
    toward_second = ((xs - local_centre[0]) * (upper_lid[-1, 0] - upper_lid[0, 0])
                     + (ys - local_centre[1]) * (upper_lid[-1, 1] - upper_lid[0, 1])) > 0
    sides = tuple(bool((beside & toward).sum() >= MIN_SCLERA_SIDE) for toward in (~toward_second, toward_second))
    measured = None
    if beside.sum() >= MIN_SCLERA_PIXELS:
        colour = measured = np.median(pixels[beside] / np.maximum(shade[beside], 0.75)[:, None], axis=0)
    elif other_sclera is not None:
        colour = other_sclera  # the same light falls on both eyes: better than a guess from skin and lashes
    model = colour[None, None, :] * shade[..., None]
    # The fill follows the sclera the photo shows around the hole; the hole's own edge counts too (whatever its
    # colour, bar lashes), so a shadowed corner joins without a seam.
    edge = (visible & ~hole & (distance < radius * IRIS_FILL + EDGE_WIDTH)
            & (luma > LASH_OR_PUPIL * brightest))
    if measured is None and other_sclera is None:
        # Neither eye shows sclera (a small or squinting eye): the guessed white is no better than what
        # surrounds the hole, whose colour it takes too (a neutral grey read as a blue-white blot on a tiny,
        # warm-lit eye: bald_guys' faces at 768 px).
        beside, edge = beside | edge, np.zeros_like(edge)
    fill = fill_hole(pixels, hole, beside, edge & ~beside, model, reach=max(FILL_REACH * radius, MIN_FILL_REACH))
    # No brighter than the whitest white the eye shows (or, showing none, the brightest of the eye beside its
    # iris): the shading's bright middle, scaled from a corner's shadowed white, drew a large iris's uncovered
    # white as a cream blot (d9: 230 where the photo's white reads 185 at most), and the other eye's white
    # lit a shadowed eye's (d19: 30 levels above anything that eye shows).
    own = luma[beside] if measured is not None else luma[inside & ~iris_core]
    whitest = np.percentile(own, 90 if measured is not None else 95) if len(own) else None
    if whitest is not None:
        fill[hole] = no_brighter(fill[hole], whitest)
    grain = np.random.default_rng(0).normal(0.0, SCLERA_GRAIN * palette.grain, patch.shape[:2])[..., None]
    fill = np.clip(palette.paint(fill) + grain, 0, 255).astype(np.uint8)
    # A soft edge: a hard one would show as a staircase where the eye is warped larger.
    soft_hole = cv2.GaussianBlur(hole.astype(np.float32), (0, 0), 0.7)[..., None]
    soft_hole[hole] = 1.0
    sclera = (patch + soft_hole * (fill.astype(np.float32) - patch) + 0.5).astype(np.uint8)
    # Past the contour, under the lashes, what the iris leaves is the lid's shadow: there the lid beside the
    # hole is carried across it, not painted as open sclera up to the lashes.
    # Near the lower lid, a row of the hole that the photo flanks with the lid's rim, not white (its landmarks
    # run below the rim), shows that rim carried across the hole, not the filled white: painted down over
    # the rim, the white was a blot with a hard edge under a gaze (d9, d19).
    flanked_by_white = carried_across(beside.astype(np.float32)[..., None], hole)[..., 0]
    lower_rim = _rows_along(lower_lid - origin, np.arange(patch.shape[1]))[None, :] - RIM_REACH * radius
    near_rim = np.clip((ys - lower_rim) / (0.5 * RIM_REACH * radius) + 1.0, 0.0, 1.0)
    rim_weight = ((1.0 - flanked_by_white) * near_rim * hole)[..., None]
    across = carried_across(pixels, hole)
    sclera = (sclera + rim_weight * (across - sclera) + 0.5).astype(np.uint8)
    if whitest is not None:
        # Inside the opening the rim carried across is no brighter than the white either: a squinting eye's
        # hole is nearly all rim, and its lid skin, carried across, drew a grey blot beside the moved iris,
        # brighter than anything the eye shows (bald_guys #8 at the photo's own size: 14 levels).
        shown_hole = hole & inside
        sclera[shown_hole] = (no_brighter(sclera[shown_hole].astype(np.float32), whitest) + 0.5).astype(np.uint8)
    under_lashes = hole & ~inside
    sclera[under_lashes] = (across[under_lashes] + 0.5).astype(np.uint8)
    # The iris's hidden top and bottom (under the lids): the visible iris, inpainted across.
    visible_iris = np.where((visible & iris_area)[..., None], patch, np.median(iris_samples, axis=0).astype(np.uint8))
    iris_texture = cv2.inpaint(visible_iris, (iris_area & ~visible).astype(np.uint8), max(2.0, radius / 3),
                               cv2.INPAINT_TELEA)
    # Plain ints: under numpy 2 an int64 scalar would turn the float32 maps built from it float64, which
    # OpenCV 5's remap refuses.
    return Eyeball(centre, radius, (int(x0), int(y0)), sclera, iris_texture, shown, measured, sides, whole)


def lash_colours(image: np.ndarray, landmarks: np.ndarray) -> dict[str, np.ndarray]:
    """The lash line's colour per eye of the face with `landmarks` in `image`: the darkest fifth (by luma) of
    the pixels along the upper lid. (The lid landmarks' own pixels, on a small eye, fall on the white or the
    iris as often as on the lashes, and gave a blue-grey line.)"""
    colours = {}
    for side, ids in (("left", lm.LEFT_EYE_UPPER), ("right", lm.RIGHT_EYE_UPPER)):
        lid = landmarks[list(ids), :2].astype(np.float64)
        eye_width = float(np.linalg.norm(lid[0] - lid[-1]))
        (x0, y0), (x1, y1) = np.floor(lid.min(axis=0)).astype(int) - 3, np.ceil(lid.max(axis=0)).astype(int) + 4
        x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, image.shape[1]), min(y1, image.shape[0])
        band = np.zeros((max(y1 - y0, 1), max(x1 - x0, 1)), np.uint8)
        cv2.polylines(band, [np.round((lid - (x0, y0)) * 16).astype(np.int32)], False, 1,
                      max(1, round(eye_width / 10)), cv2.LINE_8, shift=4)
        samples = image[y0:y1, x0:x1][band[:y1 - y0, :x1 - x0] > 0].astype(np.float32)
        if len(samples) == 0:
            colours[side] = np.zeros(3, np.float32)
            continue
        luma = samples @ LUMA
        colours[side] = np.median(samples[luma <= np.percentile(luma, 20)], axis=0)
    return colours


def no_brighter(colours: np.ndarray, whitest: float) -> np.ndarray:
    """(N, 3) float32 `colours` scaled down, each as far as its luma is over `whitest`."""
    return colours * np.minimum(1.0, whitest / np.maximum(colours @ LUMA, 1.0))[:, None]


def carried_across(values: np.ndarray, hole: np.ndarray) -> np.ndarray:
    """(H, W, C) float32 `values` with each run of `hole` pixels along a row interpolated linearly between
    what flanks it on each side (flank_of); a run reaching the patch's edge takes its one flank."""
    carried = values.astype(np.float32)
    known = ~hole
    for row in np.flatnonzero(hole.any(axis=1) & ~hole.all(axis=1)):
        edges = np.flatnonzero(np.diff(np.concatenate([[0], hole[row].astype(np.int8), [0]])))
        for start, end in zip(edges[::2], edges[1::2]):
            left = flank_of(values, known, row, max(start - FLANK, 0), start)
            right = flank_of(values, known, row, end, min(end + FLANK, values.shape[1]))
            left, right = (right, right) if left is None else (left, left) if right is None else (left, right)
            if left is None:
                continue
            share = ((np.arange(start, end) - start + 1) / (end - start + 1))[:, None]
            carried[row, start:end] = left + share * (right - left)
    return carried


def flank_of(values: np.ndarray, known: np.ndarray, row: int, start: int, end: int) -> np.ndarray | None:
    """The most typical of the known pixels in columns start:end of `row` and the rows beside it (the one
    nearest all the others), so a fleck or a glint beside the hole is not drawn across it as a streak."""
    block = values[max(row - 1, 0):row + 2, start:end][known[max(row - 1, 0):row + 2, start:end]].astype(np.float32)
    if len(block) == 0:
        return None
    return block[np.abs(block[:, None, :] - block[None, :, :]).sum(axis=(1, 2)).argmin()]


def eyeball_turn(size: tuple[int, int], corners: np.ndarray, centre: np.ndarray, gaze: np.ndarray,
                 sclera_beside: tuple[bool, bool]) -> np.ndarray:
    """(h, w, 2) float32: what to add, per pixel of a (w, h) patch, to where the eye's sclera is read from,
    so that the eyeball turns with the gaze instead of showing a painted hole.

    `corners`: the eye's two corners and `centre`: where the iris is drawn (patch pixels); `gaze`: where the
    eyeball point under that centre comes from, minus the photo's iris centre (photo pixels). Along the eye's
    axis the eyeball's surface slides with the iris: the shift is the gaze's part along that axis, whole at
    the iris and none at the corners (linear in between), so the photo's own sclera, with its shading, lid
    shadow and grain, is stretched on the side the iris leaves and pressed on the side it moves to. Across the axis nothing
    slides: above and below the iris the photo shows lids, not sclera, and the filled eyeball stands. Nor
    does anything slide when the side the iris leaves shows no sclera in the photo (`sclera_beside`, toward
    the first and the second corner; Eyeball.sclera_beside): a corner in deep shadow, stretched, reads as
    iris left behind (to people and face trackers), and the filled eyeball is drawn instead."""
    width, height = size
    start, end = np.asarray(corners, np.float64)
    length = max(float(np.linalg.norm(end - start)), 2.0)
    axis = (end - start) / length
    gaze_along = float(np.asarray(gaze, np.float64) @ axis)
    if not sclera_beside[0 if gaze_along > 0 else 1]:  # the side the iris leaves
        return np.zeros((height, width, 2), np.float32)
    at_iris = float(np.clip((np.asarray(centre, np.float64) - start) @ axis, 1.0, length - 1.0))
    xs, ys = np.meshgrid(np.arange(width, dtype=np.float64), np.arange(height, dtype=np.float64))
    along = (xs - start[0]) * axis[0] + (ys - start[1]) * axis[1]
    share = np.clip(np.minimum(along / at_iris, (length - along) / (length - at_iris)), 0.0, 1.0)
    slide = -gaze_along * share
    return np.dstack([slide * axis[0], slide * axis[1]]).astype(np.float32)


def grow_opening(mask: np.ndarray, radius: float) -> np.ndarray:
    """An eye opening's (H, W) float32 mask grown by OPENING_MARGIN of an iris `radius` (pixels)."""
    reach = int(round(OPENING_MARGIN * radius))
    if reach < 1:  # a small eye's iris shows no pixel past its contour
        return mask
    return cv2.dilate(mask, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * reach + 1, 2 * reach + 1)))


def fill_hole(pixels: np.ndarray, hole: np.ndarray, beside: np.ndarray, edge: np.ndarray, model: np.ndarray,
              reach: float) -> np.ndarray:
    """The `hole` of `pixels` ((H, W, 3) float32) filled with `model` ((H, W, 3), the shaded eyeball),
    corrected toward the pixels the photo shows around it: their ratio to the model, spread smoothly over
    the hole (a normalised Gaussian of `reach` pixels), fading back to the model where none is near, then
    relaxed so that it meets them without a step.
    Sclera `beside` the hole sets colour and brightness; the hole's own `edge` (lid shadow, a shadowed
    corner, the caruncle) only brightness, so a pink corner darkens the fill toward it without tinting it."""
    shown = np.clip(pixels / np.maximum(model, 1.0), 0.4, 2.5)
    ratio = np.zeros_like(pixels)
    ratio[edge] = (shown[edge] @ LUMA)[:, None]
    ratio[beside] = shown[beside]
    weight = (beside | edge).astype(np.float32)
    spread_ratio = cv2.GaussianBlur(ratio * weight[..., None], (0, 0), reach)
    spread_weight = cv2.GaussianBlur(weight, (0, 0), reach)[..., None]
    # Where hardly any shown pixel is near, the model stands. "Near": at least half the weight that a
    # straight line of shown pixels has on itself.
    confidence = np.clip(spread_weight / (0.5 / (2 * np.pi * reach**2) ** 0.5), 0.0, 1.0)
    spread = np.where(spread_weight > 1e-6, spread_ratio / np.maximum(spread_weight, 1e-6), 1.0)
    estimate = 1.0 + confidence * (spread - 1.0)
    known = (beside | edge) & ~hole
    # Relaxed toward the ratio the hole's own border shows (each pixel the mean of its neighbours in the
    # hole or on its border): the Gaussian's average, next to a border brighter or darker than it, left
    # a seam that a gaze showed as the filled white's hard edge.
    estimate[known] = ratio[known]
    taking = (hole | known).astype(np.float32)
    cross = np.array([[0, 1, 0], [1, 0, 1], [0, 1, 0]], np.float32)
    count = cv2.filter2D(taking, -1, cross, borderType=cv2.BORDER_CONSTANT)
    relaxed = (hole & (count > 0))[..., None]  # (a hole pixel walled in by lashes alone keeps its estimate)
    count = np.maximum(count, 1.0)[..., None]
    for _ in range(FILL_RELAXATION):
        mean = cv2.filter2D(estimate * taking[..., None], -1, cross, borderType=cv2.BORDER_CONSTANT) / count
        estimate = np.where(relaxed, mean, estimate)
    return np.where(hole[..., None], model * estimate, pixels)


def sclera_colour(samples: np.ndarray) -> np.ndarray:
    """The sclera's RGB from pixels of the eye beside the iris ((N, 3) float32).

    The eye contour is loose: lid rims, lashes and the caruncle lie inside
    it. The sclera is the whitest part of what remains: bright (not lashes or
    shadow) and little coloured (not skin, orange to pink); specular glints
    (the brightest few) are left out. A colour still far from neutral (little
    sclera visible, mostly skin chosen) is pulled toward its own grey.
    """
    chroma = samples.max(axis=1) - samples.min(axis=1)
    whiteness = samples @ LUMA - 1.5 * chroma
    low, high = np.percentile(whiteness, [85, 98])
    chosen = samples[(whiteness >= low) & (whiteness <= high)]
    colour = np.median(chosen if len(chosen) else samples, axis=0)
    grey = float(colour @ LUMA)
    coloured = float(saturation(colour))
    if coloured > MAX_SCLERA_SATURATION:
        colour = grey + (colour - grey) * (MAX_SCLERA_SATURATION / coloured)
    return colour.astype(np.float32)


def sclera_shading(shape: tuple[int, int], upper_lid: np.ndarray, lower_lid: np.ndarray) -> np.ndarray:
    """(H, W) float32 brightness factor of an eyeball seen between these lids (patch pixels): the upper
    lid's shadow, a little toward the lower lid, and the eyeball turning away toward the corners."""
    height, width = shape
    columns = np.arange(width, dtype=np.float32)
    rows = np.arange(height, dtype=np.float32)[:, None]
    top = _rows_along(upper_lid, columns)
    bottom = _rows_along(lower_lid, columns)
    eye_height = max(float((bottom - top).max()), 1.0)
    below_top = np.clip(rows - top[None, :], 0.0, None) / eye_height
    above_bottom = np.clip(bottom[None, :] - rows, 0.0, None) / eye_height
    left, right = float(min(upper_lid[0, 0], upper_lid[-1, 0])), float(max(upper_lid[0, 0], upper_lid[-1, 0]))
    across = np.clip((columns - (left + right) / 2) / max((right - left) / 2, 1.0), -1.0, 1.0)[None, :]
    shade = (1.0 - LID_SHADOW * np.exp(-below_top / LID_SHADOW_REACH)
             - LOWER_SHADOW * np.exp(-above_bottom / LOWER_SHADOW_REACH) - CORNER_SHADOW * across**2)
    return np.clip(shade, 0.4, 1.0).astype(np.float32)


def _rows_along(curve: np.ndarray, columns: np.ndarray) -> np.ndarray:
    """The row a lid `curve` ((N, 2) x, y points, either way along) passes at each of `columns`."""
    order = np.argsort(curve[:, 0])
    return np.interp(columns, curve[order, 0], curve[order, 1])
