"""Enliven for Blender: keyframe a portrait photo and render it through the compositor.

The add-on is built in its own issue; this package holds its code. It runs in
Blender's Python and talks to the `enliven serve` backend over ZeroMQ, using
the protocol and client from the vendored `shared` subpackage (see build.py).
"""
