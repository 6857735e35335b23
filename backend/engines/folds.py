"""Folds in a turned face's map: where it jumps between neighbouring working pixels (pure numpy/OpenCV).

A turn moves the nose over the far cheek and hides the strip of photo between them. The warp engine makes
its map at a working resolution and interpolates it to full resolution; across a fold that interpolation
samples the hidden strip (the nose's shaded side): a thin, stepped, dark line. The pixels either side of
a fold are redrawn instead from the exact map (every triangle's affine), several samples a pixel, averaged.

A fold is found two ways: where the map jumps between working pixels (a wide hidden strip), and where
the frame turns a triangle of the face over (any strip, however narrow: on a large photo a strip under a
working pixel wide still shows as a line a pixel wide, and a head tipped far down draws the upper lip's
edge as a staircase).
"""
from __future__ import annotations

import cv2
import numpy as np

from .warp_math import piecewise_affine_displacement, signed_areas, triangle_affines

FOLD_JUMP = 1.0  # working pixels: neighbours whose maps differ by more than this lie either side of a fold
FOLD_KEPT = 0.5  # working pixels: a fold whose map the sliver filter moved this much is left to the filter ...
SLIVER_AROUND = 2  # ... read this many working pixels around the fold
FOLD_SAMPLES = 3  # a fold's pixels are drawn from this many samples of the exact map along each axis
FOLD_FEATHER = 2  # pixels at the edge of a fold's redrawn pixels over which they fade in
TURNED_REACH = 2  # working pixels: the cells around a turned-over triangle redrawn with it (past the fade-in)
# working pixels: a fold is redrawn only where its exact map samples at least this far inside the grid. A face the
# photo's edge cuts folds beyond it on a turn (the cut eye's mesh), and redrawn from the exact map, that fold
# stretched the edge's last few pixels into grey bars across the eye.
FOLD_EDGE_MARGIN = 2


def face_folds(exact: np.ndarray, face_field: np.ndarray, face_cover: np.ndarray, silhouette_reach: int,
               turned: np.ndarray | None = None) -> np.ndarray:
    """(h, w) bool: the working pixels where the face's map (`face_field`) folds, inside the face's triangles
    (`face_cover`, taken before fill_notches extrapolates the face's map into narrow notches of its outline:
    the exact map there is the hair's) at least `silhouette_reach` + 1 cells from their edge (the silhouette
    is resolved on its own):
      * where the map jumps (fold_cells), but not among the slivers the sliver filter removed from the
        triangles' `exact` map (fold_cells_kept);
      * and the `turned` cells (turned_cells; None: none), kept whatever the filter did: a turned-over
        triangle is a fold's hidden strip itself, a sliver by nature, that the filter always moves;
    but only where the `exact` map samples FOLD_EDGE_MARGIN cells or more inside the grid."""
    kernel = np.ones((2 * silhouette_reach + 3,) * 2, np.uint8)
    inside = cv2.erode(face_cover.view(np.uint8), kernel).view(bool)
    folds = fold_cells(face_field, inside, FOLD_JUMP)
    if folds.any():
        folds = fold_cells_kept(folds, exact, face_field, FOLD_KEPT)
    if turned is not None:
        folds |= turned & inside
    if folds.any():
        height, width = folds.shape
        source_x = exact[..., 0] + np.arange(width, dtype=np.float32)[None, :]
        source_y = exact[..., 1] + np.arange(height, dtype=np.float32)[:, None]
        folds &= ((source_x >= FOLD_EDGE_MARGIN) & (source_x <= width - 1 - FOLD_EDGE_MARGIN)
                  & (source_y >= FOLD_EDGE_MARGIN) & (source_y <= height - 1 - FOLD_EDGE_MARGIN))
    return folds


def inner_triangles(triangles: np.ndarray, landmark_count: int, oval: list[int]) -> np.ndarray:
    """The `triangles` ((T, 3) indices into control points whose first `landmark_count` are landmarks) whose
    turning over is a fold's (for turned_cells): those of landmarks only, none on the face's `oval` (their
    indices). Along the outline, triangles of the oval and the skin ring beyond it turn over into slivers
    that the outline's own filter removes; redrawn from the exact map they cut hard streaks of hair into
    the near cheek of a head turned 30 degrees or more."""
    inner = (triangles < landmark_count).all(axis=1) & ~np.isin(triangles, oval).any(axis=1)
    return triangles[inner]


def turned_cells(still: np.ndarray, moved: np.ndarray, triangles: np.ndarray, shape: tuple[int, int]) -> np.ndarray | None:
    """(h, w) bool (`shape`) working pixels under the `triangles` ((T, 3) indices into the points) that the
    frame turns over, their signed area's sign in `moved` ((N, 2+) working pixels) other than in `still`,
    and TURNED_REACH cells around them; None when no triangle turns over."""
    turned = triangles[signed_areas(still, triangles) * signed_areas(moved, triangles) < 0]
    if not len(turned):
        return None
    cells = np.zeros(shape, np.uint8)
    # (fillConvexPoly marks the cells its edges pass through: a triangle turned nearly flat covers no cell's
    # centre, yet its strip shows.)
    for corners in np.round(moved[turned, :2] * 16).astype(np.int32):  # (4 bits of sub-pixel precision)
        cv2.fillConvexPoly(cells, corners, 1, cv2.LINE_8, 4)
    return cv2.dilate(cells, np.ones((2 * TURNED_REACH + 1,) * 2, np.uint8)).view(bool)


def fold_cells(displacement: np.ndarray, inside: np.ndarray, jump: float) -> np.ndarray:
    """(h, w) bool: the working pixels of `inside` (a bool mask) whose displacement differs from a 4-neighbour's
    by more than `jump` (working pixels, in either component), and their 8 neighbours.

    Such a jump is a fold: where the face turns, the nose moves over the far cheek and hides the strip of
    photo between them. A map interpolated across the jump samples that hidden strip (the side of the nose,
    dark): a thin, stepped line along the fold. A smooth map, however strongly it stretches, differs
    between neighbours by a fraction of a pixel."""
    across = np.abs(np.diff(displacement, axis=1))
    down = np.abs(np.diff(displacement, axis=0))
    jumps_across = np.maximum(across[..., 0], across[..., 1]) > jump
    jumps_down = np.maximum(down[..., 0], down[..., 1]) > jump
    cells = np.zeros(displacement.shape[:2], bool)
    cells[:, 1:] |= jumps_across
    cells[:, :-1] |= jumps_across
    cells[1:] |= jumps_down
    cells[:-1] |= jumps_down
    cells &= inside
    if not cells.any():
        return cells
    return cv2.dilate(cells.view(np.uint8), np.ones((3, 3), np.uint8)).view(bool)


def fold_cells_kept(folds: np.ndarray, exact: np.ndarray, filtered: np.ndarray, kept: float) -> np.ndarray:
    """`folds` (fold_cells; a copy) without the folds among slivers a filter removed: near a turned face's
    outline thin triangles are squeezed into slivers whose maps reach far across the photo, and the warp
    engine's median (`filtered`, from the triangles' `exact` map) removes them; there the exact map would
    bring them back as blocks of hair. A fold is dropped when the filter moved the map around it (within
    SLIVER_AROUND cells) by `kept` or more at the 90th percentile. (A median keeps a fold's step: a turned
    nose near the far outline moves a little and stays.)"""
    folds = folds.copy()
    changed = np.abs(filtered - exact)
    changed = np.maximum(changed[..., 0], changed[..., 1])
    reach = SLIVER_AROUND
    count, labels, stats, _ = cv2.connectedComponentsWithStats(folds.view(np.uint8), connectivity=8)
    for label, (x, y, width, height) in enumerate(stats[1:, :4], start=1):
        window = (slice(max(y - reach, 0), y + height + reach), slice(max(x - reach, 0), x + width + reach))
        fold = labels[window] == label
        around = cv2.dilate(fold.view(np.uint8), np.ones((2 * reach + 1,) * 2, np.uint8)).view(bool)
        if np.percentile(changed[window][around], 90) >= kept:
            folds[window] &= ~fold
    return folds


def draw_folds(region: np.ndarray, texture: np.ndarray, box: tuple[int, int, int, int], folds: np.ndarray | None,
               scale: float, target: np.ndarray, source: np.ndarray, triangles: np.ndarray, in_front: np.ndarray,
               fade: float, samples: int = FOLD_SAMPLES) -> np.ndarray | None:
    """Redraw, in place in `region` (the warped `box` of `texture`, region pixels), the pixels whose nearest
    working pixel is one of the `folds` cells (face_folds; None: none; `scale` working pixels per pixel): each the mean
    of samples² samples of `texture` through the exact map of the mesh (`target` and `source` (N, 2+) region
    pixels, `triangles`, `in_front` as piecewise_affine_displacement's). One sample a pixel would still
    draw the nose's squeezed side as a jagged line a pixel wide, and the nose's edge across the far eye's
    corner as a polygon's, cut sharp. Averaged, and blurred first over `fade` pixels (a Gaussian of half that
    width), the fold's edge goes from one surface to the other over `fade` pixels, as a photo's edges do.
    Returns which of the box's pixels it redrew ((box h, box w) bool; None: none)."""
    if folds is None or not folds.any():
        return None
    bx0, by0, bx1, by1 = box
    drawn_pixels = np.zeros((by1 - by0, bx1 - bx0), bool)
    k = samples
    pad = int(np.ceil(fade)) + 1  # pixels around a fold's window that its blur reads
    # The mesh in sample units: sample (i, j) of pixel p sits at k p + i + (1 - k) / 2 of them.
    scaled = np.array(target, np.float64, copy=True)
    scaled[:, :2] *= k
    affines, usable = triangle_affines(scaled, source, triangles)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(folds.view(np.uint8), connectivity=8)
    for label in range(1, count):
        cx, cy, cw, ch = stats[label, :4]
        # The pixels whose nearest working pixel is one of the fold's (pixel p's is round((p + 0.5) * scale - 0.5)).
        wx0, wy0 = (max(b, int(np.ceil(c / scale - 0.5))) for b, c in ((bx0, cx), (by0, cy)))
        wx1, wy1 = (min(b, int(np.ceil(c / scale - 0.5))) for b, c in ((bx1, cx + cw), (by1, cy + ch)))
        if wx1 <= wx0 or wy1 <= wy0:
            continue
        px0, py0, px1, py1 = max(wx0 - pad, bx0), max(wy0 - pad, by0), min(wx1 + pad, bx1), min(wy1 + pad, by1)
        offset = (k * px0 + (1 - k) / 2, k * py0 + (1 - k) / 2)
        size = (k * (px1 - px0), k * (py1 - py0))
        where_from = piecewise_affine_displacement(scaled, triangles, affines, usable, size, offset, in_front=in_front)
        where_from += np.dstack(np.meshgrid(np.arange(size[0], dtype=np.float32) + np.float32(offset[0]),
                                            np.arange(size[1], dtype=np.float32) + np.float32(offset[1])))
        sampled = cv2.remap(texture, where_from, None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        sampled = cv2.GaussianBlur(sampled, (0, 0), k * fade / 2)
        drawn = cv2.resize(sampled, (px1 - px0, py1 - py0), interpolation=cv2.INTER_AREA)
        drawn = np.ascontiguousarray(drawn[wy0 - py0:wy1 - py0, wx0 - px0:wx1 - px0])
        cell_x = np.clip(np.rint((np.arange(wx0, wx1) + 0.5) * scale - 0.5).astype(int), cx, cx + cw - 1)
        cell_y = np.clip(np.rint((np.arange(wy0, wy1) + 0.5) * scale - 0.5).astype(int), cy, cy + ch - 1)
        in_fold = labels[cell_y[:, None], cell_x[None, :]] == label
        # Faded in over the fold's outer FOLD_FEATHER pixels, where the exact map may differ from the engine's
        # around it (a map the sliver filter moved a little): no step at the edge of what is redrawn.
        # (Bordered with zeros: the fold ends at its window's edge, and distanceTransform counts beyond it as far.)
        bordered = cv2.copyMakeBorder(in_fold.view(np.uint8), 1, 1, 1, 1, cv2.BORDER_CONSTANT, value=0)
        weight = np.minimum(cv2.distanceTransform(bordered, cv2.DIST_L2, 3)[1:-1, 1:-1] / (FOLD_FEATHER + 1), 1.0)
        window = region[wy0 - by0:wy1 - by0, wx0 - bx0:wx1 - bx0]
        window[...] = np.clip(window + weight[..., None] * (drawn.astype(np.float32) - window) + 0.5, 0, 255)
        drawn_pixels[wy0 - by0:wy1 - by0, wx0 - bx0:wx1 - bx0] |= in_fold
    return drawn_pixels


def soften_at_folds(coverage: np.ndarray, fold_pixels: np.ndarray | None, window: tuple[int, int, int, int]) -> np.ndarray:
    """`coverage` ((h, w) float32, 0..1: how much of each pixel of `window` (x0, y0, x1, y1 of the box) a
    layer drawn over the frame covers, read pixel by pixel through the map) with its edge anti-aliased where
    it runs along a fold (`fold_pixels`: draw_folds' answer, None: none): read once a pixel, the nose's edge
    across the far eye's corner cut the iris drawn there into a hard, stepped line. There it is the mean
    over the pixel and its 8 neighbours, a ramp two pixels wide."""
    if fold_pixels is None:
        return coverage
    x0, y0, x1, y1 = window
    fold_pixels = fold_pixels[y0:y1, x0:x1]
    if not fold_pixels.any():
        return coverage
    softened = coverage.copy()
    cv2.copyTo(cv2.blur(coverage, (3, 3), borderType=cv2.BORDER_REPLICATE), fold_pixels.view(np.uint8), softened)
    return softened
