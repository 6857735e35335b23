"""The Enliven wire protocol: multipart ZeroMQ messages, validated both ways.

A message is a list of frames. Frame 0 is a small UTF-8 JSON header::

    {"protocol": 1, "type": "generate", "job": "c3f1-7",
     "fields": {"fps": 24, "engine": "warp"},
     "parts": [{"name": "image", "kind": "png"},
               {"name": "motion", "kind": "array", "dtype": "float32", "shape": [48, 19]}],
     "end": false}

and every further frame is the binary payload of one entry of ``parts``, in
order. Images travel as PNG/JPEG bytes or as raw arrays; motion travels as a
raw little-endian float32 array. The header says what every byte is, so the
receiver never has to guess, and no bytes are ever turned back into Python
objects (no pickle, no eval).

``job`` ties replies to the request that caused them, so many jobs and their
progress messages can interleave on one socket. ``end`` is true on the last
reply a job will ever get (a ``done``, an ``error``, a preview's ``frame``...),
so a client can free its bookkeeping without knowing every message type.

Everything that arrives from the network goes through :func:`decode`, which
raises :class:`ProtocolError` (with a machine-readable ``code``) for anything
malformed. Requests are then checked field by field against ``REQUESTS``.

This module is vendored into the Blender add-on: standard library + numpy only,
relative imports only.
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, fields as dataclass_fields
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from .schema import JOB_ID_RE as _JOB_RE, NAME_RE as _NAME_RE, REQUESTS, is_int as _is_int

PROTOCOL_VERSION = 1

# The header is small by design; a huge one is an attack or a bug.
MAX_HEADER_BYTES = 64 * 1024
MAX_PARTS = 8
MAX_FRAMES = 1 + MAX_PARTS  # a header and its parts; a receiver drops the rest of a longer message unread
MAX_NDIM = 4

# Request types a server understands, and the reply types it sends.
REQUEST_TYPES = ("hello", "ping", "analyze", "preview", "generate", "capture", "lipsync", "talk", "train", "cancel",
                 "status", "shutdown")
REPLY_TYPES = (
    "hello_reply",  # protocol + package version, device, engines, limits
    "pong",  # liveness answer to ping: server id and the client's live jobs
    "analysis",  # subject hash + summary (end)
    "queued",  # position in the GPU-heavy queue (1 = next)
    "progress",  # done/total frames, rate (a training's: steps and losses)
    "frame",  # one rendered frame (a preview's frame has end=true)
    "motion",  # a capture's or lip-sync's result: channels, fps + a float32 "motion" part (end)
    "done",  # summary of a finished, cancelled or superseded job (end)
    "status_reply",  # queue and job overview (end)
    "ok",  # plain acknowledgement (cancel, shutdown) (end)
    "error",  # code + human message (end)
)
MESSAGE_TYPES = REQUEST_TYPES + REPLY_TYPES

# Stable error codes. Backend errors (EnlivenError.code: no_face, bad_image,
# bad_motion, too_large, ...) pass through unchanged next to these.
E_BAD_HEADER = "bad_header"
E_VERSION = "version_mismatch"
E_UNKNOWN_TYPE = "unknown_type"
E_BAD_FIELD = "bad_field"
E_BAD_PART = "bad_part"
E_BAD_MOTION = "bad_motion"
E_TOO_LARGE = "too_large"
# The server's own refusals and failures.
E_INTERNAL = "internal"
E_DUPLICATE_JOB = "duplicate_job"
E_TOO_MANY_JOBS = "too_many_jobs"
E_BUSY = "busy"
E_FORBIDDEN = "forbidden"
E_BAD_PATH = "bad_path"
E_BAD_OUTPUT_DIR = "bad_output_dir"
E_OUTPUT_BUSY = "output_busy"
E_WRITE_FAILED = "write_failed"
E_ENCODE_FAILED = "encode_failed"
E_UNKNOWN_SUBJECT = "unknown_subject"
E_UNKNOWN_ENGINE = "unknown_engine"
E_BAD_CHECKPOINT = "bad_checkpoint"
E_BAD_CONFIG = "bad_config"
E_RUN_EXISTS = "run_exists"
E_NO_TRAINING = "no_training"
E_SHUTDOWN_REFUSED = "shutdown_refused"
# Starting a server, and `enliven keys`.
E_INSECURE_BIND = "insecure_bind"
E_BIND_FAILED = "bind_failed"
E_NO_KEYS = "no_keys"
E_BAD_NAME = "bad_name"
E_EXISTS = "exists"
# What the backend's own errors (EnlivenError.code) carry onto the wire.
E_ERROR = "error"
E_BAD_IMAGE = "bad_image"
E_NO_FACE = "no_face"
E_BAD_VIDEO = "bad_video"
E_BAD_AUDIO = "bad_audio"
E_NO_SPEECH = "no_speech"
E_TTS_FAILED = "tts_failed"
E_BAD_DATASET = "bad_dataset"
E_BAD_VGG_WEIGHTS = "bad_vgg_weights"
E_NO_DEVICE = "no_device"
E_USAGE = "usage"  # a command line argument that cannot be used (exit 2)
# Raised by the client itself, never sent by a server.
E_TIMEOUT = "timeout"
E_AUTH_REFUSED = "auth_refused"
E_SERVER_RESTARTED = "server_restarted"
E_UNKNOWN_JOB = "unknown_job"
E_LOST = "lost"  # the server no longer knows a job (the connection dropped)

# A `done` reply's "status".
DONE_COMPLETED = "completed"  # every frame (or step) made
DONE_CANCELLED = "cancelled"  # the client cancelled it (or went away)
DONE_SUPERSEDED = "superseded"  # a newer preview from the same client took its place
DONE_STOPPED = "stopped"  # a training run stopped early, saved: resume continues it
DONE_STALLED = "stalled"  # the client read nothing for the stall timeout

_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_JPEG_MAGIC = b"\xff\xd8\xff"

# Wire dtypes are fixed little-endian so a big-endian peer cannot be misread.
_DTYPES = {"uint8": np.dtype("u1"), "uint16": np.dtype("<u2"), "float32": np.dtype("<f4")}
PART_KINDS = ("png", "jpeg", "array", "bytes")


class ProtocolError(ValueError):
    """A message that breaks the protocol. ``code`` is stable, str(e) is for humans.

    ``job`` is the job id when the header was readable enough to find it, so the
    error reply can still be addressed to the request that caused it.
    """

    def __init__(self, code: str, message: str, job: str = "", **details: Any):
        super().__init__(message)
        self.code = code
        self.job = job
        self.details = details


# --------------------------------------------------------------------------
# Limits: one place for every bound the server enforces; hello reports them.


@dataclass(frozen=True)
class Limits:
    """Bounds that keep a hostile or buggy peer from hurting the server."""

    max_message_bytes: int = 64 * 1024 * 1024  # whole multipart message; also ZMQ_MAXMSGSIZE
    max_image_side: int = 8192
    max_image_pixels: int = 40_000_000
    max_frames: int = 20_000  # motion rows per job
    max_channels: int = 256
    max_jobs_per_client: int = 4  # queued + running jobs of each kind, per client (CurveZMQ key, another machine's IP address, or a loopback socket)
    max_queued_jobs: int = 64  # all clients together
    heavy_lanes: int = 1  # GPU-heavy jobs that run at the same time
    send_hwm: int = 16  # ZeroMQ messages buffered per client before backpressure
    recv_hwm: int = 64
    job_window: int = 4  # frames a job may have in flight before its worker waits
    stall_timeout_s: float = 120.0  # a client that reads nothing for this long loses its job
    subject_cache_mb: float = 1024.0  # memory for analysed photos (a 40 MP photo holds about 200 MB)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Limits":
        known = {f.name for f in dataclass_fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


# --------------------------------------------------------------------------
# Decoded messages


@dataclass
class Part:
    """One binary frame and its description from the header."""

    name: str
    kind: str  # png | jpeg | array | bytes
    data: memoryview
    dtype: str | None = None
    shape: tuple[int, ...] | None = None

    def array(self) -> np.ndarray:
        """The payload as a read-only numpy array (no copy)."""
        if self.kind != "array":
            raise ProtocolError(E_BAD_PART, f"part {self.name!r} is {self.kind}, not an array")
        arr = np.frombuffer(self.data, dtype=_DTYPES[self.dtype]).reshape(self.shape)
        arr.flags.writeable = False  # it aliases the message buffer; copy before changing it
        return arr

    def tobytes(self) -> bytes:
        return bytes(self.data)

    def describe(self) -> dict:
        d: dict[str, Any] = {"name": self.name, "kind": self.kind}
        if self.kind == "array":
            d["dtype"] = self.dtype
            d["shape"] = list(self.shape or ())
        return d


@dataclass
class Message:
    type: str
    job: str
    fields: dict
    parts: dict[str, Part]
    end: bool = False
    protocol: int = PROTOCOL_VERSION

    def part(self, name: str) -> Part | None:
        return self.parts.get(name)


# --------------------------------------------------------------------------
# Encoding


def encode(
    type: str,
    job: str,
    fields: Mapping[str, Any] | None = None,
    parts: Mapping[str, Any] | None = None,
    *,
    end: bool = False,
    protocol: int = PROTOCOL_VERSION,
) -> list:
    """Build the frames of one message.

    ``parts`` maps a name to bytes (PNG/JPEG recognised by their magic, other
    bytes sent as kind "bytes"), to a numpy array (sent raw, dtype and shape in
    the header) or to an already decoded :class:`Part`. Arrays are sent without
    a copy when they are already contiguous little-endian.
    """
    header: dict[str, Any] = {"protocol": protocol, "type": type, "job": job, "fields": dict(fields or {})}
    descs: list[dict] = []
    payloads: list = []
    for name, value in (parts or {}).items():
        desc, payload = _encode_part(name, value)
        descs.append(desc)
        payloads.append(payload)
    if descs:
        header["parts"] = descs
    if end:
        header["end"] = True
    try:
        head = json.dumps(header, separators=(",", ":"), allow_nan=False).encode("utf-8")
    except (TypeError, ValueError) as e:
        raise ProtocolError(E_BAD_FIELD, f"fields of {type!r} are not plain JSON: {e}", job) from e
    return [head, *payloads]


def encoded_kind(data: bytes | bytearray | memoryview) -> str:
    """The part kind of encoded bytes: "png" or "jpeg" (the image files a request may carry), else "bytes"."""
    head = bytes(data[:8])
    return "png" if head.startswith(_PNG_MAGIC) else "jpeg" if head.startswith(_JPEG_MAGIC) else "bytes"


def _encode_part(name: str, value: Any) -> tuple[dict, Any]:
    if isinstance(value, Part):
        return value.describe(), value.data
    if isinstance(value, np.ndarray):
        # Match on kind + size so native and explicitly-little/big-endian arrays all work.
        dtype_name = next((k for k, dt in _DTYPES.items() if value.dtype.str[1:] == dt.str[1:]), None)
        if dtype_name is None:
            raise ProtocolError(E_BAD_PART, f"part {name!r}: dtype {value.dtype} is not one of {sorted(_DTYPES)}")
        arr = np.ascontiguousarray(value, dtype=_DTYPES[dtype_name])
        # memoryview of a C-contiguous array is zero-copy; pyzmq sends it as is.
        return {"name": name, "kind": "array", "dtype": dtype_name, "shape": list(arr.shape)}, memoryview(arr.reshape(-1).view(np.uint8))
    if isinstance(value, (bytes, bytearray, memoryview)):
        return {"name": name, "kind": encoded_kind(value)}, value
    raise ProtocolError(E_BAD_PART, f"part {name!r}: cannot send a {type(value).__name__}")


def error_frames(job: str, code: str, message: str, **extra: Any) -> list:
    """An error reply: always the last message of its job."""
    return encode("error", job, {"code": code, "message": message, **extra}, end=True)


# --------------------------------------------------------------------------
# Decoding


def _as_buffer(frame: Any) -> memoryview:
    # zmq.Frame exposes .buffer; bytes/bytearray/memoryview support the buffer
    # protocol directly. Anything else is a caller bug, not network input.
    buf = getattr(frame, "buffer", None)
    return memoryview(buf if buf is not None else frame).cast("B")


def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not allowed in a header")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number {text[:20]} is not finite")
    return value


MAX_INTEGER_DIGITS = 19  # a header's integers (sizes, counts, seeds) fit in 64 bits, whose largest has 19 digits


class _LongInteger(ValueError):
    """A header integer past MAX_INTEGER_DIGITS (valid JSON, refused in our words)."""


def _bounded_int(text: str) -> int:
    # Python's own limit (4,300 digits) answered with its advice to call sys.set_int_max_str_digits().
    digits = len(text.lstrip("-"))
    if digits > MAX_INTEGER_DIGITS:
        raise _LongInteger(f"an integer of {digits} digits (at most {MAX_INTEGER_DIGITS})")
    return int(text)


def decode(frames: Sequence[Any], *, max_bytes: int | None = None, known_types: Iterable[str] = MESSAGE_TYPES) -> Message:
    """Parse and validate the structure of one multipart message.

    Checks the header (size, JSON, version, type, job id), that every binary
    frame is described by exactly one part entry, and that each part's bytes
    match its description (PNG/JPEG magic, array byte count = dtype x shape).
    Field contents are checked separately by :func:`validate_request`.
    """
    if not frames:
        raise ProtocolError(E_BAD_HEADER, "empty message")
    bufs = [_as_buffer(f) for f in frames]
    if max_bytes is not None:
        total = sum(b.nbytes for b in bufs)
        if total > max_bytes:
            job = _sniff_job(bufs[0])
            raise ProtocolError(E_TOO_LARGE, f"message is {total} bytes; the limit is {max_bytes}", job)
    head = bufs[0]
    if head.nbytes > MAX_HEADER_BYTES:
        raise ProtocolError(E_BAD_HEADER, f"header is {head.nbytes} bytes; the limit is {MAX_HEADER_BYTES}")
    try:
        header = json.loads(
            head.tobytes().decode("utf-8"), parse_constant=_reject_constant, parse_float=_finite_float,
            parse_int=_bounded_int,
        )
    except _LongInteger as e:
        raise ProtocolError(E_BAD_HEADER, f"header holds {e}") from None
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        raise ProtocolError(E_BAD_HEADER, f"header is not valid JSON: {str(e)[:200]}") from None
    if not isinstance(header, dict):
        raise ProtocolError(E_BAD_HEADER, "header must be a JSON object")

    job = header.get("job")
    job_ok = isinstance(job, str) and _JOB_RE.match(job) is not None
    if not job_ok:
        job = ""

    version = header.get("protocol")
    if not _is_int(version):
        raise ProtocolError(E_BAD_HEADER, "header 'protocol' must be an integer", job)
    if version != PROTOCOL_VERSION:
        raise ProtocolError(
            E_VERSION,
            f"protocol version mismatch: the message speaks version {version}, "
            f"this side speaks version {PROTOCOL_VERSION}; update the add-on and the backend together",
            job,
            received=version,
            expected=PROTOCOL_VERSION,
        )

    unknown = set(header) - {"protocol", "type", "job", "fields", "parts", "end"}
    if unknown:
        raise ProtocolError(E_BAD_HEADER, f"unknown header keys: {sorted(unknown)[:5]}", job)
    mtype = header.get("type")
    if not isinstance(mtype, str) or mtype not in tuple(known_types):
        raise ProtocolError(E_UNKNOWN_TYPE, f"unknown message type {str(mtype)[:40]!r}", job)
    # An error about a request whose job id was unreadable goes back with job "".
    if not job_ok and not (mtype == "error" and header.get("job") == ""):
        raise ProtocolError(E_BAD_HEADER, "header 'job' must be 1-64 characters of [A-Za-z0-9_.:-]")
    fields = header.get("fields", {})
    if not isinstance(fields, dict):
        raise ProtocolError(E_BAD_HEADER, "header 'fields' must be a JSON object", job)
    end = header.get("end", False)
    if not isinstance(end, bool):
        raise ProtocolError(E_BAD_HEADER, "header 'end' must be true or false", job)

    descs = header.get("parts", [])
    if not isinstance(descs, list) or len(descs) > MAX_PARTS:
        raise ProtocolError(E_BAD_HEADER, f"header 'parts' must be a list of at most {MAX_PARTS}", job)
    if len(descs) != len(bufs) - 1:
        raise ProtocolError(
            E_BAD_PART, f"header describes {len(descs)} binary parts but {len(bufs) - 1} arrived", job
        )
    parts: dict[str, Part] = {}
    for desc, buf in zip(descs, bufs[1:]):
        part = _decode_part(desc, buf, job)
        if part.name in parts:
            raise ProtocolError(E_BAD_PART, f"part {part.name!r} appears twice", job)
        parts[part.name] = part
    return Message(type=mtype, job=job, fields=fields, parts=parts, end=end, protocol=version)


def too_many_frames(head: Any) -> ProtocolError:
    """The error for a message with more than MAX_FRAMES frames (its header is the first)."""
    return ProtocolError(E_TOO_LARGE, f"a message has at most {MAX_FRAMES} frames (a header and {MAX_PARTS} parts); "
                                      "this one had more and was dropped", _sniff_job(_as_buffer(head)))


def _sniff_job(head: memoryview) -> str:
    """Best effort job id from a header we refuse to process fully."""
    if head.nbytes > MAX_HEADER_BYTES:
        return ""
    try:
        job = json.loads(head.tobytes().decode("utf-8")).get("job", "")
    except Exception:  # noqa: BLE001 - anything unreadable just means "no job id"
        return ""
    return job if isinstance(job, str) and _JOB_RE.match(job) else ""


def _decode_part(desc: Any, buf: memoryview, job: str) -> Part:
    if not isinstance(desc, dict):
        raise ProtocolError(E_BAD_PART, "each part description must be a JSON object", job)
    name, kind = desc.get("name"), desc.get("kind")
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise ProtocolError(E_BAD_PART, "part 'name' must be 1-64 characters of [A-Za-z0-9_.-]", job)
    if kind not in PART_KINDS:
        raise ProtocolError(E_BAD_PART, f"part {name!r}: kind must be one of {list(PART_KINDS)}", job)
    extra = set(desc) - {"name", "kind", "dtype", "shape"}
    if extra:
        raise ProtocolError(E_BAD_PART, f"part {name!r}: unknown keys {sorted(extra)[:5]}", job)
    if kind == "png" and not buf[:8].tobytes() == _PNG_MAGIC:
        raise ProtocolError(E_BAD_PART, f"part {name!r} says PNG but does not start with the PNG signature", job)
    if kind == "jpeg" and not buf[:3].tobytes() == _JPEG_MAGIC:
        raise ProtocolError(E_BAD_PART, f"part {name!r} says JPEG but does not start with the JPEG marker", job)
    if kind != "array":
        if "dtype" in desc or "shape" in desc:
            raise ProtocolError(E_BAD_PART, f"part {name!r}: only arrays have dtype and shape", job)
        return Part(name, kind, buf)

    dtype, shape = desc.get("dtype"), desc.get("shape")
    if dtype not in _DTYPES:
        raise ProtocolError(E_BAD_PART, f"part {name!r}: dtype {str(dtype)[:20]!r} is not one of {sorted(_DTYPES)}", job)
    if (
        not isinstance(shape, list)
        or not 1 <= len(shape) <= MAX_NDIM
        or not all(_is_int(n) and 0 <= n <= 2**31 for n in shape)
    ):
        raise ProtocolError(E_BAD_PART, f"part {name!r}: shape must be a list of 1-{MAX_NDIM} sizes", job)
    expected = math.prod(shape) * _DTYPES[dtype].itemsize
    if expected != buf.nbytes:
        raise ProtocolError(
            E_BAD_PART, f"part {name!r}: {dtype} {shape} needs {expected} bytes but {buf.nbytes} arrived", job
        )
    return Part(name, kind, buf, dtype=dtype, shape=tuple(shape))


def validate_request(msg: Message) -> Message:
    """Check a decoded request's fields and parts against its schema."""
    if msg.type not in REQUESTS:
        raise ProtocolError(E_UNKNOWN_TYPE, f"{msg.type!r} is not a request type", msg.job)
    field_specs, part_specs = REQUESTS[msg.type]
    for key in msg.fields:
        if key not in field_specs:
            raise ProtocolError(E_BAD_FIELD, f"{msg.type}: unknown field {str(key)[:40]!r}", msg.job)
    for key, spec in field_specs.items():
        if key not in msg.fields:
            if spec.required:
                raise ProtocolError(E_BAD_FIELD, f"{msg.type}: field {key!r} is required ({spec.expect})", msg.job)
        elif not spec.check(msg.fields[key]):
            raise ProtocolError(E_BAD_FIELD, f"{msg.type}: field {key!r} must be {spec.expect}", msg.job)
    for name, part in msg.parts.items():
        spec = part_specs.get(name)
        if spec is None:
            raise ProtocolError(E_BAD_PART, f"{msg.type}: unexpected part {name!r}", msg.job)
        if part.kind not in spec.kinds:
            raise ProtocolError(E_BAD_PART, f"{msg.type}: part {name!r} must be one of {list(spec.kinds)}", msg.job)
        if part.kind == "array":
            if spec.dtypes and part.dtype not in spec.dtypes:
                raise ProtocolError(E_BAD_PART, f"{msg.type}: part {name!r} must be {'/'.join(spec.dtypes)}, not {part.dtype}", msg.job)
            if spec.ndims and len(part.shape or ()) not in spec.ndims:
                raise ProtocolError(E_BAD_PART, f"{msg.type}: part {name!r} must have {' or '.join(map(str, spec.ndims))} dimensions", msg.job)
    for name, spec in part_specs.items():
        if spec.required and name not in msg.parts:
            raise ProtocolError(E_BAD_PART, f"{msg.type}: part {name!r} is required", msg.job)
    return msg


def decode_request(frames: Sequence[Any], *, max_bytes: int | None = None) -> Message:
    """decode() + validate_request() for what a server receives."""
    return validate_request(decode(frames, max_bytes=max_bytes, known_types=REQUEST_TYPES))


def decode_reply(frames: Sequence[Any]) -> Message:
    """decode() for what a client receives. Reply fields are not schema-checked
    so a newer server may add information without breaking older clients."""
    return decode(frames, known_types=REPLY_TYPES)


# --------------------------------------------------------------------------
# Helpers shared by both sides


def motion_array(part: Part, *, max_frames: int, max_channels: int, job: str = "") -> np.ndarray:
    """Motion as a (frames, channels) float32 array, or (faces, frames, channels) for several faces:
    bounded and finite."""
    arr = part.array()
    if arr.ndim == 1:
        arr = arr.reshape(1, -1)
    n, c = arr.shape[-2:]
    if n < 1 or c < 1:
        raise ProtocolError(E_BAD_MOTION, f"motion must have at least one frame and one channel, got {n}x{c}", job)
    if n > max_frames:
        # A motion problem, not an image one: clients map too_large to "the photo is too big".
        raise ProtocolError(E_BAD_MOTION, f"motion has {n} frames; the limit is {max_frames} (send a shorter motion)", job)
    if c > max_channels:
        raise ProtocolError(E_BAD_MOTION, f"motion has {c} channels; the limit is {max_channels}", job)
    finite = np.isfinite(arr)
    if not finite.all():
        *face, row, col = (int(i) for i in np.argwhere(~finite)[0])
        where = f"faces[{face[0]}], " if face else ""
        raise ProtocolError(
            E_BAD_MOTION, f"motion has a non-finite value (NaN or infinity) at {where}frame {row}, channel {col}", job
        )
    return arr


def image_array(part: Part, *, max_side: int, max_pixels: int, job: str = "") -> np.ndarray:
    """A raw image part as (H, W, 3) uint8 RGB, within the size limits."""
    arr = part.array()
    h, w, c = arr.shape
    if c not in (3, 4) or h < 1 or w < 1:
        raise ProtocolError(E_BAD_PART, f"raw image must be HxWx3 (RGB) or HxWx4 (RGBA), got {list(arr.shape)}", job)
    if max(h, w) > max_side or h * w > max_pixels:
        raise ProtocolError(
            E_TOO_LARGE, f"image is {w}x{h}; the limits are {max_side} per side and {max_pixels} pixels", job
        )
    return arr[:, :, :3]
