"""The warp mesh drawn into a pixel grid: which triangle covers each pixel, and the backward displacement
that triangle's affine map gives there.

These two loops run for every face on every frame (the frame's working grid, and the eyes' and mouth's
exact windows at full resolution). Drawn one triangle at a time through OpenCV's fillConvexPoly they
were a fifth of a frame's time, most of it the thousand calls from Python; compiled by Numba they are
a few tenths of a millisecond. Numba compiles them on first use and caches the machine code (compiled.py
says where), so only the first run of a new build pays for it.

Pixel (x, y) is the point (x, y) + offset; a triangle covers the pixels whose centres lie inside it
widened by half a pixel across each edge (along whichever of x and y the edge is the steeper in), as
OpenCV's fillConvexPoly drew it (a whole mesh covers the same pixels; a lone triangle within a pixel or two
of them). So no pixel between two triangles of a mesh is left uncovered, and a sliver thinner than a pixel
still draws its pixels, which displacement_from_index maps from inside the sliver.
"""
from __future__ import annotations

import math

import numpy as np

from .compiled import compiled

CORNER_STEPS = 16.0  # corners are placed to a sixteenth of a pixel, as OpenCV's fillConvexPoly (shift 4) placed them


@compiled(inline="always")
def _edge(xa: float, ya: float, xb: float, yb: float, sign: float) -> tuple[float, float, float]:
    """(a, b, c) of the edge from a to b: a x + b y + c >= 0 on the triangle's side, half a pixel beyond it."""
    a = -(yb - ya) * sign
    b = (xb - xa) * sign
    return a, b, -(a * xa + b * ya) + 0.5 * max(abs(a), abs(b))


@compiled(inline="always")
def _clip_span(a: float, b: float, c: float, y: int, first: int, last: int) -> tuple[int, int]:
    """The span [first, last] of row y cut to where a x + b y + c >= 0."""
    rest = b * y + c
    if a > 0.0:
        first = max(first, math.ceil(-rest / a))
    elif a < 0.0:
        last = min(last, math.floor(-rest / a))
    elif rest < 0.0:
        last = first - 1
    return first, last


@compiled()
def _draw_triangle(index_image: np.ndarray, value: int, x0: float, y0: float, x1: float, y1: float,
                   x2: float, y2: float) -> None:
    height, width = index_image.shape
    area = (x1 - x0) * (y2 - y0) - (y1 - y0) * (x2 - x0)
    if area == 0.0:
        return
    sign = 1.0 if area > 0.0 else -1.0
    a0, b0, c0 = _edge(x0, y0, x1, y1, sign)
    a1, b1, c1 = _edge(x1, y1, x2, y2, sign)
    a2, b2, c2 = _edge(x2, y2, x0, y0, sign)
    # The box of pixel centres within half a pixel of the corners.
    left = max(math.floor(min(x0, x1, x2) - 0.5) + 1, 0)
    right = min(math.floor(max(x0, x1, x2) + 0.5), width - 1)
    top = max(math.floor(min(y0, y1, y2) - 0.5) + 1, 0)
    bottom = min(math.floor(max(y0, y1, y2) + 0.5), height - 1)
    for y in range(top, bottom + 1):
        first, last = _clip_span(a0, b0, c0, y, left, right)
        first, last = _clip_span(a1, b1, c1, y, first, last)
        first, last = _clip_span(a2, b2, c2, y, first, last)
        for x in range(first, last + 1):
            index_image[y, x] = value


@compiled()
def triangle_index_image(target: np.ndarray, triangles: np.ndarray, drawn: np.ndarray, in_front: np.ndarray,
                         offset_x: float, offset_y: float, width: int, height: int) -> np.ndarray:
    """(height, width) int32: which of the `drawn` triangles covers each pixel (-1: none). `target` (N, 3)
    float64 points, x and y in pixels and z depth (larger is farther); triangles are drawn far to near (by
    their corners' mean depth, ties in the order given), those `in_front` after all others, so where the
    mesh folds over itself the nearer surface wins."""
    index_image = np.full((height, width), -1, np.int32)
    far_first = np.empty(len(triangles))
    candidates = np.empty(len(triangles), np.int64)
    count = 0
    for t in range(len(triangles)):
        if not drawn[t]:
            continue
        i, j, k = triangles[t, 0], triangles[t, 1], triangles[t, 2]
        if (max(target[i, 0], target[j, 0], target[k, 0]) - offset_x < 0.0
                or max(target[i, 1], target[j, 1], target[k, 1]) - offset_y < 0.0
                or min(target[i, 0], target[j, 0], target[k, 0]) - offset_x >= width
                or min(target[i, 1], target[j, 1], target[k, 1]) - offset_y >= height):
            continue
        depth = (target[i, 2] + target[j, 2] + target[k, 2]) / 3.0
        far_first[count] = -depth + (1e9 if in_front[t] else 0.0)
        candidates[count] = t
        count += 1
    order = candidates[:count][np.argsort(far_first[:count], kind="mergesort")]
    for t in order:
        i, j, k = triangles[t, 0], triangles[t, 1], triangles[t, 2]
        _draw_triangle(index_image, t, _on_grid(target[i, 0] - offset_x), _on_grid(target[i, 1] - offset_y),
                       _on_grid(target[j, 0] - offset_x), _on_grid(target[j, 1] - offset_y),
                       _on_grid(target[k, 0] - offset_x), _on_grid(target[k, 1] - offset_y))
    return index_image


@compiled(inline="always")
def _on_grid(value: float) -> float:
    """`value` rounded to a sixteenth of a pixel. The same mesh then draws the same pixels even where a
    corner's last bits differ (as numpy's sums do between processes whose BLAS runs on other thread counts),
    and a pixel centre on an edge shared by two triangles is decided exactly."""
    return math.floor(value * CORNER_STEPS + 0.5) / CORNER_STEPS


@compiled()
def displacement_from_index(index_image: np.ndarray, target: np.ndarray, triangles: np.ndarray,
                            affines: np.ndarray, slivers: np.ndarray, offset_x: float, offset_y: float) -> np.ndarray:
    """(height, width, 2) float32 backward displacement (source position minus pixel position): each pixel
    mapped by its triangle's affine ((T, 2, 3)), 0 where no triangle covers it. A pixel drawn for one of the
    `slivers` is mapped as the point of its triangle nearest it is (barycentric coordinates clamped to the
    triangle): the rasteriser draws pixels up to half a pixel outside a triangle's edge, and a sliver's map,
    stretching several times back to the photo, would land them that many pixels outside its source."""
    height, width = index_image.shape
    displacement = np.zeros((height, width, 2), np.float32)
    for row in range(height):
        y = row + offset_y
        for col in range(width):
            t = index_image[row, col]
            if t < 0:
                continue
            x = col + offset_x
            px, py = x, y
            if slivers[t]:
                i, j, k = triangles[t, 0], triangles[t, 1], triangles[t, 2]
                ax, ay = target[j, 0] - target[i, 0], target[j, 1] - target[i, 1]
                bx, by = target[k, 0] - target[i, 0], target[k, 1] - target[i, 1]
                dx, dy = x - target[i, 0], y - target[i, 1]
                det = ax * by - ay * bx  # drawn triangles are not degenerate (triangle_affines' `usable`)
                towards_b, towards_c = (dx * by - dy * bx) / det, (ax * dy - ay * dx) / det  # barycentric
                weight_a = max(1.0 - towards_b - towards_c, 0.0)
                weight_b, weight_c = max(towards_b, 0.0), max(towards_c, 0.0)
                total = weight_a + weight_b + weight_c
                px = (weight_a * target[i, 0] + weight_b * target[j, 0] + weight_c * target[k, 0]) / total
                py = (weight_a * target[i, 1] + weight_b * target[j, 1] + weight_c * target[k, 1]) / total
            displacement[row, col, 0] = affines[t, 0, 0] * px + affines[t, 0, 1] * py + affines[t, 0, 2] - x
            displacement[row, col, 1] = affines[t, 1, 0] * px + affines[t, 1, 1] * py + affines[t, 1, 2] - y
    return displacement
