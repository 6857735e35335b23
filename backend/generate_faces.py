"""`enliven generate` for several faces of one photo (`--face all`, `--face 0,2`, a per-face motion file).

Which face moves how:
  * `--preset NAME`: every chosen face plays the preset, each with its own seed
    (preset_face_motions): their blinks, glances and breaths never line up, and
    its speech is fitted to each face's own lips (photo_mouths);
  * `--motion FILE` once, a single-face file (.csv, or .json version 1): every
    chosen face plays it, in unison;
  * `--motion FILE` once per chosen face, in --face order: a file per face;
  * `--motion FILE`, a .json with a motion per face (version 2, see
    enliven.shared.face_motion): the faces it names, each its own motion
    (`--face`, if given, must name the same faces, or be `all`).
"""
from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator

import numpy as np

from .arguments import ALL_FACES, analyze_photo_faces, usable_fps
from .errors import UsageError
from .frame_layers import FrameLayers
from .shared.face_motion import FaceMotions, load_face_motions
from .shared.motion import MotionError
from .shared.mouth import MouthOpening
from .shared.presets import preset_speaks


def read_motion_files(args: argparse.Namespace) -> list[FaceMotions]:
    """The --motion files (none for a preset), each as FaceMotions; a single-face file is face 0's motion."""
    # Mistakes in the arguments are usage errors, found before any file is read.
    if args.fps is not None:
        usable_fps(args.fps)
    if args.loop and not args.preset:
        raise UsageError("--loop makes a preset loop; it does not apply to --motion files")
    if args.breaths_per_minute is not None and not args.preset:
        raise UsageError("--breaths-per-minute sets a preset's breathing; it does not apply to --motion files")
    for option, value in (("--duration", args.duration), ("--seed", args.seed)):  # (they were ignored silently)
        if value is not None and not args.preset:
            raise UsageError(f"{option} is a preset's; it does not apply to --motion files")
    files = []
    for path in args.motion or ():
        files.append(load_face_motions(path, fps=args.fps))
        if args.fps is not None and path.suffix.lower() == ".json":  # (a .json always says its rate)
            own = load_face_motions(path).fps
            if abs(own - files[-1].fps) > 1e-9:  # a voice put to it with --audio would run out of step
                print(f"enliven: warning: --fps {files[-1].fps:g} replaces {path}'s own {own:g} fps: its motion "
                      f"plays {files[-1].fps / own:.3g} times as fast", file=sys.stderr)
    return files


def several_faces(args: argparse.Namespace, files: list[FaceMotions]) -> bool:
    """Whether this run animates several faces (or all of them) rather than one."""
    return (args.face == ALL_FACES or (isinstance(args.face, tuple) and len(args.face) > 1) or len(files) > 1
            or any(len(file.faces) > 1 for file in files))


def single_face(args: argparse.Namespace, files: list[FaceMotions]) -> int:
    """The one face a single-face run animates: --face, else the face a per-face file names, else 0."""
    return chosen_faces(args, files)[0]


def chosen_faces(args: argparse.Namespace, files: list[FaceMotions]) -> tuple[int, ...] | str:
    """The faces to analyse: numbers, or "all"."""
    per_face = [file for file in files if file.per_face]
    if per_face:
        if len(files) > 1:
            raise UsageError("a motion file with a motion per face is given alone: one --motion")
        named = per_face[0].faces
        if isinstance(args.face, tuple) and set(args.face) != set(named):
            raise UsageError(f"the motion file moves faces {', '.join(map(str, named))}; --face names others "
                             "(leave --face out, or give --face all)")
        return named
    if len(files) > 1 and not (isinstance(args.face, tuple) and len(args.face) == len(files)):
        raise UsageError(f"{len(files)} --motion files are one per face: name as many faces with --face "
                         "(such as --face 0,1), in the same order")
    return args.face if args.face is not None else (0,)


def photo_mouths(subjects: list) -> dict[int, MouthOpening]:
    """Each analysed face's lips (face number -> MouthOpening), for a preset's speech to be fitted to."""
    from .rig import mouth_opening_of

    return {subject.face_index: mouth_opening_of(subject) for subject in subjects}


def server_mouths(summaries: dict[int, dict]) -> dict[int, MouthOpening]:
    """The same from a server's analysis summaries (faces_on_server); a face whose summary has none (an older
    server) is left out, and its speech not fitted (with a warning)."""
    mouths = {face: MouthOpening.from_dict(summary.get("mouth")) for face, summary in summaries.items()}
    if any(mouth is None for mouth in mouths.values()):
        print("enliven: warning: the server does not say where the photo's lips are (an older version?): the "
              "preset's speech opens the mouth from the photo's own opening", file=sys.stderr)
    return {face: mouth for face, mouth in mouths.items() if mouth is not None}


def face_motions(args: argparse.Namespace, files: list[FaceMotions], faces: list[int],
                 mouths: dict[int, MouthOpening] | None = None, report: bool = True) -> FaceMotions:
    """Each face's motion, sanitised (clamped with warnings, printed where `report`, or refused with
    --strict); a preset's speech fitted to each face's lips in `mouths` (photo_mouths)."""
    from .shared.presets import preset_face_motions

    if args.preset:
        seed = 0 if args.seed is None else args.seed
        if seed < 0:
            raise UsageError(f"--seed must be 0 or more, got {seed}")
        fps = 24.0 if args.fps is None else usable_fps(args.fps)
        try:
            motions = preset_face_motions(args.preset, faces, fps=fps, seed=seed, duration_s=args.duration,
                                          loop=args.loop, breaths_per_minute=args.breaths_per_minute,
                                          mouths=mouths)
        except MotionError as error:
            raise UsageError(str(error)) from None
    elif len(files) == 1 and files[0].per_face:
        motions = files[0]
    elif len(files) == 1:
        motions = FaceMotions.single(files[0].motions[0], faces)
    else:
        if len({file.fps for file in files}) > 1:
            raise UsageError("the motion files have different frame rates; give them one with --fps")
        motions = FaceMotions(files[0].fps, {face: file.motions[0] for face, file in zip(faces, files)})
    motions, warnings = motions.sanitized(strict=args.strict)
    for warning in warnings if report else ():
        print(f"enliven: warning: {warning}", file=sys.stderr)
    return motions


def single_face_motion(args: argparse.Namespace, files: list[FaceMotions]):
    """(the motion, the analysed subject or None) of a run that animates one face (`args.face`). A preset's
    speech is fitted to the face's lips, so the photo is analysed here (on --server, by the server); the
    motion is checked first, so that a mistake in it is refused before the photo is read."""
    from .arguments import analyze_photo
    from .remote_render import faces_on_server

    motion = face_motions(args, files, [args.face]).motions[args.face]
    if not preset_speaks(args.preset):
        return motion, None
    if args.server:
        return face_motions(args, files, [args.face], server_mouths(faces_on_server(args))).motions[args.face], None
    subject = analyze_photo(args)
    return face_motions(args, files, [args.face], photo_mouths([subject])).motions[args.face], subject


def group_frames(args: argparse.Namespace, files: list[FaceMotions]) -> tuple[int, float, Iterator[FrameLayers]]:
    """(frame count, fps, the frames in order) of the faces this run animates: with --alpha every person cut
    out, and as EXR every face's mattes and motion vectors. Rendered by worker processes, whole frames side by
    side, where there are several cores (frame_workers); the iterator stops them when it is closed."""
    from .frame_workers import frame_request, rendered_frames, worker_count

    faces = chosen_faces(args, files)
    # A mistake in the motion (or a loop too short) is refused before the photo is analysed, which takes
    # seconds for a group (face numbers only seed a preset: any stand in for "all").
    face_motions(args, files, [0] if faces == ALL_FACES else list(faces), report=False)
    subjects = analyze_photo_faces(args, faces)
    motions = face_motions(args, files, [subject.face_index for subject in subjects], photo_mouths(subjects))
    values = motions.full()
    passes = args.format == "exr"  # an EXR frame carries every pass
    requests = (frame_request(values, index, args.alpha, passes) for index in range(motions.frame_count))
    workers = worker_count(args.engine, motions.frame_count, subjects, args.workers)
    return motions.frame_count, motions.fps, rendered_frames(subjects, args.engine, args.checkpoint, workers, requests)


def group_motion_for_server(args: argparse.Namespace, files: list[FaceMotions]) -> tuple[list[int], np.ndarray, float]:
    """(faces, their channel values: faces x frames x every channel, fps) for a run of several faces on
    `--server`; `--face all` is every face the server finds in the photo."""
    from .remote_render import faces_on_server

    faces = chosen_faces(args, files)
    speaks = preset_speaks(args.preset)
    if faces != ALL_FACES:
        motions = face_motions(args, files, list(faces))  # a mistake in the motion is refused before the server is asked
    if faces == ALL_FACES or speaks:
        summaries = faces_on_server(args)
        faces = list(summaries) if faces == ALL_FACES else list(faces)
        motions = face_motions(args, files, faces, server_mouths(summaries) if speaks else None)
    full = motions.full()
    return list(faces), np.stack([full[face] for face in faces]), motions.fps
