"""`talk`: the one-step talking video, `enliven talk` as a request.

Lip-sync from a sound file on the server's disk (``audio_path``) or from
``text`` it speaks (the WAV goes into ``output_dir``, as for `lipsync`),
blinks and head motion that follow the speech, rendered into an H.264 + AAC
video with the sound, and written into ``output_dir`` as ``video_name``.
ffmpeg writes the video in a private temporary folder; the finished file is
then copied in through the output folder's handle (see frames.FrameWriter),
so a cancelled or failed job leaves no video, and no link is followed.
Progress reports the lip-sync stage, then frames rendered of frames in all.
"""
from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from ..shared import protocol
from ..shared.protocol import ProtocolError
from .admission import check_room, claim_output, engine_of, need_subject
from .frames import OutputFolder
from .jobs import Job, JobCancelled, ServiceError
from .lipsync import speak_to_wav
from .replies import stopped_reply

DEFAULT_VIDEO_NAME = "talk.mp4"


def admit(server: Any, job: Job) -> bool:
    msg, fields = job.msg, job.msg.fields
    if ("audio_path" in fields) == ("text" in fields):
        raise ProtocolError(protocol.E_BAD_FIELD, "talk: send exactly one of 'audio_path' (a sound file on the "
                            "server) or 'text' (to speak)", job.id)
    if "audio_path" in fields:
        server.paths.readable_path(fields["audio_path"])
    engine_of(server, msg)
    need_subject(server, msg)
    resolved = server.paths.writable_dir(fields["output_dir"])
    claim_output(server, job, f"{resolved}{os.sep}{fields.get('video_name', DEFAULT_VIDEO_NAME)}")
    check_room(server, job)
    return True


def run(server: Any, job: Job) -> list:
    from ..sequence import VideoWriter
    from ..rig import mouth_opening_of
    from ..speech.lipsync import LipsyncOptions, lipsync_audio, lipsync_phonemes

    msg, f = job.msg, job.msg.fields
    t0 = time.perf_counter()
    report = server.scheduler.progress_reporter(job)
    try:
        subject = server.engines.subject_for(msg)
        options = LipsyncOptions.talking(float(f.get("fps", 24.0)), f.get("head_motion"), int(f.get("seed", 0)),
                                         photo_mouth=mouth_opening_of(subject))
        animator, lock, notes = server.engines.animator(subject, *engine_of(server, msg))
        job.warnings.extend(notes)
        report("lip-sync", 0, None)
        if "text" in f:
            speech, sound = speak_to_wav(server, job, f)
            result = lipsync_phonemes(speech, options)
        else:
            sound = server.paths.readable_path(f["audio_path"])
            result = lipsync_audio(sound, options, progress=lambda seconds: report("lip-sync", round(seconds, 2), None))
        values = result.motion.full()
        if len(values) > server.limits.max_frames:
            raise ServiceError(protocol.E_BAD_AUDIO, f"the speech makes {len(values)} frames; this server's limit is "
                                                     f"{server.limits.max_frames} (use a shorter recording)")
        name = f.get("video_name", DEFAULT_VIDEO_NAME)
        with tempfile.TemporaryDirectory(prefix="enliven-talk-") as scratch:
            made = Path(scratch) / name
            video = VideoWriter(made, result.motion.fps, audio=sound, frame_count=len(values))
            try:
                for index, row in enumerate(values):
                    with lock:
                        rgb = animator.render(row)
                    video.add(rgb)
                    report("rendering", index + 1, len(values))
            except BaseException:
                video.abort()
                raise
            video.close()
            # Checked again now, not only when queued: the folder may have changed while the job ran.
            with OutputFolder.open(server.paths.writable_dir(f["output_dir"]), server.paths.output_root) as folder:
                path = folder.place(name, made)
    except JobCancelled:
        return stopped_reply(job)
    finally:
        server.scheduler.release_output(job)
    fields = {"status": protocol.DONE_COMPLETED, "video": str(path), "frames": int(len(values)),
              "fps": float(result.motion.fps), "duration_s": round(len(values) / result.motion.fps, 4),
              "method": result.method, "elapsed_s": round(time.perf_counter() - t0, 3),
              "channels": list(result.motion.channels), "warnings": job.warnings[:20]}
    if "text" in f:
        fields["audio_path"] = str(sound)
    motion = np.ascontiguousarray(result.motion.values, dtype=np.float32)
    return protocol.encode("done", job.id, fields, {"motion": motion}, end=True)
