"""`preview`: one frame, lowest latency; a newer preview from the same client
replaces one still waiting (the table row's ``newest_wins``)."""
from __future__ import annotations

import time
from typing import Any

from ..frame_formats import rgba_pixels
from ..shared import protocol
from ..shared.protocol import ProtocolError
from .admission import check_room, engine_of, motion_of, need_subject
from .frames import encode_image
from .jobs import Job


def admit(server: Any, job: Job) -> bool:
    msg = job.msg
    job.motion, job.warnings = motion_of(server, msg, 1)
    if job.motion.shape[-2] != 1:
        raise ProtocolError(protocol.E_BAD_MOTION, f"a preview takes one motion frame, got {job.motion.shape[-2]}", msg.job)
    engine_of(server, msg)
    need_subject(server, msg)
    job.total = 1
    check_room(server, job)
    return True


def run(server: Any, job: Job) -> list:
    t0 = time.perf_counter()
    subject = server.engines.subject_for(job.msg)
    max_side = job.msg.fields.get("max_side")  # a quick look at a large photo: rendered at a reduced size
    faces = job.msg.fields.get("faces")
    if faces is not None:
        subjects = server.engines.faces_of(subject, faces)
        animator, lock, notes = server.engines.group(subjects, *engine_of(server, job.msg), max_side=max_side)
        subject = subjects[0] if max_side is None else server.engines.reduced(subjects[0], int(max_side))
    else:
        if max_side is not None:
            subject = server.engines.reduced(subject, int(max_side))
        animator, lock, notes = server.engines.animator(subject, *engine_of(server, job.msg))
    job.warnings.extend(notes)
    if job.cancel.is_set():
        return protocol.encode("done", job.id, {"status": protocol.DONE_CANCELLED}, end=True)
    with lock:
        alpha = bool(job.msg.fields.get("alpha", False))
        if faces is not None:
            layers = animator.render_layers(dict(zip(faces, job.motion[:, 0])), alpha=alpha)
        else:
            layers = animator.render_layers(job.motion[0], alpha=alpha)
    rgb = rgba_pixels(layers)  # RGBA with alpha
    fmt = job.msg.fields.get("format", "raw")
    fields = {"index": 0, "subject": server.engines.subject_id(subject), "width": int(rgb.shape[1]),
              "height": int(rgb.shape[0]), "render_ms": round((time.perf_counter() - t0) * 1000, 2)}
    if job.warnings:
        fields["warnings"] = job.warnings[:20]
    return protocol.encode("frame", job.id, fields, {"image": encode_image(rgb, fmt)}, end=True)
