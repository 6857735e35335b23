"""Training the refine engine from Blender, and using the model it saves."""
from __future__ import annotations

import json
import os

import bpy

from . import photos, properties
from .connection import RUNTIME
from .operators import existing_file, rig_poll
from .states import UserError


def _backend_dir(path: str, what: str) -> str:
    """A folder named in the panel, as the path the backend is sent (see photos.backend_path)."""
    if not path.strip():
        raise UserError(f"Choose the {what} first")
    return photos.backend_path(path)


def _training_config(settings) -> str | dict:
    """The preset name, or the settings of the chosen JSON file (read here, sent as data)."""
    if settings.train_preset != 'FILE':
        return settings.train_preset
    path = existing_file(settings.train_config_file, "config file")
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
        return rig_poll(context) and _trained_model(context) is not None

    def execute(self, context):
        rig = properties.active_rig(context).enliven
        rig.engine, rig.checkpoint = "refine", _trained_model(context)
        RUNTIME.request_preview(context.scene)
        self.report({'INFO'}, f"'{properties.active_rig(context).name}' renders with {rig.checkpoint}")
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

classes = (ENLIVEN_OT_train_start, ENLIVEN_OT_train_stop, ENLIVEN_OT_use_trained_model,
           ENLIVEN_OT_show_training_samples)
