"""`capture`: motion from a video of someone acting (or an iPhone Live Link
Face CSV) on the server's disk."""
from __future__ import annotations

from typing import Any

from ..shared import protocol
from ..shared.protocol import ProtocolError
from .admission import check_room
from .replies import motion_reply, stopped_reply
from .jobs import Job, JobCancelled

SOURCES = ("video_path", "livelink_path")


def admit(server: Any, job: Job) -> bool:
    fields = job.msg.fields
    sources = [name for name in SOURCES if name in fields]
    if len(sources) != 1:
        raise ProtocolError(protocol.E_BAD_FIELD, "capture: send exactly one of 'video_path' (a video) or "
                            "'livelink_path' (a Live Link Face CSV)", job.id)
    server.paths.readable_path(fields[sources[0]])
    smoothing(fields)  # a bad level or group fails now, not after a queue wait
    strengths(fields)
    check_room(server, job)
    return True


def run(server: Any, job: Job) -> list:
    from ..capture import DEFAULT_MAX_GAP_S, capture_video, retarget
    from ..livelink import load_livelink_csv
    from ..filters import smooth_channels
    from ..shared.motion import Motion

    f = job.msg.fields
    report = server.scheduler.progress_reporter(job)
    extra: dict[str, Any] = {}
    try:
        report("starting", 0, None)
        if "video_path" in f:
            capture = capture_video(server.paths.readable_path(f["video_path"]), f.get("reference", "first"),
                                    smoothing(f), float(f.get("max_gap_s", DEFAULT_MAX_GAP_S)),
                                    int(f.get("face_index", 0)), progress=report, body=f.get("body", True))
            motion, warnings = capture.motion, list(capture.warnings)
            extra = {"reference_frame": capture.reference_frame,
                     "missing_frames": sum(stop - start for start, stop in capture.missing),
                     "body_followed": capture.body_followed}
        else:
            motion = load_livelink_csv(server.paths.readable_path(f["livelink_path"]), f.get("fps"))
            settings = smoothing(f)
            if settings is not None:
                motion = Motion(motion.fps, motion.channels,
                                smooth_channels(motion.values, motion.channels, motion.fps, settings))
            warnings = []
    except JobCancelled:
        return stopped_reply(job)
    factors = strengths(f)
    if factors:
        motion = retarget(motion, factors)
    return motion_reply(server, job, motion, warnings, extra)


def smoothing(fields: dict) -> Any:
    """OneEuroSettings (or None) for a capture request: the named level, by
    default "normal" for a video and "none" for a Live Link CSV (the phone
    already filters)."""
    from ..filters import DEFAULT_SMOOTHING, smoothing_settings

    default = "none" if "livelink_path" in fields else DEFAULT_SMOOTHING
    try:
        return smoothing_settings(fields.get("smoothing", default))
    except ValueError as e:
        raise ProtocolError(protocol.E_BAD_FIELD, f"capture: {e}") from None


def strengths(fields: dict) -> dict[str, float]:
    from ..capture import RETARGET_GROUPS

    factors = {group: float(factor) for group, factor in fields.get("strengths", {}).items()}
    unknown = sorted(set(factors) - set(RETARGET_GROUPS))
    if unknown:
        raise ProtocolError(protocol.E_BAD_FIELD, f"capture: unknown channel group(s) {', '.join(unknown)} in "
                            f"'strengths'; groups are {', '.join(RETARGET_GROUPS)}")
    return factors
