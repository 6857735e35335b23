"""Several faces at once: every face of a group photo idling, frames per second of the renderer.

    python bench/bench_faces.py PHOTO [--frames N] [--preset idle-alive] [--faces all|0,2,...]

Prints how many faces were found and analysed (and how long that took), the
engines' preparation time, then the median and p95 time of a frame with every
face moving by its own idle-alive (each face its own seed), as frames/s, and
per face, rendered in this process (a frame's faces on threads, as a preview
is); then the frames/s of the same sequence rendered as `enliven generate`
renders it, whole frames side by side in worker processes (frame_workers;
`--workers`, default one per core), counted once every worker has delivered
its first frames. The renderer alone: no PNG encoding (bench_output.py measures
that). On dlib's bald_guys.jpg (13 faces, 1986x1545) the goal is at least 10
frames/s.
"""
from __future__ import annotations

import argparse
import os
import resource
import statistics
import time

import enliven  # noqa: F401 - first: it keeps numpy's BLAS to one thread, as the enliven command does
import cv2
import numpy as np

from enliven.analysis import analyze_faces
from enliven.frame_workers import MAX_WORKERS, FrameWorkers, frame_request, usable_cores
from enliven.group import GroupAnimator
from enliven.images import load_image
from enliven.shared.presets import preset_face_motions


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("photo")
    parser.add_argument("--frames", type=int, default=120)
    parser.add_argument("--preset", default="idle-alive")
    parser.add_argument("--faces", default="all", help="all, or face numbers such as 0,2,5")
    parser.add_argument("--workers", type=int, default=min(usable_cores(), MAX_WORKERS),
                        help="worker processes for the sequence (default: as enliven generate)")
    args = parser.parse_args()
    rgb = load_image(args.photo)
    height, width = rgb.shape[:2]
    print(f"OpenCV threads: {cv2.getNumThreads()}, CPUs: {cv2.getNumberOfCPUs()}; photo {width}x{height}")

    started = time.perf_counter()
    faces = None if args.faces == "all" else [int(face) for face in args.faces.split(",")]
    subjects = analyze_faces(rgb, faces)
    analysis_s = time.perf_counter() - started
    started = time.perf_counter()
    group = GroupAnimator(subjects)
    prepare_s = time.perf_counter() - started
    widths = sorted(round(subject.face_width) for subject in subjects)
    print(f"faces: {len(subjects)} animated of {subjects[0].faces_found} found; face widths {widths} px; "
          f"analysis {analysis_s:.2f} s, prepare {prepare_s:.2f} s")

    motion = preset_face_motions(args.preset, group.faces, fps=24, duration_s=args.frames / 24).full()
    group.render({face: values[len(values) // 2] for face, values in motion.items()})  # warm caches
    times, cpu_times = [], []
    for index in range(args.frames):
        started, cpu_started = time.perf_counter(), time.process_time()
        group.render({face: values[index] for face, values in motion.items()})
        times.append(time.perf_counter() - started)
        cpu_times.append(time.process_time() - cpu_started)
    median = statistics.median(times)
    p95 = float(np.percentile(times, 95))
    cpu = statistics.median(cpu_times)
    print(f"{args.preset}, {len(subjects)} faces, {args.frames} frames: render median {median * 1000:.1f} ms = "
          f"{1 / median:.1f} frames/s (p95 {p95 * 1000:.1f} ms = {1 / p95:.1f} frames/s), "
          f"{median * 1000 / len(subjects):.2f} ms a face")
    # On a machine shared with other work the wall clock says little; the CPU time a frame costs (all threads)
    # says what idle cores would do.
    cores = os.cpu_count() or 1
    print(f"CPU time a frame (all threads) median {cpu * 1000:.1f} ms: at most {cores / cpu:.1f} frames/s on "
          f"{cores} idle cores, {1 / cpu:.1f} on one; load average now {os.getloadavg()[0]:.1f}")
    print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")

    if args.workers > 1:
        requests = (frame_request(motion, index) for index in range(args.frames))
        started = time.perf_counter()
        with FrameWorkers(subjects, count=args.workers) as workers:
            for index, _ in enumerate(workers.render(requests)):
                if index == 2 * args.workers - 1:  # every worker has started and delivered
                    first_s, steady_from = time.perf_counter() - started, time.perf_counter()
            steady = (time.perf_counter() - steady_from) / (args.frames - 2 * args.workers)
            # (Not RUSAGE_CHILDREN: a child forked before its exec counts this process's pages as its own.)
            peaks = [f"{peak / 2**20:.0f}" if peak else "?" for peak in workers.peak_memory()]
        print(f"{args.workers} worker processes, whole frames side by side: {1 / steady:.1f} frames/s "
              f"({steady * 1000:.1f} ms a frame) once started ({first_s:.1f} s to the first {2 * args.workers} frames); "
              f"peak RSS of each worker {', '.join(peaks)} MB")


if __name__ == "__main__":
    main()
