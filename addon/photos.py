"""Paths and pixels as Blender knows them: a portrait's photo as sent to the
backend, the folders its frames and speech go to, and paths on the backend's
disk typed in the panel."""
from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass

import bpy
import numpy as np

from .groups import lead_rig
from .states import UserError


@dataclass
class Photo:
    data: bytes | np.ndarray  # PNG/JPEG file bytes, or HxWx3 uint8 pixels
    digest: str  # sha256 of what is sent: the cache key of the photo


_PNG = b"\x89PNG\r\n\x1a\n"
_JPEG = b"\xff\xd8\xff"


def _pixels_of(image: bpy.types.Image) -> np.ndarray:
    width, height = image.size
    if width == 0 or height == 0:
        raise UserError(f"Image '{image.name}' has no pixels (is its file missing?)")
    channels = image.channels
    buffer = np.empty(width * height * channels, dtype=np.float32)
    image.pixels.foreach_get(buffer)
    rgb = buffer.reshape(height, width, channels)[::-1, :, :3]
    if image.is_float and "linear" in image.colorspace_settings.name.lower():
        # Float images hold scene-linear values; the backend wants sRGB pixels.
        rgb = np.where(rgb <= 0.0031308, rgb * 12.92, 1.055 * np.power(np.clip(rgb, 0, None), 1 / 2.4) - 0.055)
    return np.ascontiguousarray((np.clip(rgb, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8))


def file_signature(image: bpy.types.Image) -> tuple:
    """What identifies the image's current content cheaply (to know when to read it again)."""
    if image.packed_file is not None:
        return ("packed", image.packed_file.size)
    path = bpy.path.abspath(image.filepath, library=image.library) if image.filepath else ""
    if path and os.path.isfile(path):
        stat = os.stat(path)
        return ("file", path, stat.st_mtime_ns, stat.st_size)
    return ("pixels", tuple(image.size), image.is_dirty)


def read_photo(image: bpy.types.Image) -> Photo:
    """What to send the backend for `image`: the file's own bytes when it is a
    PNG or JPEG (the backend decodes them exactly), else its pixels."""
    signature = file_signature(image)
    data: bytes | np.ndarray | None = None
    if signature[0] == "packed":
        data = bytes(image.packed_file.data)
    elif signature[0] == "file":
        try:
            with open(signature[1], "rb") as fh:
                data = fh.read()
        except OSError as error:
            raise UserError(f"Cannot read {signature[1]}: {error.strerror or error}") from None
    if data is not None and not data.startswith((_PNG, _JPEG)):
        data = None  # TIFF, EXR, WebP...: send what Blender decoded
    if data is None:
        data = _pixels_of(image)
        digest = hashlib.sha256(np.asarray(data.shape, np.int64).tobytes() + data.tobytes()).hexdigest()
    else:
        digest = hashlib.sha256(data).hexdigest()
    return Photo(data, digest)


class PhotoCache:
    """Photos read so far, by image name, read again when the image changes."""

    def __init__(self) -> None:
        self.photos: dict[str, tuple[tuple, Photo]] = {}  # image name -> (signature, photo)

    def clear(self) -> None:
        self.photos.clear()

    def photo_for(self, obj: bpy.types.Object) -> Photo:
        image = obj.enliven.photo
        if image is None:
            raise UserError(f"Portrait '{obj.name}' has no photo")
        signature = file_signature(image)
        cached = self.photos.get(image.name)
        if cached is not None and cached[0] == signature:
            return cached[1]
        photo = read_photo(image)
        self.photos[image.name] = (signature, photo)
        return photo


def output_dir(obj: bpy.types.Object) -> tuple[str, str | None]:
    """(absolute output folder of rig `obj`, warning or None): a group photo's faces share their lead rig's."""
    obj = lead_rig(obj)
    raw = obj.enliven.output_dir.strip() or f"//enliven/{bpy.path.clean_name(obj.name)}/"
    if raw.startswith("//") and not bpy.data.filepath:
        # "//" means "next to the .blend", which an unsaved file does not have.
        fallback = os.path.join(tempfile.gettempdir(), "enliven", bpy.path.clean_name(obj.name))
        return fallback, f"The .blend is not saved yet: frames go to {fallback}"
    return os.path.normpath(bpy.path.abspath(raw)), None


def speech_dir(obj: bpy.types.Object) -> str:
    """Where Say Text has the backend write its WAV files: a `speech` folder
    beside the rig's frames. The backend writes it, so this works when Blender
    and the backend share a disk (a local backend, or a remote one whose
    --output-root is mounted at the same path here)."""
    frames, _ = output_dir(obj)
    return os.path.join(frames, "speech")


def backend_path(path: str) -> str:
    """A path typed in the panel for the backend's disk: blend-relative (//) and relative paths are made
    absolute here; an absolute one is sent as typed (a remote backend's disk may be another OS's)."""
    path = bpy.path.abspath(path.strip())
    return path if os.path.isabs(path) else os.path.abspath(path)


def rig_checkpoint(obj: bpy.types.Object) -> str | None:
    """The trained model the rig's refine engine uses (a path on the backend's
    disk), or None: the backend's own default."""
    rig = obj.enliven
    if rig.engine.strip() != "refine" or not rig.checkpoint.strip():
        return None
    return backend_path(rig.checkpoint)
