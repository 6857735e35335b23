"""Warp engine speed: frames per second at 512x512 and on a 2048x2048 photo.

    python bench/bench_warp.py [--frames N] [--photo PATH]

Prints analysis time, engine preparation time, the median per-frame render
time over a motion that exercises every channel (the showcase preset), PNG
encoding time (reported separately, as the engine does not write files), and
the process's peak resident memory.
"""
from __future__ import annotations

import argparse
import resource
import statistics
import time

import enliven  # noqa: F401 - first: it keeps numpy's BLAS to one thread, as the enliven command does
import cv2
import numpy as np

from enliven.analysis import ASTRONAUT_PATH, analyze_image
from enliven.animator import Animator
from enliven.images import encode_png, load_image
from enliven.shared.presets import preset_motion


def measure(rgb: np.ndarray, label: str, frames: int) -> None:
    started = time.perf_counter()
    subject = analyze_image(rgb)
    analysis_s = time.perf_counter() - started
    started = time.perf_counter()
    animator = Animator(subject)
    prepare_s = time.perf_counter() - started
    motion = preset_motion("showcase", fps=24).full()
    motion = motion[np.linspace(0, len(motion) - 1, frames).round().astype(int)]
    animator.render(motion[len(motion) // 2])  # warm caches
    render_times, png_times = [], []
    for values in motion:
        started = time.perf_counter()
        frame = animator.render(values)
        render_times.append(time.perf_counter() - started)
        started = time.perf_counter()
        encode_png(frame)
        png_times.append(time.perf_counter() - started)
    render = statistics.median(render_times)
    p95 = float(np.percentile(render_times, 95))
    png = statistics.median(png_times)
    height, width = rgb.shape[:2]
    print(f"{label:<10} {width}x{height}  analysis {analysis_s * 1000:7.1f} ms  prepare {prepare_s * 1000:6.1f} ms  "
          f"render median {render * 1000:6.2f} ms = {1 / render:6.1f} frames/s (p95 {p95 * 1000:.2f} ms)  "
          f"PNG encode median {png * 1000:6.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=200)
    parser.add_argument("--photo", default=str(ASTRONAUT_PATH))
    args = parser.parse_args()
    photo = load_image(args.photo)
    print(f"OpenCV threads: {cv2.getNumThreads()}, CPUs: {cv2.getNumberOfCPUs()}")
    small = cv2.resize(photo, (512, 512), interpolation=cv2.INTER_AREA)
    large = cv2.resize(photo, (2048, 2048), interpolation=cv2.INTER_CUBIC)
    measure(small, "512", args.frames)
    measure(large, "2048", args.frames)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS {peak_mb:.0f} MB")


if __name__ == "__main__":
    main()
