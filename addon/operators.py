"""Operators: every button of the Enliven panel.

Operators never wait for the backend: they start work through
`connection.RUNTIME` and return; replies arrive in the timer. Problems the
artist can fix are `UserError`s, shown with self.report (status bar and Info
editor) rather than as tracebacks.
"""
from __future__ import annotations

import json
import math
import os

import bpy
from bpy.props import BoolProperty, EnumProperty, FloatProperty, IntProperty, StringProperty
from bpy_extras.io_utils import ImportHelper

from . import compat, compositing, connection, keying, properties, sampling
from .connection import RUNTIME, BakeSettings, BakeState, UserError
from .shared.channels import CHANNELS
from .shared.keyframes import MOUTH_CHANNELS
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


# --------------------------------------------------------------------------- capture and lip-sync
#
# These run in the backend (`capture` and `lipsync` jobs); the operator only
# sends the request and returns, and the motion is keyed by the timer when it
# arrives (connection.Runtime.start_bake). Files are read by the backend, so
# they must be on its disk: always true for the local backend.


def _bake_poll(context: bpy.types.Context) -> bool:
    job = RUNTIME.bake
    return _rig_poll(context) and not (job is not None and job.active)


class _KeyOptions:
    """Where the keys go and how many there are (shared by every bake operator)."""

    frame: IntProperty(name="Start Frame", default=-1, min=-1,
                       description="Scene frame of the first key; -1 is the current frame")
    key_mode: EnumProperty(
        name="Keys", default='ALL',
        items=(('ALL', "Every Frame", "A key on every frame: the curve is exactly the capture"),
               ('REDUCED', "Reduced", "Only the keys needed to stay within the tolerance: easier to edit")))
    tolerance: FloatProperty(
        name="Tolerance", default=1.0, min=0.0, max=25.0, subtype='PERCENTAGE', precision=2,
        description="Reduced keys: the most the curve may differ from the capture, in percent of each "
                    "channel's range")

    def start_frame(self, context) -> int:
        return context.scene.frame_current if self.frame < 0 else self.frame

    def relative_tolerance(self) -> float | None:
        return self.tolerance / 100.0 if self.key_mode == 'REDUCED' else None

    def start(self, context, title: str, settings: BakeSettings, send) -> set[str]:
        obj = connection.active_rig(context)
        try:
            RUNTIME.start_bake(BakeState(title, obj.name, context.scene.name, settings, send))
        except UserError as error:
            self.report({'ERROR'}, str(error))
            return {'CANCELLED'}
        self.report({'INFO'}, f"{title} started; keys appear on '{obj.name}' when the backend is done")
        return {'FINISHED'}


def _existing_file(path: str, what: str) -> str:
    path = bpy.path.abspath(path)
    if not path or not os.path.isfile(path):
        raise UserError(f"No such {what}: {path or '(none chosen)'}")
    return os.path.abspath(path)


_SMOOTHING_ITEMS = (
    ('none', "None", "Keep every jitter of the capture"),
    ('light', "Light", "Remove only the finest jitter"),
    ('normal', "Normal", "Smooth jitter, keep quick moves"),
    ('strong', "Strong", "Smoothest; quick moves get softer"),
)


class _CaptureOptions(_KeyOptions):
    strength_pose: FloatProperty(name="Head", default=1.0, min=0.0, max=3.0,
                                 description="Scale of the captured head motion")
    strength_eyes: FloatProperty(name="Eyes", default=1.0, min=0.0, max=3.0,
                                 description="Scale of the captured blinks and gaze")
    strength_brows: FloatProperty(name="Brows", default=1.0, min=0.0, max=3.0,
                                  description="Scale of the captured brows")
    strength_mouth: FloatProperty(name="Mouth", default=1.0, min=0.0, max=3.0,
                                  description="Scale of the captured mouth")

    def strengths(self) -> dict[str, float]:
        return {group: getattr(self, f"strength_{group}") for group in ("pose", "eyes", "brows", "mouth")
                if getattr(self, f"strength_{group}") != 1.0}


class ENLIVEN_OT_capture_video(_CaptureOptions, bpy.types.Operator, ImportHelper):
    """Capture the face in a video (you acting it out) as keyframes on the portrait.
    The backend tracks the video; keys appear when it is done"""

    bl_idname = "enliven.capture_video"
    bl_label = "Capture from Video"
    # No UNDO: the keys arrive later, from the timer, not when this returns.
    bl_options = {'REGISTER'}

    filter_glob: StringProperty(default="*.mp4;*.mov;*.mkv;*.avi;*.webm;*.m4v", options={'HIDDEN'})
    reference: EnumProperty(
        name="Neutral Frame", default='first',
        items=(('first', "First", "Channels are measured from the first frame with a face"),
               ('auto', "Most Neutral", "Channels are measured from the clip's most neutral frame")))
    smoothing: EnumProperty(name="Smoothing", items=_SMOOTHING_ITEMS, default='normal')

    @classmethod
    def poll(cls, context):
        return _bake_poll(context)

    def execute(self, context):
        try:
            path = _existing_file(self.filepath, "video")
        except UserError as error:
            self.report({'ERROR'}, str(error))
            return {'CANCELLED'}
        face, reference, smoothing, strengths = (connection.active_rig(context).enliven.face_index, self.reference,
                                                  self.smoothing, self.strengths())
        settings = BakeSettings(self.start_frame(context), self.relative_tolerance())
        return self.start(context, "Capture from video", settings, lambda client: client.capture(
            path, reference=reference, smoothing=smoothing, strengths=strengths, face_index=face))


class ENLIVEN_OT_import_livelink(_CaptureOptions, bpy.types.Operator, ImportHelper):
    """Import a Live Link Face CSV (recorded with an iPhone) as keyframes on the portrait"""

    bl_idname = "enliven.import_livelink"
    bl_label = "Import Live Link CSV"
    # No UNDO: the keys arrive later, from the timer, not when this returns.
    bl_options = {'REGISTER'}

    filter_glob: StringProperty(default="*.csv", options={'HIDDEN'})
    smoothing: EnumProperty(name="Smoothing", items=_SMOOTHING_ITEMS, default='none')
    fps: FloatProperty(name="Frame Rate", default=0.0, min=0.0, max=1000.0,
                       description="The take's frame rate; 0 reads it from the timecodes")

    @classmethod
    def poll(cls, context):
        return _bake_poll(context)

    def execute(self, context):
        try:
            path = _existing_file(self.filepath, "Live Link CSV")
        except UserError as error:
            self.report({'ERROR'}, str(error))
            return {'CANCELLED'}
        smoothing, strengths, fps = self.smoothing, self.strengths(), (self.fps or None)
        settings = BakeSettings(self.start_frame(context), self.relative_tolerance())
        return self.start(context, "Live Link import", settings, lambda client: client.capture(
            livelink_path=path, smoothing=smoothing, strengths=strengths, fps=fps))


class _MouthOptions(_KeyOptions):
    """Lip-sync keys only the mouth channels (jaw open, pucker, wide)."""

    strength: FloatProperty(name="Strength", default=1.0, min=0.0, max=3.0,
                            description="Scale of the mouth motion")
    lead: FloatProperty(name="Lead", default=2.0, min=0.0, max=10.0,
                        description="The mouth moves this many frames before the sound, as real mouths do")
    mix: EnumProperty(
        name="Existing Keys", default='REPLACE',
        items=(('REPLACE', "Replace", "The mouth channels' keys in the sound's frames are replaced"),
               ('BLEND', "Blend", "The lip-sync is mixed with the mouth animation already there")))
    blend_factor: FloatProperty(name="Blend", default=0.5, min=0.0, max=1.0, subtype='FACTOR',
                                description="Blend: how much of the lip-sync goes in (1 replaces)")
    add_sound: BoolProperty(name="Add Sound Strip", default=True,
                            description="Add the sound to the sequencer at the same start frame")

    def mouth_settings(self, frame: int, sound_path: str | None = None, sound_from_reply: bool = False) -> BakeSettings:
        return BakeSettings(frame, self.relative_tolerance(), only=MOUTH_CHANNELS,
                            blend_factor=self.blend_factor if self.mix == 'BLEND' else 1.0,
                            sound_path=sound_path if self.add_sound else None,
                            sound_from_reply=sound_from_reply and self.add_sound)

    def lipsync_arguments(self, context) -> dict:
        return {"fps": sampling.scene_fps(context.scene), "strength": self.strength, "lead": self.lead}


class ENLIVEN_OT_lipsync_audio(_MouthOptions, bpy.types.Operator, ImportHelper):
    """Key the portrait's mouth to speech: an audio file (added to the sequencer at the same frame)
    or a sound strip already in the sequencer (keyed where the strip plays)"""

    bl_idname = "enliven.lipsync_audio"
    bl_label = "Lip-sync from Audio"
    # No UNDO: the keys arrive later, from the timer, not when this returns.
    bl_options = {'REGISTER'}

    filter_glob: StringProperty(default="*.wav;*.flac;*.mp3;*.ogg;*.m4a;*.aac;*.opus;*.mp4;*.mov;*.mkv",
                                options={'HIDDEN'})
    source: EnumProperty(
        name="Source", default='FILE',
        items=(('FILE', "File", "An audio file (or a video's sound)"),
               ('STRIP', "Sound Strip", "A sound strip in the sequencer")))
    strip: StringProperty(name="Sound Strip", description="The sequencer's sound strip to lip-sync")

    @classmethod
    def poll(cls, context):
        return _bake_poll(context)

    def invoke(self, context, event):
        if self.source == 'STRIP':
            sounds = compat.sound_strips(context.scene)
            if not self.strip and sounds:
                self.strip = sounds[0].name
            return context.window_manager.invoke_props_dialog(self)
        if self.filepath:
            return self.execute(context)
        return ImportHelper.invoke(self, context, event)

    def draw(self, context):
        layout = self.layout
        layout.use_property_split = True
        layout.prop(self, "source")
        if self.source == 'STRIP':
            editor = context.scene.sequence_editor
            if editor is not None:
                layout.prop_search(self, "strip", editor, compat.strips_property(editor))
            else:
                layout.label(text="The sequencer has no strips", icon='INFO')
        else:
            layout.prop(self, "frame")
            layout.prop(self, "add_sound")
        for name in ("strength", "lead", "mix", "blend_factor", "key_mode", "tolerance"):
            layout.prop(self, name)

    def execute(self, context):
        try:
            if self.source == 'STRIP':
                strip = next((s for s in compat.sound_strips(context.scene) if s.name == self.strip), None)
                if strip is None:
                    raise UserError(f"No sound strip called '{self.strip}' in the sequencer")
                path = _existing_file(compat.sound_strip_path(strip), "sound file")
                # Keyed where the strip's sound starts, so mouth and sound stay together.
                settings = self.mouth_settings(compat.strip_content_start(strip))
            else:
                path = _existing_file(self.filepath, "audio file")
                settings = self.mouth_settings(self.start_frame(context), sound_path=path)
        except UserError as error:
            self.report({'ERROR'}, str(error))
            return {'CANCELLED'}
        arguments = self.lipsync_arguments(context)
        return self.start(context, "Lip-sync", settings, lambda client: client.lipsync(path, **arguments))


class ENLIVEN_OT_say_text(_MouthOptions, bpy.types.Operator):
    """Speak a line of text (offline voice) and key the portrait's mouth to it;
    the speech is added to the sequencer at the same frame"""

    bl_idname = "enliven.say_text"
    bl_label = "Say Text"
    # No UNDO: the keys arrive later, from the timer, not when this returns.
    bl_options = {'REGISTER'}

    text: StringProperty(name="Text", description="What the portrait says")
    voice: StringProperty(name="Voice", default="en",
                          description="eSpeak NG voice or language: en, en-us, de, fr, en+f3...")
    rate: IntProperty(name="Words per Minute", default=175, min=80, max=450)

    @classmethod
    def poll(cls, context):
        return _bake_poll(context)

    def invoke(self, context, event):
        return context.window_manager.invoke_props_dialog(self, width=400)

    def execute(self, context):
        if not self.text.strip():
            self.report({'ERROR'}, "Type the text to say")
            return {'CANCELLED'}
        directory = connection.speech_dir(connection.active_rig(context))
        try:
            os.makedirs(directory, exist_ok=True)
        except OSError as error:
            self.report({'ERROR'}, f"Cannot create {directory}: {error.strerror or error}")
            return {'CANCELLED'}
        settings = self.mouth_settings(self.start_frame(context), sound_from_reply=True)
        text, voice, rate, arguments = self.text, self.voice.strip() or None, self.rate, self.lipsync_arguments(context)
        return self.start(context, "Say", settings, lambda client: client.lipsync(
            text=text, voice=voice, rate_wpm=rate, output_dir=directory, **arguments))


class ENLIVEN_OT_cancel_bake(bpy.types.Operator):
    """Stop the running capture or lip-sync; no keys are changed"""

    bl_idname = "enliven.cancel_bake"
    bl_label = "Cancel"

    @classmethod
    def poll(cls, context):
        job = RUNTIME.bake
        return job is not None and job.active

    def execute(self, context):
        RUNTIME.cancel_bake()
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
        first, end = compat.strip_span(strip)
        self.report({'INFO'}, f"Strip '{strip.name}' on channel {strip.channel}, frames {first}-{end - 1}")
        return {'FINISHED'}


def _backend_dir(path: str, what: str) -> str:
    """A folder named in the panel, as the path the backend is sent (see connection.backend_path)."""
    if not path.strip():
        raise UserError(f"Choose the {what} first")
    return connection.backend_path(path)


def _training_config(settings) -> str | dict:
    """The preset name, or the settings of the chosen JSON file (read here, sent as data)."""
    if settings.train_preset != 'FILE':
        return settings.train_preset
    path = _existing_file(settings.train_config_file, "config file")
    try:
        with open(path, encoding="utf-8") as fh:
            config = json.load(fh)
    except (OSError, ValueError) as error:
        raise UserError(f"Cannot read the config file {path}: {error}") from None
    if not isinstance(config, dict):
        raise UserError(f"The config file {path} must hold a JSON object of settings")
    return config


class ENLIVEN_OT_train_start(bpy.types.Operator):
    """Train the refine engine on the backend, on a dataset made by `enliven prepare`.
    Previews and Generate keep working meanwhile"""

    bl_idname = "enliven.train_start"
    bl_label = "Start Training"

    @classmethod
    def poll(cls, context):
        job = RUNTIME.training
        return not (job is not None and job.active)

    def execute(self, context):
        settings = context.scene.enliven
        try:
            dataset = _backend_dir(settings.train_dataset, "dataset folder")
            run_dir = _backend_dir(settings.train_run_dir, "run folder")
            # A resumed run keeps the settings it was trained with (last.pt holds them).
            config = None if settings.train_resume else _training_config(settings)
            RUNTIME.start_training(dataset, run_dir, config, settings.train_steps or None, settings.train_resume)
        except UserError as error:
            self.report({'ERROR'}, str(error))
            return {'CANCELLED'}
        return {'FINISHED'}


class ENLIVEN_OT_train_stop(bpy.types.Operator):
    """Stop training after the current step; the backend saves the run first (Resume continues it)"""

    bl_idname = "enliven.train_stop"
    bl_label = "Stop Training"

    @classmethod
    def poll(cls, context):
        job = RUNTIME.training
        return job is not None and job.active and job.state != "STOPPING"

    def execute(self, context):
        RUNTIME.stop_training()
        return {'FINISHED'}


def _trained_model(context) -> str | None:
    """The model the last training run saved, else the run folder's best.pt (kept by validation) or last.pt."""
    job = RUNTIME.training
    if job is not None and job.checkpoint:
        return job.checkpoint
    run_dir = context.scene.enliven.train_run_dir.strip()
    if not run_dir:
        return None
    folder = os.path.abspath(bpy.path.abspath(run_dir))
    for name in ("best.pt", "last.pt"):
        if os.path.isfile(os.path.join(folder, name)):
            return os.path.join(folder, name)
    return None


class ENLIVEN_OT_use_trained_model(bpy.types.Operator):
    """Render this portrait with the refine engine and the model training saved"""

    bl_idname = "enliven.use_trained_model"
    bl_label = "Use Trained Model"
    bl_options = {'REGISTER', 'UNDO'}

    @classmethod
    def poll(cls, context):
        return _rig_poll(context) and _trained_model(context) is not None

    def execute(self, context):
        rig = connection.active_rig(context).enliven
        rig.engine, rig.checkpoint = "refine", _trained_model(context)
        RUNTIME.request_preview(context.scene)
        self.report({'INFO'}, f"'{connection.active_rig(context).name}' renders with {rig.checkpoint}")
        return {'FINISHED'}


class ENLIVEN_OT_show_training_samples(bpy.types.Operator):
    """Show the training's sample grid (source | warp | refined | target) in the Image Editors of this screen"""

    bl_idname = "enliven.show_training_samples"
    bl_label = "Show Samples"

    @classmethod
    def poll(cls, context):
        job = RUNTIME.training
        return job is not None and bool(job.samples)

    def execute(self, context):
        path = RUNTIME.training.samples
        if not os.path.isfile(path):
            self.report({'WARNING'}, f"No sample grid at {path} yet (or the backend's disk is not this one)")
            return {'CANCELLED'}
        image = bpy.data.images.load(path, check_existing=True)
        image.reload()  # training rewrites the file as it goes
        for area in (context.screen.areas if context.screen else []):
            if area.type == 'IMAGE_EDITOR':
                area.spaces.active.image = image
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
    ENLIVEN_OT_capture_video,
    ENLIVEN_OT_import_livelink,
    ENLIVEN_OT_lipsync_audio,
    ENLIVEN_OT_say_text,
    ENLIVEN_OT_cancel_bake,
    ENLIVEN_OT_reset_pose,
    ENLIVEN_OT_generate,
    ENLIVEN_OT_cancel,
    ENLIVEN_OT_add_to_compositor,
    ENLIVEN_OT_add_to_sequencer,
    ENLIVEN_OT_show_preview,
    ENLIVEN_OT_train_start,
    ENLIVEN_OT_train_stop,
    ENLIVEN_OT_use_trained_model,
    ENLIVEN_OT_show_training_samples,
)
