"""Enliven backend: face analysis, rig, engines and the command line."""
import os

# numpy's linear algebra here is thousands of tiny matrices a frame; OpenBLAS's
# worker threads only spin on them, taking the core that PNG encoding and the
# server's other lanes need (measured: a streamed generation went from 52 % to
# 93 % of the engine's own rate). It must be set before numpy loads, and a
# user's own setting wins. PyTorch does not use OpenBLAS, so training keeps its threads.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

__version__ = "0.1.0"
