"""The job-kind table: one row per kind of job a client may submit. The router
and the scheduler read it; neither branches on kind names."""
from __future__ import annotations

from . import analyze, capture, generate, lipsync, preview, talk, train
from .jobs import HEAVY, INTERACTIVE, TRAINING, JobKind

JOB_KINDS: dict[str, JobKind] = {kind.name: kind for kind in (
    JobKind("analyze", INTERACTIVE, analyze.admit, analyze.run),
    JobKind("preview", INTERACTIVE, preview.admit, preview.run, newest_wins=True),
    JobKind("generate", HEAVY, generate.admit, generate.run),
    JobKind("capture", HEAVY, capture.admit, capture.run),
    JobKind("lipsync", HEAVY, lipsync.admit, lipsync.run),
    JobKind("talk", HEAVY, talk.admit, talk.run),
    JobKind("train", TRAINING, train.admit, train.run, cancelled=train.cancelled, outlives_client=True),
)}
