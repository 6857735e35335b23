"""Capture and lip-sync: operators whose motion comes from the backend.

These run in the backend (`capture` and `lipsync` jobs); the operator only
sends the request and returns, and the motion is keyed by the timer when it
arrives (bake_job.BakeJob). Files are read by the backend, so they must be on
its disk: always true for the local backend.
"""
from __future__ import annotations

import os

import bpy
from bpy.props import BoolProperty, EnumProperty, FloatProperty, IntProperty, StringProperty
from bpy_extras.io_utils import ImportHelper

from . import compat, photos, properties, sampling
from .bake_job import BakeJob, BakeSettings, Portrait
from .connection import RUNTIME
from .operators import existing_file, rig_poll
from .shared.keyframes import MOUTH_CHANNELS
from .states import UserError


def _bake_poll(context: bpy.types.Context) -> bool:
    job = RUNTIME.bake
    return rig_poll(context) and not (job is not None and job.active)


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

    def start(self, context, title: str, settings: BakeSettings, send, fitted: bool = False) -> set[str]:
        """Start the bake; `fitted`: the request takes the portrait's subject too (lip-sync fits its mouth)."""
        obj = properties.active_rig(context)
        try:
            portrait = _portrait(obj) if fitted else None
            RUNTIME.start_bake(BakeJob(title, obj.name, context.scene.name, settings, send, portrait=portrait))
        except UserError as error:
            self.report({'ERROR'}, str(error))
            return {'CANCELLED'}
        self.report({'INFO'}, f"{title} started; keys appear on '{obj.name}' when the backend is done")
        return {'FINISHED'}


def _portrait(obj) -> Portrait | None:
    """The rig's photo, for fitting a lip-sync to its mouth; None when it cannot be read (the lip-sync is
    still made, for closed lips)."""
    try:
        photo = RUNTIME.photos.photo_for(obj)
    except UserError:
        return None
    return Portrait(photo.data, photo.digest, obj.enliven.face_index)


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
    strength_body: FloatProperty(name="Body", default=1.0, min=0.0, max=3.0,
                                 description="Scale of the captured breathing, shrugs, lean and turn, where the "
                                             "video shows the shoulders (0 leaves the body still)")

    def strengths(self) -> dict[str, float]:
        return {group: getattr(self, f"strength_{group}") for group in ("pose", "eyes", "brows", "mouth", "body")
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
            path = existing_file(self.filepath, "video")
        except UserError as error:
            self.report({'ERROR'}, str(error))
            return {'CANCELLED'}
        face, reference, smoothing, strengths = (properties.active_rig(context).enliven.face_index, self.reference,
                                                  self.smoothing, self.strengths())
        settings = BakeSettings(self.start_frame(context), self.relative_tolerance())
        body = self.strength_body > 0  # a body left still need not be followed through the video
        return self.start(context, "Capture from video", settings, lambda client: client.capture(
            path, reference=reference, smoothing=smoothing, strengths=strengths, face_index=face, body=body))


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
            path = existing_file(self.filepath, "Live Link CSV")
        except UserError as error:
            self.report({'ERROR'}, str(error))
            return {'CANCELLED'}
        smoothing, strengths, fps = self.smoothing, self.strengths(), (self.fps or None)
        settings = BakeSettings(self.start_frame(context), self.relative_tolerance())
        return self.start(context, "Live Link import", settings, lambda client: client.capture(
            livelink_path=path, smoothing=smoothing, strengths=strengths, fps=fps))


class _MouthOptions(_KeyOptions):
    """Lip-sync keys only the mouth channels (jaw open, pucker, wide; lips part at 0)."""

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
                path = existing_file(compat.sound_strip_path(strip), "sound file")
                # Keyed where the strip's sound starts, so mouth and sound stay together.
                settings = self.mouth_settings(compat.strip_content_start(strip))
            else:
                path = existing_file(self.filepath, "audio file")
                settings = self.mouth_settings(self.start_frame(context), sound_path=path)
        except UserError as error:
            self.report({'ERROR'}, str(error))
            return {'CANCELLED'}
        arguments = self.lipsync_arguments(context)
        return self.start(context, "Lip-sync", settings,
                          lambda client, subject=None: client.lipsync(path, subject=subject, **arguments), fitted=True)


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
        directory = photos.speech_dir(properties.active_rig(context))
        try:
            os.makedirs(directory, exist_ok=True)
        except OSError as error:
            self.report({'ERROR'}, f"Cannot create {directory}: {error.strerror or error}")
            return {'CANCELLED'}
        settings = self.mouth_settings(self.start_frame(context), sound_from_reply=True)
        text, voice, rate, arguments = self.text, self.voice.strip() or None, self.rate, self.lipsync_arguments(context)
        return self.start(context, "Say", settings, lambda client, subject=None: client.lipsync(
            text=text, voice=voice, rate_wpm=rate, output_dir=directory, subject=subject, **arguments), fitted=True)


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

classes = (ENLIVEN_OT_capture_video, ENLIVEN_OT_import_livelink, ENLIVEN_OT_lipsync_audio, ENLIVEN_OT_say_text,
           ENLIVEN_OT_cancel_bake)
