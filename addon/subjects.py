"""The photos the backend has analysed ("subjects"), per connection. Free of bpy.

A photo is analysed once per backend: every preview and generate of it names
the subject id the analysis returned. Photos the backend refused (no face...)
are remembered too, so a slider move does not ask again. And one rule for
every job: when the backend no longer knows a subject (it restarted, or
evicted the photo), the job forgets it, analyses again and resends - once.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from .states import REANALYSE_ERRORS, UNUSABLE_PHOTO_ERRORS, describe_error

if TYPE_CHECKING:
    from .session import Session
    from .shared.client import Event

SubjectKey = tuple  # (photo digest, face index)


class SubjectCache:
    def __init__(self, session: Session, rig_status: dict[str, tuple[str, str]],
                 notify: Callable[..., None]):
        self.session = session
        self.rig_status = rig_status  # rig name -> (icon, text), shared with the runtime
        self.notify = notify  # (level, text, rig)
        self.subjects: dict[SubjectKey, str] = {}  # (photo digest, face) -> subject id
        self.unusable: dict[SubjectKey, str] = {}  # photos the backend refused -> why
        self.faces: dict[str, list[int]] = {}  # photo digest -> the numbers of every face the backend found
        self.mouths: dict[SubjectKey, dict] = {}  # each face's lips, as its analysis summary gives them ("mouth")
        self.analyzing: dict[SubjectKey, list[tuple[Callable[[str], None], Callable[[str], None]]]] = {}
        self.changed = False

    def clear(self) -> None:
        """A new connection: the backend may be another one."""
        self.subjects.clear()
        self.unusable.clear()
        self.mouths.clear()
        self.analyzing.clear()

    def is_unusable(self, photo_digest: str, face: int) -> bool:
        return (photo_digest, face) in self.unusable

    def reanalyse_once(self, code: str | None, photo_digest: str, already_retried: bool) -> bool:
        """The rule for a job whose request failed with error `code`: True when the backend lost the photo's
        analysis and the job should send again (the subject is then forgotten, so it is analysed anew).
        A job retries once; a second failure is reported."""
        if already_retried or code not in REANALYSE_ERRORS:
            return False
        self.subjects = {key: subject for key, subject in self.subjects.items() if key[0] != photo_digest}
        return True

    def with_subject(self, photo_data, photo_digest: str, face: int, on_ready: Callable[[str], None],
                     on_error: Callable[[str], None], rig: str | None = None) -> None:
        """Analyse the photo once per backend; `on_ready(subject_id)` when known, else `on_error(text)`."""
        key = (photo_digest, face)
        if key in self.subjects:
            subject = self.subjects[key]
            # Through when_connected: after a lost connection this reconnects
            # first instead of sending into the void.
            self.session.when_connected(lambda: on_ready(subject), on_error)
            return
        if key in self.unusable:
            # The backend already said this photo cannot be used (no face...):
            # do not ask again on every slider move.
            on_error(self.unusable[key])
            return
        waiting = self.analyzing.get(key)
        if waiting is not None:
            waiting.append((on_ready, on_error))
            return
        self.analyzing[key] = [(on_ready, on_error)]

        def send() -> None:
            job = self.session.client.analyze(photo_data, face_index=face)
            self.session.request(job, lambda event: self._on_analysis(key, event, rig))

        def fail(text: str) -> None:
            if rig is not None:
                self.rig_status[rig] = ('ERROR', text)
            for _, callback in self.analyzing.pop(key, []):
                callback(text)

        if rig is not None:
            self.rig_status[rig] = ('SORTTIME', "Analysing the photo…")
        self.session.when_connected(send, fail)

    def _on_analysis(self, key: SubjectKey, event: Event, rig: str | None) -> None:
        callbacks = self.analyzing.pop(key, [])
        if event.type == "analysis":
            subject = event.fields["subject"]
            self.subjects[key] = subject
            self.faces[key[0]] = [int(face.get("face_index", 0)) for face in event.fields.get("faces") or []]
            summary = event.fields.get("summary", {})
            for face in [{"face_index": key[1], "summary": summary}, *(event.fields.get("faces") or [])]:
                mouth = (face.get("summary") or {}).get("mouth")
                if mouth is not None:
                    self.mouths[(key[0], int(face.get("face_index", 0)))] = mouth
            if rig is not None:
                faces = summary.get("faces_found", 1)
                pose = summary.get("head_pose_deg", {})
                extra = f" ({faces} faces, using #{key[1]})" if faces and faces > 1 else ""
                self.rig_status[rig] = (
                    'CHECKMARK',
                    f"Face found{extra}: {summary.get('width', '?')}×{summary.get('height', '?')} px, "
                    f"yaw {pose.get('yaw', 0):+.0f}°")
            self.changed = True
            for on_ready, _ in callbacks:
                on_ready(subject)
        elif event.type == "error":
            text = describe_error(event.code, event.message)
            if event.code in UNUSABLE_PHOTO_ERRORS:
                self.unusable[key] = text
            if rig is not None:
                self.notify('ERROR', text, rig)
            for _, on_error in callbacks:
                on_error(text)
