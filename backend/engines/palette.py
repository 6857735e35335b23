"""The photo's palette, so that what an engine paints belongs to the photo (pure numpy, no I/O).

A black-and-white photo is grey and a sepia one has a single tint: every
pixel is its brightness times one colour. A mouth cavity painted dark red, a
hint of warm white teeth or a neural correction trained on colour footage
would put colour into such a photo. `Palette.paint` keeps the brightness of a
painted colour and gives it the photo's tint instead, fully for a photo of
one tint and not at all for an ordinarily colourful one. It is linear, so it
applies to corrections (differences of colours) as well as to colours.

A scanned or old photo is also grainy: `grain_at` gives painted areas (a
mouth cavity, closed lids, the sclera a gaze uncovers) the same amount of
fine noise, so they do not look cleaner than the picture around them.

And it is often soft (out of focus, a small print scanned large): `soften`
blurs what is painted (the teeth, the cavity, the lash and seal lines) as
much as the photo's own edges are blurred (`photo_blur`), so crisp paint does
not stand out in a soft picture.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

LUMA = np.array([0.299, 0.587, 0.114], np.float32)
ONE_TINT = 0.04  # colourfulness up to which a photo counts as one tint (grey, sepia; grain and JPEG included)
COLOURFUL = 0.12  # colourfulness from which painted colours are kept as they are (every colour photo tried)
DARKEST = 24.0  # pixels darker than this (0..255 luma) say little about the tint
SMALL_SIDE = 96  # the palette is read from the photo averaged down to this size
MAX_GRAIN = 6.0  # levels: more than this is texture, not grain
GRAIN_SAMPLES = 200_000  # detail values the grain's spread is read from
GRAIN_TILE = np.random.default_rng(0).standard_normal((64, 64)).astype(np.float32)
# The photo's blur, read at its strongest edges by blurring it once more (Zhuo & Sim's re-blur ratio: an
# edge blurred by s has its gradient lowered by s / sqrt(s^2 + BLUR_PROBE^2) by a further blur of
# BLUR_PROBE). Grain would pass for sharp edges, so the photo is smoothed by BLUR_PRESMOOTH first and that
# is taken off again: the head regions of the evaluation portraits at 768 px, blurred by 1.5 and 3 and given
# grain of 10 levels, read 1.6-2.1 and 2.7-3.1 (without grain 1.7-2.1 and 3.1-3.5); unsmoothed, grain of 5
# levels pulled a blur of 3 down to 0.5-1.5.
BLUR_PROBE = 1.0  # pixels (Gaussian sigma)
BLUR_PRESMOOTH = 2.0
BLUR_EDGES = 97.0  # percentile of the gradient from which an edge counts as strong ...
MIN_EDGE_GRADIENT = 4.0  # ... and at least this (Sobel of the smoothed photo: a step of a few levels)
MIN_BLUR_EDGES = 5  # fewer strong edges than this say nothing (a flat region): it counts as sharp
MAX_BLUR = 8.0  # pixels: past this the re-blur ratio is within a hundredth of 1, and the photo reads this soft
PAINT_SOFTNESS = 0.7  # pixels: the blur painted areas already have (anti-aliased edges); photos sharper
# than this are left alone. Head regions at 768 px: the astronaut 0.62, d8 0.79, s12 0.92, d9 1.16, d19 1.39.


def saturation(pixels: np.ndarray) -> np.ndarray:
    """How coloured each RGB pixel is ((..., 3) -> (...)): (max - min) / max, 0 for grey."""
    pixels = np.asarray(pixels, np.float32)
    return (pixels.max(axis=-1) - pixels.min(axis=-1)) / np.maximum(pixels.max(axis=-1), 1.0)


@dataclass(frozen=True)
class Palette:
    tint: np.ndarray  # (3,) float32: the photo's typical colour per unit of brightness (its luma is 1)
    colourfulness: float  # how far pixels stray from that one tint: 0 for grey or sepia
    grain: float = 0.0  # the photo's fine noise, levels (what a 3x3 blur removes, robust spread)
    blur: float = 0.0  # how blurred its edges are, pixels (Gaussian sigma; photo_blur)

    def grain_at(self, origin: tuple[int, int], shape: tuple[int, int]) -> np.ndarray:
        """(H, W, 1) float32 noise of the photo's grain for the pixels from image pixel `origin` (x, y): a
        fixed pattern tied to the image, so painted areas hold still like the rest of the photo."""
        ys = (np.arange(shape[0]) + origin[1]) % GRAIN_TILE.shape[0]
        xs = (np.arange(shape[1]) + origin[0]) % GRAIN_TILE.shape[1]
        return (self.grain * GRAIN_TILE[ys[:, None], xs[None, :]])[..., None]

    @property
    def softening(self) -> float:
        """The blur (Gaussian sigma, pixels) `soften` adds: what the photo's has beyond the paint's own
        (PAINT_SOFTNESS); 0 for a photo sharper than that, or nearly."""
        extra = float(np.sqrt(max(self.blur**2 - PAINT_SOFTNESS**2, 0.0)))
        return extra if extra >= 0.3 else 0.0

    @property
    def line_blur(self) -> float:
        """The least blur (Gaussian sigma, pixels) a painted line is drawn with: the photo's where `soften`
        applies, else 0 (the line as it is drawn)."""
        return self.blur if self.softening else 0.0

    def soften(self, painted: np.ndarray) -> np.ndarray:
        """`painted` (H, W[, C] float32: colours or a mask) blurred by `softening`."""
        if not self.softening:
            return painted
        return cv2.GaussianBlur(np.asarray(painted, np.float32), (0, 0), self.softening)

    def paint(self, colours: np.ndarray) -> np.ndarray:
        """`colours` (..., 3) float32, given the photo's tint as far as the photo lacks colour."""
        colours = np.asarray(colours, np.float32)
        keep = float(np.clip((self.colourfulness - ONE_TINT) / (COLOURFUL - ONE_TINT), 0.0, 1.0))
        if keep >= 1.0:
            return colours
        toned = (colours @ LUMA)[..., None] * self.tint
        return toned + keep * (colours - toned)


def photo_grain(image: np.ndarray, where: np.ndarray | None = None) -> float:
    """The photo's fine noise in levels: the spread of what a 3x3 blur removes (over `where`, a mask of
    `image`'s pixels), at most MAX_GRAIN. The median absolute deviation ignores the edges that would
    dominate a plain spread."""
    grey = image.astype(np.float32) @ LUMA
    detail = grey - cv2.GaussianBlur(grey, (3, 3), 0)
    values = detail[where] if where is not None and where.any() else detail.ravel()
    values = values[::max(1, len(values) // GRAIN_SAMPLES)]
    return float(min(1.4826 * np.median(np.abs(values - np.median(values))), MAX_GRAIN))


def photo_blur(image: np.ndarray) -> float:
    """How blurred an RGB uint8 photo's (or region's) strong edges are: a Gaussian sigma in pixels, 0 where it
    shows too few edges to tell (see BLUR_PROBE)."""
    grey = cv2.GaussianBlur(image.astype(np.float32) @ LUMA, (0, 0), BLUR_PRESMOOTH)

    def gradient(values: np.ndarray) -> np.ndarray:
        return np.hypot(cv2.Sobel(values, cv2.CV_32F, 1, 0, ksize=3), cv2.Sobel(values, cv2.CV_32F, 0, 1, ksize=3))

    sharp, reblurred = gradient(grey), gradient(cv2.GaussianBlur(grey, (0, 0), BLUR_PROBE))
    # The strongest edges, each read once: its gradient's local maxima.
    strong = sharp >= max(float(np.percentile(sharp, BLUR_EDGES)), MIN_EDGE_GRADIENT)
    edges = strong & (sharp == cv2.dilate(sharp, np.ones((3, 3), np.uint8)))
    if edges.sum() < MIN_BLUR_EDGES:
        return 0.0
    # The median edge's ratio (the blur falls as the ratio rises, so it is the median edge's blur too).
    ratio = float(np.median(sharp[edges] / np.maximum(reblurred[edges], 1e-6)))
    if ratio ** 2 - 1.0 <= (BLUR_PROBE / MAX_BLUR) ** 2:
        return MAX_BLUR
    seen = BLUR_PROBE / np.sqrt(ratio**2 - 1.0)
    return float(min(np.sqrt(max(seen**2 - BLUR_PRESMOOTH**2, 0.0)), MAX_BLUR))


def palette_of(image: np.ndarray, grain_from: np.ndarray | None = None) -> Palette:
    """The palette of an RGB uint8 photo: its tint and colourfulness (`tint_of`), and its grain and blur, read
    from `grain_from` (e.g. the head region) if given, else from the whole photo."""
    region = image if grain_from is None else grain_from
    return Palette(*tint_of(image), photo_grain(region), photo_blur(region))


def tint_of(image: np.ndarray) -> tuple[np.ndarray, float]:
    """An RGB uint8 photo's median tint and how colourful it is: of the pixels' largest departures from that
    tint per unit of brightness, the 90th percentile (a colour photo has some clearly coloured parts, a grey
    or sepia one none; 0.13-0.85 on the evaluation photos, under 0.07 for them made sepia with grain and
    JPEG blocks). Cheap: it reads the photo averaged down to SMALL_SIDE."""
    # Averaged down first: grain and JPEG noise are colourful pixel by pixel, not over an area.
    scale = SMALL_SIDE / max(image.shape[:2])
    if scale < 1:
        image = cv2.resize(image, (max(1, round(image.shape[1] * scale)), max(1, round(image.shape[0] * scale))),
                           interpolation=cv2.INTER_AREA)
    pixels = image.reshape(-1, 3).astype(np.float32)
    luma = pixels @ LUMA
    pixels, luma = pixels[luma > DARKEST], luma[luma > DARKEST]
    if len(pixels) == 0:
        return np.ones(3, np.float32), 0.0
    ratios = pixels / luma[:, None]
    tint = np.median(ratios, axis=0)
    tint = (tint / float(tint @ LUMA)).astype(np.float32)
    return tint, float(np.percentile(np.abs(ratios - tint).max(axis=1), 90))
