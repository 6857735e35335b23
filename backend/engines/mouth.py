"""The mouth interior for the warp engine (pure numpy/OpenCV, no I/O).

What a photo's mouth shows decides how its interior moves:
- closed, or showing teeth: the interior splits in two where it shows no
  teeth (`interior_split`: below a smile's upper teeth, which stay with the
  upper lip; above lower teeth, which go with the jaw; halfway in a mouth
  that shows none), and the gap that opens between the halves is painted as
  a cavity (`paint_cavity`): a dark throat, the tongue's back and, where the
  photo showed no teeth, a row of upper teeth;
- wide open with few teeth showing (tongue and throat): the interior
  stretches with the lips, since a painted band would cut the tongue in two
  (`interior_stretches`), and teeth, where they show, would smear if stretched.
Either way the interior folds away behind lips that close over it, and where
lips the rig closes meet, their meeting line is repainted (`seal_lips`): the
rims of a photo's open lips hold a pixel or two of teeth and cavity, which
would show as a pale, ragged seam with dark flecks at the corners.
"""
from __future__ import annotations

import cv2
import numpy as np

from .. import landmarks as lm
from ..arrays import runs_of
from .palette import LUMA, Palette, saturation
from .warp_math import polygon_mask, sample_at, smooth_curve

CLOSED_MOUTH = 0.12  # photo's mouth openness below which the painted cavity gets painted teeth
WIDE_OPEN_MOUTH = 0.3  # photo's mouth openness from which its own interior stretches instead of splitting ...
TEETH_SHARE = 0.25  # ... unless at least this share of the opening is teeth (they move with the lips, not stretch)
TEETH_BRIGHTNESS = 0.75  # a photo's teeth are brighter than this share of its skin's luma ...
TEETH_SATURATION = 0.3  # ... and less coloured than this (palette.saturation)
INTERIOR_ROWS = (0.25, 0.5, 0.75)  # rows of a stretching interior's points, from the upper lip (0) to the lower (1)
SPLIT_SAMPLES = 24  # samples from the upper lip to the lower where a splitting interior is read (interior_split)
UPPER_TEETH_REACH = 0.35  # teeth that start this near the upper lip (share of the gap) are upper teeth ...
UPPER_TEETH_HEIGHT = 0.17  # ... and show at most this tall (mouth widths; smiles on the evaluation photos: 0.07-0.15)
BITE_FROM = 0.07  # a taller run holds lower teeth too: the bite is looked for this far (mouth widths) inside it
# The painted cavity and tongue, in the lips' own colour (the photo's lower lip), as real open mouths show
# them, read on the training clips (1,163 frames of 45 people with the lips over 0.2 mouth widths apart; the
# interior against the lower lip's median colour, median by person): in a wide opening the cavity below the
# upper teeth is 0.4-0.6 of the lips' brightness in the middle and about 0.6 of that toward the corners; the
# lowest third, tongue and lower teeth, reads 0.73-0.96 of the lips' brightness (the tongue is set toward
# the low end of that: the lower teeth, where they show, lift the reading). Read again across the middle of
# the opening (a fifth to four fifths of the way down, teeth left out; 1,759 frames of 49 people), the
# interior is 0.53 of the lips' brightness at lips 0.06-0.12 mouth widths apart, 0.72 at 0.12-0.3 and
# 0.58-0.64 wider, where the painted one read 0.24-0.46 (s12): brighter, and the tongue shows from smaller
# openings and fills more of them (the open-mouth L1 on the evaluation clips 0.0684 -> 0.0669).
CAVITY_LIGHT = 0.55  # the cavity's brightness just below the upper edge, in the lips' ...
CAVITY_DEEP = 0.4  # ... and where it is deepest ...
CAVITY_SIDES = 0.25  # ... and this much darker toward the corners (in the cheeks' shadow)
# Real mouths are redder where they are darkest: on the training clips' open mouths (1,435 frames of 50 people,
# lips over 0.12 mouth widths apart, teeth left out) the interior's median has the lips' red over green (1.005
# of it, median by person) but its darkest 30 % has 1.30 of it (quartiles 1.08-1.76); the painted cavity, the
# lips' colour darkened, had 1.01-1.02 there and read as a grey-brown slot. Its deepest point is this much
# redder, the rest less as it is lighter: its darkest 30 % reads 1.19-1.26 (the astronaut, s12, d8 opened).
CAVITY_DEEP_REDDENING = 1.45
TEETH = np.array([225.0, 218.0, 205.0]) * 0.85  # painted teeth where the photo shows no sclera to light them by
# Painted teeth take the photo's light from its sclera, the other white in a face: real upper teeth are 0.96
# times as bright as the sclera (the mean of the eyes' `eyes.Eyeball.sclera_colour` where measured; teeth: the
# median of an open mouth's bright, little-coloured pixels), median of the training clips' people (665
# open-mouth frames of 28 people; quartiles 0.87-1.12, Black speakers 0.88 and 1.04), where against the lips,
# whose brightness goes with skin tone, they are 1.02-1.64 (2.7 and 3.0 for those two).
# Since 6 December 2026 the 0.96 is taken of the brighter eye's sclera, not the mean: where one eye is in shadow
# (behind glasses, lit from one side) the teeth are lit as the other is. Read again with `teeth_pixels` as the
# teeth (616 frames of 29 people, scleras measured on 23), teeth are 1.04 of the brighter sclera and 1.37 of
# the mean on the 10 frames (5 people) whose scleras differ by over 1.5 times; over all frames the brighter
# predicts them a little better (spread of the log ratio 0.226 against 0.235) at a ratio 1 % under the mean's.
# d8 (its eyes 55 and 144) was painted a grey grille 95 levels bright under lips of 115.
TEETH_OVER_SCLERA = 0.96
TEETH_LUMA_RANGE = (68.0, 241.0)  # real teeth's brightness over those people (a sclera misread stays within it)
TEETH_OVER_LIPS_AT_LEAST = 1.0  # nor darker than the lips (those 29 people: lowest 0.98, 1 % of the frames under 1)
# Painted teeth (a photo whose mouth was closed has none to move), in mouth widths unless said:
TEETH_HEIGHT = 0.11  # the front teeth's height below the upper lip
TEETH_REACH = 0.8  # share of the opening's half width the row reaches toward the corners
TEETH_FALLOFF = 0.5  # how much darker the row gets toward the corners, where it turns into the mouth
LIP_SHADOW = 0.3  # the lip's shadow on the end of the teeth nearest it ...
LIP_SHADOW_REACH = 0.3  # ... fading over this share of the teeth's height
TOOTH_WIDTHS = (0.15, 0.11, 0.085, 0.07, 0.06)  # central incisor, lateral, canine, premolars, from the middle out
LOWER_TEETH_HEIGHT = 0.045  # the lower front teeth's height above the lower lip ...
LOWER_TOOTH_WIDTHS = (0.11, 0.1, 0.085, 0.07, 0.06)
LOWER_TEETH_SHADE = 0.7  # ... in shadow
TOOTH_EDGE = 0.12  # a tooth's corners are this share of its height shorter than its middle
TOOTH_GAP = 0.3  # the line between two teeth is this much darker ...
MIN_TOOTH_PIXELS = 5.0  # ... on teeth at least this wide (below, the lines would be a blur across the row)
TONGUE_WIDTH = 0.9  # share of the lower edge's half width the tongue spans
TONGUE_HEIGHT = 0.55  # share of the opening's height the tongue rises from the lower edge ...
TONGUE_FROM = 0.08  # ... once the mouth is open this much (the gap over the mouth's width), fully by twice that
TONGUE_LIGHT = 0.8  # the tongue's top in the lips' colour and brightness ...
TONGUE_SIDES = 0.4  # ... darker toward its sides ...
TONGUE_BELOW = 0.25  # ... and down toward the lower teeth
# Lips the rig closes over a photo's open mouth (gaps in mouth widths):
SEAL_FROM = 0.06  # an inner-lip gap below this starts to count as lips meeting ...
SEAL_FULL = 0.02  # ... fully met below this
SEAL_CLOSING = 0.03  # ... repainted in full once the gap is this much smaller than the photo's
SEAL_MARGIN = 0.02  # either side of the meeting line, the band repainted from the lips above and below it
SEAL_SMOOTHING = 0.02  # the lip colours above and below the band, smoothed along it (the rims are speckled)
SEAL_LINE_DARKNESS = 0.35  # where the lips meet, a soft line of the lower lip's colour, its brightest channel this
SEAL_LINE_WIDTH = 0.012  # much darker (as in photos of closed lips) ... this wide (sigma; at least 0.6 px) ...
SEAL_SHADE = 0.4  # ... in a wider shade, weighted this much ...
SEAL_SHADE_WIDTH = 3.0  # ... and this many times as wide (it fades out before the band's edges)
SEAL_END_FADE = 0.1  # mouth widths: the band fades out over this much toward each of the mouth's corners
# The lips' own edges in a photo of an open mouth (lip_edge_offsets):
LIP_EDGE_MIN_GAP = 3.0  # pixels: lips closer than this (where they are) show no inside to tell their edge from
LIP_EDGE_CONTRAST = 30.0  # RGB levels: a contour on a colour this near the lip's (a tongue on the lip) has no edge to find
LIP_EDGE_SEARCH = 0.6  # the edge is looked for this share of the lip's thickness out from the inner contour
LIP_EDGE_OWN = 1.5  # pixels: an edge found this near the contour is the contour's own (blurred over a pixel or two)
LIP_EDGE_LEVEL = 0.5  # the lip starts where the colour is this share (or less) of the contour's colour's distance from it


def interior_stretches(image: np.ndarray, landmarks: np.ndarray) -> bool:
    """Whether the photo's mouth is wide open with few teeth showing (its interior stretches)."""
    if lm.mouth_openness(landmarks) < WIDE_OPEN_MOUTH:
        return False
    return teeth_share(image, landmarks[list(lm.inner_lip_polygon()), :2], skin_colour(image, landmarks)) < TEETH_SHARE


def skin_colour(image: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """(3,) float32: the photo's skin, the median of its mid-cheek points."""
    cheeks = np.round(landmarks[list(lm.CHEEKS), :2]).astype(int)
    cheeks = np.clip(cheeks, 0, (image.shape[1] - 1, image.shape[0] - 1))
    return np.median(image[cheeks[:, 1], cheeks[:, 0]].astype(np.float32), axis=0)


def teeth_pixels(pixels: np.ndarray, skin: np.ndarray) -> np.ndarray:
    """Which RGB pixels ((..., 3) -> (...) bool) look like teeth: bright (over TEETH_BRIGHTNESS of the skin's
    luma, `skin` an RGB colour) and nearly uncoloured."""
    pixels = np.asarray(pixels, np.float32)
    return ((pixels @ LUMA > TEETH_BRIGHTNESS * float(np.asarray(skin, np.float32) @ LUMA))
            & (saturation(pixels) < TEETH_SATURATION))


def lip_edge_offsets(image: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """(N, 2) pixels that move the lips' inner contours of an open mouth out to the photo's own lip edges,
    and the rings between each inner contour and its outer one in proportion (so none cross); 0 elsewhere.

    On an open mouth MediaPipe's inner contour may run a few pixels inside the lip's edge (across d19's lower
    teeth, 5 px up from the lip). The warp engine's lip band then held those pixels, and lips the rig closed
    carried them over the folding interior: a grey fringe under the closing mouth. Along each inner point's
    line to its outer point, the edge is where the colour comes nearer the lip's own (its median, half to four
    fifths of the way out) than halfway from the colour under the contour. Offsets only go outward: a contour
    on the lip already (or on a tongue like it) finds no edge, nor does one within a pixel or two of it, and
    the edges found are smoothed along the contour (a point between two that found one moves with them).
    Lips that touch in the middle have no inside to tell their edges from: no offsets.
    """
    points = landmarks[:, :2].astype(np.float64)
    offsets = np.zeros_like(points)
    if lm.signed_lip_gap(landmarks) <= 0.0:
        return offsets
    lips = points[list(lm.LIPS_UPPER_OUTER + lm.LIPS_LOWER_OUTER)]
    height, width = image.shape[:2]
    x0, y0 = np.clip(np.floor(lips.min(axis=0)).astype(int) - 2, 0, (width, height))
    x1, y1 = np.clip(np.ceil(lips.max(axis=0)).astype(int) + 3, 0, (width, height))
    if x1 - x0 < 4 or y1 - y0 < 4:  # (lips outside the photo)
        return offsets
    patch = image[y0:y1, x0:x1]
    patch = cv2.GaussianBlur(patch.astype(np.float32), (0, 0), 0.8)  # one pixel's noise or grain is no edge

    def colours(at: np.ndarray) -> np.ndarray:
        xy = (at - (x0, y0)).astype(np.float32).reshape(-1, 1, 2)
        sampled = cv2.remap(patch, xy[..., 0], xy[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        return sampled.reshape(*at.shape[:-1], 3)

    gaps = np.linalg.norm(points[list(lm.LIPS_LOWER_INNER)] - points[list(lm.LIPS_UPPER_INNER)], axis=1)
    for rings in (lm.LIPS_UPPER_RINGS, lm.LIPS_LOWER_RINGS):
        outer, inner = points[list(rings[0])], points[list(rings[-1])]
        across = outer - inner
        thickness = np.linalg.norm(across, axis=1) + 1e-9
        outward = across / thickness[:, None]
        body = inner[1:-1, None] + np.linspace(0.5, 0.8, 4)[None, :, None] * across[1:-1, None]
        lip = np.median(colours(body).reshape(-1, 3), axis=0)
        edge = np.zeros(len(inner))
        for i in range(1, len(inner) - 1):  # (the corners, where the lips meet, stay)
            if gaps[i] < LIP_EDGE_MIN_GAP:
                continue
            steps = np.arange(0.0, LIP_EDGE_SEARCH * thickness[i], 0.5)
            distance = np.linalg.norm(colours(inner[i] + steps[:, None] * outward[i]) - lip, axis=1)
            if distance[0] < LIP_EDGE_CONTRAST:  # the contour lies on the lip already, or on a tongue like it
                continue
            level = LIP_EDGE_LEVEL * distance[0]  # nearer the lip than this, nearer it than the teeth or cavity there
            lip_like = distance < level
            entered = np.flatnonzero(lip_like[:-1] & lip_like[1:])  # two samples running: a speck is no lip
            if len(entered):  # (no lip within reach: nothing is sure)
                k = entered[0]  # the edge lies where the distance crossed the level, between this sample and the last
                found = steps[k] - 0.5 * (level - distance[k]) / max(distance[k - 1] - distance[k], 1e-6)
                edge[i] = found if found > LIP_EDGE_OWN else 0.0
        # An edge one point alone found is not sure (a tongue on the lip, a highlight): each takes its own and
        # its neighbours' median, so the contour moves in runs, never in a zigzag.
        edge = np.median(np.stack([np.roll(edge, 1), edge, np.roll(edge, -1)]), axis=0)
        for ring in rings[1:]:
            ring_points = points[list(ring)]
            share = np.clip(np.einsum("ij,ij->i", outer - ring_points, across) / thickness**2, 0.0, 1.0)
            offsets[list(ring)] = (share * edge)[:, None] * outward
    return offsets


def interior_split(image: np.ndarray, landmarks: np.ndarray, margin: float) -> np.ndarray:
    """Where a photo's open mouth splits into the half that follows the upper lip and the half that follows the
    jaw: per column of the inner lips (LIPS_UPPER_INNER[1:-1] against LIPS_LOWER_INNER[1:-1]), a fraction of
    the way from the upper lip (0) to the lower (1).

    Upper teeth belong to the skull and lower teeth to the jaw, so the split goes where the upper teeth end
    (at the lower lip where they reach it), along the bite where lower teeth meet them, or above lower teeth
    that show alone. Halfway, as before, cut the teeth of a smile in two: talking opened a dark slot through
    the middle of the astronaut's upper teeth, a sliver of them left under the upper lip and the rest carried
    down by the lower one. Each column is read along the line between its two lip points (`teeth_pixels`).
    Columns that show no teeth take the nearest column's split; a mouth that shows none splits halfway.
    `margin` (pixels) keeps the split that far inside the lips, where the two halves' rows of points are
    placed either side of it.
    """
    points = landmarks[:, :2].astype(np.float64)
    upper = points[list(lm.LIPS_UPPER_INNER[1:-1])]
    lower = points[list(lm.LIPS_LOWER_INNER[1:-1])]
    lip_gaps = np.linalg.norm(lower - upper, axis=1)
    split = np.full(len(upper), 0.5)
    along = (np.arange(SPLIT_SAMPLES) + 0.5) / SPLIT_SAMPLES
    line = (upper[:, None] + along[None, :, None] * (lower - upper)[:, None]).reshape(-1, 2)
    height, width = image.shape[:2]
    x0, y0 = np.clip(np.floor(line.min(axis=0)).astype(int) - 3, 0, (width, height))
    x1, y1 = np.clip(np.ceil(line.max(axis=0)).astype(int) + 4, 0, (width, height))
    if x1 - x0 < 2 or y1 - y0 < 2:
        return split
    window = cv2.GaussianBlur(image[y0:y1, x0:x1].astype(np.float32), (0, 0), 0.7)  # grain is no tooth
    colours = sample_at(window, line[:, 0] - x0, line[:, 1] - y0).reshape(len(upper), SPLIT_SAMPLES, 3)
    luma = colours @ LUMA
    teeth = teeth_pixels(colours, skin_colour(image, landmarks))
    mouth_width = float(np.linalg.norm(points[lm.MOUTH_LEFT_CORNER] - points[lm.MOUTH_RIGHT_CORNER]))
    # Teeth are two samples running: one bright sample is a glint on a tongue or a lip.
    beside = np.pad(teeth, ((0, 0), (1, 1)))
    teeth = teeth & (beside[:, :-2] | beside[:, 2:])
    roomy = lip_gaps >= 2 * margin + 1
    usable = roomy & teeth.any(axis=1)
    if usable.sum() < 2:  # (a mouth that shows teeth shows them in more than one column)
        return split
    first = teeth.argmax(axis=1)  # each column's first tooth sample from the upper lip
    # Upper or lower teeth, decided once for the mouth by its widest columns: toward the corners a smile's
    # upper teeth recede and start further from the lip (read column by column, some of
    # 2008_002506's upper teeth passed for lower ones, and the split zigzagged through them).
    widest = np.argsort(np.where(usable, lip_gaps, -1.0))[-3:]
    widest = widest[usable[widest]]
    upper_teeth = float(np.median(along[first[widest]])) <= UPPER_TEETH_REACH
    for column in np.flatnonzero(usable):
        row, start_at = teeth[column], int(first[column])
        if upper_teeth:  # split where they end
            # (A tooth's edge or the line between two teeth can read dark for a sample: the teeth end at the first
            # toothless run of two samples, or at the lower lip.)
            gaps_in_teeth = [start for start, stop in runs_of(~row[start_at:])
                             if stop - start >= 2 or start_at + stop == len(row)]
            teeth_end = start_at + gaps_in_teeth[0] if gaps_in_teeth else len(row)
            split[column] = teeth_end / SPLIT_SAMPLES
            if (teeth_end - start_at) / SPLIT_SAMPLES * lip_gaps[column] > UPPER_TEETH_HEIGHT * mouth_width:
                # Taller than upper teeth show: the lower teeth meet them (a clenched grin, 2008_002506 #2).
                # The split follows the bite, the darkest sample below the shortest upper teeth and above the
                # shortest lower ones (the last sample, blurred with the lower lip, can be darker than the bite).
                shortest = int(np.ceil(BITE_FROM * mouth_width / lip_gaps[column] * SPLIT_SAMPLES))
                first_bite, last_bite = start_at + shortest, teeth_end - shortest
                if first_bite < last_bite:
                    split[column] = along[first_bite + int(np.argmin(luma[column, first_bite:last_bite]))]
        else:  # lower teeth alone: split in the middle of the toothless run above them
            split[column] = along[max(start_at - 1, 0) // 2]
    known = np.flatnonzero(usable)
    nearest = known[np.abs(np.arange(len(upper))[:, None] - known[None, :]).argmin(axis=1)]
    split = split[nearest]
    # A column read a tooth's edge or a highlight where its neighbours did not: the median of three, so the
    # split runs along the mouth without a zigzag.
    padded = np.concatenate([split[:1], split, split[-1:]])
    split = np.median(np.stack([padded[:-2], padded[1:-1], padded[2:]]), axis=0)
    # Each column's split inside its own lips (a narrow corner takes a wide column's split); halfway where
    # there is no room for two rows of points.
    inside = (margin + 0.25) / np.maximum(lip_gaps, 1e-6)
    return np.where(roomy, np.clip(split, inside, 1.0 - inside), 0.5)


def teeth_share(image: np.ndarray, mouth_opening: np.ndarray, skin: np.ndarray) -> float:
    """The share of the pixels inside `mouth_opening` ((N, 2) image pixels, the inner-lip polygon) that look
    like teeth (`teeth_pixels`; `skin` an RGB colour). 0 for a mouth too small to hold a pixel."""
    x0, y0 = np.maximum(np.floor(mouth_opening.min(axis=0)).astype(int), 0)
    x1, y1 = np.ceil(mouth_opening.max(axis=0)).astype(int) + 1
    patch = image[y0:y1, x0:x1]
    if patch.size == 0:
        return 0.0
    inside = polygon_mask(patch.shape[:2], [mouth_opening - (x0, y0)]) > 0
    pixels = patch[inside]
    if len(pixels) == 0:
        return 0.0
    return float(np.mean(teeth_pixels(pixels, skin)))


def teeth_colour(sclera_colours: list[np.ndarray], lip_colour: np.ndarray) -> np.ndarray:
    """The painted teeth's RGB: TEETH, as bright as TEETH_OVER_SCLERA of the brightest of the photo's measured
    sclera colours (one eye may be in shadow), no darker than the lips (`lip_colour`, RGB), within
    TEETH_LUMA_RANGE; TEETH as it is if the photo shows no sclera."""
    if not sclera_colours:
        return TEETH.astype(np.float32)
    sclera = max(float(np.asarray(colour, np.float32) @ LUMA) for colour in sclera_colours)
    lips = TEETH_OVER_LIPS_AT_LEAST * float(np.asarray(lip_colour, np.float32) @ LUMA)
    darkest = min(max(TEETH_LUMA_RANGE[0], lips), TEETH_LUMA_RANGE[1])
    brightness = float(np.clip(TEETH_OVER_SCLERA * sclera, darkest, TEETH_LUMA_RANGE[1]))
    return (TEETH * brightness / float(TEETH @ LUMA)).astype(np.float32)


def paint_cavity(region: np.ndarray, upper: np.ndarray, lower: np.ndarray, target: np.ndarray,
                 origin: tuple[int, int], lip_colour: np.ndarray, teeth: np.ndarray | None,
                 palette: Palette) -> np.ndarray:
    """Paint the mouth cavity in the gap that opens between the two halves of the mouth interior.

    `upper`, `lower`: the halves' edge points ((N, 2) image pixels); `target`: the frame's landmarks;
    `region` starts at image pixel `origin` (x, y). The cavity is the lip colour, much darker and darker
    toward the throat and the corners (and redder as it darkens: CAVITY_DEEP_REDDENING), with the tongue's
    back rising from the lower edge as the mouth opens;
    `teeth`, an RGB colour (`teeth_colour`; given where the photo's mouth was closed, no teeth to move), adds
    a row of upper teeth below the upper lip and a shorter, shadowed lower one; the colours are the photo's
    `palette` (grey in a black-and-white photo).
    Returns `region`, or a painted copy of it.
    """
    corners = target[[lm.LIPS_UPPER_INNER[0], lm.LIPS_UPPER_INNER[-1]], :2]
    mouth_width = float(np.linalg.norm(target[lm.MOUTH_LEFT_CORNER, :2] - target[lm.MOUTH_RIGHT_CORNER, :2]))
    gap = float(np.linalg.norm(upper - lower, axis=1).max()) / max(mouth_width, 1.0)
    strength = float(np.clip((gap - 0.02) / 0.06, 0.0, 1.0))
    if strength <= 0:
        return region
    x0, y0 = origin
    polygon = np.concatenate([corners[:1], upper, corners[1:], lower[::-1]]) - (x0, y0)
    blur = max(1, int(mouth_width * 0.02)) * 2 + 1
    # Room for the opening's soft rim: the blur below, and the photo's (Palette.soften) on top.
    margin = 2 + blur // 2 + int(np.ceil(3 * palette.softening))
    px0, py0 = np.floor(polygon.min(axis=0)).astype(int) - margin
    px1, py1 = np.ceil(polygon.max(axis=0)).astype(int) + margin + 1
    px0, py0 = max(px0, 0), max(py0, 0)
    px1, py1 = min(px1, region.shape[1]), min(py1, region.shape[0])
    if px1 - px0 < 2 or py1 - py0 < 2:
        return region
    local = polygon - (px0, py0)
    alpha = np.zeros((py1 - py0, px1 - px0), np.float32)
    cv2.fillPoly(alpha, [np.round(local * 16).astype(np.int32)], 1.0, lineType=cv2.LINE_AA, shift=4)
    alpha = cv2.GaussianBlur(alpha, (blur, blur), 0) * strength

    top_edge = upper - (x0 + px0, y0 + py0)
    bottom_edge = lower - (x0 + px0, y0 + py0)
    columns = np.arange(px1 - px0, dtype=np.float32)
    top = _edge_rows(top_edge, columns)
    bottom = _edge_rows(bottom_edge, columns)
    rows = np.arange(py1 - py0, dtype=np.float32)[:, None]
    depth = np.clip((rows - top[None, :]) / max(mouth_width * 0.45, 1.0), 0.0, 1.0)
    upper_middle, upper_half = _middle_and_half_width(top_edge)
    lower_middle, lower_half = _middle_and_half_width(bottom_edge)
    across = np.clip(np.abs(columns - upper_middle) / upper_half, 0.0, 1.0)
    light = (CAVITY_LIGHT - (CAVITY_LIGHT - CAVITY_DEEP) * depth) * (1.0 - CAVITY_SIDES * across**2)[None, :]
    darkest = CAVITY_DEEP * (1.0 - CAVITY_SIDES)
    deep = np.clip((CAVITY_LIGHT - light) / (CAVITY_LIGHT - darkest), 0.0, 1.0)[..., None]
    cavity = (lip_colour + deep * (reddened(lip_colour, CAVITY_DEEP_REDDENING) - lip_colour)) * light[..., None]
    tongue_alpha, tongue_colour = _tongue(columns, rows, top, bottom, lower_middle, lower_half, lip_colour,
                                          float(np.clip((gap - TONGUE_FROM) / TONGUE_FROM, 0.0, 1.0)))
    cavity = cavity + tongue_alpha[..., None] * (tongue_colour - cavity)
    if teeth is not None:
        # Teeth show once the mouth is clearly open; a row of white in a slit looks wrong. The lower row is
        # shorter and in the shadow of the upper lip and the cheeks.
        showing = float(np.clip((gap - 0.1) / 0.1, 0.0, 1.0))
        rows_of_teeth = ((bottom, lower_middle, lower_half, LOWER_TEETH_HEIGHT, LOWER_TOOTH_WIDTHS, False, LOWER_TEETH_SHADE),
                         (top, upper_middle, upper_half, TEETH_HEIGHT, TOOTH_WIDTHS, True, 1.0))
        for edge, middle, half, height, widths, downward, shade in rows_of_teeth:
            teeth_alpha, teeth_shade = _teeth_row(columns, rows, edge, middle, half, mouth_width, height, widths,
                                                  downward)
            cavity = cavity + (showing * teeth_alpha)[..., None] * (shade * teeth_shade[..., None] * teeth - cavity)
    # As soft as the photo, then as grainy: the teeth's edges and lines, the tongue and the opening's rim.
    cavity = palette.soften(palette.paint(cavity)) + palette.grain_at((x0 + px0, y0 + py0), cavity.shape[:2])
    alpha = palette.soften(alpha)
    patch = region[py0:py1, px0:px1].astype(np.float32)
    region = region.copy()
    region[py0:py1, px0:px1] = np.clip(patch + alpha[..., None] * (cavity - patch), 0, 255).astype(np.uint8)
    return region


def reddened(colour: np.ndarray, factor: float) -> np.ndarray:
    """`colour` (RGB) as bright (luma) but with its red over green (and blue) `factor` times as high."""
    colour = np.asarray(colour, np.float32)
    scaled = colour * np.array([factor, 1.0, 1.0], np.float32)
    return (scaled * (float(colour @ LUMA) / max(float(scaled @ LUMA), 1e-6))).astype(np.float32)


def _middle_and_half_width(edge: np.ndarray) -> tuple[float, float]:
    """The column halfway along an edge ((N, 2) points) and half its width."""
    left, right = float(edge[:, 0].min()), float(edge[:, 0].max())
    return (left + right) / 2, (right - left) / 2 + 1e-6


def _edge_rows(edge: np.ndarray, columns: np.ndarray) -> np.ndarray:
    """The row of an edge ((N, 2) points, any order) at each of `columns`, interpolated (constant past its ends)."""
    order = np.argsort(edge[:, 0])
    return np.interp(columns, edge[order, 0], edge[order, 1]).astype(np.float32)


def _teeth_row(columns: np.ndarray, rows: np.ndarray, edge: np.ndarray, centre_x: float, half: float,
               mouth_width: float, height_share: float, widths: tuple[float, ...],
               downward: bool) -> tuple[np.ndarray, np.ndarray]:
    """(alpha (H, W), shade (H, W): the share of the teeth's colour) of a row of teeth growing from `edge`
    (a row per column) into the mouth, `downward` (upper teeth) or up (lower): `height_share` mouth widths
    tall in the middle and shortening toward the corners, darker there and in the lip's shadow, each tooth
    (`widths`, in mouth widths from the middle out) a little rounded at its corners, with a darker line
    between teeth where they are wide enough to show one."""
    offset = columns - centre_x
    across = np.clip(np.abs(offset) / (TEETH_REACH * half), 0.0, 1.0)
    height = height_share * mouth_width * np.sqrt(1.0 - across**2)
    # Where each column falls within its tooth (0 at the tooth's middle, 1 at its sides), and the lines between.
    bounds = np.cumsum((0.0,) + widths) * mouth_width
    tooth = np.clip(np.searchsorted(bounds, np.abs(offset)) - 1, 0, len(widths) - 1)
    tooth_pixels = np.asarray(widths)[tooth] * mouth_width
    within = (np.abs(offset) - bounds[tooth]) / tooth_pixels
    height = height * (1.0 - TOOTH_EDGE * np.abs(2.0 * within - 1.0) ** 4)
    line_width = max(0.6, 0.08 * float(widths[0] * mouth_width))
    gap_distance = np.minimum(np.minimum(within, 1.0 - within) * tooth_pixels, np.abs(offset))  # and the middle line
    line = (np.exp(-0.5 * (gap_distance / line_width) ** 2)
            * np.clip((tooth_pixels - MIN_TOOTH_PIXELS) / MIN_TOOTH_PIXELS, 0.0, 1.0))
    into = rows - edge[None, :] if downward else edge[None, :] - rows
    alpha = np.clip(height[None, :] - into + 0.5, 0.0, 1.0) * (into > -1.0) * (across < 1.0)[None, :]
    shadow_reach = max(LIP_SHADOW_REACH * height_share * mouth_width, 0.5)
    shade = ((1.0 - TEETH_FALLOFF * across**2)[None, :]
             * (1.0 - LIP_SHADOW * np.exp(-np.maximum(into, 0.0) / shadow_reach))
             * (1.0 - TOOTH_GAP * line)[None, :])
    return alpha.astype(np.float32), shade.astype(np.float32)


def _tongue(columns: np.ndarray, rows: np.ndarray, top: np.ndarray, bottom: np.ndarray, centre_x: float,
            half: float, lip_colour: np.ndarray, strength: float) -> tuple[np.ndarray, np.ndarray]:
    """(alpha (H, W), colour (H, W, 3)) of the tongue's back rising from the `bottom` edge of an open mouth
    (`top`: the upper edge; rows per column): a soft hump, lit from above, darker at its sides and below.
    `strength` 0..1 with the opening."""
    across = np.clip(np.abs(columns - centre_x) / (TONGUE_WIDTH * half), 0.0, 1.0)
    rise = TONGUE_HEIGHT * np.maximum(bottom - top, 0.0) * (1.0 - across**2)  # a dome, highest in the middle
    surface = bottom - rise
    below_surface = rows - surface[None, :]
    softness = np.maximum(0.25 * rise, 0.5)[None, :]  # the tongue's back curves away: a soft top edge
    alpha = np.clip(below_surface / softness + 0.5, 0.0, 1.0) * (across < 1.0)[None, :] * strength
    shade = (TONGUE_LIGHT * (1.0 - TONGUE_SIDES * across**2)[None, :]
             * (1.0 - TONGUE_BELOW * np.clip(below_surface / np.maximum(rise, 1.0)[None, :], 0.0, 1.0)))
    return alpha.astype(np.float32), (lip_colour[None, None, :] * shade[..., None]).astype(np.float32)


def seal_strength(source_gap: float, target_gap: float) -> float:
    """How fully the meeting line of lips is repainted: 0 where the lips do not meet, or meet as in the photo
    (a photo's own closed lips are left as they are), 1 for lips the rig sealed over a mouth the photo shows
    open. Gaps: landmarks.signed_lip_gap's, of the photo's landmarks and of the frame's."""
    met = np.clip((SEAL_FROM - target_gap) / (SEAL_FROM - SEAL_FULL), 0.0, 1.0)
    closed_by_rig = np.clip((source_gap - target_gap) / SEAL_CLOSING, 0.0, 1.0)
    return float(met * closed_by_rig)


def seal_lips(region: np.ndarray, landmarks: np.ndarray, origin: tuple[int, int], strength: float,
              palette: Palette, rims: float = 0.0) -> np.ndarray:
    """Repaint where closed lips meet: a band around their meeting line (and over the gap, or the overlap
    of lips pressed together, where the mesh folds), filled from the middle of the upper lip to the middle
    of the lower one, with a soft darker line where they touch.

    `landmarks`: the frame's ((N, 2+) image pixels); `region` starts at image pixel `origin` (x, y).
    `rims`: how far (mouth widths) below the band the lower lip's rim may still hold the photo's teeth
    and cavity, also repainted (a wide-open photo's). Returns `region`, or a painted copy of it.
    """
    if strength <= 0:
        return region
    upper, lower = (smooth_curve(landmarks[list(ids), :2]) for ids in (lm.LIPS_UPPER_INNER, lm.LIPS_LOWER_INNER))
    corners = landmarks[[lm.MOUTH_RIGHT_CORNER, lm.MOUTH_LEFT_CORNER], :2]
    middle_line = np.concatenate([corners[:1], (_resampled(upper) + _resampled(lower)) / 2, corners[1:]])
    middle_line = middle_line[np.argsort(middle_line[:, 0])]
    mouth_width = float(np.linalg.norm(corners[0] - corners[1]))
    margin = max(1.0, SEAL_MARGIN * mouth_width)
    rim = rims * mouth_width
    x0, y0 = origin
    outer = landmarks[list(lm.LIPS_UPPER_OUTER + lm.LIPS_LOWER_OUTER), :2]
    px0 = max(int(np.floor(outer[:, 0].min())) - x0 - 1, 0)
    px1 = min(int(np.ceil(outer[:, 0].max())) - x0 + 2, region.shape[1])
    py0 = max(int(np.floor(min(outer[:, 1].min(), upper[:, 1].min(), lower[:, 1].min()) - margin)) - y0 - 3, 0)
    py1 = min(int(np.ceil(max(outer[:, 1].max(), upper[:, 1].max(), lower[:, 1].max()) + margin + rim)) - y0 + 4,
              region.shape[0])
    if px1 - px0 < 3 or py1 - py0 < 3:
        return region
    columns = np.arange(px0, px1, dtype=np.float32) + x0

    def rows_of(points: np.ndarray) -> np.ndarray:
        return _edge_rows(points, columns) - y0 - py0

    middle = rows_of(middle_line)
    inner_left, inner_right = sorted((upper[0, 0], upper[-1, 0]))
    outer_left, outer_right = sorted(corners[:, 0])
    beyond = np.maximum((inner_left - columns) / max(inner_left - outer_left, 1.0),
                        (columns - inner_right) / max(outer_right - inner_right, 1.0))
    along = 1.0 - np.clip(beyond, 0.0, 1.0)  # 1 between the inner corners, 0 at the outer ones
    # The band: the gap between the inner lips, or their overlap, and a margin; narrowing toward the corners.
    upper_rows, lower_rows = rows_of(upper), rows_of(lower)
    reach = margin * (0.5 + 0.5 * along)
    top = np.where(beyond > 0, middle, np.minimum(np.minimum(upper_rows, lower_rows), middle)) - reach
    # Below it, also the lower lip's rim: a wide-open photo's inner-lip landmarks can run through its lower
    # teeth, which the rising lip carries up under the line.
    bottom = (np.where(beyond > 0, middle, np.maximum(np.maximum(upper_rows, lower_rows), middle))
              + reach * (1 + rim / margin))
    # Its colours: each lip's, halfway across what shows of it (or just outside the band where it is thin).
    upper_lip = np.minimum((rows_of(landmarks[list(lm.LIPS_UPPER_OUTER), :2]) + top) / 2, top - 1.0)
    lower_lip = np.maximum((rows_of(landmarks[list(lm.LIPS_LOWER_OUTER), :2]) + bottom) / 2, bottom + 1.0)
    patch = region[py0:py1, px0:px1].astype(np.float32)
    above, below = _lip_colours(patch, upper_lip, mouth_width), _lip_colours(patch, lower_lip, mouth_width)
    rows = np.arange(py1 - py0, dtype=np.float32)[:, None]
    share = np.clip((rows - top[None, :]) / np.maximum(bottom - top, 1.0)[None, :], 0.0, 1.0)[..., None]
    fill = above[None] + share * (below - above)[None]
    line_width = max(0.6, SEAL_LINE_WIDTH * mouth_width)
    offset = (rows - middle[None, :]) / line_width
    # Feathered by a pixel at the band's edges; at full strength only where the lips met.
    inside = np.clip(np.minimum(rows - top[None, :], bottom[None, :] - rows) + 0.5, 0.0, 1.0)
    # A dark core where the lips touch in a softer shade, the lips curling in toward it; the shade fades
    # out toward the band's edges, or it would end there in a step.
    shade_room = np.clip(np.minimum(rows - top[None, :], bottom[None, :] - rows) / (SEAL_SHADE_WIDTH * line_width),
                         0.0, 1.0)
    line = np.maximum(np.exp(-0.5 * offset**2),
                      SEAL_SHADE * shade_room * np.exp(-0.5 * (offset / SEAL_SHADE_WIDTH) ** 2))
    # The line takes the lower lip's colour, darkened, and deeper in colour as shadow on lips is (the lip's
    # colour times itself, per column): a plain darkened fill read as a grey-brown pencil line. A grey
    # photo's line is plain grey, darker.
    shadow = (1.0 - SEAL_LINE_DARKNESS) * below * below / np.maximum(below.max(axis=1, keepdims=True), 1.0)
    fill = fill + line[..., None] * (shadow[None] - fill)
    fill = palette.soften(palette.paint(fill)) + palette.grain_at((x0 + px0, y0 + py0), fill.shape[:2])
    # Toward the mouth's corners the band fades out into the photo's own corner: cut off there, the line ended
    # square with the band's pale lip colours beside its end (d9, d19).
    to_corner = np.minimum(columns - outer_left, outer_right - columns)
    end_fade = np.clip(to_corner / (SEAL_END_FADE * mouth_width), 0.0, 1.0)
    alpha = (strength * inside * end_fade[None, :])[..., None]
    region = region.copy()
    region[py0:py1, px0:px1] = np.clip(patch + alpha * (fill - patch) + 0.5, 0, 255).astype(np.uint8)
    return region


def _resampled(curve: np.ndarray, count: int = 33) -> np.ndarray:
    """`count` points evenly along a curve ((N, 2)) by its length, so two curves can be averaged point by point."""
    lengths = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(curve, axis=0), axis=1))])
    along = np.linspace(0.0, lengths[-1], count)
    return np.stack([np.interp(along, lengths, curve[:, 0]), np.interp(along, lengths, curve[:, 1])], axis=1)


def _lip_colours(patch: np.ndarray, rows: np.ndarray, mouth_width: float) -> np.ndarray:
    """(W, 3) the colour of `patch` at a row per column (bilinear), smoothed along the columns: a lip's rim
    is speckled with the teeth and shadow it bordered."""
    columns = np.arange(patch.shape[1], dtype=np.float32)
    picked = cv2.remap(patch, columns[None], np.clip(rows, 0, patch.shape[0] - 1).astype(np.float32)[None],
                       cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    sigma = max(0.8, SEAL_SMOOTHING * mouth_width)
    return cv2.GaussianBlur(picked, (0, 0), sigmaX=sigma, sigmaY=1e-3, borderType=cv2.BORDER_REPLICATE)[0]
