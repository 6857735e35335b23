"""Command-line options and checks shared by several `enliven` commands: the
photo and its face (`analyze`, `generate`, `talk`), the frame rate, numbers in
a range and motion file names."""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

from .errors import UsageError
from .images import DEFAULT_MAX_PIXELS, DEFAULT_MAX_SIDE, LARGEST_PIXELS, MIN_SIDE
from .shared.motion import MotionError, checked_fps
from .shared.naming import is_frame_filename
from .shared.remote import endpoint_problem

MOTION_SUFFIXES = (".json", ".csv")


def add_photo_options(parser: argparse.ArgumentParser, several: bool = False) -> None:
    if several:
        parser.add_argument("--face", type=face_selection, default=None, metavar="N|N,M|all",
                            help="which face or faces: a number (0 = largest; the default, or the largest whose "
                                 "landmarks are found), numbers such as 0,2, or all; each face moves by its own motion")
    else:
        parser.add_argument("--face", type=int, default=0, metavar="N", help="which face to use, 0 = largest (default)")
    parser.set_defaults(several_faces=several)  # (what analyze_photo's hint may offer)
    parser.add_argument("--max-pixels", type=number_in(0.01, MAX_MEGAPIXELS), default=DEFAULT_MAX_PIXELS / 1e6,
                        metavar="MP",
                        help=f"refuse photos larger than this many megapixels (default {DEFAULT_MAX_PIXELS / 1e6:.0f}, "
                             f"at most {MAX_MEGAPIXELS:.0f})")


ALL_FACES = "all"
MAX_MEGAPIXELS = LARGEST_PIXELS / 1e6  # --max-pixels at most


def face_selection(text: str) -> tuple[int, ...] | str:
    """An argparse type for --face: "all", or face numbers ("2", "0,2") as a tuple without repeats."""
    if text.strip().lower() == ALL_FACES:
        return ALL_FACES
    try:
        faces = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a face number, numbers such as 0,2, or all") from None
    if any(face < 0 for face in faces):
        raise argparse.ArgumentTypeError(f"face numbers start at 0, got {text}")
    if len(set(faces)) != len(faces):
        raise argparse.ArgumentTypeError(f"{text} names a face more than once")
    return faces


def photo_limits(args: argparse.Namespace) -> tuple[int, int]:
    """(most pixels, longest side) a photo may have, from --max-pixels."""
    max_pixels = int(args.max_pixels * 1e6)
    return max_pixels, max(DEFAULT_MAX_SIDE, int(max_pixels**0.5))


def load_photo(args: argparse.Namespace):
    """The pixels of `args.photo` (scaled to `args.size` when given), within `args.max_pixels`."""
    from .images import load_image, resize_long_side

    rgb = load_image(args.photo, *photo_limits(args))
    if getattr(args, "size", None):
        rgb = resize_long_side(rgb, args.size)
    return rgb


def analyze_photo(args: argparse.Namespace):
    """The analysed subject of `args.photo` (scaled to `args.size` when given)."""
    from .analysis import analyze_image, first_face

    face = args.face[0] if isinstance(args.face, tuple) else args.face
    chosen = face is not None and getattr(args, "face_given", True)
    subject = analyze_image(load_photo(args), face_index=face) if chosen else first_face(load_photo(args))
    if subject.faces_found > 1:
        which = ("" if chosen else " (the largest)" if subject.face_index == 0
                 else " (the largest whose landmarks were found)")  # (first_face: as `enliven analyze` picks it)
        print(f"enliven: {subject.faces_found} faces found; using face {subject.face_index}"
              f"{which}. Choose another with --face N"
              f"{', or several with --face 0,2 or --face all' if getattr(args, 'several_faces', False) else ''}.",
              file=sys.stderr)
    return subject


def analyze_photo_faces(args: argparse.Namespace, faces: tuple[int, ...] | str | None = None) -> list:
    """The analysed subjects of the faces `faces` (default `args.face`) of `args.photo`: numbers, or "all"
    (every face whose landmarks can be found)."""
    from .analysis import analyze_faces

    faces = args.face if faces is None else faces
    subjects = analyze_faces(load_photo(args), None if faces == ALL_FACES else list(faces))
    print(f"enliven: {subjects[0].faces_found} face(s) found; animating face{'s' if len(subjects) > 1 else ''} "
          f"{', '.join(str(subject.face_index) for subject in subjects)}.", file=sys.stderr)
    return subjects


def usable_fps(fps: float) -> float:
    """A frame rate given on the command line, or a UsageError (exit 2)
    unless a motion may have it (above 0, at most the motion loader's MAX_FPS)."""
    try:
        return checked_fps(fps)
    except MotionError as error:  # its message starts "fps must be ..."
        raise UsageError(f"--{error}") from None


def check_motion_path(path: Path) -> None:
    # Checked before the analysis, so a typo does not cost a long run.
    if path.suffix.lower() not in MOTION_SUFFIXES:
        raise UsageError(f"{path}: unknown motion file type {path.suffix!r}; use .json or .csv")
    if path.is_dir():
        raise UsageError(f"{path}: is a folder; give a motion file name such as {path / 'motion.json'}")
    check_output_folder(path.parent)


def check_render_arguments(args: argparse.Namespace, folders: list[Path], files: list[Path | None]) -> None:
    """Before any work: the engine and its model (unless a server renders: it says which engines it has; its
    keys are checked by remote_render.connection_keys), the folders the outputs go to, and that no output
    file (`files`; None: not asked for) is one of the inputs (the photo, the sound, a motion file), which it
    would overwrite. A local run without --engine runs the warp engine; a server given none runs its own
    default (`enliven serve --engine`: sent "warp", a server set up for refine rendered the warp)."""
    if not args.server:
        from .animator import DEFAULT_ENGINE, check_engine_name

        args.engine = args.engine or DEFAULT_ENGINE
        check_engine_name(args.engine, args.checkpoint)
    for folder in folders:
        check_output_folder(folder)
    inputs = [path for path in (args.photo, getattr(args, "audio", None), *(getattr(args, "motion", None) or []))
              if path is not None]
    for folder in folders:  # a frame of an earlier run animated again into its own folder: overwritten
        for source in inputs:
            if is_frame_filename(Path(source).name) and _same_file(Path(source).parent, folder):
                raise UsageError(f"'{source}' is in the output folder '{folder}' under a frame's name, which this "
                                 "run would overwrite; copy it elsewhere, or write the frames to another folder.")
    for output in filter(None, files):
        check_output_file(output, inputs)


def check_output_file(output: Path, inputs: list[Path]) -> None:
    """Refuse, before any work, an output file that names a folder (found only after a whole render, as a
    hidden partial file's error) or one of the `inputs`, which writing it would overwrite."""
    if Path(output).is_dir():
        raise UsageError(f"'{output}' is a folder; name a file to write.")
    for source in inputs:
        if _same_file(output, source):
            raise UsageError(f"'{output}' is also an input ('{source}'), which writing it would overwrite; "
                             "name another file for the output.")


def _same_file(a: Path, b: Path) -> bool:
    try:
        return Path(a).resolve() == Path(b).resolve() or (Path(a).exists() and os.path.samefile(a, b))
    except OSError:
        return False


def check_output_folder(folder: Path) -> None:
    """Refuse, before any long work, an output folder that cannot be made because a part of its path is a file
    (mkdir would say only "File exists"), or that cannot be written in (read-only, or not the user's: a
    contact sheet there failed only after the whole render)."""
    for part in (Path(folder), *Path(folder).parents):
        if part.exists():
            if not part.is_dir():
                raise UsageError(f"'{part}' is a file, not a folder." if part == Path(folder) else
                                 f"'{part}' is a file, so the folder '{folder}' cannot be made there.")
            if not _can_write_in(part):
                raise UsageError(f"'{part}' cannot be written in (read-only, or not yours)." if part == Path(folder)
                                 else f"'{part}' cannot be written in, so the folder '{folder}' cannot be made there.")
            return


def _can_write_in(folder: Path) -> bool:
    """Whether a file can be made in `folder`: tried, since permissions do not say it for root, nor for a
    system folder such as /proc (a video asked for there failed after the render, said to be a full disk)."""
    if not os.access(folder, os.W_OK | os.X_OK):
        return False
    try:
        with tempfile.TemporaryFile(dir=folder):
            return True
    except OSError:
        return False


def words(text: str) -> str:
    """An argparse type: the words to say ("-": standard input); blank is a usage error, not a speech
    engine's failure (it was exit 7)."""
    if not text.strip():
        raise argparse.ArgumentTypeError("no words given; write the words to say, or - to read them from "
                                         "standard input")
    return text


def number_in(low: float, high: float, kind: type = float, what: str = "a number"):
    """An argparse type: a `kind` number from `low` to `high`, or a usage error saying why."""
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {what}") from None
        if not low <= value <= high:  # also refuses nan
            shown = (f"{low:g}", f"{high:g}") if kind is float else (str(low), str(high))
            raise argparse.ArgumentTypeError(f"{text} is out of range; use {shown[0]} to {shown[1]}")
        return value

    return parse


def whole_number_in(low: int, high: int):
    return number_in(low, high, int, "a whole number")


def add_size_option(parser: argparse.ArgumentParser) -> None:
    """--size: the longer side of the frames, from the smallest photo analysed to the largest side a photo may
    have (a typo such as 51200 would otherwise make frames of gigabytes each)."""
    parser.add_argument("--size", type=whole_number_in(MIN_SIDE, DEFAULT_MAX_SIDE), metavar="N",
                        help=f"scale the photo so its longer side is N pixels, {MIN_SIDE} to {DEFAULT_MAX_SIDE} "
                             "(default: full size)")


def endpoint(use: str):
    """An argparse type: a ZeroMQ address to `use` ("connect" or "bind"), or a usage error saying what is wrong."""
    def zmq_address(address: str) -> str:
        problem = endpoint_problem(address, binding=use == "bind")
        if problem is not None:
            raise argparse.ArgumentTypeError(problem)
        return address

    return zmq_address
