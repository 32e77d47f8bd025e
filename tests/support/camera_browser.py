"""The real camera process the camera-page browser tests drive, and their login."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from pi_camera_service.auth import hash_password
from tests.support.net import free_port
from tests.support.paths import SAMPLE
from tests.support.processes import ServiceProcess

#: the admin password of the camera :func:`start_browser_camera` starts
PASSWORD = "browser-pw-correct-horse"
API_KEY = "browser-test-key-0123456789abcdef"
#: the camera's stream size, px
W, H = 640, 480


def start_browser_camera(workdir: Path) -> ServiceProcess:
    """The real camera process on the sample at W x H px with a password and detection on (5 fps), started."""
    env = {
        "CAMERA_SOURCE": str(SAMPLE),
        "CAMERA_WIDTH": str(W),
        "CAMERA_HEIGHT": str(H),
        "CAMERA_RTSP_URL": f"rtsp://127.0.0.1:{free_port()}/cam",
        "CAMERA_STREAM_ON_START": "false",
        "CAMERA_HOST": "127.0.0.1",
        "CAMERA_PORT": str(free_port()),
        "CAMERA_API_KEY": API_KEY,
        "CAMERA_PASSWORD_HASH": hash_password(PASSWORD),
        "CAMERA_STATE_DIR": str(workdir / "state"),
        "CAMERA_STILLS_DIR": str(workdir / "stills"),
        "CAMERA_DETECTION_ENABLED": "true",
        "CAMERA_DETECTION_FPS": "5",
    }
    return ServiceProcess(env, workdir / "service.log").start()


def api_client(service: ServiceProcess) -> httpx.Client:
    """An httpx client of ``service`` sending its API key."""
    return httpx.Client(base_url=service.base, headers={"X-API-Key": API_KEY}, timeout=20)


def login(page, service: ServiceProcess) -> None:
    """Log in on the camera page in Playwright ``page`` as the admin (password :data:`PASSWORD`)."""
    page.goto(service.base + "/", wait_until="domcontentloaded")
    assert page.url.endswith("/login")
    page.fill('input[name="username"]', "admin")
    page.fill('input[name="password"]', PASSWORD)
    page.click('button[type="submit"]')
    page.wait_for_url(service.base + "/", wait_until="domcontentloaded")


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    """The camera of :func:`start_browser_camera` for one test module (the fixture both camera-page
    browser modules use; import it into the module)."""
    svc = start_browser_camera(tmp_path_factory.mktemp("web-service"))
    yield svc
    svc.stop()
