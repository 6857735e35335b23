"""Blocking one-call helpers for scripts and the command line's `--server`
options, on top of :class:`~.client.Client` (which never blocks by itself)."""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

from . import protocol
from .client import Client, Event, RemoteError


def endpoint_problem(address: str, binding: bool = False) -> str | None:
    """What is wrong with ZeroMQ endpoint `address` (None: nothing): tcp://HOST:PORT with a port of 1-65535
    (0 or * too where `binding`: a free one), or ipc://PATH. ZeroMQ's own answer was a traceback
    ("Invalid argument"), and a port past 65535 it quietly took modulo 65536."""
    if address.startswith("ipc://") and len(address) > len("ipc://"):
        return None
    if not address.startswith("tcp://"):
        return f"{address!r} is not an address such as tcp://127.0.0.1:5570 (tcp://HOST:PORT or ipc://PATH)"
    host, _, port = address[len("tcp://"):].rpartition(":")
    wildcard = binding and port in ("*", "0")
    if not host or not (wildcard or (port.isascii() and port.isdigit() and 1 <= int(port) <= 65535)):
        return f"{address!r} needs a host and a port from 1 to 65535, such as tcp://127.0.0.1:5570"
    if host == "*" and not binding:
        return f"{address!r} is an address to serve on (every interface); connect to a host, such as tcp://127.0.0.1:{port}"
    return None


def remote_hello(address: str, timeout_s: float = 5.0, **keys: Any) -> dict:
    """The server's hello fields (version, device, engines, limits)."""
    with Client(address, timeout_s=timeout_s, **keys) as client:
        return client.wait(client.hello(), timeout_s=timeout_s * 2).fields


def generate_remote(
    address: str,
    image_bytes: bytes,
    motion_full: np.ndarray,
    fps: float,
    engine: str | None = None,
    on_frame: Callable[[int, bytes | np.ndarray | None, Event], None] | None = None,
    timeout_s: float = 10.0,
    server_public_key: bytes | str | None = None,
    client_keys: tuple[bytes, bytes] | None = None,
    on_progress: Callable[[dict], None] | None = None,
    **options: Any,
) -> dict:
    """Generate on a running server and block until done.

    ``on_frame(index, image, event)`` is called for every frame in order
    (``image`` is PNG bytes by default; see :meth:`Client.generate` for
    ``format``, ``output_dir``, ``resume``...); ``engine`` None runs the server's default
    engine. ``timeout_s`` is how long the
    server may stay silent before we give up, not a limit on the whole job.
    Returns the ``done`` summary plus ``"server"`` (the hello fields). Raises
    RemoteError on any error; Ctrl-C cancels the remote job before re-raising.
    """
    with Client(address, timeout_s=timeout_s, server_public_key=server_public_key, client_keys=client_keys) as client:
        server = client.wait(client.hello("enliven-generate"), timeout_s=None).fields
        job = client.generate(motion_full, fps, image=image_bytes, engine=engine, **options)

        def handle(ev: Event) -> None:
            if ev.type == "frame" and on_frame is not None:
                on_frame(int(ev.fields["index"]), ev.image(), ev)
            elif ev.type in ("progress", "queued") and on_progress is not None:
                on_progress({"type": ev.type, **ev.fields})

        try:
            done = client.wait(job, on_event=handle)
        except KeyboardInterrupt:
            client.cancel(job)
            try:
                client.wait(job, timeout_s=min(timeout_s, 5.0))
            except (RemoteError, TimeoutError):
                pass
            raise
        summary = dict(done.fields)
        summary["server"] = server
        if summary.get("status") != protocol.DONE_COMPLETED:
            raise RemoteError(summary.get("status", "failed"), f"remote job ended: {summary.get('status')}", job)
        return summary
