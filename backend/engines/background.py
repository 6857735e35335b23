"""The person over the background: what a moving head or body uncovers, and how the moved person is
composited over it. The background plate (the photo's region with the person inpainted away, the backdrop's
grain mirrored in) is made once per subject; each frame blends the moved person over the photo as it was,
or over the plate where the person moved away. numpy and OpenCV only: no state, no I/O."""
from __future__ import annotations

import cv2
import numpy as np

PERSON_EPSILON = 1e-3  # a person mask value below this is no person, above 1 minus it all person
PLATE_SIDE = 256  # background plates are inpainted at most this large
MIRROR_SIDE = 1024  # the backdrop's grain is mirrored into a plate at most this large (and scaled up) ...
PLATE_GRAIN = 2.0  # ... the grain being what differs from a Gaussian mean this wide (pixels)
GRAIN_SPREAD = 2.5  # ... held to this many times its spread
MIRROR_PASSES = 3  # a pixel mirrored into the hole again takes what that one took, this many times over


def background_plate(pixels: np.ndarray, mask: np.ndarray, grain: bool = True) -> np.ndarray:
    """`pixels` with the person (`mask` > 0.05, grown a little) inpainted away: what shows where a moving head
    or body uncovers the backdrop.

    The inpainting (done at most PLATE_SIDE large and scaled back) is smooth: on a
    grainy or textured backdrop (an old print, a wall) the uncovered band showed
    as a smooth, painted-looking strip. So the backdrop's grain is added to it,
    taken from the backdrop itself, mirrored across the edge of the inpainted
    area (each pixel of it takes the grain of the backdrop pixel as far beyond
    the edge, so the grain runs on without a seam). Without `grain`, the smooth inpainting."""
    height, width = mask.shape
    scale = min(1.0, PLATE_SIDE / max(height, width))
    size = (max(2, round(width * scale)), max(2, round(height * scale)))
    small = cv2.resize(pixels, size, interpolation=cv2.INTER_AREA)
    hole = cv2.dilate((cv2.resize(mask, size, interpolation=cv2.INTER_AREA) > 0.05).astype(np.uint8),
                      np.ones((7, 7), np.uint8))
    # The grain is mirrored at most MIRROR_SIDE large (on a larger region, finer grain is not seen) ...
    detail_scale = min(1.0, MIRROR_SIDE / max(height, width))
    detail_size = (max(2, round(width * detail_scale)), max(2, round(height * detail_scale)))
    plate = cv2.resize(cv2.inpaint(small, hole, 5, cv2.INPAINT_TELEA), detail_size, interpolation=cv2.INTER_LINEAR)
    if grain and hole.any() and not hole.all():
        sharp = pixels if detail_scale == 1 else cv2.resize(pixels, detail_size, interpolation=cv2.INTER_AREA)
        sharp = sharp.astype(np.float32)
        hole = cv2.resize(hole, detail_size, interpolation=cv2.INTER_NEAREST)
        # The backdrop's grain: its difference from its own local mean (the person left out of that mean).
        backdrop = (hole == 0).astype(np.float32)
        weight = np.maximum(cv2.GaussianBlur(backdrop, (0, 0), PLATE_GRAIN), 1e-3)[..., None]
        detail = sharp - cv2.GaussianBlur(sharp * backdrop[..., None], (0, 0), PLATE_GRAIN) / weight
        # Grain, not edges: the backdrop's edges mirrored would draw odd shapes, so the detail is held to the
        # grain's own spread (its median absolute deviation over the backdrop).
        spread = GRAIN_SPREAD * 1.4826 * np.median(np.abs(detail[hole == 0]))
        np.clip(detail, -spread, spread, out=detail)
        plate = np.clip(plate + mirrored_into(detail, hole) + 0.5, 0, 255).astype(np.uint8)
    # ... and the plate scaled to the region's size.
    return plate if detail_scale == 1 else cv2.resize(plate, (width, height), interpolation=cv2.INTER_LINEAR)


def mirrored_into(values: np.ndarray, hole: np.ndarray) -> np.ndarray:
    """`values` ((H, W, C)) inside `hole` ((H, W) uint8, nonzero inside) taken from outside it, mirrored across
    its edge: a pixel of the hole takes the value of the pixel as far beyond the hole's nearest edge point.
    Off the grid, the grid's edge mirrors it back; where it lies in the hole (far inside a wide one), it takes
    what that pixel took, if anything. Outside the hole, 0."""
    height, width = hole.shape
    out = np.zeros_like(values)
    if hole.all() or not hole.any():
        return out
    _, nearest = cv2.distanceTransformWithLabels(hole, cv2.DIST_L2, 5, labelType=cv2.DIST_LABEL_PIXEL)
    outside = np.flatnonzero(hole.ravel() == 0)  # label k names the k-th pixel outside the hole, row by row
    ys, xs = np.nonzero(hole)
    edge = outside[nearest[ys, xs] - 1]
    mirror_y = _reflected(2 * (edge // width) - ys, height)
    mirror_x = _reflected(2 * (edge % width) - xs, width)
    has = hole == 0  # pixels that hold a value to give
    for _ in range(MIRROR_PASSES):
        usable = has[mirror_y, mirror_x] & ~has[ys, xs]
        if not usable.any():
            break
        source = values if not has[ys, xs].any() else np.where(hole[..., None] > 0, out, values)
        out[ys[usable], xs[usable]] = source[mirror_y[usable], mirror_x[usable]]
        has[ys[usable], xs[usable]] = True
    return out


def _reflected(positions: np.ndarray, size: int) -> np.ndarray:
    """Grid positions off a grid of `size` mirrored back onto it at its first and last pixel."""
    period = 2 * max(size - 1, 1)
    folded = np.mod(positions, period)
    return np.where(folded < size, folded, period - folded)


def blend_over_background(warped: np.ndarray, moved_mask: np.ndarray, original: np.ndarray,
                          source_mask: np.ndarray, plate: np.ndarray | None) -> np.ndarray:
    """The moved person (`warped`, `moved_mask`) over the background, in place in `warped`: where neither
    the moved nor the still person is, the photo as it was (`original`, whose person is `source_mask`);
    at the person's edge and where it moved away, blended over the photo, or over `plate` as far as the
    person uncovered it. With no `plate` (a frame with alpha) the person is left unblended: its alpha
    carries the edge, and the background it uncovered is transparent."""
    still = (moved_mask < PERSON_EPSILON) & (source_mask < PERSON_EPSILON)
    cv2.copyTo(original, still.view(np.uint8), warped)  # (numpy's copyto with where= is 40x slower)
    if plate is None:
        return warped
    blend = (moved_mask < 1 - PERSON_EPSILON) & ~still
    # Relative to how much person the pixel had: a half-hair edge pixel that the
    # person left is fully background now, or a faint outline would stay behind.
    uncovered = np.clip((source_mask - moved_mask) / np.maximum(source_mask, 1e-3), 0.0, 1.0).astype(np.float32)
    # Blended over the whole box by OpenCV's weighted mix of uint8 images, then copied where the mask says:
    # gathering only the pixels to blend by index took 3-9x longer (a hazy mask blends most of a body), and
    # blending only the spans of rows and columns that hold them (a quarter to a third of a moving box) took
    # half as long again as the whole box, in the spans' own overhead.
    background = cv2.blendLinear(original, plate, 1.0 - uncovered, uncovered)
    alpha = np.ascontiguousarray(moved_mask, np.float32)
    cv2.copyTo(cv2.blendLinear(warped, background, alpha, 1.0 - alpha), blend.view(np.uint8), warped)
    return warped
