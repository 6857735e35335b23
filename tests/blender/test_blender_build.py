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


def test_blender_installed_the_pyzmq_wheel_for_its_own_python(addon):
    python = f"{sys.version_info.major}.{sys.version_info.minor}"
    site = Path(bpy.utils.user_resource('EXTENSIONS')) / ".local" / "lib" / f"python{python}" / "site-packages"
    assert (site / "zmq" / "__init__.py").is_file()
    # The compiled backend is the one built for this Python (cp311 on 4.2-5.0,
    # cp313 on 5.1+), not another line's wheel that happens to sit in the zip.
    tag = f"cpython-{sys.version_info.major}{sys.version_info.minor}"
    assert [p.name for p in (site / "zmq" / "backend" / "cython").glob(f"*{tag}*")], \
        sorted(p.name for p in (site / "zmq" / "backend" / "cython").iterdir())


def _blender_ext():
    """Blender's own extension tool (bl_pkg/cli/blender_ext.py) as a module."""
    tool = Path(bpy.utils.system_resource('SCRIPTS')) / "addons_core" / "bl_pkg" / "cli" / "blender_ext.py"
    spec = importlib.util.spec_from_file_location("blender_ext_under_test", tool)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("wheels", [
    ["pyzmq-26.4.0-cp311-cp311-win_amd64.whl", "pyzmq-26.4.0-cp313-cp313-win_amd64.whl"],
    ["pyzmq-27.3.0-cp311-cp311-win_amd64.whl", "pyzmq-27.3.0-cp312-abi3-win_amd64.whl"],
    ["pyzmq-27.3.0-cp312-abi3-win_amd64.whl"],
    ["pyzmq-27.3.0-cp311-cp311-win_amd64.whl"],
])
def test_build_reads_wheel_pythons_as_blender_does(wheels):
    """build.py's check of which Pythons the zip supports must agree with
    Blender's installer, including the trap that refused the first zips on 5.1+:
    an abi3 wheel beside a cp311 one reads as 3.11 only."""
    build = load_build()
    blender = _blender_ext().python_versions_from_wheels(wheels)
    assert build.blender_pythons(wheels) == {".".join(map(str, v)) for v in blender}


def test_the_zip_declares_every_supported_python(extension_zip):
    with zipfile.ZipFile(extension_zip) as archive:
        manifest = tomllib.loads(archive.read("blender_manifest.toml").decode())
    pythons = _blender_ext().python_versions_from_wheels(manifest["wheels"])
    assert pythons == {(3, 11), (3, 13)}
    assert sys.version_info[:2] in pythons


def test_the_all_platform_zip_has_a_wheel_per_platform(tmp_path):
    build = load_build()
    (target,) = build.build(tmp_path)  # wheels are cached in build/wheels/
    assert build.check(target) == []
    with zipfile.ZipFile(target) as archive:
        manifest = tomllib.loads(archive.read("blender_manifest.toml").decode())
    assert manifest["platforms"] == ["linux-x64", "windows-x64", "macos-arm64", "macos-x64"]
    for python in ("3.11", "3.13"):
        tag = f"-cp{python.replace('.', '')}-"
        covered = set().union(*(build.wheel_platforms(w) for w in manifest["wheels"] if tag in w))
        assert covered == set(manifest["platforms"]), python


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
    ("no_python_313_wheel", "no pyzmq wheel for linux-x64 on Python 3.13"),
])
def test_check_catches_broken_zips(extension_zip, tmp_path, case, expected):
    build = load_build()
    wheel = next(n for n in zipfile.ZipFile(extension_zip).namelist() if n.startswith("wheels/"))
    edits = {
        "no_network": dict(manifest_edit=lambda t: "\n".join(l for l in t.splitlines() if not l.startswith("network"))),
        "reason_period": dict(manifest_edit=lambda t: t.replace('EXR frames"', 'EXR frames."')),
        "missing_wheel": dict(drop={wheel}),
        "missing_module": dict(drop={"operators.py"}),
        "absolute_import": dict(add={"extra.py": "from shared.channels import CHANNELS\n"}),
        "no_python_313_wheel": dict(manifest_edit=lambda t: t.replace(
            '"./wheels/pyzmq-26.4.0-cp313-cp313-manylinux_2_28_x86_64.whl"', "").replace(", ,", ",")),
    }
    broken = _rewrite(extension_zip, tmp_path / "broken.zip", **edits[case])
    problems = build.check(broken)
    assert any(expected in p for p in problems), problems
    result = subprocess.run([sys.executable, str(ROOT / "build.py"), "--check-zip", str(broken)],
                            capture_output=True, text=True, env={**os.environ})
    assert result.returncode == 1 and expected in result.stderr
