"""A photo's lips as the jaw_open channel moves them, and speech fitted to them.

jaw_open is relative to the photo: 0 is its mouth as it is, 1 opens it as far as the rig opens a mouth,
-1 closes it until the lips seal. Speech (lip-sync, the talk preset) is made for a mouth that is closed at
rest; on a photo whose mouth is open (a laugh, mid-word) the same curve would only open it further, and the
lips would never meet. `MouthOpening.jaw_for` turns an opening measured from closed lips into the jaw_open
that gives it on this photo: below the photo's own opening, a negative one.

The backend measures a photo's MouthOpening with its rig (rig.mouth_opening_of) and sends it with every
analysis (the summary's "mouth"), so the Blender add-on fits presets to the portrait without a rig of its own.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class MouthOpening:
    """A photo's lips as jaw_open moves them (gaps in mouth widths, landmarks.signed_lip_gap): their gap in
    the photo, how much further jaw_open 1 opens them and how much jaw_open -1 closes them (to sealed). The
    rig is linear in each sign of a channel, so these three say where any jaw_open puts the lips."""

    gap: float
    opens: float
    closes: float

    def jaw_for(self, opening: np.ndarray) -> np.ndarray:
        """jaw_open values that part the lips by `opening` (0 touching .. 1 as far as jaw_open 1 opens a
        closed mouth, i.e. `opens`), from this photo: below its own gap, a negative jaw_open."""
        wanted = np.asarray(opening, np.float64) * self.opens
        return np.where(wanted >= self.gap, (wanted - self.gap) / max(self.opens, 1e-6),
                        (wanted - self.gap) / max(self.closes, 1e-6))

    def to_dict(self) -> dict[str, float]:
        # Unrounded: a motion fitted on the client to a server's analysis is the one fitted there.
        return {"gap": float(self.gap), "opens": float(self.opens), "closes": float(self.closes)}

    @classmethod
    def from_dict(cls, fields: Any) -> "MouthOpening | None":
        """The MouthOpening an analysis summary's "mouth" describes; None if it is missing or not three
        finite numbers (an older backend's summary has none)."""
        try:
            values = [float(fields[name]) for name in ("gap", "opens", "closes")]
        except (KeyError, TypeError, ValueError):
            return None
        return cls(*values) if all(np.isfinite(values)) else None


# Lips that touch, opened by jaw_open as given: what a speech's mouth means unless told the photo's own.
CLOSED_LIPS = MouthOpening(gap=0.0, opens=1.0, closes=1.0)
