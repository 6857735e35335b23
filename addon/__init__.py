"""Enliven for Blender: keyframe the face in a portrait photo, preview it
live, generate it with the `enliven serve` backend and render it through the
compositor or the sequencer.

The extension's package name is chosen by Blender (bl_ext.<repo>.enliven), so
everything inside uses relative imports; the protocol, channel table, presets
and motion files come from the vendored `shared` subpackage (see build.py).
Every class is registered here, in one place.
"""
from __future__ import annotations

if "bpy" in locals():
    # "Reload Scripts" (F3 > Reload Scripts): pick up edited submodules.
    import importlib

    for _module in (compat, properties, preferences, sampling, connection, keying, compositing, operators, panels):  # noqa: F821
        importlib.reload(_module)

import bpy

# Every submodule is imported here (not only those registering classes) so
# that the reload block above can reload them all.
from . import compat, compositing, connection, keying, operators, panels, preferences, properties, sampling  # noqa: F401

classes = (
    *properties.classes,
    *preferences.classes,
    *operators.classes,
    *panels.classes,
)


def register() -> None:
    for cls in classes:
        bpy.utils.register_class(cls)
    properties.register_pointers()
    bpy.types.STATUSBAR_HT_header.append(panels.draw_status_bar)
    connection.register()


def unregister() -> None:
    connection.unregister()
    bpy.types.STATUSBAR_HT_header.remove(panels.draw_status_bar)
    properties.unregister_pointers()
    for cls in reversed(classes):
        bpy.utils.unregister_class(cls)
