"""Which files on the server's disk a client may have read or written.

A loopback server is the artist's own machine, so any absolute path goes; a
server reachable from other machines reads only under ``--input-root`` and
writes only under ``--output-root``, and without them touches no client-named
path at all. Paths are resolved before they are checked, so a symlink cannot
lead out of a root."""
from __future__ import annotations

import stat
from pathlib import Path

from ..shared import protocol
from .jobs import ServiceError


class PathPolicy:
    def __init__(self, local: bool, input_root: Path | None, output_root: Path | None):
        self.local = local
        self.input_root = input_root
        self.output_root = output_root

    @property
    def confined(self) -> bool:
        """Writes must stay under --output-root (a remote server): re-checked at every write."""
        return self.output_root is not None and not self.local

    def output_policy(self) -> str:
        if self.output_root is not None:
            return f"under {self.output_root}"
        return "any" if self.local else "no"

    def input_policy(self) -> str:
        if self.input_root is not None:
            return f"under {self.input_root}"
        return "any" if self.local else "no"

    def writable_dir(self, raw: str, field: str = "output_dir") -> Path:
        """A client-named output folder, resolved, if this server may write there."""
        path = Path(raw)
        if not path.is_absolute():
            raise ServiceError(protocol.E_BAD_OUTPUT_DIR, f"{field} must be an absolute path on the server, got {raw!r}")
        resolved = path.resolve()
        if resolved.exists() and not resolved.is_dir():
            raise ServiceError(protocol.E_BAD_OUTPUT_DIR, f"{field} {resolved} is a file, not a folder")
        self._confine(resolved, self.output_root, field, "write", "--output-root")
        return resolved

    def readable_path(self, raw: str) -> Path:
        """A client-named input file, resolved, if this server may read it: the
        same rule as for writing, so a remote client cannot read arbitrary files."""
        path = Path(raw)
        if not path.is_absolute():
            raise ServiceError(protocol.E_BAD_PATH, f"input paths must be absolute paths on the server, got {raw!r}")
        resolved = path.resolve()
        self._confine(resolved, self.input_root, "input files", "read", "--input-root")
        return _file_or_folder(resolved)

    def _confine(self, resolved: Path, root: Path | None, what: str, verb: str, option: str) -> None:
        if root is not None:
            if not resolved.is_relative_to(root):
                raise ServiceError(protocol.E_FORBIDDEN, f"{what} must be inside {root} on this server")
        elif not self.local:
            raise ServiceError(protocol.E_FORBIDDEN, f"this server does not {verb} files for remote clients "
                                                     f"(start it with {option} DIR to allow it)")

    def checkpoint_path(self, raw: str) -> Path:
        """A client-named checkpoint: readable where inputs are, or where this server's training writes them
        (under --output-root), so a model trained through the service can be used at once."""
        if self.output_root is not None:
            resolved = Path(raw).resolve()
            if Path(raw).is_absolute() and resolved.is_relative_to(self.output_root):
                return _file_or_folder(resolved)
        return self.readable_path(raw)


def _file_or_folder(resolved: Path) -> Path:
    """`resolved`, unless it is a pipe, a device or a socket: opening a named pipe waits until something writes
    into it, and a job waiting there held the queue for every client. (A missing path goes on, for the reader
    to say so in its own words.)"""
    try:
        mode = resolved.stat().st_mode
    except OSError:
        return resolved
    if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
        raise ServiceError(protocol.E_BAD_PATH, f"{resolved} is not a file (a pipe, a device or a socket): "
                                                "the server reads input from files only")
    return resolved
