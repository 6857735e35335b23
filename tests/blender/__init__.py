"""Blender add-on tests (run in a bpy environment by scripts/test_blender.sh).

A package so that its conftest is imported as `blender.conftest`: a second
top-level module named `conftest` would shadow tests/conftest.py for the
backend tests' `from conftest import ...`.
"""
