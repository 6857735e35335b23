"""Frames on their way out: encoded for the wire (encoder pool threads) and,
when the server writes the sequence itself, written atomically to disk."""
from __future__ import annotations

import contextlib
import errno
import os
import re
import shutil
import stat
from pathlib import Path
from typing import Any, BinaryIO, Callable, Sequence

import cv2
import numpy as np

from ..frame_layers import FrameLayers
from ..frame_formats import EXR_MAGIC, encode_frame, rgba_pixels
from ..png import BandCache, encode_png
from ..shared import naming, protocol
from .jobs import ServiceError

_PNG_END = b"\x00\x00\x00\x00IEND\xaeB`\x82"
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_DIRECTORY = getattr(os, "O_DIRECTORY", 0)
_BINARY = getattr(os, "O_BINARY", 0)
# Files made relative to an open folder (POSIX); elsewhere (Windows) by path, as before.
_RELATIVE_IO = os.open in os.supports_dir_fd and os.rename in os.supports_dir_fd  # os.replace: renameat too


def encode_image(pixels: np.ndarray, fmt: str, png_level: int = 1, cache: BandCache | None = None) -> bytes | np.ndarray:
    """A frame's (H, W, 3) RGB or (H, W, 4) RGBA pixels for the wire."""
    if fmt == "raw":
        return np.ascontiguousarray(pixels, dtype=np.uint8)
    if fmt == "jpeg":
        ok, data = cv2.imencode(".jpg", cv2.cvtColor(pixels[..., :3], cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 92])
        if not ok:
            raise ServiceError(protocol.E_ENCODE_FAILED, "could not encode a JPEG")
        return data.tobytes()
    return encode_png(pixels, png_level, cache)


def finish_frame(index: int, layers: FrameLayers, fmt: str, writer: "FrameWriter | None",
                 png_level: int = 1, cache: BandCache | None = None) -> tuple[int, dict, dict]:
    """Encode one frame (and write it when the server writes the sequence); runs in the encoder pool.
    An EXR frame goes out (and onto disk) as EXR; a written sequence is PNG otherwise."""
    fields: dict[str, Any] = {"index": index}
    parts: dict[str, Any] = {}
    data = None
    if writer is not None or fmt in ("png", "exr"):
        data = encode_frame(layers, "exr" if fmt == "exr" else "png", png_level, cache)
    if writer is not None:
        fields["path"] = str(writer.write(index, data))
    if fmt in ("png", "exr"):
        parts["image"] = data
    elif fmt != "none":
        parts["image"] = encode_image(rgba_pixels(layers), fmt, png_level)
    return index, fields, parts


class OutputFolder:
    """A client's output folder on the server, opened once: every file is made,
    checked and renamed relative to that handle, never by path again. A folder
    swapped for a symbolic link after it was checked cannot send files
    elsewhere, and no file that is a link is followed (a link in the place of a
    file is replaced, never written through). Files are written atomically
    (temp file + rename): a killed job leaves only whole files."""

    def __init__(self, directory: Path, handle: int | None, made: Sequence[Path] = ()):
        self.directory = directory
        self._handle = handle  # the folder, open (None where the OS cannot write relative to a folder)
        self._made = list(made)  # the folders open() made, deepest first: close() removes those left empty

    @classmethod
    def open(cls, directory: Path, root: Path | None) -> "OutputFolder":
        """`directory`: resolved and checked by the path policy. Under a `root` (a server
        that writes only there) it is reached from the root one folder at a time,
        creating what is missing and following no link: a folder replaced by a link
        since the check is refused."""
        handle, made = None, []
        try:
            if root is None or not _RELATIVE_IO:
                made = [folder for folder in (directory, *directory.parents) if not folder.exists()]
                directory.mkdir(parents=True, exist_ok=True)
                if _RELATIVE_IO:
                    handle = os.open(directory, os.O_RDONLY | _DIRECTORY)
            else:
                handle = os.open(root, os.O_RDONLY | _DIRECTORY)
                reached = root
                for name in directory.relative_to(root).parts:
                    reached = reached / name
                    try:
                        os.mkdir(name, dir_fd=handle)
                        made.insert(0, reached)
                    except FileExistsError:
                        pass
                    inner = os.open(name, os.O_RDONLY | _DIRECTORY | _NOFOLLOW, dir_fd=handle)
                    os.close(handle)
                    handle = inner
        except OSError as e:
            if handle is not None:
                os.close(handle)
            if root is not None and e.errno in (errno.ELOOP, errno.ENOTDIR):
                raise ServiceError(protocol.E_FORBIDDEN, f"output_dir {directory} was replaced by a link after it was "
                                                         "checked; nothing was written") from None
            raise ServiceError(protocol.E_BAD_OUTPUT_DIR, f"cannot create {directory}: {e.strerror or e}") from e
        return cls(directory, handle, made)

    def close(self) -> None:
        """Close the folder; the folders open() made are removed if still empty (a job that failed before
        its first file, on a full disk, or was cancelled, leaves none behind; a file written keeps them)."""
        if self._handle is not None:
            os.close(self._handle)
            self._handle = None
        for folder in self._made:
            try:
                folder.rmdir()  # (only ever an empty folder, and never a link: rmdir removes neither else)
            except OSError:
                break
        self._made = []

    def __enter__(self) -> "OutputFolder":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _at(self, name: str) -> str:
        """`name` for a call with dir_fd=self._handle."""
        return name if self._handle is not None else str(self.directory / name)

    def place(self, name: str, source: Path) -> Path:
        """Copy a finished file (made elsewhere, e.g. by ffmpeg in a private
        temporary folder) into the folder as `name`, by the same rules as the frames."""
        def copy(out) -> None:
            with open(source, "rb") as src:
                shutil.copyfileobj(src, out, 1 << 20)

        return self._write_atomically(name, copy)

    def _write_atomically(self, name: str, fill: Callable[[BinaryIO], object]) -> Path:
        """`name` in the folder, filled by `fill(file)` under a temporary name
        through the folder's handle, then renamed into place."""
        temp = f".{name}.{os.urandom(4).hex()}.part"
        try:
            fd = os.open(self._at(temp), os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW | _BINARY, 0o666,
                         dir_fd=self._handle)
            try:
                with os.fdopen(fd, "wb") as out:
                    fill(out)
                # Replacing a link replaces the link itself, never what it points at.
                os.replace(self._at(temp), self._at(name), src_dir_fd=self._handle, dst_dir_fd=self._handle)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(self._at(temp), dir_fd=self._handle)
                raise
        except OSError as e:
            raise ServiceError(protocol.E_WRITE_FAILED, f"cannot write {self.directory / name}: {e.strerror or e}") from e
        return self.directory / name


class FrameWriter(OutputFolder):
    """Writes the numbered PNG sequence into an OutputFolder, so a resumed job
    can trust the frames it finds (a link in the place of a frame is neither
    read nor skipped, but replaced by the frame)."""

    def __init__(self, folder: OutputFolder, prefix: str, first_number: int, digits: int, fmt: str = "png"):
        super().__init__(folder.directory, folder._handle, folder._made)
        self.prefix = prefix
        self.first_number = first_number
        self.digits = digits
        self.fmt = fmt

    @classmethod
    def open_sequence(cls, directory: Path, root: Path | None, f: dict) -> "FrameWriter":
        """The sequence a generate request `f` names (shared/naming.py's rule by default)."""
        writer = cls(OutputFolder.open(directory, root), f.get("prefix", naming.FRAME_PREFIX),
                     int(f.get("first_number", naming.FIRST_FRAME)), int(f.get("digits", naming.FRAME_DIGITS)),
                     "exr" if f.get("format") == "exr" else "png")
        # Index -1 is frame number 0, which the rule never writes: only a sequence
        # started under the old default numbering (from 0) has it. Resume that as it was.
        if f.get("resume") and "first_number" not in f and writer.complete(-1):
            writer.first_number = 0
        writer._remove_stale_temps()
        return writer

    def name(self, index: int) -> str:
        return naming.frame_filename(self.first_number + index, self.prefix, self.digits, self.fmt)

    def path(self, index: int) -> Path:
        return self.directory / self.name(index)

    def complete(self, index: int) -> bool:
        """A frame counts as done only if it is a whole PNG (signature + IEND), or an EXR (signature; EXR
        has no end marker, and frames are only ever renamed into place whole), in a plain file."""
        try:
            fd = os.open(self._at(self.name(index)), os.O_RDONLY | _NOFOLLOW, dir_fd=self._handle)
        except OSError:
            return False
        with os.fdopen(fd, "rb") as fh:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode) or info.st_size < 8 + len(_PNG_END):
                return False
            head = fh.read(8)
            fh.seek(info.st_size - len(_PNG_END))
            tail = fh.read()
        if self.fmt == "exr":
            return head.startswith(EXR_MAGIC)
        return head == b"\x89PNG\r\n\x1a\n" and tail == _PNG_END

    def write(self, index: int, data: bytes) -> Path:
        return self._write_atomically(self.name(index), lambda out: out.write(data))

    def _remove_stale_temps(self) -> None:
        # Temp files of a job killed mid-write (named .<frame name>.XXXX.part).
        try:
            names = os.listdir(self._handle if self._handle is not None else self.directory)
        except OSError:
            return
        # Only this writer's frames (its prefix, then digits): another prefix's frames
        # or a video being placed in the same folder are not ours to remove.
        ours = re.compile(rf"\.{re.escape(self.prefix)}\d+\.(png|exr)\.[0-9A-Za-z_-]+\.part")
        for name in names:
            if ours.fullmatch(name):
                with contextlib.suppress(OSError):
                    os.unlink(self._at(name), dir_fd=self._handle)
