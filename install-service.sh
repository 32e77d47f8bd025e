#!/usr/bin/env bash
# Installs Pi Camera Service as a systemd unit on Raspberry Pi OS (64-bit) and starts it on boot.
# Run from the project directory as the user that should own the service: ./install-service.sh
set -euo pipefail
cd "$(dirname "$0")"
DIR="$(pwd)"
USER_NAME="${SUDO_USER:-$(id -un)}"
GROUP_NAME="$(id -gn "$USER_NAME")"

echo "==> system packages (picamera2 and libcamera come from apt)"
sudo apt-get update -qq
sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv python3-picamera2 python3-libcamera ffmpeg

echo "==> virtual environment with --system-site-packages (needed for picamera2)"
if [ -d .venv ] && ! grep -q "include-system-site-packages = true" .venv/pyvenv.cfg; then
    echo "    .venv exists without system site packages: recreating it"
    rm -rf .venv
fi
[ -d .venv ] || /usr/bin/python3 -m venv --system-site-packages .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet --prefer-binary -e .

[ -f .env ] || { cp .env.example .env; chmod 600 .env; echo "    created .env from .env.example: review it"; }
mkdir -p state && chmod 700 state

echo "==> systemd unit"
sed -e "s|@DIR@|$DIR|g" -e "s|@USER@|$USER_NAME|g" -e "s|@GROUP@|$GROUP_NAME|g" \
    pi-camera-service.service | sudo tee /etc/systemd/system/pi-camera-service.service >/dev/null
sudo systemctl daemon-reload
sudo systemctl enable --now pi-camera-service
sleep 3
systemctl --no-pager --lines=20 status pi-camera-service || true
echo
echo "Logs: journalctl -u pi-camera-service -f   (the generated API key is printed there on first start)"
echo "Health: curl http://localhost:${CAMERA_PORT:-8000}/health"
