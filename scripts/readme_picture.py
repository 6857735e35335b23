"""Make the README's picture, docs/astronaut.gif: the bundled public-domain
astronaut photo animated with the showcase preset (a blink, a look left and
right, a nod, a smile, a few words), as `scripts/demo.sh` makes it.

    .venv/bin/python scripts/readme_picture.py            # writes docs/astronaut.gif
    .venv/bin/python scripts/readme_picture.py --out X.gif

Run it again whenever the engines change. It runs the real `enliven generate`
(the warp engine, on the CPU) on the full photo, crops a square around the
face (the part that moves), keeps every other frame, and writes a looping GIF
with one shared palette, refusing to write one over MAX_BYTES.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
PHOTO = ROOT / "backend" / "assets" / "astronaut.png"
DEFAULT_OUT = ROOT / "docs" / "astronaut.gif"
MAX_BYTES = 2 * 1024 * 1024  # the limit for the README's picture
SIZE = 320  # the GIF's side in pixels
CROP = 2.8  # the square cropped around the face, in face widths
FPS = 24  # the preset's rate
STEP = 2  # keep every STEP-th frame: a 12 frames/s GIF


def enliven(*arguments: str) -> str:
    """Run the real `enliven` command of this Python environment; its standard output."""
    command = [sys.executable, "-m", "enliven.cli", *arguments]
    return subprocess.run(command, check=True, stdout=subprocess.PIPE, text=True).stdout


def face_square() -> tuple[int, int, int, int]:
    """The box (left, top, right, bottom) of a square around the photo's face, inside the photo."""
    summary = json.loads(enliven("analyze", str(PHOTO), "--json"))
    x0, y0, x1, y1 = summary["face_box"]
    side = min(round(CROP * (x1 - x0)), summary["width"], summary["height"])
    left = min(max(round((x0 + x1 - side) / 2), 0), summary["width"] - side)
    top = min(max(round((y0 + y1 - side) / 2), 0), summary["height"] - side)
    return left, top, left + side, top + side


def render_frames(folder: Path) -> list[Path]:
    """The showcase preset rendered by the real command line into `folder`."""
    enliven("generate", str(PHOTO), "--preset", "showcase", "--fps", str(FPS), "--out", str(folder))
    return sorted(folder.glob("frame_*.png"))


def write_gif(frames: list[Path], box: tuple[int, int, int, int], out: Path) -> int:
    """`frames` (every STEP-th, cropped to `box`) as a looping GIF at FPS / STEP; returns its size in bytes."""
    images = [Image.open(path).convert("RGB").crop(box).resize((SIZE, SIZE), Image.Resampling.LANCZOS)
              for path in frames[::STEP]]
    # One palette for every frame, from a strip of frames across the motion (the open mouth's
    # dark interior too): no colour flicker between frames.
    samples = images[::8]
    strip = Image.new("RGB", (SIZE * len(samples), SIZE))
    for index, image in enumerate(samples):
        strip.paste(image, (index * SIZE, 0))
    palette = strip.quantize(colors=255, method=Image.Quantize.MEDIANCUT)
    quantized = [image.quantize(palette=palette, dither=Image.Dither.NONE) for image in images]
    out.parent.mkdir(parents=True, exist_ok=True)
    quantized[0].save(out, save_all=True, append_images=quantized[1:], duration=round(1000 * STEP / FPS),
                      loop=0, optimize=True, disposal=1)
    return out.stat().st_size


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"GIF to write (default {DEFAULT_OUT.relative_to(ROOT)})")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as folder:
        box = face_square()
        frames = render_frames(Path(folder))
        if not frames:
            print("readme_picture: enliven generate wrote no frames", file=sys.stderr)
            return 1
        size = write_gif(frames, box, args.out)
    if size > MAX_BYTES:
        args.out.unlink()
        print(f"readme_picture: {size} bytes is over the {MAX_BYTES} byte limit; lower SIZE or raise STEP",
              file=sys.stderr)
        return 1
    print(f"wrote {args.out} ({len(frames[::STEP])} frames, {size / 1024:.0f} KiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
