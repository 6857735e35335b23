"""`enliven talk`: a photo and text or a recording in, a talking MP4 with sound out.

    enliven talk PHOTO (--text "..." [--voice V] [--rate WPM] | --audio FILE) --out VIDEO.mp4
                 [--frames DIR] [--motion-out MOTION.json] [--size N] [--fps F]
                 [--engine warp|refine] [--checkpoint PT] [--face N] [--seed N] [--head-motion A]
                 [--server ADDRESS [--server-key F --client-key F]]

One step instead of three (`say` or `lipsync`, then `generate`, then muxing by
hand): the mouth follows the speech (eSpeak NG's exact phoneme timings for
text; the acoustic analysis for a recording), blinks and a little head motion
that follows the speech make the face alive, and the frames stream straight
into an H.264 + AAC MP4 with the sound in sync. Memory stays flat for long
recordings: the sound is analysed block by block and frames are never held.
The video is written under a temporary name and renamed when complete, so an
interrupted run never leaves a half-written VIDEO.mp4. With --server the
frames are rendered by a running `enliven serve` (a GPU box, say) and come
back here, where the lip-sync runs and the video is muxed.

Errors keep the command line's exit codes: 3 no face, 6 unusable audio,
7 text to speech failed (see `enliven.cli`).
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from .errors import UsageError
from .arguments import (MOTION_SUFFIXES, add_photo_options, add_size_option, analyze_photo, check_motion_path,
                        check_render_arguments, number_in, whole_number_in, words)
from .remote_render import add_server_options, connection_keys, render_on_server
from .sequence import VIDEO_SUFFIXES



def add_command(subparsers) -> None:
    """Register `talk` on the `enliven` command line's subparsers."""
    talk = subparsers.add_parser(
        "talk", help="make the photo say a text or a recording: one MP4 with sound",
        description="Lip-sync, blinks and head motion from speech, rendered into an H.264 + AAC video with "
                    "the sound muxed in sync. Give the words (--text, spoken offline by eSpeak NG) or a "
                    "recording (--audio: WAV, FLAC, MP3, ... or a video's sound track).",
    )
    talk.add_argument("photo", type=Path)
    speech = talk.add_mutually_exclusive_group(required=True)
    speech.add_argument("--text", type=words, metavar="TEXT", help='the words to say; "-" reads them from standard input')
    speech.add_argument("--audio", type=Path, metavar="FILE", help="a recording of the speech")
    talk.add_argument("--out", type=Path, required=True, metavar="VIDEO.mp4",
                      help=f"the video to write ({', '.join(VIDEO_SUFFIXES)})")
    talk.add_argument("--voice", default=None, metavar="NAME", help="eSpeak NG voice for --text (default en)")
    talk.add_argument("--rate", type=whole_number_in(80, 450), default=None, metavar="WPM",
                      help="speaking rate for --text in words per minute, 80-450 (default 175)")
    talk.add_argument("--frames", type=Path, metavar="DIR", help="also keep the frames as frame_00001.png ... here")
    talk.add_argument("--motion-out", type=Path, metavar="MOTION.json",
                      help=f"also keep the motion ({', '.join(MOTION_SUFFIXES)}), e.g. to edit it in Blender")
    add_size_option(talk)
    talk.add_argument("--fps", type=number_in(1, 120), default=24.0, help="frames per second (default 24)")
    talk.add_argument("--engine", help="frame generator: warp (default; with --server, the server's default) or refine")
    talk.add_argument("--checkpoint", type=Path, metavar="PT",
                      help="another model for --engine refine (default: the eye and mouth generators that ship)")
    talk.add_argument("--head-motion", type=number_in(0, 5), default=None, metavar="AMOUNT",
                      help="head motion that follows the speech; 0 none, 1 natural (default: natural)")
    talk.add_argument("--seed", type=whole_number_in(0, 2**32 - 1), default=0,
                      help="random seed for blinks and head motion (default 0)")
    add_photo_options(talk)
    add_server_options(talk)
    talk.set_defaults(func=run_talk)


def run_talk(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from .animator import Animator
    from .sequence import FrameSink
    from .shared.motion import save_motion
    from .speech.audio import check_audio_file
    from .rig import mouth_opening_of
    from .shared.mouth import CLOSED_LIPS
    from .speech.lipsync import LipsyncOptions

    # Everything that can be refused cheaply is refused before the long part.
    if args.out.suffix.lower() not in VIDEO_SUFFIXES:
        raise UsageError(f"{args.out}: the video must end in {', '.join(VIDEO_SUFFIXES)}")
    if args.motion_out is not None:
        check_motion_path(args.motion_out)
    check_render_arguments(args, [args.out.parent, *([args.frames] if args.frames else [])], [args.out, args.motion_out])
    if args.server:
        connection_keys(args)  # (one key alone was a traceback; a file that is no key, exit 1 after the analysis)
    if args.audio is not None:
        check_audio_file(args.audio)
    started = time.perf_counter()
    # No face: exit 3 before any speech work (a server says so when it starts rendering).
    subject = None if args.server else analyze_photo(args)
    # The speech opens this photo's lips from closed, however far its own mouth is open (a server does the same).
    options = LipsyncOptions.talking(args.fps, args.head_motion, args.seed,
                                     photo_mouth=CLOSED_LIPS if subject is None else mouth_opening_of(subject))

    with tempfile.TemporaryDirectory(prefix="enliven-talk-") as scratch:
        sound, result = _speech(args, options, Path(scratch))
        motion = result.motion
        if args.motion_out is not None:
            args.motion_out.parent.mkdir(parents=True, exist_ok=True)
            save_motion(motion, args.motion_out)
        values = motion.full()
        args.out.parent.mkdir(parents=True, exist_ok=True)
        sink = FrameSink(args.frames, len(values), motion.fps, video=args.out, audio=sound)
        progress = tqdm(total=len(values), unit="frame", desc="talking", file=sys.stderr, dynamic_ncols=True)
        try:
            if args.server:
                render_on_server(args, values, motion.fps, sink, progress)
            else:
                animator = Animator(subject, engine=args.engine, checkpoint=args.checkpoint)
                for index, frame in enumerate(animator.render_all(values)):
                    sink.add(index, frame)
                    progress.update()
            sink.close()
        except BaseException:
            sink.abort()
            raise
        finally:
            progress.close()

    elapsed = time.perf_counter() - started
    seconds = len(values) / motion.fps
    width, height = sink.size or (0, 0)
    print(f"wrote {args.out} ({seconds:.2f} s, {len(values)} frames of {width}x{height} at {motion.fps:g} fps, "
          f"{result.method} lip-sync, sound muxed) in {elapsed:.1f} s "
          f"({seconds / max(elapsed, 1e-9):.2f} s of video per second)")
    for extra in (args.frames, args.motion_out):
        if extra is not None:
            print(f"wrote {extra}")
    return 0


def _speech(args: argparse.Namespace, options, scratch: Path):
    """(the sound file to mux, the lip-sync result) for --text or --audio."""
    from .speech.audio import write_wav
    from .speech.lipsync import lipsync_audio, lipsync_phonemes
    from .speech.tts import DEFAULT_RATE_WPM, DEFAULT_VOICE, synthesize

    if args.audio is not None:
        return args.audio, lipsync_audio(args.audio, options)
    text = sys.stdin.read() if args.text == "-" else args.text
    speech = synthesize(text, voice=args.voice or DEFAULT_VOICE, rate_wpm=args.rate or DEFAULT_RATE_WPM)
    wav = scratch / "speech.wav"
    write_wav(wav, speech.samples, speech.sample_rate)
    return wav, lipsync_phonemes(speech, options)
