"""`enliven serve` and `enliven keys` on the command line."""
from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

from ..device import DEVICE_CHOICES
from ..arguments import endpoint
from ..errors import EnlivenError
from ..shared.protocol import Limits
from .keys import create_keys, default_keys_dir
from .server import DEFAULT_BIND, serve


def _limits_from_args(args: argparse.Namespace) -> Limits:
    base = Limits()
    return replace(
        base,
        max_message_bytes=int(args.max_message_mb * 1024 * 1024),
        max_frames=args.max_frames,
        max_image_side=args.max_image_side,
        max_image_pixels=args.max_image_pixels,
        max_jobs_per_client=args.max_jobs_per_client,
        stall_timeout_s=args.stall_timeout,
        subject_cache_mb=args.cache_mb,
    )


def _cmd_serve(args: argparse.Namespace) -> int:
    return serve(args.bind, device=args.device, engine=args.engine, keys_dir=args.keys,
                 limits=_limits_from_args(args), output_root=args.output_root, input_root=args.input_root,
                 checkpoint=args.checkpoint, allow_shutdown=args.allow_shutdown)


def _engine_choices() -> list[str] | None:
    try:
        from ..animator import ENGINE_NAMES

        return list(ENGINE_NAMES)
    except Exception:  # noqa: BLE001 - --help must work even if an engine fails to import
        return None


def add_serve_command(subparsers: Any) -> argparse.ArgumentParser:
    base = Limits()
    p = subparsers.add_parser(
        "serve", help="run the backend server that Blender (or `enliven generate --server`) talks to",
        description="Serve analysis, previews and generation over ZeroMQ. Loopback only unless --keys is given.")
    p.add_argument("--bind", default=DEFAULT_BIND, type=endpoint("bind"),
                   help=f"ZeroMQ endpoint (default {DEFAULT_BIND}; port 0 picks a free port). Any non-loopback "
                        "address requires --keys")
    p.add_argument("--device", choices=DEVICE_CHOICES, default="auto", help="compute device (default auto)")
    p.add_argument("--engine", default="warp", choices=_engine_choices(), help="engine used when a request names none")
    p.add_argument("--checkpoint", metavar="PATH", default=None,
                   help="the refine engine's model for requests that name none: RUN_DIR/best.pt from `enliven "
                        "train-regions` or `enliven train` (default: the eye and mouth generators that ship)")
    p.add_argument("--keys", metavar="DIR", default=None,
                   help="CurveZMQ keys directory from `enliven keys` (server.key_secret + clients/*.key)")
    p.add_argument("--output-root", metavar="DIR", default=None,
                   help="let clients write frame sequences only under DIR (remote clients may write nowhere without it)")
    p.add_argument("--input-root", metavar="DIR", default=None,
                   help="let clients have videos and audio read only under DIR (remote clients may have nothing "
                        "read without it)")
    p.add_argument("--max-message-mb", type=float, default=base.max_message_bytes / 1024 / 1024, metavar="MB",
                   help="largest request accepted (default %(default)g); bigger frames drop the connection")
    p.add_argument("--max-frames", type=int, default=base.max_frames, metavar="N",
                   help="most frames in one generate job (default %(default)s)")
    p.add_argument("--max-image-side", type=int, default=base.max_image_side, metavar="PX",
                   help="largest photo side (default %(default)s)")
    p.add_argument("--max-image-pixels", type=int, default=base.max_image_pixels, metavar="N",
                   help="largest photo in pixels (default %(default)s)")
    p.add_argument("--max-jobs-per-client", type=int, default=base.max_jobs_per_client, metavar="N",
                   help="jobs of each kind one client may have queued or running, over all its connections; a client "
                        "is a CurveZMQ key, or without keys an IP address (default %(default)s)")
    p.add_argument("--stall-timeout", type=float, default=base.stall_timeout_s, metavar="S",
                   help="seconds a client may read nothing before its job is cancelled (default %(default)g)")
    p.add_argument("--cache-mb", type=float, default=base.subject_cache_mb, metavar="MB",
                   help="memory for analysed photos kept for later requests (default %(default)g; a 40 MP photo "
                        "takes about 200 MB); the least recently used go first")
    p.add_argument("--allow-shutdown", action="store_true",
                   help="let clients stop the server with a shutdown request (off by default: stop it on its own "
                        "machine with Ctrl-C or SIGTERM, as the Blender add-on stops the backend it started; a "
                        "loopback server is reachable through SSH tunnels too)")
    p.set_defaults(func=_cmd_serve)
    return p


def _cmd_keys(args: argparse.Namespace) -> int:
    directory = Path(args.dir).expanduser() if args.dir else default_keys_dir()
    try:
        made = create_keys(directory, args.client, force=args.force)
    except EnlivenError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"""Keys in {directory}:
  server key pair     {made['server_secret']} (stays on the GPU box)
  server public key   {made['server_public']} (copy to each workstation)
  client key pair     {made['client_secret']} (copy to the workstation that runs Blender)
  allowed client key  {made['allowed']} (the server accepts only keys in {directory / 'clients'})

On the GPU box:     enliven serve --bind tcp://0.0.0.0:5570 --keys {directory}
On the workstation: point the add-on (or `enliven generate --server tcp://GPU-BOX:5570`) at
                    server public key = {made['server_public'].name}, client keys = {made['client_secret'].name}""")
    return 0


def add_keys_command(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser("keys", help="create CurveZMQ keys for serving to other machines",
                              description="Create the server key pair (once) and a client key pair, "
                                          "and allow that client.")
    p.add_argument("--dir", default=None, help=f"keys directory (default {default_keys_dir()})")
    p.add_argument("--client", default="client", help="name of the client key pair to create (default: client)")
    p.add_argument("--force", action="store_true", help="overwrite an existing client key pair of that name")
    p.set_defaults(func=_cmd_keys)
    return p
