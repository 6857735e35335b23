#!/usr/bin/env bash
# Set up, then run the whole test suite: the backend suite in .venv, then the
# Blender add-on suite under Blender 4.2 LTS, 4.5 LTS, 5.0 and 5.3 (bpy wheels
# on Python 3.11 and 3.13, real backend subprocess). Extra arguments go to the
# backend's pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
status=0
.venv/bin/python -m pytest "$@" || status=$?
ENLIVEN_BACKEND_PYTHON="$PWD/.venv/bin/python" scripts/test_blender.sh -q || status=$?
exit $status
