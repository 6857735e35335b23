"""Generate: render a portrait's frames into a numbered PNG sequence, keeping
the frames that did not change. Free of bpy (the runtime samples the rig and
reads the photo before the job starts).

States: PREPARING (connecting, checking the cache, analysing the photo),
RUNNING (frames stream in; a writer thread puts each on disk atomically),
FINISHING (the last writes and the cache file), then DONE, CANCELLED or FAILED.
"""
from __future__ import annotations

import os
import time
import traceback
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from . import frame_cache
from .jobs import Job
from .shared import protocol
from .states import JobState, UserError, describe_error

if TYPE_CHECKING:
    from .shared.client import Event


PREPARING_STATUS = ('SORTTIME', "Preparing…")  # the portrait's status line until the frames are sent for


@dataclass(kw_only=True, eq=False)
class GenerateJob(Job):
    kind = "generate"

    rig: str
    scene: str
    out_dir: str
    frames: list[int]  # every frame of the range
    motion: np.ndarray  # (len(frames), channels); with faces (faces, len(frames), channels)
    fps: float
    photo_data: bytes | np.ndarray
    photo_digest: str
    face_index: int
    engine: str = ""
    checkpoint: str | None = None  # the refine engine's model (None: the backend's default)
    fmt: str = "png"  # the frame files: "png", or "exr" (multilayer: alpha, mattes, motion vectors)
    alpha: bool = False  # the person cut out (RGBA), the uncovered background transparent
    faces: list[int] | None = None  # a group photo: every face into one frame, a motion each
    keys: list[str] = field(default_factory=list)
    todo: list[int] = field(default_factory=list)  # positions in `frames` to render
    rendered: int = 0
    written: int = 0
    cache: dict[str, str] = field(default_factory=dict)
    writes: list[tuple[Future, str, str]] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)
    status_bar_final: bool = False  # the status bar was redrawn after the job ended
    retried_subject: bool = False
    made_folder: str | None = None  # the topmost folder Generate made for out_dir (None: it was there)

    @property
    def cached(self) -> int:
        return len(self.frames) - len(self.todo)

    @property
    def progress(self) -> float:
        return (self.cached + self.written) / max(1, len(self.frames))

    @property
    def busy(self) -> bool:
        return self.active or bool(self.writes)

    def still_running(self) -> str:
        return f"Already generating '{self.rig}'; cancel it first"

    def start(self, host) -> None:
        super().start(host)
        self.message = "Connecting…"
        host.rig_status[self.rig] = PREPARING_STATUS
        host.session.when_connected(self._connected, self._failed)
        host.redraw_due = True

    def _connected(self) -> None:
        if not self.active:
            return
        if self.cancel_requested:
            self.end(JobState.CANCELLED, "Cancelled")
            return
        host = self.host
        self.engine = self.engine or (host.session.server_info or {}).get("default_engine", "warp")
        engine = frame_cache.output_key(frame_cache.engine_key(self.engine, self.checkpoint), self.fmt, self.alpha)
        vectors = self.fmt == "exr"  # an EXR frame's motion vectors depend on the frame before it too
        if self.faces:  # a frame is keyed on every face's values
            face_key = ",".join(map(str, self.faces))
            rows = self.motion.transpose(1, 0, 2).reshape(len(self.frames), -1)
            self.keys = frame_cache.frame_keys(self.photo_digest, engine, face_key, rows, vectors)
        else:
            self.keys = frame_cache.frame_keys(self.photo_digest, engine, self.face_index, self.motion, vectors)
        self.cache = frame_cache.load_cache(self.out_dir)
        self.todo = frame_cache.frames_to_render(self.out_dir, self.frames, self.keys, self.cache,
                                                 frame_cache.frames_reusable(self.engine, self.checkpoint), self.fmt)
        if vectors and self.todo:
            # The backend takes the motion vectors from each frame to the next it is sent: send them all.
            self.todo = list(range(len(self.frames)))
        if not self.todo:
            self.end(JobState.DONE, f"All {len(self.frames)} frames are up to date in {self.out_dir}")
            return
        self.message = "Analysing the photo…"

        def send(subject: str) -> None:
            if not self.active:
                return
            if self.cancel_requested:
                self.end(JobState.CANCELLED, "Cancelled")
                return
            motion = self.motion[:, self.todo] if self.faces else self.motion[self.todo]
            self.send(host.session.client.generate(
                motion, self.fps, subject=subject, engine=self.engine, format=self.fmt, alpha=self.alpha,
                face_index=self.face_index, checkpoint=self.checkpoint, faces=self.faces))
            self.state = JobState.RUNNING
            self.message = f"Generating {len(self.todo)} frames…"
            if host.rig_status.get(self.rig) == PREPARING_STATUS:  # (it said so over the progress bar until the end)
                del host.rig_status[self.rig]
            host.redraw_due = True

        host.subjects.with_subject(self.photo_data, self.photo_digest, self.face_index, send, self._failed, self.rig)

    def _failed(self, text: str) -> None:
        if self.active:
            self.end(JobState.FAILED, text)

    def on_event(self, event: Event) -> None:
        host = self.host
        if event.type == "frame":
            position = self.todo[int(event.fields["index"])]
            frame = self.frames[position]
            data = event.image()
            if not isinstance(data, (bytes, bytearray)):
                self.end(JobState.FAILED, f"The backend sent frame {frame} without {self.fmt.upper()} data")
                return
            name = frame_cache.frame_filename(frame, self.fmt)
            future = host.writer().submit(frame_cache.write_atomic, os.path.join(self.out_dir, name), bytes(data))
            self.writes.append((future, name, self.keys[position]))
            self.rendered += 1
            self.message = f"Generating: {self.cached + self.rendered}/{len(self.frames)} frames"
            host.redraw_due = True
        elif event.type == "queued":
            self.message = f"Queued behind other jobs (position {event.fields.get('position', '?')})"
            host.redraw_due = True
        elif event.type == "done":
            status = event.fields.get("status")
            if status == protocol.DONE_COMPLETED:
                took = time.monotonic() - self.started
                cached = f", {self.cached} unchanged" if self.cached else ""
                self.end(JobState.DONE, f"Generated {self.rendered} frames{cached} in {took:.1f} s into {self.out_dir}")
            else:
                self.end(JobState.CANCELLED, f"Generate {status}: {self.rendered} frames written")
        elif event.type == "error":
            if self.rendered == 0 and host.subjects.reanalyse_once(event.code, self.photo_digest,
                                                                     self.retried_subject):
                self.retried_subject = True
                self.job = None
                self._connected()
                return
            self.end(JobState.FAILED, describe_error(event.code, event.message))

    def collect_writes(self, wait: bool = False) -> str | None:
        """Account for frames the writer finished; returns the first write error."""
        remaining, error_text = [], None
        for future, name, key in self.writes:
            if not (wait or future.done()):
                remaining.append((future, name, key))
                continue
            try:
                future.result()
            except OSError as error:
                error_text = error_text or f"Cannot write {name} in {self.out_dir}: {error.strerror or error}"
                continue
            self.cache[name] = key  # only frames really on disk count as cached
            self.written += 1
        self.writes = remaining
        return error_text

    def tick(self) -> None:
        if self.writes:
            write_error = self.collect_writes()
            if write_error is not None and self.active:
                self.end(JobState.FAILED, write_error)

    def end(self, state: JobState, text: str) -> None:
        host = self.host
        was_active = self.active
        if self.job is not None and self.job in host.session.handlers:
            host.session.cancel(self.job)  # ending early (write error, disconnect): stop the backend too
        self.state = JobState.FINISHING
        write_error = self.collect_writes(wait=True)
        if write_error is not None:
            state, text = JobState.FAILED, write_error
        if state == JobState.FAILED and self.written:
            text = f"{text} ({self.written} frames written before it are kept)"
        if self.written:  # (else the cache is as it was loaded)
            try:
                frame_cache.save_cache(self.out_dir, self.cache)
            except OSError as error:
                text += f" (the frame cache could not be saved: {error.strerror or error})"
        elif self.made_folder is not None:
            # Nothing written (no face, a cancel, a backend gone): the folders it made went with it. They stayed,
            # with an empty cache file, beside the .blend.
            frame_cache.remove_empty_folders(self.out_dir, self.made_folder)
        if state == JobState.DONE:
            not_updated = "The compositor and the sequencer were not updated"  # (the frames are written)
            try:
                notice = host.frames_written(self.scene, self.rig, self.out_dir, self.fmt, self.frames)
            except UserError as error:  # the rig's settings changed while it generated
                notice = f"{not_updated}: {error}"
            except Exception as error:  # noqa: BLE001 - the job must still end (it stayed FINISHING: no Generate)
                traceback.print_exc()
                notice = f"{not_updated}: {error!r} (details in the console)"
            text = f"{text}. {notice}" if notice else text
        self.state, self.message = state, text
        host.session.forget(self.job)
        if was_active:
            self.report_end(text, self.rig)
        host.redraw_due = True
