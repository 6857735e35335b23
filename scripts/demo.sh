#!/usr/bin/env bash
# Set up, then animate the bundled public-domain astronaut photo:
# out/demo/frames/frame_00001.png ..., out/demo/showcase.mp4, out/demo/contact_sheet.png
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
.venv/bin/enliven generate backend/assets/astronaut.png --preset showcase \
    --out out/demo/frames --video out/demo/showcase.mp4 --contact-sheet out/demo/contact_sheet.png
