"""A real central process and real camera processes paired with each other, as in a home."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.support.central_server import bearer
from tests.support.net import free_port, wait_until
from tests.support.processes import CentralProcess, ServiceProcess, sample_camera_env

#: the API key of the cameras :func:`start_camera` starts
API_KEY = "e2e-camera-key-0123456789"
#: the first admin :func:`admin_token` creates
ADMIN = ("alice", "correct horse battery")


def start_central(tmp_path: Path, database_url: str, **env: str) -> CentralProcess:
    """The real central process on ``database_url`` (free port, data under ``tmp_path``, 2 s heartbeats, no
    mDNS; ``env`` wins), started."""
    base_env = {
        "CENTRAL_PORT": str(free_port()),
        "CENTRAL_HOST": "127.0.0.1",
        "CENTRAL_DATA_DIR": str(tmp_path / "central-data"),
        "DATABASE_URL": database_url,
        "CENTRAL_MDNS_ENABLED": "false",
        "CENTRAL_HEARTBEAT_INTERVAL": "2",
        **env,
    }
    return CentralProcess(base_env, tmp_path / "central.log").start()


def admin_token(central: CentralProcess) -> str:
    """First-run setup of :data:`ADMIN` through the API; returns an access token of that admin."""
    c = httpx.Client(base_url=central.base, timeout=30)
    setup = c.post("/v1/setup", json={"password": central.bootstrap_password()}).json()["setup_token"]
    assert c.post("/v1/setup/admin", json={"username": ADMIN[0], "password": ADMIN[1]},
                  headers=bearer(setup)).status_code == 201
    return c.post("/v1/auth/token", data={"username": ADMIN[0], "password": ADMIN[1]}).json()["access_token"]


def start_camera(tmp_path: Path, central: CentralProcess, **env: str) -> ServiceProcess:
    """A real camera process on the sample pointed at ``central`` (detection at 4 fps, 5 s long polls,
    retries within 2 s; ``env`` wins), started."""
    base_env = sample_camera_env(tmp_path, API_KEY, **{
        "CAMERA_DETECTION_FPS": "4",
        "CAMERA_MDNS_ENABLED": "false",
        "CAMERA_CENTRAL_URL": central.base,
        "CAMERA_CENTRAL_POLL_WAIT": "5",
        "CAMERA_CENTRAL_RETRY_MAX_DELAY": "2",
        **env,
    })
    return ServiceProcess(base_env, tmp_path / "camera.log").start()


def camera_pairing(camera: ServiceProcess) -> dict:
    """The camera's ``GET /v1/pairing`` answer (state, code, central URL)."""
    return httpx.get(camera.base + "/v1/pairing", headers={"X-API-Key": API_KEY}, timeout=10).json()


def wait_for_code(camera: ServiceProcess, not_code: str | None = None) -> str:
    """Wait until the camera shows a pairing code other than ``not_code``; returns it."""
    def code() -> str | None:
        state = camera_pairing(camera)
        if state["state"] == "waiting_for_admin" and state["code"] and state["code"] != not_code:
            return state["code"]
        return None

    return wait_until(code, 30, 0.2, f"camera shows a pairing code other than {not_code}")


def wait_for_state(camera: ServiceProcess, wanted: str, timeout: float = 20) -> dict:
    """Wait until the camera's pairing state is ``wanted`` (AssertionError after ``timeout`` s); returns it."""
    return wait_until(lambda: (s := camera_pairing(camera))["state"] == wanted and s, timeout, 0.2,
                      f"camera pairing state {wanted!r}")
