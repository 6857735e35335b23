"""A training run folder's rules, in one place for `enliven train` and the
service's `train` requests: what a folder may hold before a run starts in it.

No torch here: the service checks a request against these rules before it
queues the job (hours before the trainer would notice)."""
from __future__ import annotations

from pathlib import Path

from ..errors import CheckpointError, EnlivenError
from ..shared import protocol

LAST = "last.pt"  # the run as it stands: what resume continues
BEST = "best.pt"  # the best generator on the validation clips
SAMPLES = "samples.png"


class RunExistsError(EnlivenError):
    """The run folder already holds a run, and the request did not ask to resume it: a usage error (--out)."""

    code = protocol.E_RUN_EXISTS
    exit_code = 2


def check_run_folder(run_dir: Path, resume: bool) -> None:
    """Raise unless a run may start (resume=False) or continue (resume=True) in `run_dir`."""
    last = run_dir / LAST
    if resume:
        if not last.exists():
            raise CheckpointError(f"resume: there is no {last} to continue from.")
    elif last.exists():
        raise RunExistsError(f"{run_dir} already holds a training run (last.pt): resume it (--resume), "
                             "or choose another folder.")
    elif (run_dir / BEST).exists():
        raise RunExistsError(f"{run_dir} holds a model from an earlier run (best.pt): choose another folder.")
