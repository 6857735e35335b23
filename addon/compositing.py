"""Put a generated frame sequence into the shot: as an image sequence in the
compositor (optionally over the render or a background image, with Vector
Blur) or as an image strip in the sequencer, with colour management that
gives back the frames' pixels (PNG: 8-bit sRGB; EXR: linear, premultiplied).

Frame files are named after scene frames (frame_00042.png is frame 42), so
both the compositor's Image node and the strip line up with the timeline
without offsets to reason about. Version differences go through compat.
"""
from __future__ import annotations

import hashlib
import os
import struct

import bpy

from . import compat, connection, groups

NODE_PREFIX = "Enliven"
MAX_NAME_BYTES = 61  # Blender cuts longer names of strips (63 of nodes and datablocks; UTF-8 bytes)
# Nodes a new compositor's Render Layers node feeds; feeding only these, it is Blender's, not the artist's.
OUTPUT_NODES = {"CompositorNodeComposite", "CompositorNodeViewer", "NodeGroupOutput"}


def owned_name(obj: bpy.types.Object, kind: str = "") -> str:
    """The name of the rig's image, strip ("") or compositor node of `kind` ("Image", "Stack", ...).

    Blender cuts names at MAX_NAME_BYTES, so a long rig name (a long photo name: a shot's plate, a name
    in Japanese) made names that never matched again: every Add to Compositor added another node, and
    Generate stopped retiming them. A name too long ends in a short hash of the whole rig name instead."""
    name = " ".join(part for part in (NODE_PREFIX, kind, obj.name) if part)
    if len(name.encode()) <= MAX_NAME_BYTES:
        return name
    tag = " " + hashlib.sha1(obj.name.encode()).hexdigest()[:8]
    return name.encode()[:MAX_NAME_BYTES - len(tag)].decode(errors="ignore") + tag


def frame_format(obj: bpy.types.Object) -> str:
    """The rig's frame files: "png" or "exr"."""
    return obj.enliven.frame_format.lower()


def sequence_frames(obj: bpy.types.Object, scene: bpy.types.Scene) -> tuple[str, int, int]:
    """(folder, first frame, last frame) of the rig's generated sequence in the
    current frame range; UserError when its first frame was never generated."""
    from . import sampling

    directory, _ = connection.output_dir(obj)
    first, last = sampling.frame_range(scene, obj)
    fmt = frame_format(obj)
    missing = [frame for frame in range(first, last + 1)
               if not os.path.isfile(os.path.join(directory, connection.frame_filename(frame, fmt)))]
    if len(missing) == last - first + 1:
        raise connection.UserError(
            f"No generated frames for '{obj.name}' in {directory} (frame {first} is missing); run Generate first")
    if missing:
        # Played, a frame never written renders empty: a range made longer after Generate rendered blank.
        raise connection.UserError(
            f"Frames {_frame_list(missing)} of '{obj.name}' were never generated (in {directory}); run Generate "
            f"for frames {first}-{last}")
    return directory, first, last


def _frame_list(frames: list[int]) -> str:
    """The frames as runs, "4-6, 9" for [4, 5, 6, 9]; the first few runs only."""
    runs: list[list[int]] = []
    for frame in frames:
        if runs and frame == runs[-1][1] + 1:
            runs[-1][1] = frame
        else:
            runs.append([frame, frame])
    text = ", ".join(f"{a}-{b}" if b > a else f"{a}" for a, b in runs[:4])
    return text + (", ..." if len(runs) > 4 else "")


def _filepath(path: str) -> str:
    # Relative to the .blend when it is saved, so the project can move.
    if bpy.data.filepath:
        try:
            return bpy.path.relpath(path)
        except ValueError:  # another drive on Windows
            return path
    return path


def sequence_image(obj: bpy.types.Object, directory: str, first: int, fmt: str | None = None) -> bpy.types.Image:
    """The image datablock that plays the rig's sequence (created or updated), of files in format `fmt` (default:
    the rig's)."""
    name = owned_name(obj)
    fmt = fmt or frame_format(obj)
    path = _filepath(os.path.join(directory, connection.frame_filename(first, fmt)))
    image = bpy.data.images.get(name)
    if image is None or image.library is not None:
        image = bpy.data.images.load(bpy.path.abspath(path), check_existing=False)
        image.name = name
    image.source = 'SEQUENCE'
    image.filepath = path
    # The PNGs hold display-referred sRGB: the same space the scene's
    # Standard view transform maps back to, so pixels round-trip. The EXRs
    # hold linear Rec.709 with premultiplied alpha, as Blender's own renders.
    image.colorspace_settings.name = 'sRGB' if fmt == "png" else compat.linear_colorspace()
    image.alpha_mode = 'STRAIGHT' if fmt == "png" else 'PREMUL'
    image.reload()
    return image


def set_color_management(scene: bpy.types.Scene) -> None:
    """Settings under which a rendered frame equals the generated PNG (within 1/255)."""
    view = scene.view_settings
    view.view_transform = 'Standard'
    view.look = 'None'
    view.exposure = 0.0
    view.gamma = 1.0
    view.use_curve_mapping = False
    scene.display_settings.display_device = 'sRGB'
    scene.sequencer_colorspace_settings.name = 'sRGB'
    scene.render.dither_intensity = 0.0  # dither adds noise to every 8-bit output


def color_management_problems(scene: bpy.types.Scene) -> list[str]:
    """What would keep a render from reproducing the generated frames."""
    view = scene.view_settings
    problems = []
    if view.view_transform != 'Standard':
        problems.append(f"view transform is {view.view_transform} (Standard reproduces the frames)")
    if view.look != 'None':
        problems.append(f"look is {view.look}")
    if abs(view.exposure) > 1e-6 or abs(view.gamma - 1.0) > 1e-6:
        problems.append("exposure/gamma are not 0/1")
    if view.use_curve_mapping:
        problems.append("curves are on")
    if scene.display_settings.display_device != 'sRGB':
        problems.append(f"display is {scene.display_settings.display_device}")
    return problems


def frame_size(path: str) -> tuple[int, int]:
    """(width, height) from a PNG's or an EXR's header, without loading it into Blender; (0, 0) if unknown."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(1 << 16)
    except OSError:
        return (0, 0)
    if len(head) >= 24 and head.startswith(b"\x89PNG"):
        return int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")
    # EXR: after magic and version, attributes (name NUL, type NUL, size, value) until an empty name.
    at = head.find(b"dataWindow\0box2i\0") if head.startswith(b"\x76\x2f\x31\x01") else -1
    if at < 0 or len(head) < at + 37:
        return (0, 0)
    x0, y0, x1, y1 = struct.unpack("<4i", head[at + 21:at + 37])
    return x1 - x0 + 1, y1 - y0 + 1


def set_resolution(scene: bpy.types.Scene, size: tuple[int, int]) -> None:
    """Render at the frames' own size, so the compositor neither crops nor scales them."""
    width, height = size
    if width and height:
        scene.render.resolution_x, scene.render.resolution_y = width, height
        scene.render.resolution_percentage = 100
        scene.render.pixel_aspect_x = scene.render.pixel_aspect_y = 1.0


def _node(tree, bl_idname: str, name: str, location: tuple[float, float]) -> bpy.types.Node:
    node = tree.nodes.get(name)
    if node is not None and node.bl_idname != bl_idname:
        tree.nodes.remove(node)
        node = None
    if node is None:
        node = tree.nodes.new(bl_idname)
        node.name = name
        node.label = name
        node.location = location
    return node


def add_to_compositor(scene: bpy.types.Scene, obj: bpy.types.Object, over_render: bool,
                      background: bpy.types.Image | None = None, vector_blur: bool = False) -> bpy.types.Node:
    """Build or update the compositor so the rig's sequence feeds the output.

    Each portrait has its own Image node (the faces of a group photo share their lead rig's: one
    sequence holds them all). With a `background` image, or else
    with `over_render` the Render Layers output, the frames go over it with an
    Alpha Over node; otherwise straight to the output (a compositor-only scene
    renders without a camera). A portrait added to a compositor whose output
    another portrait already feeds goes over that one (an Alpha Over "Stack"
    node), so every portrait added stays in the picture, the last on top.
    `vector_blur` blurs the frames along their motion vectors first (EXR
    frames only). Returns the Image node.
    """
    obj = groups.lead_rig(obj)
    directory, first, last = sequence_frames(obj, scene)
    if vector_blur and frame_format(obj) != "exr":
        raise connection.UserError("Vector Blur needs the frames' motion vectors: generate them as OpenEXR Multilayer")
    tree = compat.compositor_tree(scene, create=True)
    output = compat.compositor_output_socket(scene, tree)
    # Where this portrait's picture goes now (a Stack node's input, the output): added again with other
    # settings, its new result goes there, so it stays where it was in the stack.
    # (Only its picture's: an artist's own links from the Image node's mattes, alpha or vectors stay.) Read
    # before its image changes: another frame format gives the Image node other outputs.
    chain = {kind: owned_name(obj, kind) for kind in ("Image", "Vector Blur", "Over", "Background")}
    picture = next((tree.nodes[chain[kind]] for kind in ("Over", "Vector Blur", "Image") if chain[kind] in tree.nodes),
                   None)
    feeds = [(link.to_node.name, link.to_socket.identifier)
             for link in (picture.outputs[0].links if picture is not None else ())
             if link.to_node.name not in chain.values()]
    image = sequence_image(obj, directory, first)

    image_node = _node(tree, "CompositorNodeImage", chain["Image"], (0, 0))
    image_node.image = image
    _time_image_node(image_node, first, last)
    image_node.use_cyclic = False
    image_node.use_auto_refresh = True

    # The colour: "Image" for a PNG, "Combined" (its first pass) for a multilayer EXR.
    result = image_node.outputs[0]
    blur_name = chain["Vector Blur"]
    if vector_blur:
        blur = _node(tree, "CompositorNodeVecBlur", blur_name, (250, -200))
        tree.links.new(result, blur.inputs["Image"])
        tree.links.new(image_node.outputs["Vector"], blur.inputs["Speed"])
        result = blur.outputs["Image"]
    else:
        _remove(tree, blur_name)
    over_name, plate_name = chain["Over"], chain["Background"]
    if background is not None or over_render:
        if background is not None:
            plate = _node(tree, "CompositorNodeImage", plate_name, (0, 300))
            plate.image = background
            behind = plate.outputs["Image"]
        else:
            _remove(tree, plate_name)
            layers = next((n for n in tree.nodes if n.bl_idname == "CompositorNodeRLayers"), None)
            if layers is None:
                layers = tree.nodes.new("CompositorNodeRLayers")
                layers.location = (0, 300)
            behind = layers.outputs["Image"]
        over = _node(tree, "CompositorNodeAlphaOver", over_name, (500, 100))
        back_socket, front_socket = compat.alpha_over_sockets(over)
        tree.links.new(behind, back_socket)
        tree.links.new(result, front_socket)
        result = over.outputs["Image"]
    else:
        _remove(tree, over_name)
        _remove(tree, plate_name)
    for node_name, identifier in feeds:
        node = tree.nodes.get(node_name)
        socket = next((put for put in node.inputs if put.identifier == identifier), None) if node else None
        if socket is not None:
            tree.links.new(result, socket)
    if not _upstream(output, result.node):  # else it is in the picture already, updated where it was
        tree.links.new(_stacked(tree, obj, output, result), output)
    if not over_render and scene.camera is None:
        # Without a camera a Render Layers node can never render, but its mere
        # presence (4.x puts one in every new compositor, 4.5 wires it to the
        # Viewer too) makes F12 refuse to render although the frames need no
        # camera. Only Blender's own goes: one the artist wired into nodes of
        # their own stays (the operator says it needs a camera).
        for node in [n for n in tree.nodes if n.bl_idname == "CompositorNodeRLayers" and _feeds_only_outputs(n)]:
            tree.nodes.remove(node)
        while True:  # and the reroutes they fed (4.5's), now fed by nothing
            idle = [n for n in tree.nodes if n.bl_idname == "NodeReroute" and not n.inputs[0].is_linked]
            if not idle:
                break
            for node in idle:
                tree.nodes.remove(node)
    scene.render.use_compositing = True
    return image_node


def _feeds_only_outputs(node) -> bool:
    """Whether `node` feeds nothing but output nodes, through reroutes (4.5 wires a new compositor's Render
    Layers through one to the Composite and the Viewer)."""
    todo = [link.to_node for put in node.outputs for link in put.links]
    while todo:
        current = todo.pop()
        if current.bl_idname == "NodeReroute":
            todo += [link.to_node for put in current.outputs for link in put.links]
        elif current.bl_idname not in OUTPUT_NODES:
            return False
    return True


def render_layers_nodes(scene: bpy.types.Scene) -> list[str]:
    """The names of the compositor's Render Layers nodes (F12 needs a scene camera while there are any)."""
    tree = compat.compositor_tree(scene, create=False)
    return [node.name for node in tree.nodes if node.bl_idname == "CompositorNodeRLayers"] if tree is not None else []


def _upstream(socket, node) -> bool:
    """Whether `node` feeds input `socket`, directly or through other nodes."""
    seen, todo = set(), [link.from_node for link in socket.links]
    while todo:
        current = todo.pop()
        if current == node:
            return True
        if current.name not in seen:
            seen.add(current.name)
            todo += [link.from_node for put in current.inputs for link in put.links]
    return False


def _stacked(tree, obj: bpy.types.Object, output, result):
    """`result` over what another portrait sends to `output` (kept across re-adding this one), or itself."""
    stack_name = owned_name(obj, "Stack")
    own = {owned_name(obj, kind) for kind in ("Image", "Vector Blur", "Over", "Background", "Stack")}
    below = None
    if stack_name in tree.nodes:  # added before: it stays over what it was over
        back, _ = compat.alpha_over_sockets(tree.nodes[stack_name])
        below = back.links[0].from_socket if back.is_linked else None
    elif output.is_linked:
        feeding = output.links[0].from_socket
        if feeding.node.name.startswith(NODE_PREFIX) and feeding.node.name not in own:
            below = feeding
    if below is None:
        _remove(tree, stack_name)
        return result
    stack = _node(tree, "CompositorNodeAlphaOver", stack_name, (750, 100))
    back, front = compat.alpha_over_sockets(stack)
    tree.links.new(below, back)
    tree.links.new(result, front)
    return stack.outputs["Image"]


def _remove(tree, name: str) -> None:
    if name in tree.nodes:
        tree.nodes.remove(tree.nodes[name])


def _time_image_node(node, first: int, last: int) -> None:
    """An Image node playing files first..last at those scene frames."""
    # Scene frame f shows file number (f - frame_start + 1 + frame_offset);
    # files are numbered by scene frame, so offset = first - 1.
    node.frame_start = first
    node.frame_offset = first - 1
    node.frame_duration = last - first + 1


def follow_new_frames(scene: bpy.types.Scene, obj: bpy.types.Object, directory: str, fmt: str, first: int,
                      last: int) -> tuple[bool, str]:
    """After Generate wrote frames first..last into `directory` as `fmt`: the rig's Image node and strip,
    where it has them, play them (a range made longer and generated again played on, in renders, the old last
    frame). A node showing another format (the artist switched PNG and OpenEXR) is set up again as it was,
    over the same render or plate and in the same place in the stack: its outputs change. The strip keeps
    the artist's settings (opacity, blend, channel, modifiers): it is pointed at the frames written
    (_follow_in_strip), never made again.
    Returns whether the node or the strip was there to follow them, and what the artist should be told ("")."""
    obj = groups.lead_rig(obj)
    tree = compat.compositor_tree(scene, create=False)
    node = tree.nodes.get(owned_name(obj, "Image")) if tree is not None else None
    followed, notice = node is not None and node.image is not None, ""
    if followed and not node.image.filepath.lower().endswith(f".{fmt}"):
        notice = _set_up_for_format(scene, obj, tree, fmt)
    if followed:
        _time_image_node(node, first, last)
        node.image = sequence_image(obj, directory, first, fmt)  # (another Output Folder: the files written)
    strip = compat.strips(scene).get(owned_name(obj)) if scene.sequence_editor is not None else None
    if strip is None:
        return followed, notice
    _follow_in_strip(strip, directory, fmt, first, last)
    return True, notice


def _follow_in_strip(strip, directory: str, fmt: str, first: int, last: int) -> None:
    """The rig's strip plays frames first..last of `directory` as `fmt`, the same strip: a range made longer or
    shorter adds or drops frames at its end, another Output Folder or format renames its files, another first
    frame moves it. (It was made again for another folder, format or first frame, and lost the artist's
    opacity, blend and modifiers; a range made shorter raised in StripElements.pop and left Generate running.)"""
    path = _filepath(os.path.join(directory, connection.frame_filename(first, fmt)))
    if (os.path.normcase(os.path.normpath(bpy.path.abspath(strip.directory))) !=
            os.path.normcase(os.path.normpath(directory))):
        strip.directory = os.path.join(os.path.dirname(path), "")
    if not (len(strip.elements) and strip.elements[0].filename.lower().endswith(f".{fmt}")):
        strip.colorspace_settings.name = 'sRGB' if fmt == "png" else compat.linear_colorspace()
        strip.alpha_mode = 'STRAIGHT' if fmt == "png" else 'PREMUL'  # EXR frames are premultiplied
    if compat.strip_content_start(strip) != first:
        compat.set_strip_content_start(strip, first)
    while len(strip.elements) > last - first + 1:
        strip.elements.pop(len(strip.elements) - 1)
    for element, frame in zip(strip.elements, range(first, last + 1)):
        element.filename = connection.frame_filename(frame, fmt)
    for frame in range(first + len(strip.elements), last + 1):
        strip.elements.append(connection.frame_filename(frame, fmt))


def _set_up_for_format(scene: bpy.types.Scene, obj: bpy.types.Object, tree, fmt: str) -> str:
    """The rig's compositor nodes added again, as they were, for frames now `fmt`. (Left as they were, the
    Image node played the old format's files, or none, and nothing said so.) Returns what the artist should
    be told: PNG frames have no motion vectors for a Vector Blur."""
    plate = tree.nodes.get(owned_name(obj, "Background"))
    background = plate.image if plate is not None else None
    over_render = background is None and owned_name(obj, "Over") in tree.nodes
    blurred = owned_name(obj, "Vector Blur") in tree.nodes
    add_to_compositor(scene, obj, over_render, background, vector_blur=blurred and fmt == "exr")
    if blurred and fmt != "exr":
        return ("PNG frames carry no motion vectors: the compositor's Vector Blur was removed (generate "
                "OpenEXR Multilayer frames to blur them again)")
    return ""


def add_to_sequencer(scene: bpy.types.Scene, obj: bpy.types.Object, channel: int = 0):
    """Add (or replace) an image strip that plays the rig's frames at their frame numbers (a group photo's:
    its lead rig's, one strip for every face)."""
    obj = groups.lead_rig(obj)
    directory, first, last = sequence_frames(obj, scene)
    collection = compat.strips(scene)
    name = owned_name(obj)
    old = collection.get(name)
    if old is not None:
        channel = channel or old.channel
        collection.remove(old)
    if not channel:
        # The first channel with nothing in the strip's frames.
        busy = {s.channel for s in collection if compat.overlaps(compat.strip_span(s), (first, last + 1))}
        channel = next(c for c in range(1, 129) if c not in busy)
    fmt = frame_format(obj)
    strip = collection.new_image(name, _filepath(os.path.join(directory, connection.frame_filename(first, fmt))),
                                 channel, first)
    for frame in range(first + 1, last + 1):
        strip.elements.append(connection.frame_filename(frame, fmt))
    strip.colorspace_settings.name = 'sRGB' if fmt == "png" else compat.linear_colorspace()
    scene.render.use_sequencer = True
    return strip
