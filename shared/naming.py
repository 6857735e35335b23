"""The one frame-naming rule, for the command line, the server and the add-on:

    frame_NNNNN.png   (or frame_NNNNN.exr for multilayer OpenEXR frames)

five digits (more once a number needs them), numbered by the frame's number:
from 1 for the first frame of a sequence the command line or the server makes,
and the scene's own frame numbers in Blender (so frame 1001 of a shot is
frame_01001.png). A server request may still choose another prefix, first
number or digit count; older default names are read where a resume depends on
them (see backend/service/frames.py).
"""
from __future__ import annotations

FRAME_PREFIX = "frame_"
FRAME_DIGITS = 5
FIRST_FRAME = 1
FRAME_FORMATS = ("png", "exr")  # the file formats of a frame sequence; PNG is the default
# Beside the frames the Blender add-on caches (addon/frame_cache.py): what made each one. The command line
# never clears old frames out of a folder that has it.
FRAME_CACHE_FILE = ".enliven_cache.json"

# A multilayer OpenEXR frame's layers, named as Blender names its render passes
# (view layer.pass.channel), so its Image node shows them as outputs.
EXR_LAYER = "ViewLayer"
EXR_MATTES = {"Person": "person", "Face": "face", "Eyes": "eyes", "Mouth": "mouth"}  # pass -> matte


def frame_filename(number: int, prefix: str = FRAME_PREFIX, digits: int = FRAME_DIGITS, fmt: str = "png") -> str:
    """The file name of frame `number` (the frame's number, not a 0-based index) in format `fmt`."""
    return f"{prefix}{number:0{digits}d}.{fmt}"


def is_frame_filename(name: str, prefix: str = FRAME_PREFIX, digits: int = FRAME_DIGITS) -> bool:
    """Whether file name `name` is a frame's by this rule (frame_filename's, in any of FRAME_FORMATS)."""
    stem, _, fmt = name.rpartition(".")
    number = stem[len(prefix):]
    return stem.startswith(prefix) and number.isdigit() and len(number) >= digits and fmt in FRAME_FORMATS
