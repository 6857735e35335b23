"""The warp engine's data: a frame and what it computed on the way (WarpedFrame), and the two layers it
resolves at the face's silhouette (BackLayer, SilhouetteEdge)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class WarpedFrame:
    """A warp engine frame and what it computed on the way."""

    frame: np.ndarray  # (H, W, 3) uint8
    displacement: np.ndarray | None  # (work h, work w, 2) float32 backward displacement in working pixels
    # (None only from a frame rendered without keeping its fields, where the face did not move)
    target_landmarks: np.ndarray  # (478, 3) image pixels, where the rig put the landmarks
    painted: np.ndarray | None = None  # (region h, region w) float32, 1 where the warp painted (mouth cavity, closed lids)
    uncovered: np.ndarray | None = None  # (region h, region w) float32, background the moving person uncovered, 0..1
    box: tuple[int, int, int, int] | None = None  # region pixels that moved (None: the photo as it is)
    person: np.ndarray | None = None  # (box h, box w) float32, the person mask warped with the pixels


@dataclass
class BackLayer:
    """The smoothed map of everything behind the face, at working resolution (WarpEngine._back_layer)."""

    field: np.ndarray  # (work h, work w, 2) float32 backward displacement
    weight: np.ndarray  # (work h, work w) float32, the Gaussian's share of covered cells: how far the map reaches


@dataclass
class SilhouetteEdge:
    """Region-box pixels the face's silhouette crosses: the other layer's displacement there and the weight
    of the layer the pixel was warped with (0.5..1)."""

    rows: np.ndarray
    cols: np.ndarray
    other: np.ndarray  # (N, 2) float32
    weight: np.ndarray  # (N,) float32
