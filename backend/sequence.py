"""Frame sequences on disk: naming, writing, the video and the contact sheet."""
from __future__ import annotations

import math
import shutil
import sys
from collections import deque
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from pathlib import Path

import cv2
import numpy as np

from .errors import EnlivenError
from .frame_layers import FrameLayers
from .images import write_atomic, write_png
from .png import BandCache
from .shared.naming import FRAME_CACHE_FILE, frame_filename
from .speech.audio import ON_FILE_TIMELINE

SHEET_GREY = 128  # behind frames with alpha on the contact sheet
ENCODER_THREADS = 2  # frames encoded and written while the next renders (zlib and OpenEXR release the GIL)
FULL_DISK_BYTES = 1 << 20  # a disk with less free space than this, when ffmpeg stops, is full


def frame_path(directory: str | Path, number: int, fmt: str = "png") -> Path:
    """Frame `number` (1 for the first) of a sequence: shared/naming.py's rule."""
    return Path(directory) / frame_filename(number, fmt=fmt)


VIDEO_SUFFIXES = (".mp4", ".mov", ".mkv")  # containers VideoWriter writes H.264 into (a .gif or .webm it cannot)


class VideoWriter:
    """H.264 MP4 through imageio's bundled ffmpeg, optionally with a sound track
    (AAC) muxed in the same pass; odd sizes are padded by one pixel.

    The video is written under a temporary name beside `path` and renamed
    when `close()` finishes it, so an interrupted run never leaves a
    half-written MP4 under the name asked for. `abort()` removes the partial
    file. The sound starts with the first frame as its file's timeline places
    it (as lip-sync and capture time their motion); `audio_offset_s` delays it
    (positive) or cuts its start (negative). With `frame_count` it ends with
    the last frame at the latest.
    """

    def __init__(self, path: str | Path, fps: float, audio: str | Path | None = None, audio_offset_s: float = 0.0,
                 frame_count: int | None = None):
        import imageio.v2 as imageio

        self.path = Path(path)
        self._audio = audio is not None
        # Hidden, and still ending in the video's suffix, which picks ffmpeg's muxer.
        self._partial = self.path.with_name(f".{self.path.stem}.partial{self.path.suffix or '.mp4'}")
        output_params = []
        if audio is not None:
            output_params += ["-af", ",".join(sound_filters(audio_offset_s, frame_count / fps if frame_count else None))]
        sound = {"audio_path": str(audio), "audio_codec": "aac"} if audio is not None else {}
        self._writer = imageio.get_writer(str(self._partial), format="FFMPEG", fps=fps, codec="libx264", quality=8,
                                          pixelformat="yuv420p", macro_block_size=1, ffmpeg_log_level="error",
                                          output_params=output_params, **sound)

    def add(self, rgb: np.ndarray) -> None:
        height, width = rgb.shape[:2]
        if height % 2 or width % 2:
            rgb = cv2.copyMakeBorder(rgb, 0, height % 2, 0, width % 2, cv2.BORDER_REPLICATE)
        try:
            self._writer.append_data(rgb)
        except OSError as error:  # ffmpeg stopped taking frames: a broken pipe here
            raise self._failed(error.strerror or (str(error).strip().splitlines() or ["it stopped"])[0]) from None

    def _failed(self, why: str) -> EnlivenError:
        """ffmpeg could not write the video (it prints why above): a full disk said as such, not as the broken
        pipe or the empty file it leaves."""
        try:
            usage = shutil.disk_usage(self._partial.parent)
            full = usage.total > 0 and usage.free < FULL_DISK_BYTES  # (a system folder's "disk" has no size)
        except OSError:
            full = False
        return EnlivenError(f"ffmpeg could not write {self.path}: {'no space left on the disk' if full else why}")

    def close(self) -> None:
        """Finish the video and give it its name; an unusable result is removed, never named."""
        try:
            try:
                self._writer.close()
            except OSError as error:
                raise self._failed(error.strerror or str(error).strip()) from None
            # imageio does not check ffmpeg's exit status: check what it wrote (a disk full only as ffmpeg
            # finished the file shows here).
            found = _streams(self._partial) if self._partial.exists() else []
            wanted = ["Video", "Audio"] if self._audio else ["Video"]
            if found[:len(wanted)] != wanted:
                raise self._failed(f"its streams: {', '.join(found) or 'none'}")
            self._partial.replace(self.path)
        except BaseException:
            self._partial.unlink(missing_ok=True)
            raise

    def abort(self) -> None:
        """Stop writing and remove the unfinished file (the name asked for is never created)."""
        try:
            self._writer.close()
        except Exception:  # ffmpeg may already be gone (the reason for aborting); the file goes either way
            pass
        self._partial.unlink(missing_ok=True)


def sound_filters(offset_s: float, picture_s: float | None) -> list[str]:
    """ffmpeg's audio filters that put a sound under the frames: on its file's timeline, silence first where
    its track starts after the file's picture (as a camera's or a `-c copy` cut's often does; lip-sync reads
    it so, speech.audio, and capture times the picture's frames), `offset_s` later (negative: its start cut),
    and no longer than the picture, `picture_s` (it ran on past the last frame)."""
    filters = [ON_FILE_TIMELINE]
    if offset_s > 0:
        filters.append(f"adelay=delays={round(offset_s * 1000)}:all=1")
    elif offset_s < 0:
        filters += [f"atrim=start={-offset_s:.6f}", "asetpts=PTS-STARTPTS"]
    if picture_s is not None:
        filters.append(f"atrim=end={picture_s:.6f}")
    return filters


def media_header(path: Path) -> str:
    """ffmpeg's description of a media file (its streams, their rates and sizes), as it prints it on reading the
    file's header."""
    import subprocess

    import imageio_ffmpeg

    return subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-i", str(path)],
                          capture_output=True, text=True).stderr


def _streams(video: Path) -> list[str]:
    """The kinds of a media file's streams, in order ("Video", "Audio")."""
    import re

    return re.findall(r"Stream #\d+:\d+.*?: (Video|Audio):", media_header(video))


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


class FrameSink:
    """Where generated frames go: the numbered PNG or EXR sequence (when `out`
    is given), and optionally a video (with a sound track) and a contact sheet.

    Frames are encoded and written by worker threads while the caller renders
    the next one, at most a few ahead; each is written atomically, and `close()`
    (or `abort()`) waits for the last. Frames of a sequence share a BandCache,
    so what does not change between frames is deflated once.
    """

    def __init__(self, out: Path | None, frame_count: int, fps: float, video: Path | None = None,
                 contact_sheet: Path | None = None, audio: Path | None = None, audio_offset_s: float = 0.0,
                 fmt: str = "png", png_level: int = 1, threads: int = ENCODER_THREADS):
        # The folders this run makes, deepest first: a run that fails before its first frame leaves none behind.
        self._made_folders = [] if out is None else [folder for folder in (out, *out.parents) if not folder.exists()]
        if out is not None:
            out.mkdir(parents=True, exist_ok=True)
        self.out = out
        self.frame_count = frame_count
        self.fmt = fmt
        self.png_level = png_level
        self.video = VideoWriter(video, fps, audio, audio_offset_s, frame_count) if video else None
        self.sheet_path = contact_sheet
        self.sheet_numbers = set(sheet_frame_numbers(frame_count)) if contact_sheet else set()
        self.sheet_frames: list[tuple[int, np.ndarray]] = []
        self.size: tuple[int, int] | None = None
        self._bands = BandCache()
        self._threads = threads
        self._writers = ThreadPoolExecutor(threads, thread_name_prefix="enliven-frames") if out is not None else None
        self._pending: deque[Future] = deque()

    @property
    def needs_pixels(self) -> bool:
        return self.video is not None or bool(self.sheet_numbers)

    def add(self, index: int, frame: FrameLayers | np.ndarray | None, data: bytes | None = None) -> None:
        """Frame `index` (0-based): a frame's layers or RGB pixels, or its file (PNG or EXR bytes)
        already encoded (then decoded only if the video or the sheet needs pixels)."""
        from .frame_formats import decode_frame, encode_frame

        path = frame_path(self.out, index + 1, self.fmt) if self.out is not None else None
        if isinstance(frame, np.ndarray):
            frame = FrameLayers(frame)
        if data is not None:
            if path is not None:
                self._submit(write_atomic, path, data)
            frame = decode_frame(data) if self.needs_pixels or self.size is None else None
            rgb = None if frame is None else frame.rgb
        else:
            if path is not None:
                self._submit(lambda: write_atomic(path, encode_frame(frame, self.fmt, self.png_level, self._bands)))
            rgb = frame.rgb
        if rgb is None:
            return
        self.size = rgb.shape[1::-1]  # (a server's frames: read from the first, for the summary)
        if self.video:
            self.video.add(rgb)
        if index in self.sheet_numbers:
            if frame is not None and frame.alpha is not None:  # the cut-out person, over grey
                rgb = (rgb * frame.alpha[..., None] + SHEET_GREY * (1 - frame.alpha[..., None]) + 0.5).astype(np.uint8)
            self.sheet_frames.append((index + 1, rgb[::2, ::2].copy() if max(rgb.shape) > 2048 else rgb))

    def _submit(self, work, *args) -> None:
        self._pending.append(self._writers.submit(work, *args))
        # Never more than a few frames waiting: memory stays flat, and a failed write stops the run soon.
        while self._pending and (len(self._pending) > self._threads + 1 or self._pending[0].done()):
            self._pending.popleft().result()

    def _finish_writes(self) -> None:
        if self._writers is None:
            return
        try:
            while self._pending:
                self._pending.popleft().result()
        finally:
            self._writers.shutdown(wait=True)

    def close(self) -> None:
        """Finish the writes, the video and the contact sheet (after the last frame)."""
        self._finish_writes()
        if self.video:
            self.video.close()
        if self.sheet_path and self.sheet_frames:
            write_png(self.sheet_path, contact_sheet(self.sheet_frames))
        self._remove_stale_frames()

    def _remove_stale_frames(self) -> None:
        """Remove the frames that continue this run's numbering (frame N+1, N+2, ... up to the first gap) left
        in the folder by an earlier, longer run, once everything of this run is written: an image-sequence reader
        (Blender's, ffmpeg's) would play them after this run's frames. Only this run's format; never in a folder
        the Blender add-on caches frames in (it numbers them by scene frame); an interrupted run removes nothing,
        and a frame that cannot be removed is reported, not an error (this run's files are all written)."""
        if self.out is None or (self.out / FRAME_CACHE_FILE).exists():
            return
        removed, number = 0, self.frame_count + 1
        while (path := frame_path(self.out, number, self.fmt)).is_file():
            try:
                path.unlink()
                removed += 1
            except OSError as error:
                print(f"enliven: warning: could not remove {path}, left by an earlier run: {error.strerror or error}",
                      file=sys.stderr)
            number += 1
        if removed:
            print(f"enliven: removed {removed} frame(s) numbered past {self.frame_count} that an earlier run "
                  f"left in {self.out}", file=sys.stderr)

    def abort(self) -> None:
        """The run failed or was interrupted: written frames stay, the unfinished video goes, and so do the
        folders this run made if no frame was written into them."""
        wait(self._pending)
        self._pending.clear()
        if self._writers is not None:
            self._writers.shutdown(wait=True)
        if self.video:
            self.video.abort()
        for folder in self._made_folders:  # only while empty: a frame written keeps its folder
            try:
                folder.rmdir()
            except OSError:
                break
