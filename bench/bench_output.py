"""Frames to disk on large photos: render speed and frames/s written, for PNG and EXR.

    python bench/bench_output.py [--sizes 512 2048 4096] [--frames N] [--formats png exr] [--service]

For each size (the bundled astronaut photo upscaled to N x N) it prints:

* render: the engine alone (median ms and frames/s);
* generate: frames/s onto disk the way `enliven generate` writes them
  (FrameSink: encoding and atomic writes in worker threads beside the
  renderer), for each format, with the file size and the CPU time a frame
  costs in all threads (on a machine shared with other work the CPU time
  tells what two idle cores would do: at most 2000 / cpu-ms frames/s);
* service (with --service): frames/s onto the server's disk through a real
  `enliven serve` over ZeroMQ (`output_dir`, frames streamed back as paths).

Run it on a quiet machine: the numbers are wall-clock rates.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import enliven  # noqa: F401 - first: it keeps numpy's BLAS to one thread, as the enliven command does
import cv2
import numpy as np

from enliven.analysis import ASTRONAUT_PATH, analyze_image
from enliven.animator import Animator
from enliven.images import encode_png, load_image
from enliven.sequence import FrameSink
from enliven.shared.presets import preset_motion


def photo_of_size(side: int) -> np.ndarray:
    photo = load_image(ASTRONAUT_PATH)
    interpolation = cv2.INTER_AREA if side < photo.shape[0] else cv2.INTER_CUBIC
    return cv2.resize(photo, (side, side), interpolation=interpolation)


def showcase(frames: int) -> np.ndarray:
    motion = preset_motion("showcase", fps=24).full()
    return motion[np.linspace(0, len(motion) - 1, frames).round().astype(int)]


def render_rate(animator: Animator, motion: np.ndarray) -> float:
    animator.render(motion[len(motion) // 2])  # warm caches
    times = []
    for values in motion:
        started = time.perf_counter()
        animator.render(values)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def generate_rate(animator: Animator, motion: np.ndarray, fmt: str, out: Path,
                  png_level: int = 1) -> tuple[float, float, float]:
    """(frames/s onto disk, mean file MB, CPU ms a frame) the way `enliven generate` writes them."""
    sink = FrameSink(out, len(motion), 24, fmt=fmt, png_level=png_level)
    cpu = time.process_time()
    started = time.perf_counter()
    for index, values in enumerate(motion):
        previous = motion[index - 1] if index > 0 else None
        sink.add(index, animator.render_layers(values, previous, passes=fmt == "exr"))
    sink.close()
    elapsed = time.perf_counter() - started
    cpu_ms = (time.process_time() - cpu) * 1000 / len(motion)
    sizes = [f.stat().st_size for f in out.iterdir() if f.suffix == f".{fmt}"]
    return len(motion) / elapsed, statistics.mean(sizes) / 1e6, cpu_ms


def service_rate(photo: np.ndarray, motion: np.ndarray, fmt: str, out: Path) -> float:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from service_helpers import ServerProcess  # a real `enliven serve` subprocess

    from enliven.shared.client import Client

    with ServerProcess() as server, Client(server.address, timeout_s=60.0) as client:
        subject = client.wait(client.analyze(encode_png(photo, 0)), timeout_s=120).fields["subject"]
        client.wait(client.generate(motion[:2], 24, subject=subject, format="none"), timeout_s=120)  # warm up
        started = time.perf_counter()
        client.wait(client.generate(motion.astype(np.float32), 24, subject=subject, output_dir=str(out),
                                    format="exr" if fmt == "exr" else "none"), timeout_s=600)
        return len(motion) / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[512, 2048, 4096])
    parser.add_argument("--frames", type=int, default=48)
    parser.add_argument("--formats", nargs="+", default=["png", "exr"], choices=["png", "png0", "exr"])
    parser.add_argument("--service", action="store_true", help="also measure through a real `enliven serve`")
    args = parser.parse_args()
    print(f"CPUs: {os.cpu_count()}, OpenCV threads: {cv2.getNumThreads()}, load average {os.getloadavg()[0]:.1f}")
    motion = showcase(args.frames)
    for side in args.sizes:
        photo = photo_of_size(side)
        animator = Animator(analyze_image(photo))
        render = render_rate(animator, motion)
        print(f"{side:>5}²  render median {render * 1000:6.1f} ms = {1 / render:5.1f} frames/s", flush=True)
        for fmt in args.formats:
            with tempfile.TemporaryDirectory(prefix="enliven-bench-") as out:
                level = 0 if fmt == "png0" else 1
                rate, size_mb, cpu_ms = generate_rate(animator, motion, fmt[:3], Path(out), level)
            line = (f"        generate {fmt:<4} {rate:5.1f} frames/s to disk ({size_mb:5.1f} MB a frame, "
                    f"CPU {cpu_ms:5.0f} ms a frame)")
            if args.service:
                with tempfile.TemporaryDirectory(prefix="enliven-bench-") as out:
                    line += f"   service {service_rate(photo, motion, fmt[:3], Path(out)):5.1f} frames/s"
            print(line, flush=True)


if __name__ == "__main__":
    main()
