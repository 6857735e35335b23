"""Reading and writing pictures, with limits and errors a person understands."""
from __future__ import annotations

import contextlib
import io
import os
import secrets
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import cv2
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import ImageError, ImageTooLargeError
from .png import encode_png  # noqa: F401  (the PNG encoder, for this module's callers)

# A 40-megapixel photo is about 120 MB as RGB and several times that while
# we work on it; larger inputs are refused rather than risking the machine.
DEFAULT_MAX_PIXELS = 40_000_000
DEFAULT_MAX_SIDE = 8192
MIN_SIDE = 64
LARGEST_PIXELS = 1_000_000_000  # the most --max-pixels may allow (about 32,000 px a side, 3 GB as RGB)
# _check_size refuses a photo over the caller's limits from its header, before a pixel is decoded. Pillow's own
# limit (89 MP by default) would stop photos --max-pixels lets in; it stays as a backstop at the largest limit.
Image.MAX_IMAGE_PIXELS = LARGEST_PIXELS
# The formats read, all of which decode no pixel before load(): ICO and ICNS decode the picture inside them
# while opening, before its size can be checked (a small .ico can hold a picture of gigabytes).
Image.init()  # every format plugin registered (some load only on demand), so that Image.open(formats=) finds them
PHOTO_FORMATS = tuple(name for name in ("PNG", "JPEG", "MPO", "WEBP", "TIFF", "BMP", "DIB", "GIF", "PPM", "TGA")
                      if name in Image.OPEN)


TOO_LARGE_REMEDY = "Downscale it, or raise the limit with --max-pixels."


def load_image(source: str | os.PathLike | bytes, max_pixels: int = DEFAULT_MAX_PIXELS,
               max_side: int = DEFAULT_MAX_SIDE, remedy: str = TOO_LARGE_REMEDY) -> np.ndarray:
    """Decode a photo (path or encoded bytes) to an (H, W, 3) uint8 RGB array.

    The size is checked from the header before any pixel is decoded, so a
    hostile "decompression bomb" costs nothing. EXIF rotation is applied, so
    the face is upright as the photographer saw it. `remedy` ends the message
    for a photo over the limits: what the person who sent it can do.
    """
    name = "the image" if isinstance(source, (bytes, bytearray)) else f"'{source}'"
    try:
        stream = io.BytesIO(source) if isinstance(source, (bytes, bytearray)) else open(source, "rb")
    except OSError as error:
        raise ImageError(f"Cannot open {name}: {error.strerror or error}.") from error
    with stream:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                image = Image.open(stream, formats=PHOTO_FORMATS)
                width, height = image.size
                _check_size(name, width, height, max_pixels, max_side, remedy)
                image = ImageOps.exif_transpose(image)
                image.load()
        except (ImageError, ImageTooLargeError):
            raise
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
            raise ImageTooLargeError(f"{name} is too large to decode safely ({error}).") from error
        except UnidentifiedImageError as error:
            stream.seek(0)
            kind = _format_by_signature(stream.read(16))
            if kind is not None:  # its first bytes say what it is, and the rest cannot be read as that
                raise ImageError(f"{name} starts as a {kind} file but is damaged and cannot be decoded.") from error
            raise ImageError(f"{name} is not an image format we can read (PNG, JPEG, WebP, TIFF, BMP...).") from error
        except (OSError, SyntaxError, ValueError) as error:
            raise ImageError(f"{name} is damaged or truncated and cannot be decoded: {error}.") from error
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        # 16-bit or 32-bit greyscale: scaled to 8 bits rather than clipped to white. Floating point greyscale
        # holds 0..1 as often as 0..255 (a scientific TIFF): clipped, 0..1 was all but black, "no face found".
        array = np.asarray(image, dtype=np.float64)
        finite = np.isfinite(array)
        array = np.where(finite, array, 0.0)
        if image.mode == "F":  # (by its median: hot, infinite or highlight pixels do not make 0..1 read as 0..255)
            top = 1.0 if not finite.any() or np.median(array[finite]) <= 1.5 else 255.0
        else:
            top = max(array.max(), 1.0)
        image = Image.fromarray((np.clip(array * (255.0 / top), 0, 255) + 0.5).astype(np.uint8))
    if image.mode in ("RGBA", "LA", "P"):
        image = image.convert("RGBA")
        background = Image.new("RGBA", image.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, image)
    return np.ascontiguousarray(np.asarray(image.convert("RGB"), dtype=np.uint8))


def _format_by_signature(header: bytes) -> str | None:
    """The photo format whose signature `header` (a file's first bytes) starts with, by Pillow's own tests."""
    for kind in PHOTO_FORMATS:
        accept = Image.OPEN.get(kind, (None, None))[1]
        try:
            accepted = accept is not None and accept(header)
        except Exception:  # noqa: BLE001 (a test that reads past a file of a few bytes: BMP's raised struct.error)
            accepted = False
        if accepted:
            return kind
    return None


def _check_size(name: str, width: int, height: int, max_pixels: int, max_side: int, remedy: str) -> None:
    if min(width, height) < MIN_SIDE:
        raise ImageError(f"{name} is {width}x{height}: too small to find a face in (at least {MIN_SIDE} px a side).")
    if max(width, height) > max_side or width * height > max_pixels:
        raise ImageTooLargeError(
            f"{name} is {width}x{height} ({width * height / 1e6:.1f} MP), over the limit of "
            f"{max_side} px a side and {max_pixels / 1e6:.3g} MP. {remedy}")


def check_image_size(data: bytes, name: str, max_pixels: int, max_side: int) -> None:
    """Refuse encoded image `data` over the limits from its header alone, as load_image would (for a photo
    sent on as it is); one that cannot be read here is left to its reader to say what is wrong with it."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            width, height = image.size
    except Exception:  # noqa: BLE001 (any reason: the reader says it)
        return
    _check_size(name, width, height, max_pixels, max_side, TOO_LARGE_REMEDY)


def decode_png(data: bytes) -> np.ndarray:
    """RGB pixels of PNG (or JPEG) bytes we made or received."""
    pixels = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if pixels is None:
        raise ImageError("Received image data that cannot be decoded.")
    return cv2.cvtColor(pixels, cv2.COLOR_BGR2RGB)


def write_atomic(path: str | os.PathLike, data: bytes) -> None:
    """Write a file so that it is either complete or absent, never half written."""
    with atomic_file(path) as stream:
        stream.write(data)


@contextlib.contextmanager
def atomic_file(path: str | os.PathLike) -> Iterator[BinaryIO]:
    """A binary file to fill that appears at `path` complete, or not at all: it is written under a temporary name
    beside `path` and renamed into place when the block ends without an error. Made by open(), so it gets the
    permissions of every other file a program makes (the umask's), not tempfile.mkstemp's owner-only ones that
    no one else (a render farm, Blender run by another account) could read."""
    path = Path(path)
    temp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.part")
    try:
        stream = open(temp, "xb")  # outside the try below: if it cannot be made, there is nothing to remove
    except OSError as error:
        raise _about(error, path) from None
    try:
        with stream:
            yield stream
        os.replace(temp, path)
    except BaseException as error:
        temp.unlink(missing_ok=True)
        if isinstance(error, OSError):
            raise _about(error, path) from None
        raise


def _about(error: OSError, path: Path) -> OSError:
    """The same error about the file asked for, not its temporary name (which is gone by then)."""
    return type(error)(error.errno, error.strerror, str(path)) if error.errno is not None else error


def write_png(path: str | os.PathLike, pixels: np.ndarray, compression: int = 1) -> None:
    write_atomic(path, encode_png(pixels, compression))


def resize_long_side(rgb: np.ndarray, size: int) -> np.ndarray:
    """Scale so the longer side is `size` pixels (area filter when shrinking)."""
    height, width = rgb.shape[:2]
    scale = size / max(height, width)
    if abs(scale - 1.0) < 1e-9:
        return rgb
    new_size = (max(1, round(width * scale)), max(1, round(height * scale)))
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC
    return cv2.resize(rgb, new_size, interpolation=interpolation)
