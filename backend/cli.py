"""The `enliven` command line.

Each subcommand is a small function taking parsed arguments and returning an
exit code. Errors a person can fix (no face, a bad file) are printed as one
clear line with a distinct exit code, never as a traceback:
  1 other failure, 2 usage, 3 no face, 4 unreadable or too large image, 5 bad motion,
  6 unusable audio (unreadable, or no speech in it), 7 text to speech failed, 8 unusable checkpoint.
"""
from __future__ import annotations

import argparse
import json
import signal
import sys
import time
from contextlib import closing
from pathlib import Path

from . import __version__
from .arguments import (ALL_FACES, add_photo_options, add_size_option, analyze_photo, check_output_file,
                        check_output_folder, check_render_arguments, load_photo, number_in, whole_number_in)
from .errors import EXIT_CODES, BadMotionError, EnlivenError, UsageError
from .remote_render import add_server_options, connection_keys, render_on_server
from .sequence import VIDEO_SUFFIXES, FrameSink
from .shared.naming import FRAME_FORMATS
from .shared.motion import MotionError


def main(argv: list[str] | None = None) -> int:
    # A polite stop (`kill`, a job scheduler) ends a run like Ctrl-C does: what
    # is half-made is removed, frames already written stay. `serve` and
    # training install their own handlers for it.
    signal.signal(signal.SIGTERM, _interrupt)
    parser = build_parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "func"):
        parser.print_help()
        return 2
    try:
        return args.func(args)
    except EnlivenError as error:
        print(f"enliven: error: {error.message}", file=sys.stderr)
        return error.exit_code
    except MotionError as error:
        print(f"enliven: error: {error}", file=sys.stderr)
        return BadMotionError.exit_code
    except KeyboardInterrupt:
        print("enliven: interrupted", file=sys.stderr)
        return 130
    except OSError as error:  # a full disk, a folder we may not write to...
        where = f": '{error.filename}'" if error.filename else ""
        print(f"enliven: error: {error.strerror or error}{where}", file=sys.stderr)
        return 1


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def build_parser() -> argparse.ArgumentParser:
    exit_codes = "\n".join(f"  {code:<4} {meaning}" for code, meaning in EXIT_CODES.items())
    parser = argparse.ArgumentParser(prog="enliven", description="Bring the face in a portrait photo to life.",
                                     epilog=f"exit codes:\n{exit_codes}\n\n`enliven COMMAND --help` explains "
                                            "each command; docs/cli.md has them all.",
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"enliven {__version__}")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")

    analyze = commands.add_parser("analyze", help="find the face: box, head pose, eye and mouth openness")
    analyze.add_argument("photo", type=Path)
    analyze.add_argument("--json", action="store_true", help="print the result as JSON")
    analyze.add_argument("--overlay", type=Path, metavar="PNG", help="write a debug picture with landmarks and person mask")
    add_photo_options(analyze, several=True)
    analyze.set_defaults(func=run_analyze)

    generate = commands.add_parser("generate", help="animate a photo into a numbered PNG sequence")
    generate.add_argument("photo", type=Path)
    source = generate.add_mutually_exclusive_group(required=True)
    source.add_argument("--motion", type=Path, metavar="FILE", action="append",
                        help="motion file (.json or .csv); a .json may hold a motion per face; or one file per "
                             "face, --motion repeated in --face order")
    source.add_argument("--preset", metavar="NAME", help="built-in motion, see `enliven presets`")
    generate.add_argument("--out", type=Path, required=True, metavar="DIR", help="folder for frame_00001.png ...")
    add_size_option(generate)
    generate.add_argument("--video", type=Path, metavar="MP4",
                          help=f"also write an H.264 video ({', '.join(VIDEO_SUFFIXES)}; an odd width or height is "
                               "padded by a pixel, which H.264 needs)")
    generate.add_argument("--audio", type=Path, metavar="FILE", help="put this sound (any audio or video file) into --video")
    generate.add_argument("--audio-offset", type=number_in(-3600.0, 3600.0, what="a number of seconds"),
                          metavar="SECONDS",
                          help="start the sound this much later (negative: earlier) than the first frame")
    generate.add_argument("--contact-sheet", type=Path, metavar="PNG", help="also write a grid of thumbnails")
    generate.add_argument("--alpha", action="store_true",
                          help="cut the person out: RGBA frames whose uncovered background is transparent")
    generate.add_argument("--format", choices=FRAME_FORMATS, default="png",
                          help="png (default; 8-bit sRGB) or exr (multilayer OpenEXR: linear colour and alpha, "
                               "the person, face, eye and mouth mattes and the motion vectors as layers)")
    generate.add_argument("--png-compression", type=whole_number_in(0, 9), default=1, metavar="N",
                          help="0 stores the pixels (fastest, largest files: for big photos), 1 (default) a fast "
                               "deflate, up to 9 (smallest, slowest)")
    generate.add_argument("--engine", help="frame generator: warp (default; with --server, the server's default) "
                                           "or refine (the warp with the eyes and mouth redrawn by trained generators)")
    generate.add_argument("--checkpoint", type=Path, metavar="PT",
                          help="another model for --engine refine: RUN_DIR/best.pt from `enliven train-regions` "
                               "(eyes and mouth) or `enliven train` (head refiner); default: the shipped one")
    generate.add_argument("--fps", type=float,
                          help="frames per second for presets and CSV files without times (default 24); for a "
                               "motion file that has its own rate, replaces it (the motion plays faster or slower)")
    generate.add_argument("--duration", type=float, metavar="SECONDS", help="length of a preset (idle-alive, talk)")
    generate.add_argument("--seed", type=int,
                          help="random seed for presets with variation (default 0; each face draws its own from it)")
    generate.add_argument("--loop", action="store_true",
                          help="make the preset a seamless loop: the last frame flows into the first "
                               "(idle-alive; see `enliven presets`)")
    generate.add_argument("--breaths-per-minute", type=float, metavar="N",
                          help="breathing rate of idle-alive (default 15; a resting adult breathes 12 to 20 times "
                               "a minute); each face breathes within 5%% of it, and a --loop as near it as "
                               "whole breaths in its length allow")
    generate.add_argument("--strict", action="store_true", help="refuse out-of-range or NaN motion instead of clamping it")
    generate.add_argument("--workers", type=whole_number_in(1, 64), default=None, metavar="N",
                          help="several faces: processes rendering whole frames side by side (default: one per "
                               "core, at most 8, as many as half the free memory holds; 1 renders in this process)")
    add_server_options(generate)
    add_photo_options(generate, several=True)
    generate.set_defaults(func=run_generate)

    presets = commands.add_parser("presets", help="list the built-in motions")
    presets.set_defaults(func=run_presets)

    # Commands that live beside the code they drive register themselves.
    from .capture import add_commands as add_capture_commands
    from .neural.commands import add_commands as add_neural_commands
    from .service.commands import add_keys_command, add_serve_command
    from .speech.commands import add_commands as add_speech_commands
    from .talk import add_command as add_talk_command

    add_capture_commands(commands)
    add_neural_commands(commands)
    add_speech_commands(commands)
    add_talk_command(commands)
    add_serve_command(commands)
    add_keys_command(commands)
    return parser


def run_analyze(args: argparse.Namespace) -> int:
    from .analysis import analyze_faces, draw_overlay
    from .images import write_png

    if args.overlay is not None:  # before the analysis (a folder named here failed after it, with exit 1)
        check_output_folder(args.overlay.parent)
        check_output_file(args.overlay, [args.photo])
    rgb = load_photo(args)
    chosen = analyze_faces(rgb, None if args.face in (None, ALL_FACES) else list(args.face))
    every = {subject.face_index: subject for subject in analyze_faces(rgb) + chosen}  # listed, numbered in order
    subjects = [every[face] for face in sorted(every)]
    subject = chosen[0]
    summary = subject.summary()
    summary["faces"] = [face.summary() for face in subjects]
    if subject.faces_found > 1 and args.face is None:
        print(f"enliven: {subject.faces_found} faces found; details of face {subject.face_index} (the largest), "
              "every face listed. Choose one with --face N; animate several with --face 0,2 or --face all.",
              file=sys.stderr)
    if args.overlay:
        overlay = None
        for face in subjects:
            overlay = draw_overlay(face, overlay)
        write_png(args.overlay, overlay)
        summary["overlay"] = str(args.overlay)
    if args.json:
        print(json.dumps({"face_found": True, **summary}, indent=2))
        return 0
    pose = summary["head_pose_deg"]
    x0, y0, x1, y1 = summary["face_box"]
    print(f"face found      yes ({summary['faces_found']} in the photo, using face {summary['face_index']})")
    print(f"face box        x {x0:.0f}..{x1:.0f}, y {y0:.0f}..{y1:.0f} px of {summary['width']}x{summary['height']}")
    print(f"head pose       yaw {pose['yaw']:+.1f}°, pitch {pose['pitch']:+.1f}°, roll {pose['roll']:+.1f}°")
    print(f"eye openness    left {summary['eye_openness']['left']:.2f}, right {summary['eye_openness']['right']:.2f}"
          "  (eye aspect ratio; about 0.3 open, under 0.1 closed)")
    print(f"mouth openness  {summary['mouth_openness']:.2f}  (lip gap / mouth width)")
    body = summary["body"]
    if body is None:
        print("body            no shoulders in the photo: the body channels (breathing, shrugs, lean, turn) do nothing")
    else:
        (lx, ly), (rx, ry) = body["shoulders"]
        print(f"body            shoulders at ({rx:.0f}, {ry:.0f}) and ({lx:.0f}, {ly:.0f}) px, "
              f"{body['shoulder_width_px']:.0f} px apart{'' if body['hips'] else ' (hips out of the photo)'}")
    if len(subjects) > 1:
        print("faces           (0 = largest; animate with --face N, --face 0,2 or --face all)")
        for face in summary["faces"]:
            fx0, fy0, fx1, fy1 = face["face_box"]
            print(f"  face {face['face_index']:<3}     x {fx0:.0f}..{fx1:.0f}, y {fy0:.0f}..{fy1:.0f}, "
                  f"{face['face_width_px']:.0f} px wide, yaw {face['head_pose_deg']['yaw']:+.1f}°")
    if args.overlay:
        print(f"overlay         {args.overlay}")
    return 0


def run_generate(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from .generate_faces import (group_frames, group_motion_for_server, read_motion_files, several_faces, single_face,
                                 single_face_motion)

    if args.alpha and args.video is not None:
        raise UsageError("--video has no alpha channel: make the video in a run without --alpha")
    if args.video is not None and args.video.suffix.lower() not in VIDEO_SUFFIXES:
        raise UsageError(f"{args.video}: the video must end in {', '.join(VIDEO_SUFFIXES)}")
    check_render_arguments(args, [args.out, *(path.parent for path in (args.video, args.contact_sheet) if path)],
                           [args.video, args.contact_sheet])
    if args.server:
        connection_keys(args)  # (one key alone was a traceback; a file that is no key, exit 1 after the analysis)
    if args.audio is not None and args.video is None:
        raise UsageError("--audio goes into the video: add --video OUT.mp4")
    if args.audio_offset is not None and args.audio is None:  # (it was ignored silently)
        raise UsageError("--audio-offset moves the --audio sound: add --audio FILE")
    if args.audio is not None:
        from .speech.audio import check_audio_decodes

        check_audio_decodes(args.audio)
    files = read_motion_files(args)
    faces = None  # several faces: their numbers, for a server
    if several_faces(args, files) and args.server:
        faces, values, fps = group_motion_for_server(args, files)
        frame_count = values.shape[1]
    elif several_faces(args, files):
        frame_count, fps, frames = group_frames(args, files)
        values = None
    else:
        args.face_given = args.face is not None or any(file.per_face for file in files)
        args.face = single_face(args, files)
        motion, subject = single_face_motion(args, files)
        values = motion.full()
        frame_count, fps = len(values), motion.fps
    audio_offset = args.audio_offset or 0.0
    if args.audio is not None and audio_offset >= frame_count / fps:
        print(f"enliven: warning: --audio-offset {audio_offset:g} starts the sound after the last frame "
              f"({frame_count / fps:.2f} s): the video is silent", file=sys.stderr)
    sink = FrameSink(args.out, frame_count, fps, video=args.video, contact_sheet=args.contact_sheet,
                     audio=args.audio, audio_offset_s=audio_offset, fmt=args.format,
                     png_level=args.png_compression)
    # Shown from the first frame on (delay), so what the photo's analysis says is not written into the bar.
    progress = tqdm(total=frame_count, unit="frame", desc="generating", file=sys.stderr, dynamic_ncols=True,
                    delay=1e-3)
    started = time.perf_counter()
    try:
        if values is None:
            with closing(frames):  # (its worker processes stop with it, even on Ctrl-C)
                for index, layers in enumerate(frames):
                    sink.add(index, layers)
                    progress.update()
        elif args.server:
            render_on_server(args, values, fps, sink, progress, faces)
        else:
            from .animator import Animator

            animator = Animator(subject or analyze_photo(args), engine=args.engine, checkpoint=args.checkpoint)
            passes = args.format == "exr"  # an EXR frame carries every pass
            for index, row in enumerate(values):
                previous = values[index - 1] if index > 0 else None  # for the motion vectors
                sink.add(index, animator.render_layers(row, previous, args.alpha, passes))
                progress.update()
        progress.close()  # before the sink's last messages (stale frames removed), not through the bar
        sink.close()
    except BaseException:
        sink.abort()  # frames already written stay; a half-made video does not
        raise
    finally:
        progress.close()
    elapsed = time.perf_counter() - started
    width, height = sink.size or (0, 0)
    size = f"{width}x{height}, " if sink.size else ""
    print(f"wrote {frame_count} frames ({size}{fps:g} fps) to {args.out} in {elapsed:.1f} s "
          f"({frame_count / max(elapsed, 1e-9):.1f} frames/s including {args.format.upper()} writing)")
    for extra in (args.video, args.contact_sheet):
        if extra:
            print(f"wrote {extra}")
    return 0


def run_presets(args: argparse.Namespace) -> int:
    from .shared.presets import PRESETS

    width = max(map(len, PRESETS))
    for name, preset in PRESETS.items():
        loop = "loop" if preset.loopable else "    "
        print(f"{name:<{width}}  {preset.duration_s:5.1f} s  {loop}  {preset.description}")
    print("\nloop: can be made a seamless loop with `generate --loop`")
    return 0


if __name__ == "__main__":
    sys.exit(main())
