"""Rendering on a running `enliven serve` for the command line's `--server`
options (`generate`, `talk`): the photo and the motion go over ZeroMQ, the
frames come back in order. A server's error codes map to the same local
error classes, so exit codes match a local run."""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from .sequence import FrameSink
from .shared import protocol


def add_server_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--server", metavar="ADDRESS", help="render on a running `enliven serve` (e.g. tcp://gpu-box:5570) "
                        "instead of in this process")
    parser.add_argument("--server-key", type=Path, metavar="FILE", help="the server's public key (CurveZMQ), for a remote server")
    parser.add_argument("--client-key", type=Path, metavar="FILE", help="this client's secret key file from `enliven keys`")


# Error codes a server sends -> the local error class, so exit codes match a local run.
_REMOTE_ERRORS = {protocol.E_NO_FACE: "NoFaceError", protocol.E_BAD_IMAGE: "ImageError",
                  protocol.E_TOO_LARGE: "ImageTooLargeError", protocol.E_BAD_MOTION: "BadMotionError",
                  protocol.E_BAD_CHECKPOINT: "CheckpointError"}


def render_on_server(args: argparse.Namespace, values: np.ndarray, fps: float, sink: FrameSink, progress) -> None:
    """Render `values` (frames x every channel) on `args.server`; the photo and
    motion travel over ZeroMQ, PNGs come back into `sink` in order."""
    from . import errors
    from .images import encode_png, load_image, resize_long_side
    from .shared.client import RemoteError, load_client_keys, load_public_key
    from .shared.remote import generate_remote

    if args.size:
        photo = encode_png(resize_long_side(load_image(args.photo), args.size))
    else:
        try:
            photo = args.photo.read_bytes()
        except OSError as error:
            raise errors.ImageError(f"Cannot open '{args.photo}': {error.strerror or error}.") from error
    keys = {}
    if args.server_key:
        keys["server_public_key"] = load_public_key(args.server_key)
    if args.client_key:
        keys["client_keys"] = load_client_keys(args.client_key)

    if args.checkpoint is not None:  # a path on the server's disk (the same disk for a local server)
        keys["checkpoint"] = str(args.checkpoint if args.checkpoint.is_absolute() else args.checkpoint.resolve())

    def on_frame(index: int, image, event) -> None:
        sink.add(index, image if isinstance(image, np.ndarray) else None, data=image if isinstance(image, bytes) else None)
        progress.update()

    try:
        generate_remote(args.server, photo, values, fps, engine=args.engine, on_frame=on_frame,
                        face_index=args.face, format=getattr(args, "format", "png"),
                        alpha=getattr(args, "alpha", False), png_compression=getattr(args, "png_compression", 1), **keys)
    except RemoteError as error:
        if error.code in _REMOTE_ERRORS or error.code in (protocol.E_BAD_FIELD, protocol.E_BAD_PART, protocol.E_INTERNAL):
            message = f"the server at {args.server} says: {error.message}"
        else:  # the connection itself failed: timeout, refused key, server restarted...
            message = error.message
        raise getattr(errors, _REMOTE_ERRORS.get(error.code, "EnlivenError"))(message) from error
