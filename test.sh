#!/usr/bin/env bash
# Installs what the tests need (ffmpeg from Debian when absent, the Python test extras) and runs them.
set -euo pipefail
cd "$(dirname "$0")"
if ! command -v ffmpeg >/dev/null 2>&1; then
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq ffmpeg
fi
EXTRAS="test" . scripts/setup-venv.sh
exec .venv/bin/python -m pytest "$@"
