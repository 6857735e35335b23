"""`analyze`: a photo's face, cached as a subject that later requests name by id."""
from __future__ import annotations

from typing import Any

from ..shared import protocol
from .admission import check_room
from .jobs import Job


def admit(server: Any, job: Job) -> bool:
    check_room(server, job)
    return True


def run(server: Any, job: Job) -> list:
    subject = server.engines.analyze(job.msg.parts["image"], int(job.msg.fields.get("face_index", 0)), job.id)
    # Every face of the photo, each its own subject: preview and generate name several with 'faces'.
    faces = [{"face_index": face.face_index, "subject": server.engines.subject_id(face), "summary": face.summary()}
             for face in server.engines.faces_of(subject, None)]
    fields = {"subject": server.engines.subject_id(subject), "summary": subject.summary(), "faces": faces}
    return protocol.encode("analysis", job.id, fields, end=True)
