"""Operators: every button of the Enliven panel, in modules by what they
work on (operators_portrait, operators_bake, operators_output,
operators_training); this one holds the backend's buttons and what they share.

Operators never wait for the backend: they start work through
`connection.RUNTIME` and return; replies arrive in the timer. Problems the
artist can fix are `UserError`s, shown with self.report (status bar and Info
editor) rather than as tracebacks.
"""
from __future__ import annotations

import os

import bpy
from bpy.props import EnumProperty, StringProperty

from . import properties
from .connection import RUNTIME
from .states import UserError


def rig_poll(context: bpy.types.Context) -> bool:
    return properties.active_rig(context) is not None


class RigOperator:
    """Mixin: an operator that works on the active portrait rig (listed before
    bpy.types.Operator in the bases)."""

    @classmethod
    def poll(cls, context):
        return rig_poll(context)


def refresh(context: bpy.types.Context) -> None:
    # Re-evaluate the current frame so the channel sliders show the new keys.
    context.scene.frame_set(context.scene.frame_current)


def existing_file(path: str, what: str) -> str:
    path = bpy.path.abspath(path)
    if not path or not os.path.isfile(path):
        raise UserError(f"No such {what}: {path or '(none chosen)'}")
    return os.path.abspath(path)


class ENLIVEN_OT_report(bpy.types.Operator):
    """Show a message from the Enliven backend connection"""

    bl_idname = "enliven.report"
    bl_label = "Enliven Report"
    bl_options = {'INTERNAL'}

    level: EnumProperty(items=(('INFO', "Info", ""), ('WARNING', "Warning", ""), ('ERROR', "Error", "")))
    message: StringProperty()

    def execute(self, context):
        self.report({self.level}, self.message)
        return {'FINISHED'}


class ENLIVEN_OT_connect(bpy.types.Operator):
    """Connect to the Enliven backend (starting the local one if the preferences say so)"""

    bl_idname = "enliven.connect"
    bl_label = "Connect"

    def execute(self, context):
        RUNTIME.connect(force=True)
        if RUNTIME.state == "ERROR":
            self.report({'ERROR'}, RUNTIME.message)
            return {'CANCELLED'}
        return {'FINISHED'}


class ENLIVEN_OT_stop_backend(bpy.types.Operator):
    """Stop the local backend that Enliven started"""

    bl_idname = "enliven.stop_backend"
    bl_label = "Stop Backend"

    def execute(self, context):
        RUNTIME.disconnect(stop_local=True, wait=False)
        return {'FINISHED'}


class ENLIVEN_OT_show_log(bpy.types.Operator):
    """Show the local backend's output in the Text Editor ("Enliven Backend Log")"""

    bl_idname = "enliven.show_log"
    bl_label = "Show Backend Log"

    def execute(self, context):
        if RUNTIME.local is None:
            self.report({'WARNING'}, "No local backend was started")
            return {'CANCELLED'}
        text = bpy.data.texts.get("Enliven Backend Log") or bpy.data.texts.new("Enliven Backend Log")
        text.from_string("\n".join(RUNTIME.local.log) + "\n")
        shown = False
        for area in (context.screen.areas if context.screen else []):
            if area.type == 'TEXT_EDITOR':
                area.spaces.active.text = text
                shown = True
        self.report({'INFO'}, "Backend log is in the text 'Enliven Backend Log'"
                    + ("" if shown else " (open it in a Text Editor)"))
        return {'FINISHED'}

classes = (ENLIVEN_OT_report, ENLIVEN_OT_connect, ENLIVEN_OT_stop_backend, ENLIVEN_OT_show_log)
