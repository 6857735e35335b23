"""`enliven serve` and `enliven keys`: the names other code imports, and
``python -m enliven.server``. The service itself is the package :mod:`enliven.service`."""
from __future__ import annotations

import argparse
import sys

from .service.commands import add_keys_command, add_serve_command
from .service.jobs import ServiceError
from .service.keys import create_keys, default_keys_dir, is_local_endpoint
from .service.server import DEFAULT_BIND, Server, serve
from .shared.protocol import Limits

__all__ = ["serve", "Limits", "Server", "ServiceError", "add_serve_command", "add_keys_command",
           "is_local_endpoint", "create_keys", "default_keys_dir", "DEFAULT_BIND"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m enliven.server")
    sub = parser.add_subparsers(dest="command", required=True)
    add_serve_command(sub)
    add_keys_command(sub)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
