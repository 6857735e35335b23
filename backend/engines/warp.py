"""The warp engine: moves the photo's own pixels to where the rig puts the landmarks.

Per subject, once (WarpEngine.__init__):
  * control points = the 468 face landmarks (not the irises: the mesh would
    stretch an iris into chevrons between the eye's corners), a ring just outside
    the face oval that carries the skin's edge with the face, two rings around
    the face that carry the hair and neck, and pins along the border of the head
    region (so the map is the identity at the border and pastes back seamlessly; past a side on the photo's
    edge that the face or the person runs off, beyond it: engines/region_edges.py);
  * a triangulation of those points in the source (Delaunay, keeping the lips' and lids' contours as edges);
  * a background plate: the region with the person inpainted, shown where a
    moving head uncovers background;
  * per eye, the sclera with the iris removed and the iris completed as a disc.

Per frame (WarpEngine.render), at a working resolution on the head region:
  * target points from the rig; one affine map per triangle (target -> source);
  * triangles rasterised far-to-near into a triangle-index image, so the
    nose hides the far cheek when the head turns (painter's algorithm);
  * the map of what lies behind the face (hair, neck, backdrop) smoothed, so
    strands bend in curves rather than at the hair rings' triangle edges;
  * near the face's outline, slivers of the face's map removed (a median) and
    the map smoothed along the outline (a turn folds the far cheek), and narrow
    notches in the outline filled with the face's map extrapolated,
    and the face's silhouette over hair and backdrop resolved at full
    resolution: each layer's map on its own, a smooth coverage edge,
    anti-aliased (no staircase of working pixels, no specks, no teeth);
  * the backward displacement upsampled to full resolution and applied with
    cv2.remap to the full-resolution photo, only inside the box that actually
    moves; the person mask is warped the same way to composite the background
    plate where background is uncovered;
  * where the face's map folds (a turned nose over the far cheek), pixels redrawn from the exact map;
    where a map squeezes the photo, the photo sampled blurred as much, and where it widens the photo
    several times over (a nose's side turned to face the camera), blurred by about a photo pixel (engines/squeeze.py);
  * each iris drawn as a rigid disc where the rig put it, over the eye's
    sclera (the iris inpainted away once per subject), clipped by the lids;
  * a mouth cavity painted where the lips part (a wide-open mouth's own interior stretches
    instead); an interior folds away behind lips that close over it.
"""
from __future__ import annotations

import cv2
import numpy as np

from .. import landmarks as lm
from ..analysis import Subject
from ..geometry import camera_to_image, image_to_camera, outline_depths, without_inward_lead
from ..rig import SEAL_PRESS, Rig
from ..shared.channels import CHANNEL_INDEX
from .background import blend_over_background, head_plate, remap_where_seen
from .eyes import IRIS_DISC, IRIS_FILL, IRIS_STILL, Eyeball, build_eyeball, eyeball_turn, grow_opening, lash_colours
from .folds import draw_folds, face_folds, inner_triangles, soften_at_folds, turned_cells
from .frame_buffers import FrameBuffers
from .mouth import (CLOSED_MOUTH, INTERIOR_ROWS, interior_split, interior_stretches, lip_edge_offsets, paint_cavity, seal_lips,
                    seal_strength, teeth_colour)
from .palette import palette_of
from .region_edges import (PINS_BEYOND, border_pins, border_ramp, extended_past_edges, framed_in_extension, sides_cutting,
                           sides_running_off)
from .squeeze import Squeezed, prefilter_squeezed, squeeze_weight, turn_widening, widen_weight
from .warp_frame import BackLayer, SilhouetteEdge, WarpedFrame
from .warp_math import (TEXTURE_INTERPOLATION, affine_fit, closed_lash_line, closed_lid, constrained_triangulation,
                        displacement_from_index, edge_coverage, faces_held_still, fill_notches, lashes_to_repaint,
                        layer_coverage, mesh_contours, mesh_points, piecewise_affine_displacement, pixels_of_cells,
                        polygon_mask, sample_at, similarity_through, smooth_behind_face, smooth_curve, smooth_face_edge,
                        triangle_affines, triangle_index_image, upsampled_to_box)

WORKING_SIDE = 256  # the displacement field is computed at most this large
BORDER_PINS_PER_SIDE = 8
MOVING_EPSILON = 0.02  # working pixels; displacement below this counts as still
STILL_POINTS = 0.9  # control points moving less than this share of MOVING_EPSILON leave every pixel still
JAW = CHANNEL_INDEX["jaw_open"]
CORNER_REACH = 0.1  # a closing eye's corners are repainted this far around (eye widths)
SKIN_EDGE = 1.08  # the face layer reaches this far beyond MediaPipe's face oval (from the oval's centre)
FACE_EXTRAPOLATION = 1.5  # working pixels: the Gaussian that extrapolates the face's displacement past its outline
FACE_EDGE_BAND = 0.2  # face widths: how far inside the outline slivers are removed
FACE_EDGE_SMOOTHING = 0.03  # face widths: the Gaussian that smooths the face's map along its outline ...
FACE_EDGE_SMOOTHED = 0.1  # ... this far inside it (face widths)
FACE_NOTCH = 0.05  # face widths: notches in the face's outline narrower than twice this are filled
# working pixels either side of the face silhouette resolved at full resolution: the smoothed outline
# (SILHOUETTE_SOFTNESS) strays past 2 where the far cheek folds (d9 beside her mouth: a ragged edge at 2)
SILHOUETTE_REACH = 4
# Pixels a landmark is held at most nearer than the face's outline, for every pixel inside it, where a turn
# reveals the face's side (geometry.outline_depths): 2 opens no band up to 30 degrees (2 sin 30 = 1); at 3, d9 at
# yaw -30 showed 4 pixels from beyond the photo's oval inside the frame's, at 5, 51.
OUTLINE_DEPTH_SLOPE = 2.0
SILHOUETTE_FADE = 0.008  # face widths (1 to 2 pixels): the face fades into what is behind it over this, as photos' edges do
BACK_SMOOTHING = 3.0  # working pixels: the Gaussian that smooths the map of everything behind the face
BACK_REACH = 0.05  # that Gaussian's share of covered cells where the smoothed map still counts as defined


class WarpEngine:
    name = "warp"

    def __init__(self, subject: Subject, rig: Rig | None = None, plate: np.ndarray | None = None):
        self.subject = subject
        self.rig = rig or Rig(subject.landmarks, subject.pose)
        x0, y0, x1, y1 = subject.head_region
        self.region = (x0, y0, x1, y1)
        self.region_size = (x1 - x0, y1 - y0)
        self.scale = min(1.0, WORKING_SIDE / max(self.region_size))  # working px per photo px
        self.work_size = (max(2, round(self.region_size[0] * self.scale)), max(2, round(self.region_size[1] * self.scale)))
        self.edge_fade = float(np.clip(SILHOUETTE_FADE * subject.face_width, 1.0, 2.0))  # pixels: silhouette, folds
        self.source_region = np.ascontiguousarray(subject.image[y0:y1, x0:x1])
        self.mask = subject.mask.astype(np.float32)
        self.frames = FrameBuffers(subject.image, self.region)
        self._pixel_grid: np.ndarray | None = None  # (region h, region w, 2) float32 x, y of each pixel, made once
        # The mesh's inner lips lie on the photo's own lip edges (MediaPipe's may run over teeth or cavity).
        self.lip_edges = lip_edge_offsets(subject.image, subject.landmarks)
        # The region's sides on a photo edge that cuts the face or the person (a neck, shoulders): no still border.
        self.cut_sides = sides_cutting(subject.landmarks, subject.image.shape)
        self.open_sides = tuple(cut or off for cut, off in zip(self.cut_sides, sides_running_off(
            self.mask, self.region, subject.image.shape)))
        # What a turn brings in from past such an edge, made once for the photo's pixels.
        self.past_edges = (extended_past_edges(self.source_region, self.open_sides, subject.face_width, self.cut_sides)
                           if any(self.open_sides) else None)
        self.source_lip_gap = lm.signed_lip_gap(subject.landmarks)
        # MediaPipe's row of landmarks beside its oval lies on the oval or past it in the photo, yet a sixth of a
        # face width nearer: a turn moved them by that depth, and where it reveals the face's side they ran inward
        # of the oval, taking the skin's edge with them: hair or backdrop showed in a notch between each pair of
        # oval points (d9 at yaw -20, d19's second jaw line). The photo has no picture of that side: there they
        # turn as if no nearer than the outline allows (where the turn hides the side, they run past it).
        landmarks = camera_to_image(self.rig.source_camera)
        landmarks[:, 2] = outline_depths(landmarks, landmarks[list(lm.FACE_OVAL)], OUTLINE_DEPTH_SLOPE)
        self.outline_camera = image_to_camera(landmarks)
        self._build_control_points()
        # The map behind the face fades back to the exact one (the identity) toward the region's border (where
        # it joins the still photo, not where the photo's edge cuts the face or the person).
        self.border_ramp = border_ramp(self.work_size[::-1], 3 * BACK_SMOOTHING, self.open_sides)
        # The photo's other faces in the region: what moves behind this face leaves them still (1 - held).
        held = faces_held_still(self.work_size[::-1], [tuple(self._to_work(np.reshape(box, (2, 2)))[:, :2].ravel())
                                                       for box in subject.other_faces])
        self.moving_behind = None if held is None else (1.0 - held)[..., None]
        # The lips' and lids' contours are edges of the mesh: no triangle holds both lip and teeth, or lid and eye.
        position = self.landmark_position = {landmark: i for i, landmark in enumerate(self.landmark_ids)}
        contours = [[position[i] for i in ids] for ids in mesh_contours(subject.landmarks) if all(i in position for i in ids)]
        self.triangles = constrained_triangulation(self.source_work[:, :2], contours)
        self.source_region_points = self._work_to_region(self.source_work)
        # The face surface always covers the hair, neck and backdrop around it:
        # ordering by mean depth alone interleaves jaw and neck triangles (a saw-tooth jaw line).
        landmark_count = len(self.landmark_ids)
        face_point = np.concatenate([np.ones(landmark_count, bool), self.extra_in_face, np.zeros(len(self.pins_work), bool)])
        self.face_triangles = face_point[self.triangles].all(axis=1)
        self.fold_triangles = inner_triangles(self.triangles[self.face_triangles], landmark_count,
                                              [position[i] for i in lm.FACE_OVAL if i in position])
        # The face layer, whose silhouette against hair and backdrop is resolved at full resolution, also
        # holds the mouth interior (drawn behind the lips, but inside the face's outline).
        mouth_point = np.zeros(len(face_point), bool)
        mouth_point[landmark_count + self.mouth_split_upper.start:landmark_count + self.mouth_split_lower.stop] = True
        self.face_layer = (face_point | mouth_point)[self.triangles].all(axis=1)
        self.background_plate = head_plate(subject) if plate is None else plate  # uncovered backdrop
        # Control points (indices into source_work) of the parts rendered exactly at full resolution, with padding.
        mouth = self.mouth_outline = [position[i] for i in lm.LIPS_UPPER_OUTER + lm.LIPS_LOWER_OUTER]
        self.detail_windows = [([position[i] for i in lm.eye_polygon("left")], 0.25),
                               ([position[i] for i in lm.eye_polygon("right")], 0.25),
                               (mouth, 0.1)]
        self.mouth_colour = self._lip_colour()
        self.palette = palette_of(subject.image, self.source_region)  # what it paints takes the photo's colours and grain
        self.paints_teeth = subject.mouth_openness < CLOSED_MOUTH  # an open mouth's own teeth move with the lips
        self.seal_rims = SEAL_PRESS * max(self.source_lip_gap, 0.0)  # lip rims the rig's press no longer hides
        self.lash_colour = lash_colours(subject.image, subject.landmarks)
        self.eyeballs = [self._eyeball(iris, side) for iris, side in lm.IRISES]
        # An eye that shows too little sclera of its own borrows the other's colour.
        for index, (iris, side) in enumerate(lm.IRISES):
            other = self.eyeballs[1 - index].sclera_colour
            if self.eyeballs[index].sclera_colour is None and other is not None:
                self.eyeballs[index] = self._eyeball(iris, side, other)
        scleras = [eyeball.sclera_colour for eyeball in self.eyeballs if eyeball.sclera_colour is not None]
        self.teeth_colour = teeth_colour(scleras, self.mouth_colour) if self.paints_teeth else None  # lit as the sclera

    # ----- once per subject -------------------------------------------------

    def _build_control_points(self) -> None:
        """Source control points and how each one moves.

        Besides the landmarks there are "extra" points, each carried by a
        landmark: it takes a share of that landmark's expression offset and
        follows the head's motion by an attachment weight.
        """
        camera = self.rig.source_camera
        self.landmark_ids = mesh_points(self.subject.landmarks)

        extra, carrier, share, attachment, in_face = [], [], [], [], []
        # A point may follow two carriers: (1 - blend) of the first's offset and blend of the second's.
        # Lips sealing over the mouth interior (negative jaw_open) carry each point by where it lies
        # between its carriers instead (`between`), so the whole interior folds onto the seal line.
        carrier_b, blend, between = [], [], []

        # Rings follow the face outline outward: the first carries hair, ears
        # and jaw with the head; the second, further out, follows only partly.
        oval_ids = np.array(lm.FACE_OVAL)
        oval = camera[oval_ids]
        centre = oval.mean(axis=0)
        upness = np.clip((oval[:, 1] - centre[1]) / (np.abs(oval[:, 1] - centre[1]).max() + 1e-9), -1, 1)
        # The face's own edge. MediaPipe's oval runs a little inside the edge of the skin: without this ring the
        # skin beyond the oval belongs to hair triangles, and a head turn stretches that band into teeth of skin
        # jutting into the hair. Moving exactly with the face, the ring makes the face layer carry all its skin.
        extra.append(centre + (oval - centre) * np.array([SKIN_EDGE, SKIN_EDGE, 1.0]))
        carrier.append(oval_ids)
        carrier_b.append(oval_ids)
        blend.append(np.zeros(len(oval)))
        between.append(np.zeros(len(oval)))
        share.append(np.ones(len(oval)))
        attachment.append(np.ones(len(oval)))
        in_face.append(np.ones(len(oval), bool))
        # Each ring point keeps its oval point's depth, so a head turn or nod carries the hair beside the face
        # as far as the face's own edge. (Set behind the face, the rings moved less than the edge: on a turn
        # the face slid over its own hair and uncovered backdrop beside it; on a nod it cut a straight line
        # through the hair above the forehead.)
        for factor, follow_top, follow_bottom, expression_share in ((1.35, 1.0, 0.8, 0.6), (1.9, 0.6, 0.15, 0.2)):
            ring = centre + (oval - centre) * np.array([factor, factor, 1.0])
            extra.append(ring)
            carrier.append(oval_ids)
            carrier_b.append(oval_ids)
            blend.append(np.zeros(len(ring)))
            between.append(np.zeros(len(ring)))
            share.append(np.full(len(ring), expression_share))
            attachment.append(np.where(upness > 0, follow_top, follow_bottom + (follow_top - follow_bottom) * (1 + upness)))
            in_face.append(np.zeros(len(ring), bool))

        # The mouth interior (engines/mouth.py): split in two halves that follow one lip each, with a
        # cavity painted between them, or rows that follow both lips by where they lie and stretch.
        upper, lower = np.array(lm.LIPS_UPPER_INNER[1:-1]), np.array(lm.LIPS_LOWER_INNER[1:-1])
        self.mouth_stretches = interior_stretches(self.subject.image, self.subject.landmarks)
        if self.mouth_stretches:
            rows = [(camera[upper] + t * (camera[lower] - camera[upper]), t, t) for t in INTERIOR_ROWS]
        else:
            # The halves part where the photo shows no teeth (below the upper teeth of a smile), each row of
            # points a third of a working pixel from that line.
            margin = 0.3 / self.scale
            at = interior_split(self.subject.image, self.subject.landmarks, margin)
            middle = camera[upper] + at[:, None] * (camera[lower] - camera[upper])
            offset = np.array([0.0, margin, 0.0])  # (camera y is up)
            rows = [(middle + offset, 0.0, at), (middle - offset, 1.0, at)]
        first_mouth = sum(map(len, extra))
        for points, towards_lower, position in rows:
            extra.append(points)
            carrier.append(upper)
            carrier_b.append(lower)
            blend.append(np.full(len(upper), towards_lower))
            between.append(np.full(len(upper), position))
            share.append(np.ones(len(upper)))
            attachment.append(np.ones(len(upper)))
            in_face.append(np.zeros(len(upper), bool))
        self.mouth_split_upper = slice(first_mouth, first_mouth + len(upper))
        self.mouth_split_lower = slice(first_mouth + (len(rows) - 1) * len(upper), first_mouth + len(rows) * len(upper))

        self.extra_source = np.concatenate(extra)
        self.extra_carrier = np.concatenate(carrier)
        self.extra_carrier_b = np.concatenate(carrier_b)
        self.extra_blend = np.concatenate(blend)
        extra_between = np.concatenate(between)
        self.extra_share = np.concatenate(share)
        self.extra_attachment = np.concatenate(attachment)
        self.extra_in_face = np.concatenate(in_face)

        # Ring points that fall outside the head region are dropped (the border pins hold it), past an open side
        # only beyond its pins (region_edges.pinned_box).
        x0, y0, x1, y1 = np.add(self.region, np.multiply(self.open_sides, (-1, -1, 1, 1)) * np.tile(self.region_size, 2)
                                * PINS_BEYOND)
        extra_image = camera_to_image(self.extra_source)
        margin = 2.0 / self.scale
        inside = ((extra_image[:, 0] > x0 + margin) & (extra_image[:, 0] < x1 - 1 - margin)
                  & (extra_image[:, 1] > y0 + margin) & (extra_image[:, 1] < y1 - 1 - margin))
        inside[self.mouth_split_upper.start:self.mouth_split_lower.stop] = True
        keep_extra = np.flatnonzero(inside)
        # Re-index the mouth rows after dropping ring points.
        shift = self.mouth_split_upper.start - int(np.searchsorted(keep_extra, self.mouth_split_upper.start))
        self.mouth_split_upper = slice(self.mouth_split_upper.start - shift, self.mouth_split_upper.stop - shift)
        self.mouth_split_lower = slice(self.mouth_split_lower.start - shift, self.mouth_split_lower.stop - shift)
        self.extra_source = self.extra_source[keep_extra]
        self.extra_carrier = self.extra_carrier[keep_extra]
        self.extra_carrier_b = self.extra_carrier_b[keep_extra]
        self.extra_blend = self.extra_blend[keep_extra]
        self.extra_share = self.extra_share[keep_extra]
        self.extra_attachment = self.extra_attachment[keep_extra]
        self.extra_in_face = self.extra_in_face[keep_extra]
        # What sealing lips change, per unit of negative jaw_open: the seal's offsets carried by where each
        # point lies between its carriers, instead of by `blend` (the rig is linear in each sign of a channel).
        sealing = np.zeros(len(CHANNEL_INDEX))
        sealing[JAW] = -1.0
        seal = self.rig.expression_offsets(sealing)
        self.extra_seal = self._carried(seal, extra_between[keep_extra]) - self._carried(seal, self.extra_blend)

        pins = border_pins(self.work_size, BORDER_PINS_PER_SIDE, self.open_sides)
        self.pins_work = np.column_stack([pins, np.full(len(pins), 1e6)])  # pins are "far": drawn first
        self.source_work = self.control_points_work(camera_to_image(camera), camera_to_image(self.extra_source))

    def _to_work(self, image_points: np.ndarray) -> np.ndarray:
        """Image pixels -> working pixels (x, y), z kept for depth ordering."""
        out = np.array(image_points, dtype=np.float64, copy=True)
        out[:, 0] = (out[:, 0] - self.region[0] + 0.5) * self.scale - 0.5
        out[:, 1] = (out[:, 1] - self.region[1] + 0.5) * self.scale - 0.5
        return out

    def _eyeball(self, iris: tuple[int, ...], side: str, other_sclera: np.ndarray | None = None) -> Eyeball:
        """The eye's sclera with the iris removed, and the iris as a whole disc, from the source photo."""
        points = self.subject.landmarks[:, :2].astype(np.float64) - self.region[:2]
        centre, radius = lm.iris_circle(points, iris)
        upper, lower = lm.eye_lids(side)
        return build_eyeball(self.source_region, centre, radius, points[list(upper)], points[list(lower)],
                             self.palette, other_sclera)

    def _lip_colour(self) -> np.ndarray:
        outer = self.subject.landmarks[list(lm.LIPS_LOWER_OUTER), :2]
        inner = self.subject.landmarks[list(lm.LIPS_LOWER_INNER), :2]
        samples = ((outer + inner) / 2).round().astype(int)
        height, width = self.subject.image.shape[:2]
        samples[:, 0] = samples[:, 0].clip(0, width - 1)
        samples[:, 1] = samples[:, 1].clip(0, height - 1)
        return np.median(self.subject.image[samples[:, 1], samples[:, 0]].astype(np.float32), axis=0)

    # ----- per frame --------------------------------------------------------

    def target_points(self, values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Targets: (landmarks in image pixels, extra points in image pixels, all control points in working pixels)."""
        rig = self.rig
        expression = rig.lids_kept_apart(rig.expression_offsets(values))
        landmarks_image = camera_to_image(rig.move_with_head(rig.source_camera + expression, values))
        held = camera_to_image(rig.move_with_head(self.outline_camera + expression, values))
        landmarks_image = without_inward_lead(landmarks_image, held, held[list(lm.FACE_OVAL), :2].mean(axis=0))
        carried = self._carried(expression, self.extra_blend)
        if values[JAW] < 0:  # sealing lips fold the mouth interior onto the seal line
            carried += -values[JAW] * self.extra_seal
        extra_camera = self.extra_source + self.extra_share[:, None] * carried
        extra_image = camera_to_image(rig.move_with_head(extra_camera, values, self.extra_attachment))
        return landmarks_image, extra_image, self.control_points_work(landmarks_image, extra_image)

    def _carried(self, offsets: np.ndarray, blend: np.ndarray) -> np.ndarray:
        """Each extra point's share of its carriers' offsets: (1 - blend) of the first, blend of the second."""
        first = offsets[self.extra_carrier]
        return first + blend[:, None] * (offsets[self.extra_carrier_b] - first)

    def control_points_work(self, landmarks_image: np.ndarray, extra_image: np.ndarray) -> np.ndarray:
        """All control points in working pixels, in triangulation order (past the region where the photo's
        edge cuts the face: held at the edge, a turn stretched a cut eye's last pixels into bars)."""
        # The lips' edges close onto the rig's inner contours, where sealed lips meet.
        opening = np.clip(lm.signed_lip_gap(landmarks_image) / max(self.source_lip_gap, 1e-6), 0.0, 1.0)
        mesh_landmarks = landmarks_image[self.landmark_ids].copy()
        mesh_landmarks[:, :2] += opening * self.lip_edges[self.landmark_ids]
        work = np.concatenate([
            self._to_work(mesh_landmarks),
            self._to_work(extra_image),
            self.pins_work,
        ])
        return work

    def render(self, values: np.ndarray, onto: np.ndarray | None = None) -> np.ndarray:
        """The animated photo for one frame of channel values (full resolution, uint8 RGB); with `onto`,
        this face rendered into that frame of the photo, in place (see render_with_fields)."""
        return self.render_with_fields(values, keep_fields=False, onto=onto).frame

    def render_with_fields(self, values: np.ndarray, keep_fields: bool = True, cut_out: bool = False,
                           onto: np.ndarray | None = None) -> "WarpedFrame":
        """The frame and, with `keep_fields`, what was computed on the way (for the refine engine and its training).

        `cut_out`: the moved person is left unblended over the background (for a frame with alpha, where
        the uncovered background is transparent instead of inpainted).
        `onto`: a frame of the same photo that other faces were already rendered into; this face is warped
        from its pixels (so a neighbour's motion inside this head's region moves on with it, never torn or
        erased) and written into it, in place, where this face moves."""
        values = np.asarray(values, dtype=np.float64)
        target_image, extra_image, target_work = self.target_points(values)
        frame = self.frames.take() if onto is None else onto
        gazing = [(iris, side) for iris, side in lm.IRISES  # a gaze moves no control point, only the drawn iris
                  if np.abs(target_image[iris[0], :2] - self.subject.landmarks[iris[0], :2]).max() > MOVING_EPSILON / self.scale]
        if not keep_fields and not gazing and np.abs(target_work - self.source_work).max() <= STILL_POINTS * MOVING_EPSILON:
            # Every map below interpolates, averages or takes medians of the control points' displacements,
            # so none of its pixels can move more than they do: the face is still (in a group photo's idle,
            # most faces are, most frames), and the fields need not be made to find that out.
            return WarpedFrame(frame, None, target_image)
        x0, y0, x1, y1 = self.region
        texture = self.source_region if onto is None else onto[y0:y1, x0:x1]
        affines, usable = triangle_affines(target_work, self.source_work, self.triangles)
        index_image = triangle_index_image(target_work, self.triangles, usable, self.work_size, in_front=self.face_triangles)
        displacement = exact = displacement_from_index(index_image, target_work, self.triangles, affines)
        face_cover = (index_image >= 0) & self.face_layer[np.maximum(index_image, 0)]
        face_width = self.subject.face_width * self.scale
        face_field, face_reach = smooth_face_edge(displacement, face_cover, FACE_EXTRAPOLATION, FACE_EDGE_BAND * face_width,
                                                  FACE_EDGE_SMOOTHING * face_width, FACE_EDGE_SMOOTHED * face_width)
        folds = (face_folds(exact, face_field, face_cover, SILHOUETTE_REACH, turned_cells(
            self.source_work, target_work, self.fold_triangles, face_cover.shape)) if self.scale < 1 else None)  # (scale 1: exact)
        face_cover = fill_notches(face_cover, face_reach, FACE_NOTCH * face_width)
        back = self._back_layer(displacement, (index_image >= 0) & ~face_cover)
        if self.moving_behind is not None:
            back.field *= self.moving_behind
        displacement = back.field.copy()
        cv2.copyTo(face_field, face_cover.view(np.uint8), displacement)  # (numpy's where is 5x slower)
        result = WarpedFrame(frame, displacement, target_image)
        if keep_fields:
            result.painted, result.uncovered = (np.zeros(self.region_size[::-1], np.float32) for _ in range(2))
        # (A max over the last axis of length 2 is a slow numpy reduction: milliseconds at this size.)
        moving = (np.abs(displacement[..., 0]) > MOVING_EPSILON) | (np.abs(displacement[..., 1]) > MOVING_EPSILON)
        for iris, side in gazing:  # the gazing eye is "moving"
            eye = target_work[[self.landmark_position[i] for i in lm.eye_polygon(side)], :2]
            (ex0, ey0), (ex1, ey1) = np.floor(eye.min(axis=0)).astype(int), np.ceil(eye.max(axis=0)).astype(int) + 1
            moving[max(ey0, 0):max(ey1, 0), max(ex0, 0):max(ex1, 0)] = True
        if not moving.any():
            return result
        box = self._moving_box(moving)
        full = self._full_resolution_displacement(displacement, box, target_work)
        silhouette = self._resolve_silhouette(full, box, face_cover, face_field, face_reach, back)
        region, warped_mask = self._warp_region(full, box, silhouette, cut_out, texture,
                                                (squeeze_weight(face_field, back.field, face_cover),
                                                 self._widen_weight(values, face_field, face_cover, target_work)))
        folded = draw_folds(region, texture, box, folds, self.scale, self._work_to_region(target_work),
                            self.source_region_points, self.triangles, self.face_triangles, self.edge_fade)
        result.box, result.person = box, warped_mask
        remapped = region.copy() if keep_fields else None
        region = self._draw_irises(region, full, target_image, box, folded)
        if not self.mouth_stretches:  # a wide-open mouth's own interior shows, stretched or folded away
            region = paint_cavity(region, extra_image[self.mouth_split_upper, :2], extra_image[self.mouth_split_lower, :2],
                                  target_image, (self.region[0] + box[0], self.region[1] + box[1]),
                                  self.mouth_colour, self.teeth_colour, self.palette)
        sealing = seal_strength(self.source_lip_gap, lm.signed_lip_gap(target_image))
        region = seal_lips(region, target_image, (self.region[0] + box[0], self.region[1] + box[1]), sealing, self.palette,
                           self.seal_rims)
        region = self._paint_closed_eyes(region, target_image, values, box)
        bx0, by0, bx1, by1 = box
        frame[y0 + by0:y0 + by1, x0 + bx0:x0 + bx1] = region
        if keep_fields:
            result.painted[by0:by1, bx0:bx1] = (region != remapped).any(axis=2)
            result.uncovered[by0:by1, bx0:bx1] = np.clip(self.mask[by0:by1, bx0:bx1] - warped_mask, 0.0, 1.0)
        return result

    def _full_resolution_displacement(self, displacement: np.ndarray, box: tuple[int, int, int, int],
                                      target_work: np.ndarray) -> np.ndarray:
        """Displacement in region pixels over `box`: the working field upsampled, with the eyes and
        mouth computed exactly at full resolution (a closing eyelid or a lip line is thinner than a
        working pixel, and upsampling would leave a sliver of iris showing through a closed eye)."""
        bx0, by0, bx1, by1 = box
        if self.scale >= 1:
            return displacement[by0:by1, bx0:bx1].copy()
        full = upsampled_to_box(displacement, self.scale, box) / self.scale
        target_region = self._work_to_region(target_work)
        source_region = self.source_region_points
        affines, usable = triangle_affines(target_region, source_region, self.triangles)
        for ids, pad in self.detail_windows:
            points = target_region[ids, :2]  # the window holds the eye or mouth where the frame shows it
            span = np.ptp(points, axis=0).max()
            wx0, wy0 = np.floor(points.min(axis=0) - pad * span).astype(int)
            wx1, wy1 = np.ceil(points.max(axis=0) + pad * span).astype(int)
            wx0, wy0, wx1, wy1 = max(wx0, bx0), max(wy0, by0), min(wx1, bx1), min(wy1, by1)
            if wx1 - wx0 < 2 or wy1 - wy0 < 2:
                continue
            full[wy0 - by0:wy1 - by0, wx0 - bx0:wx1 - bx0] = piecewise_affine_displacement(
                target_region, self.triangles, affines, usable, (wx1 - wx0, wy1 - wy0), (wx0, wy0),
                in_front=self.face_triangles)
        return full

    def _back_layer(self, displacement: np.ndarray, behind: np.ndarray) -> "BackLayer":
        """The map of everything behind the face (hair, ears, neck, backdrop) on its own, smoothed
        (warp_math.smooth_behind_face): `behind` says where `displacement` is that of a triangle behind the face."""
        field, weight = smooth_behind_face(displacement, behind, BACK_SMOOTHING, self.border_ramp, MOVING_EPSILON)
        return BackLayer(field, weight)

    def _resolve_silhouette(self, full: np.ndarray, box: tuple[int, int, int, int], face_cover: np.ndarray,
                            face_field: np.ndarray, face_reach: np.ndarray, back: "BackLayer") -> "SilhouetteEdge | None":
        """Redo `full` (in place) near the face's silhouette at full resolution; return its anti-aliased edge.

        Where the turning face covers hair or backdrop, the displacement jumps
        from the face's map to the background's. Upsampled from the working
        resolution, that jump is a staircase of working pixels, and between
        the two maps the interpolation samples neither surface (specks, skin
        jutting into the hair). Here each layer's map is taken on its own
        (extrapolated a little past its edge), the face's coverage is a soft
        mask interpolated to a smooth edge, each pixel takes the map of the
        layer that covers it, and the pixels the edge crosses are blended
        between the two layers by how much of them the face covers.
        """
        kernel = np.ones((2 * SILHOUETTE_REACH + 1,) * 2, np.uint8)
        cover = face_cover.astype(np.uint8)
        zone = cv2.dilate(cover, kernel) != cv2.erode(cover, kernel)
        if not zone.any():
            return None
        bx0, by0, bx1, by1 = box
        if self.scale >= 1:  # a small head's working grid is its pixels: read, not interpolated
            ys, xs = np.nonzero(zone[by0:by1, bx0:bx1])
        else:
            ys, xs = pixels_of_cells(*np.nonzero(zone), self.scale, box)
        if len(ys) == 0:
            return None
        work_x = ((bx0 + xs + 0.5) * self.scale - 0.5).astype(np.float32)
        work_y = ((by0 + ys + 0.5) * self.scale - 0.5).astype(np.float32)

        def at_pixels(field: np.ndarray) -> np.ndarray:
            return field[ys + by0, xs + bx0] if self.scale >= 1 else sample_at(field, work_x, work_y)

        front = at_pixels(face_field) / self.scale
        # The background layer's smooth map, interpolated (it is defined a little under the face's edge, where
        # the face hides it, by the normalised Gaussian's reach).
        back_defined = at_pixels(back.weight) > BACK_REACH
        back = at_pixels(back.field) / self.scale
        # A layer that does not reach a pixel (for the face: with all four interpolated neighbours) cannot show there.
        front_defined = at_pixels(face_reach.astype(np.float32)) > 0.999
        coverage = edge_coverage(at_pixels(layer_coverage(face_cover)), self.scale, self.edge_fade)
        coverage = np.where(back_defined, np.where(front_defined, coverage, 0.0), 1.0)
        in_front = coverage >= 0.5
        full[ys, xs] = np.where(in_front[:, None], front, back)
        edge = (coverage > 0) & (coverage < 1)
        other = np.where(in_front[:, None], back, front)[edge]
        return SilhouetteEdge(ys[edge], xs[edge], other, np.maximum(coverage, 1 - coverage)[edge].astype(np.float32))

    def _widen_weight(self, values: np.ndarray, face_field: np.ndarray, face_cover: np.ndarray,
                      target_work: np.ndarray) -> "Squeezed | None":
        """squeeze.widen_weight for this frame: where the head's turn or nod widens the photo several times."""
        turned = self._to_work(camera_to_image(self.rig.move_with_head(self.rig.source_camera, values))[self.landmark_ids])
        by_turn = turn_widening(face_cover.shape, self.source_work, turned, target_work, self.fold_triangles)
        return None if by_turn is None else widen_weight(face_field, face_cover, FACE_EDGE_BAND * self.subject.face_width
                                                         * self.scale, target_work[self.mouth_outline, :2], by_turn)

    def _work_to_region(self, points: np.ndarray) -> np.ndarray:
        out = points.copy()
        out[:, :2] = (out[:, :2] + 0.5) / self.scale - 0.5
        return out

    def _moving_box(self, moving: np.ndarray) -> tuple[int, int, int, int]:
        """Box (region pixels) around every working pixel that moves, padded by one working pixel."""
        rows, cols = np.flatnonzero(moving.any(axis=1)), np.flatnonzero(moving.any(axis=0))
        width, height = self.region_size
        x0 = max(0, int((cols[0] - 1) / self.scale)); x1 = min(width, int(np.ceil((cols[-1] + 2) / self.scale)))
        y0 = max(0, int((rows[0] - 1) / self.scale)); y1 = min(height, int(np.ceil((rows[-1] + 2) / self.scale)))
        return x0, y0, x1, y1

    def _warp_region(self, full: np.ndarray, box: tuple[int, int, int, int], silhouette: "SilhouetteEdge | None" = None,
                     cut_out: bool = False, texture: np.ndarray | None = None,
                     prefilters: tuple["Squeezed | None", ...] = ()) -> tuple[np.ndarray, np.ndarray]:
        """Warp the full-resolution pixels of `texture` (the head region's pixels; default the photo's) inside
        `box` by displacement `full` (prefiltered where it squeezes or widens the photo: `prefilters`,
        squeeze_weight's and widen_weight's),
        anti-alias the face's silhouette and (unless `cut_out`) composite uncovered background: the pixels
        and the warped person mask."""
        texture = self.source_region if texture is None else texture
        bx0, by0, bx1, by1 = box
        if self._pixel_grid is None:
            width, height = self.region_size
            self._pixel_grid = np.dstack(np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32)))
        where_from = full + self._pixel_grid[by0:by1, bx0:bx1]  # one (x, y) map: both remaps read it
        warped_mask = cv2.remap(self.mask, where_from, None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        edge = silhouette is not None and len(silhouette.rows) > 0
        if edge:
            # The person mask is anti-aliased with the colour (below), or the background composite would cut
            # the blended edge back to a hard one.
            rows, cols = silhouette.rows, silhouette.cols
            other_x = (silhouette.other[:, 0] + cols + bx0).astype(np.float32)
            other_y = (silhouette.other[:, 1] + rows + by0).astype(np.float32)
            weight = silhouette.weight
            warped_mask[rows, cols] = weight * warped_mask[rows, cols] + (1 - weight) * sample_at(self.mask, other_x, other_y)
        still_mask = self.mask[by0:by1, bx0:bx1]
        sampled, sampled_from = texture, where_from
        if self.past_edges is not None:  # (a group's frame: inside the photo's extension)
            sampled, shift = self.past_edges
            if texture is not self.source_region:
                sampled = framed_in_extension(sampled, shift, texture, self.open_sides, self.cut_sides)
            sampled_from = where_from + shift
        warped = remap_where_seen(sampled, (sampled_from, None), warped_mask, still_mask, TEXTURE_INTERPOLATION)
        for squeezed in prefilters:
            prefilter_squeezed(warped, sampled, sampled_from, squeezed, self.scale, box)
        if edge:
            blended = weight[:, None] * warped[rows, cols] + (1 - weight[:, None]) * sample_at(texture, other_x, other_y)
            warped[rows, cols] = np.clip(blended + 0.5, 0, 255).astype(np.uint8)

        # Inside the person the warped photo is the answer. Elsewhere blend it over the
        # background: the photo as it was, or the background plate where the person
        # moved away and uncovered it. Only those pixels pay for the blend.
        plate = None if cut_out else self.background_plate[by0:by1, bx0:bx1]
        blend_over_background(warped, warped_mask, texture[by0:by1, bx0:bx1], still_mask, plate)
        return warped, warped_mask

    def _draw_irises(self, region: np.ndarray, full: np.ndarray, target_image: np.ndarray,
                     box: tuple[int, int, int, int], folded: np.ndarray | None = None) -> np.ndarray:
        """Draw each iris as a rigid disc where the rig put it, over the warped eyeball, clipped by the lids.

        The warp moves the eye (lids, sclera, and the iris with them) like the skin around it. Where the rig
        moves the iris relative to the eye (gaze), the eye opening is redrawn: the sclera with the iris
        removed, warped with the eye and turned with the gaze (eyes.eyeball_turn), and over it the source's
        iris disc, mapped rigidly to where the rig put the iris's landmarks, so it keeps its shape and size;
        the opening's anti-aliased outline clips it, so the lids cover it as they would, and a nose folding
        over the eye (`folded`: draw_folds' pixels) clips it so too.
        """
        bx0, by0, bx1, by1 = box
        for eyeball, (iris, side) in zip(self.eyeballs, lm.IRISES):
            if not eyeball.whole:  # cut by the photo's edge: its iris, redrawn, was the edge's pixels as grey bars
                continue
            opening = target_image[list(lm.eye_polygon(side)), :2] - (self.region[0] + bx0, self.region[1] + by0)
            centre = target_image[iris[0], :2] - (self.region[0] + bx0, self.region[1] + by0)
            pad = eyeball.radius * IRIS_FILL + 2
            x0, y0 = np.floor(np.minimum(opening.min(axis=0), centre - pad)).astype(int)
            x1, y1 = np.ceil(np.maximum(opening.max(axis=0), centre + pad)).astype(int) + 1
            x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, bx1 - bx0), min(y1, by1 - by0)
            if x1 - x0 < 2 or y1 - y0 < 2:
                continue
            # Where the eyeball point under the iris's target came from: the gaze is the rest of the way.
            cx, cy = np.clip(centre, (x0, y0), (x1 - 1, y1 - 1))
            gaze = cv2.remap(full, np.float32([[cx]]), np.float32([[cy]]), cv2.INTER_LINEAR,
                             borderMode=cv2.BORDER_REPLICATE)[0, 0] + (cx + bx0, cy + by0) - eyeball.centre
            strength = float(np.clip(np.hypot(*gaze) / (IRIS_STILL * eyeball.radius), 0.0, 1.0))
            if strength <= 0:
                continue
            source_x = full[y0:y1, x0:x1, 0] + np.arange(x0 + bx0, x1 + bx0, dtype=np.float32)[None, :] - eyeball.origin[0]
            source_y = full[y0:y1, x0:x1, 1] + np.arange(y0 + by0, y1 + by0, dtype=np.float32)[:, None] - eyeball.origin[1]
            corners = opening[[0, len(lm.eye_lids(side)[0]) - 1]] - (x0, y0)  # its upper lid runs corner to corner
            turn = eyeball_turn((x1 - x0, y1 - y0), corners, centre - (x0, y0), gaze, eyeball.sclera_beside)
            sclera = cv2.remap(eyeball.sclera, source_x + turn[..., 0], source_y + turn[..., 1], cv2.INTER_LINEAR,
                               borderMode=cv2.BORDER_REPLICATE)
            # The iris is rigid: its pixels come from the photo's iris by the affine map that carries the rig's
            # iris landmarks (centre and rim: the gaze, and the head's turn foreshortening the disc) back to the
            # photo's. Sampled through the warp field instead, it would be squashed wherever the lids move and
            # the eye's skin stretches with them.
            to_source = affine_fit(target_image[list(iris), :2] - (self.region[0] + bx0, self.region[1] + by0),
                                   self.subject.landmarks[list(iris), :2] - np.add(self.region[:2], eyeball.origin))
            grid_x = np.arange(x0, x1, dtype=np.float64)[None, :]
            grid_y = np.arange(y0, y1, dtype=np.float64)[:, None]
            iris_x = (to_source[0, 0] * grid_x + to_source[0, 1] * grid_y + to_source[0, 2]).astype(np.float32)
            iris_y = (to_source[1, 0] * grid_x + to_source[1, 1] * grid_y + to_source[1, 2]).astype(np.float32)
            iris_texture = cv2.remap(eyeball.iris, iris_x, iris_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
            local_centre = eyeball.centre - eyeball.origin
            # Anti-aliased disc edge: coverage falls from 1 to 0 over one source pixel at the rim.
            iris_alpha = np.clip(eyeball.radius * IRIS_DISC + 0.5 - np.hypot(iris_x - local_centre[0], iris_y - local_centre[1]),
                                 0.0, 1.0)[..., None]
            inside = np.zeros((y1 - y0, x1 - x0), np.float32)
            cv2.fillPoly(inside, [np.round((opening - (x0, y0)) * 16).astype(np.int32)], 1.0, cv2.LINE_AA, shift=4)
            # Only pixels warped from the eye's own opening are redrawn: on a turn the nose passes in front of
            # the far eye's inner corner, and an iris drawn there would show through the nose.
            # The contour runs on the lid rims; the eye shows up to the lashes (Eyeball.opening says where).
            inside = grow_opening(inside, eyeball.radius)
            inside = soften_at_folds(inside * cv2.remap(eyeball.opening, source_x, source_y, cv2.INTER_LINEAR,
                                                        borderMode=cv2.BORDER_CONSTANT), folded, (x0, y0, x1, y1))
            eye = sclera + iris_alpha * (iris_texture.astype(np.float32) - sclera)
            patch = region[y0:y1, x0:x1].astype(np.float32)
            alpha = strength * inside[..., None]
            region = region.copy() if region is self.source_region else region
            region[y0:y1, x0:x1] = np.clip(patch + alpha * (eye - patch) + 0.5, 0, 255).astype(np.uint8)
        return region

    def _paint_closed_eyes(self, region: np.ndarray, target_image: np.ndarray, values: np.ndarray,
                           box: tuple[int, int, int, int]) -> np.ndarray:
        """Cover a closing eye with lid skin.

        Warping alone stretches the thin lid margin (lashes, shadow) over the eye and leaves a dark smear that
        reads as a squint. As the blink closes, the opening and the stretched margin are repainted as lid skin
        (closed_lid) and a lash line is drawn where the lids meet.
        """
        origin = np.array([self.region[0] + box[0], self.region[1] + box[1]], dtype=np.float64)
        for side, channel in (("left", "blink_l"), ("right", "blink_r")):
            strength = float(np.clip((values[CHANNEL_INDEX[channel]] - 0.35) / 0.55, 0.0, 1.0))
            if strength <= 0:
                continue
            upper_ids, lower_ids = map(list, lm.eye_lids(side))
            # The lids as smooth curves: their landmarks joined by straight lines put corners in the lash line.
            target_upper = smooth_curve(target_image[upper_ids, :2] - origin)
            # The open lid where this frame has the eye: the photo's lid carried by its corners (they stay in
            # a blink). Taken where the photo has it, a turned head's lid lay 30 px off, and the band between
            # the two was painted as lid skin across the temple and the hair.
            source_upper = similarity_through(smooth_curve(self.subject.landmarks[upper_ids, :2] - origin),
                                              target_upper[[0, -1]])
            target_lower = smooth_curve(target_image[lower_ids, :2] - origin)
            eye_width = float(np.linalg.norm(target_upper[0] - target_upper[-1]))
            pad = max(int(0.35 * eye_width), int(np.ceil(3 * self.palette.line_blur))) + 3  # the lash line's reach
            corners = np.concatenate([source_upper, target_upper, target_lower])
            px0, py0 = np.maximum(np.floor(corners.min(axis=0)).astype(int) - pad, 0)
            px1, py1 = np.minimum(np.ceil(corners.max(axis=0)).astype(int) + pad, region.shape[1::-1])
            if px1 - px0 < 4 or py1 - py0 < 4:
                continue
            offset = np.array([px0, py0])
            opening = np.concatenate([target_upper, target_lower[::-1]]) - offset
            stretched_margin = np.concatenate([source_upper, target_upper[::-1]]) - offset
            eye = polygon_mask((py1 - py0, px1 - px0), [opening, stretched_margin])
            # The corners too: the photo's white beside each corner lies past the lids' landmarks, and left
            # there it is inpainted into the lid as a pale streak that reads (to people and trackers) as an eye.
            for corner in (target_upper[0], target_upper[-1]):
                cv2.circle(eye, tuple(np.round((corner - offset) * 16).astype(int)), round(16 * CORNER_REACH * eye_width),
                           255, -1, cv2.LINE_8, 4)
            patch = np.ascontiguousarray(region[py0:py1, px0:px1])
            lashes = lashes_to_repaint(patch, source_upper - offset, target_upper[[0, -1]] - offset, eye_width, eye)
            line = target_upper - offset
            lid = closed_lid(patch, eye, line, eye_width, lashes)
            grain = self.palette.grain_at((int(origin[0]) + px0, int(origin[1]) + py0), lid.shape[:2])
            lid = np.clip(lid + grain * (np.maximum(eye, lashes)[..., None] > 0), 0, 255)
            # The lash line where the lids meet, soft, in a shade, as real closed eyes read.
            lash = closed_lash_line(lid.shape[:2], line, eye_width, self.palette.line_blur)[..., None]
            lid = np.clip(lid + lash * (self.lash_colour[side] - lid.astype(np.float32)) + 0.5, 0, 255).astype(np.uint8)
            blended = patch.astype(np.float32) + strength * (lid.astype(np.float32) - patch)
            region = region.copy() if region is self.source_region else region
            region[py0:py1, px0:px1] = np.clip(blended + 0.5, 0, 255).astype(np.uint8)
        return region
