"""The server's log: stderr, one timestamped line per event."""
from __future__ import annotations

import sys
import time
from typing import Callable

Log = Callable[[str], None]


def stderr_log(text: str) -> None:
    try:
        print(f"[enliven serve {time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)
    except (OSError, ValueError):  # nobody reads the log any more (Blender quit while this server saves a run)
        pass
