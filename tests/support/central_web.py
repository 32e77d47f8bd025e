"""The real central server process driven over HTTP the way the dashboard and a camera drive it."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.support.net import free_port
from tests.support.processes import CentralProcess

#: the first admin :func:`create_first_admin` creates
USER = "admin"
PASSWORD = "dashboard-pw-correct-horse"


def start_central(workdir: Path) -> CentralProcess:
    """The real central server on 127.0.0.1 (free port, SQLite in ``workdir``, no mDNS), started."""
    env = {
        "CENTRAL_HOST": "127.0.0.1",
        "CENTRAL_PORT": str(free_port()),
        "CENTRAL_DATA_DIR": str(workdir),
        "CENTRAL_MDNS_ENABLED": "false",
    }
    return CentralProcess(env, workdir / "central.log").start()


def create_first_admin(server: CentralProcess, username: str = USER, password: str = PASSWORD) -> None:
    """First-run setup through the API with the bootstrap password from the server's log."""
    r = httpx.post(server.base + "/v1/setup", json={"password": server.bootstrap_password()}, timeout=10)
    assert r.status_code == 200, r.text
    r = httpx.post(server.base + "/v1/setup/admin", json={"username": username, "password": password},
                   headers={"Authorization": f"Bearer {r.json()['setup_token']}"}, timeout=10)
    assert r.status_code == 201, r.text


def session_client(server: CentralProcess, username: str = USER, password: str = PASSWORD) -> tuple[httpx.Client, str]:
    """An httpx client holding a dashboard session cookie, and the session's CSRF token."""
    client = httpx.Client(base_url=server.base, timeout=10, follow_redirects=False)
    r = client.post("/v1/auth/session", data={"username": username, "password": password})
    assert r.status_code == 200, r.text
    return client, r.json()["csrf_token"]


def bearer_headers(server: CentralProcess, username: str = USER, password: str = PASSWORD) -> dict[str, str]:
    """``Authorization`` header with an access token from the OAuth2 password grant."""
    r = httpx.post(server.base + "/v1/auth/token", data={"username": username, "password": password}, timeout=10)
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


@dataclass
class SimulatedCamera:
    """A camera talking to the central server through its device-facing HTTP API only."""

    base: str
    hardware_id: str
    code: str
    request_id: str
    poll_token: str
    device_id: str | None = None
    device_secret: str | None = None

    @classmethod
    def ask_for_code(cls, base: str, hardware_id: str | None = None, **info: str) -> SimulatedCamera:
        """``POST /v1/pairing/requests`` as an unpaired camera does; ``info``: name, api_url, rtsp_url..."""
        hardware_id = hardware_id or secrets.token_hex(16)
        r = httpx.post(base + "/v1/pairing/requests", json={"hardware_id": hardware_id, **info}, timeout=10)
        assert r.status_code == 201, r.text
        body = r.json()
        return cls(base, hardware_id, body["code"], body["request_id"], body["poll_token"])

    def collect(self) -> bool:
        """Poll once (``wait=0``); True when paired (the device credentials are then kept)."""
        r = httpx.get(f"{self.base}/v1/pairing/requests/{self.request_id}", params={"wait": 0},
                      headers={"Authorization": f"Bearer {self.poll_token}"}, timeout=10)
        assert r.status_code == 200, r.text
        body = r.json()
        if body.get("status") != "paired":
            return False
        self.device_id, self.device_secret = body["device_id"], body["device_secret"]
        return True

    def heartbeat(self, **status: object) -> httpx.Response:
        """``POST /v1/devices/heartbeat`` with the device credentials and the viewer key derived from the
        secret, as the camera sends them; adopts a rotated secret."""
        from pcs_common.viewer_ticket import viewer_key

        body = {"status": status, "viewer_key": viewer_key(self.device_secret or "")}
        r = httpx.post(self.base + "/v1/devices/heartbeat", json=body,
                       auth=(self.device_id or "", self.device_secret or ""), timeout=10)
        if r.status_code == 200 and r.json().get("device_secret"):
            self.device_secret = r.json()["device_secret"]
        return r
