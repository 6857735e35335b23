#!/usr/bin/env bash
# Run the Blender add-on tests (tests/blender) under Blender 4.2 LTS and 5.0,
# each in its own bpy environment (made by scripts/setup_blender.sh). The
# backend runs as a subprocess of the backend environment's Python:
# ENLIVEN_BACKEND_PYTHON, default .venv/bin/python (scripts/setup.sh).
# Extra arguments go to pytest, e.g. scripts/test_blender.sh -k render.
#   BLENDER_VERSIONS="5.0" scripts/test_blender.sh       # just one version
#   BLENDER_VERSIONS="4.2 4.5 5.0" scripts/test_blender.sh  # 4.5 LTS too
set -euo pipefail
cd "$(dirname "$0")/.."
versions=(${BLENDER_VERSIONS:-4.2 5.0})
scripts/setup_blender.sh "${versions[@]}"
export ENLIVEN_BACKEND_PYTHON=${ENLIVEN_BACKEND_PYTHON:-$PWD/.venv/bin/python}
status=0
for version in "${versions[@]}"; do
    echo "== Blender $version"
    # --confcutdir: tests/conftest.py needs the backend's packages, which a
    # bpy environment does not have; tests/blender has its own conftest.
    ".venv-blender-$version/bin/python" -m pytest --confcutdir=tests/blender -p no:cacheprovider \
        tests/blender "$@" || status=1
done
exit $status
