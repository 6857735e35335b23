#!/usr/bin/env bash
# Run the Blender add-on tests (tests/blender) under each Blender version in
# BLENDER_VERSIONS, each in its own bpy environment (made by
# scripts/setup_blender.sh). The backend runs as a subprocess of the backend
# environment's Python: ENLIVEN_BACKEND_PYTHON, default .venv/bin/python
# (scripts/setup.sh). Extra arguments go to pytest, e.g. scripts/test_blender.sh -k render.
#
# The default matrix: 4.2 LTS (the oldest the add-on installs on), 4.5 LTS,
# 5.0 (the new compositor and layered actions on Python 3.11) and 5.3 (the
# current release, Python 3.13 with numpy 2). Any other:
#   BLENDER_VERSIONS="5.2" scripts/test_blender.sh
#
# Under the Python 3.13 Blenders the pure shared/ tests (channels, motion
# files, keyframes, presets) also run in that Blender's own Python and numpy 2,
# the way the add-on runs that code there.
set -euo pipefail
cd "$(dirname "$0")/.."
versions=(${BLENDER_VERSIONS:-4.2 4.5 5.0 5.3})
scripts/setup_blender.sh "${versions[@]}"
export ENLIVEN_BACKEND_PYTHON=${ENLIVEN_BACKEND_PYTHON:-$PWD/.venv/bin/python}
SHARED_TESTS=(tests/test_channels.py tests/test_motion.py tests/test_keyframes.py tests/test_presets.py)

# `enliven.shared` importable without the backend: a throwaway `enliven`
# package whose `shared` is a link to shared/.
shim=$(mktemp -d)
trap 'rm -rf "$shim"' EXIT
mkdir "$shim/enliven"
touch "$shim/enliven/__init__.py"
ln -s "$PWD/shared" "$shim/enliven/shared"

status=0
for version in "${versions[@]}"; do
    python=".venv-blender-$version/bin/python"
    echo "== Blender $version"
    # --confcutdir: tests/conftest.py needs the backend's packages, which a
    # bpy environment does not have; tests/blender has its own conftest.
    "$python" -m pytest --confcutdir=tests/blender -p no:cacheprovider tests/blender "$@" || status=1
    if "$python" -c "import sys; sys.exit(sys.version_info < (3, 12))"; then
        echo "== shared/ on Blender $version's Python $("$python" -c 'import sys, numpy; print(sys.version.split()[0], "with numpy", numpy.__version__)')"
        PYTHONPATH="$shim" "$python" -m pytest --noconftest -p no:cacheprovider -q "${SHARED_TESTS[@]}" || status=1
    fi
done
exit $status
