"""Generated frames in the shot: the compositor renders frame N as generated
frame N (F12 / Render Animation), and the sequencer strip sits at the right
frames. Runs on every Blender version the tests run under (4.2 and 5.0
differ in both the compositor and the sequencer API)."""
from __future__ import annotations

import os
import sys

import bpy
import numpy as np
import pytest
from .conftest import ADDON_MODULE, animate, generate, image_pixels, in_window, undo_step

FIRST, LAST = 3, 8


def sub(name: str):
    return sys.modules[f"{ADDON_MODULE}.{name}"]


@pytest.fixture(scope="module")
def frames_dir(tmp_path_factory):
    # One folder for the module: each test's Generate finds the frames cached.
    return tmp_path_factory.mktemp("frames")


@pytest.fixture
def generated(connected, portrait, frames_dir):
    portrait.enliven.output_dir = str(frames_dir)
    animate(portrait, FIRST, LAST)
    scene = bpy.context.scene
    scene.frame_start, scene.frame_end = 1, 20
    job = generate()
    assert job.state == "DONE", job.message
    return portrait


def render_frame(scene, frame: int, path) -> np.ndarray:
    scene.frame_set(frame)
    scene.render.filepath = str(path)
    scene.render.image_settings.file_format = 'PNG'
    scene.render.image_settings.color_mode = 'RGB'
    scene.render.image_settings.color_depth = '8'
    assert bpy.ops.render.render(write_still=True) == {'FINISHED'}
    return image_pixels(path)


def test_compositor_render_of_frame_n_is_generated_frame_n(generated, frames_dir, tmp_path):
    scene = bpy.context.scene
    assert bpy.ops.enliven.add_to_compositor() == {'FINISHED'}
    assert scene.render.resolution_x == 512 and scene.render.resolution_percentage == 100
    assert scene.view_settings.view_transform == 'Standard'
    generated_frames = {f: image_pixels(frames_dir / f"frame_{f:05d}.png").astype(int) for f in range(FIRST, LAST + 1)}
    for frame in (FIRST, 5, LAST):
        rendered = render_frame(scene, frame, tmp_path / f"render_{frame}.png").astype(int)
        assert rendered.shape == (512, 512, 3)
        # Equal within colour tolerance to its own frame...
        assert np.abs(rendered - generated_frames[frame]).max() <= 2, frame
        # ...and not to a neighbour (the numbering lines up).
        neighbour = frame + 1 if frame < LAST else frame - 1
        assert np.abs(rendered - generated_frames[neighbour]).max() > 2

    # A second Add to Compositor updates the same nodes instead of adding more.
    tree = sub("compat").compositor_tree(scene)
    count = len(tree.nodes)
    assert bpy.ops.enliven.add_to_compositor() == {'FINISHED'}
    assert len(tree.nodes) == count


def test_compositor_over_render_uses_alpha_over(generated):
    scene = bpy.context.scene
    compat = sub("compat")
    assert bpy.ops.enliven.add_to_compositor(over_render=True) == {'FINISHED'}
    tree = compat.compositor_tree(scene)
    over = next(n for n in tree.nodes if n.bl_idname == "CompositorNodeAlphaOver")
    background, foreground = compat.alpha_over_sockets(over)
    assert background.links[0].from_node.bl_idname == "CompositorNodeRLayers"
    assert foreground.links[0].from_node.bl_idname == "CompositorNodeImage"
    assert compat.compositor_output_socket(scene, tree).links[0].from_node == over
    # Switching it off again links the frames straight to the output.
    assert bpy.ops.enliven.add_to_compositor(over_render=False) == {'FINISHED'}
    assert compat.compositor_output_socket(scene, tree).links[0].from_node.bl_idname == "CompositorNodeImage"
    assert not any(n.bl_idname == "CompositorNodeAlphaOver" for n in tree.nodes)


def test_sequencer_strip_lands_at_the_right_frames(generated, frames_dir, tmp_path):
    scene = bpy.context.scene
    assert bpy.ops.enliven.add_to_sequencer() == {'FINISHED'}
    strips = list(sub("compat").strips(scene))
    assert len(strips) == 1
    strip = strips[0]
    assert strip.type == 'IMAGE'
    assert sub("compat").strip_span(strip) == (FIRST, LAST + 1)
    assert [e.filename for e in strip.elements] == [f"frame_{f:05d}.png" for f in range(FIRST, LAST + 1)]
    # Adding again replaces the strip on the same channel.
    channel = strip.channel
    assert bpy.ops.enliven.add_to_sequencer() == {'FINISHED'}
    strips = list(sub("compat").strips(scene))
    assert len(strips) == 1 and strips[0].channel == channel
    # And the sequencer renders it: frame 6 of the shot is generated frame 6.
    rendered = render_frame(scene, 6, tmp_path / "vse_6.png").astype(int)
    assert np.abs(rendered - image_pixels(frames_dir / "frame_00006.png").astype(int)).max() <= 2


def test_compositor_needs_generated_frames_first(connected, portrait, tmp_path):
    portrait.enliven.output_dir = str(tmp_path / "empty")
    with pytest.raises(RuntimeError, match="run Generate first"):
        bpy.ops.enliven.add_to_compositor()
    with pytest.raises(RuntimeError, match="run Generate first"):
        bpy.ops.enliven.add_to_sequencer()


def test_generating_a_longer_range_again_plays_it_in_the_compositor_and_the_sequencer(generated, frames_dir):
    # The portrait already in the shot, its animation made longer and generated again: the Image node and the
    # strip play the new frames (before, renders past the old last frame showed that frame, frozen).
    scene = bpy.context.scene
    assert bpy.ops.enliven.add_to_compositor() == {'FINISHED'}
    assert bpy.ops.enliven.add_to_sequencer() == {'FINISHED'}
    next(iter(sub("compat").strips(scene))).blend_alpha = 0.5  # the artist's own setting
    animate(generated, FIRST, LAST + 4)
    job = generate()
    assert job.state == "DONE", job.message
    node = next(n for n in sub("compat").compositor_tree(scene).nodes if n.bl_idname == "CompositorNodeImage")
    assert (node.frame_start, node.frame_duration) == (FIRST, LAST + 4 - FIRST + 1)
    strips = list(sub("compat").strips(scene))
    assert len(strips) == 1 and sub("compat").strip_span(strips[0]) == (FIRST, LAST + 5)
    assert strips[0].blend_alpha == 0.5  # kept: the strip grew, it was not made again
    assert strips[0].elements[-1].filename == f"frame_{LAST + 4:05d}.png"
    # Another Output Folder, generated again: the node and the strip show the new files.
    generated.enliven.output_dir = str(frames_dir / "elsewhere")
    job = generate()
    assert job.state == "DONE", job.message
    assert os.path.dirname(bpy.path.abspath(node.image.filepath)) == str(frames_dir / "elsewhere")
    strip = next(iter(sub("compat").strips(scene)))
    assert os.path.normpath(bpy.path.abspath(strip.directory)) == str(frames_dir / "elsewhere")
    # And another frame format: Generate leaves the node as it was set up (its outputs change), and Add to
    # Compositor sets it up again where it was (it left the output linked from the PNG's hidden socket).
    generated.enliven.frame_format = 'EXR'
    job = generate()
    assert job.state == "DONE", job.message
    assert bpy.ops.enliven.add_to_compositor() == {'FINISHED'}
    node = next(n for n in sub("compat").compositor_tree(scene).nodes if n.bl_idname == "CompositorNodeImage")
    assert node.image.filepath.endswith(".exr")
    output = sub("compat").compositor_output_socket(scene, sub("compat").compositor_tree(scene))
    assert output.links[0].from_node == node and output.links[0].from_socket == node.outputs[0]


def test_undo_after_generating_again_keeps_the_node_playing_the_new_frames(generated):
    # Generate retimes the node from the timer, after every undo step: undoing the next thing done put it back
    # to the old length, and renders past it froze on its last frame although the frames were written.
    scene = bpy.context.scene
    undo_step("Before")
    assert bpy.ops.enliven.add_to_compositor() == {'FINISHED'}
    undo_step("Add to Compositor")
    animate(generated, FIRST, LAST + 4)
    undo_step("Keys")
    job = generate()
    assert job.state == "DONE", job.message
    scene.frame_end = 40
    undo_step("End Frame")
    assert in_window(bpy.ops.ed.undo) == {'FINISHED'}
    scene = bpy.context.scene
    assert scene.frame_end == 20
    node = next(n for n in sub("compat").compositor_tree(scene).nodes if n.bl_idname == "CompositorNodeImage")
    assert (node.frame_start, node.frame_duration) == (FIRST, LAST + 4 - FIRST + 1)


def test_generating_a_shorter_range_again_shortens_the_strip(generated, frames_dir):
    # The strip dropped its last frames with StripElements.pop(), which needs an index: the error left the job
    # FINISHING ("Connecting…", Generate greyed out, Cancel doing nothing) until the connection was closed.
    scene = bpy.context.scene
    assert bpy.ops.enliven.add_to_sequencer() == {'FINISHED'}
    generated.enliven.frame_end = LAST - 2
    job = generate()
    assert job.state == "DONE" and "not updated" not in job.message, job.message
    (strip,) = sub("compat").strips(scene)
    assert sub("compat").strip_span(strip) == (FIRST, LAST - 1)
    assert [e.filename for e in strip.elements] == [f"frame_{f:05d}.png" for f in range(FIRST, LAST - 1)]


def test_the_strip_keeps_the_artist_s_settings_in_another_folder_format_and_first_frame(generated, frames_dir,
                                                                                        tmp_path):
    # Another Output Folder, PNG switched to EXR, or another first frame: the strip was made again, and the
    # artist's opacity and blend mode were lost. It is the same strip, playing the frames written.
    scene = bpy.context.scene
    compat = sub("compat")
    assert bpy.ops.enliven.add_to_sequencer() == {'FINISHED'}
    (strip,) = compat.strips(scene)
    strip.blend_alpha, strip.blend_type, strip.channel = 0.5, 'ADD', 3
    png_6 = image_pixels(frames_dir / "frame_00006.png").astype(int)

    def follows(folder, first, ext):
        (strip,) = compat.strips(scene)
        assert (strip.blend_alpha, strip.blend_type, strip.channel) == (0.5, 'ADD', 3)
        assert os.path.normpath(bpy.path.abspath(strip.directory)) == str(folder)
        assert compat.strip_span(strip) == (first, LAST + 1)
        assert [e.filename for e in strip.elements] == [f"frame_{f:05d}.{ext}" for f in range(first, LAST + 1)]
        return strip

    generated.enliven.output_dir = str(tmp_path / "elsewhere")
    assert generate().state == "DONE"
    follows(tmp_path / "elsewhere", FIRST, "png")
    generated.enliven.frame_format = 'EXR'
    assert generate().state == "DONE"
    strip = follows(tmp_path / "elsewhere", FIRST, "exr")
    assert strip.colorspace_settings.name == compat.linear_colorspace() and strip.alpha_mode == 'PREMUL'
    strip.blend_alpha, strip.blend_type = 1.0, 'ALPHA_OVER'  # render: the EXR frame is the PNG frame
    if bpy.app.version >= (4, 5):  # (4.2's sequencer renders a multilayer EXR strip, made anew too, mostly black)
        rendered = render_frame(scene, 6, tmp_path / "vse_exr_6.png").astype(int)
        assert np.abs(rendered - png_6).max() <= 2
    strip.blend_alpha, strip.blend_type = 0.5, 'ADD'
    generated.enliven.frame_start = FIRST + 1
    assert generate().state == "DONE"
    follows(tmp_path / "elsewhere", FIRST + 1, "exr")
