"""Final replies that several job kinds share."""
from __future__ import annotations

from typing import Any

import numpy as np

from ..shared import protocol
from .jobs import Job, ServiceError


def motion_reply(server: Any, job: Job, motion: Any, warnings: list[str], extra: dict) -> list:
    """The final ``motion`` reply (capture, lip-sync): channel names and fps in
    the header, the (frames, channels) float32 values as the "motion" part."""
    if motion.frame_count > server.limits.max_frames:
        raise ServiceError(protocol.E_TOO_LARGE, f"the result has {motion.frame_count} frames; this server's limit is "
                                                 f"{server.limits.max_frames} (use a shorter clip)")
    values = np.ascontiguousarray(motion.values, dtype=np.float32)
    fields = {"channels": list(motion.channels), "fps": float(motion.fps), "frames": int(values.shape[0]),
              "warnings": warnings[:20], **extra}
    return protocol.encode("motion", job.id, fields, {"motion": values}, end=True)


def stopped_reply(job: Job) -> list:
    """The final reply of a capture or lip-sync stopped midway: cancelled, or stalled (its client read nothing)."""
    status = protocol.DONE_STALLED if job.stalled else protocol.DONE_CANCELLED
    return protocol.encode("done", job.id, {"status": status, "frames": 0, "total": job.total}, end=True)
