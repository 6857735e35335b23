"""Bake from Motion File on the hostile files of an adversarial test run:
each is reported as one clear error in Blender, never as a Python traceback,
and leaves the rig's animation alone; huge finite values are clamped."""
from __future__ import annotations

import sys

import bpy
import numpy as np
import pytest
from hostile_motion import HOSTILE_MOTION_FILES, motion_json  # tests/ is on sys.path: tests/blender is a package in it

from .conftest import ADDON_MODULE


def sub(name: str):
    return sys.modules[f"{ADDON_MODULE}.{name}"]


@pytest.mark.parametrize("name, text, complaint", HOSTILE_MOTION_FILES + [
    ("digits.csv", "blink_l\n" + "1" * 500 + "\n", "a number 500 characters long"),
    ("names.json", motion_json("[0]").replace('"blink_l"', '"' + "x" * 1_000_000 + '"'), "unknown channel 'xxx"),
])
def test_hostile_motion_file_is_reported_as_a_clear_error(portrait, tmp_path, name, text, complaint):
    path = tmp_path / name
    path.write_text(text)
    # An operator's ERROR report reaches a Python caller as RuntimeError("Error: ...");
    # an exception escaping execute() would read "Error: Python: Traceback ...".
    with pytest.raises(RuntimeError) as error:
        bpy.ops.enliven.bake_motion(filepath=str(path))
    message = str(error.value)
    assert complaint in message and str(path) in message
    assert "Traceback" not in message and "RecursionError" not in message
    assert len(message) < 500, "one readable line, not megabytes of the file"
    assert sub("compat").fcurves_by_path(portrait) == {}


def test_huge_finite_and_missing_values_bake_clamped_and_at_the_default(portrait, tmp_path):
    channels = sub("shared.channels")
    sampling = sub("sampling")
    path = tmp_path / "huge.json"
    path.write_text(motion_json("[0], [1e30], [1e308], [1e999], [NaN], [Infinity], [-1e308]"))
    bpy.context.scene.render.fps = 24
    assert bpy.ops.enliven.bake_motion(filepath=str(path), frame=1) == {'FINISHED'}
    blink = sampling.sample(portrait, range(1, 8))[:, channels.CHANNEL_INDEX["blink_l"]]
    # Every number above the range closes the eye; "no value" (NaN, Infinity) is the default, open.
    np.testing.assert_allclose(blink, [0, 1, 1, 1, 0, 0, 0], atol=1e-6)
