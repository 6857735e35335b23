"""The photos a server has analysed and the engines it has prepared for them,
cached and shared by every lane (imports are lazy so `enliven keys` and
`--help` stay fast)."""
from __future__ import annotations

import hashlib
import importlib.util
import os
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any
from warnings import catch_warnings, simplefilter

import numpy as np

from ..shared import protocol
from ..shared.protocol import Limits, Message, ProtocolError
from .jobs import ServiceError

DIGESTS_KEPT = 256  # uploads remembered by hash (a few bytes each), so a photo sent again is not analysed again
ANIMATOR_CACHE = 4  # prepared (subject, engine) pairs: their setup is the expensive part


class Engines:
    """Subject and Animator caches shared by both lanes (imports are lazy so
    `enliven keys` and `--help` stay fast)."""

    def __init__(self, limits: Limits, default_engine: str, default_checkpoint: str | os.PathLike | None = None):
        from ..animator import ENGINE_NAMES

        self.engine_names = tuple(ENGINE_NAMES)
        if default_engine not in self.engine_names:
            raise ServiceError(protocol.E_UNKNOWN_ENGINE, f"unknown engine {default_engine!r}; available: {', '.join(self.engine_names)}")
        self.default_engine = default_engine
        # The refine engine's model when a request names none (`serve --checkpoint`).
        self.default_checkpoint = Path(default_checkpoint).expanduser().resolve() if default_checkpoint else None
        if self.default_checkpoint is not None:
            check_checkpoint(self.default_checkpoint)
        self.can_train = torch_installed()
        self.limits = limits
        self._lock = threading.Lock()
        self._subjects: OrderedDict[str, Any] = OrderedDict()  # subject id -> Subject
        self._subject_bytes: dict[str, int] = {}  # subject id -> the memory its arrays hold, its photo's apart
        self._cache_budget = int(limits.subject_cache_mb * 1024 * 1024)
        self._by_bytes: OrderedDict[tuple[str, int], str] = OrderedDict()  # (sha256 of upload, face) -> subject id
        # (subject, engine, checkpoint, its mtime) -> (animator, its lock, warnings from setting it up)
        self._animators: OrderedDict[tuple, tuple[Any, threading.Lock, tuple[str, ...]]] = OrderedDict()
        self._create_lock = threading.Lock()
        self._reduced: OrderedDict[tuple[str, int], Any] = OrderedDict()  # previews of large photos

    @property
    def subjects_cached(self) -> int:
        return len(self._subjects)

    @property
    def subject_cache_bytes(self) -> int:
        with self._lock:
            return self._cached_bytes()

    def _cached_bytes(self) -> int:
        """What the cached subjects hold, each photo counted once however many of its faces are cached
        (call with the lock held)."""
        photos = {subject.image_hash: subject.image.nbytes for subject in self._subjects.values()}
        return sum(self._subject_bytes.values()) + sum(photos.values())

    @staticmethod
    def subject_id(subject: Any) -> str:
        return face_id(subject.image_hash, subject.face_index)

    def has_subject(self, sid: str) -> bool:
        with self._lock:
            return sid in self._subjects

    def subject_for(self, msg: Message) -> Any:
        """The request's subject: by id when cached, else analysed from its image part."""
        sid = msg.fields.get("subject")
        # A request for several faces is analysed by its first: face_index (default 0) may have no face.
        faces = msg.fields.get("faces")
        face = int(faces[0]) if faces else int(msg.fields.get("face_index", 0))
        named = face_of_id(sid)
        if not faces and named is not None:
            # (A face_index beside a subject of another face was ignored, and an evicted subject's image sent
            # again was analysed for face_index, face 0 by default, not for the subject's face.)
            if "face_index" in msg.fields and named != face:
                raise ServiceError(protocol.E_BAD_FIELD, f"face_index {face} is not the face of subject {sid} "
                                                         f"(face {named}); send one or the other")
            face = named
        if sid is not None:
            with self._lock:
                subject = self._subjects.get(sid)
                if subject is not None:
                    self._subjects.move_to_end(sid)
                    return subject
        part = msg.parts.get("image")
        if part is None:
            raise ServiceError(protocol.E_UNKNOWN_SUBJECT, f"subject {sid} is not (or no longer) cached on this server; "
                                                  "send the image again (analyze, or image= with the request)")
        return self.analyze(part, face, msg.job)

    def analyze(self, part: protocol.Part, face: int, job: str) -> Any:
        from ..analysis import analyze_image
        from ..images import load_image

        digest = (hashlib.sha256(part.data).hexdigest(), face)
        with self._lock:
            sid = self._by_bytes.get(digest)
            if sid is not None and sid in self._subjects:
                self._subjects.move_to_end(sid)
                return self._subjects[sid]
        lim = self.limits
        # The client cannot change this server's limits, only its photo: say so, and name the operator's flags.
        remedy = ("Downscale the photo and send it again (the server's operator can raise the limits with "
                  "`enliven serve --max-image-pixels N --max-image-side PX`).")
        if part.kind == "array":
            try:
                rgb = np.ascontiguousarray(protocol.image_array(part, max_side=lim.max_image_side,
                                                                max_pixels=lim.max_image_pixels, job=job))
            except ProtocolError as e:
                if e.code != protocol.E_TOO_LARGE:
                    raise
                raise ServiceError(e.code, f"{e}. {remedy}") from None
        else:
            rgb = load_image(part.tobytes(), max_pixels=lim.max_image_pixels, max_side=lim.max_image_side,
                             remedy=remedy)
        subject = analyze_image(rgb, face_index=face)
        self._remember([subject], digest)
        return subject

    def _remember(self, subjects: list, digest: tuple[str, int] | None = None) -> None:
        with self._lock:
            for subject in subjects:
                sid = self.subject_id(subject)
                self._subjects[sid] = subject
                self._subjects.move_to_end(sid)
                # The faces of one photo share its pixels: _cached_bytes counts them once per photo.
                self._subject_bytes[sid] = subject_nbytes(subject) - subject.image.nbytes
            if digest is not None:
                self._by_bytes[digest] = self.subject_id(subjects[0])
            # Bounded by memory, not by count: one 40 MP photo holds what a hundred small ones do.
            # The newest always stays, even alone over the budget: the job that analysed it needs it.
            while len(self._subjects) > len(subjects) and self._cached_bytes() > self._cache_budget:
                old, _ = self._subjects.popitem(last=False)
                del self._subject_bytes[old]
            while len(self._by_bytes) > DIGESTS_KEPT:
                self._by_bytes.popitem(last=False)

    def faces_of(self, subject: Any, faces: list[int] | None) -> list:
        """The subjects of faces `faces` (None: every face found) of `subject`'s photo, analysed once each."""
        from ..analysis import analyze_faces

        with self._lock:
            cached = {face: self._subjects.get(face_id(subject.image_hash, face)) for face in faces or ()}
        if faces is not None and all(cached.values()):
            return [cached[face] for face in faces]
        found = analyze_faces(subject.image, faces)
        self._remember(found)
        return found

    def group(self, subjects: list, engine: str, checkpoint: Path | None = None,
              max_side: int | None = None) -> tuple[Any, threading.Lock, tuple[str, ...]]:
        """One prepared GroupAnimator per (faces, engine, checkpoint, preview size), like `animator`."""
        from ..analysis import reduced_subject
        from ..group import GroupAnimator

        def make() -> Any:
            shown = subjects if max_side is None else [reduced_subject(s, max_side) for s in subjects]
            return GroupAnimator(shown, engine=engine, checkpoint=checkpoint)

        return self._prepared((tuple(map(self.subject_id, subjects)), max_side), engine, checkpoint, make)

    def reduced(self, subject: Any, max_side: int) -> Any:
        """The subject scaled down to `max_side` for previews, made once (see analysis.reduced_subject)."""
        from ..analysis import reduced_subject

        key = (self.subject_id(subject), max_side)
        with self._lock:
            hit = self._reduced.get(key)
        if hit is None:
            hit = reduced_subject(subject, max_side)
            with self._lock:
                self._reduced[key] = hit
                while len(self._reduced) > ANIMATOR_CACHE:
                    self._reduced.popitem(last=False)
        return hit

    def animator(self, subject: Any, engine: str,
                 checkpoint: Path | None = None) -> tuple[Any, threading.Lock, tuple[str, ...]]:
        """One prepared Animator per (subject, engine, checkpoint), with a lock: the
        two lanes may render the same subject and engines are not promised
        thread-safe. A checkpoint rewritten since (training goes on) is loaded again.
        Also returns the warnings its setup gave (the refine engine falling back
        to the warp where PyTorch cannot run), for the jobs that use it."""
        from ..animator import Animator

        return self._prepared(self.subject_id(subject), engine, checkpoint,
                              lambda: Animator(subject, engine=engine, checkpoint=checkpoint))

    def _prepared(self, what: Any, engine: str, checkpoint: Path | None,
                  make: Any) -> tuple[Any, threading.Lock, tuple[str, ...]]:
        try:
            version = checkpoint.stat().st_mtime_ns if checkpoint is not None else None
        except OSError:
            raise ServiceError(protocol.E_BAD_CHECKPOINT, f"no checkpoint file {checkpoint} on the server") from None
        key = (what, engine, str(checkpoint), version)
        with self._create_lock:  # two lanes must not both pay for the same setup
            with self._lock:
                hit = self._animators.get(key)
                if hit is not None:
                    self._animators.move_to_end(key)
                    return hit
            with catch_warnings(record=True) as caught:
                simplefilter("always")
                animator = make()
            entry = (animator, threading.Lock(), tuple(str(w.message) for w in caught))
            with self._lock:
                self._animators[key] = entry
                while len(self._animators) > ANIMATOR_CACHE:
                    self._animators.popitem(last=False)
            return entry


def face_id(image_hash: str, face: int) -> str:
    """The subject id of face `face` of the photo with this hash."""
    return f"{image_hash}-{face}"


def face_of_id(subject_id: str | None) -> int | None:
    """The face number a subject id (face_id's) names; None for no id or one not of that form."""
    face = str(subject_id).rpartition("-")[2] if subject_id is not None else ""
    return int(face) if face.isascii() and face.isdigit() else None


def subject_nbytes(subject: Any) -> int:
    """The memory a subject's arrays hold (the photo, its person mask, landmarks)."""
    return sum(value.nbytes for value in vars(subject).values() if isinstance(value, np.ndarray))


def check_checkpoint(path: Path) -> None:
    """Refuse, at start-up, a `serve --checkpoint` that is missing or not a checkpoint, rather than
    fail on the first request that uses it (CheckpointError: exit 8)."""
    from ..errors import CheckpointError

    if not path.is_file():
        raise CheckpointError(f"no checkpoint file {path}")
    if not torch_installed():
        # PyTorch saves a zip archive; without PyTorch the refine engine falls back to the warp anyway.
        import zipfile

        if not zipfile.is_zipfile(path):
            raise CheckpointError(f"{path} is not a checkpoint (made by `enliven train-regions` or `enliven train`)")
        return
    from ..engines.refine import read_checkpoint
    from ..neural.checkpoint import config_of

    payload = read_checkpoint(path)
    if payload["format"] == "enliven-refine":
        config_of(payload, path)


def torch_installed() -> bool:
    """Whether PyTorch is there, without importing it (seconds, and memory, that serving warp frames never needs)."""
    try:
        return importlib.util.find_spec("torch") is not None
    except (ImportError, ValueError):  # ValueError: sys.modules["torch"] is None (blocked)
        return False
