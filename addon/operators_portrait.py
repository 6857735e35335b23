"""Operators that make a portrait and key it here in Blender: Add Portrait,
presets, motion files, Reset Pose."""
from __future__ import annotations

import math
import os

import bpy
from bpy.props import BoolProperty, EnumProperty, FloatProperty, IntProperty, StringProperty
from bpy_extras.io_utils import ImportHelper

from . import keying, properties, sampling
from .connection import RUNTIME
from .operators import RigOperator, refresh
from .shared.channels import CHANNELS
from .shared.motion import MotionError, load_motion
from .shared.presets import preset_speaks
from .states import UserError


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
        RUNTIME.analyze_rig(obj, every_face=True)  # reports "no face" early, a rig per face of a group; does not wait
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


class ENLIVEN_OT_insert_preset(RigOperator, bpy.types.Operator):
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
    loop: BoolProperty(name="Loop", default=False,
                       description="Make the preset a seamless loop (idle-alive): the last frame flows into the "
                                   "first, and the F-curves get a Cycles modifier. With Fill Range the loop is "
                                   "Start to End Frame, the key after End repeating Start. It replaces its "
                                   "channels' keys from Start Frame on; keys inserted later end it there")

    def execute(self, context):
        obj = properties.active_rig(context)
        scene = context.scene
        fps = sampling.scene_fps(scene)
        start = scene.frame_current if self.frame < 0 else self.frame
        duration = self.duration or None
        if self.use_range:
            end = scene.frame_end if self.frame_end < 0 else self.frame_end
            if end <= start:
                self.report({'ERROR'}, f"End frame {end} is not after the start frame {start}")
                return {'CANCELLED'}
            # A loop's last key repeats its first: it goes one frame past End.
            duration = (end - start + (1 if self.loop else 0)) / fps
        speaks = preset_speaks(self.preset)
        mouth = RUNTIME.photo_mouth(obj) if speaks else None
        try:
            count, last = keying.insert_preset(obj, self.preset, start, fps, seed=self.seed, duration_s=duration,
                                               replace=self.replace, loop=self.loop, mouth=mouth)
        except (MotionError, ValueError) as error:
            self.report({'ERROR'}, str(error))
            return {'CANCELLED'}
        refresh(context)
        looping = f", looping every {last - start} frames" if self.loop else ""
        unfitted = ("; the photo is not analysed yet, so its speech opens the mouth from the photo's own "
                    "opening (connect to the backend and insert it again to fit it to the lips)"
                    if speaks and mouth is None else "")
        self.report({'INFO'}, f"Inserted '{self.preset}': {count} keys, frames {start}-{last}{looping}{unfitted}")
        return {'FINISHED'}


class ENLIVEN_OT_bake_motion(RigOperator, bpy.types.Operator, ImportHelper):
    """Import a motion file (Enliven JSON or CSV, e.g. captured from video) as keyframes"""

    bl_idname = "enliven.bake_motion"
    bl_label = "Bake from Motion File"
    bl_options = {'REGISTER', 'UNDO'}

    filter_glob: StringProperty(default="*.json;*.csv", options={'HIDDEN'})
    frame: IntProperty(name="Start Frame", default=-1, min=-1,
                       description="Scene frame of the motion's first frame; -1 is the current frame")
    replace: BoolProperty(name="Replace Keys", default=True,
                          description="Remove the channels' existing keys inside the motion's frames")

    def execute(self, context):
        obj = properties.active_rig(context)
        scene = context.scene
        try:
            motion = load_motion(bpy.path.abspath(self.filepath))
        except MotionError as error:
            self.report({'ERROR'}, str(error))
            return {'CANCELLED'}
        motion, warnings = motion.sanitized()
        start = scene.frame_current if self.frame < 0 else self.frame
        count, last = keying.bake_motion(obj, motion, start, sampling.scene_fps(scene), replace=self.replace)
        refresh(context)
        for warning in warnings[:5]:
            self.report({'WARNING'}, warning)
        self.report({'INFO'}, f"Baked {motion.frame_count} frames of {len(motion.channels)} channels "
                              f"({count} keys) into frames {start}-{last}")
        return {'FINISHED'}


class ENLIVEN_OT_reset_pose(RigOperator, bpy.types.Operator):
    """Set every channel of the portrait back to its neutral value (keys are kept)"""

    bl_idname = "enliven.reset_pose"
    bl_label = "Reset Pose"
    bl_options = {'REGISTER', 'UNDO'}

    def execute(self, context):
        rig = properties.active_rig(context).enliven
        for ch in CHANNELS:
            setattr(rig, ch.name, properties.to_property(ch.name, ch.default))
        return {'FINISHED'}

classes = (ENLIVEN_OT_add_portrait, ENLIVEN_OT_insert_preset, ENLIVEN_OT_bake_motion, ENLIVEN_OT_reset_pose)
