"""The "Enliven" tab of the 3D viewport sidebar, and the status bar progress."""
from __future__ import annotations

import bpy

from . import compat, groups, photos, properties, sampling
from .connection import RUNTIME
from .properties import GROUP_TITLES
from .shared.channels import GROUPS


class _EnlivenPanel:
    bl_space_type = 'VIEW_3D'
    bl_region_type = 'UI'
    bl_category = "Enliven"


def _generate_progress(layout: bpy.types.UILayout) -> bool:
    """Progress bar + Cancel while generating; True when something was drawn."""
    job = RUNTIME.generate
    if job is None or not job.active:
        return False
    row = layout.row(align=True)
    compat.layout_progress(row, job.progress, job.message or "Generating…")
    row.operator("enliven.cancel", text="", icon='X')
    return True


def _bake_progress(layout: bpy.types.UILayout, obj: bpy.types.Object) -> None:
    """The running capture/lip-sync (progress bar + Cancel), or how the last one ended."""
    job = RUNTIME.bake
    if job is None or job.rig != obj.name:
        return
    if job.active:
        row = layout.row(align=True)
        compat.layout_progress(row, job.progress, job.message or f"{job.title}…")
        row.operator("enliven.cancel_bake", text="", icon='X')
    elif job.message:
        icon = {'FAILED': 'ERROR', 'CANCELLED': 'CANCEL'}.get(job.state, 'CHECKMARK')
        layout.label(text=job.message, icon=icon)


class _PortraitPanel(_EnlivenPanel):
    """A section shown only while there is a portrait to work on."""

    @classmethod
    def poll(cls, context):
        return properties.active_rig(context) is not None


class ENLIVEN_PT_main(_EnlivenPanel, bpy.types.Panel):
    bl_label = "Enliven"

    def draw(self, context):
        layout = self.layout
        scene = context.scene
        icon, text = RUNTIME.status_line()
        row = layout.row(align=True)
        row.label(text=text, icon=icon)
        row.operator("enliven.connect", text="", icon='FILE_REFRESH')
        if RUNTIME.has_log() and RUNTIME.state == "ERROR":
            layout.operator("enliven.show_log", icon='TEXT')

        box = layout.box()
        box.template_ID(scene.enliven, "new_photo", open="image.open")
        row = box.row(align=True)
        row.operator("enliven.add_portrait", icon='ADD')

        obj = properties.active_rig(context)
        layout.prop(scene.enliven, "rig")
        if obj is None:
            layout.label(text="Add a portrait to start", icon='INFO')
            return
        status = RUNTIME.rig_status.get(obj.name)
        if status is not None:
            layout.label(text=status[1], icon=status[0])
        row = layout.row(align=True)
        row.prop(scene.enliven, "live_preview", toggle=True, icon='HIDE_OFF')
        row.operator("enliven.show_preview", text="", icon='IMAGE')


class ENLIVEN_PT_channels(_PortraitPanel, bpy.types.Panel):
    bl_label = "Channels"
    bl_parent_id = "ENLIVEN_PT_main"

    def draw(self, context):
        layout = self.layout
        layout.use_property_split = True
        layout.use_property_decorate = True  # the keyframe diamonds
        rig = properties.active_rig(context).enliven
        for group, names in GROUPS.items():
            column = layout.column(align=True, heading=GROUP_TITLES.get(group, group.title()))
            for name in names:
                column.prop(rig, name, slider=True)
        layout.operator("enliven.reset_pose", icon='LOOP_BACK')


class ENLIVEN_PT_motion(_PortraitPanel, bpy.types.Panel):
    bl_label = "Motion"
    bl_parent_id = "ENLIVEN_PT_main"

    def draw(self, context):
        layout = self.layout
        layout.operator_menu_enum("enliven.insert_preset", "preset", text="Insert Preset", icon='KEYINGSET')
        layout.operator("enliven.bake_motion", icon='IMPORT')

        column = layout.column(align=True)
        column.operator("enliven.capture_video", icon='FILE_MOVIE')
        column.operator("enliven.import_livelink", icon='FILE_TEXT')
        column = layout.column(align=True)
        column.operator("enliven.lipsync_audio", icon='SOUND').source = 'FILE'
        if compat.sound_strips(context.scene):
            column.operator("enliven.lipsync_audio", text="Lip-sync from Sound Strip", icon='SEQUENCE').source = 'STRIP'
        column.operator("enliven.say_text", icon='OUTLINER_OB_SPEAKER')
        _bake_progress(layout, properties.active_rig(context))


class ENLIVEN_PT_output(_PortraitPanel, bpy.types.Panel):
    bl_label = "Generate"
    bl_parent_id = "ENLIVEN_PT_main"

    def draw(self, context):
        layout = self.layout
        face = properties.active_rig(context)
        # A group photo's faces render into one sequence with its first face's settings: those are shown
        # (the active face's own were shown, and ignored).
        obj = groups.lead_rig(face)
        rig = obj.enliven
        layout.use_property_split = True
        layout.use_property_decorate = False
        if obj != face:
            layout.label(text=f"Settings of the group's first face, {obj.name}", icon='INFO')
        layout.prop(rig, "use_custom_range")
        if rig.use_custom_range:
            column = layout.column(align=True)
            column.prop(rig, "frame_start")
            column.prop(rig, "frame_end")
        else:
            first, last = sampling.frame_range(context.scene, obj)
            layout.label(text=f"Scene frames {first}-{last}")
        layout.prop(rig, "output_dir")
        directory, warning = photos.output_dir(obj)
        if not rig.output_dir:
            layout.label(text=directory)
        if warning:
            layout.label(text=warning, icon='ERROR')
        layout.prop(rig, "engine")
        if rig.engine.strip() == "refine":
            layout.prop(rig, "checkpoint")
        row = layout.row(align=True)
        row.prop(rig, "frame_format", text="")
        row.prop(rig, "alpha")
        layout.prop(face.enliven, "face_index")

        if not _generate_progress(layout):
            layout.operator("enliven.generate", icon='RENDER_ANIMATION')
            job = RUNTIME.generate
            if job is not None and job.rig == obj.name and job.message:
                icon = {'FAILED': 'ERROR', 'CANCELLED': 'CANCEL'}.get(job.state, 'CHECKMARK')
                layout.label(text=job.message, icon=icon)

        layout.separator()
        settings = context.scene.enliven
        layout.prop(settings, "background")
        row = layout.row(align=True)
        row.active = settings.background is None  # a background image takes the render's place
        row.prop(settings, "over_render")
        sub = layout.row()
        sub.active = rig.frame_format == 'EXR'
        sub.prop(settings, "vector_blur")
        row = layout.row(align=True)
        row.operator("enliven.add_to_compositor", icon='NODE_COMPOSITING')
        row.operator("enliven.add_to_sequencer", icon='SEQUENCE')


class ENLIVEN_PT_training(_EnlivenPanel, bpy.types.Panel):
    """Train the refine engine on the backend, watch it, stop it, and use the model it saves."""

    bl_label = "Training"
    bl_parent_id = "ENLIVEN_PT_main"
    bl_options = {'DEFAULT_CLOSED'}

    def draw(self, context):
        layout = self.layout
        settings = context.scene.enliven
        column = layout.column()
        column.use_property_split = True
        column.use_property_decorate = False
        column.prop(settings, "train_dataset")
        column.prop(settings, "train_run_dir")
        column.prop(settings, "train_preset")
        if settings.train_preset == 'FILE':
            column.prop(settings, "train_config_file")
        column.prop(settings, "train_steps")
        column.prop(settings, "train_resume")

        job = RUNTIME.training
        if job is not None and job.active:
            row = layout.row(align=True)
            compat.layout_progress(row, job.progress, job.message)
            row.operator("enliven.train_stop", text="", icon='PAUSE')
        else:
            layout.operator("enliven.train_start", icon='PLAY')
            if job is not None and job.message:
                icon = {'FAILED': 'ERROR', 'STOPPED': 'PAUSE'}.get(job.state, 'CHECKMARK')
                layout.label(text=job.message, icon=icon)
        if job is not None and job.losses:
            # L1 of the refined frames next to the warp's own (what the refiner must beat), then the rest.
            shown = [name for name in ("l1", "l1_warp", "motion", "adversarial", "discriminator") if name in job.losses]
            layout.label(text="  ".join(f"{name} {job.losses[name]:.4g}" for name in shown), icon='GRAPH')
            if "val_l1" in job.losses:  # on the validation clips, with the correction strength fitted there
                layout.label(text=f"validation l1 {job.losses['val_l1']:.4g} (warp {job.losses['val_l1_warp']:.4g}, "
                                  f"strength {job.losses['val_strength']:.2f})", icon='CHECKBOX_HLT')
        row = layout.row(align=True)
        row.operator("enliven.show_training_samples", icon='IMAGE_DATA')
        row.operator("enliven.use_trained_model", icon='CHECKMARK')


def draw_status_bar(self, context):
    """Appended to the status bar: the generate progress, visible from any editor."""
    job = RUNTIME.generate
    if job is not None and job.active:
        row = self.layout.row(align=True)
        compat.layout_progress(row, job.progress, f"Enliven: {job.message}")
        row.operator("enliven.cancel", text="", icon='X', emboss=False)


classes = (ENLIVEN_PT_main, ENLIVEN_PT_channels, ENLIVEN_PT_motion, ENLIVEN_PT_output, ENLIVEN_PT_training)
