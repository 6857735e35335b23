"""CurveZMQ: a server on a non-loopback address accepts only the clients it knows."""
from __future__ import annotations

import os
import stat
import subprocess
import sys
import time

import pytest
import zmq

from enliven.server import is_local_endpoint
from enliven.shared.client import Client, RemoteError, load_client_keys, load_public_key

from service_helpers import ROOT, ServerProcess, astronaut_bytes


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "enliven.cli", *args], capture_output=True, text=True, timeout=120,
                          cwd=ROOT)


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    d = tmp_path_factory.mktemp("keys")
    result = run_cli("keys", "--dir", str(d), "--client", "alice")
    assert result.returncode == 0, result.stderr
    return d


@pytest.fixture(scope="module")
def server(keys):
    # 0.0.0.0 is not loopback: this is the remote-GPU configuration.
    with ServerProcess("--keys", str(keys), bind="tcp://0.0.0.0:0") as srv:
        yield srv


def test_keys_command_layout_and_permissions(keys):
    for name in ("server.key", "server.key_secret", "alice.key", "alice.key_secret", "clients/alice.key"):
        assert (keys / name).is_file(), name
    for secret in ("server.key_secret", "alice.key_secret"):
        assert stat.S_IMODE(os.stat(keys / secret).st_mode) == 0o600
    assert (keys / "clients" / "alice.key").read_text() == (keys / "alice.key").read_text()
    again = run_cli("keys", "--dir", str(keys), "--client", "alice")
    assert again.returncode == 2 and "already exists" in again.stderr
    # A second client gets its own pair; the server key is kept.
    server_key = (keys / "server.key").read_bytes()
    assert run_cli("keys", "--dir", str(keys), "--client", "bob").returncode == 0
    assert (keys / "clients" / "bob.key").is_file() and (keys / "server.key").read_bytes() == server_key


def test_allowed_client_works(server, keys):
    with Client(server.address, timeout_s=10, server_public_key=load_public_key(keys / "server.key"),
                client_keys=load_client_keys(keys / "alice.key_secret")) as c:
        info = c.wait(c.hello(), timeout_s=30).fields
        assert info["curve"] is True and info["output_dir"] == "no"
        analysis = c.wait(c.analyze(astronaut_bytes()), timeout_s=60).fields
        assert analysis["summary"]["faces_found"] >= 1


def test_unknown_client_key_is_refused(server, keys):
    public, secret = zmq.curve_keypair()
    with Client(server.address, timeout_s=4, server_public_key=load_public_key(keys / "server.key"),
                client_keys=(public, secret)) as c:
        t0 = time.monotonic()
        with pytest.raises(RemoteError) as info:
            c.wait(c.hello(), timeout_s=30)
        # The client's socket monitor sees the failed handshake and says so.
        assert info.value.code == "auth_refused"
        assert time.monotonic() - t0 < 10


def test_plaintext_client_gets_nothing(server):
    with Client(server.address, timeout_s=2) as c:
        with pytest.raises(RemoteError) as info:
            c.wait(c.hello(), timeout_s=30)
        assert info.value.code == "timeout"


def test_remote_client_may_not_write_files_on_the_server(server, keys, tmp_path):
    import numpy as np

    from enliven.shared.channels import default_vector

    with Client(server.address, timeout_s=10, server_public_key=load_public_key(keys / "server.key"),
                client_keys=load_client_keys(keys / "alice.key_secret")) as c:
        job = c.generate(default_vector()[None, :].astype(np.float32), 24, image=astronaut_bytes(),
                         output_dir=str(tmp_path / "x"))
        with pytest.raises(RemoteError) as info:
            c.wait(job, timeout_s=60)
        assert info.value.code == "forbidden"


def test_non_loopback_bind_without_keys_is_refused():
    result = run_cli("serve", "--bind", "tcp://0.0.0.0:0")
    assert result.returncode == 2
    assert "enliven keys" in result.stderr and "listening" not in result.stdout


@pytest.mark.parametrize("endpoint, local", [
    ("tcp://127.0.0.1:5570", True), ("tcp://localhost:1", True), ("tcp://[::1]:1", True),
    ("tcp://127.1.2.3:1", True), ("ipc:///tmp/enliven.sock", True), ("inproc://x", True),
    ("tcp://0.0.0.0:5570", False), ("tcp://*:5570", False), ("tcp://192.168.1.5:1", False),
    ("tcp://eth0:1", False), ("tcp://gpu-box.example.com:1", False), ("tcp://[::]:1", False),
])
def test_is_local_endpoint(endpoint, local):
    assert is_local_endpoint(endpoint) is local
