"""Build the Blender extension zip: the add-on with shared/ vendored inside it.

    python build.py            # writes dist/enliven-<version>.zip
    python build.py --check    # builds, then validates the zip's contents

shared/ only uses relative imports, so inside the extension it becomes the
add-on's own subpackage (`<extension>.shared`) and adds no generic top-level
module name to Blender's sys.modules.
"""
from __future__ import annotations

import argparse
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent


def project_version() -> str:
    import tomllib

    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]


def source_files() -> list[tuple[Path, str]]:
    """(file on disk, path inside the zip) for the add-on and the vendored shared code."""
    files = []
    for folder, prefix in ((ROOT / "addon", ""), (ROOT / "shared", "shared/")):
        for path in sorted(folder.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                files.append((path, prefix + path.relative_to(folder).as_posix()))
    return files


def build(out_dir: Path) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / f"enliven-{project_version()}.zip"
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        for path, name in source_files():
            archive.write(path, name)
    return target


def check(zip_path: Path) -> list[str]:
    """Problems with a built zip (empty list when it is good)."""
    with zipfile.ZipFile(zip_path) as archive:
        names = set(archive.namelist())
    expected = {name for _, name in source_files()}
    problems = [f"missing from the zip: {name}" for name in sorted(expected - names)]
    if "__init__.py" not in names:
        problems.append("the add-on's __init__.py is not at the zip's root")
    if "shared/__init__.py" not in names:
        problems.append("the vendored shared package is missing")
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=ROOT / "dist")
    parser.add_argument("--check", action="store_true", help="validate the built zip")
    args = parser.parse_args()
    target = build(args.out)
    print(f"built {target}")
    if args.check:
        problems = check(target)
        for problem in problems:
            print(f"problem: {problem}", file=sys.stderr)
        return 1 if problems else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
