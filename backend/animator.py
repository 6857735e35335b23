"""One entry point for making frames: a subject, an engine, channel values in, pictures out."""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from .analysis import Subject
from .engines.body_layer import BodyLayer
from .engines.passes import PassRenderer, finished
from .frame_layers import FrameLayers
from .engines.refine import RefineEngine
from .engines.warp import WarpEngine
from .errors import BadMotionError, UsageError
from .shared.channels import CHANNEL_NAMES

ENGINES = {"warp": WarpEngine, "refine": RefineEngine}
ENGINE_NAMES = tuple(ENGINES)
DEFAULT_ENGINE = "warp"  # where PyTorch is installed too: the refine engine wins its measures but not every target


def check_engine_name(engine: str, checkpoint: str | Path | None = None) -> None:
    """An engine name and, for an engine that has none, no trained model: or a usage error."""
    if engine not in ENGINES:
        raise UsageError(f"Unknown engine '{engine}'. Available: {', '.join(ENGINE_NAMES)}.")
    if engine != "refine" and checkpoint is not None:
        raise UsageError(f"--checkpoint is for the refine engine; the {engine} engine has no trained model.")


class Animator:
    """Renders frames of one subject with one engine; the per-subject work happens here, once."""

    def __init__(self, subject: Subject, engine: str = DEFAULT_ENGINE, checkpoint: str | Path | None = None,
                 plate: np.ndarray | None = None):
        """`plate`: the head's background plate, made beforehand (engines.background.head_plate), or None."""
        check_engine_name(engine, checkpoint)
        self.subject = subject
        self.engine_name = engine
        if engine == "refine":
            self.engine = RefineEngine(subject, checkpoint=checkpoint, plate=plate)
        else:
            self.engine = ENGINES[engine](subject, plate=plate)
        self._passes: PassRenderer | None = None  # made on the first frame that asks for alpha or passes
        # The upper body, moved under the head (none where the photo shows no shoulders).
        self.body = None if subject.body is None else BodyLayer(subject, self.engine)

    def render(self, values: np.ndarray) -> np.ndarray:
        """One frame, (H, W, 3) uint8 RGB at the photo's resolution, for a full channel vector."""
        return self.render_onto(checked_values(values))

    def render_onto(self, values: np.ndarray, onto: np.ndarray | None = None) -> np.ndarray:
        """The frame for checked channel values; with `onto`, rendered into that frame of the photo, in
        place (other faces of a group photo already in it)."""
        if self.body is None:
            return self.engine.render(values, onto=onto)
        return self.body.render(values, onto=onto)

    @property
    def changed_region(self) -> tuple[int, int, int, int]:
        """The part of the photo this subject's frames may differ in: its head region, and its body's."""
        x0, y0, x1, y1 = self.subject.head_region
        if self.body is not None:
            bx0, by0, bx1, by1 = self.body.region
            x0, y0, x1, y1 = min(x0, bx0), min(y0, by0), max(x1, bx1), max(y1, by1)
        return x0, y0, x1, y1

    def render_layers(self, values: np.ndarray, previous: np.ndarray | None = None, alpha: bool = False,
                      passes: bool = False) -> FrameLayers:
        """One frame with, on request, the person's alpha (cut out) and the compositing passes (mattes,
        and the motion vectors since the frame of channel values `previous`)."""
        values = checked_values(values)
        if not (alpha or passes):
            return FrameLayers(self.render_onto(values))
        return finished(self.draw_layers(values, previous, alpha, passes), alpha)

    def draw_layers(self, values: np.ndarray, previous: np.ndarray | None, alpha: bool, passes: bool,
                    canvas: FrameLayers | None = None) -> FrameLayers:
        """This subject's frame drawn into `canvas` (a group frame's, in place; none: a new one), body
        moved with it (see PassRenderer.draw)."""
        previous = None if previous is None else checked_values(previous)
        drawn, head = self.pass_renderer().draw(values, previous, alpha, passes, canvas)
        if self.body is None:
            return drawn
        return self.body.move_layers(drawn, values, head, cut_out=alpha, in_place=canvas is not None,
                                    previous=previous if passes else None)

    def pass_renderer(self, whole_mask: np.ndarray | None = None, in_group: bool = False) -> PassRenderer:
        """The renderer of alpha and passes, made on the first frame that asks for them (`whole_mask`: the
        photo's person mask, when the caller has it; `in_group`: this face is one of several)."""
        if self._passes is None:
            self._passes = PassRenderer(self.engine, whole_mask, in_group)
        return self._passes

    def render_all(self, motion_full: np.ndarray) -> Iterator[np.ndarray]:
        for values in motion_full:
            yield self.render(values)


def checked_values(values: np.ndarray) -> np.ndarray:
    values = np.asarray(values, dtype=np.float64)
    if values.shape != (len(CHANNEL_NAMES),):
        raise BadMotionError(f"A frame needs {len(CHANNEL_NAMES)} channel values, got shape {values.shape}.")
    if not np.isfinite(values).all():
        raise BadMotionError("Channel values must be finite numbers (got NaN or infinity).")
    return values
