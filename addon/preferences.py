"""Add-on preferences: where the backend is, or how to start one."""
from __future__ import annotations

import bpy
from bpy.props import EnumProperty, FloatProperty, IntProperty, StringProperty

from . import hooks
from .shared.client import DEFAULT_ADDRESS

# The extension's package name is decided by Blender (bl_ext.<repo>.enliven);
# preferences are registered under it.
ADDON_ID = __package__


def _mode_changed(prefs, context) -> None:
    hooks.settings_changed()


class ENLIVEN_AP_preferences(bpy.types.AddonPreferences):
    bl_idname = ADDON_ID

    mode: EnumProperty(
        name="Backend",
        items=(
            ('CONNECT', "Connect to a Running Backend",
             "Use an `enliven serve` that is already running, on this machine or another"),
            ('LOCAL', "Start a Local Backend",
             "Start `enliven serve` from a Python environment on this machine when needed, "
             "and stop it when Blender quits"),
        ),
        default='CONNECT',
        update=_mode_changed,
    )
    address: StringProperty(
        name="Address", default=DEFAULT_ADDRESS, update=_mode_changed,
        description="ZeroMQ address of the running backend, e.g. tcp://127.0.0.1:5570")
    server_key: StringProperty(
        name="Server Public Key", default="", subtype='FILE_PATH', update=_mode_changed,
        description="For a backend on another machine (CurveZMQ encryption): the server.key file "
                    "made by `enliven keys` on that machine")
    client_key: StringProperty(
        name="Client Secret Key", default="", subtype='FILE_PATH', update=_mode_changed,
        description="For a backend on another machine: this workstation's *.key_secret file "
                    "whose public key is in the server's clients/ folder")
    python_env: StringProperty(
        name="Python Environment", default="", subtype='FILE_PATH', update=_mode_changed,
        description="The Python environment where `enliven` is installed: its folder (e.g. .venv) "
                    "or its python executable")
    local_port: IntProperty(
        name="Port", default=0, min=0, max=65535, update=_mode_changed,
        description="Loopback port for the local backend; 0 picks a free one")
    timeout: FloatProperty(
        name="Timeout", default=5.0, min=0.5, max=120.0, unit='TIME_ABSOLUTE', update=_mode_changed,
        description="Seconds of silence after which the backend counts as unreachable")

    def draw(self, context: bpy.types.Context) -> None:
        layout = self.layout
        layout.use_property_split = True
        layout.prop(self, "mode")
        if self.mode == 'CONNECT':
            layout.prop(self, "address")
            column = layout.column(heading="Encryption")
            column.prop(self, "server_key")
            column.prop(self, "client_key")
        else:
            layout.prop(self, "python_env")
            layout.prop(self, "local_port")
        layout.prop(self, "timeout")

        box = layout.box()
        icon, text = hooks.status_line()
        box.label(text=text, icon=icon)
        row = box.row(align=True)
        row.operator("enliven.connect", icon='LINKED')
        if self.mode == 'LOCAL':
            row.operator("enliven.stop_backend", icon='CANCEL')
        if hooks.has_log():
            row.operator("enliven.show_log", icon='TEXT')


classes = (ENLIVEN_AP_preferences,)


class _Defaults:
    """Preference values when the add-on's preferences are not available
    (a script imported the package without enabling it)."""

    mode = 'CONNECT'
    address = DEFAULT_ADDRESS
    server_key = ""
    client_key = ""
    python_env = ""
    local_port = 0
    timeout = 5.0


def get() -> ENLIVEN_AP_preferences | _Defaults:
    addon = bpy.context.preferences.addons.get(ADDON_ID)
    return addon.preferences if addon is not None and addon.preferences is not None else _Defaults()
