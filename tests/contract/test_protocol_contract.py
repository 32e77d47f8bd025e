"""The camera's real pairing client, heartbeat client and outbox sender against the real central app
(uvicorn on a loopback socket), on SQLite and PostgreSQL: a field one side sends and the other drops,
or expects and never gets, fails here."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any

import httpx
import pytest

from pcs_common.protocol import HeartbeatStatus
from pi_camera_service.central_link import CentralLink
from pi_camera_service.controls.manager import CameraControls, default_store
from pi_camera_service.config import load_settings
from pi_camera_service.events import EventLog
from pi_camera_service.sources import create_camera
from tests.conftest import SAMPLE, CentralServer, bearer, wait_until

pytestmark = pytest.mark.xdist_group("contract")


class RecordingTransport(httpx.AsyncBaseTransport):
    """The network, recording every request the camera sends (method, path, body bytes)."""

    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.sent: list[tuple[str, str, bytes]] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = await request.aread()
        self.sent.append((request.method, request.url.path, body))
        return await self.inner.handle_async_request(request)

    def json_bodies(self, path: str) -> list[dict[str, Any]]:
        return [json.loads(body) for method, p, body in self.sent if p == path and method == "POST"]

    async def aclose(self) -> None:
        await self.inner.aclose()


@pytest.fixture()
def clean_env(monkeypatch, tmp_path):
    for name in list(os.environ):
        if name.startswith("CAMERA_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


@pytest.fixture()
def central(database_url, tmp_path):
    server = CentralServer(database_url, data_dir=tmp_path / "central-data", heartbeat_interval=2).start()
    server.admin = server.create_first_admin()
    yield server
    server.stop()


@pytest.fixture()
def camera(tmp_path, clean_env):
    """The real camera service's software source on the sample video, open, with its controls."""
    settings = load_settings(source=str(SAMPLE), width=320, height=240, state_dir=tmp_path / "state",
                             host="127.0.0.1", port=8123, rtsp_url="rtsp://127.0.0.1:8554/cam")
    cam = create_camera(settings)
    cam.open()
    cam.controls = CameraControls(cam, default_store(settings.state_dir), EventLog())
    yield cam
    cam.close()


def camera_settings(tmp_path: Path, central: CentralServer):
    return load_settings(source=str(SAMPLE), width=320, height=240, central_url=central.base,
                         state_dir=tmp_path / "state", host="127.0.0.1", port=8123,
                         rtsp_url="rtsp://127.0.0.1:8554/cam", central_poll_wait=2)


async def wait_for(predicate, timeout: float, message: str) -> Any:
    """Await ``predicate()`` (sync, cheap) becoming truthy, checking every 20 ms; its value."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {message}")
        await asyncio.sleep(0.02)


async def pair(central: CentralServer, link: CentralLink, name: str = "Porch") -> str:
    """The administrator enters the code the camera shows; the device id once the camera reported in."""
    state = await wait_for(lambda: (s := link.state())["state"] == "waiting_for_admin" and s, 20, "a code")
    async with httpx.AsyncClient(base_url=central.base, timeout=30) as admin:
        paired = await admin.post("/v1/cameras/pair", json={"code": state["code"], "name": name},
                                  headers=bearer(central.admin))
    assert paired.status_code == 201, paired.text
    await wait_for(lambda: link.state()["last_heartbeat_at"], 20, "the first heartbeat")
    return paired.json()["id"]


def fleet_view(central: CentralServer, camera_id: str) -> dict[str, Any]:
    r = central.client.get(f"/v1/cameras/{camera_id}", headers=bearer(central.admin))
    assert r.status_code == 200, r.text
    return r.json()


def test_pairing_then_heartbeat_fields_land_in_the_fleet_view(central, camera, tmp_path):
    """Request -> admin pairs with the code -> the camera gets credentials -> every status field the
    camera reports is what the fleet view shows."""
    settings = camera_settings(tmp_path, central)
    transport = RecordingTransport()

    async def scenario() -> tuple[str, dict[str, Any]]:
        link = CentralLink.for_service(settings, camera, None, EventLog(), camera.controls, transport=transport,
                                       retry_initial=0.05, retry_max_delay=0.5, min_heartbeat_interval=0.2)
        await link.start()
        try:
            camera_id = await pair(central, link)
            assert link.state()["device_id"] == camera_id and link.state()["camera_name"] == "Porch"
            assert link.device_credentials()[0] == camera_id
        finally:
            await link.stop()
        return camera_id, link.state()

    camera_id, state = asyncio.run(scenario())
    assert state["state"] == "paired"
    [request] = transport.json_bodies("/v1/pairing/requests")
    view = fleet_view(central, camera_id)
    assert view["hardware_id"] == request["hardware_id"] and view["state"] == "online"
    sent = transport.json_bodies("/v1/devices/heartbeat")[-1]["status"]
    reported = {k: v for k, v in sent.items() if v is not None}
    stored = view["status"]
    dropped = sorted(set(reported) - set(stored))
    assert not dropped, f"the central server dropped status fields the camera sends: {dropped}"
    never_sent = sorted(set(HeartbeatStatus.model_fields) - set(sent))
    assert not never_sent, f"the central server expects status fields the camera never sends: {never_sent}"
    for key in ("version", "hardware_id", "streaming", "stream_state", "api_url", "rtsp_url", "mjpeg_path"):
        assert stored[key] == sent[key], key
    assert (stored["source"], stored["width"], stored["height"]) == (camera.source, 320, 240)
    assert stored["day_night"] in ("day", "night") and "camera_model" not in stored  # a software source has none
    assert (view["source"], view["width"], view["height"], view["day_night"]) == (
        camera.source, 320, 240, stored["day_night"])
