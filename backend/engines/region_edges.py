"""The head region's border: which of its sides lie on a photo edge that cuts the face or the person (open
sides), the pins that hold the mesh still along the others (and past the open ones), the ramp back to the
exact map toward the border, and the photo extended past an open side for what a turn brings in from there.
numpy and OpenCV only: no state, no I/O."""
from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

PERSON_OFF_EDGE = 0.1  # the person runs off the photo at a side of its head region it covers this share of
PINS_BEYOND = 1.0  # past an open side the border's pins lie this share of the region's length out


def sides_cutting(landmarks: np.ndarray, image_shape: tuple[int, ...]) -> tuple[bool, bool, bool, bool]:
    """The sides of a photo (`image_shape`'s) that cut the face whose `landmarks` ((N, 2+) pixels) run on past
    them: (left, top, right, bottom)."""
    height, width = image_shape[:2]
    low, high = landmarks[:, :2].min(axis=0), landmarks[:, :2].max(axis=0)
    return bool(low[0] < 0), bool(low[1] < 0), bool(high[0] > width - 1), bool(high[1] > height - 1)


def sides_running_off(mask: np.ndarray, region: Sequence[int], image_shape: tuple[int, ...]) -> tuple[bool, bool, bool, bool]:
    """The sides of the head `region` (x0, y0, x1, y1; `mask` its person mask) that lie on a photo's edge
    (`image_shape`'s) the person runs on past, over at least PERSON_OFF_EDGE of the side: (left, top, right,
    bottom). A neck or shoulders cut by the photo's bottom edge, say: the region, clipped there, ends a few
    pixels below the chin instead of a face's width, and the ring that carries the neck with the head lies
    right beside the border's still pins."""
    height, width = image_shape[:2]
    x0, y0, x1, y1 = region
    edges = ((x0 == 0, mask[:, 0]), (y0 == 0, mask[0]), (x1 == width, mask[:, -1]), (y1 == height, mask[-1]))
    return tuple(bool(on_edge and (line > 0.5).mean() >= PERSON_OFF_EDGE) for on_edge, line in edges)


def border_pins(size: tuple[int, int], per_side: int, open_sides: Sequence[bool] = (False,) * 4) -> np.ndarray:
    """(N, 2) points evenly along the border of a grid of `size` (width, height: the head region's), `per_side`
    intervals a side, that hold the mesh's border still; along `open_sides` (left, top, right, bottom: sides of
    the region on a photo edge that the face or the person runs on past) not on the border but past it
    (pinned_box), beyond every point the mesh carries over the edge.

    On the border of an open side a pin cut into a cut face's mesh (taking a cut eye's cells out of the face,
    and a turn left a block of its brow behind); and beside a neck cut by the photo's bottom edge it held the
    border still a few pixels under the ring that carries the neck with the head: a roll of 30 to 45 degrees
    turned the triangles between them over, and a flat, stair-stepped block of skin, the few pixels of neck
    they were stretched from, lay over the neck and the clothes (d19: 563 working pixels at roll -45). Past
    the edge, the motion fades out over as long a way as it does inside the photo."""
    x0, y0, x1, y1 = pinned_box(size, open_sides)
    xs, ys = np.linspace(x0, x1, per_side + 1), np.linspace(y0, y1, per_side + 1)
    return np.concatenate([np.stack([xs, np.full_like(xs, y0)], 1), np.stack([xs, np.full_like(xs, y1)], 1),
                           np.stack([np.full_like(ys[1:-1], x0), ys[1:-1]], 1),
                           np.stack([np.full_like(ys[1:-1], x1), ys[1:-1]], 1)])


def pinned_box(size: tuple[int, int], open_sides: Sequence[bool] = (False,) * 4) -> tuple[float, float, float, float]:
    """(x0, y0, x1, y1) where border_pins lie around a grid of `size` (width, height): its border pixels, but
    PINS_BEYOND of the grid's length out past each of its `open_sides` (left, top, right, bottom)."""
    width, height = size
    left, top, right, bottom = (PINS_BEYOND * length * side for length, side in zip((width, height) * 2, open_sides))
    return -left, -top, width - 1.0 + right, height - 1.0 + bottom


def border_ramp(shape: tuple[int, int], reach: float, open_sides: Sequence[bool] = (False,) * 4) -> np.ndarray:
    """(H, W, 1) float32: 0 on the grid's border, rising linearly to 1 at `reach` pixels inside it; but not
    toward `open_sides` (left, top, right, bottom: True for a side on the photo's edge, where nothing lies
    beyond to join)."""
    height, width = shape
    rows, cols = np.arange(height, dtype=np.float32), np.arange(width, dtype=np.float32)
    left, top, right, bottom = open_sides
    to_rows = np.minimum(np.where(top, np.inf, rows), np.where(bottom, np.inf, height - 1 - rows))
    to_cols = np.minimum(np.where(left, np.inf, cols), np.where(right, np.inf, width - 1 - cols))
    to_border = np.minimum.outer(to_rows, to_cols)
    return np.clip(to_border / reach, 0.0, 1.0).astype(np.float32)[..., None]


# Past a photo edge that cuts the face or the person, the photo mirrored, as far as this share of the face's width ...
BEYOND_EDGE_REACH = 0.4
BEYOND_EDGE_BLUR = 0.025  # ... blurred by a Gaussian this share of the face's width ...
BEYOND_EDGE_SHARP = 4.0  # ... fading in over this many pixels from an edge that cuts the face ...
BEYOND_BODY_SHARP = 0.06  # ... and over this share of the face's width from one that cuts only the person


def extended_past_edges(texture: np.ndarray, sides: Sequence[bool], face_width: float,
                        face_sides: Sequence[bool] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(`texture` extended past its `sides` (left, top, right, bottom: True where the photo's edge cuts the
    face or the person), (2,) float32 where its pixel (0, 0) now lies): the photo mirrored at the edge, blurred by
    BEYOND_EDGE_BLUR of the face's width from BEYOND_EDGE_SHARP pixels out past `face_sides` (those that cut
    the face; default all `sides`), from BEYOND_BODY_SHARP of the face's width out past the others, for
    BEYOND_EDGE_REACH of it (a map that samples further reads the extension's last pixels).

    A face the photo's edge cuts has nothing to show past it, yet a turn brings that part in. Sampled with
    the border repeated, the edge's last pixels ran across the eye and cheek as streaks; mirrored sharp,
    the cheek's shadow met its own image in a V. Mirrored and blurred, what comes in is the colours near the
    edge, soft, as out of focus, the same in every frame (blurred by how far a frame's map reached, it would
    flicker as the head turned). A neck and clothes the photo's bottom edge cuts, which a roll lifts, carry
    no eye or shadow to meet its image: blurred from 4 pixels out, d19's fleece hoodie ended in a soft grey
    patch with an edge across it; mirrored further out, its texture runs on and fades softly.

    Past a side that cuts only the person, the photo's outermost row (or column) is taken as the one inside
    it: it may be no picture (a montage's white frame line, bald_guys' bottom row), and a roll that slides
    the clothes along the edge drew it across them as a white curve."""
    face_sides = sides if face_sides is None else face_sides
    texture = _outermost_inside(texture, sides, face_sides)
    height, width = texture.shape[:2]
    pad = max(1, int(np.ceil(BEYOND_EDGE_REACH * face_width)))
    left, top, right, bottom = (pad if cut else 0 for cut in sides)
    # (Reflection cannot reach further than the texture is wide: past that, its last pixels repeat.)
    reach = [min(pad, side - 1) for pad, side in ((top, height), (bottom, height), (left, width), (right, width))]
    extended = cv2.copyMakeBorder(texture, *reach, cv2.BORDER_REFLECT_101)
    extended = cv2.copyMakeBorder(extended, top - reach[0], bottom - reach[1], left - reach[2], right - reach[3],
                                  cv2.BORDER_REPLICATE)
    blurred = cv2.GaussianBlur(extended, (0, 0), max(0.5, BEYOND_EDGE_BLUR * face_width))
    rows = np.arange(extended.shape[0], dtype=np.float32)[:, None]
    cols = np.arange(extended.shape[1], dtype=np.float32)[None, :]
    sharp = [BEYOND_EDGE_SHARP if face else max(BEYOND_EDGE_SHARP, BEYOND_BODY_SHARP * face_width) for face in face_sides]
    past = (left - cols, top - rows, cols - (left + width - 1), rows - (top + height - 1))  # pixels past each side
    weight = np.zeros(extended.shape[:2], np.float32)
    for distance, fade in zip(past, sharp):
        weight = np.maximum(weight, distance / fade)
    weight = np.clip(weight, 0.0, 1.0)[..., None]
    mixed = (extended + weight * (blurred.astype(np.float32) - extended) + 0.5).astype(texture.dtype)
    mixed[top:top + height, left:left + width] = texture
    return mixed, np.float32([left, top])


def framed_in_extension(extended: np.ndarray, shift: np.ndarray, texture: np.ndarray, sides: Sequence[bool],
                        face_sides: Sequence[bool]) -> np.ndarray:
    """`extended` (extended_past_edges' of the photo's region, its pixel (0, 0) at `shift`) with `texture` (a
    frame of that region: a group's, other faces already moved in it) inside. What lies past the photo's edge
    stays the photo's, made once: extended every frame, bald_guys' three faces on its bottom edge cost 28 ms
    of CPU a frame more."""
    framed = extended.copy()
    left, top = int(shift[0]), int(shift[1])
    height, width = texture.shape[:2]
    framed[top:top + height, left:left + width] = _outermost_inside(texture, sides, face_sides)
    return framed


def _outermost_inside(texture: np.ndarray, sides: Sequence[bool], face_sides: Sequence[bool]) -> np.ndarray:
    """`texture` with its outermost row or column along each of `sides` that is not one of `face_sides` taken
    as the one inside it (extended_past_edges)."""
    outermost = ((np.s_[:, 0], np.s_[:, 1]), (np.s_[0], np.s_[1]), (np.s_[:, -1], np.s_[:, -2]), (np.s_[-1], np.s_[-2]))
    if not any(cut and not face for cut, face in zip(sides, face_sides)) or min(texture.shape[:2]) <= 2:
        return texture
    texture = texture.copy()
    for (edge, inside), cut, face in zip(outermost, sides, face_sides):
        if cut and not face:
            texture[edge] = texture[inside]
    return texture
