"""Errors a person can act on.

Each error carries a short machine-readable `code` (sent over the wire by the
server) and the process exit code the command line uses for it. The message is
written for the person who gave us the input: what is wrong and what to do.
"""
from __future__ import annotations


class EnlivenError(Exception):
    code = "error"
    exit_code = 1

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class UsageError(EnlivenError):
    """A command line argument that cannot be used, found after argparse
    accepted it (such as an unknown preset name): the exit code argparse uses."""

    code = "usage"
    exit_code = 2


class ImageError(EnlivenError):
    """The photo cannot be read: missing, not an image, truncated, or too big."""

    code = "bad_image"
    exit_code = 4


class ImageTooLargeError(ImageError):
    code = "too_large"


class NoFaceError(EnlivenError):
    """No usable face in the photo (or the requested --face does not exist)."""

    code = "no_face"
    exit_code = 3


class BadMotionError(EnlivenError):
    """A motion file or motion values that cannot be used."""

    code = "bad_motion"
    exit_code = 5


class CheckpointError(EnlivenError):
    """A refine engine checkpoint that is missing, damaged, or not a refine engine checkpoint."""

    code = "bad_checkpoint"
    exit_code = 8
