"""Two of bench/artifacts.py's figures read on real footage, to tell an artifact from what real motion does.

    python bench/artifacts_real.py [VIDEO ...] [--size 768]

Default: every clip in ../shared/eval-data/videos (local measurement only; see
its SOURCES.md). Each clip is tracked with MediaPipe frame by frame, and a
frame of it plays the photo:

- tears (outline roughness, enliven.artifacts.outline_roughness): frame 0 is
  the photo, scaled so its longer side is --size pixels as bench/artifacts.py
  scales photos; every later frame whose head turned at least TURNED_YAW
  degrees of yaw or TURNED_PITCH of pitch from it (the bench's tear frames
  are yaw +-20 and pitch +-15) is read against it, each along its own face
  outline;
- folds (enliven.artifacts.folded_around, on real landmarks): the clip's
  most open mouth is the photo (the bench reads folds on photos whose mouth
  is open); every frame whose real lips are together (mouth openness under
  CLOSED_LIPS) is its closing, and the landmark triangles of the warp
  engine's mesh around the lower lip's inner contour that the real
  landmarks turn over (keeping artifacts.FOLD_KEEPS of their area) are
  counted, as the bench counts the rig's (there on
  the mesh's working-resolution points, here on the landmarks themselves:
  the same triangles, read in photo pixels).

Printed per clip: how many frames were read, the median and the largest
figure, against bench/artifacts.py's threshold. A threshold that real
footage passes on every frame measures the engine, not the motion.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import enliven  # noqa: F401 - first: it keeps numpy's BLAS to one thread, as the enliven command does
import imageio.v2 as imageio
import numpy as np

from enliven import artifacts as af
from enliven import landmarks as lm
from enliven.analysis import analyze_image
from enliven.capture import FaceTracker
from enliven.engines.mouth import SEAL_FROM
from enliven.engines.warp import WarpEngine
from enliven.geometry import estimate_head_pose
from enliven.images import resize_long_side

from artifacts import SILHOUETTE_BAND, THRESHOLDS

EVAL_VIDEOS = Path(__file__).resolve().parents[2] / "shared" / "eval-data" / "videos"
TURNED_YAW = 12.0  # degrees from the photo's pose: a frame this turned is read for tears
TURNED_PITCH = 10.0
CLOSED_LIPS = 0.05  # mouth openness (lip gap / mouth width) under which a real frame's lips are together


def tracked_frames(path: Path, size: int) -> list[tuple[int, np.ndarray, np.ndarray]]:
    """(frame number, frame scaled to `size`, its landmarks) for every frame where the tracker found the face."""
    tracker, found = FaceTracker(), []
    for number, frame in enumerate(imageio.get_reader(str(path), format="FFMPEG")):
        frame = resize_long_side(frame, size) if max(frame.shape[:2]) != size else frame
        points = tracker(frame)
        if points is not None:
            found.append((number, frame, points))
    return found


def tears_on_turns(frames: list[tuple[int, np.ndarray, np.ndarray]]) -> list[float]:
    """Outline roughness of every turned frame against the first (the photo)."""
    _, photo, _ = frames[0]
    subject = analyze_image(photo)
    band = max(3.0, SILHOUETTE_BAND * subject.face_width)
    start = np.array(estimate_head_pose(subject.landmarks).angles)
    outline = af.face_silhouette(subject.landmarks)
    figures = []
    for _, frame, points in frames[1:]:
        yaw, pitch, _ = np.array(estimate_head_pose(points).angles) - start
        if abs(yaw) >= TURNED_YAW or abs(pitch) >= TURNED_PITCH:
            figure = af.outline_roughness(frame, af.face_silhouette(points), photo, outline, band)
            if np.isfinite(figure):  # (NaN: the photo's outline band is flat, or the frame's empty)
                figures.append(figure)
    return figures


def folds_on_closings(frames: list[tuple[int, np.ndarray, np.ndarray]]) -> list[int]:
    """Landmark triangles of the warp engine's mesh around the lower inner lip that each real closed-lip frame
    turns over, the clip's most open mouth playing the photo (none if it never opens past SEAL_FROM)."""
    openness = [lm.mouth_openness(points) for _, _, points in frames]
    widest = int(np.argmax(openness))
    if openness[widest] <= SEAL_FROM:
        return []
    subject = analyze_image(frames[widest][1])
    engine = WarpEngine(subject)
    # Its triangles read on landmarks: the mesh's first points are its landmark_ids, in order.
    triangles = np.asarray(engine.landmark_ids)[af.triangles_around(engine, lm.LIPS_LOWER_INNER[1:-1])]
    still = af.signed_areas(subject.landmarks, triangles)
    return [int(af.turned_over(still, af.signed_areas(points, triangles), af.FOLD_KEEPS).sum())
            for (_, _, points), open_by in zip(frames, openness) if open_by < CLOSED_LIPS]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("videos", nargs="*", type=Path)
    parser.add_argument("--size", type=int, default=768)
    args = parser.parse_args()
    videos = args.videos or sorted(EVAL_VIDEOS.glob("*.mp4"))
    if not videos:
        sys.exit(f"no videos given and none in {EVAL_VIDEOS}")
    print(f"thresholds (bench/artifacts.py): tears <= {THRESHOLDS['tears'][0]}, folds <= {THRESHOLDS['folds'][0]}")
    print(f"{'clip':24} {'turned':>6} {'tears median':>12} {'max':>5}   {'closed':>6} {'folds median':>12} {'max':>4}")
    all_tears, all_folds = [], []
    for video in videos:
        frames = tracked_frames(video, args.size)
        if len(frames) < 2:
            print(f"{video.stem:24} (face found on {len(frames)} frames)")
            continue
        tears, folds = tears_on_turns(frames), folds_on_closings(frames)
        all_tears += tears
        all_folds += folds
        tear_cells = f"{np.median(tears):12.2f} {max(tears):5.2f}" if tears else f"{'-':>12} {'-':>5}"
        fold_cells = f"{np.median(folds):12.0f} {max(folds):4d}" if folds else f"{'-':>12} {'-':>4}"
        print(f"{video.stem:24} {len(tears):6d} {tear_cells}   {len(folds):6d} {fold_cells}")
    if all_tears:
        print(f"tears, all {len(all_tears)} turned frames: median {np.median(all_tears):.2f}, "
              f"90th percentile {np.percentile(all_tears, 90):.2f}, largest {max(all_tears):.2f}")
    if all_folds:
        print(f"folds, all {len(all_folds)} closed frames: median {np.median(all_folds):.0f}, largest {max(all_folds)}")


if __name__ == "__main__":
    main()
