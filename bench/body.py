"""Body channels, measured on the output: does MediaPipe Pose, run again on the rendered frame, see the
shoulders rise as much as asked, and do the face's measures stay as they were?

    python bench/body.py [PHOTO[:FACE] ...]

Per photo (default: the bundled astronaut, the eval portraits d19, d9 and s12 and one group photo face by
face, where ../shared/eval-data is at hand) and for breathing = 1 and each shrug = 1: the rise each
shoulder was asked for (pixels), the rise Pose finds, their ratio (target 0.75-1.25), the rise drawn over
the rise asked (enliven.artifacts.rise_at: phase correlation of a patch at the joint; the engine's
part, without the tracker's), and the change in the re-detected yaw (degrees), eye aspect ratio and jaw
opening (mouth openness) against the same frame without body motion (the photo itself; and, for a head turn with breathing, the head turn alone).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import enliven  # noqa: F401 - first: it keeps numpy's BLAS to one thread, as the enliven command does
import numpy as np

from enliven import landmarks as lm
from enliven.analysis import ASTRONAUT_PATH, analyze_faces, find_landmarks, pose_keypoints
from enliven.animator import Animator
from enliven.artifacts import rise_at
from enliven.body_analysis import POSE_CROPS, POSE_LEFT_SHOULDER, POSE_RIGHT_SHOULDER, pose_crop_box
from enliven.engines.body import BREATH_SHOULDER_RISE, SHRUG_RISE
from enliven.engines.warp import WarpEngine
from enliven.geometry import estimate_head_pose
from enliven.images import load_image
from enliven.shared.channels import CHANNEL_INDEX, default_vector

EVAL = Path(__file__).resolve().parents[1].parent / "shared" / "eval-data" / "photos"
DEFAULT_PHOTOS = [str(ASTRONAUT_PATH)] + [f"{EVAL / name}" for name in (
    "LivePortrait__d19.jpg", "LivePortrait__d9.jpg", "LivePortrait__s12.jpg", "dlib__2008_001322.jpg:all")]


def values(**channels: float) -> np.ndarray:
    vector = default_vector().astype(np.float64)
    for name, value in channels.items():
        vector[CHANNEL_INDEX[name]] = value
    return vector


# Pose, run again on a slightly changed picture, moves its shoulder joints by several pixels of its own:
# each measure is the mean over crops shifted by these fractions of the face width (test-time jitter).
JITTER = ((0.0, 0.0), (0.15, 0.0), (-0.15, 0.0), (0.0, 0.15), (0.0, -0.15), (0.1, 0.1), (-0.1, -0.1))


def shoulders_seen(frame: np.ndarray, subject) -> np.ndarray | None:
    """Pose's shoulders ((2, 2): the subject's left, then right) on `frame`, averaged over jittered crops
    around the one analysis used."""
    x0, y0, x1, y1 = pose_crop_box(subject.landmarks, frame.shape, POSE_CROPS[0])
    height, width = frame.shape[:2]
    found = []
    for dx, dy in JITTER:
        sx, sy = round(dx * subject.face_width), round(dy * subject.face_width)
        box = (max(0, x0 + sx), max(0, y0 + sy), min(width, x1 + sx), min(height, y1 + sy))
        keypoints = pose_keypoints(frame, box)
        if keypoints is not None:
            shoulders = keypoints[[POSE_LEFT_SHOULDER, POSE_RIGHT_SHOULDER], :2]
            if np.abs(shoulders - subject.body.shoulders).max() < 0.5 * subject.body.width:
                found.append(shoulders)
    return np.mean(found, axis=0) if found else None


def face_measures(frame: np.ndarray, subject) -> tuple[float, float, float]:
    """(yaw in degrees, mean eye aspect ratio, mouth openness) of the face re-detected on `frame`."""
    points = find_landmarks(frame, subject.face_box)
    if points is None:
        return (np.nan,) * 3
    yaw = estimate_head_pose(points).angles[0]
    eyes = (lm.eye_aspect_ratio(points, "left") + lm.eye_aspect_ratio(points, "right")) / 2
    return yaw, eyes, lm.mouth_openness(points)


def measure(photo: str, faces: str | None) -> None:
    rgb = load_image(photo)
    subjects = analyze_faces(rgb, None if faces == "all" else [int(faces or 0)])
    for subject in subjects:
        name = f"{Path(photo).name} face {subject.face_index}"
        if subject.body is None:
            print(f"{name}: no body (shoulders not in the photo); body channels change nothing")
            continue
        animator = Animator(subject)
        still = shoulders_seen(rgb, subject)
        still_face = face_measures(rgb, subject)
        width = subject.body.width
        print(f"{name}: shoulder width {width:.0f} px")
        for label, channels, asked in (
                ("breathing 1", {"breathing": 1.0}, (BREATH_SHOULDER_RISE, BREATH_SHOULDER_RISE)),
                ("shrug_l 1", {"shrug_l": 1.0}, (SHRUG_RISE, 0.0)),
                ("shrug_r 1", {"shrug_r": 1.0}, (0.0, SHRUG_RISE))):
            frame = animator.render(values(**channels))
            seen = shoulders_seen(frame, subject)
            face = face_measures(frame, subject)
            if seen is None or still is None:
                print(f"  {label:12s} Pose lost the shoulders")
                continue
            rises = still[:, 1] - seen[:, 1]
            patch = 2 * max(16, round(0.2 * width))
            parts = []
            for side, rise, want, joint in zip(("left", "right"), rises, asked, subject.body.shoulders):
                want_px = want * width
                drawn = rise_at(rgb, frame, joint, patch)
                ratio = f"{rise / want_px:.2f}" if want_px else "-"
                drawn_ratio = f"{drawn / want_px:.2f}" if want_px else f"{drawn:+.1f} px"
                parts.append(f"{side} asked {want_px:5.1f} seen {rise:5.1f} ratio {ratio:>5s} (drawn {drawn_ratio})")
            changes = np.subtract(face, still_face)
            print(f"  {label:12s} " + "; ".join(parts)
                  + f" | yaw {changes[0]:+.2f} deg, EAR {changes[1]:+.4f}, jaw {changes[2]:+.4f}")
        turned = values(head_yaw=20.0)
        head_only = WarpEngine(subject).render(turned)
        with_body = animator.render(values(head_yaw=20.0, breathing=1.0))
        changes = np.subtract(face_measures(with_body, subject), face_measures(head_only, subject))
        print(f"  yaw 20 + breathing 1 vs yaw 20 alone: yaw {changes[0]:+.2f} deg, EAR {changes[1]:+.4f}, "
              f"jaw {changes[2]:+.4f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("photos", nargs="*", help="PHOTO or PHOTO:FACE or PHOTO:all")
    args = parser.parse_args()
    photos = args.photos or [p for p in DEFAULT_PHOTOS if Path(p.split(":")[0]).exists()]
    for item in photos:
        path, _, faces = item.partition(":") if not item.startswith("/") or ":" in item else (item, "", "")
        measure(path, faces or None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
