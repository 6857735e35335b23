"""Build the Blender extension zip: the add-on, shared/ vendored inside it, and
the pyzmq wheels Blender installs alongside it.

    python build.py                      # dist/enliven-<version>.zip, one zip for every platform
    python build.py --split              # dist/enliven-<version>-<platform>.zip, one per platform
    python build.py --platform linux-x64 # just that platform's zip
    python build.py --check              # build, then validate the manifest and the zip(s)
    python build.py --check-zip ZIP      # validate an existing zip only

Install the zip in Blender with Edit > Preferences > Get Extensions > Install
from Disk. Blender reads `blender_manifest.toml` at the zip's root and installs
only the wheels that match the machine it runs on.

One zip serves every supported Blender: 4.2 LTS to 5.0 embed Python 3.11,
5.1 to 5.3 embed Python 3.13. Blender decides which Pythons an extension
supports from its wheels' tags, and a stable-ABI wheel (`cp312-abi3`) counts
only as "Python 3" and is ignored as soon as any version-specific wheel sits
beside it: a zip with pyzmq's cp311 and abi3 wheels reads as 3.11-only and
is refused on 5.1+. So the zip carries a version-specific wheel per Python
line (cp311 and cp313), which Blender reads as "3.11, 3.13", and at install
it picks the wheel that matches its own Python. pyzmq 26.4.0 is the newest
release with a cp313 wheel for every desktop platform (27.x ships abi3).

shared/ only uses relative imports, so inside the extension it becomes the
add-on's own subpackage (`bl_ext.<repo>.enliven.shared`) and adds no generic
top-level module name such as `shared` to Blender's sys.modules. --check
enforces that by reading every import in the zip.

Wheels are downloaded once with pip (PyPI) and cached under build/wheels/
(git-ignored); --offline uses only that cache. The validation follows the rules
of Blender's own `blender_ext.py validate` (schema 1.0.0), so it needs neither
Blender nor network access; the Blender test suite also runs Blender's
validator on the same zip.
"""
from __future__ import annotations

import argparse
import ast
import re
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path, PurePosixPath

ROOT = Path(__file__).resolve().parent
WHEEL_CACHE = ROOT / "build" / "wheels"
MANIFEST_NAME = "blender_manifest.toml"
EXTENSION_ID = "enliven"
BLENDER_VERSION_MIN = "4.2.0"
PYZMQ = "pyzmq==26.4.0"
# The Python of each supported Blender line -> the Blenders that embed it.
PYTHONS: dict[str, str] = {
    "3.11": "Blender 4.2 LTS to 5.0",
    "3.13": "Blender 5.1 to 5.3",
}
# Blender platform -> the pip --platform tag to download a CPython wheel for.
# pyzmq ships one universal2 wheel that serves both macOS platforms.
PLATFORMS: dict[str, str] = {
    "linux-x64": "manylinux_2_28_x86_64",
    "windows-x64": "win_amd64",
    "macos-arm64": "macosx_11_0_arm64",
    "macos-x64": "macosx_11_0_x86_64",
}
PERMISSIONS = {
    "network": "Talks to the Enliven backend (enliven serve) over ZeroMQ",
    "files": "Reads photos, motion and audio; writes PNG or EXR frames",
}
# Imports the add-on may make by absolute name: Blender's own modules, the
# standard library, numpy (bundled with Blender) and zmq (our wheel). Anything
# else would be a dependency Blender does not have.
ALLOWED_TOP_LEVEL_IMPORTS = {"bpy", "bpy_extras", "mathutils", "bl_ui", "addon_utils", "numpy", "zmq"}
# Blender's own limit for taglines and permission reasons.
TERSE_MAX = 64


def project_version() -> str:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]


# --------------------------------------------------------------------------- wheels


def wheel_for(platform: str, python: str, offline: bool = False) -> Path:
    """The cached pyzmq wheel for `platform` and CPython `python` ("3.11"),
    downloaded with pip when missing."""
    folder = WHEEL_CACHE / PYZMQ.replace("==", "-") / f"cp{python.replace('.', '')}" / platform
    found = sorted(folder.glob("pyzmq-*.whl"))
    if found:
        return found[-1]
    if offline:
        raise SystemExit(f"no cached {PYZMQ} wheel for {platform}, Python {python} in {folder} "
                         "(run without --offline once)")
    folder.mkdir(parents=True, exist_ok=True)
    command = [
        sys.executable, "-m", "pip", "download", PYZMQ, "--only-binary=:all:", "--no-deps",
        "--implementation", "cp", "--python-version", python, "--platform", PLATFORMS[platform],
        "--dest", str(folder), "--quiet",
    ]
    print(f"downloading the {PYZMQ} wheel for {platform}, Python {python}", flush=True)
    result = subprocess.run(command, capture_output=True, text=True)
    found = sorted(folder.glob("pyzmq-*.whl"))
    if result.returncode != 0 or not found:
        raise SystemExit(f"could not download the pyzmq wheel for {platform}, Python {python}:\n"
                         f"{result.stderr.strip()}")
    return found[-1]


def wheel_pythons(wheel_name: str) -> set[tuple[int, ...]]:
    """The Python versions Blender reads from one wheel's file name: a stable-ABI
    wheel (abi3) gives only the major version, (3,); `cp311` gives (3, 11).
    Mirrors `python_versions_from_wheel` in Blender's bl_pkg/cli/blender_ext.py."""
    python_tag, abi_tag = PurePosixPath(wheel_name).stem.split("-")[-3:-1]
    stable = {(int(tag[3:]),) for tag in abi_tag.split(".") if tag.startswith("abi") and tag[3:].isdigit()}
    if stable:
        return stable
    versions = set()
    for tag in python_tag.split("."):
        digits = tag.lstrip("cpy")
        if tag[:2] in ("cp", "py") and digits.isdigit():
            versions.add((int(digits[0]), int(digits[1:])) if len(digits) > 1 else (int(digits),))
    return versions


def blender_pythons(wheel_names: list[str]) -> set[str]:
    """The Pythons Blender will install an extension with these wheels on:
    "3.11", or "3" for any Python 3. A bare major version is dropped when any
    wheel names a minor one, exactly as Blender's `python_versions_from_wheels`
    does, which is why one abi3 wheel beside a cp311 wheel does not help 3.13."""
    versions = set().union(*(wheel_pythons(name) for name in wheel_names)) if wheel_names else set()
    versions = {v for v in versions if v[0] >= 3}
    minors = {v for v in versions if len(v) == 2}
    majors = {v for v in versions if len(v) == 1 and not any(m[0] == v[0] for m in minors)}
    return {".".join(map(str, v)) for v in minors | majors}


# --------------------------------------------------------------------------- building


def source_files() -> list[tuple[Path, str]]:
    """(file on disk, path inside the zip) for the add-on and the vendored shared code."""
    files = []
    for folder, prefix in ((ROOT / "addon", ""), (ROOT / "shared", "shared/")):
        for path in sorted(folder.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
                files.append((path, prefix + path.relative_to(folder).as_posix()))
    return files


def manifest_text(version: str, platforms: list[str], wheel_names: list[str]) -> str:
    def toml_list(items: list[str]) -> str:
        return "[" + ", ".join(f'"{item}"' for item in items) + "]"

    lines = [
        'schema_version = "1.0.0"',
        "",
        f'id = "{EXTENSION_ID}"',
        f'version = "{version}"',
        'name = "Enliven"',
        'tagline = "Keyframe the face in a portrait photo and render it to life"',
        'maintainer = "Enliven developers"',
        'type = "add-on"',
        'tags = ["Animation", "Compositing", "Sequencer"]',
        f'blender_version_min = "{BLENDER_VERSION_MIN}"',
        'license = ["SPDX:MIT"]',
        f"platforms = {toml_list(platforms)}",
        f"wheels = {toml_list(['./wheels/' + name for name in wheel_names])}",
        "",
        "[permissions]",
        *(f'{key} = "{reason}"' for key, reason in PERMISSIONS.items()),
        "",
    ]
    return "\n".join(lines)


def build_zip(target: Path, platforms: list[str], offline: bool = False) -> Path:
    wheels: dict[str, Path] = {}
    for platform in platforms:
        for python in PYTHONS:
            wheel = wheel_for(platform, python, offline)
            wheels.setdefault(wheel.name, wheel)  # the macOS universal2 wheel serves two platforms
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(target.name + ".part")
    with zipfile.ZipFile(temporary, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(MANIFEST_NAME, manifest_text(project_version(), platforms, sorted(wheels)))
        for path, name in source_files():
            archive.write(path, name)
        for name, path in sorted(wheels.items()):
            # Wheels are zips already: storing them avoids compressing twice.
            archive.write(path, f"wheels/{name}", compress_type=zipfile.ZIP_STORED)
    temporary.replace(target)  # never leave a half-written zip under the final name
    return target


def build(out_dir: Path, platforms: list[str] | None = None, split: bool = False, offline: bool = False) -> list[Path]:
    """Build the zip(s); returns their paths. A zip for a single platform is
    named after it; the all-platform zip is just enliven-<version>.zip."""
    version = project_version()
    chosen = list(dict.fromkeys(platforms or PLATFORMS))
    if split or len(chosen) == 1:
        return [build_zip(out_dir / f"enliven-{version}-{p}.zip", [p], offline) for p in chosen]
    suffix = "" if set(chosen) == set(PLATFORMS) else "-" + "-".join(chosen)
    return [build_zip(out_dir / f"enliven-{version}{suffix}.zip", chosen, offline)]


# --------------------------------------------------------------------------- checking

_VERSION_RE = re.compile(r"^\d+\.\d+\.\d+(?:[-+][0-9A-Za-z.\-+]*)?$")
_ID_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")


def _terse_problem(value: object) -> str | None:
    """Blender's rule for taglines and permission reasons."""
    if not isinstance(value, str) or not value.strip():
        return "must be a non-empty string"
    if len(value) > TERSE_MAX:
        return f"must be at most {TERSE_MAX} characters, found {len(value)}"
    if value != value.strip() or any(ord(c) < 32 for c in value):
        return "must have no surrounding spaces or control characters"
    if not (value[-1].isalnum() or value[-1] in ")]}"):
        return "must not end with punctuation"
    return None


def wheel_platforms(wheel_name: str) -> set[str]:
    """Blender platforms a wheel file serves, from its platform tag(s)."""
    tags = PurePosixPath(wheel_name).stem.split("-")[-1]
    result = set()
    for tag in tags.split("."):
        if tag == "any":
            return set(PLATFORMS)
        if "universal2" in tag and tag.startswith("macosx"):
            result |= {"macos-arm64", "macos-x64"}
        elif tag.startswith("macosx") and tag.endswith("arm64"):
            result.add("macos-arm64")
        elif tag.startswith("macosx") and tag.endswith("x86_64"):
            result.add("macos-x64")
        elif tag.startswith(("manylinux", "musllinux", "linux")) and tag.endswith("x86_64"):
            result.add("linux-x64")
        elif tag == "win_amd64":
            result.add("windows-x64")
    return result


def check_manifest(manifest: dict, names: set[str]) -> list[str]:
    """Problems with a parsed manifest (schema 1.0.0) against the zip's file names."""
    problems = []
    required = {
        "schema_version": str, "id": str, "version": str, "name": str, "tagline": str, "maintainer": str,
        "type": str, "license": list, "blender_version_min": str,
    }
    for key, kind in required.items():
        if key not in manifest:
            problems.append(f"manifest: missing required key {key!r}")
        elif not isinstance(manifest[key], kind):
            problems.append(f"manifest: {key!r} must be a {kind.__name__}")
    if problems:
        return problems
    if manifest["schema_version"] != "1.0.0":
        problems.append(f"manifest: schema_version must be 1.0.0, found {manifest['schema_version']!r}")
    if not _ID_RE.match(manifest["id"]) or manifest["id"].endswith("_"):
        problems.append(f"manifest: id {manifest['id']!r} must be a Python identifier not ending with '_'")
    if not _VERSION_RE.match(manifest["version"]):
        problems.append(f"manifest: version {manifest['version']!r} is not semantic (X.Y.Z)")
    if manifest["type"] != "add-on":
        problems.append(f"manifest: type must be 'add-on', found {manifest['type']!r}")
    if manifest["blender_version_min"] != BLENDER_VERSION_MIN:
        problems.append(f"manifest: blender_version_min must be {BLENDER_VERSION_MIN!r}")
    if (tagline_problem := _terse_problem(manifest["tagline"])) is not None:
        problems.append(f"manifest: tagline {tagline_problem}")
    if not manifest["license"] or not all(isinstance(x, str) and x.startswith("SPDX:") for x in manifest["license"]):
        problems.append("manifest: license must be a non-empty list of 'SPDX:...' strings")

    permissions = manifest.get("permissions")
    if not isinstance(permissions, dict):
        problems.append("manifest: [permissions] table missing")
    else:
        for key in ("network", "files"):
            if key not in permissions:
                problems.append(f"manifest: permission {key!r} missing (the add-on needs it)")
        for key, reason in permissions.items():
            if key not in {"files", "network", "clipboard", "camera", "microphone"}:
                problems.append(f"manifest: unknown permission {key!r}")
            elif (reason_problem := _terse_problem(reason)) is not None:
                problems.append(f"manifest: permission {key!r} reason {reason_problem}")

    platforms = manifest.get("platforms", [])
    if not isinstance(platforms, list) or not platforms:
        problems.append("manifest: platforms must list the platforms the wheels serve")
        platforms = []
    for platform in platforms:
        if platform not in PLATFORMS:
            problems.append(f"manifest: unknown platform {platform!r}")

    wheels = manifest.get("wheels", [])
    covered: dict[str, set[str]] = {python: set() for python in PYTHONS}
    for wheel in wheels if isinstance(wheels, list) else []:
        if not isinstance(wheel, str) or not wheel.startswith("./") or "\\" in wheel or '"' in wheel:
            problems.append(f"manifest: wheel path {wheel!r} must be relative ('./...') with forward slashes")
            continue
        name = wheel[2:]
        if name not in names:
            problems.append(f"manifest names {wheel} but the zip does not contain it")
        filename = PurePosixPath(name).name
        if not filename.endswith(".whl") or not 5 <= len(filename[:-4].split("-")) <= 6:
            problems.append(f"manifest: {filename} is not a wheel file name")
        elif not filename.startswith("pyzmq-"):
            problems.append(f"manifest: unexpected wheel {filename}")
        elif not (pythons := {".".join(map(str, v)) for v in wheel_pythons(filename)}) & set(PYTHONS):
            problems.append(f"manifest: {filename} is built for Python {', '.join(sorted(pythons))}, "
                            f"not for a supported Blender's Python ({', '.join(PYTHONS)})")
        else:
            for python in pythons & set(PYTHONS):
                covered[python] |= wheel_platforms(filename)
    for python, blenders in PYTHONS.items():
        for platform in platforms:
            if platform not in covered[python]:
                problems.append(f"manifest: no pyzmq wheel for {platform} on Python {python} ({blenders})")
    names_of_wheels = [PurePosixPath(w).name for w in wheels if isinstance(w, str)]
    if (accepted := blender_pythons(names_of_wheels)) != set(PYTHONS):
        problems.append(f"manifest: Blender would read these wheels as Python {', '.join(sorted(accepted)) or 'none'}, "
                        f"not {', '.join(PYTHONS)}: each Python line needs a version-specific wheel "
                        "(an abi3 wheel beside a cp311 one counts for nothing)")
    stray = {n for n in names if n.startswith("wheels/")} - {w[2:] for w in wheels if isinstance(w, str)}
    for name in sorted(stray):
        problems.append(f"the zip contains {name}, which the manifest does not name")
    return problems


def check_imports(archive: zipfile.ZipFile) -> list[str]:
    """Every import in the add-on's Python files is relative (our own code) or
    of a module Blender has; an absolute `import shared` / `import enliven`
    would put a generic name into Blender's sys.modules or fail."""
    problems = []
    stdlib = set(sys.stdlib_module_names)
    for name in archive.namelist():
        if not name.endswith(".py"):
            continue
        tree = ast.parse(archive.read(name), filename=name)
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                modules = [node.module or ""]
            else:
                continue
            for module in modules:
                top = module.split(".")[0]
                if top not in stdlib and top not in ALLOWED_TOP_LEVEL_IMPORTS and top != "__future__":
                    problems.append(f"{name}:{node.lineno}: absolute import of {module!r}; use a relative import")
    return problems


def check(zip_path: Path) -> list[str]:
    """Problems with a built zip (empty list when it is good)."""
    try:
        archive = zipfile.ZipFile(zip_path)
    except (OSError, zipfile.BadZipFile) as error:
        return [f"{zip_path}: not a readable zip ({error})"]
    with archive:
        names = set(archive.namelist())
        problems = []
        if archive.testzip() is not None:
            problems.append("the zip has a corrupt member")
        if MANIFEST_NAME not in names:
            return problems + [f"{MANIFEST_NAME} is not at the zip's root"]
        try:
            manifest = tomllib.loads(archive.read(MANIFEST_NAME).decode("utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
            return problems + [f"{MANIFEST_NAME} is not valid TOML: {error}"]
        problems += check_manifest(manifest, names)

        expected = {name for _, name in source_files()}
        problems += [f"missing from the zip: {name}" for name in sorted(expected - names)]
        extra = names - expected - {MANIFEST_NAME} - {n for n in names if n.startswith("wheels/")}
        problems += [f"unexpected file in the zip: {name}" for name in sorted(extra)]
        if "__init__.py" not in names:
            problems.append("the add-on's __init__.py is not at the zip's root")
        if "shared/__init__.py" not in names:
            problems.append("the vendored shared package is missing")
        if any("__pycache__" in n or n.endswith(".pyc") for n in names):
            problems.append("the zip contains compiled Python files")
        problems += check_imports(archive)
    return problems


# --------------------------------------------------------------------------- command line


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=ROOT / "dist", help="output folder (default dist/)")
    parser.add_argument("--platform", action="append", choices=sorted(PLATFORMS),
                        help="build for this platform only (repeatable)")
    parser.add_argument("--split", action="store_true", help="one zip per platform instead of one for all")
    parser.add_argument("--offline", action="store_true", help="use only wheels cached in build/wheels/")
    parser.add_argument("--check", action="store_true", help="validate the built zip(s)")
    parser.add_argument("--check-zip", type=Path, metavar="ZIP", help="only validate an existing zip")
    args = parser.parse_args(argv)

    targets = [args.check_zip] if args.check_zip else build(args.out, args.platform, args.split, args.offline)
    if not args.check_zip:
        for target in targets:
            print(f"built {target}")
    if not (args.check or args.check_zip):
        return 0
    failed = False
    for target in targets:
        problems = check(target)
        for problem in problems:
            print(f"problem: {target.name}: {problem}", file=sys.stderr)
        failed |= bool(problems)
        if not problems:
            print(f"checked {target}: manifest and contents are valid")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
