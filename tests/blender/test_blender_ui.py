"""The panels, the preferences and the status bar item draw without errors in
every state, and everything they reference exists.

The bpy module has no windows, so there is no real UILayout to draw into.
`CheckingLayout` stands in for it and checks each reference against Blender's
real RNA: every property shown exists on its data, every operator is
registered (with the properties the panel sets), every icon is a real icon.
Each call is also checked against UILayout's real function signature in
this Blender version (name and keyword arguments), so a call that exists in
5.0 but not in 4.2 fails here. That is what a typo in a panel would break.
"""
from __future__ import annotations

import sys
from types import SimpleNamespace

import bpy
from .conftest import ADDON_MODULE, animate, pump

ICONS = {item.identifier for item in bpy.types.UILayout.bl_rna.functions["label"].parameters["icon"].enum_items}
LAYOUT_FUNCTIONS = bpy.types.UILayout.bl_rna.functions


def check_signature(function: str, args: tuple, kwargs: dict) -> None:
    assert function in LAYOUT_FUNCTIONS, f"UILayout.{function} does not exist in Blender {bpy.app.version_string}"
    parameters = [p.identifier for p in LAYOUT_FUNCTIONS[function].parameters if not p.is_output]
    unknown = set(kwargs) - set(parameters)
    assert not unknown, f"UILayout.{function} has no argument(s) {sorted(unknown)} in {bpy.app.version_string}"
    assert len(args) <= len(parameters)


def sub(name: str):
    return sys.modules[f"{ADDON_MODULE}.{name}"]


class CheckingLayout:
    def __init__(self, drawn: list):
        self.drawn = drawn
        self.use_property_split = False
        self.use_property_decorate = False
        self.enabled = True
        self.active = True
        self.alert = False

    def row(self, **kwargs):
        check_signature("row", (), kwargs)
        return CheckingLayout(self.drawn)

    def column(self, **kwargs):
        check_signature("column", (), kwargs)
        return CheckingLayout(self.drawn)

    def box(self, **kwargs):
        check_signature("box", (), kwargs)
        return CheckingLayout(self.drawn)

    def _icon(self, icon: str) -> None:
        assert icon in ICONS, f"unknown icon {icon!r}"

    def label(self, text: str = "", icon: str = 'NONE', **kwargs) -> None:
        check_signature("label", (), {"text": text, "icon": icon, **kwargs})
        self._icon(icon)
        self.drawn.append(("label", text))

    def prop(self, data, name: str, icon: str = 'NONE', **kwargs) -> None:
        check_signature("prop", (data, name), {"icon": icon, **kwargs})
        self._icon(icon)
        assert name in data.bl_rna.properties, f"{data.bl_rna.identifier} has no property {name!r}"
        self.drawn.append(("prop", name))
        self.drawn.append(("prop of", name, getattr(data.id_data, "name", None)))  # whose setting it is

    def template_ID(self, data, name: str, **kwargs) -> None:
        check_signature("template_ID", (data, name), kwargs)
        assert name in data.bl_rna.properties
        if "open" in kwargs:
            self._operator_rna(kwargs["open"])
        self.drawn.append(("template_ID", name))

    def _operator_rna(self, idname: str):
        module, name = idname.split(".")
        return getattr(getattr(bpy.ops, module), name).get_rna_type()

    def operator(self, idname: str, text: str = "", icon: str = 'NONE', **kwargs):
        check_signature("operator", (idname,), {"text": text, "icon": icon, **kwargs})
        self._icon(icon)
        rna = self._operator_rna(idname)
        self.drawn.append(("operator", idname))
        return _OperatorProperties(rna)

    def operator_menu_enum(self, idname: str, name: str, icon: str = 'NONE', **kwargs) -> None:
        check_signature("operator_menu_enum", (idname, name), {"icon": icon, **kwargs})
        self._icon(icon)
        assert name in self._operator_rna(idname).properties
        self.drawn.append(("operator", idname))

    def progress(self, factor: float = 0.0, type: str = 'BAR', text: str = "") -> None:
        check_signature("progress", (), {"factor": factor, "type": type, "text": text})
        assert 0.0 <= factor <= 1.0
        self.drawn.append(("progress", text))

    def separator(self, **kwargs) -> None:
        check_signature("separator", (), kwargs)


class _OperatorProperties:
    def __init__(self, rna):
        object.__setattr__(self, "rna", rna)

    def __setattr__(self, name, value):
        assert name in self.rna.properties, f"operator has no property {name!r}"


def draw(panel_class) -> list:
    drawn: list = []
    panel_class.draw(SimpleNamespace(layout=CheckingLayout(drawn)), bpy.context)
    return drawn


def draw_all() -> list:
    panels = sub("panels")
    drawn = []
    for panel_class in panels.classes:
        if not hasattr(panel_class, "poll") or panel_class.poll(bpy.context):
            drawn += draw(panel_class)
    drawn_status: list = []
    panels.draw_status_bar(SimpleNamespace(layout=CheckingLayout(drawn_status)), bpy.context)
    return drawn + drawn_status


def test_panels_without_a_portrait(scene):
    drawn = draw_all()
    assert ("operator", "enliven.add_portrait") in drawn
    assert ("label", "Add a portrait to start") in drawn


def test_panels_with_a_portrait_show_every_channel(portrait):
    channels = sub("shared.channels")
    drawn = draw_all()
    for ch in channels.CHANNELS:
        assert ("prop", ch.name) in drawn
    # The body's channels (breathing, shrugs, torso) have their own group, under its own heading.
    assert channels.GROUPS["body"] == ("breathing", "shrug_l", "shrug_r", "torso_lean", "torso_turn")
    assert sub("properties").GROUP_TITLES["body"] == "Body"
    for idname in ("enliven.generate", "enliven.add_to_compositor", "enliven.add_to_sequencer",
                   "enliven.insert_preset", "enliven.bake_motion"):
        assert ("operator", idname) in drawn
    assert ("prop", "live_preview") in drawn


def test_progress_and_errors_are_drawn(connected, portrait, tmp_path):
    # The photo analysed already (Add Portrait did), Generate's "Preparing…" stayed the portrait's status line
    # over the progress bar until the job ended.
    pump(lambda: connected.rig_status.get(portrait.name, ('',))[0] == 'CHECKMARK', 60, "the analysis")
    portrait.enliven.output_dir = str(tmp_path)
    animate(portrait, 1, 40)
    assert bpy.ops.enliven.generate() == {'FINISHED'}
    job = connected.generate
    pump(lambda: job.rendered >= 1, 60, "the first frame")
    drawn = draw_all()
    progress = [entry[1] for entry in drawn if entry[0] == "progress"]
    assert len(progress) == 2 and progress[1].startswith("Enliven: ")  # panel and status bar
    assert ("label", "Preparing…") not in drawn
    assert ("operator", "enliven.cancel") in drawn
    bpy.ops.enliven.cancel()
    pump(lambda: not job.active, 30, "the cancel")
    drawn = draw_all()
    assert not any(entry[0] == "progress" for entry in drawn)
    assert ("label", job.message) in drawn

    connected.fail_connection("Backend not reachable: test")
    assert ("label", "Backend not reachable: test") in draw_all()


class _WithLayout:
    """The preferences object, with our layout in place of its real one."""

    def __init__(self, wrapped, layout):
        self._wrapped, self.layout = wrapped, layout

    def __getattr__(self, name):
        return getattr(self._wrapped, name)


def test_preferences_draw(prefs):
    for mode in ('CONNECT', 'LOCAL'):
        prefs.mode = mode
        drawn: list = []
        type(prefs).draw(_WithLayout(prefs, CheckingLayout(drawn)), bpy.context)
        assert ("prop", "address" if mode == 'CONNECT' else "python_env") in drawn
    prefs.mode = 'CONNECT'
