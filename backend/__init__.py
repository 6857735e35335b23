"""Enliven backend: face analysis, rig, engines and the command line."""
__version__ = "0.1.0"
