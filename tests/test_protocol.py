"""The wire protocol and the client, without a server: encoding, validation, liveness."""
from __future__ import annotations

import ast
import json
import re
import time
from pathlib import Path

import numpy as np
import pytest
import zmq

from enliven.shared import protocol
from enliven.shared.client import Client, RemoteError
from enliven.shared.protocol import PROTOCOL_VERSION, Limits, ProtocolError

SHARED = Path(__file__).resolve().parents[1] / "shared"
PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 32


def header(**kw) -> bytes:
    h = {"protocol": PROTOCOL_VERSION, "type": "hello", "job": "j1", "fields": {}}
    h.update(kw)
    return json.dumps(h).encode()


def code_of(frames, **kw) -> str:
    with pytest.raises(ProtocolError) as info:
        protocol.decode_request(frames, **kw)
    return info.value.code


# -- round trips ------------------------------------------------------------


def test_round_trip_with_image_and_motion():
    motion = np.arange(12, dtype=np.float32).reshape(3, 4)
    frames = protocol.encode("generate", "abc-1", {"fps": 24}, {"image": PNG, "motion": motion})
    msg = protocol.decode(frames)
    assert (msg.type, msg.job, msg.fields, msg.end) == ("generate", "abc-1", {"fps": 24}, False)
    assert msg.parts["image"].kind == "png" and msg.parts["image"].tobytes() == PNG
    part = msg.parts["motion"]
    assert (part.kind, part.dtype, part.shape) == ("array", "float32", (3, 4))
    np.testing.assert_array_equal(part.array(), motion)


def test_arrays_are_sent_little_endian_whatever_their_byte_order():
    big = np.arange(6, dtype=">f4").reshape(2, 3)
    msg = protocol.decode(protocol.encode("preview", "j", {}, {"motion": big}))
    np.testing.assert_array_equal(msg.parts["motion"].array(), big.astype("<f4"))


def test_decoded_arrays_are_views_not_copies():
    motion = np.ones((100, 17), np.float32)
    frames = protocol.encode("generate", "j", {"fps": 24}, {"motion": motion})
    arr = protocol.decode(frames).parts["motion"].array()
    assert not arr.flags.writeable and not arr.flags.owndata


def test_end_flag_and_error_frames():
    msg = protocol.decode_reply(protocol.error_frames("j9", "no_face", "no face here"))
    assert msg.type == "error" and msg.end and msg.fields == {"code": "no_face", "message": "no face here"}


def test_encode_refuses_non_json_fields_and_unknown_dtypes():
    with pytest.raises(ProtocolError):
        protocol.encode("hello", "j", {"x": float("nan")})
    with pytest.raises(ProtocolError):
        protocol.encode("preview", "j", {}, {"motion": np.zeros(3, np.float64)})


def test_limits_round_trip():
    lim = Limits(max_frames=7)
    assert Limits.from_dict({**lim.to_dict(), "from_the_future": 1}) == lim


# -- malformed input: every case is a typed ProtocolError ----------------------


@pytest.mark.parametrize(
    "frames, code",
    [
        ([], "bad_header"),
        ([b""], "bad_header"),
        ([b'{"protocol": 1, "type": "hel'], "bad_header"),  # truncated
        ([b"\xff\xfe not utf8"], "bad_header"),
        ([b"[1, 2, 3]"], "bad_header"),  # JSON, but not an object
        ([b'{"protocol": 1, "type": "hello", "job": "j", "x": NaN}'], "bad_header"),
        ([b"[" * 50_000 + b"]" * 50_000], "bad_header"),  # too big / too deep
        ([header(job="")], "bad_header"),
        ([header(job="spaces are bad")], "bad_header"),
        ([header(job=5)], "bad_header"),
        ([header(protocol="1")], "bad_header"),
        ([header(protocol=True)], "bad_header"),
        ([header(protocol=PROTOCOL_VERSION + 1)], "version_mismatch"),
        ([header(type="train_a_dragon")], "unknown_type"),
        ([header(type="frame")], "unknown_type"),  # a reply type is not a request
        ([header(fields=[1])], "bad_header"),
        ([header(end="yes")], "bad_header"),
        ([header(surprise=1)], "bad_header"),
        ([header(fields={"client": 5})], "bad_field"),
        ([header(fields={"unknown": 1})], "bad_field"),
        ([header(type="cancel")], "bad_field"),  # target is required
        ([header(type="generate", parts=[{"name": "motion", "kind": "array", "dtype": "float32", "shape": [1, 17]}]),
          np.zeros(17, np.float32).tobytes()], "bad_field"),  # fps missing
        ([header(parts=[{"name": "x", "kind": "bytes"}])], "bad_part"),  # described but missing
        ([header(), b"stray"], "bad_part"),  # present but not described
        ([header(type="analyze", parts=[{"name": "image", "kind": "png"}]), b"GIF89a..."], "bad_part"),
        ([header(type="analyze", parts=[{"name": "image", "kind": "jpeg"}]), b"\x89PNG"], "bad_part"),
        ([header(type="analyze", parts=[{"name": "image", "kind": "gif"}]), b"GIF89a"], "bad_part"),
        ([header(type="preview", parts=[{"name": "motion", "kind": "array", "dtype": "float64", "shape": [17]}]),
          np.zeros(17).tobytes()], "bad_part"),  # wrong dtype
        ([header(type="preview", parts=[{"name": "motion", "kind": "array", "dtype": "float32", "shape": [17]}]),
          np.zeros(16, np.float32).tobytes()], "bad_part"),  # shape does not match the bytes
        ([header(type="preview", parts=[{"name": "motion", "kind": "array", "dtype": "float32", "shape": [-1]}]),
          b""], "bad_part"),
        ([header(type="preview", parts=[{"name": "motion", "kind": "array", "dtype": "float32", "shape": [1, 1, 1, 1, 1]}]),
          b"\0\0\0\0"], "bad_part"),
        ([header(type="preview", parts=[{"name": "motion", "kind": "array", "dtype": "uint8", "shape": [4]}]),
          b"\0\0\0\0"], "bad_part"),  # right structure, wrong dtype for motion
        ([header(type="analyze", parts=[{"name": "image", "kind": "array", "dtype": "uint8", "shape": [4, 4]}]),
          b"\0" * 16], "bad_part"),  # an image needs 3 dimensions
        ([header(type="preview", parts=[{"name": "m", "kind": "bytes"}, {"name": "m", "kind": "bytes"}]), b"", b""],
         "bad_part"),  # duplicate name
        ([header(type="preview", parts=[{"name": "motion", "kind": "bytes", "shape": [1]}]), b"\0"], "bad_part"),
    ],
)
def test_malformed_messages_raise_typed_errors(frames, code):
    assert code_of(frames) == code


def test_error_keeps_the_job_id_when_it_can():
    with pytest.raises(ProtocolError) as info:
        protocol.decode_request([header(job="mine-7", type="nope")])
    assert info.value.job == "mine-7"


def test_version_mismatch_names_both_versions():
    with pytest.raises(ProtocolError) as info:
        protocol.decode_request([header(protocol=99)])
    text = str(info.value)
    assert "99" in text and str(PROTOCOL_VERSION) in text
    assert info.value.details == {"received": 99, "expected": PROTOCOL_VERSION}


def test_message_size_limit():
    frames = protocol.encode("analyze", "big-1", {}, {"image": PNG + b"\0" * 2000})
    with pytest.raises(ProtocolError) as info:
        protocol.decode_request(frames, max_bytes=1000)
    assert info.value.code == "too_large" and info.value.job == "big-1"


def test_header_size_limit():
    big = header(fields={"client": "x" * 100}).replace(b"}", b"}" + b" " * protocol.MAX_HEADER_BYTES, 1)
    assert code_of([big]) == "bad_header"


def test_motion_checks():
    def part(arr):
        return protocol.decode(protocol.encode("preview", "j", {}, {"motion": arr})).parts["motion"]

    ok = protocol.motion_array(part(np.zeros(17, np.float32)), max_frames=10, max_channels=64)
    assert ok.shape == (1, 17)
    bad = np.zeros((3, 17), np.float32)
    bad[2, 5] = np.nan
    with pytest.raises(ProtocolError, match="frame 2, channel 5") as info:
        protocol.motion_array(part(bad), max_frames=10, max_channels=64)
    assert info.value.code == "bad_motion"
    inf = np.zeros((1, 17), np.float32)
    inf[0, 0] = np.inf
    with pytest.raises(ProtocolError):
        protocol.motion_array(part(inf), max_frames=10, max_channels=64)
    with pytest.raises(ProtocolError) as info:
        protocol.motion_array(part(np.zeros((11, 17), np.float32)), max_frames=10, max_channels=64)
    assert info.value.code == "bad_motion"
    with pytest.raises(ProtocolError):
        protocol.motion_array(part(np.zeros((0, 17), np.float32)), max_frames=10, max_channels=64)


def test_raw_image_checks():
    def part(arr):
        return protocol.decode(protocol.encode("analyze", "j", {}, {"image": arr})).parts["image"]

    rgba = np.zeros((64, 80, 4), np.uint8)
    assert protocol.image_array(part(rgba), max_side=100, max_pixels=10_000).shape == (64, 80, 3)
    with pytest.raises(ProtocolError) as info:
        protocol.image_array(part(np.zeros((64, 200, 3), np.uint8)), max_side=100, max_pixels=10**6)
    assert info.value.code == "too_large"
    with pytest.raises(ProtocolError):
        protocol.image_array(part(np.zeros((64, 64, 2), np.uint8)), max_side=100, max_pixels=10**6)


def test_seeded_fuzz_never_escapes_protocol_error():
    """Random mutations of valid messages: decode either succeeds or raises ProtocolError."""
    rng = np.random.default_rng(1234)
    seeds = [
        protocol.encode("hello", "a", {"client": "x"}),
        protocol.encode("preview", "b", {"subject": "s", "format": "raw"}, {"motion": np.zeros(17, np.float32)}),
        protocol.encode("generate", "c", {"fps": 24}, {"image": PNG, "motion": np.zeros((4, 17), np.float32)}),
        # Hostile headers (RecursionError and Python's int-string ValueError in json.loads), kept
        # here so that their mutations go on being tried.
        [b"[" * 30_000 + b"]" * 30_000],
        [header(fields={"fps": 0}).replace(b"0}", b"9" * 5000 + b"}")],
    ]
    for _ in range(3000):
        frames = [bytes(f) for f in seeds[rng.integers(len(seeds))]]
        i = rng.integers(len(frames))
        data = bytearray(frames[i])
        op = rng.integers(4)
        if op == 0 and data:
            data = data[: rng.integers(len(data))]
        elif op == 1 and data:
            for _ in range(rng.integers(1, 6)):
                data[rng.integers(len(data))] = rng.integers(256)
        elif op == 2:
            frames.append(bytes(rng.integers(0, 256, rng.integers(0, 50), dtype=np.uint8)))
        else:
            frames = frames[: rng.integers(0, len(frames) + 1)]
        if i < len(frames):
            frames[i] = bytes(data)
        try:
            protocol.decode_request(frames, max_bytes=10_000)
        except ProtocolError:
            pass


# -- shared/ must stay vendorable into Blender -----------------------------------


@pytest.mark.parametrize("name", ["protocol.py", "client.py"])
def test_shared_modules_use_only_stdlib_numpy_zmq_and_relative_imports(name):
    import sys

    tree = ast.parse((SHARED / name).read_text())
    allowed = set(sys.stdlib_module_names) | {"numpy", "zmq"}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots = [a.name.split(".")[0] for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: fine
                continue
            roots = [node.module.split(".")[0]]
        else:
            continue
        for root in roots:
            assert root in allowed, f"{name} imports {root}"
    # pyzmq's *_pyobj helpers unpickle whatever arrives; none of that here.
    text = (SHARED / name).read_text()
    assert not re.search(r"import pickle|pickle\.|_pyobj\(|\beval\(|\bexec\(", text)


# -- the client, with nothing listening ------------------------------------------


def _dead_address() -> str:
    # Bind then close: a port on which nothing listens.
    ctx = zmq.Context.instance()
    s = ctx.socket(zmq.ROUTER)
    port = s.bind_to_random_port("tcp://127.0.0.1")
    s.close(0)
    return f"tcp://127.0.0.1:{port}"


def test_client_never_blocks_and_reports_a_dead_backend():
    with Client(_dead_address(), timeout_s=1.0, heartbeat_s=0.3) as client:
        t0 = time.perf_counter()
        jobs = [client.hello(), client.analyze(PNG), client.preview(np.zeros(17, np.float32), subject="s")]
        first = client.poll()
        assert time.perf_counter() - t0 < 0.5 and first == []
        errors = {}
        deadline = time.monotonic() + 10
        while len(errors) < 3 and time.monotonic() < deadline:
            t = time.perf_counter()
            for ev in client.poll():
                errors[ev.job] = ev
            assert time.perf_counter() - t < 0.2  # poll() itself never waits
            time.sleep(0.02)
        assert set(errors) == set(jobs)
        assert all(e.type == "error" and e.code == "timeout" and e.end for e in errors.values())
        assert client.pending == []


def test_client_wait_raises_remote_error_on_timeout():
    with Client(_dead_address(), timeout_s=0.5, heartbeat_s=0.2) as client:
        with pytest.raises(RemoteError) as info:
            client.wait(client.hello(), timeout_s=10)
        assert info.value.code == "timeout"


def test_client_refuses_half_a_curve_configuration():
    with pytest.raises(ValueError):
        Client("tcp://127.0.0.1:1", server_public_key=b"x" * 40)


def test_client_reports_a_reply_in_another_protocol_version():
    ctx = zmq.Context.instance()
    router = ctx.socket(zmq.ROUTER)
    router.linger = 0
    port = router.bind_to_random_port("tcp://127.0.0.1")
    try:
        with Client(f"tcp://127.0.0.1:{port}", timeout_s=5) as client:
            job = client.hello()
            assert router.poll(5000)
            identity, _ = router.recv_multipart()
            router.send_multipart([identity, *protocol.encode("hello_reply", job, {}, end=True, protocol=PROTOCOL_VERSION + 1)])
            with pytest.raises(RemoteError) as info:
                client.wait(job, timeout_s=10)
            assert info.value.code == "version_mismatch"
            assert client.bad_replies == 1
    finally:
        router.close(0)


def test_error_codes_and_done_statuses_keep_their_wire_values():
    # Clients compare these strings (an add-on of another release, a user's script): a renamed constant
    # is fine, a changed value is a protocol break.
    codes = {name: value for name, value in vars(protocol).items() if name.startswith("E_")}
    assert len(set(codes.values())) == len(codes), "two constants share a wire value"
    assert all(value.islower() and value.replace("_", "").isalpha() for value in codes.values())
    assert (protocol.E_BAD_HEADER, protocol.E_VERSION, protocol.E_TOO_MANY_JOBS, protocol.E_BUSY) == (
        "bad_header", "version_mismatch", "too_many_jobs", "busy")
    assert (protocol.DONE_COMPLETED, protocol.DONE_CANCELLED, protocol.DONE_SUPERSEDED, protocol.DONE_STOPPED,
            protocol.DONE_STALLED) == ("completed", "cancelled", "superseded", "stopped", "stalled")
