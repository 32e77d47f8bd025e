#!/usr/bin/env bash
# Sets up a virtual environment in .venv (first run only) and starts the service.
# With no camera attached, CAMERA_SOURCE=auto streams and analyses the bundled sample video.
set -euo pipefail
cd "$(dirname "$0")"
. scripts/setup-venv.sh
exec .venv/bin/pi-camera-service "$@"
