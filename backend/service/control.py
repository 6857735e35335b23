"""Control requests: answered by the socket thread at once, whatever is running,
so they are never stuck behind rendering."""
from __future__ import annotations

import time
from typing import Any, Callable

from .. import __version__
from ..shared import protocol
from ..shared.protocol import PROTOCOL_VERSION, Message
from .jobs import HEAVY, TRAINING, ServiceError


def hello_fields(server: Any) -> dict:
    return {
        "protocol": PROTOCOL_VERSION,
        "version": __version__,
        "server": server.server_id,
        "device": server.device.to_dict(),
        "engines": list(server.engines.engine_names),
        "default_engine": server.engines.default_engine,
        "channels": list(server.channel_names),
        "limits": server.limits.to_dict(),
        "curve": server.keys_dir is not None,
        "output_dir": server.paths.output_policy(),
        "input_files": server.paths.input_policy(),
        "checkpoint": str(server.engines.default_checkpoint) if server.engines.default_checkpoint else None,
        "training": server.engines.can_train,
        "shutdown": server.shutdown_allowed,
    }


def hello(server: Any, identity: bytes, msg: Message) -> None:
    server.router.reply(identity, protocol.encode("hello_reply", msg.job, hello_fields(server), end=True))


def ping(server: Any, identity: bytes, msg: Message) -> None:
    peer = server.router.peers.get(identity)
    jobs = list(peer.jobs) if peer else []
    server.router.reply(identity, protocol.encode("pong", msg.job, {"server": server.server_id, "jobs": jobs}, end=True))


def status(server: Any, identity: bytes, msg: Message) -> None:
    peer = server.router.peers.get(identity)
    lanes = server.scheduler.snapshot()
    queue, running = lanes[HEAVY]
    training_queue, training = lanes[TRAINING]
    mine = []
    for job in (peer.jobs.values() if peer else []):
        entry = {"job": job.id, "kind": job.kind, "state": job.state, "done": job.done, "total": job.total}
        for waiting, _ in (lanes[HEAVY], lanes[TRAINING]):
            if job in waiting:
                entry["position"] = waiting.index(job) + 1
        mine.append(entry)
    fields = {
        "server": server.server_id,
        "uptime_s": round(time.monotonic() - server.started, 1),
        "device": server.device.to_dict(),
        "jobs": mine,
        "queued": len(queue),
        "running": len(running),
        "training": len(training) + len(training_queue),
        "clients": len(server.router.peers),
        "subjects_cached": server.engines.subjects_cached,
        "subject_cache_mb": round(server.engines.subject_cache_bytes / 1024 / 1024, 1),
    }
    server.router.reply(identity, protocol.encode("status_reply", msg.job, fields, end=True))


def shutdown(server: Any, identity: bytes, msg: Message) -> None:
    if not server.shutdown_allowed:
        raise ServiceError(protocol.E_SHUTDOWN_REFUSED, "this server does not take shutdown from clients; stop "
                                                        "it on its own machine (Ctrl-C, SIGTERM), or start it "
                                                        "with --allow-shutdown")
    server.log("shutdown requested by a client")
    server.router.reply(identity, protocol.encode("ok", msg.job, {"stopping": True}, end=True))
    server.stop()


def cancel(server: Any, identity: bytes, msg: Message) -> None:
    target = msg.fields["target"]
    peer = server.router.peers.get(identity)
    job = peer.jobs.get(target) if peer else None
    state = "unknown" if job is None else job.state
    if job is not None:
        server.scheduler.cancel(job)
    server.router.reply(identity, protocol.encode("ok", msg.job, {"target": target, "state": state}, end=True))


CONTROL: dict[str, Callable[[Any, bytes, Message], None]] = {
    "hello": hello, "ping": ping, "status": status, "cancel": cancel, "shutdown": shutdown,
}
