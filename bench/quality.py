"""Animation quality on real footage: self-reenactment, scored as DESIGN.md "Measuring quality" says.

    python bench/quality.py [VIDEO_DIR] [--out DIR] [--smooth LEVEL] [--no-controllability]

For every clip in VIDEO_DIR (default ../shared/eval-data/videos):
  1. frame 0 is the source photo;
  2. the whole clip is captured (enliven.capture: track, solve against frame
     0, fill gaps, smooth) and the warp engine generates every target frame
     from the captured motion;
  3. each target frame (every 6th frame from frame 6, at most 24) is scored
     against the real frame at 256x256: AKD, AED, L1, NME (bench/quality_metrics.py),
     beside two baselines: "static" (the source frame itself) and "oracle
     warp" (the source warped onto the real frame's own landmarks,
     bench/quality_oracle.py);
  4. jitter: on the clip's stillest stretches (where the real landmarks,
     averaged over a third of a second, barely move) the mean frame-to-frame
     landmark motion of the real video (MediaPipe) and of the generated one
     (the landmarks the rig places) are compared;
  5. a PNG grid per clip: real | generated | difference.
Then the controllability report (bench/controllability.py) on each clip's
source frame.

Everything is written to --out (default: a folder in the system's temporary
directory). The grids and source frames are pictures of the footage: keep
them out of the repository (this script refuses an --out inside it).

Prints the markdown report and writes it as quality.md, with quality.json.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import enliven  # noqa: F401 - first: it keeps numpy's BLAS to one thread, as the enliven command does
import cv2
import numpy as np

from enliven.analysis import analyze_image
from enliven.animator import Animator
from enliven.capture import capture_video, iter_video_frames, open_video
from enliven.filters import DEFAULT_SMOOTHING, SMOOTHING_LEVELS
from enliven.images import write_png

from quality_metrics import SCORE_SIDE, Scorer, to_score_size
from quality_oracle import OracleWarp

REPO = Path(__file__).resolve().parents[1]
DEFAULT_VIDEOS = REPO.parent / "shared" / "eval-data" / "videos"
DEFAULT_OUT = Path(tempfile.gettempdir()) / "enliven-quality"
TARGET_STEP = 6  # every 6th frame ...
TARGET_COUNT = 24  # ... at most this many, starting at frame 6
GRID_ROWS = 6
METRICS = ("NME", "L1", "AKD", "AED")
METHODS = ("static", "oracle", "captured")
# Targets from DESIGN.md / the capture issue (mean over clips, warp engine).
TARGETS = {"AKD": 3.5, "L1": 0.038, "AED": 0.30}
STILL_WINDOW_S = 1 / 3  # the averaging window that decides where the real face is still
STILL_SPEED = 0.5  # % of the pupil distance per frame: slower (after averaging) counts as still
STILL_MINIMUM = 0.1  # a clip with hardly any still frames uses its stillest tenth


def target_frames(frame_count: int) -> list[int]:
    return list(range(TARGET_STEP, frame_count, TARGET_STEP))[:TARGET_COUNT]


def read_frames(path: Path, wanted: set[int]) -> dict[int, np.ndarray]:
    reader, info = open_video(path)
    try:
        return {i: frame for i, frame in enumerate(iter_video_frames(reader, info)) if i in wanted}
    finally:
        reader.close()


def jitter(real: np.ndarray, generated: np.ndarray, fps: float) -> tuple[float, float, int]:
    """Mean frame-to-frame landmark motion (% of pupil distance) of the real and of the generated
    landmarks over the frames where the real face is still, and how many frames that is.

    "Still" is judged on the real landmarks averaged over STILL_WINDOW_S (so a
    tracker's tremble does not decide it): slower than STILL_SPEED, or the
    stillest STILL_MINIMUM of the clip when it hardly ever rests.
    """
    found = np.isfinite(real).all(axis=(1, 2))
    real, generated = real[:, :, :2], generated[:, :, :2]
    pupils = np.nanmedian(np.linalg.norm(real[:, 468] - real[:, 473], axis=1))
    window = max(3, int(round(STILL_WINDOW_S * fps)) | 1)
    kernel = np.ones(window) / window
    # The face's slow motion: landmarks averaged over the window (frames without a face are skipped).
    average = np.stack([np.convolve(series, kernel, mode="same")
                        for series in np.where(found[:, None, None], real, 0).reshape(len(real), -1).T], axis=1)
    slow_speed = np.linalg.norm(np.diff(average.reshape(real.shape), axis=0), axis=2).mean(axis=1)
    pairs = found[1:] & found[:-1]
    pairs[: window // 2] = pairs[len(pairs) - window // 2:] = False  # the average is not valid at the ends
    candidates = np.flatnonzero(pairs)
    if candidates.size == 0:
        return float("nan"), float("nan"), 0
    slow_speed = slow_speed / pupils * 100
    still = candidates[slow_speed[candidates] < STILL_SPEED]
    if still.size < STILL_MINIMUM * candidates.size:
        still = candidates[np.argsort(slow_speed[candidates])[: max(1, int(STILL_MINIMUM * candidates.size))]]
    real_motion = np.linalg.norm(real[still + 1] - real[still], axis=2).mean() / pupils * 100
    generated_motion = np.linalg.norm(generated[still + 1] - generated[still], axis=2).mean() / pupils * 100
    return float(real_motion), float(generated_motion), int(still.size)


def grid(rows: list[tuple[np.ndarray, np.ndarray]], side: int = SCORE_SIDE) -> np.ndarray:
    """real | generated | difference (amplified 3x) for each (real, generated) pair, one pair per row."""
    lines = []
    for real, generated in rows:
        real_small, generated_small = to_score_size(real), to_score_size(generated)
        difference = np.clip(3.0 * np.abs(real_small.astype(np.float32) - generated_small.astype(np.float32)), 0, 255)
        lines.append(np.concatenate([real_small, generated_small, difference.astype(np.uint8)], axis=1))
    sheet = np.concatenate(lines, axis=0)
    for column, label in enumerate(("real", "generated", "|difference| x3")):
        cv2.putText(sheet, label, (column * side + 6, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 0), 1, cv2.LINE_AA)
    return sheet


@dataclass
class SelfReenactment:
    """One clip set up for scoring: frame 0 as the photo, the whole clip captured into motion, and the real
    frames that the generated ones are compared with."""

    capture: Any  # enliven.capture's result: motion, landmarks per frame
    motion: np.ndarray  # (frames, channels)
    targets: list[int]  # the frame numbers scored
    frames: dict[int, np.ndarray]  # frame 0 and the targets, RGB
    subject: Any  # frame 0 analysed, ready for an engine


def self_reenactment(path: Path, smoothing_level: str = DEFAULT_SMOOTHING) -> SelfReenactment:
    capture = capture_video(path, reference="first", smoothing=SMOOTHING_LEVELS[smoothing_level])
    motion = capture.motion.full()
    targets = target_frames(motion.shape[0])
    frames = read_frames(path, {0, *targets})
    return SelfReenactment(capture, motion, targets, frames, analyze_image(frames[0]))


def evaluate_clip(path: Path, scorer: Scorer, out: Path, smoothing_level: str) -> dict:
    started = time.perf_counter()
    clip = self_reenactment(path, smoothing_level)
    capture, motion, targets, frames, subject = clip.capture, clip.motion, clip.targets, clip.frames, clip.subject
    animator = Animator(subject)
    oracle = OracleWarp(subject)

    scores: dict[str, list[dict[str, float]]] = {method: [] for method in METHODS}
    grid_rows = []
    shown = set(np.linspace(0, len(targets) - 1, min(GRID_ROWS, len(targets))).round().astype(int).tolist())
    for number, index in enumerate(targets):
        real = scorer.real(frames[index])
        generated = animator.render(motion[index])
        scores["captured"].append(scorer.score(real, generated))
        scores["static"].append(scorer.score(real, frames[0]))
        if np.isfinite(capture.landmarks[index]).all():
            scores["oracle"].append(scorer.score(real, oracle.render_onto(capture.landmarks[index])))
        if number in shown:
            grid_rows.append((frames[index], generated))
    write_png(out / "grids" / f"{path.stem}.png", grid(grid_rows))
    write_png(out / "sources" / f"{path.stem}.png", frames[0])

    generated_landmarks = np.stack([animator.engine.rig.targets(values) for values in motion])
    real_jitter, generated_jitter, still_frames = jitter(capture.landmarks, generated_landmarks, capture.motion.fps)
    means = {method: {metric: float(np.nanmean([s[metric] for s in rows])) if rows else float("nan")
                      for metric in METRICS} for method, rows in scores.items()}
    return {
        "clip": path.stem, "frames": int(motion.shape[0]), "fps": capture.motion.fps, "targets": len(targets),
        "missing_frames": int(sum(stop - start for start, stop in capture.missing)),
        "fit_error_px": float(np.nanmedian(capture.fit_error_px)),
        "source_matches_capture": bool(np.allclose(subject.landmarks, capture.landmarks[0], atol=1e-3)),
        "means": means, "per_frame": scores,
        "jitter": {"real": real_jitter, "generated": generated_jitter, "still_frames": still_frames},
        "seconds": time.perf_counter() - started,
    }


def markdown(results: list[dict], smoothing_level: str, controllability: str | None) -> str:
    def mean(method: str, metric: str) -> float:
        return float(np.nanmean([r["means"][method][metric] for r in results]))

    formats = {"NME": "{:.2f}", "L1": "{:.4f}", "AKD": "{:.2f}", "AED": "{:.3f}"}
    lines = [f"## Self-reenactment quality ({len(results)} clips, warp engine, smoothing '{smoothing_level}')", "",
             f"Frame 0 is the source; targets are every {TARGET_STEP}th frame from frame {TARGET_STEP} "
             f"(at most {TARGET_COUNT}); images scored at {SCORE_SIDE}x{SCORE_SIDE}. "
             "Means over clips (each clip's mean over its targets).", "",
             "| prediction | NME % (MediaPipe 478) | L1 | AKD px (dlib 68) | AED (dlib 128-d) |", "|---|---|---|---|---|"]
    names = {"static": "static: the source frame itself",
             "oracle": "oracle warp: source warped onto the real landmarks",
             "captured": "**captured**: capture -> rig -> warp engine"}
    for method in METHODS:
        cells = [formats[m].format(mean(method, m)) for m in METRICS]
        lines.append(f"| {names[method]} | " + " | ".join(cells) + " |")

    lines += ["", "### Targets", "", "| metric | target | measured | |", "|---|---|---|---|"]
    for metric, limit in TARGETS.items():
        value = mean("captured", metric)
        lines.append(f"| mean {metric} | <= {limit:g} | {formats[metric].format(value)} | "
                     f"{'pass' if value <= limit else 'FAIL'} |")
    real_jitter = float(np.nanmean([r["jitter"]["real"] for r in results]))
    generated_jitter = float(np.nanmean([r["jitter"]["generated"] for r in results]))
    calmer = sum(r["jitter"]["generated"] < r["jitter"]["real"] for r in results)
    lines.append(f"| jitter on still frames (generated < real) | every clip | {calmer}/{len(results)} clips; mean "
                 f"{generated_jitter:.2f}% vs {real_jitter:.2f}% | {'pass' if calmer == len(results) else 'FAIL'} |")

    lines += ["", "### Per clip (captured)", "",
              "| clip | frames | NME % | L1 | AKD px | AED | oracle AKD | static AKD | fit error px | "
              "jitter real % | jitter generated % |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        m = r["means"]["captured"]
        lines.append(f"| {r['clip']} | {r['frames']} | {m['NME']:.2f} | {m['L1']:.4f} | {m['AKD']:.2f} | {m['AED']:.3f} | "
                     f"{r['means']['oracle']['AKD']:.2f} | {r['means']['static']['AKD']:.2f} | {r['fit_error_px']:.2f} | "
                     f"{r['jitter']['real']:.2f} | {r['jitter']['generated']:.2f} |")
    lines += ["", "Jitter: mean frame-to-frame landmark motion in % of the pupil distance, over the frames where "
              f"the real landmarks averaged over {STILL_WINDOW_S:.2f} s move less than {STILL_SPEED}% a frame (or the "
              f"stillest {STILL_MINIMUM:.0%} of the clip if fewer; real: MediaPipe on the video; generated: the landmarks "
              "the rig places for the captured motion). Fit error: median over frames of the mean distance between "
              "the solved rig's landmarks and the tracked ones, in video pixels."]
    if controllability:
        lines += ["", "## Controllability (bench/controllability.py on each clip's source frame)", controllability]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("videos", nargs="?", type=Path, default=DEFAULT_VIDEOS)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"results folder (default {DEFAULT_OUT})")
    parser.add_argument("--smooth", choices=tuple(SMOOTHING_LEVELS), default=DEFAULT_SMOOTHING)
    parser.add_argument("--clips", nargs="*", help="only these clips (file names without extension)")
    parser.add_argument("--no-controllability", action="store_true")
    args = parser.parse_args()

    out = args.out.resolve()
    if out == REPO or REPO in out.parents:
        raise SystemExit(f"--out {out} is inside the repository; footage must not be copied there.")
    clips = sorted(p for p in args.videos.iterdir() if p.suffix.lower() in (".mp4", ".mov", ".mkv", ".avi", ".webm"))
    if args.clips:
        clips = [p for p in clips if p.stem in set(args.clips)]
    if not clips:
        raise SystemExit(f"no videos in {args.videos}")
    (out / "grids").mkdir(parents=True, exist_ok=True)
    (out / "sources").mkdir(parents=True, exist_ok=True)

    scorer = Scorer()
    results = []
    for path in clips:
        result = evaluate_clip(path, scorer, out, args.smooth)
        m = result["means"]["captured"]
        print(f"{result['clip']}: AKD {m['AKD']:.2f}  L1 {m['L1']:.4f}  AED {m['AED']:.3f}  NME {m['NME']:.2f}  "
              f"(oracle AKD {result['means']['oracle']['AKD']:.2f}, static {result['means']['static']['AKD']:.2f}; "
              f"{result['seconds']:.0f} s)", file=sys.stderr, flush=True)
        results.append(result)

    controllability = None
    if not args.no_controllability:
        import controllability as control

        captured = io.StringIO()
        with contextlib.redirect_stdout(captured):
            _run_controllability(control, [out / "sources" / f"{r['clip']}.png" for r in results])
        controllability = captured.getvalue()

    report = markdown(results, args.smooth, controllability)
    (out / "quality.md").write_text(report)
    (out / "quality.json").write_text(json.dumps(results, indent=1, default=float))
    print(report)
    print(f"wrote {out / 'quality.md'}, {out / 'quality.json'} and grids in {out / 'grids'}", file=sys.stderr)


def _run_controllability(control, photos: list[Path]) -> None:
    """bench/controllability.py's main() reads its photos from sys.argv."""
    saved = sys.argv
    sys.argv = [saved[0], *map(str, photos)]
    try:
        control.main()
    finally:
        sys.argv = saved


if __name__ == "__main__":
    main()
