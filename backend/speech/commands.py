"""The `enliven lipsync` and `enliven say` subcommands.

    enliven lipsync AUDIO --out MOTION.json [--method learned|acoustic] [--fps N] [--strength S] [--lead FRAMES]
                    [--head-motion AMOUNT] [--blinks] [--seed N] [--photo PHOTO [--face N]]
    enliven say "TEXT" --out DIR [--voice NAME] [--rate WPM] [--method phonemes|acoustic]
                    [same motion options]

Heavy imports happen inside the command functions, so that registering the
commands costs nothing when another command runs.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..arguments import add_photo_options, analyze_photo, check_motion_path, number_in, whole_number_in, words

# Kept here, not imported from lipsync.py, so that registering the commands stays free of numpy and the rest.
METHODS = ("learned", "acoustic")
DEFAULT_AUDIO_METHOD = "acoustic"

def add_commands(subparsers) -> None:
    """Register `lipsync` and `say` on the `enliven` command line's subparsers."""
    lipsync = subparsers.add_parser(
        "lipsync", help="mouth motion from speech: an audio file or a video's sound track",
        description="Analyse speech (WAV, FLAC, MP3, OGG, ... or the sound of a video) and write mouth motion "
                    "(jaw_open, pucker, wide; lips_part at 0) as keyframes. Works offline.",
    )
    lipsync.add_argument("audio", type=Path, metavar="AUDIO", help="audio file, or a video with a sound track")
    lipsync.add_argument("--out", type=Path, required=True, metavar="MOTION.json",
                         help="motion file to write (.json or .csv)")
    lipsync.add_argument("--method", choices=METHODS, default=DEFAULT_AUDIO_METHOD,
                         help="learned: a small network trained on real talking faces (needs PyTorch; falls back to "
                              "acoustic with a warning when it cannot be used); acoustic: a formant tracker, no model "
                              f"(default {DEFAULT_AUDIO_METHOD})")
    _add_motion_options(lipsync)
    lipsync.set_defaults(func=run_lipsync)

    say = subparsers.add_parser(
        "say", help="speak text offline (eSpeak NG) and make the matching mouth motion",
        description="Synthesise TEXT with eSpeak NG and write DIR/speech.wav, DIR/motion.json (mouth motion "
                    "from the exact phoneme timings) and DIR/phonemes.json (what is said when).",
    )
    say.add_argument("text", type=words, metavar="TEXT", help='the words to say; "-" reads them from standard input')
    say.add_argument("--out", type=Path, required=True, metavar="DIR",
                     help="folder for speech.wav, motion.json, phonemes.json")
    say.add_argument("--voice", default=None, metavar="NAME",
                     help="eSpeak NG voice or language: en (default), en-us, de, fr, en+f3 ... (`espeak-ng --voices`)")
    say.add_argument("--rate", type=whole_number_in(80, 450), default=None, metavar="WPM",
                     help="speaking rate in words per minute, 80-450 (default 175)")
    say.add_argument("--method", choices=("phonemes", "acoustic"), default="phonemes",
                     help="phonemes: from the synthesiser's timings (default, more accurate); "
                          "acoustic: analyse the sound like `lipsync` does")
    _add_motion_options(say)
    say.set_defaults(func=run_say)


def _add_motion_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--fps", type=number_in(1, 1000), default=24.0, help="frames per second (default 24)")
    parser.add_argument("--strength", type=number_in(0, 3), default=1.0,
                        help="scale of the mouth motion, 0-3 (default 1)")
    parser.add_argument("--lead", type=number_in(0, 10), default=2.0, metavar="FRAMES",
                        help="the mouth moves this many frames before the sound, 0-10 (default 2)")
    parser.add_argument("--head-motion", type=number_in(0, 5), default=0.0, metavar="AMOUNT",
                        help="add small head motion that follows the speech; 1 is natural (default 0: none)")
    parser.add_argument("--blinks", action="store_true", help="add blinks at natural intervals")
    parser.add_argument("--seed", type=whole_number_in(0, 2**32 - 1), default=0,
                        help="random seed for head motion and blinks (default 0)")
    parser.add_argument("--photo", type=Path, metavar="PHOTO",
                        help="the portrait that will say it: on a photo whose mouth is open, speech opens the lips "
                             "from closed (negative jaw_open) instead of from the photo's own opening")
    add_photo_options(parser)


def _options(args: argparse.Namespace):
    from ..rig import mouth_opening_of
    from ..shared.mouth import CLOSED_LIPS
    from .lipsync import LipsyncOptions

    return LipsyncOptions(fps=args.fps, strength=args.strength, lead_frames=args.lead,
                          head_motion=args.head_motion, blinks=args.blinks, seed=args.seed,
                          photo_mouth=CLOSED_LIPS if args.photo is None else mouth_opening_of(analyze_photo(args)))


def run_lipsync(args: argparse.Namespace) -> int:
    from ..shared.motion import save_motion
    from .lipsync import lipsync_audio

    check_motion_path(args.out)
    result = lipsync_audio(args.audio, _options(args), method=args.method)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    save_motion(result.motion, args.out)
    speed = result.duration_s / max(result.processing_s, 1e-9)
    speed_text = f"{speed:.0f}" if speed >= 10 else f"{speed:.2g}"  # (a first run's 0.46 read "0x")
    print(f"wrote {result.motion.frame_count} frames ({result.motion.fps:g} fps, {result.duration_s:.2f} s of audio, "
          f"{result.speech_s:.1f} s of speech; channels {', '.join(result.motion.channels)}) to {args.out} "
          f"in {result.processing_s:.2f} s ({speed_text}x real time, {result.method} lip-sync)")
    return 0


def run_say(args: argparse.Namespace) -> int:
    from ..shared.motion import save_motion
    from .audio import write_wav
    from .lipsync import lipsync_audio, lipsync_phonemes
    from .tts import DEFAULT_RATE_WPM, DEFAULT_VOICE, synthesize

    text = sys.stdin.read() if args.text == "-" else args.text
    options = _options(args)
    speech = synthesize(text, voice=args.voice or DEFAULT_VOICE, rate_wpm=args.rate or DEFAULT_RATE_WPM)
    args.out.mkdir(parents=True, exist_ok=True)
    wav_path, motion_path, timings_path = args.out / "speech.wav", args.out / "motion.json", args.out / "phonemes.json"
    write_wav(wav_path, speech.samples, speech.sample_rate)
    if args.method == "acoustic":
        result = lipsync_audio(wav_path, options)
    else:
        result = lipsync_phonemes(speech, options)
    save_motion(result.motion, motion_path)
    timings_path.write_text(json.dumps(speech.timings_dict(), ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {wav_path} ({speech.duration_s:.2f} s, {speech.sample_rate} Hz, voice {speech.voice}, "
          f"{speech.rate_wpm} words/min)")
    print(f"wrote {motion_path} ({result.motion.frame_count} frames at {result.motion.fps:g} fps, "
          f"{result.method} lip-sync; channels {', '.join(result.motion.channels)})")
    print(f"wrote {timings_path} ({len(speech.words)} words, {len(speech.phonemes)} phonemes)")
    return 0
