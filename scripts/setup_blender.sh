#!/usr/bin/env bash
# Create (or update) the two Blender test environments:
#   .venv-blender-4.2  with bpy==4.2.23 (Blender 4.2 LTS as a Python module)
#   .venv-blender-5.0  with bpy==5.0.1
# each with pyzmq (the add-on's one dependency that Blender does not bundle),
# numpy 1.26.4 (what Blender 4.2-5.0 bundle and the bpy wheels are built against)
# and pytest. The bpy wheels are ~370 MB each, so an environment that already
# has everything is left as it is: a second run only checks.
#
#   scripts/setup_blender.sh            # both
#   scripts/setup_blender.sh 5.0        # just one
#   scripts/setup_blender.sh 4.5        # optional third: .venv-blender-4.5 with bpy==4.5.15
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3.11}
command -v "$python" >/dev/null || python=python3

versions=("$@")
[ ${#versions[@]} -gt 0 ] || versions=(4.2 5.0)

for short in "${versions[@]}"; do
    case "$short" in
        4.2) bpy=4.2.23 ;;
        4.5) bpy=4.5.15 ;;
        5.0) bpy=5.0.1 ;;
        *) echo "unknown Blender version $short (use 4.2, 4.5 or 5.0)" >&2; exit 2 ;;
    esac
    venv=".venv-blender-$short"
    if [ ! -x "$venv/bin/python" ]; then
        "$python" -m venv "$venv"
        "$venv/bin/python" -m pip install --quiet --upgrade pip
    fi
    # Pinned requirements that are already installed are checked without
    # downloading anything, so this is cheap on a second run.
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
        "bpy==$bpy" "pyzmq==27.3.0" "numpy==1.26.4" "pytest==9.2.0"
    "$venv/bin/python" - "$bpy" <<'PY'
import sys
import bpy
import zmq
want = sys.argv[1]
got = ".".join(map(str, bpy.app.version))
assert want.startswith(got.rsplit(".", 1)[0]), f"bpy {got} installed, {want} wanted"
print(f"Blender {bpy.app.version_string} (pyzmq {zmq.__version__}) ready in {sys.prefix}")
PY
done
