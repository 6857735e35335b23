"""The add-on's link to the backend as Blender runs it: the one `Runtime`
(RUNTIME), the timer that drives it, and the app handlers that ask for a
preview when the pose changes. What they drive lives in its own modules:

* session.py - connecting, hello, replies routed by job id;
* local_backend.py - `enliven serve` as a child process;
* subjects.py - photos the backend has analysed;
* jobs.py and *_job.py - one controller per running job (preview, generate,
  bake, training), free of bpy;
* frame_cache.py - generated frames on disk; photos.py - photos and paths;
* runtime.py - all of the above joined with what only Blender can do.

Timers never fire in the `bpy` module or `blender -b`, so tests call `poll()`
themselves. Errors end up where the artist looks: the panel's status line
and per-portrait status, and a report in the Info editor / status bar.
"""
from __future__ import annotations

import atexit
import traceback

import bpy
from bpy.app.handlers import persistent

from . import properties
# Re-exported: the names other modules and scripts know this module by.
from .frame_cache import CACHE_FILE, frame_filename, frames_reusable  # noqa: F401
from .photos import backend_path, output_dir, speech_dir  # noqa: F401
from .runtime import PREVIEW_IMAGE, SLEEP_INTERVAL, Runtime  # noqa: F401
from .states import UserError  # noqa: F401


def poll() -> float:
    """The timer callback. Never raises: an internal error becomes a status line."""
    global _in_tick
    _in_tick = True
    try:
        return RUNTIME.tick()
    except Exception as error:  # noqa: BLE001 - a raising timer is unregistered silently by Blender
        traceback.print_exc()
        RUNTIME.notify('ERROR', f"Internal error in Enliven: {error!r} (details in the system console)")
        return SLEEP_INTERVAL
    finally:
        _in_tick = False


_in_tick = False


def ensure_timer() -> None:
    """Make the timer run soon: work was just sent. Inside the timer itself
    the returned interval does this instead."""
    if _in_tick:
        return
    if bpy.app.timers.is_registered(poll):
        bpy.app.timers.unregister(poll)
    bpy.app.timers.register(poll, first_interval=0.0, persistent=True)


RUNTIME = Runtime(wake=ensure_timer)


def channels_changed(obj: bpy.types.Object) -> None:
    """A channel property was set (UI or script)."""
    scene = bpy.context.scene
    if scene is not None and scene.enliven.live_preview and properties.active_rig(bpy.context, scene) == obj:
        RUNTIME.request_preview(scene)


def preview_toggled(scene: bpy.types.Scene) -> None:
    if scene.enliven.live_preview:
        # Show the current pose even if it did not change, and retry after an error.
        RUNTIME.preview.show_again()
        RUNTIME.request_preview(scene)


@persistent
def _on_frame_change(scene: bpy.types.Scene, depsgraph=None) -> None:
    if scene.enliven.live_preview:
        RUNTIME.request_preview(scene)


@persistent
def _on_depsgraph_update(scene: bpy.types.Scene, depsgraph=None) -> None:
    # Catches what no property callback sees: F-curve edits in the Graph
    # Editor, undo, a different active object. Requests are deduplicated by
    # value, so this is cheap when nothing that matters changed.
    if scene.enliven.live_preview:
        RUNTIME.request_preview(scene)


@persistent
def _on_load_post(*args) -> None:
    RUNTIME.file_loaded()


HANDLERS = (
    ("frame_change_post", _on_frame_change),
    ("depsgraph_update_post", _on_depsgraph_update),
    ("load_post", _on_load_post),
)


def _remove_handlers() -> None:
    # By name as well as by identity: after a script reload the old module's
    # functions are different objects, and they must not stay behind.
    names = {function.__name__ for _, function in HANDLERS}
    for attribute, _ in HANDLERS:
        handlers = getattr(bpy.app.handlers, attribute)
        for function in list(handlers):
            if getattr(function, "__module__", "") == __name__ and getattr(function, "__name__", "") in names:
                handlers.remove(function)


def _atexit() -> None:
    local = RUNTIME.local
    if local is None:
        return
    if RUNTIME.training is not None and RUNTIME.training.active:
        local.ask_to_stop()  # it saves the run and exits by itself; Blender does not wait for that
    else:
        local.stop(timeout=3.0)


def register() -> None:
    _remove_handlers()
    for attribute, function in HANDLERS:
        getattr(bpy.app.handlers, attribute).append(function)
    if not bpy.app.timers.is_registered(poll):
        bpy.app.timers.register(poll, first_interval=SLEEP_INTERVAL, persistent=True)
    atexit.register(_atexit)  # Blender quitting does not call unregister()


def unregister() -> None:
    if bpy.app.timers.is_registered(poll):
        bpy.app.timers.unregister(poll)
    _remove_handlers()
    atexit.unregister(_atexit)
    RUNTIME.shutdown()
