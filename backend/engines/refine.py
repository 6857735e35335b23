"""The neural engine ("refine"): the warp engine's frame, with the eyes and the mouth made by trained
region generators, and optionally the whole head corrected by a head refiner.

Per frame:
  * the warp engine renders the frame as usual, and we keep what it computed on
    the way (`WarpEngine.render_with_fields`), above all where the rig put the landmarks;
  * with a head refiner (a checkpoint from `enliven train`), the head region is
    resampled to its side, corrected and the correction is pasted back feathered
    (see `_refine_head`);
  * each region that moved (both eyes, the mouth) is cut out as a landmark-aligned
    patch (enliven.engines.regions, the same code training uses), the region
    generator redraws it (lids, lashes, iris; lips, teeth, tongue, cavity) and the
    correction is pasted back through a feathered ellipse at full resolution.

The region generators ship with Enliven (backend/assets/regions/regions.pt, see its
MODEL_CARD.md); `--checkpoint` may name other region generators (from `enliven
train-regions`) or a head refiner (from `enliven train`). Only this module's engine
needs torch; where torch is missing it warns and renders with the warp engine alone.
"""
from __future__ import annotations

import warnings
from pathlib import Path

import cv2
import numpy as np

from .. import landmarks as lm
from ..analysis import Subject
from ..errors import CheckpointError
from .crops import crop_inputs
from .mouth import skin_colour, teeth_pixels, teeth_share
from .regions import RegionInputs, patch_transform, region_inputs, region_shape, source_region
from .warp import MOVING_EPSILON, WarpEngine

FEATHER = 0.06  # the head correction fades to nothing over this fraction of the head region at its border
DEFAULT_REGIONS = Path(__file__).resolve().parent.parent / "assets" / "regions" / "regions.pt"
REGION_STILL = 0.25  # patch pixels: a region whose shape changed less than this is left as the warp made it
OWN_TEETH = 0.1  # a photo whose mouth opening is at least this share teeth keeps them from the mouth network ...
OWN_MOUTH_EDGE = 0.01  # ... (or, wide open, all of its interior) and a margin this wide around (patch sides, sigma)


def feather_weights(width: int, height: int, fraction: float = FEATHER) -> np.ndarray:
    """1 inside, falling smoothly to 0 at the border (the warp pins the region's border)."""
    def ramp(n: int) -> np.ndarray:
        distance = np.minimum(np.arange(n), np.arange(n)[::-1]).astype(np.float32)
        edge = max(1.0, fraction * n)
        t = np.clip(distance / edge, 0.0, 1.0)
        return t * t * (3 - 2 * t)
    return np.outer(ramp(height), ramp(width)).astype(np.float32)


def read_checkpoint(path: Path) -> dict:
    """A checkpoint the refine engine can run, read with weights_only: its "format" is "enliven-refine" (the
    head refiner) or "enliven-regions" (eye and mouth generators); anything else is a CheckpointError."""
    from ..neural.checkpoint import CHECKPOINT_FORMAT, load_checkpoint
    from ..neural.region_config import REGION_FORMAT

    return load_checkpoint(path, expected_format=(CHECKPOINT_FORMAT, REGION_FORMAT))


class RefineEngine:
    """Warp, then redraw the eyes and the mouth (and optionally refine the head). Same interface as WarpEngine."""

    name = "refine"

    def __init__(self, subject: Subject, checkpoint: str | Path | None = None, device: str = "auto",
                 plate: np.ndarray | None = None):
        self.warp = WarpEngine(subject, plate=plate)  # (`plate`: WarpEngine's)
        self.subject = subject
        self.rig = self.warp.rig
        self.refiner = None
        self.regions = None
        if checkpoint is not None and not Path(checkpoint).exists():
            raise CheckpointError(f"No checkpoint '{checkpoint}'. Train one with `enliven train-regions` or "
                                  "`enliven train`, or leave --checkpoint out to use the region generators that "
                                  "ship with Enliven.")
        try:
            import torch  # noqa: F401 - only to know whether the models can run here
        except ImportError:
            warnings.warn("PyTorch is not installed, so the refine engine renders with the warp engine alone "
                          "(install the 'neural' extra: pip install 'enliven[neural]').", RuntimeWarning, stacklevel=2)
            return
        from ..neural.region_inference import shared_corrector

        regions_checkpoint = DEFAULT_REGIONS
        if checkpoint is not None:
            if read_checkpoint(Path(checkpoint))["format"] == "enliven-refine":
                from ..neural.inference import Refiner

                self.refiner = Refiner(checkpoint, device=device)
                width, height = self.warp.region_size
                self.feather = feather_weights(width, height)
            else:
                regions_checkpoint = Path(checkpoint)
        self.regions = shared_corrector(regions_checkpoint, device=device)
        self.sources = {spec.name: source_region(spec, subject.image, subject.landmarks) for spec in self.regions.specs}
        # A photo that shows its own mouth: the mouth network leaves what the warp took from it as it is, the
        # teeth the warp moved with the lips, or all of a wide-open mouth's interior, which the warp stretches.
        # The network learned mostly on closed-mouthed photos whose interior the warp painted: it greys any teeth
        # it is given, darkening the lines between them into a grille (the astronaut talking: her whole upper
        # row), and models trained on the warp with lips_part darken a real tongue to a brownish red (d9).
        self.skin = skin_colour(subject.image, subject.landmarks)
        self.own_mouth_kept = None  # "interior", "teeth" or None (the network draws all of the mouth)
        if self.warp.mouth_stretches:
            self.own_mouth_kept = "interior"
        elif not self.warp.paints_teeth and teeth_share(
                subject.image, subject.landmarks[list(lm.inner_lip_polygon()), :2], self.skin) >= OWN_TEETH:
            self.own_mouth_kept = "teeth"
        self.source_shapes = {spec.name: region_shape(subject.landmarks, patch_transform(subject.landmarks, spec), spec)
                              for spec in self.regions.specs}

    def render(self, values: np.ndarray, onto: np.ndarray | None = None) -> np.ndarray:
        """The animated photo for one frame of channel values (full resolution, uint8 RGB); with `onto`,
        this face rendered into that frame of the photo, in place (see WarpEngine.render_with_fields)."""
        # Only the head refiner reads the warp's fields; the region generators need its landmarks alone.
        return self.render_with_fields(values, keep_fields=self.refiner is not None, onto=onto).frame

    def render_with_fields(self, values: np.ndarray, keep_fields: bool = True, cut_out: bool = False,
                           onto: np.ndarray | None = None):
        """The refined frame with what the warp computed on the way (its moved box and person mask: the
        body layer and the compositing passes composite with them); `cut_out` and `onto` as for the warp."""
        warped = self.warp.render_with_fields(values, keep_fields=keep_fields, cut_out=cut_out, onto=onto)
        if warped.displacement is None or not (np.abs(warped.displacement) > MOVING_EPSILON).any():
            return warped  # all-default motion reproduces the photo exactly, as with the warp engine
        frame = warped.frame
        if self.refiner is not None:
            self._refine_head(frame, warped)
        if self.regions is not None:
            moved = self.moved_regions(frame, warped.target_landmarks)
            if moved:
                weights = [self.own_mouth_weight(inputs) if inputs.spec.kind == "mouth" and self.own_mouth_kept else None
                           for inputs in moved]
                # Only inside the head region: the warp engine reuses frame buffers, restoring that region alone.
                self.regions.correct(frame, moved, self.warp.region, self.warp.palette, weights)
        return warped

    def own_mouth_weight(self, inputs: RegionInputs) -> np.ndarray:
        """(S, S) float32 weight of the mouth's correction: 0 on the photo's own mouth as the warp drew it (the
        whole opening of a wide-open mouth, or the teeth in it), rising to 1 over a pixel or so around it (where
        it blends into the lips). Teeth are looked for between the lips only: pale skin passes for teeth by
        colour (the astronaut's cheeks did, and the network's work on her lips was lost with them)."""
        opening = inputs.target_shape[..., 0] > 0.5  # (shape_raster: the opening between the inner lips)
        own = opening if self.own_mouth_kept == "interior" else teeth_pixels(inputs.warped, self.skin) & opening
        own = own.astype(np.float32)
        around = cv2.GaussianBlur(own, (0, 0), OWN_MOUTH_EDGE * inputs.spec.side)
        return 1.0 - np.clip(2.0 * np.maximum(around, own), 0.0, 1.0)

    def moved_regions(self, frame: np.ndarray, target_landmarks: np.ndarray) -> list[RegionInputs]:
        """The inputs of every region whose shape the rig changed: lids, iris or lips moved within the region.
        A region only carried along by the head (moved, turned, scaled) is what the warp does well, and
        is left exactly as it made it."""
        out = []
        for spec in self.regions.specs:
            transform = patch_transform(target_landmarks, spec)
            change = np.abs(region_shape(target_landmarks, transform, spec) - self.source_shapes[spec.name]).max()
            if change >= REGION_STILL:
                out.append(region_inputs(spec, frame, target_landmarks, self.sources[spec.name], transform))
        return out

    def _refine_head(self, frame: np.ndarray, warped) -> None:
        inputs = crop_inputs(self.warp, warped, self.refiner.side)
        refined = self.refiner(inputs)  # (S, S, 3) float32 0..255
        correction = self.warp.palette.paint(refined - inputs.warped.astype(np.float32))
        width, height = self.warp.region_size
        correction = cv2.resize(correction, (width, height), interpolation=cv2.INTER_LINEAR) * self.feather[..., None]
        x0, y0, x1, y1 = self.warp.region
        region = frame[y0:y1, x0:x1].astype(np.float32) + correction
        frame[y0:y1, x0:x1] = np.clip(region + 0.5, 0, 255).astype(np.uint8)
