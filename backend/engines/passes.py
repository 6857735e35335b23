"""Frames for the compositor: the person's alpha, mattes and motion vectors
beside the colour.

Per subject, once (PassRenderer.__init__): the whole photo's person mask
(the head region's own, finer mask blended in), so the body below the
animated head region has its alpha too.

Per frame: the engine renders with the person cut out (the background that
the moving head uncovers is left transparent, not inpainted); the alpha is
the person mask warped with the pixels; the face, eye and mouth mattes are
drawn where the rig put the landmarks; and the motion vector of each pixel
runs from where the previous frame showed the same point of the photo.

A group photo's faces draw into one canvas (blank_canvas), one after the
other (PassRenderer.draw), as their colour is rendered into one frame.
"""
from __future__ import annotations

import cv2
import numpy as np

from ..frame_layers import FrameLayers
from .frame_buffers import FrameBuffers
from .passes_math import (MATTE_NAMES, blend_region, blender_vector_pass, face_mattes, motion_from_previous,
                          region_seam_weight)
from .warp import WarpEngine
from .warp_math import piecewise_affine_displacement, triangle_affines

MATTE_PAD = 0.15  # face widths around the landmarks where the face, eye and mouth mattes are drawn
# In a group photo a head region holds neighbours, whom its own mask (segmented on that crop alone) often
# misses or cuts square: it is used only this near the face's centre (face widths: fully, then fading out),
# the whole photo's mask beyond, and joined with the whole photo's there.
OWN_MASK_REACH = (1.2, 1.8)


def blank_canvas(rgb: np.ndarray, person: np.ndarray, passes: bool) -> FrameLayers:
    """The layers a frame is drawn into: its colour, the person's alpha (always: the person matte is it
    too) and, with `passes`, empty face, eye and mouth mattes and a still Vector pass."""
    shape = rgb.shape[:2]
    mattes = {name: np.zeros(shape, np.float32) for name in MATTE_NAMES if name != "person"} if passes else None
    return FrameLayers(rgb, person, mattes, np.zeros(shape + (4,), np.float32) if passes else None)


def near_face_weight(landmarks: np.ndarray, face_width: float, region: tuple[int, int, int, int]) -> np.ndarray:
    """(region h, region w) float32: 1 within OWN_MASK_REACH[0] face widths of the face's centre, falling
    to 0 at OWN_MASK_REACH[1]."""
    x0, y0, x1, y1 = region
    centre = landmarks[:, :2].mean(axis=0)
    xs = (np.arange(x0, x1, dtype=np.float32) - centre[0]) / face_width
    ys = (np.arange(y0, y1, dtype=np.float32) - centre[1]) / face_width
    distance = np.sqrt(xs[None, :] ** 2 + ys[:, None] ** 2)
    inner, outer = OWN_MASK_REACH
    return np.clip((outer - distance) / (outer - inner), 0.0, 1.0).astype(np.float32)


def finished(canvas: FrameLayers, alpha: bool) -> FrameLayers:
    """A drawn canvas as a frame's layers: its person alpha is the frame's alpha (with `alpha`) and the
    person matte (with passes)."""
    if canvas.mattes is not None:
        canvas.mattes = {"person": canvas.alpha, **canvas.mattes}
    if not alpha:
        canvas.alpha = None
    return canvas


class PassRenderer:
    """Renders frames with alpha and passes for one engine (the warp engine, or one built on it)."""

    def __init__(self, engine, whole_mask: np.ndarray | None = None, in_group: bool = False):
        """`whole_mask`: the whole photo's person mask, when the caller has it (a group photo's faces share
        one); else it is segmented here. `in_group`: one face of several, whose head region's own mask
        serves near the face only (OWN_MASK_REACH)."""
        self.engine = engine
        # The refine engine paints over a warp engine's frame: the geometry and the mask are that warp's.
        self.warp: WarpEngine = getattr(engine, "warp", engine)
        self.keep_fields = self.warp is not engine  # the refine engine's refiners read the warp's fields
        subject = self.warp.subject
        height, width = subject.image.shape[:2]
        if whole_mask is None:
            from ..analysis import person_mask

            whole_mask = person_mask(subject.image, (0, 0, width, height))
        self.whole_mask = whole_mask
        self.seam = region_seam_weight(self.warp.region, (height, width))
        self.in_group = in_group
        if in_group:
            self.seam = self.seam * near_face_weight(subject.landmarks, subject.face_width, self.warp.region)
        self._alphas: FrameBuffers | None = None  # this face's still alpha, for frames of it alone

    @property
    def alphas(self) -> FrameBuffers:
        """Buffers of this face's still person alpha (only the head region's alpha changes)."""
        if self._alphas is None:
            self._alphas = FrameBuffers(self.with_head_mask(self.whole_mask), self.warp.region)
        return self._alphas

    def with_head_mask(self, person: np.ndarray) -> np.ndarray:
        """A copy of a whole-photo person mask with this head region's own, finer mask blended in (in a
        group, joined with it: the head's crop misses the neighbours behind it)."""
        head = self.warp.mask
        if self.in_group:
            x0, y0, x1, y1 = self.warp.region
            head = np.maximum(head, self.whole_mask[y0:y1, x0:x1])
        return blend_region(person, head, self.warp.region, self.seam)

    def render(self, values: np.ndarray, previous: np.ndarray | None = None, alpha: bool = True,
               passes: bool = True) -> FrameLayers:
        """Frame `values` with its alpha (`alpha`: the person cut out) and, with `passes`, its mattes and
        its motion vectors since the frame of channel values `previous` (none: the first frame, no motion)."""
        return finished(self.draw(values, previous, alpha, passes)[0], alpha)

    def draw(self, values: np.ndarray, previous: np.ndarray | None, alpha: bool, passes: bool,
             canvas: FrameLayers | None = None) -> tuple[FrameLayers, tuple | None]:
        """Draw this face's frame into `canvas` (a blank_canvas that other faces of the photo may already
        be drawn into; none: a new one of this face alone), in place, and return it: the colour (with
        `alpha`, the person cut out), the person's alpha and, with `passes`, the face, eye and mouth mattes
        and the Vector pass. Where faces overlap, the later face moves the alpha the earlier left, the
        mattes join (the larger value) and the motion vectors add (the later face moves what the
        earlier one moved). Returned with it: the head's moved box and person mask (None: the head did not
        move), which the body's layer moves with the rest of the person (BodyLayer.move_layers)."""
        # (The Vector pass needs the warp's field even where the face is still now: it moved since `previous`.)
        warped = self.engine.render_with_fields(values, keep_fields=self.keep_fields or passes, cut_out=alpha,
                                                onto=None if canvas is None else canvas.rgb)
        if canvas is None:
            canvas = blank_canvas(warped.frame, self.alphas.take(), passes)
        person = canvas.alpha
        self._move_alpha(person, warped.box, warped.person)
        rows, cols = self._face_window(warped.target_landmarks)
        windows = face_mattes(warped.target_landmarks, (rows.stop - rows.start, cols.stop - cols.start),
                              (cols.start, rows.start))
        # Inside the face's outline it is the person, whatever the segmentation's soft edge says (a turn
        # stretches that edge across the cheek).
        inside = np.clip(windows["face"] + windows["eyes"] + windows["mouth"], 0.0, 1.0)
        np.maximum(person[rows, cols], inside, out=person[rows, cols])
        if passes:
            for name, window in windows.items():
                np.maximum(canvas.mattes[name][rows, cols], window, out=canvas.mattes[name][rows, cols])
            self._add_vector(canvas.vector, warped.displacement, values, previous)
        return canvas, (None if warped.box is None else (warped.box, warped.person))

    def _move_alpha(self, alpha: np.ndarray, box: tuple[int, int, int, int] | None, person: np.ndarray | None) -> None:
        """Move the head region's part of a whole-photo `alpha` with the head, in place."""
        if box is None:
            return
        x0, y0 = self.warp.region[:2]
        bx0, by0, bx1, by1 = box
        seam = self.seam[by0:by1, bx0:bx1]
        window = alpha[y0 + by0:y0 + by1, x0 + bx0:x0 + bx1]
        # Where the head region's mask was blended in (seam), the warped mask takes its place.
        window += seam * (person - self.warp.mask[by0:by1, bx0:bx1])
        np.clip(window, 0.0, 1.0, out=window)

    def _face_window(self, landmarks: np.ndarray) -> tuple[slice, slice]:
        """The rows and columns around the face where its mattes are drawn, inside the head region
        (nothing outside it moves)."""
        pad = MATTE_PAD * self.warp.subject.face_width
        rx0, ry0, rx1, ry1 = self.warp.region
        x0, y0 = np.maximum(np.floor(landmarks[:, :2].min(axis=0) - pad).astype(int), (rx0, ry0))
        x1, y1 = np.maximum(np.minimum(np.ceil(landmarks[:, :2].max(axis=0) + pad).astype(int), (rx1, ry1)), (x0, y0))
        return slice(y0, y1), slice(x0, x1)

    def _add_vector(self, vector: np.ndarray, backward_work: np.ndarray, values: np.ndarray,
                    previous: np.ndarray | None) -> None:
        """Add this head's motion to Blender's Vector pass `vector`, in place: nothing outside the head
        region (nothing else moves), and nothing for a first frame."""
        if previous is None:
            return
        warp = self.warp
        # Where the previous frame put each point of the photo (working pixels of the head region).
        *_, previous_work = warp.target_points(np.asarray(previous, np.float64))
        affines, usable = triangle_affines(warp.source_work, previous_work, warp.triangles)
        forward = piecewise_affine_displacement(warp.source_work, warp.triangles, affines, usable, warp.work_size,
                                                in_front=warp.face_triangles)
        motion_work = motion_from_previous(backward_work, forward, 1.0)
        # No pixel moves further than the fastest control point: a pixel just outside a sliver triangle
        # (rasterised edges reach past it) would extrapolate its map by hundreds of pixels.
        *_, current_work = warp.target_points(np.asarray(values, np.float64))
        fastest = np.abs(current_work[:, :2] - previous_work[:, :2]).max(axis=0).astype(np.float32)
        np.clip(motion_work, -fastest, fastest, out=motion_work)
        region_w, region_h = warp.region_size
        motion = cv2.resize(motion_work, (region_w, region_h), interpolation=cv2.INTER_LINEAR) / np.float32(warp.scale)
        x0, y0, x1, y1 = warp.region
        vector[y0:y1, x0:x1] += blender_vector_pass(motion)
