"""`enliven prepare`: talking-face videos -> a training dataset for the refine engine.

For every clip in a folder:
  1. track the face's 478 landmarks in every frame (enliven.capture's
     FaceTracker: the same detector and mesh that photo analysis uses);
  2. choose ONE square crop for the whole clip (around the head region of the
     clip's median face, enlarged so the moving head stays inside). The crop is
     fixed per clip, not re-aligned per frame: the head motion between frames
     is exactly what the warp engine must reproduce, so it has to stay in the data;
  3. resample every frame with a face to `side` x `side`, keep its landmarks in
     crop pixels and its person mask (MediaPipe selfie segmentation).

On disk (all numpy .npy, so the big arrays open memory-mapped):

    DATASET_DIR/dataset.json          the clips, what was skipped and why
    DATASET_DIR/clips/NAME/frames.npy     (N, side, side, 3) uint8 RGB
    DATASET_DIR/clips/NAME/landmarks.npy  (N, 478, 3) float32 crop pixels
    DATASET_DIR/clips/NAME/masks.npy      (N, side, side) uint8 person mask 0..255
    DATASET_DIR/clips/NAME/frame_numbers.npy  (N,) int32 frame number in the video
    DATASET_DIR/clips/NAME/clip.json      fps, crop box, source size

Each clip is written to a temporary folder and renamed when complete, so an
interrupted run resumes where it stopped: finished clips are skipped.
"""
from __future__ import annotations

import errno
import json
import os
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..arguments import check_output_folder
from ..shared import protocol
from ..errors import EnlivenError

VIDEO_SUFFIXES = (".mp4", ".mov", ".mkv", ".avi", ".webm")
DEFAULT_SIDE = 256
CROP_ENLARGE = 1.2  # the clip's crop side over the head region of its median face
MIN_FACE_FRAMES = 4  # a clip with fewer frames with a face is skipped
DATASET_FORMAT = 1

# Called as progress(clip name, frames done, total frames or None).
PrepareProgress = Callable[[str, int, int | None], None]


class DatasetError(EnlivenError):
    """A dataset folder that is missing, empty or not made by `enliven prepare`."""

    code = protocol.E_BAD_DATASET
    exit_code = 2


@dataclass(frozen=True)
class ClipArrays:
    """One prepared clip in memory (or memory-mapped): frames, landmarks and masks in crop pixels."""

    frames: np.ndarray  # (N, side, side, 3) uint8
    landmarks: np.ndarray  # (N, 478, 3) float32
    masks: np.ndarray  # (N, side, side) uint8
    frame_numbers: np.ndarray  # (N,) int32
    fps: float


def list_videos(folder: Path) -> list[Path]:
    folder = Path(folder)
    if not folder.is_dir():
        raise DatasetError(f"'{folder}' is not a folder of videos.")
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in VIDEO_SUFFIXES)


def prepare_dataset(videos_dir: Path, out: Path, side: int = DEFAULT_SIDE, every: int = 1,
                    progress: PrepareProgress | None = None, log: Callable[[str], None] = print) -> dict:
    """Prepare every clip of `videos_dir` into `out` (resumable). Returns the dataset index (dataset.json)."""
    videos = list_videos(videos_dir)
    if not videos:
        raise DatasetError(f"No videos ({', '.join(VIDEO_SUFFIXES)}) in '{videos_dir}'.")
    by_name: dict[str, Path] = {}
    for path in videos:  # a clip is named by its file's stem: take.mp4 and take.mov were one clip, the second lost
        if path.stem in by_name:
            raise DatasetError(f"'{by_name[path.stem].name}' and '{path.name}' would both be the clip "
                               f"'{path.stem}': rename one of them.")
        by_name[path.stem] = path
    out = Path(out)
    (out / "clips").mkdir(parents=True, exist_ok=True)
    index = _read_index(out) or {"format": DATASET_FORMAT, "side": side, "every": every, "clips": [], "skipped": {}}
    if index["side"] != side or index.get("every", 1) != every:
        raise DatasetError(f"'{out}' was prepared with --side {index['side']} --every {index.get('every', 1)}; "
                           "use the same settings to resume, or another --out.")
    skipped_as = index.setdefault("skipped_files", {})  # clip -> [size, mtime_ns] of the file it was skipped as
    for path in videos:
        name = path.stem
        if name in index["clips"]:
            log(f"{name}: already prepared, skipping")
            continue
        if name in index["skipped"]:
            if skipped_as.get(name) == _file_signature(path):
                log(f"{name}: skipped before ({index['skipped'][name]}), and unchanged since")
                continue
            # Repaired or replaced since (it was never tried again, and said to be "already prepared").
            log(f"{name}: skipped before ({index['skipped'][name]}); the file has changed: trying it again")
            del index["skipped"][name]
        try:
            clip = prepare_clip(path, side, every, progress)
        except EnlivenError as error:  # unreadable video, too few frames: say so and go on with the others
            _skip(index, path, error.message)
            log(f"{name}: skipped: {error.message}")
            _write_index(out, index)
            continue
        if clip is None:
            _skip(index, path, "no face found")
            log(f"{name}: skipped: no face found in at least {MIN_FACE_FRAMES} frames")
        else:
            arrays, crop = clip
            write_clip(out, name, arrays, extra={"video": str(path), "crop_box": crop})
            index["clips"].append(name)
            log(f"{name}: {len(arrays.frames)} frames")
        _write_index(out, index)
    return index


def _skip(index: dict, path: Path, reason: str) -> None:
    index["skipped"][path.stem] = reason
    index.setdefault("skipped_files", {})[path.stem] = _file_signature(path)


def _file_signature(path: Path) -> list[int]:
    """[size, modification time]: a skipped clip whose file no longer matches it is tried again."""
    stat = path.stat()
    return [stat.st_size, stat.st_mtime_ns]


def prepare_clip(path: Path, side: int, every: int = 1,
                 progress: PrepareProgress | None = None) -> tuple[ClipArrays, list[float]] | None:
    """Track, crop and segment one video; None when too few frames show a face."""
    from ..analysis import person_mask, square_crop
    from ..capture import FaceTracker, iter_video_frames, open_video

    # Pass 1: landmarks of every kept frame (frames are not held: a long clip would not fit in memory).
    reader, info = open_video(path)
    tracker = FaceTracker()
    found: dict[int, np.ndarray] = {}
    looked_at = 0  # frames tracked: every `every`th
    try:
        for number, frame in enumerate(iter_video_frames(reader, info)):
            if number % every == 0:
                looked_at += 1
                points = tracker(frame)
                if points is not None:
                    found[number] = points
            if progress:
                progress(f"{path.stem} tracking", number + 1, info.frame_count_estimate)
    finally:
        reader.close()
    if looked_at < MIN_FACE_FRAMES:  # (it said "no face found" of a clip whose every frame has one)
        raise DatasetError(f"only {looked_at} frames; at least {MIN_FACE_FRAMES} are needed" if every == 1 else
                           f"only {looked_at} of its frames kept with --every {every}; at least {MIN_FACE_FRAMES} "
                           "are needed: use a smaller --every")
    if len(found) < MIN_FACE_FRAMES:
        return None

    centre, crop_side = clip_crop(np.stack(list(found.values())))
    frames, masks, points_crop, numbers = [], [], [], []
    reader, info = open_video(path)
    try:
        for number, frame in enumerate(iter_video_frames(reader, info)):
            if number not in found:
                continue
            crop, to_photo = square_crop(frame, centre, crop_side, side)
            frames.append(crop)
            masks.append(np.round(person_mask(crop, (0, 0, side, side)) * 255).clip(0, 255).astype(np.uint8))
            scale = to_photo[0, 0]
            points = found[number].astype(np.float64).copy()
            points[:, 0] = (points[:, 0] - to_photo[0, 2]) / scale
            points[:, 1] = (points[:, 1] - to_photo[1, 2]) / scale
            points[:, 2] /= scale
            points_crop.append(points.astype(np.float32))
            numbers.append(number)
            if progress:
                progress(f"{path.stem} cropping", len(frames), len(found))
    finally:
        reader.close()
    arrays = ClipArrays(np.stack(frames), np.stack(points_crop), np.stack(masks), np.array(numbers, np.int32), info.fps)
    box = [centre[0] - crop_side / 2, centre[1] - crop_side / 2, centre[0] + crop_side / 2, centre[1] + crop_side / 2]
    return arrays, [round(float(v), 2) for v in box]


def clip_crop(landmarks: np.ndarray) -> tuple[tuple[float, float], float]:
    """(centre, side) of the clip's square crop: the head region of the median face, enlarged, square."""
    from ..analysis import head_region_box

    median = np.median(landmarks, axis=0)
    # The head region box in an unbounded "photo", so the crop stays square at the video's border
    # (square_crop pads with edge pixels).
    x0, y0, x1, y1 = head_region_box(median, (10**9, 10**9))
    side = CROP_ENLARGE * max(x1 - x0, y1 - y0)
    return ((x0 + x1) / 2, (y0 + y1) / 2), side


def write_clip(out: Path, name: str, arrays: ClipArrays, extra: dict | None = None) -> Path:
    """Write one clip atomically (a temporary folder renamed into place)."""
    final = Path(out) / "clips" / name
    partial = Path(out) / "clips" / f".{name}.partial"
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    stored = {"frames.npy": (arrays.frames, np.uint8), "landmarks.npy": (arrays.landmarks, np.float32),
              "masks.npy": (arrays.masks, np.uint8), "frame_numbers.npy": (arrays.frame_numbers, np.int32)}
    try:
        for file_name, (array, dtype) in stored.items():
            try:
                np.save(partial / file_name, np.ascontiguousarray(array, dtype=dtype))
            except OSError as error:
                if error.filename or error.errno:
                    raise
                # numpy's short write on a full disk names neither the file nor the cause: "45465600 requested
                # and 5119872 written"
                raise OSError(errno.ENOSPC, f"{os.strerror(errno.ENOSPC)} (or over the file size limit): {error}",
                              str(partial / file_name)) from None
        meta = {"name": name, "frames": int(len(arrays.frames)), "side": int(arrays.frames.shape[1]),
                "fps": float(arrays.fps), **(extra or {})}
        (partial / "clip.json").write_text(json.dumps(meta, indent=1))
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)  # (a clip half written frees its disk space)
        raise
    shutil.rmtree(final, ignore_errors=True)
    os.replace(partial, final)
    return final


def add_clip(out: Path, name: str, arrays: ClipArrays, extra: dict | None = None) -> Path:
    """Write a clip made some other way (e.g. `clip_from_animation`) into a dataset, creating it if needed."""
    out = Path(out)
    side = int(arrays.frames.shape[1])
    index = _read_index(out) or {"format": DATASET_FORMAT, "side": side, "every": 1, "clips": [], "skipped": {}}
    if index["side"] != side:
        raise DatasetError(f"'{out}' holds {index['side']} px frames; this clip's are {side} px.")
    folder = write_clip(out, name, arrays, extra)
    if name not in index["clips"]:
        index["clips"].append(name)
    _write_index(out, index)
    return folder


def load_clip(dataset_dir: Path, name: str) -> ClipArrays:
    """A prepared clip, its big arrays memory-mapped."""
    folder = Path(dataset_dir) / "clips" / name
    try:
        meta = json.loads((folder / "clip.json").read_text())
        return ClipArrays(np.load(folder / "frames.npy", mmap_mode="r"), np.load(folder / "landmarks.npy", mmap_mode="r"),
                          np.load(folder / "masks.npy", mmap_mode="r"), np.load(folder / "frame_numbers.npy"),
                          float(meta["fps"]))
    except (OSError, ValueError, KeyError) as error:
        raise DatasetError(f"Clip '{name}' in '{dataset_dir}' is damaged ({error}); delete its folder and "
                           "run `enliven prepare` again to redo it.") from None


def read_index(dataset_dir: Path) -> dict:
    index = _read_index(Path(dataset_dir))
    if index is None:
        raise DatasetError(f"'{dataset_dir}' is not a dataset made by `enliven prepare` (no dataset.json).")
    if not index["clips"]:
        raise DatasetError(f"The dataset '{dataset_dir}' has no clips with a face.")
    return index


def _read_index(out: Path) -> dict | None:
    path = out / "dataset.json"
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text())
    except ValueError:
        raise DatasetError(f"'{path}' is damaged; delete it to start the dataset again.") from None


def _write_index(out: Path, index: dict) -> None:
    partial = out / "dataset.json.partial"
    partial.write_text(json.dumps(index, indent=1))
    os.replace(partial, out / "dataset.json")


# ---------------------------------------------------------------- clips made from a photo


def clip_from_animation(subject, motion: np.ndarray, side: int, fps: float = 25.0) -> ClipArrays:
    """A training clip made by animating one photo with the warp engine, with the rig's exact landmarks.

    For smoke tests and for adding still portraits to a dataset: the frames are
    the photo's head region (the same square crop rule as video clips), the
    landmarks are where the rig put them, the mask is the photo's person mask.
    """
    from ..analysis import square_crop
    from ..engines.warp import WarpEngine

    engine = WarpEngine(subject)
    median = np.stack([engine.rig.targets(values) for values in motion])
    centre, crop_side = clip_crop(median)
    full_mask = np.zeros(subject.image.shape[:2], np.float32)
    x0, y0, x1, y1 = subject.head_region
    full_mask[y0:y1, x0:x1] = subject.mask
    mask_crop, _ = square_crop(full_mask, centre, crop_side, side)
    frames, points_crop = [], []
    for values, points in zip(motion, median):
        crop, to_photo = square_crop(engine.render(values), centre, crop_side, side)
        scale = to_photo[0, 0]
        moved = points.copy()
        moved[:, 0] = (moved[:, 0] - to_photo[0, 2]) / scale
        moved[:, 1] = (moved[:, 1] - to_photo[1, 2]) / scale
        moved[:, 2] /= scale
        frames.append(crop)
        points_crop.append(moved.astype(np.float32))
    masks = np.repeat(np.round(mask_crop * 255).clip(0, 255).astype(np.uint8)[None], len(frames), axis=0)
    return ClipArrays(np.stack(frames), np.stack(points_crop), masks, np.arange(len(frames), dtype=np.int32), fps)


# ---------------------------------------------------------------- command line


def run_prepare(args) -> int:
    check_output_folder(args.out)  # before any work: a path part that is a file, a read-only folder
    from tqdm import tqdm

    bars: dict[str, tqdm] = {}

    def progress(stage: str, done: int, total: int | None) -> None:
        if stage not in bars:
            for bar in bars.values():
                bar.close()
            bars.clear()
            bars[stage] = tqdm(total=total, unit="frame", desc=stage, file=sys.stderr, dynamic_ncols=True, leave=False)
        bars[stage].update(done - bars[stage].n)

    try:
        index = prepare_dataset(args.videos, args.out, side=args.side, every=args.every, progress=progress,
                                log=lambda line: tqdm.write(f"enliven prepare: {line}", file=sys.stderr))
    finally:  # an error's line starts a line of its own, not the end of a progress bar's
        for bar in bars.values():
            bar.close()
    print(f"wrote {args.out}: {len(index['clips'])} clip(s), {len(index['skipped'])} skipped")
    if not index["clips"]:  # nothing to train on: say so with an exit code, not "0 clip(s)" and success
        raise DatasetError(f"no clip in '{args.videos}' could be used ({len(index['skipped'])} skipped, each with its "
                           "reason above): the dataset is empty.")
    return 0
