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
"""
from __future__ import annotations

import cv2
import numpy as np

from ..frame_layers import FrameLayers
from .frame_buffers import FrameBuffers
from .passes_math import blend_region_mask, blender_vector_pass, face_mattes, motion_from_previous, region_seam_weight
from .warp import WarpEngine
from .warp_math import piecewise_affine_displacement, triangle_affines

MATTE_PAD = 0.15  # face widths around the landmarks where the face, eye and mouth mattes are drawn


class PassRenderer:
    """Renders frames with alpha and passes for one engine (the warp engine, or one built on it)."""

    def __init__(self, engine):
        self.engine = engine
        # The refine engine paints over a warp engine's frame: the geometry and the mask are that warp's.
        self.warp: WarpEngine = getattr(engine, "warp", engine)
        subject = self.warp.subject
        from ..analysis import person_mask

        height, width = subject.image.shape[:2]
        whole = person_mask(subject.image, (0, 0, width, height))
        self.seam = region_seam_weight(self.warp.region, (height, width))
        self.still_alpha = blend_region_mask(whole, self.warp.mask, self.warp.region, self.seam)
        self.alphas = FrameBuffers(self.still_alpha, self.warp.region)  # only the head region's alpha changes

    def render(self, values: np.ndarray, previous: np.ndarray | None = None, alpha: bool = True,
               passes: bool = True) -> FrameLayers:
        """Frame `values` with its alpha (`alpha`: the person cut out) and, with `passes`, its mattes and
        its motion vectors since the frame of channel values `previous` (none: the first frame, no motion)."""
        warp = self.warp
        warped = warp.render_with_fields(values, keep_fields=False, cut_out=alpha)
        rgb = warped.frame if warp is self.engine else self.engine.render(values)
        layers = FrameLayers(rgb)
        rows, cols = self._face_window(warped.target_landmarks)
        windows = face_mattes(warped.target_landmarks, (rows.stop - rows.start, cols.stop - cols.start),
                              (cols.start, rows.start))
        person = self._alpha(warped.box, warped.person)
        # Inside the face's outline it is the person, whatever the segmentation's soft edge says (a turn
        # stretches that edge across the cheek).
        inside = np.clip(windows["face"] + windows["eyes"] + windows["mouth"], 0.0, 1.0)
        np.maximum(person[rows, cols], inside, out=person[rows, cols])
        if alpha:
            layers.alpha = person
        if passes:
            layers.mattes = {"person": person, **{name: self._full_frame(window, rows, cols, rgb.shape[:2])
                                                  for name, window in windows.items()}}
            layers.vector = self._vector(warped.displacement, values, previous, rgb.shape[:2])
        return layers

    def _alpha(self, box: tuple[int, int, int, int] | None, person: np.ndarray | None) -> np.ndarray:
        alpha = self.alphas.take()
        if box is not None:
            x0, y0 = self.warp.region[:2]
            bx0, by0, bx1, by1 = box
            seam = self.seam[by0:by1, bx0:bx1]
            window = alpha[y0 + by0:y0 + by1, x0 + bx0:x0 + bx1]
            # Where the head region's mask was blended in (seam), the warped mask takes its place.
            window += seam * (person - self.warp.mask[by0:by1, bx0:bx1])
            np.clip(window, 0.0, 1.0, out=window)
        return alpha

    def _face_window(self, landmarks: np.ndarray) -> tuple[slice, slice]:
        """The rows and columns around the face where its mattes are drawn, inside the head region
        (nothing outside it moves)."""
        pad = MATTE_PAD * self.warp.subject.face_width
        rx0, ry0, rx1, ry1 = self.warp.region
        x0, y0 = np.maximum(np.floor(landmarks[:, :2].min(axis=0) - pad).astype(int), (rx0, ry0))
        x1, y1 = np.maximum(np.minimum(np.ceil(landmarks[:, :2].max(axis=0) + pad).astype(int), (rx1, ry1)), (x0, y0))
        return slice(y0, y1), slice(x0, x1)

    @staticmethod
    def _full_frame(window: np.ndarray, rows: slice, cols: slice, shape: tuple[int, int]) -> np.ndarray:
        matte = np.zeros(shape, np.float32)
        matte[rows, cols] = window
        return matte

    def _vector(self, backward_work: np.ndarray, values: np.ndarray, previous: np.ndarray | None,
                shape: tuple[int, int]) -> np.ndarray:
        """Blender's Vector pass: zero outside the head region (nothing else moves), and for a first frame."""
        vector = np.zeros(shape + (4,), np.float32)
        if previous is None:
            return vector
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
        vector[y0:y1, x0:x1] = blender_vector_pass(motion)
        return vector
