"""Who may connect: loopback endpoints, and the CurveZMQ keys (`enliven keys`)
that any other bind requires."""
from __future__ import annotations

import ipaddress
import os
import shutil
from pathlib import Path
from typing import Any

from ..shared import protocol
from .jobs import ServiceError
from .log import stderr_log


def is_local_endpoint(endpoint: str) -> bool:
    """True for ipc://, inproc:// and tcp:// on a loopback address."""
    if endpoint.startswith(("ipc://", "inproc://")):
        return True
    if not endpoint.startswith("tcp://"):
        return False
    host = endpoint[len("tcp://"):].rsplit(":", 1)[0]
    if ";" in host:  # "source;dest" form: judge the bound address
        host = host.split(";")[-1]
    host = host.strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # "*", interface names, host names: all potentially public


def default_keys_dir() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return Path(base) / "enliven" / "keys"


def create_keys(directory: str | os.PathLike, client_name: str = "client", force: bool = False) -> dict[str, Path]:
    """Create the server key pair (once) and a client key pair whose public key
    goes into clients/ (the server's allow list)."""
    import zmq.auth

    if not client_name.replace("-", "").replace("_", "").isalnum():
        raise ServiceError(protocol.E_BAD_NAME, f"client name {client_name!r} must be letters, digits, - or _")
    directory = Path(directory).expanduser()
    clients = directory / "clients"
    clients.mkdir(parents=True, exist_ok=True)
    os.chmod(directory, 0o700)
    server_secret = directory / "server.key_secret"
    if not server_secret.exists():  # never replaced: that would lock out every existing client
        zmq.auth.create_certificates(str(directory), "server")
    client_secret = directory / f"{client_name}.key_secret"
    if client_secret.exists() and not force:
        raise ServiceError(protocol.E_EXISTS, f"{client_secret} already exists; pick another --client name or pass --force")
    pub, sec = zmq.auth.create_certificates(str(directory), client_name)
    shutil.copyfile(pub, clients / f"{client_name}.key")
    for secret in (server_secret, client_secret):
        os.chmod(secret, 0o600)
    return {"server_public": directory / "server.key", "server_secret": server_secret,
            "client_secret": Path(sec), "client_public": Path(pub), "allowed": clients / f"{client_name}.key"}


class QuietLog:
    """ThreadAuthenticator logs every handshake; keep only warnings."""

    def debug(self, *a: Any, **k: Any) -> None: ...
    def info(self, *a: Any, **k: Any) -> None: ...
    def warning(self, msg: str, *a: Any, **k: Any) -> None: stderr_log("auth: " + (msg % a if a else msg))
    def error(self, msg: str, *a: Any, **k: Any) -> None: stderr_log("auth: " + (msg % a if a else msg))
    def exception(self, msg: str, *a: Any, **k: Any) -> None: stderr_log("auth: " + (msg % a if a else msg))
