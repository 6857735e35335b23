"""Motion files from an adversarial test run, shared by the command line tests
and the Blender tests (standard library only: the bpy environment has no
backend packages). Each used to escape the loader as a traceback."""
from __future__ import annotations


def motion_json(frames: str) -> str:
    """A blink_l motion file whose "frames" list holds `frames` as written."""
    return ('{"format": "enliven-motion", "version": 1, "fps": 24, "channels": ["blink_l"], '
            f'"frames": [{frames}]}}')


# (file name, text, what the one-line error says)
HOSTILE_MOTION_FILES = [
    ("deep.json", "[" * 100_000 + "]" * 100_000, "JSON nested more than 32 levels deep"),  # was RecursionError
    ("long.json", motion_json("[" + "9" * 5000 + "]"), "a number 5000 characters long"),  # was int() ValueError
    ("wide.csv", "blink_l\n" + "1" * 200_000 + "\n", "line 2 is 200000 characters long"),  # was csv.Error
]
