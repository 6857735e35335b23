"""Generated frames on disk and the cache that lets Generate keep the ones
that did not change. Free of bpy (tests/test_addon_pure.py).

A frame is reused when the cache file beside the frames records, for its
file name, the key of exactly what it shows now: the photo, the engine (with
the trained model's version), the face and that frame's motion.
"""
from __future__ import annotations

import hashlib
import json
import os

import numpy as np

from .shared import naming

CACHE_FILE = naming.FRAME_CACHE_FILE
CACHE_FORMAT = "enliven-frame-cache"


def frame_filename(frame: int, fmt: str = "png") -> str:
    """Blender frame `frame`'s file: shared/naming.py's rule, numbered by the scene's frame."""
    return naming.frame_filename(frame, fmt=fmt)


def output_key(engine: str, fmt: str, alpha: bool) -> str:
    """The engine key with what the frame files hold: PNG or multilayer EXR, opaque or cut out."""
    return f"{engine}|{fmt}{'|alpha' if alpha else ''}"


def frame_keys(photo_digest: str, engine: str, face_index: int | str, motion: np.ndarray,
               with_previous: bool) -> list[str]:
    """Every frame's key; `with_previous` (frames with motion vectors) keys each on the frame before too."""
    if not with_previous:
        return [frame_key(photo_digest, engine, face_index, row) for row in motion]
    before = np.concatenate([motion[:1] * np.nan, motion[:-1]]) if len(motion) else motion
    return [frame_key(photo_digest, engine, face_index, np.concatenate([previous, row]))
            for previous, row in zip(before, motion)]


def engine_key(engine: str, checkpoint: str | None) -> str:
    """The engine as frame caches see it: a retrained model (a newer last.pt) renders different frames."""
    if checkpoint is None:
        return engine
    try:
        version = os.stat(checkpoint).st_mtime_ns
    except OSError:  # a remote backend's disk: the path is all we know
        version = "unseen"
    return f"{engine}:{checkpoint}:{version}"


def frames_reusable(engine: str, checkpoint: str | None) -> bool:
    """Whether frames already on disk may be kept: not when they came from a model this machine cannot see
    (on a remote backend's disk, or the backend's own `serve --checkpoint`), which may have been retrained
    since under the same name."""
    if checkpoint is None:
        return engine != "refine"
    return os.path.isfile(checkpoint)


def frame_key(photo_digest: str, engine: str, face_index: int | str, row: np.ndarray) -> str:
    """Cache key of one frame: the photo, the engine, the face and that frame's motion."""
    digest = hashlib.sha256(b"enliven-frame-1\0")
    digest.update(f"{photo_digest}\0{engine}\0{face_index}\0".encode())
    # Rounded to 1e-5 (far below anything visible) so float noise from
    # re-evaluating the same curves never invalidates a frame.
    digest.update(np.round(np.asarray(row, dtype=np.float64), 5).astype("<f8").tobytes())
    return digest.hexdigest()[:32]


def frames_to_render(directory: str, frames: list[int], keys: list[str], cache: dict[str, str],
                     reusable: bool = True, fmt: str = "png") -> list[int]:
    """Positions in `frames` whose file is missing or shows something else than its key says."""
    return [
        i for i, frame in enumerate(frames)
        if not reusable or cache.get(frame_filename(frame, fmt)) != keys[i]
        or not os.path.isfile(os.path.join(directory, frame_filename(frame, fmt)))
    ]


def load_cache(directory: str) -> dict[str, str]:
    """{frame file name: key} from the folder's cache file; empty when there is none or it is not ours."""
    try:
        with open(os.path.join(directory, CACHE_FILE), encoding="utf-8") as fh:
            data = json.load(fh)
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict) or data.get("format") != CACHE_FORMAT or not isinstance(data.get("frames"), dict):
        return {}
    return {str(k): str(v) for k, v in data["frames"].items()}


def save_cache(directory: str, frames: dict[str, str]) -> None:
    write_atomic(os.path.join(directory, CACHE_FILE),
                 json.dumps({"format": CACHE_FORMAT, "version": 1, "frames": frames}, indent=0).encode())


def make_folder(directory: str) -> str | None:
    """Create `directory` and the folders above it that are missing; returns the topmost one it made (None:
    it was there), for remove_empty_folders."""
    top, parent = None, os.path.abspath(directory)
    while not os.path.isdir(parent):
        top, parent = parent, os.path.dirname(parent)
        if parent == top:
            break
    os.makedirs(directory, exist_ok=True)
    return top


def remove_empty_folders(directory: str, top: str) -> None:
    """Remove `directory` and the folders above it up to `top` (those make_folder made) while they are empty."""
    current = os.path.abspath(directory)
    top = os.path.abspath(top)
    while True:
        try:
            os.rmdir(current)  # only an empty folder
        except OSError:
            return
        if current == top or os.path.dirname(current) == current:
            return
        current = os.path.dirname(current)


def write_atomic(path: str, data: bytes) -> None:
    # Temp file + rename in the same folder: readers (and a later cache
    # check) never see half a PNG.
    temporary = f"{path}.{os.getpid()}.part"
    with open(temporary, "wb") as fh:
        fh.write(data)
    os.replace(temporary, path)
