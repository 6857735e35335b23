"""Command-line options and checks shared by several `enliven` commands: the
photo and its face (`analyze`, `generate`, `talk`) and the frame rate."""
from __future__ import annotations

import argparse
import sys

from .errors import UsageError
from .images import DEFAULT_MAX_PIXELS, DEFAULT_MAX_SIDE
from .shared.motion import MotionError, checked_fps


def add_photo_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--face", type=int, default=0, metavar="N", help="which face to use, 0 = largest (default)")
    parser.add_argument("--max-pixels", type=float, default=DEFAULT_MAX_PIXELS / 1e6, metavar="MP",
                        help=f"refuse photos larger than this many megapixels (default {DEFAULT_MAX_PIXELS / 1e6:.0f})")


def analyze_photo(args: argparse.Namespace):
    """The analysed subject of `args.photo` (scaled to `args.size` when given)."""
    from .analysis import analyze_image
    from .images import load_image, resize_long_side

    max_pixels = int(args.max_pixels * 1e6)
    rgb = load_image(args.photo, max_pixels=max_pixels, max_side=max(DEFAULT_MAX_SIDE, int(max_pixels**0.5)))
    if getattr(args, "size", None):
        rgb = resize_long_side(rgb, args.size)
    subject = analyze_image(rgb, face_index=args.face)
    if subject.faces_found > 1:
        print(f"enliven: {subject.faces_found} faces found; using face {subject.face_index}"
              f"{' (the largest)' if subject.face_index == 0 else ''}. Choose another with --face N.", file=sys.stderr)
    return subject


def usable_fps(fps: float) -> float:
    """A frame rate given on the command line, or a UsageError (exit 2)
    unless a motion may have it (above 0, at most the motion loader's MAX_FPS)."""
    try:
        return checked_fps(fps)
    except MotionError as error:  # its message starts "fps must be ..."
        raise UsageError(f"--{error}") from None
