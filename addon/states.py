"""The add-on's vocabulary, free of bpy: connection and job states, the
backend's error codes the add-on acts on, and the error the artist can fix.

The states are StrEnums whose values are the strings the panel, the tests and
scripts compare against ("CONNECTED", "DONE"...), so `state == "DONE"` keeps
working. The error codes and done statuses are shared/protocol.py's, grouped
here by what the add-on does about them.
"""
from __future__ import annotations

from enum import StrEnum

from .shared import protocol


class UserError(Exception):
    """A problem the artist can fix; its message is shown as is."""


class ConnectionState(StrEnum):
    DISCONNECTED = "DISCONNECTED"
    STARTING = "STARTING"  # a local backend is starting; no address yet
    CONNECTING = "CONNECTING"  # hello sent, no reply yet
    CONNECTED = "CONNECTED"
    ERROR = "ERROR"


class JobState(StrEnum):
    PREPARING = "PREPARING"  # waiting for the connection or the photo's analysis
    RUNNING = "RUNNING"
    FINISHING = "FINISHING"  # generate: waiting for the last frame writes
    STOPPING = "STOPPING"  # training: stops after this step and saves
    DONE = "DONE"
    CANCELLED = "CANCELLED"
    STOPPED = "STOPPED"  # training: saved, Resume continues it
    FAILED = "FAILED"


ACTIVE_STATES = frozenset({JobState.PREPARING, JobState.RUNNING, JobState.FINISHING, JobState.STOPPING})

# How a job's end is reported (the report's level).
REPORT_LEVEL = {JobState.FAILED: 'ERROR', JobState.CANCELLED: 'WARNING', JobState.STOPPED: 'WARNING'}

# --------------------------------------------------------------------------- error codes the add-on acts on

UNKNOWN_SUBJECT = protocol.E_UNKNOWN_SUBJECT
NO_FACE = protocol.E_NO_FACE
# The backend cannot be reached: every job of the connection fails alike.
UNREACHABLE_ERRORS = (protocol.E_TIMEOUT, protocol.E_AUTH_REFUSED)
# The backend restarted or dropped the job.
LOST_ERRORS = (protocol.E_LOST, protocol.E_SERVER_RESTARTED)
# The photo itself cannot be used: asking again will not help.
UNUSABLE_PHOTO_ERRORS = (NO_FACE, protocol.E_BAD_IMAGE, protocol.E_TOO_LARGE)
# The backend no longer knows the photo's analysis: analyse again (once) and resend.
REANALYSE_ERRORS = (UNKNOWN_SUBJECT, *LOST_ERRORS)
# Errors after which the same request may well succeed later: worth retrying.
TRANSIENT_ERRORS = (*UNREACHABLE_ERRORS, *LOST_ERRORS, protocol.E_BUSY, protocol.E_TOO_MANY_JOBS, protocol.E_INTERNAL)


def describe_error(code: str | None, message: str) -> str:
    """An error reply as one line for the panel and the report."""
    code = code or "error"
    if code in UNREACHABLE_ERRORS:
        return f"Backend not reachable: {message}"
    if code == protocol.E_VERSION:
        return f"Version mismatch between the add-on and the backend: {message}"
    if code == NO_FACE:  # the backend's own words say which ("No face found ...", "There is no face number 3")
        return message or "No face found in the photo"
    if code in LOST_ERRORS:
        return f"The backend lost the job: {message}"
    return f"{message} [{code}]" if message else f"The backend reported an error [{code}]"
