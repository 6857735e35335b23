"""`generate`: the whole motion, streamed back frame by frame in order (and
written as a PNG or multilayer EXR sequence on the server's disk when the
request names an ``output_dir``). Frames are encoded by a small pool while
the next renders."""
from __future__ import annotations

import os
import time
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, wait
from typing import Any

from ..frame_layers import FrameLayers
from ..frame_workers import frame_request, rendered_frames, worker_count
from ..png import BandCache
from ..shared import naming, protocol
from .admission import check_room, claim_output, engine_of, motion_of, need_subject
from .frames import FrameWriter, finish_frame
from .jobs import PROGRESS_EVERY_S, Job


def admit(server: Any, job: Job) -> bool:
    msg = job.msg
    job.motion, job.warnings = motion_of(server, msg, server.limits.max_frames)
    engine_of(server, msg)
    need_subject(server, msg)
    job.total = int(job.motion.shape[-2])
    if "output_dir" in msg.fields:
        resolved = server.paths.writable_dir(msg.fields["output_dir"])
        claim_output(server, job, f"{resolved}{os.sep}{msg.fields.get('prefix', naming.FRAME_PREFIX)}")
    check_room(server, job)
    return True


def run(server: Any, job: Job) -> list:
    msg, f = job.msg, job.msg.fields
    emit = server.scheduler.emit
    t0 = time.perf_counter()
    writer: FrameWriter | None = None
    pending: deque[Future] = deque()
    from_workers: Iterator[FrameLayers] | None = None  # several faces' frames, rendered by worker processes
    try:
        subject = server.engines.subject_for(msg)
        faces = f.get("faces")
        engine, checkpoint = engine_of(server, msg)
        workers = 1
        if faces is not None:
            subjects = server.engines.faces_of(subject, faces)
            subject = subjects[0]
            # (Jobs on several heavy lanes at once share the cores.)
            workers = worker_count(engine, job.total, subjects) // max(1, server.limits.heavy_lanes)
            if workers > 1:  # whole frames side by side in worker processes, as `enliven generate` renders them
                animator, lock, notes = None, None, ()
            else:
                animator, lock, notes = server.engines.group(subjects, engine, checkpoint)
        else:
            animator, lock, notes = server.engines.animator(subject, engine, checkpoint)
        job.warnings.extend(notes)
        if "output_dir" in f:
            # Checked again now, not only when queued: the folder may have changed while the job waited.
            writer = FrameWriter.open_sequence(server.paths.writable_dir(f["output_dir"]), server.paths.output_root, f)
        fmt = f.get("format", "png")
        png_level = int(f.get("png_compression", 1))
        alpha, passes = bool(f.get("alpha", False)), fmt == "exr"  # an EXR frame carries every pass
        kept = {index for index in range(job.total) if writer is not None and f.get("resume") and writer.complete(index)}
        motions = None if faces is None else dict(zip(faces, job.motion))  # face -> (frames, channels)
        if workers > 1:
            from_workers = rendered_frames(subjects, engine, checkpoint, workers, (
                frame_request(motions, index, alpha, passes) for index in range(job.total) if index not in kept))
        bands = BandCache()  # what the frames share (all the head does not touch) is deflated once
        if not emit(job, protocol.encode("progress", job.id, {
                "state": "running", "done": 0, "total": job.total,
                "subject": server.engines.subject_id(subject), "warnings": job.warnings[:20]})):
            return _summary(job, t0, 0, 0, writer)

        def render(index: int) -> FrameLayers:
            if from_workers is not None:
                return next(from_workers)  # (it renders the frames not kept, in order)
            with lock:
                if motions is not None:
                    request = frame_request(motions, index, alpha, passes)
                    return animator.render_layers(request.values, request.previous, alpha, passes)
                previous = job.motion[index - 1] if index > 0 else None  # the frame the motion vectors run from
                return animator.render_layers(job.motion[index], previous, alpha, passes)

        depth = server.encode_threads + 1  # frames being encoded while the next renders
        rendered = skipped = 0
        last_progress = time.perf_counter()
        for index in range(job.total):
            if job.cancel.is_set():
                break
            if index in kept:
                fut: Future = Future()
                fut.set_result((index, {"index": index, "path": str(writer.path(index)), "skipped": True}, {}))
                skipped += 1
            else:
                layers = render(index)
                rendered += 1
                if job.cancel.is_set():
                    job.rendered_after_cancel += 1
                fut = server.encoders.submit(finish_frame, index, layers, fmt, writer, png_level, bands)
            pending.append(fut)
            # Emit finished frames in order; never let more than `depth` pile up.
            while pending and (len(pending) > depth or pending[0].done()):
                if not _emit_frame(server, job, pending.popleft()):
                    break
            now = time.perf_counter()
            if now - last_progress >= PROGRESS_EVERY_S:
                last_progress = now
                emit(job, protocol.encode("progress", job.id, {
                    "state": "running", "done": job.done, "total": job.total,
                    "fps": round(job.done / max(now - t0, 1e-9), 2)}))
        while pending and not job.cancel.is_set():
            _emit_frame(server, job, pending.popleft())
        return _summary(job, t0, rendered, skipped, writer)
    finally:
        if from_workers is not None:
            from_workers.close()  # its workers stop (cancelled, failed or done)
        for fut in pending:  # cancelled or failed: let in-flight encodes finish quietly
            fut.cancel()
        if writer is not None:
            wait(pending)  # none may still write through the folder's handle when it closes
            writer.close()
        server.scheduler.release_output(job)


def _emit_frame(server: Any, job: Job, fut: Future) -> bool:
    index, fields, parts = fut.result()
    ok = server.scheduler.emit(job, protocol.encode("frame", job.id, fields, parts))
    if ok:
        job.done = index + 1
    return ok


def _summary(job: Job, t0: float, rendered: int, skipped: int, writer: FrameWriter | None) -> list:
    elapsed = time.perf_counter() - t0
    cancelled = job.cancel.is_set()
    fields = {
        "status": protocol.DONE_CANCELLED if cancelled else protocol.DONE_COMPLETED,
        "frames": job.done,
        "total": job.total,
        "rendered": rendered,
        "skipped": skipped,
        "elapsed_s": round(elapsed, 3),
        "fps": round(rendered / elapsed, 2) if elapsed > 0 else 0.0,
        "warnings": job.warnings[:20],
    }
    if cancelled:
        fields["rendered_after_cancel"] = job.rendered_after_cancel
    if writer is not None:
        fields["output_dir"] = str(writer.directory)
    if job.stalled:
        fields["status"] = protocol.DONE_STALLED
    return protocol.encode("done", job.id, fields, end=True)
