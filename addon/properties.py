"""The data the add-on stores in the .blend: a portrait rig's channels and
settings (`Object.enliven`) and per-scene settings (`Scene.enliven`).

Every channel of the shared channel table becomes an animatable float
property, so I-key, the keyframe diamond, the Dope Sheet and the Graph Editor
work on them like on any other property. Their F-curve data paths are
`enliven.<channel>` (see `data_path`).

Head rotations are stored the way Blender stores every rotation: in radians
with the ROTATION unit, so the UI and the Graph Editor show degrees and the
artist's unit settings apply. `to_property` / `from_property` convert between
the channel table's units (degrees) and the stored values; everything else
(face widths, factors) is stored as is.
"""
from __future__ import annotations

import math

import bpy
from bpy.props import (BoolProperty, EnumProperty, FloatProperty, FloatVectorProperty, IntProperty, PointerProperty,
                       StringProperty)

from . import compat, hooks
from .shared import channels as channel_table

GROUP_NAME = "Enliven"  # the action group the channel F-curves go in
PROPERTY_PREFIX = "enliven."
# Group titles for the UI, in the order of the channel table.
GROUP_TITLES = {"pose": "Head", "eyes": "Eyes", "brows": "Brows", "mouth": "Mouth", "body": "Body"}


def data_path(channel_name: str) -> str:
    """The F-curve data path of a channel on a rig object."""
    return PROPERTY_PREFIX + channel_name


def scale(channel_name: str) -> float:
    """Stored value = channel value * scale."""
    return math.radians(1.0) if channel_table.channel(channel_name).unit == "deg" else 1.0


def to_property(channel_name: str, value: float) -> float:
    return float(value) * scale(channel_name)


def from_property(channel_name: str, value: float) -> float:
    return float(value) / scale(channel_name)


# Per-channel scale as a tuple in table order, for vectorised conversion.
SCALES = tuple(scale(c.name) for c in channel_table.CHANNELS)


def _title(name: str) -> str:
    words = name.replace("_", " ").split()
    fixes = {"l": "Left", "r": "Right", "x": "X", "y": "Y"}
    return " ".join(fixes.get(w, w.capitalize()) for w in words)


def _channel_changed(rig: "ENLIVEN_PG_rig", context: bpy.types.Context) -> None:
    # Called when the artist (or a script) sets a channel: ask for a new
    # preview at once instead of waiting for the depsgraph handler.
    hooks.channels_changed(rig.id_data)


def _channel_property(ch: channel_table.Channel) -> FloatProperty:
    unit_text = {"deg": "degrees", "face_widths": "face widths", "factor": ""}.get(ch.unit, ch.unit)
    description = ch.description + (f" Unit: {unit_text}." if unit_text else "")
    k = scale(ch.name)
    options = {"subtype": "NONE", "unit": "NONE"}
    if ch.unit == "deg":
        options = {"subtype": "ANGLE", "unit": "ROTATION"}
    elif ch.unit == "factor":
        options = {"subtype": "FACTOR", "unit": "NONE"}
    return FloatProperty(
        name=_title(ch.name),
        description=description,
        default=ch.default * k,
        min=ch.minimum * k,
        max=ch.maximum * k,
        soft_min=ch.minimum * k,
        soft_max=ch.maximum * k,
        precision=3,
        step=1 if ch.unit == "deg" else 3,
        options={'ANIMATABLE'},
        update=_channel_changed,
        **options,
    )


def _engine_names(rig, context, text: str) -> list[str]:
    """The connected backend's engines, for the Engine field's search list."""
    return list(hooks.engine_names())


def _rig_annotations() -> dict:
    # Settings have options=set(): stored, but not animatable, so no stray
    # keyframe diamonds appear next to them.
    annotations = {
        "is_rig": BoolProperty(
            name="Is Enliven Portrait", default=False, options=set(),
            description="This object is an Enliven portrait rig"),
        "photo": PointerProperty(
            name="Photo", type=bpy.types.Image, options=set(),
            description="The portrait photo this rig animates"),
        "face_index": IntProperty(
            name="Face", default=0, min=0, max=255, options=set(),
            description="Which face to animate when the photo shows several (0 = the largest)"),
        # The photo's lips as the backend's analysis measured them (MouthOpening: gap, opens, closes), kept so
        # that the talk preset fits its speech to them without a backend too; which photo and face they are
        # of (digest:face), so a changed photo is not fitted to another's lips.
        "photo_mouth": FloatVectorProperty(
            name="Photo's Lips", size=3, default=(0.0, 0.0, 0.0), options=set(),
            description="How far the photo's lips are apart, and how far jaw_open opens and closes them "
                        "(from the backend's analysis): the talk preset's speech is fitted to them"),
        "photo_mouth_of": StringProperty(name="Photo's Lips Of", default="", options=set()),
        "engine": StringProperty(
            name="Engine", default="", options=set(), search=_engine_names,
            description="Backend engine to render with: warp, or refine (the warp with the eyes and mouth "
                        "redrawn by trained generators); empty uses the backend's default"),
        "checkpoint": StringProperty(
            name="Model", default="", subtype='FILE_PATH', options=compat.blend_relative_path(),
            description="The refine engine's trained model (RUN_DIR/best.pt or last.pt, from training), a path on the "
                        "backend's disk. Empty: the one the backend was started with (serve --checkpoint), else "
                        "the eye and mouth generators that ship with Enliven"),
        "output_dir": StringProperty(
            name="Output Folder", default="", subtype='DIR_PATH', options=compat.blend_relative_path(),
            description="Where Generate writes the numbered PNG sequence. "
                        "Empty: //enliven/<portrait>/ next to the .blend file"),
        "alpha": BoolProperty(
            name="Alpha", default=False, options=set(),
            description="Cut the person out: frames with alpha, where the background the moving head uncovers "
                        "is transparent (for Alpha Over onto the render or a background plate)"),
        "frame_format": EnumProperty(
            name="Format", default='PNG', options=set(),
            items=[('PNG', "PNG", "8-bit sRGB frames: small and simple"),
                   ('EXR', "OpenEXR Multilayer", "Linear colour and alpha, the person, face, eye and mouth mattes "
                                                 "and the motion vectors (for Vector Blur) as layers of each frame")],
            description="The file format of the generated frames"),
        "use_custom_range": BoolProperty(
            name="Custom Range", default=False, options=set(),
            description="Generate this frame range instead of the scene's"),
        "frame_start": IntProperty(name="Start", default=1, min=0, options=set(),
                                   description="First frame to generate"),
        "frame_end": IntProperty(name="End", default=250, min=0, options=set(),
                                 description="Last frame to generate"),
    }
    for ch in channel_table.CHANNELS:
        annotations[ch.name] = _channel_property(ch)
    return annotations


# Built from the channel table so a new channel in shared/ appears here
# without touching the add-on.
ENLIVEN_PG_rig = type(
    "ENLIVEN_PG_rig",
    (bpy.types.PropertyGroup,),
    {
        "__annotations__": _rig_annotations(),
        "__doc__": "An Enliven portrait rig: the photo and its animatable motion channels",
        "__module__": __name__,
    },
)


def _is_rig(scene_settings, obj: bpy.types.Object) -> bool:
    return obj.enliven.is_rig


def _preview_toggled(settings: "ENLIVEN_PG_scene", context: bpy.types.Context) -> None:
    hooks.preview_toggled(settings.id_data)


class ENLIVEN_PG_scene(bpy.types.PropertyGroup):
    """Per-scene Enliven settings."""

    rig: PointerProperty(
        name="Portrait", type=bpy.types.Object, poll=_is_rig, options=set(),
        description="The portrait the panel, the live preview and Generate work on "
                    "(the active object wins when it is a portrait)")
    new_photo: PointerProperty(
        name="Photo", type=bpy.types.Image, options=set(),
        description="Photo for Add Portrait: an image already in this file")
    live_preview: BoolProperty(
        name="Live Preview", default=False, options=set(), update=_preview_toggled,
        description="Render the current frame of the active portrait on every change into "
                    "the 'Enliven Preview' image (open it in any Image Editor)")
    # Training the refine engine (paths on the backend's disk).
    train_dataset: StringProperty(
        name="Dataset", default="", subtype='DIR_PATH', options=compat.blend_relative_path(),
        description="A dataset folder made by `enliven prepare VIDEOS_DIR --out DATASET_DIR`")
    train_run_dir: StringProperty(
        name="Run Folder", default="", subtype='DIR_PATH', options=compat.blend_relative_path(),
        description="Where training writes last.pt (the model; best.pt too when the config names validation "
                    "clips), samples.png and loss.png")
    train_preset: EnumProperty(
        name="Model Size", default='small', options=set(),
        items=[('small', "Small", "Trains on a CPU (128 px)"),
               ('large', "Large", "For GPUs (256 px)"),
               ('FILE', "Config File", "A JSON file of settings (see enliven.neural.config)")],
        description="The model and training settings")
    train_config_file: StringProperty(
        name="Config File", default="", subtype='FILE_PATH', options=compat.blend_relative_path(),
        description="JSON settings: a preset to start from and any settings to change")
    train_steps: IntProperty(
        name="Steps", default=0, min=0, max=100_000_000, options=set(),
        description="Train until this many steps in all (0: the settings' own number)")
    train_resume: BoolProperty(
        name="Resume", default=False, options=set(),
        description="Continue the run in the run folder exactly where it stopped")
    over_render: BoolProperty(
        name="Over Render", default=False, options=set(),
        description="Add to Compositor puts the portrait over the scene's render (Alpha Over) "
                    "instead of using it alone")
    background: PointerProperty(
        name="Background", type=bpy.types.Image, options=set(),
        description="Add to Compositor puts the portrait over this image (Alpha Over): a new background plate "
                    "for a portrait generated with Alpha. Empty: the render (Over Render) or nothing")
    vector_blur: BoolProperty(
        name="Vector Blur", default=False, options=set(),
        description="Add to Compositor blurs the portrait along its motion vectors (frames in OpenEXR Multilayer)")


classes = (ENLIVEN_PG_rig, ENLIVEN_PG_scene)


def register_pointers() -> None:
    bpy.types.Object.enliven = PointerProperty(type=ENLIVEN_PG_rig, name="Enliven")
    bpy.types.Scene.enliven = PointerProperty(type=ENLIVEN_PG_scene, name="Enliven")


def unregister_pointers() -> None:
    del bpy.types.Scene.enliven
    del bpy.types.Object.enliven


def rig_channel_values(obj: bpy.types.Object) -> list[float]:
    """The rig's current channel values in table order and channel units."""
    rig = obj.enliven
    return [getattr(rig, c.name) / k for c, k in zip(channel_table.CHANNELS, SCALES)]


def active_rig(context: bpy.types.Context, scene: bpy.types.Scene | None = None) -> bpy.types.Object | None:
    """The portrait the UI works on: the active object when it is a portrait,
    else the scene's chosen one."""
    scene = scene or context.scene
    view_layer = getattr(context, "view_layer", None)
    active = view_layer.objects.active if view_layer is not None else None
    if active is not None and active.enliven.is_rig:
        return active
    if scene is not None:
        rig = scene.enliven.rig
        if rig is not None and rig.enliven.is_rig:
            return rig
    return None
