"""Controllability: does each channel do what it asks, as seen by a face tracker?

    python bench/controllability.py [PHOTO ...]      (default: the bundled astronaut)

For every channel, one value at a time: the rig's target landmarks say what was
asked; the generated frame is analysed again from scratch, and the same
quantity is measured on the re-detected landmarks. Prints a markdown table per
photo and a summary of the issue's targets (yaw 20 -> 20 +/- 4 degrees; blink 1
-> eye aspect ratio under 25% of neutral; jaw 1 -> lip gap >= 25% of mouth width).
"""
from __future__ import annotations

import sys
from pathlib import Path

import enliven  # noqa: F401 - first: it keeps numpy's BLAS to one thread, as the enliven command does
import numpy as np

from enliven import landmarks as lm
from enliven.analysis import ASTRONAUT_PATH, analyze_image
from enliven.animator import Animator
from enliven.errors import EnlivenError
from enliven.geometry import estimate_head_pose, fit_pose_to_image_points, image_to_camera
from enliven.images import load_image
from enliven.rig import Rig
from enliven.shared.channels import CHANNEL_INDEX, default_vector


def _eye_ratio(side):
    return lambda points, neutral: lm.eye_aspect_ratio(points, side) / lm.eye_aspect_ratio(neutral, side)


def _pose(axis):
    """Angle change, fitting the neutral face's 3D shape to the 2D landmarks (the tracker's
    own depth guesses flatten on unusual faces and under-report turns)."""
    def measure(points, neutral):
        start = estimate_head_pose(neutral)
        model = start.to_head(image_to_camera(neutral))
        before = fit_pose_to_image_points(model, neutral, start).angles[axis]
        return fit_pose_to_image_points(model, points, start).angles[axis] - before
    return measure


def _iod(points):
    return np.linalg.norm(points[263, :2] - points[33, :2])


def _shift(ids, axis, unit):
    def measure(points, neutral):
        return float((points[list(ids), axis] - neutral[list(ids), axis]).mean() / unit(neutral))
    return measure


def _face_width(points):
    return np.linalg.norm(points[lm.FACE_LEFT_EDGE, :2] - points[lm.FACE_RIGHT_EDGE, :2])


def _mouth_width_ratio(points, neutral):
    def width(p):
        return np.linalg.norm(p[lm.MOUTH_LEFT_CORNER, :2] - p[lm.MOUTH_RIGHT_CORNER, :2])
    return width(points) / width(neutral)


def _corner_lift(corner):
    return lambda points, neutral: float(-(points[corner, 1] - neutral[corner, 1]) / _iod(neutral))


# channel, value, what is measured, how
CASES = [
    ("head_yaw", 20, "yaw change (deg)", _pose(0)),
    ("head_yaw", -20, "yaw change (deg)", _pose(0)),
    ("head_pitch", 15, "pitch change (deg)", _pose(1)),
    ("head_pitch", -15, "pitch change (deg)", _pose(1)),
    ("head_roll", 20, "roll change (deg)", _pose(2)),
    ("head_x", 0.2, "x shift (face widths)", _shift(range(468), 0, _face_width)),
    ("head_y", 0.2, "y shift up (face widths)", lambda p, n: -_shift(range(468), 1, _face_width)(p, n)),
    ("blink_l", 1.0, "left EAR / neutral", _eye_ratio("left")),
    ("blink_r", 1.0, "right EAR / neutral", _eye_ratio("right")),
    ("blink_l", 0.5, "left EAR / neutral", _eye_ratio("left")),
    ("gaze_x", 1.0, "iris x shift (IOD)", _shift((468, 473), 0, _iod)),
    ("gaze_x", -1.0, "iris x shift (IOD)", _shift((468, 473), 0, _iod)),
    ("gaze_y", 1.0, "iris shift up (IOD)", lambda p, n: -_shift((468, 473), 1, _iod)(p, n)),
    ("brow_l", 1.0, "left brow up (IOD)", lambda p, n: -_shift(lm.LEFT_BROW, 1, _iod)(p, n)),
    ("brow_r", -1.0, "right brow up (IOD)", lambda p, n: -_shift(lm.RIGHT_BROW, 1, _iod)(p, n)),
    ("brow_inner_up", 1.0, "inner brows up (IOD)", lambda p, n: -_shift(lm.LEFT_BROW_INNER + lm.RIGHT_BROW_INNER, 1, _iod)(p, n)),
    ("jaw_open", 0.5, "lip gap / mouth width", lambda p, n: lm.mouth_openness(p)),
    ("jaw_open", 1.0, "lip gap / mouth width", lambda p, n: lm.mouth_openness(p)),
    ("lips_part", 1.0, "lip gap / mouth width", lambda p, n: lm.mouth_openness(p)),
    ("smile_l", 1.0, "left corner up (IOD)", _corner_lift(lm.MOUTH_LEFT_CORNER)),
    ("smile_r", 1.0, "right corner up (IOD)", _corner_lift(lm.MOUTH_RIGHT_CORNER)),
    ("smile_l", -1.0, "left corner up (IOD)", _corner_lift(lm.MOUTH_LEFT_CORNER)),
    ("pucker", 1.0, "mouth width / neutral", _mouth_width_ratio),
    ("wide", 1.0, "mouth width / neutral", _mouth_width_ratio),
]


def report(photo: Path) -> dict[str, float]:
    subject = analyze_image(load_image(photo))
    animator = Animator(subject)
    rig = Rig(subject.landmarks, subject.pose)
    neutral = subject.landmarks.astype(np.float64)
    print(f"\n### {photo.name} (yaw {subject.pose.angles[0]:+.1f}, face {subject.face_width:.0f} px)\n")
    print("| channel | value | quantity | rig target | measured |")
    print("|---|---|---|---|---|")
    results = {}
    for name, value, quantity, measure in CASES:
        values = default_vector().astype(np.float64)
        values[CHANNEL_INDEX[name]] = value
        target = measure(rig.targets(values), neutral)
        try:
            measured = measure(analyze_image(animator.render(values)).landmarks.astype(np.float64), neutral)
            shown = f"{measured:+.3f}"
        except EnlivenError:
            measured, shown = float("nan"), "face lost"
        results[f"{name}={value}"] = measured
        print(f"| {name} | {value:+g} | {quantity} | {target:+.3f} | {shown} |")
    return results


def main() -> None:
    photos = [Path(p) for p in sys.argv[1:]] or [ASTRONAUT_PATH]
    summary = []
    for photo in photos:
        r = report(photo)
        summary.append((photo.name, r["head_yaw=20"], r["blink_l=1.0"], r["blink_r=1.0"], r["jaw_open=1.0"]))
    print("\n### Targets\n")
    print("| photo | yaw 20 -> (16..24) | blink L -> EAR ratio (< 0.25) | blink R | jaw 1 -> gap/width (>= 0.25) |")
    print("|---|---|---|---|---|")
    for name, yaw, blink_l, blink_r, jaw in summary:
        print(f"| {name} | {yaw:.1f} | {blink_l:.2f} | {blink_r:.2f} | {jaw:.2f} |")


if __name__ == "__main__":
    main()
