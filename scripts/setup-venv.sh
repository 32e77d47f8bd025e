# Sourced by run.sh and test.sh: creates .venv and installs the project (and $EXTRAS) into it.
# On Raspberry Pi OS, picamera2 and libcamera come from apt (python3-picamera2), so the venv is made
# with --system-site-packages from the system Python when that Python can import picamera2.
PYTHON="${PYTHON:-python3}"
VENV_FLAGS=""
if /usr/bin/python3 -c "import picamera2" >/dev/null 2>&1; then
    PYTHON=/usr/bin/python3
    VENV_FLAGS="--system-site-packages"
fi
STAMP=".venv/.installed-$(cat pyproject.toml | cksum | cut -d' ' -f1)-${EXTRAS:-base}"
if [ ! -x .venv/bin/python ]; then
    echo "creating .venv with $PYTHON $VENV_FLAGS" >&2
    "$PYTHON" -m venv $VENV_FLAGS .venv
fi
if [ ! -f "$STAMP" ]; then
    .venv/bin/python -m pip install --quiet --upgrade pip
    # --prefer-binary: never build dlib or OpenCV from source when a wheel exists
    .venv/bin/python -m pip install --quiet --prefer-binary -e ".${EXTRAS:+[$EXTRAS]}"
    touch "$STAMP"
fi
