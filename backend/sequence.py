"""Frame sequences on disk: naming, writing, the video and the contact sheet."""
from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from .images import write_png

FRAME_PATTERN = "frame_{:04d}.png"  # 1-based, the way Blender numbers image sequences


def frame_path(directory: str | Path, number: int) -> Path:
    return Path(directory) / FRAME_PATTERN.format(number)


def write_frame(directory: str | Path, number: int, rgb: np.ndarray) -> Path:
    """Write one frame atomically (a killed run never leaves a half-written PNG)."""
    path = frame_path(directory, number)
    write_png(path, rgb)
    return path


class VideoWriter:
    """H.264 MP4 through imageio's bundled ffmpeg; odd sizes are padded by one pixel."""

    def __init__(self, path: str | Path, fps: float):
        import imageio.v2 as imageio

        self._writer = imageio.get_writer(str(path), fps=fps, codec="libx264", quality=8,
                                          pixelformat="yuv420p", macro_block_size=1, ffmpeg_log_level="error")

    def add(self, rgb: np.ndarray) -> None:
        height, width = rgb.shape[:2]
        if height % 2 or width % 2:
            rgb = cv2.copyMakeBorder(rgb, 0, height % 2, 0, width % 2, cv2.BORDER_REPLICATE)
        self._writer.append_data(rgb)

    def close(self) -> None:
        self._writer.close()


def contact_sheet(frames: Sequence[tuple[int, np.ndarray]], columns: int = 4, thumb_width: int = 256) -> np.ndarray:
    """A grid of numbered thumbnails: the whole animation at a glance."""
    columns = min(columns, len(frames))
    rows = math.ceil(len(frames) / columns)
    height, width = frames[0][1].shape[:2]
    thumb_height = round(height * thumb_width / width)
    sheet = np.full((rows * thumb_height, columns * thumb_width, 3), 32, np.uint8)
    for slot, (number, rgb) in enumerate(frames):
        thumb = cv2.resize(rgb, (thumb_width, thumb_height), interpolation=cv2.INTER_AREA)
        cv2.putText(thumb, str(number), (6, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (0, 0, 0), 3, cv2.LINE_AA)
        cv2.putText(thumb, str(number), (6, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (255, 255, 255), 1, cv2.LINE_AA)
        row, column = divmod(slot, columns)
        sheet[row * thumb_height:(row + 1) * thumb_height, column * thumb_width:(column + 1) * thumb_width] = thumb
    return sheet


def sheet_frame_numbers(frame_count: int, slots: int = 12) -> list[int]:
    """Which 0-based frames a contact sheet shows: evenly spread, first and last included."""
    if frame_count <= slots:
        return list(range(frame_count))
    return sorted({round(i * (frame_count - 1) / (slots - 1)) for i in range(slots)})
