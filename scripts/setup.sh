#!/usr/bin/env bash
# Create (or update) .venv with the enliven backend and the test tools.
# Safe to run again: a second run only checks that everything is installed.
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3.11}
command -v "$python" >/dev/null || python=python3
# Text to speech (`enliven say`) uses the eSpeak NG library from the system.
if ! command -v espeak-ng >/dev/null; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq espeak-ng >/dev/null
    else
        echo "warning: install eSpeak NG (sudo apt-get install espeak-ng) for 'enliven say'" >&2
    fi
fi
if [ ! -x .venv/bin/python ]; then
    "$python" -m venv .venv
    .venv/bin/python -m pip install --quiet --upgrade pip
fi
# pip's build chatter goes to a log, shown only if the install fails.
if ! .venv/bin/python -m pip install --quiet --disable-pip-version-check -e ".[test,neural]" > .venv/setup.log 2>&1; then
    cat .venv/setup.log >&2
    exit 1
fi
