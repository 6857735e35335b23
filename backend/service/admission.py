"""Checks that several job kinds make when a request arrives (socket thread),
so a request that could never run fails at once, not after a queue wait."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..shared import protocol
from ..shared.protocol import Message, ProtocolError
from .jobs import Job, ServiceError


def check_room(server: Any, job: Job) -> None:
    """Refuse a job its client has no room for, or that the server's queues cannot take.

    The limit is per client, not per socket (a client could open any number of
    those): its live jobs of this kind on all its sockets count. Since every
    client has its own small limit, no client can fill the shared queue and
    shut the others out."""
    def counts(other: Job) -> bool:
        replaced = job.spec.newest_wins and other.identity == job.identity and other.state == "queued"
        return other.client == job.client and other.spec is job.spec and other.state != "finished" and not replaced

    mine = sum(1 for peer in server.router.peers.values() for other in peer.jobs.values() if counts(other))
    limit = server.limits.max_jobs_per_client
    if mine >= limit:
        raise ServiceError(protocol.E_TOO_MANY_JOBS, f"this client already has {mine} {job.kind} jobs; the limit is "
                                                     f"{limit} (wait or cancel one)")
    if job.spec.newest_wins:
        return  # it replaces its client's queued one rather than growing the queue: scrubbing never waits on a backlog
    queued = server.scheduler.waiting()
    if queued >= server.limits.max_queued_jobs:
        raise ServiceError(protocol.E_BUSY, f"the server has {queued} jobs waiting; try again later")


def motion_of(server: Any, msg: Message, max_frames: int) -> tuple[np.ndarray, list[str]]:
    """A request's motion in table order, finite, within each channel's range (clamped, with warnings):
    (frames, channels), or with 'faces' (faces, frames, channels), each face's group checked on its own."""
    arr = protocol.motion_array(msg.parts["motion"], max_frames=max_frames,
                                max_channels=server.limits.max_channels, job=msg.job)
    faces = msg.fields.get("faces")
    if faces is None:
        if arr.ndim == 3:
            raise ProtocolError(protocol.E_BAD_MOTION, "a motion with a group per face (3 dimensions) needs 'faces'",
                                msg.job)
        return _table_motion(server, msg, arr)
    if arr.ndim != 3 or arr.shape[0] != len(faces):
        raise ProtocolError(protocol.E_BAD_MOTION, f"'faces' names {len(faces)} faces: the motion must be (faces, "
                            f"frames, channels) with {len(faces)} groups, got shape {list(arr.shape)}", msg.job)
    groups, warnings = [], []
    for face, group in zip(faces, arr):
        values, notes = _table_motion(server, msg, group)
        groups.append(values)
        warnings += [f"face {face}: {note}" for note in notes]
    return np.stack(groups), warnings


def _table_motion(server: Any, msg: Message, arr: np.ndarray) -> tuple[np.ndarray, list[str]]:
    from ..shared.motion import Motion, MotionError

    names = msg.fields.get("channels")
    table = server.channel_names
    if names is None:
        if arr.shape[1] != len(table):
            raise ProtocolError(protocol.E_BAD_MOTION, f"motion has {arr.shape[1]} channels but this server's table has "
                                f"{len(table)}; send 'channels' with the names", msg.job)
        names = table
    elif len(names) != arr.shape[1]:
        raise ProtocolError(protocol.E_BAD_MOTION, f"'channels' names {len(names)} channels but motion has {arr.shape[1]}",
                            msg.job)
    try:
        motion, warnings = Motion(float(msg.fields.get("fps", 24.0)), tuple(names), arr).sanitized(strict=False)
        return np.ascontiguousarray(motion.full(), dtype=np.float32), warnings
    except MotionError as e:
        raise ProtocolError(protocol.E_BAD_MOTION, str(e), msg.job) from None


def engine_of(server: Any, msg: Message) -> tuple[str, Path | None]:
    """The request's engine and, for the refine engine, the checkpoint it runs, None for the shipped
    models (checked when the request arrives, so a bad one fails before any queue)."""
    engines = server.engines
    engine = msg.fields.get("engine", engines.default_engine)
    if engine not in engines.engine_names:
        raise ServiceError(protocol.E_UNKNOWN_ENGINE, f"unknown engine {engine!r}; this server has "
                                                      f"{', '.join(engines.engine_names)}")
    raw = msg.fields.get("checkpoint")
    if engine != "refine":
        if raw is not None:
            raise ProtocolError(protocol.E_BAD_FIELD, f"{msg.type}: 'checkpoint' is for the refine engine; "
                                f"the {engine} engine has no trained model", msg.job)
        return engine, None
    checkpoint = server.paths.checkpoint_path(raw) if raw is not None else engines.default_checkpoint
    if checkpoint is None:
        return engine, None  # the region generators that ship with Enliven
    if not checkpoint.is_file():
        raise ServiceError(protocol.E_BAD_CHECKPOINT, f"no checkpoint file {checkpoint} on the server")
    return engine, checkpoint


def need_subject(server: Any, msg: Message) -> None:
    """Fail fast (before queueing) when the job could never find its subject."""
    if "image" not in msg.parts:
        if "subject" not in msg.fields:
            raise ProtocolError(protocol.E_BAD_FIELD, f"{msg.type}: send 'subject' (from analyze) or an image part",
                                msg.job)
        if not server.engines.has_subject(msg.fields["subject"]):
            raise ServiceError(protocol.E_UNKNOWN_SUBJECT, f"subject {msg.fields['subject']} is not cached on this "
                                                           "server (evicted or server restarted); analyze the photo again")


def claim_output(server: Any, job: Job, key: str) -> None:
    """Mark `key` (a folder and file prefix, or a file) as this job's output,
    refusing the job while another one writes there."""
    if key in server.scheduler.outputs:
        raise ServiceError(protocol.E_OUTPUT_BUSY, f"another job is writing {key}* right now")
    job.output_key = key
