#!/usr/bin/env bash
# Create (or update) the Blender test environments, one per Blender version,
# .venv-blender-X.Y, with the bpy wheel of that version (Blender as a Python
# module) on the Python that Blender embeds: 4.2, 4.5, 5.0 on Python 3.11;
# 5.1, 5.2, 5.3 on Python 3.13. Each gets the pyzmq that the extension zip
# ships for its Python (build.py's PYZMQ), the numpy its bpy wheel requires
# (1.26 up to 5.1, 2.x from 5.2), and pytest with hypothesis. The bpy wheels
# are ~370-400 MB each, so an environment that already has everything is left
# as it is: a second run only checks.
#
#   scripts/setup_blender.sh              # 4.5 LTS and 5.3 (the current release)
#   scripts/setup_blender.sh 4.2 5.2      # any others
#
# Python: PYTHON311 / PYTHON313 name the interpreters if they are not on PATH
# as python3.11 / python3.13; pyenv and uv installs are found too.
set -euo pipefail
cd "$(dirname "$0")/.."

versions=("$@")
[ ${#versions[@]} -gt 0 ] || versions=(4.5 5.3)

# A Python X.Y that really runs (a pyenv shim for a version that is not
# selected exists on PATH but fails), or nothing.
find_python() {
    local want=$1 override=$2 candidate
    for candidate in "$override" "python$want" \
            "$HOME"/.pyenv/versions/"$want"*/bin/"python$want" \
            "$HOME"/.local/share/uv/python/cpython-"$want"*/bin/"python$want" \
            /usr/bin/"python$want" /usr/local/bin/"python$want"; do
        [ -n "$candidate" ] || continue
        if "$candidate" -c "import sys; sys.exit(sys.version_info[:2] != tuple(map(int, '$want'.split('.'))))" \
                2>/dev/null; then
            command -v "$candidate" || echo "$candidate"
            return 0
        fi
    done
    return 1
}

pyzmq=$(sed -n 's/^PYZMQ = "\(.*\)"$/\1/p' build.py)

for short in "${versions[@]}"; do
    case "$short" in
        4.2) bpy=4.2.23 python_version=3.11 numpy=numpy==1.26.4 ;;
        4.5) bpy=4.5.15 python_version=3.11 numpy=numpy==1.26.4 ;;
        5.0) bpy=5.0.1  python_version=3.11 numpy=numpy==1.26.4 ;;
        5.1) bpy=5.1.0  python_version=3.13 numpy=numpy==1.26.4 ;;  # bpy 5.1 requires numpy<2
        5.2) bpy=5.2.0  python_version=3.13 numpy=numpy==2.5.5 ;;
        5.3) bpy=5.3.0  python_version=3.13 numpy=numpy==2.5.5 ;;
        *) echo "unknown Blender version $short (use 4.2, 4.5, 5.0, 5.1, 5.2 or 5.3)" >&2; exit 2 ;;
    esac
    override_var="PYTHON${python_version/./}"
    if ! python=$(find_python "$python_version" "${!override_var:-}"); then
        echo "Blender $short needs Python $python_version for its bpy wheel, and none was found." >&2
        echo "Install it (e.g. 'pyenv install $python_version' or 'uv python install $python_version')" >&2
        echo "or point $override_var at its python executable." >&2
        exit 3
    fi
    venv=".venv-blender-$short"
    if [ ! -x "$venv/bin/python" ]; then
        "$python" -m venv "$venv"
        "$venv/bin/python" -m pip install --quiet --upgrade pip
    fi
    # Pinned requirements that are already installed are checked without
    # downloading anything, so this is cheap on a second run.
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
        "bpy==$bpy" "$pyzmq" $numpy "pytest==9.2.0" "hypothesis==6.151.9"
    "$venv/bin/python" - "$bpy" <<'PY'
import sys
import bpy
import numpy
import zmq
want = sys.argv[1]
got = ".".join(map(str, bpy.app.version))
assert want.startswith(got.rsplit(".", 1)[0]), f"bpy {got} installed, {want} wanted"
print(f"Blender {bpy.app.version_string} on Python {sys.version.split()[0]} "
      f"(numpy {numpy.__version__}, pyzmq {zmq.__version__}) ready in {sys.prefix}")
PY
done
