"""Can a mouth that is open in the photo close? Self-reenactment from an open-mouth frame (issue #13).

    python bench/mouth_close.py [VIDEO ...] [--frames 120] [--step 2] [--crops DIR] [--json out.json]

For every clip (default ../shared/eval-data/videos/*): the whole clip is
tracked; the photo is the first frame whose mouth is open (inner-lip gap over
0.2 of the mouth width); the clip is captured against that frame (the rig's
channels are relative to the photo) and the warp engine renders the next
--frames frames (every --step-th). MediaPipe runs again on every generated
frame. Printed per clip, with the mouth openness as lip gap / mouth width:

- r: Pearson correlation between the generated and the real openness;
- min real / min generated: the smallest openness reached (0 = sealed lips);
- closed: of the real frames with sealed lips (openness < 0.05), the share
  whose generated frame is sealed too;
- rig: the smallest openness of the rig's own target landmarks (no
  re-detection), to tell the rig from the pixels.

--crops writes the mouth of the photo, of the generated frame with the
smallest real opening and of that real frame side by side, outside the
repository (the footage stays out of it).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import enliven  # noqa: F401 - first: it keeps numpy's BLAS to one thread, as the enliven command does
import cv2
import numpy as np

from enliven import landmarks as lm
from enliven.analysis import analyze_image
from enliven.capture import FaceTracker, iter_video_frames, motion_from_landmarks, open_video
from enliven.engines.warp import WarpEngine

REPO = Path(__file__).resolve().parents[1]
DEFAULT_VIDEOS = REPO.parent / "shared" / "eval-data" / "videos"
OPEN = 0.2  # openness of the photo's mouth (the "open mouth")
SEALED = 0.05  # openness under which the lips touch


def read_video(path: Path) -> tuple[list[np.ndarray], float]:
    reader, info = open_video(path)
    try:
        return list(iter_video_frames(reader, info)), info.fps
    finally:
        reader.close()


def openness(points: np.ndarray | None) -> float:
    return float("nan") if points is None or not np.isfinite(points).all() else lm.mouth_openness(points)


def mouth_crop(rgb: np.ndarray, points: np.ndarray, side: int = 160) -> np.ndarray:
    centre = points[list(lm.LIPS_UPPER_OUTER + lm.LIPS_LOWER_OUTER), :2].mean(axis=0)
    width = float(np.linalg.norm(points[lm.MOUTH_LEFT_CORNER, :2] - points[lm.MOUTH_RIGHT_CORNER, :2]))
    half = max(int(width), 8)
    x, y = int(centre[0]), int(centre[1])
    padded = cv2.copyMakeBorder(rgb, half, half, half, half, cv2.BORDER_CONSTANT)
    crop = padded[y:y + 2 * half, x:x + 2 * half]
    return cv2.resize(crop, (side, side), interpolation=cv2.INTER_AREA)


def measure_clip(path: Path, frame_count: int, step: int, crops: Path | None) -> dict | None:
    frames, fps = read_video(path)
    tracker = FaceTracker()
    real = np.stack([p if (p := tracker(frame)) is not None else np.full((lm.COUNT, 3), np.nan) for frame in frames])
    real_open = np.array([openness(p) for p in real])
    candidates = np.flatnonzero(real_open > OPEN)
    if candidates.size == 0:
        return None
    photo_index = int(candidates[0])
    capture = motion_from_landmarks(real, fps, reference=photo_index)
    values = capture.motion.full()
    subject = analyze_image(frames[photo_index])
    engine = WarpEngine(subject)
    wanted = list(range(photo_index + step, min(len(frames), photo_index + 1 + frame_count * step), step))
    regenerated, generated_open, rig_open = FaceTracker(), [], []
    rendered = {}
    for index in wanted:
        frame = engine.render(values[index])
        rendered[index] = frame
        generated_open.append(openness(regenerated(frame)))
        rig_open.append(max(lm.signed_lip_gap(engine.rig.targets(values[index])), 0.0))
    generated_open, rig_open = np.array(generated_open), np.array(rig_open)
    real_here = real_open[wanted]
    both = np.isfinite(real_here) & np.isfinite(generated_open)
    sealed = both & (real_here < SEALED)
    result = {
        "clip": path.stem.replace("LivePortrait__", ""), "photo_frame": photo_index,
        "photo_open": round(float(real_open[photo_index]), 3), "frames": int(both.sum()),
        "r": round(float(np.corrcoef(real_here[both], generated_open[both])[0, 1]), 3),
        "min_real": round(float(np.nanmin(real_here)), 3), "min_generated": round(float(np.nanmin(generated_open)), 3),
        "min_rig": round(float(rig_open.min()), 3),
        "sealed_frames": int(sealed.sum()),
        "closed": round(float((generated_open[sealed] < SEALED).mean()), 3) if sealed.any() else None,
    }
    if crops is not None:
        crops.mkdir(parents=True, exist_ok=True)
        shut = wanted[int(np.nanargmin(np.where(both, real_here, np.inf)))]
        row = np.hstack([mouth_crop(frames[photo_index], real[photo_index]),
                         mouth_crop(rendered[shut], real[shut]), mouth_crop(frames[shut], real[shut])])
        cv2.imwrite(str(crops / f"{result['clip']}_mouth.png"), cv2.cvtColor(row, cv2.COLOR_RGB2BGR))
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("videos", nargs="*", type=Path)
    parser.add_argument("--frames", type=int, default=120, help="generated frames per clip")
    parser.add_argument("--step", type=int, default=2, help="every STEP-th frame after the photo")
    parser.add_argument("--crops", type=Path, help="folder for mouth crops (outside the repository)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    if args.crops is not None and REPO in args.crops.resolve().parents:
        sys.exit("--crops shows evaluation footage: write it outside the repository")
    videos = args.videos or sorted(DEFAULT_VIDEOS.glob("*.mp4"))
    results = []
    print("| clip | photo frame (openness) | r | min real | min generated | min rig | sealed real frames closed |")
    print("|---|---|---|---|---|---|---|")
    for path in videos:
        result = measure_clip(path, args.frames, args.step, args.crops)
        if result is None:
            print(f"| {path.stem} | no open-mouth frame | | | | | |", flush=True)
            continue
        results.append(result)
        closed = "–" if result["closed"] is None else f"{result['closed']:.0%} of {result['sealed_frames']}"
        print(f"| {result['clip']} | {result['photo_frame']} ({result['photo_open']:.2f}) | {result['r']:.2f} | "
              f"{result['min_real']:.3f} | {result['min_generated']:.3f} | {result['min_rig']:.3f} | {closed} |",
              flush=True)
    if results:
        print(f"\nmean r {np.mean([r['r'] for r in results]):.2f}, "
              f"min generated openness {min(r['min_generated'] for r in results):.3f} "
              f"(worst clip's min {max(r['min_generated'] for r in results):.3f})")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
