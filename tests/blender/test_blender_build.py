"""The extension zip from build.py: what the manifest names is in it, Blender's
own validator accepts it, Blender installs its wheel, and `--check` catches
broken zips."""
from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import bpy
import pytest
from .conftest import ROOT


def load_build():
    spec = importlib.util.spec_from_file_location("enliven_build", ROOT / "build.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_zip_contains_what_the_manifest_names(extension_zip):
    build = load_build()
    with zipfile.ZipFile(extension_zip) as archive:
        names = set(archive.namelist())
        manifest = tomllib.loads(archive.read("blender_manifest.toml").decode())
    assert manifest["schema_version"] == "1.0.0"
    assert manifest["blender_version_min"] == "4.2.0"
    assert set(manifest["permissions"]) == {"network", "files"}
    for wheel in manifest["wheels"]:
        assert wheel[2:] in names
    assert {name for _, name in build.source_files()} <= names
    assert "__init__.py" in names and "shared/__init__.py" in names and "shared/client.py" in names
    assert build.check(extension_zip) == []


def test_blenders_own_validator_accepts_the_zip(extension_zip):
    tool = Path(bpy.utils.system_resource('SCRIPTS')) / "addons_core" / "bl_pkg" / "cli" / "blender_ext.py"
    result = subprocess.run([sys.executable, str(tool), "validate", str(extension_zip)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_blender_installed_the_pyzmq_wheel(addon):
    site = Path(bpy.utils.user_resource('EXTENSIONS')) / ".local" / "lib" / "python3.11" / "site-packages"
    assert (site / "zmq" / "__init__.py").is_file()


def test_the_all_platform_zip_has_a_wheel_per_platform(tmp_path):
    build = load_build()
    (target,) = build.build(tmp_path)  # wheels are cached in build/wheels/
    assert build.check(target) == []
    with zipfile.ZipFile(target) as archive:
        manifest = tomllib.loads(archive.read("blender_manifest.toml").decode())
    assert manifest["platforms"] == ["linux-x64", "windows-x64", "macos-arm64", "macos-x64"]
    covered = set().union(*(build.wheel_platforms(w) for w in manifest["wheels"]))
    assert covered == set(manifest["platforms"])


def _rewrite(source: Path, target: Path, manifest_edit=None, drop=(), add=None) -> Path:
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(target, "w") as new:
        for item in old.infolist():
            if item.filename in drop:
                continue
            data = old.read(item.filename)
            if item.filename == "blender_manifest.toml" and manifest_edit:
                data = manifest_edit(data.decode()).encode()
            new.writestr(item, data)
        for name, data in (add or {}).items():
            new.writestr(name, data)
    return target


@pytest.mark.parametrize("case, expected", [
    ("no_network", "permission 'network' missing"),
    ("reason_period", "must not end with punctuation"),
    ("missing_wheel", "the zip does not contain it"),
    ("missing_module", "missing from the zip: operators.py"),
    ("absolute_import", "absolute import of 'shared.channels'"),
])
def test_check_catches_broken_zips(extension_zip, tmp_path, case, expected):
    build = load_build()
    wheel = next(n for n in zipfile.ZipFile(extension_zip).namelist() if n.startswith("wheels/"))
    edits = {
        "no_network": dict(manifest_edit=lambda t: "\n".join(l for l in t.splitlines() if not l.startswith("network"))),
        "reason_period": dict(manifest_edit=lambda t: t.replace('frame sequences"', 'frame sequences."')),
        "missing_wheel": dict(drop={wheel}),
        "missing_module": dict(drop={"operators.py"}),
        "absolute_import": dict(add={"extra.py": "from shared.channels import CHANNELS\n"}),
    }
    broken = _rewrite(extension_zip, tmp_path / "broken.zip", **edits[case])
    problems = build.check(broken)
    assert any(expected in p for p in problems), problems
    result = subprocess.run([sys.executable, str(ROOT / "build.py"), "--check-zip", str(broken)],
                            capture_output=True, text=True, env={**os.environ})
    assert result.returncode == 1 and expected in result.stderr
