"""Everything that differs between Blender 4.2 LTS and 5.3, in one place.

The rest of the add-on never looks at `bpy.app.version`; it calls these
helpers. Where an API can be detected by its presence we test for that
instead of a version number, so a 4.x release that gained a 5.0 API early
takes the newer path. See the "Blender versions" table in DESIGN.md:

- action F-curves: `action.fcurves` (4.2) vs layered actions whose F-curves
  live in a channelbag per slot (4.4+, the only way in 5.0);
- compositor: `scene.use_nodes` + `scene.node_tree` ending in a Composite
  node (4.x) vs `scene.compositing_node_group`, a node group whose group
  output is the result (5.0 to 5.2) vs the node group of the active entry in
  `scene.compositor_effects` (5.3; the 5.0 property warns it goes in 6.0);
- the Alpha Over node's sockets: ("Fac", "Image", "Image") vs
  ("Background", "Foreground", "Factor", ...) in 5.0;
- sequencer: `sequence_editor.sequences` (4.2) vs `.strips` (4.4+, only in 5.0);
- strip timing: `frame_start`, `frame_final_start` / `frame_final_end` (4.2 to
  5.2) vs `content_start`, `left_handle` / `right_handle` (5.3, where the old
  names warn that they go in 6.0).

Python and numpy: 4.2 to 5.0 embed Python 3.11 with numpy 1.26, 5.1 to 5.3
Python 3.13 with numpy 2.x. The add-on's code is the same on both; only the
pyzmq wheel differs (build.py ships one per Python line).
"""
from __future__ import annotations

import os

import bpy

# Names of the nodes and trees we create, so a second "Add to Compositor"
# finds and updates them instead of adding more.
COMPOSITOR_TREE_NAME = "Enliven Compositing"


# --------------------------------------------------------------------------- F-curves


def _layered(action: bpy.types.Action) -> bool:
    """Layered actions (4.4+): F-curves live in a channelbag per slot; 4.5 still
    has `action.fcurves` as a legacy wrapper, 5.0 only has channelbags."""
    return hasattr(action, "layers")


def _channelbag(obj: bpy.types.Object):
    """The channelbag holding `obj`'s F-curves in its assigned action slot (4.4+),
    or None when the object has no slot (an action assigned by a script
    before anything was keyed)."""
    from bpy_extras import anim_utils

    adt = obj.animation_data
    slot = getattr(adt, "action_slot", None) if adt is not None and adt.action is not None else None
    if slot is None:
        return None
    return anim_utils.action_get_channelbag_for_slot(adt.action, slot)


def fcurves(obj: bpy.types.Object) -> list:
    """All F-curves animating `obj` through its active action (empty when none)."""
    adt = obj.animation_data
    if adt is None or adt.action is None:
        return []
    action = adt.action
    if not _layered(action):
        return list(action.fcurves)
    bag = _channelbag(obj)
    return list(bag.fcurves) if bag is not None else []


def fcurves_by_path(obj: bpy.types.Object, prefix: str = "") -> dict[str, bpy.types.FCurve]:
    """{data_path: F-curve} of `obj` for paths starting with `prefix` (index 0 only:
    our channels are scalars)."""
    return {fc.data_path: fc for fc in fcurves(obj) if fc.array_index == 0 and fc.data_path.startswith(prefix)}


def ensure_fcurve(obj: bpy.types.Object, data_path: str, group: str) -> bpy.types.FCurve:
    """The F-curve for `data_path` on `obj`, creating the action (and slot) if needed."""
    adt = obj.animation_data or obj.animation_data_create()
    if adt.action is None:
        adt.action = bpy.data.actions.new(f"{obj.name}Action")
    action = adt.action
    ensure = action.bl_rna.functions.get("fcurve_ensure_for_datablock")
    if ensure is not None:
        # 4.4+: creates the layer, strip, slot and channelbag as needed and
        # assigns the slot, exactly like inserting a key from the UI.
        if "group_name" in ensure.parameters:  # 5.0
            return action.fcurve_ensure_for_datablock(obj, data_path, index=0, group_name=group)
        fc = action.fcurve_ensure_for_datablock(obj, data_path, index=0)  # 4.4 / 4.5
        if fc.group is None:
            bag = _channelbag(obj)
            fc.group = bag.groups.get(group) or bag.groups.new(group)
        return fc
    fc = action.fcurves.find(data_path, index=0)
    if fc is None:
        fc = action.fcurves.new(data_path, index=0, action_group=group)
    return fc


def blend_relative_path() -> set[str]:
    """Options of a path property that takes "//" (relative to the .blend; read with bpy.path.abspath).
    4.5+ marks such a value red and warns ("does not support blend relative") unless the property says
    so; 4.2 does not know the option."""
    if "is_path_supports_blend_relative" in bpy.types.Property.bl_rna.properties:
        return {'PATH_SUPPORTS_BLEND_RELATIVE'}
    return set()


# --------------------------------------------------------------------------- compositor


def _has_property(data, name: str) -> bool:
    """Whether an RNA struct has a property, asked without reading it: reading
    a deprecated property (or `hasattr` on it) warns."""
    return name in data.bl_rna.properties


def uses_node_groups_for_compositing(scene: bpy.types.Scene) -> bool:
    """5.0+: the compositor is a node group with a group output, no Composite node."""
    return _has_property(scene, "compositor_effects") or _has_property(scene, "compositing_node_group")


def compositor_tree(scene: bpy.types.Scene, create: bool = True):
    """The scene's compositor node tree, created (and switched on) if needed.

    4.x: `scene.node_tree`, switched on by `scene.use_nodes`.
    5.0 to 5.2: the node group in `scene.compositing_node_group`.
    5.3: the node group of the active entry of `scene.compositor_effects`, a
    stack of compositor effects (`compositing_node_group` still works there
    but warns that it goes in 6.0).
    """
    if _has_property(scene, "compositor_effects"):
        effects = scene.compositor_effects
        effect = effects.active
        if effect is None:
            if not create:
                return None
            effect = effects.new(name=COMPOSITOR_TREE_NAME)
        if effect.node_group is None and create:
            effect.node_group = bpy.data.node_groups.new(COMPOSITOR_TREE_NAME, "CompositorNodeTree")
        return effect.node_group
    if _has_property(scene, "compositing_node_group"):
        tree = scene.compositing_node_group
        if tree is None and create:
            tree = bpy.data.node_groups.new(COMPOSITOR_TREE_NAME, "CompositorNodeTree")
            scene.compositing_node_group = tree
        return tree
    if create:
        scene.use_nodes = True  # 4.x creates scene.node_tree (with default nodes) here
    return scene.node_tree


def compositor_output_socket(scene: bpy.types.Scene, tree) -> bpy.types.NodeSocket:
    """The socket whose input is the final composited image: the Composite
    node's Image input (4.x) or the group output's first colour socket (5.0)."""
    if not uses_node_groups_for_compositing(scene):
        node = next((n for n in tree.nodes if n.bl_idname == "CompositorNodeComposite"), None)
        if node is None:
            node = tree.nodes.new("CompositorNodeComposite")
            node.location = (600, 0)
        return node.inputs[0]
    # 5.0: the tree's interface needs an Image output socket for the render.
    has_output = any(
        item.item_type == 'SOCKET' and item.in_out == 'OUTPUT' for item in tree.interface.items_tree
    )
    if not has_output:
        tree.interface.new_socket(name="Image", in_out='OUTPUT', socket_type='NodeSocketColor')
    node = next((n for n in tree.nodes if n.bl_idname == "NodeGroupOutput"), None)
    if node is None:
        node = tree.nodes.new("NodeGroupOutput")
        node.location = (600, 0)
    node.is_active_output = True
    return node.inputs[0]


def linear_colorspace() -> str:
    """The name of scene-linear Rec.709 in Blender's OCIO config (4.0 renamed "Linear" to it)."""
    names = {item.identifier for item in
             bpy.types.ColorManagedInputColorspaceSettings.bl_rna.properties["name"].enum_items}
    return "Linear Rec.709" if "Linear Rec.709" in names else "Linear"


def alpha_over_sockets(node: bpy.types.Node) -> tuple[bpy.types.NodeSocket, bpy.types.NodeSocket]:
    """(background, foreground) inputs of an Alpha Over node."""
    if "Background" in node.inputs:
        return node.inputs["Background"], node.inputs["Foreground"]
    return node.inputs[1], node.inputs[2]  # 4.x: ("Fac", "Image", "Image")


# --------------------------------------------------------------------------- sequencer


def strips(scene: bpy.types.Scene):
    """The top-level strip collection of the scene's sequencer (created if needed)."""
    editor = scene.sequence_editor or scene.sequence_editor_create()
    return editor.strips if hasattr(editor, "strips") else editor.sequences


def strips_property(editor) -> str:
    """The name of the strip collection on a sequence editor, for `prop_search`."""
    return "strips" if hasattr(editor, "strips") else "sequences"


def strip_content_start(strip) -> int:
    """The timeline frame where the strip's first frame of content sits
    (`content_start` in 5.3, `frame_start` before)."""
    return int(strip.content_start if hasattr(strip, "content_start") else strip.frame_start)


def set_strip_content_start(strip, frame: int) -> None:
    """Move the strip so that its first frame of content sits at timeline frame `frame`."""
    setattr(strip, "content_start" if hasattr(strip, "content_start") else "frame_start", frame)


def strip_span(strip) -> tuple[int, int]:
    """(first frame shown, first frame no longer shown) of a strip, after its
    handles: `left_handle` / `right_handle` in 5.3, `frame_final_start` /
    `frame_final_end` before."""
    if hasattr(strip, "left_handle"):
        return int(strip.left_handle), int(strip.right_handle)
    return int(strip.frame_final_start), int(strip.frame_final_end)


def sound_strips(scene: bpy.types.Scene) -> list:
    """The sound strips of the scene's sequencer (none when it has no sequencer)."""
    if scene.sequence_editor is None:
        return []
    return [strip for strip in strips(scene) if strip.type == 'SOUND']


def sound_strip_path(strip) -> str:
    """The absolute path of the file a sound strip plays."""
    sound = strip.sound
    return bpy.path.abspath(sound.filepath, library=sound.library) if sound is not None else ""


def can_add_sound() -> bool:
    """Sound strips need Blender's audio library; the `bpy` module of 4.2 is
    built without it ("compiled without Audaspace support")."""
    return bool(getattr(bpy.app.build_options, "audaspace", True))


def add_sound_strip(scene: bpy.types.Scene, filepath: str, frame_start: int, length: int):
    """A sound strip playing `filepath` from `frame_start`, on the lowest
    channel free over the `length` frames it will cover. The same file already
    placed at that frame is reused, so baking again does not stack copies.
    Raises RuntimeError when this Blender cannot play sound."""
    target = os.path.normcase(os.path.abspath(filepath))
    for strip in sound_strips(scene):
        if strip_content_start(strip) == frame_start and os.path.normcase(sound_strip_path(strip)) == target:
            return strip
    collection = strips(scene)
    end = frame_start + max(1, length)
    busy = {strip.channel for strip in collection if overlaps(strip_span(strip), (frame_start, end))}
    channel = next((c for c in range(1, 129) if c not in busy), 128)
    name = os.path.splitext(os.path.basename(filepath))[0] or "Speech"
    strip = collection.new_sound(name, filepath, channel, frame_start)
    if bpy.data.filepath and strip.sound is not None:  # relative to the .blend, as the frames are: the project can move
        try:
            strip.sound.filepath = bpy.path.relpath(filepath)
        except ValueError:  # another drive on Windows
            pass
    return strip


def overlaps(span: tuple[int, int], other: tuple[int, int]) -> bool:
    """Whether two half-open frame ranges [start, end) share a frame."""
    return span[0] < other[1] and span[1] > other[0]


# --------------------------------------------------------------------------- UI


def layout_progress(layout: bpy.types.UILayout, factor: float, text: str) -> None:
    """A progress bar (UILayout.progress exists since 4.0, so on every
    supported version; kept here so a future change lands in one place)."""
    layout.progress(factor=factor, type='BAR', text=text)
