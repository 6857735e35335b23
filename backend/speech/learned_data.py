"""Training data for the learned lip-sync: speech paired with the mouth motion
captured from the same video, frame by frame.

    python -m enliven.speech.learned_data CLIPS_DIR SOURCES.md --cache /tmp/enliven-lipsync-data

For each clip with a sound track (the `audio` column of the sources table):
the sound at 16 kHz, and enliven.capture's jaw_open (the opening with lips_part
folded in: Capture.speech_jaw), pucker and wide per video frame (the reference
frame chosen automatically, the most neutral one, so a clip that starts
mid-word does not shift its whole jaw curve). One .npz per clip in the cache
folder, named with TARGETS_VERSION, outside the repository: the footage is research-only
and is never copied into the project, and neither is anything derived from it
except a trained model that says so in its model card.

A clip is captured once; later runs read the cache (a cache made before the
targets last changed is captured again, never read as if it were current).
"""
from __future__ import annotations

import argparse
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..shared.keyframes import CURVE_CHANNELS
from .audio import ANALYSIS_SAMPLE_RATE, read_audio

# Raised whenever what the targets mean changes: 2, jaw_open counts lips_part's parting (Capture.speech_jaw).
TARGETS_VERSION = 2
# Clips shorter than this carry too little speech to learn from (d1, d2: 0.5 s).
MINIMUM_CLIP_SECONDS = 1.0


@dataclass(frozen=True)
class SourceClip:
    file: str
    person: str
    seconds: float


@dataclass(frozen=True)
class SpeechClip:
    """One clip's sound and captured mouth: samples at ANALYSIS_SAMPLE_RATE,
    targets (frames x CURVE_CHANNELS) at fps; frame i shows time i / fps."""
    name: str
    person: str
    samples: np.ndarray
    targets: np.ndarray
    fps: float
    face_found: np.ndarray  # (frames,) bool: frames with a face (others were interpolated)

    @property
    def seconds(self) -> float:
        return self.samples.size / ANALYSIS_SAMPLE_RATE


def clips_with_audio(sources_markdown: str) -> list[SourceClip]:
    """Rows of the sources table whose `audio` column is "yes"."""
    rows = [line for line in sources_markdown.splitlines() if line.startswith("|")]
    header = [cell.strip() for cell in rows[0].strip("|").split("|")]
    column = {name: index for index, name in enumerate(header)}
    clips = []
    for row in rows[2:]:
        cells = [cell.strip() for cell in row.strip("|").split("|")]
        if len(cells) != len(header) or cells[column["audio"]] != "yes":
            continue
        seconds = float(re.match(r"[\d.]+", cells[column["duration"]]).group())
        clips.append(SourceClip(cells[column["file"]], cells[column["person"]], seconds))
    return clips


def capture_clip(video: Path, person: str) -> SpeechClip:
    """Capture one clip (slow: face tracking on every frame)."""
    from ..capture import capture_video

    capture = capture_video(video, reference="auto")
    motion = capture.motion
    targets = np.stack([capture.speech_jaw() if name == "jaw_open" else motion.values[:, motion.channels.index(name)]
                        for name in CURVE_CHANNELS], axis=1)
    face_found = np.isfinite(capture.raw_values).all(axis=1)
    samples = read_audio(video, ANALYSIS_SAMPLE_RATE)
    return SpeechClip(video.stem, person, samples.astype(np.float32), targets.astype(np.float32),
                      float(motion.fps), face_found)


def save_clip(clip: SpeechClip, path: Path) -> None:
    temporary = path.with_suffix(".partial.npz")
    np.savez(temporary, name=clip.name, person=clip.person, samples=clip.samples, targets=clip.targets,
             fps=clip.fps, face_found=clip.face_found)
    temporary.replace(path)  # a crash mid-write never leaves a truncated cache entry


def load_clip(path: Path) -> SpeechClip:
    with np.load(path, allow_pickle=False) as data:
        return SpeechClip(str(data["name"]), str(data["person"]), data["samples"], data["targets"],
                          float(data["fps"]), data["face_found"])


def cached_clip(video: Path, person: str, cache: Path) -> SpeechClip:
    """The clip from the cache, capturing it first when it is not there."""
    path = cache / f"{video.stem}.targets{TARGETS_VERSION}.npz"
    if not path.exists():
        cache.mkdir(parents=True, exist_ok=True)
        save_clip(capture_clip(video, person), path)
    return load_clip(path)


def load_training_clips(clips_dir: Path, sources: Path, cache: Path, exclude: tuple[str, ...] = (),
                        log=print) -> list[SpeechClip]:
    """Every usable speech clip of the sources table (captured on first use)."""
    clips = []
    for source in clips_with_audio(sources.read_text(encoding="utf-8")):
        if source.seconds < MINIMUM_CLIP_SECONDS or any(word in source.file for word in exclude):
            continue
        started = time.perf_counter()
        try:
            clip = cached_clip(clips_dir / source.file, source.person, cache)
        except Exception as error:  # no face, unreadable sound: that clip is left out, said so
            log(f"  skipped {source.file}: {error}")
            continue
        clips.append(clip)
        log(f"  {source.file}: {clip.seconds:.1f} s, {clip.targets.shape[0]} frames at {clip.fps:g} fps "
            f"({time.perf_counter() - started:.1f} s)")
    return clips


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("clips", type=Path, help="folder of the training clips")
    parser.add_argument("sources", type=Path, help="the clips' SOURCES.md (its table has audio and person columns)")
    parser.add_argument("--cache", type=Path, required=True, help="folder for the captured clips (not the repo)")
    parser.add_argument("--videos", type=Path, nargs="*", default=(),
                        help="also capture these videos (evaluation clips, for scoring only)")
    args = parser.parse_args(argv)
    clips = load_training_clips(args.clips, args.sources, args.cache)
    people = {clip.person for clip in clips}
    print(f"{len(clips)} clips, {len(people)} people, {sum(c.seconds for c in clips) / 60:.1f} minutes")
    for video in args.videos:
        clip = cached_clip(video, video.stem, args.cache)
        print(f"  {video.name}: {clip.seconds:.1f} s, {clip.targets.shape[0]} frames")
    return 0


if __name__ == "__main__":
    sys.exit(main())
