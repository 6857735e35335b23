"""Frame buffers that are reused once nobody holds them.

A fresh full-resolution frame costs more than rendering it on a large
photo: copying a 4096² photo into new memory takes ~50 ms, most of it the
kernel handing out fresh pages. Only the head region ever differs from the
photo, so a buffer that its last user let go of is made a clean copy of the
photo again by restoring that region alone (~3 ms).
"""
from __future__ import annotations

import sys

import numpy as np

MAX_BUFFERS = 6  # kept for reuse: the frames a pipeline holds at once (encoding, writing); beyond, plain copies


class FrameBuffers:
    """Copies of `image` whose pixels outside `region` nobody changes (the engines only write inside it)."""

    def __init__(self, image: np.ndarray, region: tuple[int, int, int, int]):
        self.image = image
        self.region = region
        self._buffers: list[np.ndarray] = []

    def take(self) -> np.ndarray:
        """A buffer equal to the image, owned by the caller until it drops every reference to it."""
        x0, y0, x1, y1 = self.region
        for buffer in self._buffers:
            # Referenced only by this list and by getrefcount's own argument: nobody else holds it (a view
            # of it holds it too, through its base).
            if sys.getrefcount(buffer) <= 3:
                buffer[y0:y1, x0:x1] = self.image[y0:y1, x0:x1]
                return buffer
        buffer = self.image.copy()
        if len(self._buffers) < MAX_BUFFERS:
            self._buffers.append(buffer)
        return buffer
