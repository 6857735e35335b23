"""Lip-sync speed and accuracy.

    python bench/bench_lipsync.py [--minutes 10] [--runs 3] [--skip-videos] [--eval-data DIR]

1. Speed: `lipsync_audio` on a long recording (eSpeak NG speech repeated to
   --minutes, as WAV and as MP3), median wall time over --runs, as a multiple
   of real time; decoding alone; peak memory of a fresh process on the long
   file and on 30 seconds (streaming keeps it flat).
2. Accuracy against known timing: sentences synthesised by the project
   (tts.py) in several voices; the acoustic method against the phoneme
   timings (evaluation.py): mouth closed in silent frames, open in
   open-vowel frames, Pearson r of jaw_open (and of pucker and wide).
3. Real clips: the eval videos with speech on their sound track; r between
   the jaw_open curve from the audio and the mouth opening captured from the
   video (enliven.capture's solver jaw_open when available, and MediaPipe's
   lip gap / mouth width per frame). The clips are for local measurement
   only (see eval-data/SOURCES.md).

Targets: >= 100x real time; closed >= 90 %, open >= 80 %, r >= 0.6; r > 0 on
real clips.
"""
from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import imageio_ffmpeg
import numpy as np

from enliven.speech.audio import ANALYSIS_SAMPLE_RATE, read_audio, stream_audio, write_wav
from enliven.speech.errors import NoSpeechError
from enliven.speech.evaluation import compare_with_phonemes
from enliven.speech.lipsync import LipsyncOptions, lipsync_audio, lipsync_phonemes, lipsync_samples
from enliven.speech.tts import INSTALL_HINT, espeak_available, synthesize

EVAL_DATA = Path(__file__).resolve().parents[2] / "shared" / "eval-data"
TEXTS = (
    "The quick brown fox jumps over the lazy dog. Papa bought a big map of Boston, and we walked past the park. "
    "Why do you always open the window at night? Because the air is cool and calm. "
    "Please hold the rope; I'll pull the boat up onto the sand. Ah, that was a long day, wasn't it?",
    "She sells sea shells by the sea shore. My mother made marmalade from bitter oranges. "
    "Could you tell me the way to the station, please? It is just around the corner, past the old church.",
    "Bob and Pam bought a pump. Five wives saw the thief. Who knew the blue moon would loom so soon? "
    "I cannot wait, said Amy, and she laughed at the odd, dark water.",
)
VOICES = ("en", "en-us", "en+f3", "de", "fr")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=10.0, help="length of the speed test recording")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--skip-videos", action="store_true", help="skip the real clips (the slowest part)")
    parser.add_argument("--eval-data", type=Path, default=EVAL_DATA)
    args = parser.parse_args()
    if not espeak_available():
        sys.exit(f"bench_lipsync needs eSpeak NG: {INSTALL_HINT}")
    with tempfile.TemporaryDirectory() as folder:
        measure_speed(Path(folder), args.minutes, args.runs)
    measure_accuracy()
    if not args.skip_videos:
        measure_real_clips(args.eval_data / "videos")


# ---------------------------------------------------------------- 1. speed


def measure_speed(folder: Path, minutes: float, runs: int) -> None:
    print(f"== speed ({minutes:g} min of speech; CPUs: {len(__import__('os').sched_getaffinity(0))})")
    speech = synthesize(" ".join(TEXTS))
    repeats = int(np.ceil(minutes * 60 / speech.duration_s))
    long_wav, short_wav = folder / "long.wav", folder / "short.wav"
    write_wav(long_wav, np.tile(speech.samples, repeats)[: int(minutes * 60 * speech.sample_rate)], speech.sample_rate)
    write_wav(short_wav, np.tile(speech.samples, 2)[: 30 * speech.sample_rate], speech.sample_rate)
    long_mp3 = folder / "long.mp3"
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-y", "-i", str(long_wav), "-b:a", "128k",
                    str(long_mp3)], check=True)

    for label, path in (("WAV 22.05 kHz", long_wav), ("MP3 128 kb/s", long_mp3)):
        timings = []
        for _ in range(runs):
            result = lipsync_audio(path, LipsyncOptions(fps=30))
            timings.append(result.processing_s)
        started = time.perf_counter()
        for _ in stream_audio(path):
            pass
        decode_s = time.perf_counter() - started
        median = statistics.median(timings)
        print(f"  {label:14} {result.duration_s:7.1f} s audio: lipsync median {median:5.2f} s = "
              f"{result.duration_s / median:5.0f}x real time (decoding alone {decode_s:.2f} s), "
              f"{result.motion.frame_count} frames")
    long_peak, short_peak = _peak_memory_mib(long_wav), _peak_memory_mib(short_wav)
    print(f"  peak memory of a fresh process: {long_peak:.0f} MiB for {minutes:g} min, {short_peak:.0f} MiB for 30 s "
          f"(difference {long_peak - short_peak:+.0f} MiB; the decoded {minutes:g} min alone would be "
          f"{minutes * 60 * ANALYSIS_SAMPLE_RATE * 4 / 2**20:.0f} MiB)")


def _peak_memory_mib(path: Path) -> float:
    code = textwrap.dedent("""
        import resource, sys
        from enliven.speech.lipsync import lipsync_audio
        lipsync_audio(sys.argv[1])
        print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
    """)
    output = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, check=True)
    return int(output.stdout.split()[-1]) / 1024


# ---------------------------------------------------------------- 2. accuracy on known timing


def measure_accuracy() -> None:
    print("== accuracy against eSpeak NG phoneme timings (24 fps, lead 0)")
    print("  voice   text  seconds  silent frames closed  open-vowel frames open (mean jaw)  r jaw  r pucker  r wide")
    options = LipsyncOptions(fps=24, lead_frames=0)
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for voice in VOICES:
            for index, text in enumerate(TEXTS):
                speech = synthesize(text, voice=voice)
                # Through a WAV file and the same decoder as any recording.
                path = Path(folder) / "speech.wav"
                write_wav(path, speech.samples, speech.sample_rate)
                acoustic = lipsync_samples(read_audio(path), ANALYSIS_SAMPLE_RATE, options).motion
                reference = lipsync_phonemes(speech, options).motion
                agreement = compare_with_phonemes(acoustic, reference, speech.phonemes)
                rows.append(agreement)
                print(f"  {voice:7} {index:4d}  {speech.duration_s:7.1f}  {agreement.silent_frames:13d} "
                      f"{agreement.closed_share:6.1%}  {agreement.open_vowel_frames:17d} {agreement.open_share:5.1%} "
                      f"({agreement.open_vowel_jaw:.2f})      "
                      f"{agreement.jaw_correlation:5.2f}  {agreement.pucker_correlation:8.2f}  "
                      f"{agreement.wide_correlation:6.2f}")
    silent = sum(r.silent_frames for r in rows)
    closed = sum(r.closed_share * r.silent_frames for r in rows) / silent
    vowels = sum(r.open_vowel_frames for r in rows)
    opened = sum(r.open_share * r.open_vowel_frames for r in rows) / vowels
    jaw = [r.jaw_correlation for r in rows]
    mean_jaw = sum(r.open_vowel_jaw * r.open_vowel_frames for r in rows) / vowels
    print(f"  all: closed in {closed:.1%} of {silent} silent frames (target >= 90 %), open in {opened:.1%} of "
          f"{vowels} open-vowel frames (target >= 80 %; mean jaw_open there {mean_jaw:.2f}); "
          f"r jaw mean {np.mean(jaw):.2f}, min {np.min(jaw):.2f} (target >= 0.6)")


# ---------------------------------------------------------------- 3. real clips


def measure_real_clips(videos: Path) -> None:
    print(f"== real clips ({videos}): jaw_open from the audio vs mouth opening from the video")
    if not videos.is_dir():
        print("  (no eval videos here; skipped)")
        return
    try:
        from enliven.capture import capture_video
    except ImportError:
        capture_video = None
        print("  (enliven.capture not available: video mouth opening from MediaPipe lip gap / mouth width only)")
    print("  clip   fps frames  speech s  r(capture jaw_open)  r(lip gap / width)  best lag (frames, r)  time s")
    for path in sorted(videos.glob("*.mp4")):
        fps = _video_fps(path)
        try:
            audio = lipsync_audio(path, LipsyncOptions(fps=fps, lead_frames=0))
        except NoSpeechError:
            print(f"  {path.stem.split('__')[-1]:5}  no speech on the sound track")
            continue
        except Exception as error:  # no sound track at all
            print(f"  {path.stem.split('__')[-1]:5}  {error}")
            continue
        started = time.perf_counter()
        captured_jaw, openness = _video_mouth(path, capture_video)
        elapsed = time.perf_counter() - started
        jaw = audio.motion.values[:, 0].astype(np.float64)
        count = min(jaw.size, openness.size)
        r_capture = _pearson(jaw[:count], captured_jaw[:count]) if captured_jaw is not None else float("nan")
        r_openness = _pearson(jaw[:count], openness[:count])
        reference = captured_jaw if captured_jaw is not None else openness
        lags = {lag: _pearson(*_shifted(jaw[:count], reference[:count], lag)) for lag in range(-6, 7)}
        best = max(lags, key=lambda lag: lags[lag])
        print(f"  {path.stem.split('__')[-1]:5} {fps:4.0f} {count:6d}  {audio.speech_s:8.1f}  {r_capture:19.2f}  "
              f"{r_openness:18.2f}  {best:+9d} ({lags[best]:.2f})  {elapsed:6.1f}")


def _video_fps(path: Path) -> float:
    import imageio.v2 as imageio

    reader = imageio.get_reader(str(path))
    try:
        return float(reader.get_meta_data()["fps"])
    finally:
        reader.close()


def _video_mouth(path: Path, capture_video) -> tuple[np.ndarray | None, np.ndarray]:
    """(captured jaw_open or None, lip gap / mouth width) per frame."""
    from enliven import landmarks as lm

    if capture_video is not None:
        capture = capture_video(path)
        jaw = capture.motion.values[:, capture.motion.channels.index("jaw_open")].astype(np.float64)
        openness = np.array([lm.mouth_openness(points) if np.isfinite(points).all() else np.nan
                             for points in capture.landmarks])
        return jaw, _filled(openness)

    import imageio.v2 as imageio

    from enliven.analysis import analyze_image
    from enliven.errors import NoFaceError

    values = []
    reader = imageio.get_reader(str(path))
    try:
        for frame in reader:
            try:
                values.append(analyze_image(np.ascontiguousarray(frame[..., :3])).mouth_openness)
            except NoFaceError:
                values.append(np.nan)
    finally:
        reader.close()
    return None, _filled(np.array(values))


def _filled(values: np.ndarray) -> np.ndarray:
    known = np.isfinite(values)
    if not known.any():
        return np.zeros_like(values)
    return np.interp(np.arange(values.size), np.flatnonzero(known), values[known])


def _shifted(a: np.ndarray, b: np.ndarray, lag: int) -> tuple[np.ndarray, np.ndarray]:
    """Pairs a[i + lag] with b[i]: a positive lag means the audio curve is late."""
    if lag >= 0:
        return a[lag:], b[: b.size - lag]
    return a[: a.size + lag], b[-lag:]


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a, b)[0, 1]) if a.std() > 0 and b.std() > 0 else float("nan")


if __name__ == "__main__":
    started = time.perf_counter()
    main()
    print(f"(bench took {time.perf_counter() - started:.0f} s; peak memory "
          f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB)")
