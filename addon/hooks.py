"""Callbacks that the property, preference and UI modules call without
importing the connection: `register()` (addon/__init__.py) points them at the
runtime, and `unregister()` puts the harmless defaults back.

This is what keeps the import graph one-way: properties and preferences sit
at the bottom, the runtime above them, operators and panels on top.
"""
from __future__ import annotations

from collections.abc import Callable


def _nothing(*args) -> None:
    return None


# A channel property of a rig object was set (UI or script): (obj) -> None.
channels_changed: Callable = _nothing
# The scene's Live Preview switch was toggled: (scene) -> None.
preview_toggled: Callable = _nothing
# A connection preference changed: () -> None.
settings_changed: Callable = _nothing
# The connected backend's engine names, for the Engine field's search list: () -> list[str].
engine_names: Callable[[], list[str]] = lambda: ["warp", "refine"]
# The connection's (icon, text) for the preferences: () -> tuple[str, str].
status_line: Callable[[], tuple[str, str]] = lambda: ('UNLINKED', "Not connected")
# Whether a local backend's log can be shown: () -> bool.
has_log: Callable[[], bool] = lambda: False
# Generate wrote a rig's frames: the shot's nodes and strips follow them:
# (scene, rig, folder, format, first, last) -> (whether there were any to follow, a warning or "").
frames_generated: Callable = lambda *args: (False, "")

_DEFAULTS = dict(globals())


def reset() -> None:
    """Back to the defaults (unregister): nothing keeps the old runtime alive."""
    for name in ("channels_changed", "preview_toggled", "settings_changed", "engine_names", "status_line",
                 "has_log", "frames_generated"):
        globals()[name] = _DEFAULTS[name]
