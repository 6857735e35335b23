"""Generate, and the generated frames into the compositor and the sequencer."""
from __future__ import annotations

import os

import bpy
from bpy.props import BoolProperty, IntProperty, StringProperty

from . import compat, compositing, connection, groups, properties, sampling
from .connection import RUNTIME
from .runtime import PREVIEW_IMAGE
from .operators import RigOperator, rig_poll
from .states import UserError



class OutputSettings:
    """Mixin: how placing the frames in the compositor or sequencer sets up the scene."""

    set_color_management: BoolProperty(
        name="Set Color Management", default=True,
        description="Use the Standard view transform so rendered pixels equal the generated frames")
    set_resolution: BoolProperty(name="Set Resolution", default=True,
                                 description="Set the render size to the frames' size at 100%")

class ENLIVEN_OT_generate(bpy.types.Operator):
    """Render the portrait's animation over the frame range into a numbered PNG or EXR sequence.
    Frames that were already generated and did not change are kept"""

    bl_idname = "enliven.generate"
    bl_label = "Generate"

    @classmethod
    def poll(cls, context):
        job = RUNTIME.generate
        return rig_poll(context) and not (job is not None and job.active)

    def execute(self, context):
        obj = properties.active_rig(context)
        try:
            warning = RUNTIME.start_generate(context.scene, obj)
        except UserError as error:
            self.report({'ERROR'}, str(error))
            return {'CANCELLED'}
        if warning:
            self.report({'WARNING'}, warning)
        if sampling.uses_nla(obj):
            self.report({'WARNING'}, "NLA strips on the portrait are ignored; only its active action is generated")
        return {'FINISHED'}


class ENLIVEN_OT_cancel(bpy.types.Operator):
    """Stop generating; frames already written are kept"""

    bl_idname = "enliven.cancel"
    bl_label = "Cancel"

    @classmethod
    def poll(cls, context):
        job = RUNTIME.generate
        return job is not None and job.active

    def execute(self, context):
        RUNTIME.cancel_generate()
        return {'FINISHED'}


class ENLIVEN_OT_add_to_compositor(OutputSettings, RigOperator, bpy.types.Operator):
    """Feed the generated sequence into the compositor so F12 and Render Animation render it"""

    bl_idname = "enliven.add_to_compositor"
    bl_label = "Add to Compositor"
    bl_options = {'REGISTER', 'UNDO'}

    over_render: BoolProperty(name="Over Render", default=False,
                              description="Put the portrait over the scene's render with Alpha Over")
    background: StringProperty(name="Background", default="",
                               description="An image to put the portrait over with Alpha Over (its name); "
                                           "it takes the render's place")
    vector_blur: BoolProperty(name="Vector Blur", default=False,
                              description="Blur the portrait along its motion vectors (OpenEXR Multilayer frames)")

    def invoke(self, context, event):
        settings = context.scene.enliven
        self.over_render = settings.over_render
        self.background = settings.background.name if settings.background is not None else ""
        self.vector_blur = settings.vector_blur
        return self.execute(context)

    def execute(self, context):
        scene, obj = context.scene, properties.active_rig(context)
        background = bpy.data.images.get(self.background) if self.background else None
        if self.background and background is None:
            self.report({'ERROR'}, f"No image named '{self.background}' for the background")
            return {'CANCELLED'}
        try:
            node = compositing.add_to_compositor(scene, obj, self.over_render, background, self.vector_blur)
        except UserError as error:
            self.report({'ERROR'}, str(error))
            return {'CANCELLED'}
        if self.set_resolution:
            directory, first, _ = compositing.sequence_frames(obj, scene)
            compositing.set_resolution(scene, compositing.frame_size(
                os.path.join(directory, connection.frame_filename(first, compositing.frame_format(obj)))))
        _color_management(self, scene)
        if self.over_render and background is None and scene.camera is None:
            self.report({'WARNING'}, "Over Render needs a scene camera to render")
        elif scene.camera is None:
            for name in compositing.render_layers_nodes(scene):
                self.report({'WARNING'}, f"F12 needs a scene camera while the compositor has the Render Layers "
                                         f"node '{name}'")
        if scene.sequence_editor is not None and scene.render.use_sequencer and len(compat.strips(scene)):
            self.report({'WARNING'}, "The sequencer has strips, so renders show the sequencer, not the compositor "
                                     "(turn off Post Processing > Sequencer to render the compositor)")
        faces = len(groups.face_rigs(obj))
        every_face = f" with the photo's {faces} faces" if faces > 1 else ""  # (the lead rig's frames)
        self.report({'INFO'}, f"Compositor plays '{groups.lead_rig(obj).name}'{every_face} (frames "
                              f"{node.frame_start}-{node.frame_start + node.frame_duration - 1})")
        return {'FINISHED'}


def _color_management(operator, scene: bpy.types.Scene) -> None:
    if operator.set_color_management:
        compositing.set_color_management(scene)
    else:
        for problem in compositing.color_management_problems(scene):
            operator.report({'WARNING'}, f"Rendered pixels will differ from the frames: {problem}")


class ENLIVEN_OT_add_to_sequencer(OutputSettings, RigOperator, bpy.types.Operator):
    """Add the generated sequence to the Video Sequencer as an image strip at its frames"""

    bl_idname = "enliven.add_to_sequencer"
    bl_label = "Add to Sequencer"
    bl_options = {'REGISTER', 'UNDO'}

    channel: IntProperty(name="Channel", default=0, min=0, max=128,
                         description="Sequencer channel; 0 picks a free one")

    def execute(self, context):
        scene, obj = context.scene, properties.active_rig(context)
        try:
            strip = compositing.add_to_sequencer(scene, obj, self.channel)
        except UserError as error:
            self.report({'ERROR'}, str(error))
            return {'CANCELLED'}
        if self.set_resolution:
            compositing.set_resolution(scene, compositing.frame_size(
                os.path.join(bpy.path.abspath(strip.directory), strip.elements[0].filename)))
        _color_management(self, scene)
        first, end = compat.strip_span(strip)
        self.report({'INFO'}, f"Strip '{strip.name}' on channel {strip.channel}, frames {first}-{end - 1}")
        return {'FINISHED'}


class ENLIVEN_OT_show_preview(bpy.types.Operator):
    """Show the 'Enliven Preview' image in the Image Editors of this screen"""

    bl_idname = "enliven.show_preview"
    bl_label = "Show Preview"

    def execute(self, context):
        image = bpy.data.images.get(PREVIEW_IMAGE)
        if image is None:
            self.report({'WARNING'}, "No preview yet: turn on Live Preview")
            return {'CANCELLED'}
        editors = [a for a in (context.screen.areas if context.screen else []) if a.type == 'IMAGE_EDITOR']
        for area in editors:
            area.spaces.active.image = image
        if not editors:
            self.report({'INFO'}, f"Open an Image Editor and choose '{PREVIEW_IMAGE}'")
        return {'FINISHED'}

classes = (ENLIVEN_OT_generate, ENLIVEN_OT_cancel, ENLIVEN_OT_add_to_compositor, ENLIVEN_OT_add_to_sequencer,
           ENLIVEN_OT_show_preview)
