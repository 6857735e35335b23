"""Old photos: faces found, and what the engines paint into them (issue #16).

    python bench/old_photos.py [PHOTO ...] [--engine warp|refine]

Every photo (default: the astronaut and ../shared/eval-data/photos/*) is
also made old in six ways: black and white; sepia with grain; JPEG at
quality 20 (blocks); a scan (sepia, grain, a paper border and a slight tilt);
small (scaled so its largest face is about 40 px wide); and soft (blurred by
SOFT_BLUR px, with grain: out of focus, or a small print scanned large).
Printed per photo and version:

- faces: how many faces detection finds (the original's count beside it);
- colour: on the largest face's jaw_open 1, blink and gaze_x 1 frames, the
  largest (max - min) over RGB of any pixel in a photo that has no colour
  (black and white: should stay 0-1);
- grain: in a grainy photo, the painted mouth cavity's fine noise over the
  photo's (1 = as grainy as the photo; under 0.5 looks pasted on);
- edge: on the jaw_open 1 frame, the strongest edge inside the opened mouth
  (the painted cavity, teeth and rim) over the strongest in the photo's head
  region, the grain smoothed off both (over 1: paint crisper than anything
  in the photo, which a soft photo shows as pasted on).

The evaluation photos stay outside the repository; nothing is written.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import enliven  # noqa: F401 - first: it keeps numpy's BLAS to one thread, as the enliven command does
import cv2
import numpy as np

from enliven import landmarks as lm
from enliven.analysis import ASTRONAUT_PATH, analyze_image, detect_faces
from enliven.artifacts import edge_strength
from enliven.animator import Animator
from enliven.engines.palette import photo_grain
from enliven.errors import EnlivenError
from enliven.images import load_image, resize_long_side

from artifacts import values_with  # bench/artifacts.py, beside this script

REPO = Path(__file__).resolve().parents[1]
EVAL_PHOTOS = REPO.parent / "shared" / "eval-data" / "photos"
SEPIA = np.array([1.08, 0.97, 0.78])
SMALL_FACE = 40  # px: the face width the "small" version is scaled to
SOFT_BLUR = 2.5  # px (Gaussian sigma) of the "soft" version, at --size
FRAMES = {"jaw": {"jaw_open": 1.0}, "blink": {"blink_l": 1.0, "blink_r": 1.0}, "gaze": {"gaze_x": 1.0}}


def grey(rgb: np.ndarray) -> np.ndarray:
    return np.repeat(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)[..., None], 3, axis=2)


def sepia(rgb: np.ndarray, grain: float) -> np.ndarray:
    luma = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float32)
    luma += np.random.default_rng(0).normal(0.0, grain, luma.shape)
    return np.clip(luma[..., None] * SEPIA, 0, 255).astype(np.uint8)


def jpeg(rgb: np.ndarray, quality: int = 20) -> np.ndarray:
    encoded = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])[1]
    return cv2.cvtColor(cv2.imdecode(encoded, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def scan(rgb: np.ndarray) -> np.ndarray:
    aged = sepia(rgb, grain=4.0)
    height, width = aged.shape[:2]
    border = max(8, int(0.06 * max(height, width)))
    paper = np.array([236, 228, 208], np.uint8)
    framed = cv2.copyMakeBorder(aged, border, border, border, border, cv2.BORDER_CONSTANT, value=paper.tolist())
    turn = cv2.getRotationMatrix2D((framed.shape[1] / 2, framed.shape[0] / 2), 1.5, 1.0)
    return cv2.warpAffine(framed, turn, framed.shape[1::-1], flags=cv2.INTER_LINEAR, borderValue=paper.tolist())


def soft(rgb: np.ndarray) -> np.ndarray:
    noise = np.random.default_rng(0).normal(0.0, 4.0, rgb.shape[:2])[..., None]
    return np.clip(cv2.GaussianBlur(rgb, (0, 0), SOFT_BLUR) + noise, 0, 255).astype(np.uint8)


def small(rgb: np.ndarray, face_width: float) -> np.ndarray:
    scale = min(1.0, SMALL_FACE / max(face_width, 1.0))
    size = (max(1, round(rgb.shape[1] * scale)), max(1, round(rgb.shape[0] * scale)))
    return cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)


def painted_figures(rgb: np.ndarray, engine: str, colourless: bool, grainy: bool) -> tuple[float, float, float]:
    """(largest colour spread of any pixel in the frames, if the photo is colourless; the cavity's grain over
    the photo's, if it is grainy; the opened mouth's strongest edge over the photo's); NaN where not asked or
    no face."""
    try:
        subject = analyze_image(rgb)
    except EnlivenError:
        return float("nan"), float("nan"), float("nan")
    animator = Animator(subject, engine=engine)
    spread, grain, edge = float("nan"), float("nan"), float("nan")
    for name, channels in FRAMES.items():
        frame = animator.render(values_with(channels)).astype(np.int16)
        if colourless:
            spread = max(0.0 if np.isnan(spread) else spread, float((frame.max(axis=2) - frame.min(axis=2)).max()))
        if name == "jaw":
            points = animator.engine.rig.targets(values_with(channels))
            opening = np.zeros(rgb.shape[:2], np.uint8)
            cv2.fillPoly(opening, [np.round(points[list(lm.inner_lip_polygon()), :2]).astype(np.int32)], 1)
            x0, y0, x1, y1 = subject.head_region
            if opening.any():
                edge = float(edge_strength(frame.astype(np.uint8))[opening > 0].max()
                             / max(edge_strength(rgb)[y0:y1, x0:x1].max(), 1e-6))
            interior = cv2.erode(opening, np.ones((3, 3), np.uint8)) > 0
            if grainy and interior.sum() > 30:
                grain = photo_grain(frame.astype(np.uint8), interior) / max(photo_grain(rgb), 1e-6)
    return spread, grain, edge


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("photos", nargs="*", type=Path)
    parser.add_argument("--engine", default="warp", choices=("warp", "refine"))
    parser.add_argument("--size", type=int, default=1024, help="longer side the photos are scaled to first")
    args = parser.parse_args()
    photos = args.photos or [Path(ASTRONAUT_PATH)] + sorted(
        p for p in EVAL_PHOTOS.glob("*") if p.suffix.lower() in (".jpg", ".png") and "astronaut" not in p.name)
    print(f"engine {args.engine}; faces found (original's count), colour = max RGB spread in a colourless photo "
          f"(0-1 is right), grain = painted cavity's grain over the photo's, edge = the opened mouth's strongest "
          f"edge over the photo's")
    print(f"{'photo':<26} {'version':<8} {'faces':>9} {'colour':>7} {'grain':>6} {'edge':>5}")
    for path in photos:
        original = resize_long_side(load_image(path), args.size)
        boxes = detect_faces(original)
        count = len(boxes)
        largest = (boxes[0][2] - boxes[0][0]) if boxes else 100.0
        versions = {"original": (original, False, False), "grey": (grey(original), True, False),
                    "sepia": (sepia(original, 5.0), False, True), "jpeg": (jpeg(original), False, False),
                    "scan": (scan(original), False, True), "small": (small(original, largest), False, False),
                    "soft": (soft(original), False, True)}
        for name, (rgb, colourless, grainy) in versions.items():
            found = len(detect_faces(rgb))
            spread, grain, edge = painted_figures(rgb, args.engine, colourless, grainy)
            print(f"{path.stem[:26]:<26} {name:<8} {found:>4} ({count:>2}) {spread:7.0f} {grain:6.2f} {edge:5.2f}",
                  flush=True)


if __name__ == "__main__":
    main()
