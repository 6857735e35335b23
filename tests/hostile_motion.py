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


LIVELINK_HEADER = "Timecode,BlendShapeCount,JawOpen,HeadYaw\n"

# Live Link Face CSV files (`enliven capture --livelink`, Blender's Import Live
# Link CSV), as (file name, text, what the one-line error says). Each used to
# escape as a traceback, hang, or be read without a word.
HOSTILE_LIVELINK_FILES = [
    # was csv.Error (field larger than field limit)
    ("wide.csv", LIVELINK_HEADER + "00:00:00:00,2," + "1" * 200_000 + ",0\n", "line 2 is 200016 characters long"),
    # short lines, but one quoted cell running over 200 of them: also csv.Error
    ("quoted.csv", LIVELINK_HEADER + '00:00:00:00,2,"' + ("1" * 1000 + "\n") * 200 + '",0\n',
     "is not valid CSV: field larger than field limit"),
    # float() of any length was accepted
    ("digits.csv", LIVELINK_HEADER + "00:00:00:00,2," + "1" * 500 + ",0\n", "a number 500 characters long"),
    # hours of 4000 digits: a timecode 10^4000 hours long, too many frames to make
    ("hours.csv", "Timecode,JawOpen\n00:00:00:00,0\n" + "9" * 4000 + ":00:00:00,0\n", "is not HH:MM:SS:FF"),
    # two rows 100 hours apart: 8.6 million frames resampled, for minutes
    ("span.csv", "Timecode,JawOpen\n00:00:00:00,0\n99:59:59:59,1\n", "timecodes too far apart"),
    # which JawOpen counts? The last one did, silently.
    ("repeated.csv", "Timecode,JawOpen,jawOpen\n00:00:00:00,0,1\n", "column JawOpen appears more than once"),
    # more rows than a motion may have frames (the motion loader's MAX_FRAMES)
    ("rows.csv", "JawOpen\n" + "0\n" * 500_001, "more than 500000 frames"),
]
