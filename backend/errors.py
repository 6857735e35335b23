"""Errors a person can act on.

Each error carries a short machine-readable `code` (sent over the wire by the
server) and the process exit code the command line uses for it. The message is
written for the person who gave us the input: what is wrong and what to do.
"""
from __future__ import annotations

from .shared import protocol

# Every exit code of the `enliven` command, for `enliven --help` and docs/cli.md
# (tests/test_docs.py checks that each error class's exit_code is here).
EXIT_CODES: dict[int, str] = {
    0: "success",
    1: "other failure (a full disk, a folder that cannot be written, ...)",
    2: "usage: a bad argument (an unknown preset name, a bad config or dataset, ...)",
    3: "no face in the photo or video (or --face N that does not exist)",
    4: "unreadable, truncated or too large image (over --max-pixels, or 8192 px a side), or unreadable video",
    5: "bad motion: unknown channel, malformed file, or NaN/out-of-range values with --strict",
    6: "unusable audio: unreadable, or no speech in it",
    7: "text to speech failed",
    8: "unusable checkpoint",
    130: "interrupted (Ctrl-C or SIGTERM); frames already written stay",
}


class EnlivenError(Exception):
    code = protocol.E_ERROR
    exit_code = 1

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class UsageError(EnlivenError):
    """A command line argument that cannot be used, found after argparse
    accepted it (such as an unknown preset name): the exit code argparse uses."""

    code = protocol.E_USAGE
    exit_code = 2


class ImageError(EnlivenError):
    """The photo cannot be read: missing, not an image, truncated, or too big."""

    code = protocol.E_BAD_IMAGE
    exit_code = 4


class ImageTooLargeError(ImageError):
    code = protocol.E_TOO_LARGE


class NoFaceError(EnlivenError):
    """No usable face in the photo (or the requested --face does not exist)."""

    code = protocol.E_NO_FACE
    exit_code = 3


class BadMotionError(EnlivenError):
    """A motion file or motion values that cannot be used."""

    code = protocol.E_BAD_MOTION
    exit_code = 5


class CheckpointError(EnlivenError):
    """A refine engine checkpoint that is missing, damaged, or not a refine engine checkpoint."""

    code = protocol.E_BAD_CHECKPOINT
    exit_code = 8
