"""`lipsync`: mouth motion from a sound file on the server's disk, or from text
it speaks first (the WAV is written to the request's ``output_dir``)."""
from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path
from typing import Any

from ..shared import protocol
from ..shared.protocol import ProtocolError
from .admission import check_room
from .frames import OutputFolder
from .replies import motion_reply, stopped_reply
from .jobs import Job, JobCancelled, ServiceError


def admit(server: Any, job: Job) -> bool:
    fields = job.msg.fields
    if ("audio_path" in fields) == ("text" in fields):
        raise ProtocolError(protocol.E_BAD_FIELD, "lipsync: send exactly one of 'audio_path' (a sound file) "
                            "or 'text' (to speak)", job.id)
    if "audio_path" in fields:
        server.paths.readable_path(fields["audio_path"])
    elif "output_dir" not in fields:
        raise ProtocolError(protocol.E_BAD_FIELD, "lipsync: 'text' needs 'output_dir', the folder on the "
                            "server where the spoken WAV is written", job.id)
    else:
        server.paths.writable_dir(fields["output_dir"])
    check_room(server, job)
    return True


def run(server: Any, job: Job) -> list:
    from ..speech.lipsync import LipsyncOptions, lipsync_audio, lipsync_phonemes

    f = job.msg.fields
    options = LipsyncOptions(fps=float(f["fps"]), strength=float(f.get("strength", 1.0)),
                             lead_frames=float(f.get("lead", 2.0)), head_motion=float(f.get("head_motion", 0.0)),
                             blinks=bool(f.get("blinks", False)), seed=int(f.get("seed", 0)),
                             photo_mouth=_photo_mouth(server, job))
    report = server.scheduler.progress_reporter(job)
    try:
        report("starting", 0, None)
        if "text" in f:
            speech, wav_path = speak_to_wav(server, job, f)
            report("lip-sync", 1, 1)
            result = lipsync_phonemes(speech, options)
            extra = {"audio_path": str(wav_path)}
        else:
            result = lipsync_audio(server.paths.readable_path(f["audio_path"]), options,
                                   progress=lambda seconds: report("decoding", round(seconds, 2), None))
            extra = {}
    except JobCancelled:
        return stopped_reply(job)
    extra.update(duration_s=round(result.duration_s, 4), speech_s=round(result.speech_s, 4), method=result.method)
    return motion_reply(server, job, result.motion, job.warnings, extra)


def _photo_mouth(server: Any, job: Job):
    """The request's portrait's mouth (shared.mouth.MouthOpening); closed lips when no subject is named, or when it is
    no longer cached (and the job says so)."""
    from ..rig import mouth_opening_of
    from ..shared.mouth import CLOSED_LIPS

    if "subject" not in job.msg.fields:
        return CLOSED_LIPS
    try:
        return mouth_opening_of(server.engines.subject_for(job.msg))
    except ServiceError as error:
        job.warnings.append(f"the mouth is not fitted to the portrait's photo: {error}")
        return CLOSED_LIPS


def speak_to_wav(server: Any, job: Job, f: dict) -> tuple[Any, Path]:
    """Synthesise the text and write it as a WAV in the client's output_dir.

    The file is named by what was said and how, so saying the same line
    again reuses the same file (and a sound strip that plays it)."""
    from ..speech.audio import write_wav
    from ..speech.tts import DEFAULT_RATE_WPM, DEFAULT_VOICE, synthesize

    voice, rate = f.get("voice", DEFAULT_VOICE), int(f.get("rate_wpm", DEFAULT_RATE_WPM))
    speech = synthesize(f["text"], voice=voice, rate_wpm=rate)
    if job.cancel.is_set():
        raise JobCancelled()
    digest = hashlib.sha256(f"{voice}\0{rate}\0{f['text']}".encode()).hexdigest()[:16]
    name = f"say_{digest}.wav"
    # Written like frames: made aside, then placed through the output folder's
    # handle, so a folder swapped for a link since the check cannot redirect it.
    with tempfile.TemporaryDirectory(prefix="enliven-say-") as scratch:
        made = Path(scratch) / name
        try:
            write_wav(made, speech.samples, speech.sample_rate)
        except OSError as e:
            raise ServiceError(protocol.E_WRITE_FAILED, f"cannot write the speech: {e.strerror or e}") from e
        with OutputFolder.open(server.paths.writable_dir(f["output_dir"]), server.paths.output_root) as folder:
            wav_path = folder.place(name, made)
    return speech, wav_path
