"""Compositor-grade frames in Blender: RGBA frames over a background plate
rendered with F12, multilayer EXR frames whose layers the Image node shows,
linear colour that round-trips, and Vector Blur wired to the motion vectors."""
from __future__ import annotations

import sys

import bpy
import numpy as np
import pytest
from .conftest import ADDON_MODULE, animate, generate, image_channels, image_pixels

FIRST, LAST = 3, 5
PLATE = (0.0, 0.0, 1.0, 1.0)  # pure blue: no pixel of the astronaut's photo is near it


def sub(name: str):
    return sys.modules[f"{ADDON_MODULE}.{name}"]


@pytest.fixture
def rig(connected, portrait, tmp_path):
    portrait.enliven.output_dir = str(tmp_path / "frames")
    animate(portrait, FIRST, LAST)
    scene = bpy.context.scene
    scene.frame_start, scene.frame_end = 1, 10
    return portrait


def render(scene, frame: int, path, file_format: str = 'PNG'):
    scene.frame_set(frame)
    scene.render.filepath = str(path)
    settings = scene.render.image_settings
    settings.file_format = file_format
    settings.color_mode = 'RGB'
    if file_format == 'PNG':
        settings.color_depth = '8'
    else:
        settings.color_depth = '32'
    assert bpy.ops.render.render(write_still=True) == {'FINISHED'}


def test_alpha_frames_over_a_plate_show_the_plate_around_the_person(rig, tmp_path):
    rig.enliven.alpha = True
    job = generate()
    assert job.state == "DONE", job.message
    frame_file = tmp_path / "frames" / f"frame_{LAST:05d}.png"
    scene = bpy.context.scene
    plate = bpy.data.images.new("Plate", 512, 512, alpha=False)
    plate.generated_color = PLATE
    assert bpy.ops.enliven.add_to_compositor(background=plate.name) == {'FINISHED'}
    render(scene, LAST, tmp_path / "over.png")
    rendered = image_pixels(tmp_path / "over.png").astype(int)
    frame = image_pixels(frame_file).astype(int)
    blue = np.array([0, 0, 255])
    # Around the person (the backdrop at the top corners, beside the head): the plate.
    for y, x in ((8, 8), (8, 500), (60, 60), (60, 450)):
        assert np.abs(rendered[y, x] - blue).max() <= 2, (y, x, rendered[y, x])
    # On the face: the generated frame's own pixels.
    assert np.abs(rendered[130:150, 200:240] - frame[130:150, 200:240]).max() <= 2
    tree = sub("compat").compositor_tree(scene)
    assert any(n.bl_idname == "CompositorNodeAlphaOver" for n in tree.nodes)
    # Frame FIRST is the photo itself (the keys start at rest): over the plate, the person is the
    # photo's own pixels within 1/255.
    render(scene, FIRST, tmp_path / "still.png")
    still = image_pixels(tmp_path / "still.png").astype(int)
    photo = image_pixels(rig.enliven.photo.filepath).astype(int)
    alpha = image_channels(tmp_path / "frames" / f"frame_{FIRST:05d}.png")[..., 3]
    person = alpha == 1.0
    assert person.sum() > 50_000 and np.abs(still[person] - photo[person]).max() <= 1


def test_exr_layers_are_image_node_outputs_and_linear_colour_round_trips(rig, tmp_path):
    rig.enliven.frame_format = 'EXR'
    job = generate()
    assert job.state == "DONE", job.message
    names = sorted(p.name for p in (tmp_path / "frames").iterdir() if not p.name.startswith("."))
    assert names == [f"frame_{f:05d}.exr" for f in range(FIRST, LAST + 1)]
    scene = bpy.context.scene
    assert bpy.ops.enliven.add_to_compositor(vector_blur=True) == {'FINISHED'}
    tree = sub("compat").compositor_tree(scene)
    node = next(n for n in tree.nodes if n.bl_idname == "CompositorNodeImage")
    outputs = {socket.name for socket in node.outputs}
    assert {"Combined", "Alpha", "Vector", "Person", "Face", "Eyes", "Mouth"} <= outputs
    blur = next(n for n in tree.nodes if n.bl_idname == "CompositorNodeVecBlur")
    assert blur.inputs["Speed"].links[0].from_socket.name == "Vector"
    assert (scene.render.resolution_x, scene.render.resolution_y) == (512, 512)
    render(scene, LAST, tmp_path / "blurred.exr", 'OPEN_EXR')

    # Frame FIRST is the photo itself (the keys start at rest): its linear colour, through the
    # compositor, is the photo's in linear.
    assert bpy.ops.enliven.add_to_compositor(vector_blur=False) == {'FINISHED'}
    render(scene, FIRST, tmp_path / "still.exr", 'OPEN_EXR')
    rendered = image_channels(tmp_path / "still.exr")[..., :3]
    photo = image_pixels(rig.enliven.photo.filepath).astype(np.float64) / 255.0
    linear = np.where(photo <= 0.04045, photo / 12.92, ((photo + 0.055) / 1.055) ** 2.4)
    assert np.abs(rendered - linear).max() < 2e-3


def test_vector_blur_needs_exr_frames(rig):
    job = generate()
    assert job.state == "DONE", job.message
    with pytest.raises(RuntimeError, match="OpenEXR"):
        bpy.ops.enliven.add_to_compositor(vector_blur=True)


def test_switching_png_and_exr_sets_the_compositor_up_again_as_it_was(rig):
    """Generate in the other format left the Image node playing the old format's files (or none) and said
    nothing: the node now shows the new frames, still over the render, and a Vector Blur that PNG frames
    cannot feed is removed with a warning."""
    scene = bpy.context.scene
    scene.camera = bpy.data.objects.new("Camera", bpy.data.cameras.new("Camera"))
    scene.collection.objects.link(scene.camera)
    assert generate().state == "DONE"
    assert bpy.ops.enliven.add_to_compositor(over_render=True) == {'FINISHED'}
    tree = sub("compat").compositor_tree(scene)
    rig.enliven.frame_format = 'EXR'
    job = generate()
    assert job.state == "DONE", job.message
    node = next(n for n in tree.nodes if n.bl_idname == "CompositorNodeImage")
    assert node.image.filepath.endswith(f"frame_{FIRST:05d}.exr")
    assert "Vector" in {socket.name for socket in node.outputs}
    over = next(n for n in tree.nodes if n.bl_idname == "CompositorNodeAlphaOver")
    assert {link.from_node.bl_idname for put in over.inputs for link in put.links} == {
        "CompositorNodeImage", "CompositorNodeRLayers"}

    assert bpy.ops.enliven.add_to_compositor(over_render=True, vector_blur=True) == {'FINISHED'}
    rig.enliven.frame_format = 'PNG'
    job = generate()
    assert job.state == "DONE" and "Vector Blur was removed" in job.message, job.message
    assert node.image.filepath.endswith(f"frame_{FIRST:05d}.png")
    assert not [n for n in tree.nodes if n.bl_idname == "CompositorNodeVecBlur"]
    assert any(link.from_node == node for put in over.inputs for link in put.links)
    assert sub("compat").compositor_output_socket(scene, tree).links[0].from_node == over


@pytest.mark.parametrize("name", ["SHOT_010_0020_plate_portrait_grandma_v003_final_graded_2048px",
                                  "家族写真_おばあちゃん_二〇二三年夏"])
def test_a_long_portrait_name_keeps_one_node_and_one_strip_that_follow_generate(rig, name):
    """Blender cuts names at 63 bytes: a rig named after a long photo name (or 18 Japanese characters) got a
    new Image node, image and strip at every Add to Compositor / Sequencer, one stacked over the other, and
    Generate retimed none of them."""
    scene = bpy.context.scene
    rig.name = name
    rig.enliven.use_custom_range = False
    scene.frame_start, scene.frame_end = 1, 3
    assert generate().state == "DONE"
    for _ in range(2):
        assert bpy.ops.enliven.add_to_compositor() == {'FINISHED'}
        assert bpy.ops.enliven.add_to_sequencer() == {'FINISHED'}
    tree = sub("compat").compositor_tree(scene, create=False)
    images = [node for node in tree.nodes if node.bl_idname == "CompositorNodeImage"]
    strips = list(sub("compat").strips(scene))
    assert len(images) == 1 and len(strips) == 1, ([n.name for n in tree.nodes], [s.name for s in strips])
    assert not [node for node in tree.nodes if "Stack" in node.name]
    assert len([image for image in bpy.data.images if image.source == 'SEQUENCE']) == 1
    scene.frame_end = 5
    assert generate().state == "DONE"
    assert images[0].frame_duration == 5
    assert len(strips[0].elements) == 5


def test_frames_never_generated_are_not_added(rig):
    """A range made longer after Generate: Add to Compositor and Add to Sequencer played the frames never
    written, which render empty, and said nothing."""
    scene = bpy.context.scene
    rig.enliven.use_custom_range = False
    scene.frame_start, scene.frame_end = 1, 3
    assert generate().state == "DONE"
    scene.frame_end = 6
    for operator in (bpy.ops.enliven.add_to_compositor, bpy.ops.enliven.add_to_sequencer):
        with pytest.raises(RuntimeError, match="Frames 4-6 .* never generated"):
            operator()
    scene.frame_end = 3
    assert bpy.ops.enliven.add_to_compositor() == {'FINISHED'}


def test_an_artist_s_render_layers_node_stays_without_a_camera(rig):
    """Without a camera, Add to Compositor removes Blender's own Render Layers node (F12 refuses to render
    while there is one), but it removed the artist's too, with the nodes they had wired to it."""
    scene = bpy.context.scene
    assert scene.camera is None
    assert generate().state == "DONE"
    compat = sub("compat")
    tree = compat.compositor_tree(scene, create=True)
    layers = tree.nodes.new("CompositorNodeRLayers")
    layers.name = "My Render Layers"
    glare = tree.nodes.new("CompositorNodeGlare")
    glare.name = "My Glare"
    tree.links.new(layers.outputs["Image"], glare.inputs[0])
    assert bpy.ops.enliven.add_to_compositor() == {'FINISHED'}
    assert "My Render Layers" in tree.nodes and tree.nodes["My Glare"].inputs[0].is_linked
    assert not [node.name for node in tree.nodes if node.bl_idname == "NodeReroute"]  # (4.5's, fed by Blender's)
    assert [name for name in sub("compositing").render_layers_nodes(scene)] == ["My Render Layers"]
