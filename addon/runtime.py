"""The runtime: one per Blender session, never saved. It joins the session
(the connection), the subject cache and the running jobs - one controller of
each kind, held in `jobs` and treated alike - with what only Blender can do:
sampling rigs, reading photos, keying motion, showing the preview image,
redrawing and reporting.

Threading, and why: Blender's data may only be touched from the main thread,
and the UI must never wait for the network. Every request goes out through
`shared.client.Client`, whose calls return at once; replies are collected by
the timer (connection.poll) on the main thread, which calls `tick`. The only
other threads read the local backend's output and write generated frames;
neither touches bpy.
"""
from __future__ import annotations

import math
import os
import time
from collections.abc import Callable

import bpy
import numpy as np

from . import frame_cache, groups, hooks, keying, preferences, properties, sampling
from .bake_job import BakeJob
from .generate_job import GenerateJob
from .jobs import Job, JobHost
from .photos import PhotoCache, output_dir, rig_checkpoint
from .preview_job import PreviewJob
from .session import CLIENT_NAME, ConnectionSettings, Session
from .shared.mouth import MouthOpening
from .frame_cache import engine_key
from .states import ConnectionState, UserError
from .subjects import SubjectCache
from .training_job import TrainingJob

PREVIEW_IMAGE = "Enliven Preview"
# A preview is for looking at; bigger photos are shown subsampled so that
# copying pixels into Blender stays a few milliseconds.
PREVIEW_MAX_SIDE = 1024

# Timer intervals (seconds): fast while a reply is due, slower when idle
# (a poll is one non-blocking recv), slowest with no connection at all.
ACTIVE_INTERVAL = 0.01
IDLE_INTERVAL = 0.05
SLEEP_INTERVAL = 0.5


def connection_settings() -> ConnectionSettings:
    """The add-on preferences, with their paths made absolute."""
    prefs = preferences.get()

    def absolute(path: str) -> str:
        return bpy.path.abspath(path) if path.strip() else ""

    return ConnectionSettings(mode=prefs.mode, address=prefs.address, server_key=absolute(prefs.server_key),
                              client_key=absolute(prefs.client_key), python_env=absolute(prefs.python_env),
                              local_port=prefs.local_port, timeout=float(prefs.timeout))


class Runtime:
    """Connection state and jobs."""

    def __init__(self, wake: Callable[[], None] = lambda: None) -> None:
        self.wake = wake
        self.host = host = JobHost(report)
        # Rigs whose Add Portrait analysis never reached a backend: their photo's other faces get their rigs
        # once one is connected (a group photo added first and connected later stayed one rig).
        self.groups_to_find: set[str] = set()
        self.session = Session(connection_settings, host.notify, wake, on_connected=self._connected,
                               client_name=f"{CLIENT_NAME} (Blender {bpy.app.version_string})")
        self.subjects = SubjectCache(self.session, host.rig_status, host.notify)
        host.session, host.subjects = self.session, self.subjects
        host.key_motion, host.show_preview, host.frames_written = _key_job_motion, self._show_preview, \
            _frames_written
        self.photos = PhotoCache()
        self.jobs: dict[str, Job] = {}
        self.start(PreviewJob(request_again=self.request_preview))
        self.status_bar_at = 0.0

    # -- what the panel and the tests read -----------------------------------

    state = property(lambda self: self.session.state)
    message = property(lambda self: self.session.message)
    client = property(lambda self: self.session.client)
    address = property(lambda self: self.session.address)
    server_info = property(lambda self: self.session.server_info)
    local = property(lambda self: self.session.local)
    rig_status = property(lambda self: self.host.rig_status)
    last_error = property(lambda self: self.host.last_error)
    preview = property(lambda self: self.jobs["preview"])
    generate = property(lambda self: self.jobs.get("generate"))
    bake = property(lambda self: self.jobs.get("bake"))
    training = property(lambda self: self.jobs.get("training"))
    latency_ms = property(lambda self: self.preview.latency_ms)

    def status_line(self) -> tuple[str, str]:
        """(icon, text) for the panel: connected / device / engine / latency."""
        icon, text = self.session.status_line()
        if self.state == ConnectionState.CONNECTED and self.server_info and self.latency_ms is not None:
            text += f" · {self.latency_ms:.0f} ms"
        return icon, text

    def has_log(self) -> bool:
        return self.session.has_log()

    def notify(self, level: str, text: str, rig: str | None = None) -> None:
        self.host.notify(level, text, rig)

    def fail_connection(self, text: str) -> None:
        self.session.fail(text)

    def request(self, job: str, handler) -> str:
        """Route the replies of backend job `job` to `handler`."""
        return self.session.request(job, handler)

    # -- connecting ---------------------------------------------------------

    def settings_changed(self) -> None:
        """Preferences changed: drop the connection; the next action reconnects."""
        self.disconnect(stop_local=True, wait=False)

    def connect(self, force: bool = False) -> None:
        """Start connecting (and, in local mode, start the backend). Returns at once."""
        if force:
            self.disconnect(stop_local=False)
        self.session.connect()

    def disconnect(self, stop_local: bool = True, wait: bool = True) -> None:
        """Drop the connection; with `stop_local` stop the local backend, waiting for it to exit only with `wait`
        (unregistering: not from a button or a preference, whose UI would freeze meanwhile)."""
        stopped_local = stop_local and self.session.local is not None
        patient = any(job.saves_on_stop for job in self.jobs.values())
        self.session.close(stop_local, patient=patient, wait=wait)
        self.subjects.clear()
        for job in list(self.jobs.values()):
            job.on_disconnect(stopped_local)
        self.session.release_waiting("Disconnected")

    # -- jobs ---------------------------------------------------------------

    def start(self, job: Job) -> Job:
        """Make `job` the running job of its kind and start it. Raises UserError when one is running."""
        running = self.jobs.get(job.kind)
        if running is not None and running.active:
            raise UserError(running.still_running())
        self.jobs[job.kind] = job
        job.start(self.host)
        return job

    def cancel(self, kind: str) -> bool:
        job = self.jobs.get(kind)
        return job is not None and job.cancel()

    def cancel_generate(self) -> bool:
        return self.cancel("generate")

    def cancel_bake(self) -> bool:
        return self.cancel("bake")

    def stop_training(self) -> bool:
        return self.cancel("training")

    def start_bake(self, job: BakeJob) -> None:
        """Send a capture or lip-sync job; its motion is keyed when it arrives (in the timer)."""
        self.start(job)

    def start_training(self, dataset_dir: str, run_dir: str, config: str | dict | None, steps: int | None,
                       resume: bool) -> None:
        """Start training on the backend; progress arrives in the timer."""
        self.start(TrainingJob(run_dir=run_dir, dataset_dir=dataset_dir, config=config, steps=steps, resume=resume))

    def analyze_rig(self, obj: bpy.types.Object, every_face: bool = False) -> None:
        """Analyse a rig's photo now (Add Portrait), to report "no face" early; with `every_face`, a group
        photo then gets a rig for each of its other faces (groups.add_face_rigs)."""
        try:
            photo = self.photos.photo_for(obj)
        except UserError as error:
            self.notify('ERROR', str(error), obj.name)
            return
        name = obj.name

        def ready(subject: str) -> None:
            self.groups_to_find.discard(name)
            rig = bpy.data.objects.get(name)
            faces = self.subjects.faces.get(photo.digest, [])
            if every_face and rig is not None and len(faces) > 1:
                added = groups.add_face_rigs(rig, faces)
                if added:
                    record_undo_step("Enliven: a Rig per Face")
                    self.notify('INFO', f"{len(faces)} faces: a portrait rig for each, in collection "
                                        f"'{rig.users_collection[0].name}'", name)

        face = obj.enliven.face_index

        def failed(text: str) -> None:
            if every_face and (photo.digest, face) not in self.subjects.unusable:  # (no face: nothing to find)
                self.groups_to_find.add(name)

        self.subjects.with_subject(photo.data, photo.digest, face, ready, failed, name)

    def _connected(self) -> None:
        self.host.clear_error()
        for name in sorted(self.groups_to_find):
            self.groups_to_find.discard(name)
            rig = bpy.data.objects.get(name)
            if rig is not None and rig.enliven.is_rig:
                self.analyze_rig(rig, every_face=True)

    def photo_mouth(self, obj: bpy.types.Object) -> MouthOpening | None:
        """The lips of the rig's photo (its face), for a preset's speech to be fitted to: from this session's
        analysis of it (kept on the rig), else from the rig as an earlier session left it; None when the
        photo has never been analysed (or cannot be read)."""
        try:
            photo = self.photos.photo_for(obj)
        except UserError:
            return None
        settings = obj.enliven
        of = f"{photo.digest}:{settings.face_index}"
        analysed = MouthOpening.from_dict(self.subjects.mouths.get((photo.digest, settings.face_index)))
        if analysed is not None:
            settings.photo_mouth = (analysed.gap, analysed.opens, analysed.closes)
            settings.photo_mouth_of = of
            return analysed
        return MouthOpening(*settings.photo_mouth) if settings.photo_mouth_of == of else None

    def request_preview(self, scene: bpy.types.Scene | None = None) -> None:
        """Render the active portrait's current pose, unless that is already shown."""
        scene = scene or bpy.context.scene
        if scene is None or not scene.enliven.live_preview:
            return
        obj = properties.active_rig(bpy.context, scene)
        if obj is None or obj.enliven.photo is None:
            return
        rigs = groups.face_rigs(obj)  # a group photo previews every face in one frame
        faces = [r.enliven.face_index for r in rigs] if len(rigs) > 1 else None
        values = np.stack([sampling.current_values(r) for r in rigs]) if faces else sampling.current_values(obj)
        obj = rigs[0]
        rig = obj.enliven
        checkpoint = rig_checkpoint(obj)
        key = (obj.name, rig.photo.name, engine_key(rig.engine, checkpoint), tuple(faces or [rig.face_index]))
        if not self.preview.wanted(key, values):
            return
        try:
            photo = self.photos.photo_for(obj)
        except UserError as error:
            # Reported once: the report's own operator updates the depsgraph, whose handler asks again, and
            # without this the same error was reported until Python's recursion limit. A change of portrait
            # or engine, or Live Preview toggled, tries again.
            self.preview.failed_key = key
            self.notify('ERROR', str(error), obj.name)
            return
        self.preview.send_preview(key, values, obj.name, photo.data, photo.digest, rig.engine.strip(),
                                  rig.face_index, checkpoint, faces)

    def start_generate(self, scene: bpy.types.Scene, obj: bpy.types.Object) -> str | None:
        """Sample the rig and start rendering its frames; returns a warning or None.
        Raises UserError when it cannot start."""
        running = self.generate
        if running is not None and running.active:
            raise UserError(running.still_running())
        rigs = groups.face_rigs(obj)  # a group photo: every face into one sequence, the lead rig's
        obj = rigs[0]
        first, last = sampling.frame_range(scene, obj)
        if first < 0:
            raise UserError("Frames before 0 cannot be written as a numbered sequence")
        frames = list(range(first, last + 1))
        max_frames = int((self.server_info or {}).get("limits", {}).get("max_frames", 20_000))
        if len(frames) > max_frames:
            raise UserError(f"{len(frames)} frames is more than the backend allows ({max_frames}); "
                            "generate a shorter range")
        photo = self.photos.photo_for(obj)
        directory, warning = output_dir(obj)
        try:
            made_folder = frame_cache.make_folder(directory)
        except OSError as error:
            raise UserError(f"Cannot create the output folder {directory}: {error.strerror or error}") from None
        faces = [rig.enliven.face_index for rig in rigs] if len(rigs) > 1 else None
        motion = np.stack([sampling.sample(rig, frames) for rig in rigs]) if faces else sampling.sample(obj, frames)
        self.start(GenerateJob(
            rig=obj.name, scene=scene.name, out_dir=directory, frames=frames, motion=motion, faces=faces,
            fps=sampling.scene_fps(scene), photo_data=photo.data, photo_digest=photo.digest,
            face_index=obj.enliven.face_index, engine=obj.enliven.engine.strip(), checkpoint=rig_checkpoint(obj),
            fmt=obj.enliven.frame_format.lower(), alpha=obj.enliven.alpha, made_folder=made_folder))
        return warning

    def file_loaded(self) -> None:
        """A different file: its portraits and images are different objects."""
        for job in list(self.jobs.values()):
            job.on_file_loaded()
        self.rig_status.clear()
        self.photos.clear()

    # -- the timer ----------------------------------------------------------

    def busy(self) -> bool:
        """Work that wants the fast timer. A training run alone does not: it reports every few seconds
        for hours, and the idle interval picks that up."""
        quiet = {job.job for job in self.jobs.values() if job.quiet and job.job is not None}
        return (self.state == ConnectionState.STARTING or any(job_id not in quiet for job_id in self.session.handlers)
                or any(job.busy for job in self.jobs.values()))

    def tick(self) -> float:
        self.session.tick()
        for job in list(self.jobs.values()):
            job.tick()
        record_due_undo_steps()
        if self.host.redraw_due or self.session.changed or self.subjects.changed:
            self.host.redraw_due = self.session.changed = self.subjects.changed = False
            _redraw(self._status_bar_due())
        if self.busy():
            return ACTIVE_INTERVAL
        return IDLE_INTERVAL if self.client is not None else SLEEP_INTERVAL

    def _status_bar_due(self) -> bool:
        """Refresh the status bar's progress at most 4 times a second while
        generating, and once after: refreshing it clears the status text
        that a running modal tool shows there (it comes back on the next event)."""
        job = self.generate
        if job is None or job.status_bar_final:
            return False
        now = time.monotonic()
        if now - self.status_bar_at < 0.25 and job.active:
            return False
        self.status_bar_at = now
        job.status_bar_final = not job.active
        return True

    def shutdown(self) -> None:
        """Close everything and forget all state (unregister)."""
        self.disconnect(stop_local=True)
        self.host.shutdown()
        self.__init__(self.wake)

    def _show_preview(self, rgb: np.ndarray) -> None:
        height, width = rgb.shape[:2]
        step = max(1, math.ceil(max(height, width) / PREVIEW_MAX_SIDE))
        if step > 1:
            rgb = rgb[::step, ::step]
            height, width = rgb.shape[:2]
        image = bpy.data.images.get(PREVIEW_IMAGE)
        if image is None or image.source != 'GENERATED':
            image = bpy.data.images.new(PREVIEW_IMAGE, width, height, alpha=False)
        if tuple(image.size) != (width, height):
            image.scale(width, height)
        state = self.preview
        if state.rgba is None or state.rgba.shape[:2] != (height, width):
            state.rgba = np.ones((height, width, 4), dtype=np.float32)
        # Blender's rows run bottom-up; pixels are 0..1 floats.
        np.multiply(rgb[::-1], np.float32(1.0 / 255.0), out=state.rgba[:, :, :3], casting="unsafe")
        image.pixels.foreach_set(state.rgba.ravel())
        image.update()


def _key_job_motion(job, event) -> str:
    """A capture or lip-sync job's motion arrived: key it (keying.key_job_motion), as a step of its own."""
    text = keying.key_job_motion(job, event)
    record_undo_step(f"Enliven: {job.title}")
    return text


def _frames_written(scene_name: str, rig_name: str, directory: str, fmt: str, frames: list[int]) -> str:
    """Generate finished: images showing the folder reload, and the rig's compositor node and strip play the
    frames it generated. Returns what the artist should be told besides ("" for nothing); raises UserError
    where the rig's settings changed while it generated (GenerateJob.end says so: the frames are written)."""
    _reload_sequence_images(directory)
    scene, rig = bpy.data.scenes.get(scene_name), bpy.data.objects.get(rig_name)
    if scene is None or rig is None or not frames:
        return ""
    followed, notice = hooks.frames_generated(scene, rig, directory, fmt, frames[0], frames[-1])
    if followed:
        record_undo_step("Enliven: Compositor Follows the Frames")
    return notice


def _reload_sequence_images(directory: str) -> None:
    """Make images that show this sequence pick up the new frames."""
    directory = os.path.normcase(os.path.normpath(directory))
    for image in bpy.data.images:
        if image.source in ('SEQUENCE', 'FILE') and image.filepath:
            folder = os.path.dirname(bpy.path.abspath(image.filepath, library=image.library))
            if os.path.normcase(os.path.normpath(folder)) == directory:
                image.reload()


def _redraw(status_bar: bool = False) -> None:
    wm = bpy.context.window_manager
    if wm is None:
        return
    for window in wm.windows:
        for area in window.screen.areas:
            if area.type in {'VIEW_3D', 'IMAGE_EDITOR', 'PREFERENCES', 'NODE_EDITOR', 'SEQUENCE_EDITOR'}:
                area.tag_redraw()
        if not status_bar:
            continue
        # The status bar is not one of the screen's areas; clearing its text
        # is the one Python call that tags it for a redraw.
        try:
            with bpy.context.temp_override(window=window):
                if bpy.context.workspace is not None:
                    bpy.context.workspace.status_text_set(None)
        except (RuntimeError, TypeError, AttributeError):
            pass


_undo_steps_due: list[str] = []  # steps record_undo_step could not record yet


def record_undo_step(name: str) -> None:
    """An undo step for what the add-on just changed from its timer (a group's rigs, a bake's keys, the nodes
    Generate retimed). Blender records a step after each operator only: without this one the change would
    belong to no step, and the next Ctrl+Z, whatever it undid, would take it away too (and redo never bring
    it back). Recorded now, or on a later tick when Blender cannot take one now (record_due_undo_steps)."""
    _undo_steps_due.append(name)
    record_due_undo_steps()


def record_due_undo_steps() -> None:
    """Record the undo step due, once Blender can take it: not in edit or paint modes (a step there is the
    mesh's, which holds no keys or rigs), nor in the middle of a modal operator (a half-done transform would
    be a step of its own) or a render that locks the interface."""
    if not _undo_steps_due:
        return
    wm = bpy.context.window_manager
    if wm is None or not wm.windows:
        _undo_steps_due.clear()
        return
    if any(window.modal_operators for window in wm.windows) or bpy.app.is_job_running('RENDER'):
        return
    try:
        with bpy.context.temp_override(window=wm.windows[0]):
            if bpy.context.mode not in ('OBJECT', 'POSE'):
                return
            bpy.ops.ed.undo_push(message=" + ".join(dict.fromkeys(_undo_steps_due)))
    except (RuntimeError, AttributeError):
        pass
    _undo_steps_due.clear()


def report(level: str, text: str) -> None:
    """A report in the Info editor and status bar, even from the timer (reports
    belong to operators, so a tiny internal operator makes it)."""
    wm = bpy.context.window_manager
    if wm is None or not wm.windows:
        return  # background mode / tests: the panel and the status hold it
    try:
        with bpy.context.temp_override(window=wm.windows[0]):
            bpy.ops.enliven.report(level=level, message=text[:1000])
    except (RuntimeError, AttributeError):
        pass
