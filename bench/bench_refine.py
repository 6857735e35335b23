"""The refine engine's benchmark: held-out quality against the warp engine, training and inference speed.

    python bench/bench_refine.py quality --checkpoint RUN/last.pt [--clips d0 d12] [--videos DIR]
    python bench/bench_refine.py train-speed [--dataset DATASET_DIR] [--config small] [--steps 20]
    python bench/bench_refine.py inference --checkpoint RUN/last.pt [--frames 20]

quality: self-reenactment exactly as bench/quality.py scores it (frame 0 is the
  source; the clip's captured motion drives the engine; every 6th frame from
  frame 6, at most 24, scored at 256x256 with AKD / AED / L1 / NME from
  bench/quality_metrics.py), for the warp engine and the refine engine on
  the same captured motion. Use clips the checkpoint was NOT trained on
  (RefineConfig.holdout / `enliven train --holdout`).
train-speed: training steps per second of a config on this machine: the
  optimisation step alone on a fixed batch, and end to end with data loading.
inference: frames per second of the refine and warp engines on the
  astronaut photo at 256 and 512 pixels (median of per-frame times).

Torch runs on one thread unless --threads says otherwise (the numbers are
comparable between runs on a shared machine, not the fastest possible).
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np


def _threads(count: int) -> None:
    import torch

    torch.set_num_threads(count)


# ---------------------------------------------------------------- quality on held-out clips


def quality(args: argparse.Namespace) -> dict:
    from enliven.engines.refine import RefineEngine
    from enliven.engines.warp import WarpEngine

    from quality import DEFAULT_VIDEOS, METRICS, self_reenactment
    from quality_metrics import Scorer

    videos = args.videos or DEFAULT_VIDEOS
    clips = sorted(p for p in Path(videos).iterdir() if p.stem in set(args.clips))
    if not clips:
        raise SystemExit(f"none of {args.clips} in {videos}")
    scorer = Scorer()
    results = {}
    for path in clips:
        started = time.perf_counter()
        clip = self_reenactment(path)
        engines = {"warp": WarpEngine(clip.subject),
                   "refine": RefineEngine(clip.subject, checkpoint=args.checkpoint, device="cpu")}
        scores = {name: [] for name in engines}
        for index in clip.targets:
            real = scorer.real(clip.frames[index])
            for name, engine in engines.items():
                scores[name].append(scorer.score(real, engine.render(clip.motion[index])))
        means = {name: {m: float(np.nanmean([s[m] for s in rows])) for m in METRICS} for name, rows in scores.items()}
        results[path.stem] = {"targets": len(clip.targets), "means": means, "per_frame": scores}
        print(f"{path.stem}: " + "; ".join(f"{name} L1 {m['L1']:.4f} AKD {m['AKD']:.2f} AED {m['AED']:.3f} "
                                             f"NME {m['NME']:.2f}" for name, m in means.items())
              + f" ({time.perf_counter() - started:.0f} s)", file=sys.stderr, flush=True)
    overall = {name: {m: float(np.mean([r["means"][name][m] for r in results.values()])) for m in METRICS}
               for name in ("warp", "refine")}
    lines = [f"## Refine vs warp on held-out clips ({', '.join(results)}); checkpoint {args.checkpoint}", "",
             "| clip | engine | L1 | AKD px | AED | NME % |", "|---|---|---|---|---|---|"]
    for clip, result in results.items():
        for name in ("warp", "refine"):
            m = result["means"][name]
            lines.append(f"| {clip} | {name} | {m['L1']:.4f} | {m['AKD']:.2f} | {m['AED']:.3f} | {m['NME']:.2f} |")
    for name in ("warp", "refine"):
        m = overall[name]
        lines.append(f"| **mean** | {name} | {m['L1']:.4f} | {m['AKD']:.2f} | {m['AED']:.3f} | {m['NME']:.2f} |")
    print("\n".join(lines))
    return {"clips": results, "mean": overall}


# ---------------------------------------------------------------- training speed


def synthetic_dataset(folder: Path) -> Path:
    """A small dataset from the astronaut animated by the warp engine (when no prepared dataset is given)."""
    from enliven.analysis import ASTRONAUT_PATH, analyze_image
    from enliven.images import load_image
    from enliven.neural.prepare import add_clip, clip_from_animation
    from enliven.shared.channels import CHANNEL_INDEX, default_vector

    subject = analyze_image(load_image(ASTRONAUT_PATH))
    motion = []
    for t in np.linspace(0, 1, 12):
        values = default_vector().astype(np.float64)
        values[CHANNEL_INDEX["jaw_open"]] = 0.6 * t
        values[CHANNEL_INDEX["head_yaw"]] = 15 * t
        motion.append(values)
    add_clip(folder, "astronaut", clip_from_animation(subject, motion, side=256))
    return folder


def train_speed(args: argparse.Namespace) -> dict:
    from enliven.neural.config import load_config
    from enliven.neural.dataset import ExampleKey, collate_pairs
    from enliven.neural.train import Trainer

    config = load_config(args.config)
    with tempfile.TemporaryDirectory() as scratch:
        dataset = args.dataset or synthetic_dataset(Path(scratch) / "dataset")
        results = {}
        for phase, gan_start in (("reconstruction", 10**9), ("adversarial", 0)):
            run_config = replace(config, gan_start_step=gan_start, steps=args.steps, workers=0, holdout=(),
                                 sample_every=10**9, checkpoint_every=10**9, log_every=10**9)
            trainer = Trainer(dataset, Path(scratch) / f"run-{phase}", run_config, show_progress_bar=False)
            batch = collate_pairs([trainer.dataset[ExampleKey(0, 0, s)] for s in range(config.batch_pairs)])
            trainer.train_step(batch)  # warm-up
            for name in trainer.dataset.names:  # steady state: every source's warp engine is built (and cached)
                for source in trainer.dataset.sources[name]:
                    trainer.dataset.engine(name, int(source))
            times = []
            for _ in range(args.steps):
                started = time.perf_counter()
                trainer.train_step(batch)
                times.append(time.perf_counter() - started)
            started = time.perf_counter()
            data_times = []
            for step in range(args.steps):
                begun = time.perf_counter()
                collate_pairs([trainer.dataset[ExampleKey(1000 + step, 0, s)] for s in range(config.batch_pairs)])
                data_times.append(time.perf_counter() - begun)
            step_s, data_s = float(np.median(times)), float(np.median(data_times))
            results[phase] = {"model_steps_per_s": 1 / step_s, "data_batches_per_s": 1 / data_s,
                              "end_to_end_steps_per_s_one_process": 1 / (step_s + data_s)}
            print(f"{config.preset} ({config.side}px, batch {2 * config.batch_pairs} frames), {phase}: "
                  f"model {1 / step_s:.2f} steps/s, data {1 / data_s:.2f} batches/s, "
                  f"end to end (no worker) {1 / (step_s + data_s):.2f} steps/s", flush=True)
    return results


# ---------------------------------------------------------------- inference speed


def inference(args: argparse.Namespace) -> dict:
    import cv2

    from enliven.analysis import ASTRONAUT_PATH, analyze_image
    from enliven.engines.refine import RefineEngine
    from enliven.engines.warp import WarpEngine
    from enliven.images import load_image
    from enliven.shared.channels import CHANNEL_INDEX, default_vector

    photo = load_image(ASTRONAUT_PATH)
    results = {}
    for side in (256, 512):
        subject = analyze_image(cv2.resize(photo, (side, side), interpolation=cv2.INTER_AREA))
        engines = {"warp": WarpEngine(subject), "refine": RefineEngine(subject, checkpoint=args.checkpoint, device="cpu")}
        for name, engine in engines.items():
            times = []
            for frame in range(args.frames + 2):
                values = default_vector().astype(np.float64)
                t = frame / max(args.frames, 1)
                values[CHANNEL_INDEX["jaw_open"]] = 0.5 * t
                values[CHANNEL_INDEX["head_yaw"]] = 10 * np.sin(6 * t)
                started = time.perf_counter()
                engine.render(values)
                times.append(time.perf_counter() - started)
            median = float(np.median(times[2:]))
            results[f"{name}@{side}"] = 1 / median
            print(f"{name} engine at {side}x{side}: {1 / median:.1f} frames/s ({median * 1000:.0f} ms/frame)", flush=True)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", type=Path, help="also write the numbers as JSON")
    commands = parser.add_subparsers(dest="command", required=True)
    q = commands.add_parser("quality")
    q.add_argument("--checkpoint", type=Path, required=True)
    q.add_argument("--clips", nargs="+", default=["LivePortrait__d0", "LivePortrait__d12"])
    q.add_argument("--videos", type=Path)
    t = commands.add_parser("train-speed")
    t.add_argument("--dataset", type=Path)
    t.add_argument("--config", default="small")
    t.add_argument("--steps", type=int, default=10)
    i = commands.add_parser("inference")
    i.add_argument("--checkpoint", type=Path, required=True)
    i.add_argument("--frames", type=int, default=20)
    args = parser.parse_args()
    _threads(args.threads)
    result = {"quality": quality, "train-speed": train_speed, "inference": inference}[args.command](args)
    if args.json:
        args.json.write_text(json.dumps(result, indent=1, default=float))


if __name__ == "__main__":
    main()
