"""Enliven for Blender: keyframe the face in a portrait photo, preview it
live, generate it with the `enliven serve` backend and render it through the
compositor or the sequencer.

The extension's package name is chosen by Blender (bl_ext.<repo>.enliven), so
everything inside uses relative imports; the protocol, channel table, presets
and motion files come from the vendored `shared` subpackage (see build.py).
Every class is registered here, in one place, and the hooks through which
properties and preferences reach the runtime are filled in here.

Imports run one way (no module imports one above it):
  states, hooks, frame_cache, local_backend  (no bpy)
  session, subjects, jobs, *_job             (no bpy)
  compat, properties, preferences, sampling, keying, groups, photos
  runtime -> connection (RUNTIME, the timer)
  compositing, operators*, panels
"""
from __future__ import annotations

if "bpy" in locals():
    # "Reload Scripts" (F3 > Reload Scripts): pick up edited submodules, lowest first.
    import importlib

    for _module in _MODULES:  # noqa: F821
        importlib.reload(_module)

import bpy

# Every submodule is imported here (not only those registering classes) so
# that the reload block above can reload them all.
from . import (states, hooks, frame_cache, local_backend, session, subjects, jobs, preview_job,
               generate_job, bake_job, training_job, compat, properties, preferences, sampling, keying, groups,
               photos, runtime, connection, compositing, operators, operators_portrait, operators_bake, operators_output,
               operators_training, panels)

_MODULES = (states, hooks, frame_cache, local_backend, session, subjects, jobs, preview_job, generate_job, bake_job,
            training_job, compat, properties, preferences, sampling, keying, groups, photos, runtime, connection,
            compositing, operators, operators_portrait, operators_bake, operators_output, operators_training, panels)

classes = (
    *properties.classes,
    *preferences.classes,
    *operators.classes,
    *operators_portrait.classes,
    *operators_bake.classes,
    *operators_output.classes,
    *operators_training.classes,
    *panels.classes,
)


def _fill_hooks() -> None:
    runtime = connection.RUNTIME
    hooks.channels_changed = connection.channels_changed
    hooks.preview_toggled = connection.preview_toggled
    hooks.settings_changed = runtime.settings_changed
    hooks.engine_names = lambda: (runtime.server_info or {}).get("engines", ["warp", "refine"])
    hooks.status_line = runtime.status_line
    hooks.has_log = runtime.has_log
    hooks.frames_generated = compositing.follow_new_frames


def register() -> None:
    for cls in classes:
        bpy.utils.register_class(cls)
    properties.register_pointers()
    bpy.types.STATUSBAR_HT_header.append(panels.draw_status_bar)
    _fill_hooks()
    connection.register()


def unregister() -> None:
    connection.unregister()
    hooks.reset()
    bpy.types.STATUSBAR_HT_header.remove(panels.draw_status_bar)
    properties.unregister_pointers()
    for cls in reversed(classes):
        bpy.utils.unregister_class(cls)
