"""Operators: every button of the Enliven panel.

Operators never wait for the backend: they start work through
`connection.RUNTIME` and return; replies arrive in the timer. Problems the
artist can fix are `UserError`s, shown with self.report (status bar and Info
editor) rather than as tracebacks.
"""
from __future__ import annotations

import math
import os

import bpy
from bpy.props import BoolProperty, EnumProperty, FloatProperty, IntProperty, StringProperty
from bpy_extras.io_utils import ImportHelper

from . import compat, compositing, connection, keying, properties, sampling
from .connection import RUNTIME, UserError
from .shared.channels import CHANNELS
from .shared.motion import MotionError, load_motion


def _rig_poll(context: bpy.types.Context) -> bool:
    return connection.active_rig(context) is not None


def _refresh(context: bpy.types.Context) -> None:
    # Re-evaluate the current frame so the channel sliders show the new keys.
    context.scene.frame_set(context.scene.frame_current)


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
        RUNTIME.disconnect(stop_local=True)
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


class ENLIVEN_OT_add_portrait(bpy.types.Operator, ImportHelper):
    """Create a portrait rig for a photo: an object whose channels animate the face"""

    bl_idname = "enliven.add_portrait"
    bl_label = "Add Portrait"
    bl_options = {'REGISTER', 'UNDO'}

    filter_glob: StringProperty(default="*.png;*.jpg;*.jpeg;*.tif;*.tiff;*.webp;*.bmp", options={'HIDDEN'})
    image_name: StringProperty(name="Image", description="An image already in this file (instead of a file)")

    def invoke(self, context, event):
        if self.image_name or context.scene.enliven.new_photo is not None:
            return self.execute(context)
        return ImportHelper.invoke(self, context, event)

    def execute(self, context):
        try:
            image = self._image(context)
        except UserError as error:
            self.report({'ERROR'}, str(error))
            return {'CANCELLED'}
        obj = add_portrait(context, image)
        RUNTIME.analyze_rig(obj)  # reports "no face" early; does not wait
        self.report({'INFO'}, f"Added portrait '{obj.name}'")
        return {'FINISHED'}

    def _image(self, context) -> bpy.types.Image:
        if self.filepath and not self.image_name:
            path = bpy.path.abspath(self.filepath)
            if not os.path.isfile(path):
                raise UserError(f"No such file: {path}")
            try:
                return bpy.data.images.load(path, check_existing=True)
            except RuntimeError as error:
                raise UserError(f"Cannot open {path}: {error}") from None
        if self.image_name:
            image = bpy.data.images.get(self.image_name)
            if image is None:
                raise UserError(f"No image called '{self.image_name}'")
            return image
        if context.scene.enliven.new_photo is not None:
            return context.scene.enliven.new_photo
        raise UserError("Pick a photo first (a file or an image)")


def add_portrait(context: bpy.types.Context, image: bpy.types.Image) -> bpy.types.Object:
    """The rig: an image empty that shows the photo, with the channels on it."""
    name = os.path.splitext(image.name)[0] or "Portrait"
    obj = bpy.data.objects.new(name, None)
    obj.empty_display_type = 'IMAGE'
    obj.data = image
    obj.empty_display_size = 2.0
    obj.rotation_euler = (math.radians(90.0), 0.0, 0.0)  # upright, facing the front view
    obj.empty_image_offset = (-0.5, -0.5)
    obj.enliven.is_rig = True
    obj.enliven.photo = image
    collection = context.collection or context.scene.collection
    collection.objects.link(obj)
    view_layer = context.view_layer
    if view_layer is not None:
        for other in view_layer.objects:
            other.select_set(False)
        obj.select_set(True)
        view_layer.objects.active = obj
    context.scene.enliven.rig = obj
    return obj


class ENLIVEN_OT_insert_preset(bpy.types.Operator):
    """Insert a ready-made motion as keyframes on the portrait, starting at the current frame"""

    bl_idname = "enliven.insert_preset"
    bl_label = "Insert Preset"
    bl_options = {'REGISTER', 'UNDO'}

    preset: EnumProperty(name="Preset", items=keying.preset_items())
    frame: IntProperty(name="Start Frame", default=-1, min=-1,
                       description="Frame of the preset's first key; -1 is the current frame")
    use_range: BoolProperty(name="Fill Range", default=False,
                            description="Stretch the preset to end at End Frame (talk and idle-alive fill it)")
    frame_end: IntProperty(name="End Frame", default=-1, min=-1,
                           description="Frame of the last key with Fill Range; -1 is the scene's end")
    duration: FloatProperty(name="Duration", default=0.0, min=0.0, unit='TIME_ABSOLUTE',
                            description="Length in seconds; 0 uses the preset's own length")
    seed: IntProperty(name="Seed", default=0, min=0, description="Variation of the random presets")
    replace: BoolProperty(name="Replace Keys", default=True,
                          description="Remove the channels' existing keys inside the preset's frames")

    @classmethod
    def poll(cls, context):
        return _rig_poll(context)

    def execute(self, context):
        obj = connection.active_rig(context)
        scene = context.scene
        fps = sampling.scene_fps(scene)
        start = scene.frame_current if self.frame < 0 else self.frame
        duration = self.duration or None
        if self.use_range:
            end = scene.frame_end if self.frame_end < 0 else self.frame_end
            if end <= start:
                self.report({'ERROR'}, f"End frame {end} is not after the start frame {start}")
                return {'CANCELLED'}
            duration = (end - start) / fps
        try:
            count, last = keying.insert_preset(obj, self.preset, start, fps, seed=self.seed,
                                               duration_s=duration, replace=self.replace)
        except (MotionError, ValueError) as error:
            self.report({'ERROR'}, str(error))
            return {'CANCELLED'}
        _refresh(context)
        self.report({'INFO'}, f"Inserted '{self.preset}': {count} keys, frames {start}-{last}")
        return {'FINISHED'}


class ENLIVEN_OT_bake_motion(bpy.types.Operator, ImportHelper):
    """Import a motion file (Enliven JSON or CSV, e.g. captured from video) as keyframes"""

    bl_idname = "enliven.bake_motion"
    bl_label = "Bake from Motion File"
    bl_options = {'REGISTER', 'UNDO'}

    filter_glob: StringProperty(default="*.json;*.csv", options={'HIDDEN'})
    frame: IntProperty(name="Start Frame", default=-1, min=-1,
                       description="Scene frame of the motion's first frame; -1 is the current frame")
    replace: BoolProperty(name="Replace Keys", default=True,
                          description="Remove the channels' existing keys inside the motion's frames")

    @classmethod
    def poll(cls, context):
        return _rig_poll(context)

    def execute(self, context):
        obj = connection.active_rig(context)
        scene = context.scene
        try:
            motion = load_motion(bpy.path.abspath(self.filepath))
        except MotionError as error:
            self.report({'ERROR'}, str(error))
            return {'CANCELLED'}
        motion, warnings = motion.sanitized()
        start = scene.frame_current if self.frame < 0 else self.frame
        count, last = keying.bake_motion(obj, motion, start, sampling.scene_fps(scene), replace=self.replace)
        _refresh(context)
        for warning in warnings[:5]:
            self.report({'WARNING'}, warning)
        self.report({'INFO'}, f"Baked {motion.frame_count} frames of {len(motion.channels)} channels "
                              f"({count} keys) into frames {start}-{last}")
        return {'FINISHED'}


class ENLIVEN_OT_reset_pose(bpy.types.Operator):
    """Set every channel of the portrait back to its neutral value (keys are kept)"""

    bl_idname = "enliven.reset_pose"
    bl_label = "Reset Pose"
    bl_options = {'REGISTER', 'UNDO'}

    @classmethod
    def poll(cls, context):
        return _rig_poll(context)

    def execute(self, context):
        rig = connection.active_rig(context).enliven
        for ch in CHANNELS:
            setattr(rig, ch.name, properties.to_property(ch.name, ch.default))
        return {'FINISHED'}


class ENLIVEN_OT_generate(bpy.types.Operator):
    """Render the portrait's animation over the frame range into a numbered PNG sequence.
    Frames that were already generated and did not change are kept"""

    bl_idname = "enliven.generate"
    bl_label = "Generate"

    @classmethod
    def poll(cls, context):
        job = RUNTIME.generate
        return _rig_poll(context) and not (job is not None and job.active)

    def execute(self, context):
        obj = connection.active_rig(context)
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


class ENLIVEN_OT_add_to_compositor(bpy.types.Operator):
    """Feed the generated sequence into the compositor so F12 and Render Animation render it"""

    bl_idname = "enliven.add_to_compositor"
    bl_label = "Add to Compositor"
    bl_options = {'REGISTER', 'UNDO'}

    over_render: BoolProperty(name="Over Render", default=False,
                              description="Put the portrait over the scene's render with Alpha Over")
    set_color_management: BoolProperty(
        name="Set Color Management", default=True,
        description="Use the Standard view transform so rendered pixels equal the generated frames")
    set_resolution: BoolProperty(name="Set Resolution", default=True,
                                 description="Set the render size to the frames' size at 100%")

    @classmethod
    def poll(cls, context):
        return _rig_poll(context)

    def invoke(self, context, event):
        self.over_render = context.scene.enliven.over_render
        return self.execute(context)

    def execute(self, context):
        scene, obj = context.scene, connection.active_rig(context)
        try:
            node = compositing.add_to_compositor(scene, obj, self.over_render)
        except UserError as error:
            self.report({'ERROR'}, str(error))
            return {'CANCELLED'}
        if self.set_resolution:
            compositing.set_resolution(scene, tuple(node.image.size))
        _color_management(self, scene)
        if self.over_render and scene.camera is None:
            self.report({'WARNING'}, "Over Render needs a scene camera to render")
        if scene.sequence_editor is not None and scene.render.use_sequencer and len(compat.strips(scene)):
            self.report({'WARNING'}, "The sequencer has strips, so renders show the sequencer, not the compositor "
                                     "(turn off Post Processing > Sequencer to render the compositor)")
        self.report({'INFO'}, f"Compositor plays '{obj.name}' (frames {node.frame_start}-"
                              f"{node.frame_start + node.frame_duration - 1})")
        return {'FINISHED'}


def _color_management(operator, scene: bpy.types.Scene) -> None:
    if operator.set_color_management:
        compositing.set_color_management(scene)
    else:
        for problem in compositing.color_management_problems(scene):
            operator.report({'WARNING'}, f"Rendered pixels will differ from the frames: {problem}")


class ENLIVEN_OT_add_to_sequencer(bpy.types.Operator):
    """Add the generated sequence to the Video Sequencer as an image strip at its frames"""

    bl_idname = "enliven.add_to_sequencer"
    bl_label = "Add to Sequencer"
    bl_options = {'REGISTER', 'UNDO'}

    channel: IntProperty(name="Channel", default=0, min=0, max=128,
                         description="Sequencer channel; 0 picks a free one")
    set_color_management: BoolProperty(
        name="Set Color Management", default=True,
        description="Use the Standard view transform so rendered pixels equal the generated frames")
    set_resolution: BoolProperty(name="Set Resolution", default=True,
                                 description="Set the render size to the frames' size at 100%")

    @classmethod
    def poll(cls, context):
        return _rig_poll(context)

    def execute(self, context):
        scene, obj = context.scene, connection.active_rig(context)
        try:
            strip = compositing.add_to_sequencer(scene, obj, self.channel)
        except UserError as error:
            self.report({'ERROR'}, str(error))
            return {'CANCELLED'}
        if self.set_resolution:
            compositing.set_resolution(scene, compositing.png_size(
                os.path.join(bpy.path.abspath(strip.directory), strip.elements[0].filename)))
        _color_management(self, scene)
        self.report({'INFO'}, f"Strip '{strip.name}' on channel {strip.channel}, "
                              f"frames {strip.frame_final_start}-{strip.frame_final_end - 1}")
        return {'FINISHED'}


class ENLIVEN_OT_show_preview(bpy.types.Operator):
    """Show the 'Enliven Preview' image in the Image Editors of this screen"""

    bl_idname = "enliven.show_preview"
    bl_label = "Show Preview"

    def execute(self, context):
        image = bpy.data.images.get(connection.PREVIEW_IMAGE)
        if image is None:
            self.report({'WARNING'}, "No preview yet: turn on Live Preview")
            return {'CANCELLED'}
        editors = [a for a in (context.screen.areas if context.screen else []) if a.type == 'IMAGE_EDITOR']
        for area in editors:
            area.spaces.active.image = image
        if not editors:
            self.report({'INFO'}, f"Open an Image Editor and choose '{connection.PREVIEW_IMAGE}'")
        return {'FINISHED'}


classes = (
    ENLIVEN_OT_report,
    ENLIVEN_OT_connect,
    ENLIVEN_OT_stop_backend,
    ENLIVEN_OT_show_log,
    ENLIVEN_OT_add_portrait,
    ENLIVEN_OT_insert_preset,
    ENLIVEN_OT_bake_motion,
    ENLIVEN_OT_reset_pose,
    ENLIVEN_OT_generate,
    ENLIVEN_OT_cancel,
    ENLIVEN_OT_add_to_compositor,
    ENLIVEN_OT_add_to_sequencer,
    ENLIVEN_OT_show_preview,
)
