"""The upper body under the head: a subject's frames with its body moved by the body channels.

The head engine (warp or refine) renders the face first, into a copy of the photo; then the whole person
in the body region, the rendered head with it, is moved by the body's field (engines/body.py). The forward
maps compose (the head moves on the body, the body carries it), so:
  * the head rides with the neck and shoulders wherever they go, and the head region's border, where the
    head engine's own map is the identity, stays seamless: the body's field is smooth across it;
  * the background the moving body uncovers is an inpainted plate of the body region, as the head
    engine's is of the head region; the field is the identity at the region's border (the photo's edges
    where the body is cut off) and beyond the torso, and the still background is never resampled.

A subject without a body (a photo cropped at the neck) has no layer; all-default body motion (and no head
motion to carry) leaves the head engine's frame untouched.
"""
from __future__ import annotations

import cv2
import numpy as np

from .. import landmarks as lm
from ..analysis import Subject
from ..frame_layers import FrameLayers
from .body import BodyField, BodyMotion, clean_mask
from .frame_buffers import FrameBuffers
from .passes_math import blend_region, region_seam_weight
from .background import PERSON_EPSILON, background_plate, blend_over_background, remap_where_seen
from .warp_math import TEXTURE_INTERPOLATION

# Pixels: the body's plate has no backdrop grain this near the person's edge, full grain from twice as far.
# A lean uncovers a band tens of pixels wide, which without grain showed as a smooth, painted patch on a
# grainy backdrop (s12 at 768 px, torso_lean 8: 70 px beside the head). Breathing uncovers slivers a few
# pixels wide, where grain is not seen and misleads capture: the breathing video of test_body_capture was
# read back at r 0.91 without grain, 0.76 with grain from 3 px, 0.95 from 8 (0.88 since the body's field
# reaches the photo's top edge).
BODY_GRAIN_FROM = 8.0
VECTOR_STEP = 4  # pixels: the motion vectors read the previous frame's body motion this coarsely (it is smooth)


def union_of(boxes) -> tuple[int, int, int, int]:
    x0s, y0s, x1s, y1s = zip(*boxes)
    return min(x0s), min(y0s), max(x1s), max(y1s)


class BodyLayer:
    """Renders one subject's frames with its head engine and moves its body under them."""

    def __init__(self, subject: Subject, engine):
        body = subject.body
        if body is None:
            raise ValueError("the subject has no body")
        self.subject, self.engine = subject, engine
        self.region = body.region
        x0, y0, x1, y1 = body.region
        self.in_frame = (slice(y0, y1), slice(x0, x1))  # the region's rows and columns of a frame
        self.field = BodyField.of(body, subject.landmarks[lm.CHIN, :2], subject.image.shape)
        hx0, hy0, hx1, hy1 = subject.head_region
        self.head_box = (hx0 - x0, hy0 - y0, hx1 - x0, hy1 - y0)  # the head region in body region pixels
        # The body region's person mask with the head region's own (finer) one blended in, so that where
        # the head engine moved the head, its moved mask takes the head's place seamlessly.
        self.seam = region_seam_weight(self.head_box, (y1 - y0, x1 - x0))
        self.mask = clean_mask(blend_region(body.mask, subject.mask, self.head_box, self.seam))
        self.share = body.own  # how much of each region pixel is this person's (None: all, a single face)
        if body.own is not None:
            # In a group photo, the people beside this one are the backdrop to its body: they stay still,
            # and what its shoulders uncover of them is theirs (the plate keeps them).
            self.mask *= body.own
        # A patterned backdrop's pattern carried on, as the head's plate does (a door frame behind a leaning
        # head ran on as a smooth grey patch: 2008_001322 #0);
        # near the outline, the backdrop's own texture mirrored in over a fill of its local mean
        # (background.body_texture: foliage beside 2008_001322 #1's head was a grey, specked crescent) where
        # it is fine texture with no direction (mirrored, the astronaut's flag fanned out in streaks), and
        # deeper in grain made up to match the backdrop's nearest it, from BODY_GRAIN_FROM on. And Telea's
        # fill, not the head plate's membrane:
        # where the person mask is hazy inside the torso (0.5-0.6 beside the astronaut's helmet), the plate
        # shows through the moving body, and the capture round trip (test_body_capture) read breathing at
        # r 0.67 with the membrane.
        plate = background_plate(subject.image[y0:y1, x0:x1], self.mask, membrane=False,
                                 made_up_grain_from=BODY_GRAIN_FROM)
        # Inside the head region, the head engine's own plate: where a head rolling and the body leaning
        # uncover the same backdrop, two plates filled each its own way met in a band of another tone along
        # where the hair had been (d9, head_roll 25 with torso_lean 6).
        head_plate = getattr(engine, "warp", engine).background_plate
        self.plate = np.clip(blend_region(plate, head_plate, self.head_box, self.seam) + 0.5, 0, 255).astype(np.uint8)
        self.frames = FrameBuffers(subject.image, union_of([subject.head_region, body.region]))
        # Where this person may be in a frame (region pixels): its still mask, and the head region, in which
        # the head engine may have moved it. Further than the field moves a pixel from here, no pixel of a
        # frame is this person's, moved or still, and the photo stays as it is (blend_over_background).
        person = self.mask >= PERSON_EPSILON
        rows, cols = np.flatnonzero(person.any(axis=1)), np.flatnonzero(person.any(axis=0))
        boxes = [self.head_box] + ([(cols[0], rows[0], cols[-1] + 1, rows[-1] + 1)] if len(rows) else [])
        self.person_box = union_of(boxes)

    def moves(self, values: np.ndarray) -> tuple[np.ndarray, tuple[int, int, int, int]] | None:
        """(backward field at working size, moving box in region pixels) for these values, or None when the
        body stays still."""
        motion = BodyMotion.from_values(values)
        if motion.still:
            return None
        backward = self.field.backward(motion)
        box = self.field.moving_box(backward)
        if box is None:
            return None
        # Only as far as this person reaches (bald_guys' moving boxes held 4.6 million pixels a frame, the
        # reach of their persons 3.0 million): a moved mask is read at most a pixel beyond where the field
        # takes each pixel from.
        reach = int(np.ceil(np.abs(backward).max())) + 2
        px0, py0, px1, py1 = self.person_box
        box = (max(box[0], px0 - reach), max(box[1], py0 - reach), min(box[2], px1 + reach), min(box[3], py1 + reach))
        return (backward, box) if box[0] < box[2] and box[1] < box[3] else None

    def render(self, values: np.ndarray, onto: np.ndarray | None = None) -> np.ndarray:
        """The frame for one full channel vector (into `onto`, a frame of the photo, in place, when given)."""
        moving = self.moves(values)
        if moving is None:
            return self.engine.render(values, onto=onto)
        frame = self.frames.take() if onto is None else onto
        head = self._render_head(values, frame)
        backward, box = moving
        moved, *_ = self._moved(frame[self.in_frame], self.field.where_from(backward, box), box, head,
                                  over_plate=True)
        frame[self._window(box)] = moved
        return frame

    def _render_head(self, values: np.ndarray, frame: np.ndarray) -> tuple | None:
        """The head engine's frame into `frame`; the head's moved box and person mask (None: it did not move)."""
        # (The refine engine's head refiner reads the warp's painted and uncovered fields.)
        keep_fields = hasattr(self.engine, "warp")
        warped = self.engine.render_with_fields(values, keep_fields=keep_fields, onto=frame)
        return None if warped.box is None else (warped.box, warped.person)

    def _current_mask(self, head: tuple | None) -> np.ndarray:
        """The person mask of the frame the head engine made: the still one, the head's moved one in its box."""
        if head is None:
            return self.mask
        (bx0, by0, bx1, by1), person = head
        mask = self.mask.copy()
        hx0, hy0 = self.head_box[:2]
        window = mask[hy0 + by0:hy0 + by1, hx0 + bx0:hx0 + bx1]
        window += self.seam[by0:by1, bx0:bx1] * (person - self.subject.mask[by0:by1, bx0:bx1])
        np.clip(window, 0.0, 1.0, out=window)
        return mask

    def _window(self, box: tuple[int, int, int, int]) -> tuple[slice, slice]:
        """The frame's rows and columns of `box` (region pixels)."""
        x0, y0 = self.region[:2]
        bx0, by0, bx1, by1 = box
        return slice(y0 + by0, y0 + by1), slice(x0 + bx0, x0 + bx1)

    def _moved(self, pixels: np.ndarray, maps: tuple[np.ndarray, np.ndarray], box: tuple[int, int, int, int],
               head: tuple | None, over_plate: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """The body region's `pixels` (of a frame the head engine drew) in `box`, moved by the body's field
        (`maps`, BodyField.where_from's) as this person alone: its mask the still one with the head's moved
        one (`head`: the head's moved box and person mask, None if it did not move); the photo as it was
        where neither the still nor the moved person is; where the person uncovers the backdrop, its plate
        (`over_plate`) or what the field brings there (a frame with alpha, transparent there).
        Returns the moved pixels, the person's still and moved masks in the box, and its mask over the region."""
        bx0, by0, bx1, by1 = box
        mask = self._current_mask(head)
        moved_mask = cv2.remap(mask, *maps, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        still_mask = mask[by0:by1, bx0:bx1]
        moved = remap_where_seen(pixels, maps, moved_mask, still_mask, TEXTURE_INTERPOLATION)
        blend_over_background(moved, moved_mask, pixels[by0:by1, bx0:bx1], still_mask,
                              self.plate[by0:by1, bx0:bx1] if over_plate else None)
        return moved, still_mask, moved_mask, mask

    def move_layers(self, layers: FrameLayers, values: np.ndarray, head: tuple | None, cut_out: bool,
                    in_place: bool = False, previous: np.ndarray | None = None) -> FrameLayers:
        """A frame's layers (as PassRenderer.draw leaves them: the colour, and the alpha of every person in
        the photo, which the person matte is too) with this body moved as `render` moves it (`_moved`; over
        the body's plate unless `cut_out`: the person cut out, the backdrop it uncovers transparent);
        `head`: the head's moved box and person mask, as PassRenderer.draw gives them. The alpha moves where
        the person is, still or moved; the face, eye and mouth mattes with it (they were left where the
        photo had them, 48 px off the face at a lean of 8 on the astronaut), and with `previous` (the values
        of the frame before) the motion vectors carry the body's motion on top of the head's, also back to
        rest. Copies are moved, unless `in_place` (a buffer whose every pixel the caller restores, such as a
        group frame's): a head engine's buffers are restored over the head region alone."""
        moving = self.moves(values)
        if moving is None:
            moved_before = None if previous is None or layers.vector is None else self.moves(previous)
            if moved_before is not None:  # still now, moved in the frame before: the way back is motion too
                box = moved_before[1]
                maps = self.field.where_from(np.zeros_like(moved_before[0]), box)
                bx0, by0, bx1, by1 = box
                nobody = self._current_mask(head)[by0:by1, bx0:bx1] < PERSON_EPSILON
                layers.vector = self._carried_vector(layers.vector, maps, self._window(box), nobody, previous,
                                                     in_place)
            return layers
        backward, box = moving
        maps = self.field.where_from(backward, box)
        window = self._window(box)
        moved, still_mask, moved_mask, person = self._moved(layers.rgb[self.in_frame], maps, box, head,
                                                    over_plate=not cut_out)
        nobody = (moved_mask < PERSON_EPSILON) & (still_mask < PERSON_EPSILON)
        # The people beside this one (a group photo's) stay where they are: the alpha that is not this
        # person's; this person's, moved, goes over them. (The whole alpha moved dragged a neighbour's along:
        # a second copy of her cheek beside her face, ghost outlines where heads had been, 2008_001322.)
        if self.share is None:  # one person: the alpha moves with it (its faint haze over the backdrop too)
            theirs = None
            moved_alpha = cv2.remap(layers.alpha[self.in_frame], *maps, cv2.INTER_LINEAR,
                                    borderMode=cv2.BORDER_REPLICATE)
            moved_alpha[nobody] = layers.alpha[window][nobody]
        else:
            # A group: its alpha holds every person. This one's, moved (its mask: its own head's in the head
            # region), goes over the others', which stay. (The whole alpha moved dragged a neighbour's along: a
            # second copy of her cheek beside her face, ghost outlines where heads had been, 2008_001322.)
            bx0, by0, bx1, by1 = box
            # (where this person neither is nor was, the alpha stays: its faint haze over the backdrop too)
            theirs = np.where(nobody, 1.0, 1.0 - self.share[by0:by1, bx0:bx1]).astype(np.float32)
            moved_alpha = moved_mask + layers.alpha[window] * theirs * (1.0 - moved_mask)
            if cut_out:  # the colour, straight: this person's over theirs
                mine = (moved_mask / np.maximum(moved_alpha, PERSON_EPSILON))[..., None]
                moved = (moved * mine + layers.rgb[window] * (1.0 - mine) + 0.5).astype(np.uint8)
        rgb = layers.rgb if in_place else layers.rgb.copy()
        alpha = layers.alpha if in_place else layers.alpha.copy()
        rgb[window], alpha[window] = moved, moved_alpha
        layers.rgb, layers.alpha = rgb, alpha
        if layers.mattes is not None:  # the face, eye and mouth mattes ride with the head the body carries
            mattes = layers.mattes if in_place else dict(layers.mattes)
            for key in ("face", "eyes", "mouth"):
                plane = mattes[key] if in_place else mattes[key].copy()
                mine = plane[self.in_frame] if theirs is None else plane[self.in_frame] * person
                mine = cv2.remap(mine, *maps, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
                if theirs is None:
                    mine[nobody] = plane[window][nobody]
                plane[window] = mine if theirs is None else np.maximum(mine, plane[window] * theirs)
                mattes[key] = plane
            layers.mattes = mattes
        if layers.vector is not None and previous is not None:
            layers.vector = self._carried_vector(layers.vector, maps, window, nobody, previous, in_place)
        return layers

    def _carried_vector(self, vector: np.ndarray, maps, window, nobody: np.ndarray, previous: np.ndarray,
                        in_place: bool) -> np.ndarray:
        """The Vector pass with the body's motion since `previous` composed onto the head's: a pixel now at p
        came from q (the body's backward map, `maps`); the head put it at q + v(q) in the previous frame before
        its body moved, and the previous body motion carried that point on. Pixels where `nobody` is keep the
        head's vector."""
        x0, y0 = self.region[:2]
        rows, cols = window
        qx, qy = cv2.convertMaps(*maps, cv2.CV_32FC1)  # q, in region pixels
        head = cv2.remap(np.ascontiguousarray(vector[self.in_frame][..., :2]), *maps, cv2.INTER_LINEAR,
                         borderMode=cv2.BORDER_REPLICATE)
        qx += head[..., 0] + x0  # where the pixel was in the previous frame before its body moved, photo pixels
        qy -= head[..., 1] - y0
        # The previous frame's body motion is smooth: read on every VECTOR_STEP-th pixel and interpolated (read
        # on every pixel it took 1.7 s a frame at 2048²).
        coarse = np.stack([qx[::VECTOR_STEP, ::VECTOR_STEP], qy[::VECTOR_STEP, ::VECTOR_STEP]], axis=-1)
        points = coarse.reshape(-1, 2).astype(np.float64)
        shift = (self.move_points(points, previous) - points).reshape(coarse.shape).astype(np.float32)
        shift = cv2.resize(shift, qx.shape[::-1], interpolation=cv2.INTER_LINEAR)
        carried = np.empty(qx.shape + (4,), np.float32)
        carried[..., 0] = qx + shift[..., 0] - np.arange(cols.start, cols.stop, dtype=np.float32)[None, :]
        carried[..., 1] = np.arange(rows.start, rows.stop, dtype=np.float32)[:, None] - qy - shift[..., 1]
        carried[..., 2:] = carried[..., :2]
        out = vector if in_place else vector.copy()
        carried[nobody] = out[window][nobody]
        out[window] = carried
        return out

    def move_points(self, points: np.ndarray, values: np.ndarray) -> np.ndarray:
        """Photo points ((N, 2+) pixels, e.g. the rig's target landmarks) carried by the body's motion."""
        moved = np.array(points, dtype=np.float64, copy=True)
        motion = BodyMotion.from_values(values)
        if not motion.still:
            origin = np.array(self.region[:2], np.float64)
            moved[:, :2] += self.field.forward(moved[:, :2] - origin, motion)
        return moved
