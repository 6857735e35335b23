"""How well `enliven capture` reads the body channels (issue #16): round trips and real clips.

Round trip, per photo: the warp engine animates one body channel at a time (48 frames at 12 fps, at rest
for the first 3), the frames go through an MP4 and are captured back (no smoothing); printed per channel
are Pearson r and the gain (least-squares slope) of the captured curve against the one asked, and the
largest value the other body channels took (crosstalk).

Real clips (--videos): each clip is captured as a user would (default smoothing) and the range of each
body channel is printed, with the breathing curve's strongest rate between 6 and 40 breaths a minute.

    python bench/body_capture.py backend/assets/astronaut.png ../shared/eval-data/photos/LivePortrait__s12.jpg
    python bench/body_capture.py --videos ../shared/eval-data/videos/LivePortrait__d11.mp4
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import enliven  # noqa: F401 - first: it keeps numpy's BLAS to one thread, as the enliven command does
import cv2
import numpy as np

from enliven.analysis import analyze_image
from enliven.animator import Animator
from enliven.body_capture import BODY_CHANNELS
from enliven.capture import capture_video
from enliven.images import load_image
from enliven.sequence import VideoWriter
from enliven.shared.channels import CHANNEL_INDEX, default_vector

FPS = 12.0
FRAMES = 48
AMPLITUDES = {"breathing": 0.8, "shrug_l": 0.8, "shrug_r": 0.8, "torso_lean": 4.0, "torso_turn": 15.0}
MAX_SIDE = 768


def asked_curve(name: str) -> np.ndarray:
    t = np.arange(FRAMES)
    ramp = np.clip((t - 3) / 8, 0, 1)
    period = {"breathing": 16, "torso_lean": 40, "torso_turn": 28}.get(name, 24)
    return AMPLITUDES[name] * ramp * np.sin(2 * np.pi * t / period)


def round_trip(path: Path) -> None:
    photo = load_image(path)
    scale = min(1.0, MAX_SIDE / max(photo.shape[:2]))
    if scale < 1:
        photo = cv2.resize(photo, (round(photo.shape[1] * scale), round(photo.shape[0] * scale)),
                           interpolation=cv2.INTER_AREA)
    subject = analyze_image(photo)
    if subject.body is None:
        print(f"{path.name}: no body")
        return
    animator = Animator(subject, engine="warp")
    print(f"{path.name} (shoulders {subject.body.width:.0f} px apart)")
    for name in BODY_CHANNELS:
        asked = asked_curve(name)
        with tempfile.TemporaryDirectory() as folder:
            video = Path(folder) / "take.mp4"
            writer = VideoWriter(video, FPS)
            for value in asked:
                values = default_vector().astype(np.float64)
                values[CHANNEL_INDEX[name]] = value
                writer.add(animator.render(values))
            writer.close()
            started = time.perf_counter()
            capture = capture_video(video, smoothing=None)
            seconds = time.perf_counter() - started
        full = capture.motion.full()
        got = full[:, CHANNEL_INDEX[name]]
        r = np.corrcoef(got, asked)[0, 1] if np.ptp(got) > 0 else float("nan")
        gain = float(got @ asked / (asked @ asked))
        others = {other: float(np.abs(full[:, CHANNEL_INDEX[other]]).max()) for other in BODY_CHANNELS if other != name}
        worst = max(others, key=lambda other: others[other] / AMPLITUDES[other])
        print(f"  {name:10s} r {r:5.2f}  gain {gain:5.2f}  largest crosstalk {worst} {others[worst]:.2f}"
              f"  (capture {seconds:.1f} s, body followed: {capture.body_followed})")


def real_clip(path: Path) -> None:
    started = time.perf_counter()
    capture = capture_video(path)
    seconds = time.perf_counter() - started
    motion = capture.motion
    print(f"{path.name}: {motion.frame_count} frames in {seconds:.1f} s; body followed: {capture.body_followed}")
    if not capture.body_followed:
        return
    full = motion.full()
    for name in BODY_CHANNELS:
        column = full[:, CHANNEL_INDEX[name]]
        print(f"  {name:10s} {column.min():+6.2f} .. {column.max():+6.2f}  (sd {column.std():.3f})")
    breathing = full[:, CHANNEL_INDEX["breathing"]] - full[:, CHANNEL_INDEX["breathing"]].mean()
    spectrum = np.abs(np.fft.rfft(breathing * np.hanning(len(breathing))))
    per_minute = np.fft.rfftfreq(len(breathing), 1 / motion.fps) * 60
    band = (per_minute >= 6) & (per_minute <= 40)
    if band.any():
        print(f"  breathing's strongest rate {per_minute[band][np.argmax(spectrum[band])]:.1f} a minute "
              f"(clip {motion.frame_count / motion.fps:.1f} s)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("photos", nargs="*", type=Path, help="photos for the round trip")
    parser.add_argument("--videos", nargs="*", type=Path, default=[], help="real clips to capture")
    args = parser.parse_args()
    for path in args.photos:
        round_trip(path)
    for path in args.videos:
        real_clip(path)


if __name__ == "__main__":
    main()
