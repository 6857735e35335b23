"""The session with a backend: connecting (and, in local mode, starting the
backend first), the hello that checks the protocol, and the replies routed to
whoever sent each request, by job id. Free of bpy: the runtime hands it the
settings (with paths already made absolute) and a `wake` callback that makes
the timer run soon.

What the jobs themselves do with their replies is theirs (addon/*_job.py).
"""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from .local_backend import LocalBackend, find_python
from .shared import protocol
from .shared.channels import CHANNEL_NAMES
from .shared.client import Client, Event
from .states import UNREACHABLE_ERRORS, ConnectionState, UserError, describe_error

CLIENT_NAME = "blender-enliven"
LOCAL_START_TIMEOUT_S = 60.0
# A local backend stopped while it trains finishes the step and saves before it exits (the server waits up to
# 120 s for that): it is given this long, off Blender's UI thread, before it is killed.
LOCAL_TRAINING_STOP_S = 150.0
# Events handled per timer tick, so a fast stream cannot freeze the UI.
EVENTS_PER_TICK = 32


@dataclass
class ConnectionSettings:
    """The preferences as the session needs them: paths absolute, nothing of bpy."""

    mode: str = 'CONNECT'  # 'CONNECT' to a running backend, or start a 'LOCAL' one
    address: str = ""
    server_key: str = ""  # CurveZMQ key files (both or neither)
    client_key: str = ""
    python_env: str = ""  # LOCAL: the environment's folder or python
    local_port: int = 0
    timeout: float = 5.0


def curve_keys(server_key: str, client_key: str) -> dict:
    """Client arguments for CurveZMQ, from the key files `enliven keys` made
    (both or neither: a remote backend refuses clear text)."""
    server_key, client_key = server_key.strip(), client_key.strip()
    if not server_key and not client_key:
        return {}
    if not (server_key and client_key):
        raise UserError("Encryption needs both the server's public key and this client's secret key file")
    from .shared.client import load_client_keys, load_public_key

    try:
        return {"server_public_key": load_public_key(server_key), "client_keys": load_client_keys(client_key)}
    except (OSError, ValueError) as error:
        raise UserError(f"Cannot read the CurveZMQ keys: {error}") from None


class Session:
    """One connection to a backend at a time, and the handlers of its requests."""

    def __init__(self, settings: Callable[[], ConnectionSettings], notify: Callable[[str, str], None],
                 wake: Callable[[], None], on_connected: Callable[[], None] = lambda: None,
                 client_name: str = CLIENT_NAME):
        self.settings = settings  # read when connecting: the preferences may have changed
        self.notify = notify  # (level, text): where the artist looks
        self.wake = wake  # the timer should run soon: a request went out
        self.on_connected = on_connected
        self.client_name = client_name
        self.client: Client | None = None
        self.address = ""
        self.server_info: dict | None = None
        self.state = ConnectionState.DISCONNECTED
        self.message = "Not connected"
        self.local: LocalBackend | None = None
        self.saving_local: LocalBackend | None = None  # stopped while it trained: saving its run, then exiting
        self.handlers: dict[str, Callable[[Event], None]] = {}
        self.waiting: list[tuple[Callable[[], None], Callable[[str], None]]] = []  # until connected
        self.changed = False  # something the panel shows changed

    @property
    def connected(self) -> bool:
        return self.state == ConnectionState.CONNECTED and self.client is not None

    def status_line(self) -> tuple[str, str]:
        """(icon, text) for the panel: connected / device / engine."""
        if self.state == ConnectionState.CONNECTED and self.server_info:
            device = (self.server_info.get("device") or {}).get("name", "?")
            engine = self.server_info.get("default_engine", "?")
            return 'CHECKMARK', f"Connected · {device} · {engine}"
        if self.state == ConnectionState.ERROR:
            return 'ERROR', self.message
        if self.state in (ConnectionState.STARTING, ConnectionState.CONNECTING):
            return 'SORTTIME', self.message
        return 'UNLINKED', self.message

    def has_log(self) -> bool:
        return self.local is not None and bool(self.local.log)

    def fail(self, text: str) -> None:
        """The connection failed: everything waiting for it fails with `text`."""
        self.state = ConnectionState.ERROR
        self.message = text
        self.release_waiting(text)
        self.notify('ERROR', text)

    # -- connecting ---------------------------------------------------------

    def connect(self) -> None:
        """Start connecting (and, in local mode, start the backend). Returns at once."""
        settings = self.settings()
        if self.state in (ConnectionState.STARTING, ConnectionState.CONNECTING):
            return
        try:
            if settings.mode == 'LOCAL':
                if self.saving_local is not None and self.saving_local.running:
                    # Another backend now would train the same run folder while the old one still writes it.
                    raise UserError("The stopped local backend is still saving its training run; "
                                    "connect again in a moment")
                self.saving_local = None
                if self.local is not None and not self.local.running:
                    self.local = None
                if self.local is None:
                    self.local = LocalBackend(find_python(settings.python_env), settings.local_port)
                if self.local.endpoint is None:
                    self.state = ConnectionState.STARTING
                    self.message = "Starting the local backend…"
                    self.changed = True
                    return  # the timer continues once it prints its address
                address, keys = self.local.endpoint, {}
            else:
                address = settings.address.strip()
                keys = curve_keys(settings.server_key, settings.client_key)
            self.hello(address, float(settings.timeout), keys)
        except UserError as error:
            self.fail(str(error))
        finally:
            self.wake()

    def hello(self, address: str, timeout_s: float, keys: dict | None = None) -> None:
        """Say hello to the backend at `address`; the reply decides CONNECTED or ERROR."""
        if self.client is None or self.address != address:
            if self.client is not None:
                self.client.close()
            try:
                self.client = Client(address, timeout_s=timeout_s, heartbeat_s=min(1.0, timeout_s / 3), **(keys or {}))
            except Exception as error:  # noqa: BLE001 - a bad address is a ZMQError
                raise UserError(f"Cannot use backend address {address!r}: {error}") from None
            self.address = address
        self.state = ConnectionState.CONNECTING
        self.message = f"Connecting to {address}…"
        self.handlers[self.client.hello(self.client_name)] = self.on_hello
        self.changed = True

    def on_hello(self, event: Event) -> None:
        """The reply to a hello: the backend must speak this protocol and know every channel."""
        if event.type == "hello_reply":
            fields = event.fields
            if fields.get("protocol") != protocol.PROTOCOL_VERSION:
                self.fail(describe_error(
                    protocol.E_VERSION,
                    f"the backend speaks protocol {fields.get('protocol')}, this add-on "
                    f"{protocol.PROTOCOL_VERSION}; update them together"))
                return
            missing = [name for name in CHANNEL_NAMES if name not in fields.get("channels", CHANNEL_NAMES)]
            if missing:
                self.fail(describe_error(protocol.E_VERSION,
                                         f"the backend does not know the channels {', '.join(missing)}"))
                return
            self.server_info = fields
            self.state = ConnectionState.CONNECTED
            self.message = "Connected"
            self.on_connected()
            waiting, self.waiting = self.waiting, []
            for on_ready, _ in waiting:
                on_ready()
            self.changed = True
        elif event.type == "error":
            self.fail(describe_error(event.code, event.message))

    def when_connected(self, on_ready: Callable[[], None], on_error: Callable[[str], None]) -> None:
        """Run `on_ready` once connected (now, if already), else `on_error(text)`."""
        if self.connected:
            on_ready()
            return
        self.waiting.append((on_ready, on_error))
        if self.state == ConnectionState.ERROR:
            self.state = ConnectionState.DISCONNECTED  # an action retries a failed connection
        self.connect()

    def request(self, job: str, handler: Callable[[Event], None]) -> str:
        """Route the replies of job `job` to `handler`; returns the job id."""
        self.handlers[job] = handler
        self.wake()
        return job

    def cancel(self, job: str | None) -> None:
        """Ask the backend to cancel `job` (its replies keep coming until it ends)."""
        if job is not None and self.client is not None:
            self.client.cancel(job)

    def forget(self, job: str | None) -> None:
        """Ignore the rest of `job`'s replies."""
        if job is not None:
            self.handlers.pop(job, None)

    def close(self, stop_local: bool = True, patient: bool = False, wait: bool = True) -> None:
        """Drop the connection (and the local backend, with `stop_local`). `patient`: the local backend is
        saving a training run as it stops; it is not waited for, nor killed soon. Without `wait` it is not
        waited for either (killed if it has not exited in a few seconds): the backend takes seconds to exit
        even idle, and Stop Backend or a changed preference froze Blender that long. What waits for the
        connection is told by `release_waiting`, once the jobs have ended their own way."""
        if self.client is not None:
            self.client.close()
        self.client = None
        self.server_info = None
        self.handlers.clear()
        if stop_local and self.local is not None:
            if patient:
                self.local.stop(LOCAL_TRAINING_STOP_S, block=False)
                self.saving_local = self.local
            else:
                self.local.stop(block=wait)
            self.local = None
        self.state = ConnectionState.DISCONNECTED
        self.message = "Not connected"

    def release_waiting(self, text: str) -> None:
        waiting, self.waiting = self.waiting, []
        for _, on_error in waiting:
            on_error(text)

    # -- the timer ----------------------------------------------------------

    def tick(self) -> None:
        """Notice a started local backend, and hand each reply to its handler."""
        local = self.local
        if local is not None and self.state == ConnectionState.STARTING:
            if local.failure is not None:
                self.fail(local.failure)
            elif local.endpoint is not None:
                try:
                    self.hello(local.endpoint, float(self.settings().timeout), {})
                except UserError as error:
                    self.fail(str(error))
            elif not local.running:
                self.fail(_ended("exited", local))
            elif time.monotonic() - local.started > LOCAL_START_TIMEOUT_S:
                self.fail(_ended(f"did not start within {LOCAL_START_TIMEOUT_S:.0f} s", local))
        if self.client is None:
            return
        for event in self.client.poll(max_events=EVENTS_PER_TICK):
            if event.type == "error" and event.code in UNREACHABLE_ERRORS and self.state == ConnectionState.CONNECTED:
                # Every job of a dead connection fails the same way; say it once, up top.
                self.state, self.message = ConnectionState.ERROR, describe_error(event.code, event.message)
            handler = self.handlers.get(event.job)
            if event.end:
                self.handlers.pop(event.job, None)
            if handler is not None:
                handler(event)
        if self.state == ConnectionState.CONNECTED and self.local is not None and not self.local.running:
            text = _ended("stopped", self.local)
            self.fail(text)
            # Its jobs end now (a Generate waited out the whole timeout, its button greyed out).
            for event in self.client.abandon(protocol.E_LOST, text):
                handler = self.handlers.pop(event.job, None)
                if handler is not None:
                    handler(event)


def _ended(what: str, local) -> str:
    """One line (a label shows one) on how the local backend `what` ("exited", "stopped", ...): its exit code
    or signal and its log's last line, which says why when it failed; killed, its log's tail is its start-up
    banner, so none. Show Backend Log has the rest."""
    code = local.returncode
    if code is not None and code < 0:
        return f"The local backend {what} (killed by signal {-code}). Show Backend Log has the rest"
    last = local.last_log_line()
    return f"The local backend {what}{f' (code {code})' if code else ''}{f': {last}' if last else ''}. " \
           "Show Backend Log has the rest"
