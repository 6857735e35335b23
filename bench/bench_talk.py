"""End-to-end speed of `enliven talk`: seconds of finished video (H.264 + AAC,
sound muxed) per second of wall time, process start included.

    python bench/bench_talk.py [--runs 3] [--sizes 512 1024]

For each size: from text (eSpeak NG speaks a paragraph, phoneme lip-sync)
and from a WAV of the same speech (acoustic lip-sync), on the bundled
astronaut photo with the warp engine. Prints the median of --runs fresh
`enliven talk` processes. Reference points: SadTalker takes about 12 s per
second of video on a GPU; D-ID's API reports 33-51 processed frames/s.
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from enliven.analysis import ASTRONAUT_PATH
from enliven.speech.audio import write_wav
from enliven.speech.tts import synthesize

TEXT = ("Good morning. This portrait was a still photo a moment ago; now it speaks, blinks and looks "
        "around while it talks, rendered on an ordinary laptop processor.")


def talk_once(source: list[str], size: int, out: Path) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "enliven.cli", "talk", str(ASTRONAUT_PATH), *source, "--out", str(out),
                    "--size", str(size)], check=True, capture_output=True)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--sizes", type=int, nargs="+", default=[512, 1024])
    args = parser.parse_args()

    speech = synthesize(TEXT)
    with tempfile.TemporaryDirectory() as scratch:
        wav = Path(scratch) / "speech.wav"
        write_wav(wav, speech.samples, speech.sample_rate)
        print(f"speech: {speech.duration_s:.2f} s; {args.runs} runs each, median wall time incl. process start")
        print(f"{'size':>6} {'from':>5} {'wall s':>8} {'video s / wall s':>17} {'frames/s':>9}")
        for size in args.sizes:
            for name, source in (("text", ["--text", TEXT]), ("wav", ["--audio", str(wav)])):
                walls = [talk_once(source, size, Path(scratch) / "talk.mp4") for _ in range(args.runs)]
                wall = statistics.median(walls)
                print(f"{size:>6} {name:>5} {wall:8.2f} {speech.duration_s / wall:17.2f} "
                      f"{speech.duration_s * 24 / wall:9.1f}")


if __name__ == "__main__":
    main()
