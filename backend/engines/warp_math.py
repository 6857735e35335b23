"""The warp engine's pure functions: the landmark mesh, piecewise-affine maps
between meshes, the triangle index image and the displacement it gives, the
face edge's smoothing, and masks. numpy, OpenCV, the mesh libraries and the
Numba-compiled loops of `raster` only: no state, no I/O."""
from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np
import pythoncdt
from scipy.interpolate import make_interp_spline
from scipy.spatial import Delaunay

from .. import landmarks as lm
from ..geometry import inside_polygon
from . import raster
from .palette import LUMA

# The photo's pixels are resampled bicubically wherever a head or body moves them (their masks bilinearly).
# A bilinear sample half a pixel off averages two pixels: a breath lifting a head by half a pixel, then
# the head's own turn, took a small face's fine detail (a 26 px face of 2007_007763: the mean Laplacian
# 35.7 in the photo, 18.2 in an idle frame, 27.9 bicubic), and idle loops pulsed from sharp to soft. The
# whole body is bicubic, not just its head: the step in sharpness at the head's box threw body capture off.
TEXTURE_INTERPOLATION = cv2.INTER_CUBIC
MEDIAN_SIDE = 5  # working pixels
MEDIAN_PASSES = 2
# working pixels: the face/background ordering is smoothed this much before upsampling. Its outline is a
# staircase of working pixels, with spikes a cell or two long where the moved mesh folds at the far cheek;
# after a Gaussian of 1, a nearly vertical outline (one cell over every 8 rows) still wiggled 0.52 cells and
# a spike two cells square bulged 1.37 (2.5: 0.10 and 0.60).
SILHOUETTE_SOFTNESS = 2.5
MESH_OPEN_LIPS = 0.05  # the mesh keeps the inner lips as edges where the photo's lips are this far apart (mouth widths)
MESH_OPEN_EYE = 0.11  # ... and an eye's lids where its eye aspect ratio is over this (every evaluation face's lids
#   keep the edges they had when the ratio was read between slanted pairs, which reads higher, against 0.12)
SLIVER_STRETCH = 2.0  # a triangle mapped back to the photo this many times larger counts as a sliver
LID_LIGHT = 0.5  # how far the middle of a closed upper lid is pulled toward the brighter skin around the eye
# A closed eye's lash line (closed_lash_line): (sigma across the lids in eye widths, how far its middle is
# drawn toward the lashes' colour) of the line itself and of the shade around it.
CLOSED_LASH_CORE = (0.025, 0.75)
CLOSED_LASH_SHADE = (0.07, 0.3)
CLOSED_LASH_BELOW = 0.02  # eye widths: how far below the lids' meeting line its middle lies
CLOSED_LASH_FULL_EYE = 24.0  # pixels: a smaller eye's line is drawn lighter, in proportion
LASH_REACH = 0.25  # eye widths above an open upper lid where its lashes are looked for ...
LASH_CONTRAST = 15.0  # ... as strokes this much darker (luma) than what lies around them ...
LASH_STROKE = 0.12  # ... and at most this wide (eye widths) ...
LASH_EYE = 28.0  # ... on an eye at least this wide (pixels)
WING_REACH = 0.3  # eye widths around a closing eye's corners where lashes or liner running on from it are looked for


def mesh_points(landmarks: np.ndarray) -> np.ndarray:
    """The landmarks (indices) a face's mesh is made of: all but
    - the irises: the mesh would stretch them into chevrons between the eye's corners (the warp moves the
      eyeball with the eye and draws the iris over it as a disc);
    - points MediaPipe puts inside the lips' outline, other than the lips' own rings: on a wide-open mouth
      its chin points (18, 83, 200, ...) fall on the lower lip, some inside the mouth, and the mesh folded
      there as the lips closed (grey fangs hanging from d19's and d9's lower lips)."""
    keep = np.ones(len(landmarks), dtype=bool)
    keep[list(lm.RIGHT_IRIS + lm.LEFT_IRIS)] = False
    lips = landmarks[list(lm.LIPS_UPPER_OUTER + lm.LIPS_LOWER_OUTER[::-1])]
    rings = np.zeros(len(landmarks), dtype=bool)
    rings[[i for ring in lm.LIPS_UPPER_RINGS + lm.LIPS_LOWER_RINGS for i in ring]] = True
    keep &= rings | ~inside_polygon(landmarks, lips)
    return np.flatnonzero(keep)


def mesh_contours(landmarks: np.ndarray) -> list[tuple[int, ...]]:
    """The landmark paths a face's mesh keeps as edges (constrained_triangulation): the outer lips, and the
    inner lips and each eye's lids where the photo shows them open. (Lips or lids that touch run along each
    other: keeping both as edges makes slivers that fold at the slightest move.)"""
    contours = [lm.LIPS_UPPER_OUTER, lm.LIPS_LOWER_OUTER]
    if lm.signed_lip_gap(landmarks) > MESH_OPEN_LIPS:
        contours += [lm.LIPS_UPPER_INNER, lm.LIPS_LOWER_INNER]
    for side, upper, lower in (("left", lm.LEFT_EYE_UPPER, lm.LEFT_EYE_LOWER), ("right", lm.RIGHT_EYE_UPPER, lm.RIGHT_EYE_LOWER)):
        if lm.eye_aspect_ratio(landmarks, side) > MESH_OPEN_EYE:
            contours += [upper, lower]
    return contours


def constrained_triangulation(points: np.ndarray, contours: Sequence[Sequence[int]]) -> np.ndarray:
    """(M, 3) int32 triangles of `points` ((N, 2)): Delaunay, except that every segment of `contours`
    (paths of point indices: lips, lids) is an edge.

    A plain Delaunay mesh of a face's landmarks joins points across those
    contours wherever it likes (on an open mouth, about a third of the inner
    lips' segments are no edge): a triangle then holds teeth or throat at one
    corner and lip at another, and moving the lips drags one over the other
    (teeth hanging over a closing lip, flecks of cavity on sealed lips). A
    segment that crosses another is left out (a photo's closed lips can
    cross by a fraction of a pixel); if the constrained mesh still cannot be
    made, the plain Delaunay one is returned.
    """
    points = np.asarray(points, np.float64)[:, :2]
    segments = _uncrossed_segments(points, [(a, b) for path in contours for a, b in zip(path, path[1:]) if a != b])
    # Exact duplicates (two points clipped onto the same border pixel) are told apart by a hair.
    unique = points.copy()
    seen: dict[tuple[float, float], int] = {}
    for index, point in enumerate(map(tuple, points)):
        unique[index] += seen.get(point, 0) * 1e-6
        seen[point] = seen.get(point, 0) + 1
    try:
        mesh = pythoncdt.Triangulation(pythoncdt.VertexInsertionOrder.AUTO,
                                       pythoncdt.IntersectingConstraintEdges.NOT_ALLOWED, 0.0)
        mesh.insert_vertices(unique)
        if segments:
            mesh.insert_edges(np.array(segments, np.uint32))
        mesh.erase_super_triangle()
        if mesh.vertices_count() == len(points):
            return mesh.triangles_array()["vertices"].astype(np.int32)
    except RuntimeError:
        pass
    return Delaunay(points, qhull_options="QJ Pp").simplices.astype(np.int32)


def _uncrossed_segments(points: np.ndarray, segments: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """`segments` without those that properly cross one kept before them (sharing an end is not crossing)."""
    kept: list[tuple[int, int]] = []

    def side(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> float:
        return float((b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0]))

    for a, b in dict.fromkeys(tuple(sorted(segment)) for segment in segments):
        p, q = points[a], points[b]
        crosses = False
        for c, d in kept:
            if len({a, b, c, d}) < 4:
                continue
            r, s = points[c], points[d]
            if side(p, q, r) * side(p, q, s) < 0 and side(r, s, p) * side(r, s, q) < 0:
                crosses = True
                break
        if not crosses:
            kept.append((a, b))
    return kept


def triangle_affines(target: np.ndarray, source: np.ndarray, triangles: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per triangle, the affine map from its target corners back to its source corners.

    Returns (affines (T, 2, 3), usable (T,) False for degenerate target triangles).
    """
    # Closed form, written out element by element: numpy's batched solve (or einsum) costs milliseconds per frame here.
    corners_target, corners_source = target[triangles, :2], source[triangles, :2]
    edges_target = corners_target[:, 1:] - corners_target[:, :1]  # (T, 2 edges, 2)
    edges_source = corners_source[:, 1:] - corners_source[:, :1]
    (ax, ay), (bx, by) = edges_target[:, 0].T, edges_target[:, 1].T  # target edges a and b
    det = ax * by - ay * bx
    usable = np.abs(det) > 1e-6
    safe = np.where(usable, det, 1.0)
    # E = [a b] (edges as columns), E^-1 = [[by, -bx], [-ay, ax]] / det; the linear part is F E^-1, F = [f g].
    inverse_00, inverse_01, inverse_10, inverse_11 = by / safe, -bx / safe, -ay / safe, ax / safe
    (fx, fy), (gx, gy) = edges_source[:, 0].T, edges_source[:, 1].T
    affines = np.empty((len(triangles), 2, 3))
    affines[:, 0, 0] = fx * inverse_00 + gx * inverse_10
    affines[:, 0, 1] = fx * inverse_01 + gx * inverse_11
    affines[:, 1, 0] = fy * inverse_00 + gy * inverse_10
    affines[:, 1, 1] = fy * inverse_01 + gy * inverse_11
    origin_x, origin_y = corners_target[:, 0].T
    affines[:, 0, 2] = corners_source[:, 0, 0] - (affines[:, 0, 0] * origin_x + affines[:, 0, 1] * origin_y)
    affines[:, 1, 2] = corners_source[:, 0, 1] - (affines[:, 1, 0] * origin_x + affines[:, 1, 1] * origin_y)
    affines[~usable] = 0.0
    return affines, usable


def piecewise_affine_displacement(target: np.ndarray, triangles: np.ndarray, affines: np.ndarray, usable: np.ndarray,
                                  size: tuple[int, int], offset: tuple[float, float] = (0.0, 0.0),
                                  in_front: np.ndarray | None = None) -> np.ndarray:
    """Backward displacement over a (width, height) pixel grid whose top-left pixel sits at `offset`.

    `target` holds (N, 3) points (x, y in the same pixels as `affines`, z depth:
    larger is farther). Triangles are drawn far to near into an index image,
    so where the moved mesh folds over itself the nearer surface wins; triangles
    flagged `in_front` are drawn after all others whatever their depth. Returns
    (height, width, 2): source position minus pixel position; 0 where no
    triangle covers a pixel.
    """
    index_image = triangle_index_image(target, triangles, usable, size, offset, in_front)
    return displacement_from_index(index_image, target, triangles, affines, offset)


def triangle_index_image(target: np.ndarray, triangles: np.ndarray, drawn: np.ndarray, size: tuple[int, int],
                         offset: tuple[float, float] = (0.0, 0.0), in_front: np.ndarray | None = None) -> np.ndarray:
    """(height, width) int32: which of the `drawn` triangles covers each pixel (-1: none), nearest on top
    (see piecewise_affine_displacement; drawn by raster.triangle_index_image)."""
    width, height = size
    in_front = np.zeros(len(triangles), bool) if in_front is None else in_front
    return raster.triangle_index_image(np.ascontiguousarray(target, np.float64), np.ascontiguousarray(triangles),
                                       np.ascontiguousarray(drawn, bool), np.ascontiguousarray(in_front, bool),
                                       float(offset[0]), float(offset[1]), int(width), int(height))


def displacement_from_index(index_image: np.ndarray, target: np.ndarray, triangles: np.ndarray, affines: np.ndarray,
                            offset: tuple[float, float] = (0.0, 0.0)) -> np.ndarray:
    """(height, width, 2) float32 backward displacement: each pixel mapped by its triangle's affine (0 where
    index is -1), a sliver's pixels as the nearest point of the sliver is (raster.displacement_from_index).

    A triangle squashed to a sliver (lips pressed thin, a lid closing) stretches by several times back to the
    photo: its affine map, evaluated at a pixel the rasteriser drew just outside the sliver's true edge,
    lands that many pixels outside its source triangle (in the mouth's cavity, above a thin lip: a dotted
    dark line along the lip). Triangles that stretch less than SLIVER_STRETCH are mapped as they are: a
    pixel outside them lands at most a pixel or so outside, where the neighbour's map continues."""
    linear = affines[:, :, :2]
    squares = (linear**2).sum(axis=(1, 2))
    det = linear[:, 0, 0] * linear[:, 1, 1] - linear[:, 0, 1] * linear[:, 1, 0]
    stretch = np.sqrt(0.5 * (squares + np.sqrt(np.maximum(squares**2 - 4 * det**2, 0.0))))  # largest singular value
    return raster.displacement_from_index(index_image, np.ascontiguousarray(target, np.float64),
                                          np.ascontiguousarray(triangles), np.ascontiguousarray(affines, np.float64),
                                          stretch > SLIVER_STRETCH, float(offset[0]), float(offset[1]))


def signed_areas(points: np.ndarray, triangles: np.ndarray) -> np.ndarray:
    """(T,) each triangle's area over `points` ((N, 2+)), its sign its orientation: a turned-over triangle's
    sign flips."""
    a, b, c = (points[triangles[:, k], :2] for k in range(3))
    return 0.5 * ((b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (b[:, 1] - a[:, 1]) * (c[:, 0] - a[:, 0]))


def upsampled_to_box(values: np.ndarray, scale: float, box: tuple[int, int, int, int], stride: int = 1) -> np.ndarray:
    """`values` on a working grid (`scale` working pixels a pixel; every `stride`-th working pixel each way)
    sampled bilinearly at the centres of the pixels of `box` (x0, y0, x1, y1): pixel p's working position is
    (p + 0.5) scale - 0.5. Beyond the grid's edge, its edge."""
    bx0, by0, bx1, by1 = box
    if stride == 1:
        # OpenCV's resize by a factor 1 / scale samples output pixel p at exactly that position, from the grid's
        # top left on (its warpAffine rounds positions to 1/32 of a working pixel, and took 3-5 times as long).
        # The grid's end is cut or padded to what the box reaches: neither moves a sample before it.
        need_x, need_y = (int(np.ceil((end + 0.5) * scale)) + 2 for end in (bx1, by1))
        grid = values[:need_y, :need_x]
        pad_y, pad_x = max(0, need_y - grid.shape[0]), max(0, need_x - grid.shape[1])
        if pad_x or pad_y:
            grid = cv2.copyMakeBorder(grid, 0, pad_y, 0, pad_x, cv2.BORDER_REPLICATE)
        upsampled = cv2.resize(grid, None, fx=1 / scale, fy=1 / scale, interpolation=cv2.INTER_LINEAR)
        return upsampled[by0:by1, bx0:bx1]
    # A strided grid's points sit at working pixels 0, stride, 2 stride ...: pixel p falls at ((p + 0.5) scale
    # - 0.5) / stride of it, which no resize factor gives (its offset is not the grid's -0.5), so it keeps warpAffine.
    to_work = np.array([[scale, 0, (bx0 + 0.5) * scale - 0.5], [0, scale, (by0 + 0.5) * scale - 0.5]]) / stride
    return cv2.warpAffine(values, to_work, (bx1 - bx0, by1 - by0), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                          borderMode=cv2.BORDER_REPLICATE)


REMAP_ROW = 16384  # OpenCV's remap takes maps under 32767 pixels a side: scattered points go in rows this long


def sample_at(image: np.ndarray, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """`image` sampled bilinearly (edges replicated) at the points (xs, ys), flat float arrays of any length:
    (N,) or (N, channels)."""
    count = len(xs)
    rows = max(1, -(-count // REMAP_ROW))
    width = min(max(count, 1), REMAP_ROW)
    grid_x = np.zeros(rows * width, np.float32)
    grid_y = np.zeros(rows * width, np.float32)
    grid_x[:count], grid_y[:count] = xs, ys
    sampled = cv2.remap(image, grid_x.reshape(rows, width), grid_y.reshape(rows, width), cv2.INTER_LINEAR,
                        borderMode=cv2.BORDER_REPLICATE)
    return sampled.reshape((rows * width,) + sampled.shape[2:])[:count]


def pixels_of_cells(cells_y: np.ndarray, cells_x: np.ndarray, scale: float,
                    box: tuple[int, int, int, int]) -> tuple[np.ndarray, np.ndarray]:
    """The full-resolution pixels (rows, columns relative to `box`) whose nearest working pixel is one of the
    cells (`scale` working pixels per full-resolution pixel); each pixel once, in no particular order."""
    bx0, by0, bx1, by1 = box

    def span(cells: np.ndarray, origin: int, size: int) -> tuple[np.ndarray, np.ndarray]:
        # Pixel p belongs to cell round((origin + p + 0.5) * scale - 0.5).
        first = np.ceil(cells / scale - 0.5 - origin).astype(int)
        last = np.ceil((cells + 1) / scale - 0.5 - origin).astype(int)  # exclusive
        offsets = np.arange(int(np.ceil(1 / scale)) + 1)
        pixels = first[:, None] + offsets[None, :]
        return pixels, (pixels < last[:, None]) & (pixels >= 0) & (pixels < size)

    rows, row_ok = span(cells_y, by0, by1 - by0)
    cols, col_ok = span(cells_x, bx0, bx1 - bx0)
    keep = row_ok[:, :, None] & col_ok[:, None, :]
    rows = np.broadcast_to(rows[:, :, None], keep.shape)[keep]
    cols = np.broadcast_to(cols[:, None, :], keep.shape)[keep]
    return rows, cols


def smooth_face_edge(displacement: np.ndarray, face: np.ndarray, sigma: float, band: float, edge_sigma: float = 0.0,
                     edge_band: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """The face's displacement with its slivers removed, and extrapolated a little past its outline.

    Near the outline the face surface is at a grazing angle: a head turn
    squeezes some of its thin triangles into slivers (the landmarks' depths
    are noisy there) whose maps reach far across the source, and the photo's
    hair and skin edge come out as teeth along the outline. A median over
    MEDIAN_SIDE pixels of each component removes features that thin while it
    keeps a smooth (locally linear) map as it is, and keeps a fold's edge
    (the nose over the far cheek) sharp. It never mixes in the background's
    displacement: outside the face the field is the face's own, extrapolated
    by a normalised Gaussian average (`sigma` pixels), which also serves to
    anti-alias the face's silhouette.

    Within `edge_band` of the outline the map is also smoothed by a normalised
    Gaussian (`edge_sigma`): on a turn the far cheek's landmarks overtake the
    face oval and the mesh folds there, and its piecewise-affine map bends the
    skin's edge and the strands over it into a zigzag the size of a triangle.
    The band is kept narrow so the nose's fold stays sharp.

    Returns (the face layer's (H, W, 2) field, (H, W) bool where that field is defined).
    """
    field = displacement.astype(np.float32, copy=True)
    defined = np.zeros(face.shape, bool)
    rows, cols = np.flatnonzero(face.any(axis=1)), np.flatnonzero(face.any(axis=0))
    if len(rows) == 0:
        return field, defined
    # Only around the face (the Gaussian's reach beyond it) does anything change: work on that crop.
    margin = int(np.ceil(4 * sigma)) + 1
    crop = (slice(max(rows[0] - margin, 0), rows[-1] + margin + 1), slice(max(cols[0] - margin, 0), cols[-1] + margin + 1))
    face, displacement = face[crop], displacement[crop]
    inside = face.astype(np.float32)
    face_u8 = face.view(np.uint8)  # (OpenCV's masked copies are several times faster than numpy's where here)
    face_only = np.zeros_like(displacement)
    cv2.copyTo(displacement, face_u8, face_only)
    reach = cv2.GaussianBlur(inside, (0, 0), sigma)
    filled = cv2.GaussianBlur(face_only, (0, 0), sigma) / np.maximum(reach, 1e-6)[..., None]  # averaged outside
    cv2.copyTo(displacement, face_u8, filled)
    # Only within `band` of the outline: elsewhere the eyes' and mouth's thin features are the map's own.
    inward = cv2.distanceTransform(face.astype(np.uint8), cv2.DIST_L2, 3)  # distance to the outline, inside the face
    near_outline = inward < band
    for component in range(2):
        plane = np.ascontiguousarray(filled[..., component])
        for _ in range(MEDIAN_PASSES):
            plane = cv2.medianBlur(plane, MEDIAN_SIDE)
        filled[..., component] = np.where(near_outline, plane, filled[..., component])
    if edge_sigma > 0 and edge_band > 0:
        weight = cv2.GaussianBlur(inside, (0, 0), edge_sigma)
        face_only[:] = 0
        cv2.copyTo(filled, face_u8, face_only)
        smooth = cv2.GaussianBlur(face_only, (0, 0), edge_sigma) / np.maximum(weight, 1e-6)[..., None]
        cv2.copyTo(smooth, (face & (inward < edge_band)).view(np.uint8), filled)
    field[crop] = filled
    defined[crop] = reach > 0.02
    return field, defined


def fill_notches(face: np.ndarray, defined: np.ndarray, radius: float) -> np.ndarray:
    """`face` (a layer's coverage, bool) with the notches in its outline narrower than about twice `radius`
    pixels filled (a morphological closing), where the layer's extrapolated map is `defined`."""
    side = int(round(radius))
    if side < 1:
        return face
    rows, cols = np.flatnonzero(face.any(axis=1)), np.flatnonzero(face.any(axis=0))
    if len(rows) == 0:
        return face
    # A closing stays within the layer's bounding box: work on that crop, padded (nor must it grow at the border).
    crop = (slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1))
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * side + 1, 2 * side + 1))
    padded = np.pad(face[crop].astype(np.uint8), side + 1)
    closed = cv2.morphologyEx(padded, cv2.MORPH_CLOSE, kernel)[side + 1:-side - 1, side + 1:-side - 1].astype(bool)
    filled = face.copy()
    filled[crop] |= closed & defined[crop]
    return filled


def smooth_behind_face(displacement: np.ndarray, behind: np.ndarray, sigma: float, ramp: np.ndarray,
                       still: float) -> tuple[np.ndarray, np.ndarray]:
    """The map of everything behind the face (hair, ears, neck, backdrop) on its own, smoothed.

    `displacement` is the piecewise-affine map and `behind` the pixels where it
    is that of a triangle behind the face. Piecewise affine, the hair rings'
    large triangles bend every strand that crosses them into a zigzag, and on
    a turn the squeezed ones fold. Smoothed by a normalised Gaussian (`sigma`
    pixels; the face's hole does not pull it toward zero), strands bend in
    curves, and the map reaches a little under the face's edge, where the
    silhouette needs it. Toward the grid's border it fades back to the exact
    map by `ramp` ((H, W, 1), 0 on the border: border_ramp), which is the
    identity there, so the region pastes back without a seam. Displacements
    under `still` pixels count as none.

    Returns ((H, W, 2) float32 map, 0 where nothing lies behind the face; (H, W)
    float32 weight: the Gaussian's share of covered pixels, how far the map reaches).
    """
    weight = cv2.GaussianBlur(behind.astype(np.float32), (0, 0), sigma)
    field = np.zeros_like(displacement)
    cv2.copyTo(displacement, behind.view(np.uint8), field)
    # Only around what moves behind the face does the smoothing change anything: work on that crop.
    moves = behind & ((np.abs(displacement[..., 0]) > still) | (np.abs(displacement[..., 1]) > still))
    rows, cols = np.flatnonzero(moves.any(axis=1)), np.flatnonzero(moves.any(axis=0))
    if len(rows) == 0:
        return field, weight
    margin = int(np.ceil(3 * sigma)) + 1
    height, width = behind.shape
    y0, y1 = max(rows[0] - margin, 0), min(rows[-1] + margin + 1, height)
    x0, x1 = max(cols[0] - margin, 0), min(cols[-1] + margin + 1, width)
    exact = field[y0:y1, x0:x1].copy()
    field[y0:y1, x0:x1] = cv2.GaussianBlur(exact, (0, 0), sigma) / np.maximum(weight[y0:y1, x0:x1], 1e-6)[..., None]
    # The ramp is 1 beyond `margin` of the border: only four strips (top, bottom, then the sides between) blend.
    for ys, xs in ((slice(0, margin), slice(0, width)), (slice(height - margin, height), slice(0, width)),
                   (slice(margin, height - margin), slice(0, margin)),
                   (slice(margin, height - margin), slice(width - margin, width))):
        ys, xs = slice(max(ys.start, y0), min(ys.stop, y1)), slice(max(xs.start, x0), min(xs.stop, x1))
        if ys.start >= ys.stop or xs.start >= xs.stop:
            continue
        original = exact[ys.start - y0:ys.stop - y0, xs.start - x0:xs.stop - x0]
        field[ys, xs] = original + ramp[ys, xs] * (field[ys, xs] - original)
    return field, weight


def affine_fit(target: np.ndarray, source: np.ndarray) -> np.ndarray:
    """(2, 3) affine map taking points `target` ((N, 2)) to `source` ((N, 2)), fitted by least squares."""
    design = np.column_stack([np.asarray(target, np.float64), np.ones(len(target))])
    solution, *_ = np.linalg.lstsq(design, np.asarray(source, np.float64), rcond=None)
    return solution.T


def similarity_through(points: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """`points` ((N, 2)) moved by the similarity (turn, scale, shift) that takes their first and last to
    `ends` ((2, 2))."""
    z = points[:, 0] + 1j * points[:, 1]
    start, end = ends[0, 0] + 1j * ends[0, 1], ends[1, 0] + 1j * ends[1, 1]
    scale = (end - start) / (z[-1] - z[0]) if z[-1] != z[0] else 1.0
    moved = start + scale * (z - z[0])
    return np.column_stack([moved.real, moved.imag])


# A held face is still inside this share of its oval (inscribed in its detector box) and moves freely past
# this share: between the two the motion behind the moving face fades out, gently enough not to squeeze the
# hair between them into a smear across the still face's temple.
HELD_FACE_CORE, HELD_FACE_REACH = 0.8, 1.5


def faces_held_still(shape: tuple[int, int], boxes: Sequence[tuple[float, float, float, float]]) -> np.ndarray | None:
    """(H, W) float32 over a grid (`shape`): 1 inside HELD_FACE_CORE of the ovals inscribed in `boxes` (other
    faces' detector boxes, in grid pixels), fading to 0 at HELD_FACE_REACH of them; None where none reaches the
    grid. A face's motion is multiplied by 1 minus it behind the face (its hair and backdrop),
    so it leaves the other faces still: a neighbour's head rolling dragged and sheared the near cheek, eye and
    outline of a face beside it (2008_002506 at roll 15: 1,863 pixels of the still face over 20 levels)."""
    height, width = shape
    held = None
    for x0, y0, x1, y1 in boxes:
        cx, cy, rx, ry = (x0 + x1) / 2, (y0 + y1) / 2, (x1 - x0) / 2, (y1 - y0) / 2
        if rx <= 0 or ry <= 0:
            continue
        cols = ((np.arange(width, dtype=np.float32) - cx) / rx)[None, :]
        rows = ((np.arange(height, dtype=np.float32) - cy) / ry)[:, None]
        radius = np.sqrt(cols * cols + rows * rows)
        face = np.clip((HELD_FACE_REACH - radius) / (HELD_FACE_REACH - HELD_FACE_CORE), 0.0, 1.0)
        if face.any():
            held = face if held is None else np.maximum(held, face)
    return held


def layer_coverage(mask: np.ndarray) -> np.ndarray:
    """A soft (float32) version of a binary working-resolution layer mask whose 0.5 level, interpolated
    bilinearly at full resolution, is a smooth curve instead of the mask's working-pixel staircase."""
    return cv2.GaussianBlur(mask.astype(np.float32), (0, 0), SILHOUETTE_SOFTNESS)


def edge_coverage(soft: np.ndarray, scale: float, fade: float) -> np.ndarray:
    """How much of each full-resolution pixel a layer covers (0..1), from its layer_coverage interpolated at
    the pixels (`soft`), the working resolution's `scale` (working pixels per pixel), and `fade`: the pixels
    over which the layer's edge goes from covering nothing to covering all (a cut one pixel sharp reads as
    pasted on). The blurred coverage falls by 1 / (sqrt(2 pi) sigma) per working pixel at its 0.5 level."""
    slope = np.sqrt(2 * np.pi) * SILHOUETTE_SOFTNESS / (scale * fade)
    return np.clip(0.5 + (soft - 0.5) * slope, 0.0, 1.0)


def smooth_curve(points: np.ndarray, per_segment: int = 4) -> np.ndarray:
    """A smooth curve through (N, 2) points in order (a cubic spline by chord length), sampled `per_segment`
    times per segment between them: a lid's nine landmarks joined by straight lines show their corners on
    a large eye. The points themselves when there are too few for a cubic or two coincide."""
    points = np.asarray(points, np.float64)
    chords = np.linalg.norm(np.diff(points, axis=0), axis=1)
    if len(points) < 4 or (chords < 1e-6).any():
        return points
    along = np.concatenate([[0.0], np.cumsum(chords)])
    return make_interp_spline(along, points, k=3)(np.linspace(0.0, along[-1], per_segment * (len(points) - 1) + 1))


def closed_lash_line(shape: tuple[int, int], line: np.ndarray, eye_width: float,
                     photo_blur: float = 0.0) -> np.ndarray:
    """(H, W) float32: how far each pixel of a closed eye's patch is drawn toward the lashes' colour, for the
    lids meeting along `line` ((N, 2) patch pixels, corner to corner, in order), in a photo whose edges are
    blurred by `photo_blur` px (palette.photo_blur).

    Real closed eyes show a dark lash line with soft edges (the lashes hang from the lid's margin) in a
    wider, fainter shade (the lid rims turn away from the light): read across the lids (the training clips:
    382 closed eyes of 32 people, luma over the line's middle third against the closed lid above it), the
    darkest point is 0.41 of the lid's brightness (median by person), a little below the lids' meeting,
    and the lid is still a tenth darker 0.1-0.15 eye widths either side. Drawn as two Gaussians across the
    line, CLOSED_LASH_CORE and CLOSED_LASH_SHADE wide, CLOSED_LASH_BELOW below it, fading toward the corners.
    (One Gaussian as wide as the profile read, 0.16 eye widths at half depth, looked like a smudge: that
    profile is a median over tracked lines a pixel or two apart; at 100 % real lines are about 0.06 eye
    widths thick.) In a soft photo each Gaussian is at least as wide as the photo's blur, and as dark: a
    crisp line looked drawn onto a blurred face, and one blurred by the photo's blur after drawing grew
    fainter, until MediaPipe read d9's shut eyes as parted (0.237 -> 0.250 of open).
    """
    first, last = line[0], line[-1]
    # The lashes hang below the lids' meeting: the valley's middle lies a little below it (across the eye,
    # away from the brow: the corner-to-corner axis turned a quarter toward +y).
    down = np.array([-(last - first)[1], (last - first)[0]]) / max(float(np.linalg.norm(last - first)), 1e-6)
    down = down if down[1] >= 0 else -down
    drawn = np.zeros(shape, np.float32)
    centre = line + CLOSED_LASH_BELOW * eye_width * down
    cv2.polylines(drawn, [np.round(centre * 16).astype(np.int32)], False, 1.0, 1, cv2.LINE_AA, shift=4)
    if not drawn.any():
        return drawn
    valley = np.zeros(shape, np.float32)
    for (spread, darkness) in (CLOSED_LASH_CORE, CLOSED_LASH_SHADE):
        blurred = cv2.GaussianBlur(drawn, (0, 0), max(spread * eye_width, 0.6, photo_blur))  # a Gaussian across the line
        valley += darkness * blurred / max(float(blurred.max()), 1e-6)
    # On a small eye the blur's one-pixel floor spreads the line wider than the eye's lashes: it is drawn lighter.
    valley *= min(1.0, eye_width / CLOSED_LASH_FULL_EYE)
    # Fading toward the corners: where each pixel lies along the line from one corner to the other.
    axis = (last - first) / max(float(np.dot(last - first, last - first)), 1e-6)
    ys, xs = np.mgrid[:shape[0], :shape[1]].astype(np.float32)
    across = np.clip((xs - first[0]) * axis[0] + (ys - first[1]) * axis[1], 0.0, 1.0)
    taper = np.sqrt(np.clip(np.sin(np.pi * across), 0.0, None))  # fuller than a sine, nothing at the corners
    return np.minimum(taper * valley, 1.0).astype(np.float32)


def closed_lid(patch: np.ndarray, eye: np.ndarray, line: np.ndarray, eye_width: float,
               lashes: np.ndarray | None = None) -> np.ndarray:
    """`patch` with the `eye` mask (the opening and the stretched lid margin) repainted as closed lid skin,
    the lids meeting along `line` (patch pixels); the `lashes` mask (lashes_to_repaint) is inpainted away too.

    The eye and a margin around it are inpainted from the surrounding skin. An
    inpainted lid takes the colour of whatever borders it: the shadowed crease
    above and the pink rim of the lower lid. A closed lid bulges forward over the
    eyeball and catches the light like the skin around it, and a dark lid-shaped
    area reads as an open eye (to people and to face trackers alike), so the
    middle of the upper lid is pulled toward the brighter skin around the eye,
    fading to nothing at the edges of the repainted area so no outline is left.
    """
    height, width = eye.shape
    grow = lid_margin(eye_width)
    square = np.ones((3, 3), np.uint8)
    hole = cv2.dilate(eye, square, iterations=grow)
    repainted = hole if lashes is None else np.maximum(hole, lashes)
    lid = cv2.inpaint(patch, repainted, max(3, round(eye_width / 10)), cv2.INPAINT_TELEA).astype(np.float32)

    ring = (cv2.dilate(hole, square, iterations=2 * grow) > 0) & (repainted == 0)
    samples = patch[ring].astype(np.float32)
    if len(samples) == 0:
        return np.clip(lid + 0.5, 0, 255).astype(np.uint8)
    luma = samples @ LUMA
    skin = np.median(samples[luma >= np.median(luma)], axis=0)  # the brighter half: skin, not lashes, brows or shadow

    order = np.argsort(line[:, 0])
    line_y = np.interp(np.arange(width), line[order, 0], line[order, 1])
    upper_lid = (hole > 0) & (np.arange(height)[:, None] < line_y[None, :])
    middle = cv2.erode(upper_lid.astype(np.uint8), square, iterations=grow)
    if middle.sum() < 0.5 * upper_lid.sum():  # a small eye's lid is all edge: the erosion would leave it dark
        middle = upper_lid.astype(np.uint8)
    middle = middle.astype(np.float32)
    light = LID_LIGHT * cv2.GaussianBlur(middle, (4 * grow + 1, 4 * grow + 1), 0)
    lid += light[..., None] * (skin - lid)
    return np.clip(lid + 0.5, 0, 255).astype(np.uint8)


def lid_margin(eye_width: float) -> int:
    """Pixels by which closed_lid grows the eye it repaints (the lid's soft edge and the lashes' roots)."""
    return max(1, round(eye_width / 12))


def lashes_to_repaint(patch: np.ndarray, lid: np.ndarray, corners: np.ndarray, eye_width: float,
                      repainted: np.ndarray) -> np.ndarray:
    """(H, W) uint8 mask, 255 on the dark lashes that a closing eye takes with it, looked for in two places:

    - above the open upper lid (`lid`, the photo's lid curve in patch pixels, corner to corner) within
      LASH_REACH eye widths: long or mascara lashes reach beyond the repainted lid, and left there their tips
      stayed on the closed lid as a dotted arc. An eye under LASH_EYE pixels wide has lashes a pixel or two
      long, inside the lid's margin: none are looked for there (a low brow lies within reach);
    - around the closing eye's `corners` within WING_REACH eye widths, on an eye of any size: the corners are
      repainted a little past the lids (the photo's white beside them would read as an open eye), and a
      winged outer lash cut there left its tip beside the closed lid as a dark dot (bald_guys #1).

    Lashes are thin strokes LASH_CONTRAST levels darker than what lies around them, in pieces that touch
    the `repainted` area (the closing eye, whose lid carries them: not a brow or a mole above it), grown
    over their soft edges as closed_lid grows the eye, but not past the places they were looked for."""
    within = np.zeros(patch.shape[:2], np.uint8)
    if eye_width >= LASH_EYE:
        polygon = np.concatenate([lid, lid[::-1] - (0.0, LASH_REACH * eye_width)])
        cv2.fillPoly(within, [np.round(polygon * 16).astype(np.int32)], 255, cv2.LINE_8, shift=4)
    for corner in corners:
        cv2.circle(within, tuple(np.round(corner * 16).astype(int)), round(16 * WING_REACH * eye_width), 255, -1,
                   cv2.LINE_8, 4)
    inside = within > 0
    if not inside.any():
        return within
    # Thin and dark: darker than the closing of the picture by a stroke a few lashes wide (a shadow or the
    # socket's shade is wide and smooth, and is left alone).
    luma = patch.astype(np.float32) @ LUMA
    side = 2 * max(1, round(eye_width * LASH_STROKE / 2)) + 1
    stroke = cv2.morphologyEx(luma, cv2.MORPH_BLACKHAT, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (side, side)))
    dark = (inside & (stroke > LASH_CONTRAST)).astype(np.uint8)
    _, pieces = cv2.connectedComponents(dark, connectivity=8)
    margin = lid_margin(eye_width) + 1  # pieces within closed_lid's margin of the eye, and a pixel
    near = cv2.dilate(repainted, np.ones((3, 3), np.uint8), iterations=margin)
    touching = np.unique(pieces[(near > 0) & (dark > 0)])
    lashes = np.isin(pieces, touching[touching > 0]).astype(np.uint8) * 255
    square = np.ones((3, 3), np.uint8)
    return cv2.dilate(lashes, square, iterations=margin) & cv2.dilate(within, square)


def polygon_mask(shape: tuple[int, int], polygons: list[np.ndarray]) -> np.ndarray:
    mask = np.zeros(shape, np.uint8)
    for polygon in polygons:
        cv2.fillPoly(mask, [np.round(polygon * 16).astype(np.int32)], 255, lineType=cv2.LINE_8, shift=4)
    return mask

