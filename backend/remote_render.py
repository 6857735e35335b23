"""Rendering on a running `enliven serve` for the command line's `--server`
options (`generate`, `talk`): the photo and the motion go over ZeroMQ, the
frames come back in order. A server's error codes map to the same local
error classes, so exit codes match a local run."""
from __future__ import annotations

import argparse
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from .sequence import FrameSink
from .shared import protocol
from .arguments import endpoint


def add_server_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--server", metavar="ADDRESS", type=endpoint("connect"), help="render on a running `enliven serve` (e.g. tcp://gpu-box:5570) "
                        "instead of in this process")
    parser.add_argument("--server-key", type=Path, metavar="FILE", help="the server's public key (CurveZMQ), for a remote server")
    parser.add_argument("--client-key", type=Path, metavar="FILE", help="this client's secret key file from `enliven keys`")


# Error codes a server sends -> the local error class, so exit codes match a local run.
_REMOTE_ERRORS = {protocol.E_NO_FACE: "NoFaceError", protocol.E_BAD_IMAGE: "ImageError",
                  protocol.E_TOO_LARGE: "ImageTooLargeError", protocol.E_BAD_MOTION: "BadMotionError",
                  protocol.E_BAD_CHECKPOINT: "CheckpointError"}


def render_on_server(args: argparse.Namespace, values: np.ndarray, fps: float, sink: FrameSink, progress,
                     faces: list[int] | None = None) -> None:
    """Render `values` (frames x every channel; with `faces`, several faces of the photo: faces x frames x
    every channel, in that order) on `args.server`; the photo and motion travel over ZeroMQ, PNGs come back
    into `sink` in order."""
    from .shared.remote import generate_remote

    keys = connection_keys(args)
    if args.checkpoint is not None:  # a path on the server's disk (the same disk for a local server)
        keys["checkpoint"] = str(args.checkpoint if args.checkpoint.is_absolute() else args.checkpoint.resolve())

    def on_frame(index: int, image, event) -> None:
        sink.add(index, image if isinstance(image, np.ndarray) else None, data=image if isinstance(image, bytes) else None)
        progress.update()

    with _server_errors(args):
        generate_remote(args.server, _photo_bytes(args), values, fps, engine=args.engine, on_frame=on_frame,
                        face_index=0 if faces is not None else args.face, faces=faces,
                        format=getattr(args, "format", "png"), alpha=getattr(args, "alpha", False),
                        png_compression=getattr(args, "png_compression", 1), **keys)


def faces_on_server(args: argparse.Namespace) -> dict[int, dict]:
    """Every face the server finds in the photo: its number -> its analysis summary (for `--face all` with
    `--server`, and for a preset's speech fitted to each face's lips)."""
    from .shared.client import Client

    with _server_errors(args), Client(args.server, timeout_s=30.0, **connection_keys(args)) as client:
        analysis = client.wait(client.analyze(_photo_bytes(args)))
    return {int(face.get("face_index", 0)): face.get("summary") or {} for face in analysis.fields.get("faces") or []}


def _photo_bytes(args: argparse.Namespace) -> bytes:
    """The photo as the server takes it: the file itself if it is a PNG or a JPEG, else (TIFF, WebP, GIF, ...)
    or when --size scales it, read here and sent as a PNG."""
    from . import errors
    from .arguments import load_photo, photo_limits
    from .images import check_image_size, encode_png
    from .shared.protocol import encoded_kind

    if not args.size:
        try:
            data = args.photo.read_bytes()
        except OSError as error:
            raise errors.ImageError(f"Cannot open '{args.photo}': {error.strerror or error}.") from error
        if encoded_kind(data) != "bytes":
            check_image_size(data, f"'{args.photo}'", *photo_limits(args))  # (--max-pixels was not applied)
            return data
    return encode_png(load_photo(args))  # within --max-pixels, scaled with --size


def connection_keys(args: argparse.Namespace) -> dict:
    """The Client's CurveZMQ arguments from --server-key and --client-key; a UsageError (exit 2) when only one
    is given or a file is no key (they were a traceback, and "Invalid certificate file" with exit 1)."""
    from .errors import UsageError
    from .shared.client import load_client_keys, load_public_key

    if (args.server_key is None) != (args.client_key is None):
        raise UsageError("--server-key and --client-key go together: a server with keys needs both "
                         "(its public key, and this client's secret key from `enliven keys`)")
    keys = {}
    try:
        if args.server_key:
            keys["server_public_key"] = load_public_key(args.server_key)
        if args.client_key:
            keys["client_keys"] = load_client_keys(args.client_key)
    except (OSError, ValueError) as error:
        raise UsageError(f"cannot read the key: {error}") from None
    return keys


@contextmanager
def _server_errors(args: argparse.Namespace):
    """A server's error as the local error class of the same kind, so exit codes match a local run."""
    from . import errors
    from .shared.client import RemoteError

    try:
        yield
    except RemoteError as error:
        if error.code in _REMOTE_ERRORS or error.code in (protocol.E_BAD_FIELD, protocol.E_BAD_PART, protocol.E_INTERNAL):
            message = f"the server at {args.server} says: {error.message}"
        else:  # the connection itself failed: timeout, refused key, server restarted...
            message = error.message
        raise getattr(errors, _REMOTE_ERRORS.get(error.code, "EnlivenError"))(message) from error
