"""Lip-sync speed and accuracy, for each method (learned, acoustic).

    python bench/bench_lipsync.py [--minutes 10] [--runs 3] [--methods learned acoustic] [--model FILE]
                                  [--capture-cache DIR] [--skip-speed] [--skip-accuracy] [--skip-videos]
                                  [--eval-data DIR]

1. Speed: `lipsync_audio` on a long recording (eSpeak NG speech repeated to
   --minutes, as WAV and as MP3), median wall time over --runs, as a multiple
   of real time; decoding alone; peak memory of a fresh process on the long
   file and on 30 seconds (streaming keeps it flat).
2. Accuracy against known timing: sentences synthesised by the project
   (tts.py) in several voices; each method against the phoneme timings
   (evaluation.py): mouth closed in silent frames, open in open-vowel frames,
   Pearson r of jaw_open (and of pucker and wide).
3. Real clips: the eval videos with speech (d6, d9, d10, d11, d12, d20); r
   between the jaw_open curve from the audio and the jaw_open captured from
   the video (enliven.capture, automatic reference frame), at lag 0 and at the
   best lag within +-200 ms, per clip and mean; and how far the speech stands
   above the sound in its pauses (low = background sound). Then the same r
   against the lip gap tracked on the video (MediaPipe's inner-lip gap over
   mouth width, frame by frame): the captured jaw_open is the rig's channel,
   relative to the clip's reference frame and with the sealing range below 0,
   and on a clip whose reference mouth is open it follows the lips' own gap
   loosely (d9: r 0.45 between the two). --capture-cache keeps the captures
   and the tracked gaps (learned_data.py's cache, outside the repository). The
   clips are for local measurement only (see eval-data/SOURCES.md); the
   learned model never trains on them.

Also: on `enliven say`'s motion, the share of /p b m/ frames whose lips the
rig closes on the astronaut (her photo shows parted lips).

Targets: >= 100x real time; closed >= 90 %, open >= 80 %, r >= 0.6 on
synthetic speech; on real clips mean r >= 0.55 with none below 0.3.
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
import enliven  # noqa: F401 - first: it keeps numpy's BLAS to one thread, as the enliven command does
import numpy as np

from enliven.speech.audio import ANALYSIS_SAMPLE_RATE, stream_audio, write_wav
from enliven.speech.evaluation import compare_with_phonemes, jaw_agreement, mouth_opening, pearson
from enliven.speech.lipsync import METHODS, LipsyncOptions, lipsync_audio, lipsync_phonemes
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
    parser.add_argument("--skip-speed", action="store_true")
    parser.add_argument("--skip-accuracy", action="store_true")
    parser.add_argument("--eval-data", type=Path, default=EVAL_DATA)
    parser.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS))
    parser.add_argument("--model", type=Path, default=None, help="learned model file (default: the shipped one)")
    parser.add_argument("--capture-cache", type=Path, default=None,
                        help="folder for the eval clips' captured motion (learned_data.py's cache; outside the repo)")
    args = parser.parse_args()
    if not espeak_available():
        sys.exit(f"bench_lipsync needs eSpeak NG: {INSTALL_HINT}")
    methods = tuple(args.methods)
    if not args.skip_speed:
        with tempfile.TemporaryDirectory() as folder:
            for method in methods:
                measure_speed(Path(folder), args.minutes, args.runs, method, args.model)
    if not args.skip_accuracy:
        for method in methods:
            measure_accuracy(method, args.model)
        measure_bilabials()
    if not args.skip_videos:
        measure_real_clips(args.eval_data / "videos", methods, args.model, args.capture_cache)


# ---------------------------------------------------------------- 1. speed


def measure_speed(folder: Path, minutes: float, runs: int, method: str, model: Path | None) -> None:
    print(f"== speed of {method} ({minutes:g} min of speech; CPUs: {len(__import__('os').sched_getaffinity(0))})")
    speech = synthesize(" ".join(TEXTS))
    long_wav, short_wav = folder / "long.wav", folder / "short.wav"
    if not long_wav.exists():
        _write_long_recordings(speech, minutes, long_wav, short_wav, folder / "long.mp3")
    long_mp3 = folder / "long.mp3"

    for label, path in (("WAV 22.05 kHz", long_wav), ("MP3 128 kb/s", long_mp3)):
        timings = []
        for _ in range(runs):
            result = lipsync_audio(path, LipsyncOptions(fps=30), method=method, model_path=model)
            timings.append(result.processing_s)
        started = time.perf_counter()
        for _ in stream_audio(path):
            pass
        decode_s = time.perf_counter() - started
        median = statistics.median(timings)
        print(f"  {label:14} {result.duration_s:7.1f} s audio: lipsync median {median:5.2f} s = "
              f"{result.duration_s / median:5.0f}x real time (decoding alone {decode_s:.2f} s), "
              f"{result.motion.frame_count} frames")
    long_peak, short_peak = _peak_memory_mib(long_wav, method, model), _peak_memory_mib(short_wav, method, model)
    print(f"  peak memory of a fresh process: {long_peak:.0f} MiB for {minutes:g} min, {short_peak:.0f} MiB for 30 s "
          f"(difference {long_peak - short_peak:+.0f} MiB; the decoded {minutes:g} min alone would be "
          f"{minutes * 60 * ANALYSIS_SAMPLE_RATE * 4 / 2**20:.0f} MiB)")


def _write_long_recordings(speech, minutes: float, long_wav: Path, short_wav: Path, long_mp3: Path) -> None:
    repeats = int(np.ceil(minutes * 60 / speech.duration_s))
    write_wav(long_wav, np.tile(speech.samples, repeats)[: int(minutes * 60 * speech.sample_rate)], speech.sample_rate)
    write_wav(short_wav, np.tile(speech.samples, 2)[: 30 * speech.sample_rate], speech.sample_rate)
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-y", "-i", str(long_wav), "-b:a", "128k",
                    str(long_mp3)], check=True)


def _peak_memory_mib(path: Path, method: str, model: Path | None) -> float:
    code = textwrap.dedent("""
        import resource, sys
        from enliven.speech.lipsync import lipsync_audio
        lipsync_audio(sys.argv[1], method=sys.argv[2], model_path=sys.argv[3] or None)
        print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
    """)
    output = subprocess.run([sys.executable, "-c", code, str(path), method, str(model or "")],
                            capture_output=True, text=True, check=True)
    return int(output.stdout.split()[-1]) / 1024


# ---------------------------------------------------------------- 2. accuracy on known timing


def measure_accuracy(method: str, model: Path | None) -> None:
    print(f"== accuracy of {method} against eSpeak NG phoneme timings (24 fps, lead 0)")
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
                acoustic = lipsync_audio(path, options, method=method, model_path=model).motion
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


BILABIALS = ("p", "b", "m")
SEALED_GAP = 0.05  # lip gap / mouth width under which the lips touch


def measure_bilabials() -> None:
    """`enliven say`'s motion on the astronaut (whose photo smiles with parted lips, the hard case): the
    rig's lip gap on every frame inside a /p b m/."""
    from enliven import landmarks as lm
    from enliven.analysis import ASTRONAUT_PATH, analyze_image
    from enliven.images import load_image
    from enliven.rig import Rig

    subject = analyze_image(load_image(ASTRONAUT_PATH))
    rig = Rig(subject.landmarks, subject.pose)
    options = LipsyncOptions(fps=24)
    closed = total = 0
    for voice in VOICES:
        for text in TEXTS:
            speech = synthesize(text, voice=voice)
            motion = lipsync_phonemes(speech, options).motion
            values = motion.full()
            for phoneme in speech.phonemes:
                if phoneme.phoneme not in BILABIALS:
                    continue
                # Frame i shows the mouth of the sound lead_frames later (anticipation).
                first, last = (int(np.ceil(t * motion.fps - options.lead_frames)) for t in (phoneme.start_s, phoneme.end_s))
                for frame in range(max(first, 0), last):
                    if frame < len(values):
                        total += 1
                        closed += lm.signed_lip_gap(rig.targets(values[frame])) < SEALED_GAP
    print(f"== lips on /p b m/ (enliven say, {len(VOICES)} voices x {len(TEXTS)} texts, on the astronaut, photo lip gap "
          f"{lm.signed_lip_gap(subject.landmarks):.2f}): closed on {closed / max(total, 1):.1%} of {total} frames "
          f"(lip gap under {SEALED_GAP} of the mouth width; target >= 90 %)")


# ---------------------------------------------------------------- 3. real clips

EVAL_SPEECH_CLIPS = ("d6", "d9", "d10", "d11", "d12", "d20")
MAXIMUM_LAG_S = 0.2


def measure_real_clips(videos: Path, methods: tuple[str, ...], model: Path | None, cache: Path | None) -> None:
    print(f"== real clips ({videos}): jaw_open from the audio vs jaw_open captured from the video (enliven.capture)")
    if not videos.is_dir():
        print("  (no eval videos here; skipped)")
        return
    print("  r at lag 0, and the best r within +-200 ms (lag in frames; + = audio curve late). "
          "Background: loud-vowel level over the level in pauses (dB; low = sound under the speech)")
    header = "".join(f"  {method:>8} r0  best (lag)" for method in methods)
    print(f"  clip   fps frames  speech s  background{header}")
    scores: dict[str, list[tuple[float, float]]] = {method: [] for method in methods}
    gap_scores: dict[str, list[tuple[float, float]]] = {method: [] for method in methods}
    gap_rows = []
    for name in EVAL_SPEECH_CLIPS:
        path = videos / f"LivePortrait__{name}.mp4"
        if not path.exists():
            print(f"  {name:5}  missing")
            continue
        captured_jaw, fps = _captured_jaw(path, cache)
        lip_gap = _tracked_lip_gap(path, cache)
        maximum_lag = int(round(MAXIMUM_LAG_S * fps))
        cells, gap_cells = [], []
        for method in methods:
            result = lipsync_audio(path, LipsyncOptions(fps=fps, lead_frames=0), method=method, model_path=model)
            jaw = mouth_opening(result.motion)
            count = min(jaw.size, captured_jaw.size)
            r0, best, lag = jaw_agreement(jaw[:count], captured_jaw[:count], maximum_lag)
            scores[method].append((r0, best))
            cells.append(f"  {r0:11.2f}  {best:4.2f} ({lag:+d})")
            both = min(jaw.size, lip_gap.size)
            r0, best, lag = jaw_agreement(jaw[:both], lip_gap[:both], maximum_lag)
            gap_scores[method].append((r0, best))
            gap_cells.append(f"  {r0:11.2f}  {best:4.2f} ({lag:+d})")
        print(f"  {name:5} {fps:4.0f} {count:6d}  {result.speech_s:8.1f}  {_speech_over_pauses_db(path):7.0f} dB"
              + "".join(cells))
        both = min(captured_jaw.size, lip_gap.size)
        gap_rows.append(f"  {name:5} {pearson(captured_jaw[:both], lip_gap[:both]):13.2f}" + "".join(gap_cells))
    _print_means(scores)
    if gap_rows:
        print("  the same against the lip gap tracked on the video; first, how closely the captured jaw follows it:")
        print(f"  clip  captured vs gap{header}")
        print("\n".join(gap_rows))
        _print_means(gap_scores)


def _print_means(scores: dict[str, list[tuple[float, float]]]) -> None:
    for method, rows in scores.items():
        if rows:
            r0s, bests = np.array(rows).T
            print(f"  {method:8}: mean r lag 0 {r0s.mean():.2f} (min {r0s.min():.2f}), best lag {bests.mean():.2f} "
                  f"(min {bests.min():.2f}); target mean >= 0.55, none below 0.3")


def _captured_jaw(path: Path, cache: Path | None) -> tuple[np.ndarray, float]:
    """(captured opening per video frame as jaw_open alone, Capture.speech_jaw; fps); from learned_data's cache
    when given (captured on first use)."""
    if cache is not None:
        from enliven.speech.learned_data import cached_clip

        clip = cached_clip(path, path.stem, cache)
        return clip.targets[:, 0].astype(np.float64), clip.fps
    from enliven.capture import capture_video

    capture = capture_video(path, reference="auto")
    return capture.speech_jaw(), capture.motion.fps


def _tracked_lip_gap(path: Path, cache: Path | None) -> np.ndarray:
    """The inner-lip gap over mouth width per video frame, tracked by MediaPipe (frames without a face
    interpolated, as capture fills its motion); kept in `cache` as <clip>.lip_gap.npy when given."""
    stored = None if cache is None else cache / f"{path.stem}.lip_gap.npy"
    if stored is not None and stored.exists():
        return np.load(stored)
    from enliven import landmarks
    from enliven.capture import fill_gaps, track_video

    points, _ = track_video(path)
    gap = np.array([[landmarks.mouth_openness(frame) if np.isfinite(frame).all() else np.nan] for frame in points])
    gap = fill_gaps(gap)[:, 0]
    if stored is not None:
        stored.parent.mkdir(parents=True, exist_ok=True)
        np.save(stored, gap)
    return gap


def _speech_over_pauses_db(path: Path) -> float:
    from enliven.speech.acoustic import extract_features, speech_levels

    levels = speech_levels(extract_features(stream_audio(path), ANALYSIS_SAMPLE_RATE))
    return levels.loud_db - levels.floor_db


if __name__ == "__main__":
    started = time.perf_counter()
    main()
    print(f"(bench took {time.perf_counter() - started:.0f} s; peak memory "
          f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB)")
