#!/usr/bin/env bash
# Installs what the tests need (ffmpeg, chromium and chromium-driver, PostgreSQL from Debian when absent,
# the Python test extras with Playwright), starts a local PostgreSQL for the central server's tests (and
# stops it again at the end unless it was already running), and runs them on two workers.
set -euo pipefail
cd "$(dirname "$0")"
# Debian packages: ffmpeg (RTSP receiver, test videos), chromium + chromium-driver (browser tests),
# mosquitto (the MQTT broker the central server's publishing is tested against)
missing=()
command -v ffmpeg >/dev/null 2>&1 || missing+=(ffmpeg)
[ -x /usr/bin/chromium ] || missing+=(chromium chromium-driver)
[ -x /usr/sbin/mosquitto ] || missing+=(mosquitto)
command -v ip >/dev/null 2>&1 || missing+=(iproute2)  # network namespaces of the WS-Discovery test
# curl + jq: README's API examples are run as written (tests/test_readme_examples.py)
command -v curl >/dev/null 2>&1 || missing+=(curl)
command -v jq >/dev/null 2>&1 || missing+=(jq)
if [ ${#missing[@]} -gt 0 ]; then
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}"
fi
# PostgreSQL: installed, started, role and database created; exports PCS_TEST_POSTGRES_URL
. scripts/postgres-for-tests.sh
trap pg_stop_started_clusters EXIT  # stop the PostgreSQL cluster if this script started it
EXTRAS="test" . scripts/setup-venv.sh
# Two pytest-xdist workers (PCS_TEST_WORKERS=0 runs in this process); modules marked with
# xdist_group run on one worker so their expensive module fixtures start once.
# Tests marked "alone" (timing measurements under a CPU quota) run afterwards in this process, with no
# other test loading the machine. Exit status 5 ("no tests collected", e.g. a path with none of them) is
# not a failure; otherwise the first failing run's status is the script's.
status=0
.venv/bin/python -m pytest -n "${PCS_TEST_WORKERS:-2}" --dist loadgroup -m "not alone" "$@" || status=$?
[ "$status" -eq 5 ] && status=0
alone=0
.venv/bin/python -m pytest -m alone "$@" || alone=$?
[ "$alone" -eq 5 ] && alone=0
[ "$status" -ne 0 ] && exit "$status"
exit "$alone"
