"""Frames on their way out: encoded for the wire (encoder pool threads) and,
when the server writes the sequence itself, written atomically to disk."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ..images import encode_png
from ..shared import protocol
from .jobs import ServiceError

_PNG_END = b"\x00\x00\x00\x00IEND\xaeB`\x82"


def encode_image(rgb: np.ndarray, fmt: str, png_level: int = 1) -> bytes | np.ndarray:
    if fmt == "raw":
        return np.ascontiguousarray(rgb, dtype=np.uint8)
    if fmt == "jpeg":
        ok, data = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 92])
        if not ok:
            raise ServiceError(protocol.E_ENCODE_FAILED, "could not encode a JPEG")
        return data.tobytes()
    return encode_png(rgb, png_level)


def finish_frame(index: int, rgb: np.ndarray, fmt: str, writer: "FrameWriter | None",
                  png_level: int = 1) -> tuple[int, dict, dict]:
    """Encode one frame (and write it when the server writes the sequence); runs in the encoder pool."""
    fields: dict[str, Any] = {"index": index}
    parts: dict[str, Any] = {}
    png = None
    if writer is not None:
        png = encode_image(rgb, "png", png_level)
        fields["path"] = str(writer.write(index, png))
    if fmt == "png" and png is not None:
        parts["image"] = png
    elif fmt != "none":
        parts["image"] = encode_image(rgb, fmt, png_level)
    return index, fields, parts


@dataclass
class FrameWriter:
    """Writes the numbered PNG sequence atomically (temp file + rename), so a
    killed job leaves only complete frames and a resumed job can trust them."""

    directory: Path
    prefix: str
    first_number: int
    digits: int

    @classmethod
    def from_fields(cls, f: dict) -> "FrameWriter":
        directory = Path(f["output_dir"]).resolve()
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise ServiceError(protocol.E_BAD_OUTPUT_DIR, f"cannot create {directory}: {e.strerror or e}") from e
        writer = cls(directory, f.get("prefix", "frame_"), int(f.get("first_number", 0)), int(f.get("digits", 5)))
        writer._remove_stale_temps()
        return writer

    def path(self, index: int) -> Path:
        return self.directory / f"{self.prefix}{self.first_number + index:0{self.digits}d}.png"

    def complete(self, index: int) -> bool:
        """A frame counts as done only if it is a whole PNG (signature + IEND)."""
        p = self.path(index)
        try:
            size = p.stat().st_size
            if size < 8 + len(_PNG_END):
                return False
            with open(p, "rb") as fh:
                head = fh.read(8)
                fh.seek(size - len(_PNG_END))
                tail = fh.read()
        except OSError:
            return False
        return head == b"\x89PNG\r\n\x1a\n" and tail == _PNG_END

    def write(self, index: int, png: bytes) -> Path:
        from ..images import write_atomic

        target = self.path(index)
        try:
            write_atomic(target, png)
        except OSError as e:
            raise ServiceError(protocol.E_WRITE_FAILED, f"cannot write {target}: {e.strerror or e}") from e
        return target

    def _remove_stale_temps(self) -> None:
        # Temp files of a job killed mid-write (images.write_atomic names them .<name>.XXXX.part).
        for stale in self.directory.glob(f".{self.prefix}*.part"):
            try:
                stale.unlink()
            except OSError:
                pass
