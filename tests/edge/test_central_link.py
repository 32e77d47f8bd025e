"""Pairing with a central server and heartbeats (pi_camera_service.central_link), against a real HTTP server.

:class:`FakeCentral` implements the central server's side of the protocol for fault injection (pairing
requests with 8-character codes, long polls held up to ``wait`` s, 410 on expiry, device credentials,
heartbeats with secret rotation, 401 ``unknown_device``, 403 ``camera_disabled``), built on the
protocol's own models (:mod:`pcs_common.protocol`; ``tests/contract/`` runs the camera against the real
central server instead). It is a FastAPI app served by uvicorn
in a thread on 127.0.0.1 and can be stopped and started again on the same port while its state (the
"database") survives. The camera side runs either in-process (:class:`LinkRunner`: a
:class:`CentralLink` on its own event loop, short intervals) or as the real service process.
"""

from __future__ import annotations

import asyncio
import base64
import hmac
import json
import logging
import os
import re
import secrets
import stat
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI, Query, Request
from fastapi.responses import JSONResponse
from fastapi.testclient import TestClient
from pydantic import ConfigDict

from pcs_common import protocol
from pcs_common.protocol import Heartbeat, HeartbeatAnswer, PairingCode, PairingPollAnswer, PairingRequest

from pi_camera_service.api.app import create_app
from pi_camera_service.central_link import (
    CREDENTIALS_FILE,
    Backoff,
    CentralLink,
    DeviceCredentials,
    advertised_urls,
    load_credentials,
    store_credentials,
)
from pi_camera_service.config import ConfigError, load_settings
from pi_camera_service.events import EventLog
from pi_camera_service.identity import hardware_id
from tests.support.net import free_port, wait_until
from tests.support.paths import SAMPLE
from tests.support.processes import ServiceProcess, sample_camera_env

API_KEY = "central-test-key-0123456789abcdef"
CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789"
STATUS_KEYS = {
    "version", "hardware_id", "streaming", "stream_state", "detection_fps", "temperature_c", "api_url",
    "rtsp_url", "mjpeg_path", "webrtc_url", "uptime_s",
}


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).isoformat().replace("+00:00", "Z")


def _basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


# ------------------------------------------------------------------------------------ fake central
class _StrictPairingRequest(PairingRequest):
    """The protocol's pairing request, refusing fields the protocol does not define (the real server
    ignores them)."""

    model_config = ConfigDict(extra="forbid")


class _StrictHeartbeat(Heartbeat):
    model_config = ConfigDict(extra="forbid")


class FakeCentral:
    """The central server's pairing and device protocol, served for real by uvicorn in a thread.

    Args:
        code_ttl: s a pairing code stays valid.
        heartbeat_interval: ``heartbeat_interval_s`` returned to cameras, s.

    State (requests, devices, heartbeats received) lives in this object and survives :meth:`stop` /
    :meth:`start`. Admin actions: :meth:`claim`, :meth:`disable`, :meth:`enable`, :meth:`remove`,
    :meth:`rotate`.
    """

    def __init__(self, code_ttl: float = 600.0, heartbeat_interval: int = 1) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.code_ttl = code_ttl
        self.heartbeat_interval = heartbeat_interval
        self.lock = threading.Lock()
        self.requests: dict[str, dict[str, Any]] = {}
        self.devices: dict[str, dict[str, Any]] = {}
        self.heartbeats: list[dict[str, Any]] = []
        self.refused: list[tuple[int, str]] = []
        self.pairing_bodies: list[dict[str, Any]] = []
        self.polls: list[tuple[float, int]] = []  # (time.monotonic(), wait asked for)
        self.rate_limit_next = 0
        self.server: uvicorn.Server | None = None
        self.thread: threading.Thread | None = None

    # ------------------------------------------------------------------ HTTP side
    def app(self) -> FastAPI:
        app = FastAPI()

        @app.post(protocol.PAIRING_REQUESTS_PATH, status_code=201)
        def create_request(body: _StrictPairingRequest) -> Any:
            with self.lock:
                if self.rate_limit_next > 0:
                    self.rate_limit_next -= 1
                    return JSONResponse({"detail": "too many pairing requests"}, 429, headers={"Retry-After": "1"})
                self.pairing_bodies.append(body.model_dump())
                request_id = secrets.token_urlsafe(12)
                code = "".join(secrets.choice(CODE_ALPHABET) for _ in range(8))
                expires = time.time() + self.code_ttl
                self.requests[request_id] = {
                    "code": code, "poll_token": secrets.token_urlsafe(24), "expires": expires,
                    "status": "pending", "device_id": None, "hardware_id": body.hardware_id,
                }
                return PairingCode(request_id=request_id, code=code, expires_at=_iso(expires),
                                   poll_token=self.requests[request_id]["poll_token"]).model_dump(exclude_none=True)

        @app.get(protocol.PAIRING_REQUESTS_PATH + "/{request_id}")
        async def poll(request_id: str, request: Request,
                       wait: int = Query(30, ge=0, le=protocol.MAX_POLL_WAIT_S)) -> Any:
            with self.lock:
                self.polls.append((time.monotonic(), wait))
                req = self.requests.get(request_id)
            if req is None:
                return JSONResponse({"detail": "unknown pairing request"}, 404)
            sent = request.headers.get("Authorization", "")
            if not hmac.compare_digest(sent.encode(), f"Bearer {req['poll_token']}".encode()):
                return JSONResponse({"detail": "bad poll token"}, 401)
            deadline = time.monotonic() + wait
            while True:
                with self.lock:
                    if req["status"] == "paired":
                        device = self.devices.get(req["device_id"])
                        if device is None or device["authenticated"]:
                            return JSONResponse({"detail": "pairing request already claimed"}, 410)
                        return PairingPollAnswer(
                            status="paired", device_id=req["device_id"], device_secret=device["secret"],
                            camera_name=device["name"]).model_dump(exclude_none=True)
                    if time.time() >= req["expires"]:
                        return JSONResponse({"detail": "pairing code expired"}, 410)
                if time.monotonic() >= deadline:
                    return PairingPollAnswer(status="pending", expires_at=_iso(req["expires"])).model_dump(
                        exclude_none=True)
                await asyncio.sleep(0.05)

        @app.post(protocol.HEARTBEAT_PATH)
        def heartbeat(body: _StrictHeartbeat, request: Request) -> Any:
            scheme, _, param = request.headers.get("Authorization", "").partition(" ")
            try:
                device_id, _, secret = base64.b64decode(param).decode().partition(":")
            except ValueError:
                device_id = secret = ""
            with self.lock:
                device = self.devices.get(device_id) if scheme.lower() == "basic" else None
                known = device is not None and (
                    hmac.compare_digest(secret, device["secret"])
                    or (device["pending_secret"] is not None and hmac.compare_digest(secret, device["pending_secret"]))
                )
                if not known:
                    self.refused.append((401, device_id))
                    return JSONResponse({"detail": "unknown device or wrong secret", "error": "unknown_device"}, 401)
                if secret == device["pending_secret"]:  # the camera uses the rotated secret: the old one is gone
                    device["secret"], device["pending_secret"] = secret, None
                device["authenticated"] = True
                if device["disabled"]:
                    self.refused.append((403, device_id))
                    return JSONResponse({"detail": "camera disabled by an administrator", "error": "camera_disabled"}, 403)
                self.heartbeats.append(
                    {"device_id": device_id, "secret": secret, "status": body.status, "at": time.monotonic()}
                )
                answer = HeartbeatAnswer(camera_name=device["name"], heartbeat_interval_s=self.heartbeat_interval,
                                         device_secret=device["pending_secret"])
                return answer.model_dump(exclude_none=True)

        return app

    def start(self) -> "FakeCentral":
        config = uvicorn.Config(
            self.app(), host="127.0.0.1", port=self.port, log_level="warning", lifespan="off",
            timeout_graceful_shutdown=0.2,
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="fake-central", daemon=True)
        self.thread.start()
        wait_until(lambda: self.server.started, 10, 0.02, message="fake central server listening")
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.should_exit = True
        if self.thread is not None:
            self.thread.join(10)
            assert not self.thread.is_alive(), "fake central server did not stop"
        self.server = self.thread = None

    # ------------------------------------------------------------------ admin side
    def pending_codes(self) -> list[str]:
        with self.lock:
            now = time.time()
            return [r["code"] for r in self.requests.values() if r["status"] == "pending" and r["expires"] > now]

    def claim(self, code: str, name: str) -> str | None:
        """An administrator enters ``code``: returns the new device id, None for an unknown/expired code."""
        with self.lock:
            for req in self.requests.values():
                if req["code"] == code and req["status"] == "pending" and req["expires"] > time.time():
                    device_id = "dev-" + secrets.token_hex(4)
                    self.devices[device_id] = {
                        "secret": secrets.token_urlsafe(32), "pending_secret": None, "name": name,
                        "disabled": False, "authenticated": False, "hardware_id": req["hardware_id"],
                    }
                    req["status"], req["device_id"] = "paired", device_id
                    return device_id
        return None

    def disable(self, device_id: str) -> None:
        with self.lock:
            self.devices[device_id]["disabled"] = True

    def enable(self, device_id: str) -> None:
        with self.lock:
            self.devices[device_id]["disabled"] = False

    def remove(self, device_id: str) -> None:
        with self.lock:
            del self.devices[device_id]

    def rotate(self, device_id: str) -> str:
        with self.lock:
            secret = self.devices[device_id]["pending_secret"] = secrets.token_urlsafe(32)
            return secret

    def secret(self, device_id: str) -> str:
        with self.lock:
            return self.devices[device_id]["secret"]

    def beats(self, device_id: str | None = None) -> list[dict[str, Any]]:
        with self.lock:
            return [b for b in self.heartbeats if device_id is None or b["device_id"] == device_id]


@pytest.fixture()
def central():
    server = FakeCentral().start()
    yield server
    server.stop()


# ------------------------------------------------------------------------------- in-process link
class LinkRunner:
    """A :class:`CentralLink` on its own event loop in a thread, so tests can poll it synchronously."""

    def __init__(self, link: CentralLink) -> None:
        self.link = link
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="link-loop", daemon=True)
        self.thread.start()

    def call(self, coro: Any, timeout: float = 15) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def state(self) -> dict[str, Any]:
        return self.link.state()

    def wait_state(self, predicate, timeout: float = 10, message: str = "link state") -> dict[str, Any]:
        def check():
            s = self.state()
            return s if predicate(s) else None

        try:
            return wait_until(check, timeout, 0.02, message)
        except AssertionError as exc:
            raise AssertionError(f"{exc}; state now {self.state()}") from None

    def close(self) -> None:
        self.call(self.link.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


@pytest.fixture()
def clean_env(monkeypatch, tmp_path):
    for name in list(os.environ):
        if name.startswith("CAMERA_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


@pytest.fixture()
def make_link(tmp_path, clean_env):
    runners: list[LinkRunner] = []

    def make(central_url: str, **kwargs: Any) -> LinkRunner:
        settings = load_settings(
            source=str(SAMPLE), central_url=central_url, state_dir=tmp_path / "state", host="127.0.0.1",
            port=8123, rtsp_url="rtsp://127.0.0.1:8554/cam",
        )
        events = kwargs.pop("events", None) or EventLog()
        options = dict(poll_wait=2, retry_initial=0.05, retry_max_delay=0.3, min_heartbeat_interval=0.2)
        options.update(kwargs)
        link = CentralLink(
            settings, events=events,
            status=lambda: {"streaming": False, "stream_state": "stopped", "detection_fps": 4.5,
                            "temperature_c": None, "uptime_s": 1.0},
            **options,
        )
        runner = LinkRunner(link)
        runner.events = events
        runners.append(runner)
        runner.call(link.start())
        return runner

    yield make
    for runner in runners:
        runner.close()


def _pair(central: FakeCentral, runner: LinkRunner, name: str = "Porch") -> str:
    """Wait for the code, claim it as an administrator, wait until the link is paired; the device id."""
    state = runner.wait_state(lambda s: s["state"] == "waiting_for_admin", message="a pairing code")
    device_id = central.claim(state["code"], name)
    assert device_id, f"code {state['code']} unknown to the central server"
    runner.wait_state(lambda s: s["state"] == "paired" and s["last_heartbeat_at"], message="paired + heartbeat")
    return device_id


# ----------------------------------------------------------------------------------------- tests
def test_code_requested_then_paired_credentials_stored_0600(central, make_link, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="pi_camera_service.central_link")
    runner = make_link(central.url)
    state = runner.wait_state(lambda s: s["state"] == "waiting_for_admin", message="a pairing code")

    assert re.fullmatch(r"[A-Za-z0-9]{8}", state["code"]) and state["code"] in central.pending_codes()
    assert state["central_url"] == central.url and state["device_id"] is None and state["expires_at"]
    body = central.pairing_bodies[-1]
    assert body["hardware_id"] == hardware_id(tmp_path / "state")
    assert body["api_url"] == "http://127.0.0.1:8123" and body["rtsp_url"] == "rtsp://127.0.0.1:8554/cam"
    assert body["version"] and body["name"]
    key_file = tmp_path / "state" / "pairing_key"  # the secret binding the code to this camera
    assert body["pairing_key"] == key_file.read_text().strip() and stat.S_IMODE(key_file.stat().st_mode) == 0o600
    line = next(r for r in caplog.records if r.getMessage().startswith("pairing code: "))
    assert line.levelno == logging.WARNING
    assert re.search(rf"pairing code: {state['code']} \(expires \d\d:\d\d:\d\d UTC\) — enter it on the central",
                     line.getMessage())
    published = [e.data for e in runner.events.since(0, "pairing")]
    assert any(d["state"] == "waiting_for_admin" and d["code"] == state["code"] for d in published)

    device_id = central.claim(state["code"], "Porch")
    state = runner.wait_state(lambda s: s["state"] == "paired" and s["last_heartbeat_at"], message="paired")
    assert state["device_id"] == device_id and state["camera_name"] == "Porch" and state["code"] is None
    assert "secret" not in json.dumps(state)

    path = tmp_path / "state" / CREDENTIALS_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    stored = json.loads(path.read_text())
    assert set(stored) == {"central_url", "device_id", "device_secret", "camera_name", "paired_at"}
    assert stored["central_url"] == central.url and stored["device_id"] == device_id
    assert stored["device_secret"] == central.secret(device_id) and stored["camera_name"] == "Porch"
    assert datetime.fromisoformat(stored["paired_at"]).tzinfo is not None
    assert runner.link.device_credentials() == (device_id, stored["device_secret"])
    assert any(d["state"] == "paired" and d["camera_name"] == "Porch" for d in
               (e.data for e in runner.events.since(0, "pairing")))

    # heartbeats carry the status and follow the server's interval (1 s)
    wait_until(lambda: len(central.beats(device_id)) >= 3, 10, message="three heartbeats")
    beats = central.beats(device_id)
    assert STATUS_KEYS <= set(beats[-1]["status"])
    assert beats[-1]["status"]["hardware_id"] == body["hardware_id"] and beats[-1]["status"]["mjpeg_path"] == "/v1/camera/mjpeg"
    gaps = [b["at"] - a["at"] for a, b in zip(beats, beats[1:], strict=False)]
    assert all(0.8 <= g <= 3 for g in gaps), gaps


def test_long_poll_is_held_not_hammered(central, make_link):
    runner = make_link(central.url, poll_wait=2)
    runner.wait_state(lambda s: s["state"] == "waiting_for_admin")
    start = len(central.polls)
    time.sleep(4.5)
    polls = central.polls[start:]
    assert 2 <= len(polls) <= 3, f"{len(polls)} polls in 4.5 s with wait=2"
    assert all(wait == 2 for _, wait in polls)
    assert runner.state()["state"] == "waiting_for_admin"


def test_expired_code_is_replaced_by_a_new_one(make_link):
    central = FakeCentral(code_ttl=1.5).start()
    try:
        runner = make_link(central.url, poll_wait=5)
        first = runner.wait_state(lambda s: s["state"] == "waiting_for_admin")["code"]
        second = runner.wait_state(lambda s: s["code"] not in (None, first), timeout=8, message="a new code")["code"]
        assert central.claim(first, "late") is None  # the old code is gone
        assert central.claim(second, "Garden")
        state = runner.wait_state(lambda s: s["state"] == "paired", message="paired with the new code")
        assert state["camera_name"] == "Garden"
    finally:
        central.stop()


def test_central_down_then_up_recovers_while_pairing_and_while_paired(make_link, tmp_path):
    central = FakeCentral()  # not started: connection refused
    try:
        runner = make_link(central.url)
        state = runner.wait_state(lambda s: s["state"] == "error" and s["last_error"], message="error state")
        assert "unreachable" in state["last_error"] and "ConnectError" in state["last_error"]
        assert state["next_attempt_at"] or runner.wait_state(lambda s: s["next_attempt_at"])["next_attempt_at"]

        central.start()
        state = runner.wait_state(lambda s: s["state"] == "waiting_for_admin", message="code after the server came up")
        assert state["last_error"] is None

        # the server restarts while the camera waits in a long poll: the same code stays valid
        central.stop()
        runner.wait_state(lambda s: s["last_error"] and s["state"] == "waiting_for_admin", message="poll error noted")
        central.start()
        device_id = central.claim(state["code"], "Shed")
        assert device_id
        runner.wait_state(lambda s: s["state"] == "paired" and s["last_heartbeat_at"], message="paired after restart")

        # down while paired: state stays paired with last_error, heartbeats resume afterwards
        central.stop()
        down = runner.wait_state(lambda s: s["last_error"], message="heartbeat error")
        assert down["state"] == "paired" and down["device_id"] == device_id
        assert load_credentials(tmp_path / "state") is not None
        before = len(central.beats(device_id))
        time.sleep(1.0)
        central.start()
        wait_until(lambda: len(central.beats(device_id)) > before, 5, message="heartbeat after the restart")
        runner.wait_state(lambda s: s["last_error"] is None and s["state"] == "paired", message="error cleared")
    finally:
        central.stop()


def test_unknown_device_401_deletes_credentials_and_pairs_again(central, make_link, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="pi_camera_service.central_link")
    runner = make_link(central.url)
    device_id = _pair(central, runner)
    assert (tmp_path / "state" / CREDENTIALS_FILE).exists()

    central.remove(device_id)
    state = runner.wait_state(lambda s: s["state"] == "waiting_for_admin", message="a new code after 401")
    assert state["device_id"] is None and state["code"] in central.pending_codes()
    assert not (tmp_path / "state" / CREDENTIALS_FILE).exists()
    assert runner.link.device_credentials() is None
    assert (401, device_id) in central.refused
    loud = [r for r in caplog.records if "refused this camera's credentials" in r.getMessage()]
    assert loud and loud[0].levelno == logging.ERROR

    new_id = central.claim(state["code"], "Again")
    runner.wait_state(lambda s: s["state"] == "paired" and s["device_id"] == new_id)


def test_disabled_403_keeps_credentials_and_resumes_when_enabled(central, make_link, tmp_path):
    runner = make_link(central.url)
    device_id = _pair(central, runner)
    central.disable(device_id)
    state = runner.wait_state(lambda s: s["state"] == "disabled", message="disabled")
    assert "disabled" in state["last_error"] and state["device_id"] == device_id
    refused = sum(1 for r in central.refused if r == (403, device_id))
    wait_until(lambda: sum(1 for r in central.refused if r == (403, device_id)) > refused + 1, 5,
               message="retries while disabled")
    assert load_credentials(tmp_path / "state").device_id == device_id
    assert runner.link.device_credentials() is not None

    beats = len(central.beats(device_id))
    central.enable(device_id)
    runner.wait_state(lambda s: s["state"] == "paired" and s["last_error"] is None, message="enabled again")
    wait_until(lambda: len(central.beats(device_id)) > beats, 5, message="heartbeat after enabling")


def test_rotated_secret_is_stored_and_used(central, make_link, tmp_path):
    runner = make_link(central.url)
    device_id = _pair(central, runner)
    old = central.secret(device_id)
    new = central.rotate(device_id)

    path = tmp_path / "state" / CREDENTIALS_FILE
    wait_until(lambda: json.loads(path.read_text())["device_secret"] == new, 5, message="new secret stored")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    wait_until(lambda: central.beats(device_id)[-1]["secret"] == new, 5, message="heartbeat with the new secret")
    assert central.secret(device_id) == new  # the server saw the new secret used and dropped the old one
    assert runner.link.device_credentials() == (device_id, new)
    assert old != new and runner.state()["state"] == "paired"
    assert not list(path.parent.glob(f".{CREDENTIALS_FILE}.*"))  # no temporary files left behind


def test_credentials_for_another_central_are_ignored(central, make_link, tmp_path):
    other = DeviceCredentials("http://old-central.lan:8080", "dev-old", "s3cret", "Old", "2024-01-01T00:00:00Z")
    store_credentials(tmp_path / "state", other)
    runner = make_link(central.url)
    state = runner.wait_state(lambda s: s["state"] == "waiting_for_admin", message="pairing with the new central")
    assert state["device_id"] is None and runner.link.device_credentials() is None
    assert not central.beats()


def test_rate_limited_request_waits_then_gets_a_code(central, make_link):
    central.rate_limit_next = 1
    runner = make_link(central.url, retry_max_delay=2)
    state = runner.wait_state(lambda s: s["state"] == "error", message="rate-limited")
    assert "rate-limited" in state["last_error"] and state["next_attempt_at"]
    began = time.monotonic()
    runner.wait_state(lambda s: s["state"] == "waiting_for_admin", timeout=6)
    assert time.monotonic() - began >= 0.5  # Retry-After: 1 was honoured


def test_unpair_forgets_credentials_and_requests_a_new_code(central, make_link, tmp_path):
    runner = make_link(central.url)
    _pair(central, runner)
    assert runner.call(runner.link.unpair()) is True
    assert not (tmp_path / "state" / CREDENTIALS_FILE).exists()
    state = runner.wait_state(lambda s: s["state"] == "waiting_for_admin")
    assert state["device_id"] is None and runner.link.device_credentials() is None


def test_backoff_grows_exponentially_with_jitter_and_is_capped():
    low, high = Backoff(1, 8, rng=lambda: 0.0), Backoff(1, 8, rng=lambda: 0.999999)
    assert [round(low.next_delay(), 3) for _ in range(6)] == [0.5, 1, 2, 4, 4, 4]
    assert [round(high.next_delay(), 3) for _ in range(6)] == [1, 2, 4, 8, 8, 8]
    delays = [Backoff(1, 300).next_delay() for _ in range(200)]
    assert len(set(delays)) > 100 and all(0.5 <= d <= 1 for d in delays)
    high.reset()
    assert round(high.next_delay(), 3) == 1
    with pytest.raises(ValueError):
        Backoff(0, 1)


@pytest.mark.parametrize(
    "value,message",
    [("central.lan:8080", "http:// or https://"), ("ftp://central", "http:// or https://"),
     ("http://central:99999", "not a valid URL"), ("http://u:p@central", "user:password")],
)
def test_bad_central_url_is_refused_with_a_clear_message(clean_env, value, message):
    with pytest.raises(ConfigError) as err:
        load_settings(central_url=value)
    assert str(err.value).startswith("CAMERA_CENTRAL_URL=") and message in str(err.value)
    assert load_settings(central_url="https://central.lan:8443/").central_url == "https://central.lan:8443"


def test_advertised_urls(clean_env):
    settings = load_settings(central_url="http://127.0.0.1:9", host="0.0.0.0", port=8000,
                             rtsp_url="rtsp://user:pw@127.0.0.1:8554/cam")
    assert advertised_urls(settings) == ("http://127.0.0.1:8000", "rtsp://127.0.0.1:8554/cam")
    settings = load_settings(central_url="http://127.0.0.1:9", api_url="http://cam.lan:8000",
                             rtsp_url="rtsp://127.0.0.1:8554/cam")
    assert advertised_urls(settings) == ("http://cam.lan:8000", "rtsp://cam.lan:8554/cam")
    settings = load_settings(central_url="http://127.0.0.1:9", host="10.1.2.3",
                             rtsp_url="rtsp://mediamtx.lan:8554/cam")
    assert advertised_urls(settings) == ("http://10.1.2.3:8000", "rtsp://mediamtx.lan:8554/cam")


def test_pairing_api_without_central_url(clean_env, tmp_path):
    settings = load_settings(source=str(SAMPLE), width=320, height=240, api_key=API_KEY, state_dir=tmp_path,
                             stream_on_start=False, detection_enabled=False, stills_enabled=False)
    with TestClient(create_app(settings)) as client:
        assert client.get("/v1/pairing").status_code == 401
        r = client.get("/v1/pairing", headers={"X-API-Key": API_KEY})
        assert r.status_code == 200 and r.json()["state"] == "unconfigured" and r.json()["central_url"] is None
        r = client.delete("/v1/pairing", headers={"X-API-Key": API_KEY})
        assert r.status_code == 409 and "CAMERA_CENTRAL_URL" in r.json()["detail"]
        # not paired: HTTP Basic is refused as before
        r = client.get("/v1/camera/status", headers=_basic("dev-x", "whatever"))
        assert r.status_code == 401 and "'Basic' is not accepted" in r.json()["detail"]


# ------------------------------------------------------------------------- the real edge service
def _service_env(workdir: Path, central: FakeCentral) -> dict[str, str]:
    return sample_camera_env(
        workdir, API_KEY,
        CAMERA_DETECTION_ENABLED="true",
        CAMERA_DETECTION_FPS="4",
        CAMERA_CENTRAL_URL=central.url + "/",
        CAMERA_CENTRAL_POLL_WAIT="2",
        CAMERA_CENTRAL_RETRY_MAX_DELAY="1",
    )


def _stop(service: ServiceProcess) -> None:
    """Stop the service; it must shut down gracefully (link cancelled, client closed)."""
    code = service.stop()
    # uvicorn re-raises SIGTERM after a graceful shutdown (systemd counts SIGTERM as a clean exit)
    assert code in (0, -15) and "Application shutdown complete" in service.log(), f"exit {code}:\n{service.log()}"


def test_edge_service_pairs_reports_and_accepts_device_credentials(central, tmp_path):
    service = ServiceProcess(_service_env(tmp_path, central), tmp_path / "service.log").start()
    api = httpx.Client(base_url=service.base, headers={"X-API-Key": API_KEY}, timeout=10)
    try:
        assert httpx.get(service.base + "/v1/pairing").status_code == 401
        state = wait_until(lambda: (s := api.get("/v1/pairing").json())["state"] == "waiting_for_admin" and s,
                           20, message="code via GET /v1/pairing")
        assert state["central_url"] == central.url and state["code"] in central.pending_codes()
        assert re.search(rf"WARNING .*pairing code: {state['code']} \(expires \d\d:\d\d:\d\d UTC\)", service.log())

        device_id = central.claim(state["code"], "Front door")
        state = wait_until(lambda: (s := api.get("/v1/pairing").json())["state"] == "paired" and s
                           and s["last_heartbeat_at"] and s, 10, message="paired")
        assert state["device_id"] == device_id and state["camera_name"] == "Front door"
        path = tmp_path / "state" / CREDENTIALS_FILE
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        secret = json.loads(path.read_text())["device_secret"]
        assert secret == central.secret(device_id) and secret not in json.dumps(state)

        # heartbeat status from the real camera and detection
        wait_until(lambda: any((b["status"]["detection_fps"] or 0) > 0 for b in central.beats(device_id)), 30,
                   message="a heartbeat with the analysed fps")
        status = central.beats(device_id)[-1]["status"]
        assert STATUS_KEYS <= set(status)
        assert status["streaming"] is False and status["stream_state"] == "stopped"
        assert status["api_url"] == f"http://127.0.0.1:{service.port}" and status["mjpeg_path"] == "/v1/camera/mjpeg"
        assert status["rtsp_url"].startswith("rtsp://127.0.0.1:") and status["webrtc_url"] is None
        assert status["temperature_c"] is None and status["uptime_s"] > 0
        assert status["hardware_id"] == (tmp_path / "state" / "hardware-id").read_text().strip()
        assert status["version"] == httpx.get(service.base + "/health").json()["version"]

        # the device credentials open the camera's API to the central server; wrong ones do not
        r = httpx.get(service.base + "/v1/camera/status", headers=_basic(device_id, secret), timeout=10)
        assert r.status_code == 200 and r.json()["width"] == 320
        with httpx.stream("GET", service.base + "/v1/camera/mjpeg", headers=_basic(device_id, secret), timeout=10) as r:
            assert r.status_code == 200 and r.headers["content-type"].startswith("multipart/x-mixed-replace")
            assert b"\xff\xd8" in next(r.iter_bytes())
        for user, password in [(device_id, secret + "x"), ("dev-other", secret), (device_id, "")]:
            r = httpx.get(service.base + "/v1/camera/status", headers=_basic(user, password), timeout=10)
            assert r.status_code == 401 and "device credentials invalid" in r.json()["detail"]

        # rotation: the new secret is stored and accepted, the old one refused
        new = central.rotate(device_id)
        wait_until(lambda: json.loads(path.read_text())["device_secret"] == new, 10, message="rotated secret stored")
        wait_until(lambda: httpx.get(service.base + "/v1/camera/status", headers=_basic(device_id, new)).status_code == 200,
                   5, message="new secret accepted")
        assert httpx.get(service.base + "/v1/camera/status", headers=_basic(device_id, secret)).status_code == 401

        # DELETE /v1/pairing: credentials forgotten, a new code requested
        assert api.delete("/v1/pairing").status_code == 204
        assert not path.exists()
        state = wait_until(lambda: (s := api.get("/v1/pairing").json())["state"] == "waiting_for_admin" and s,
                           10, message="new code after DELETE")
        assert state["device_id"] is None and state["code"] in central.pending_codes()
        r = httpx.get(service.base + "/v1/camera/status", headers=_basic(device_id, new))
        assert r.status_code == 401 and "'Basic' is not accepted" in r.json()["detail"]
    finally:
        api.close()
        _stop(service)


def test_edge_service_resumes_heartbeats_with_stored_credentials_after_restart(central, tmp_path):
    env = _service_env(tmp_path, central)
    env["CAMERA_DETECTION_ENABLED"] = "false"
    service = ServiceProcess(env, tmp_path / "service.log").start()
    api = httpx.Client(base_url=service.base, headers={"X-API-Key": API_KEY}, timeout=10)
    try:
        code = wait_until(lambda: api.get("/v1/pairing").json()["code"], 20, message="code")
        device_id = central.claim(code, "Back yard")
        wait_until(lambda: api.get("/v1/pairing").json()["state"] == "paired", 10, message="paired")
    finally:
        api.close()
        _stop(service)
    requests_before = len(central.pairing_bodies)
    beats_before = len(central.beats(device_id))
    service = ServiceProcess(env, tmp_path / "service.log").start()
    try:
        wait_until(lambda: len(central.beats(device_id)) > beats_before, 10, message="heartbeat after restart")
        state = httpx.get(service.base + "/v1/pairing", headers={"X-API-Key": API_KEY}).json()
        assert state["state"] == "paired" and state["camera_name"] == "Back yard"
        assert len(central.pairing_bodies) == requests_before  # no new code was requested
        assert central.beats(device_id)[-1]["status"]["detection_fps"] is None  # detection is off
    finally:
        _stop(service)


# ----------------------------------------------------------------------------------- the web page
CHROMIUM = "/usr/bin/chromium"


@pytest.mark.browser
def test_web_page_shows_the_code_then_the_pairing(central, tmp_path):
    sync_playwright = pytest.importorskip("playwright.sync_api").sync_playwright
    if not Path(CHROMIUM).exists():
        pytest.skip(f"browser test needs Chromium at {CHROMIUM} (apt-get install chromium)")
    env = _service_env(tmp_path, central)
    env["CAMERA_DETECTION_ENABLED"] = "false"
    service = ServiceProcess(env, tmp_path / "service.log").start()
    try:
        code = wait_until(lambda: central.pending_codes(), 20, message="a pairing code")[0]
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
            try:
                page = browser.new_page()
                page.goto(service.base + "/login")
                page.fill('input[name="api_key"]', API_KEY)
                page.click('button[type="submit"]')
                page.wait_for_url(service.base + "/", wait_until="domcontentloaded")
                wait_until(lambda: code in page.inner_text("#st-pairing"), 10, message="code on the page")
                text = page.inner_text("#st-pairing")
                assert "enter it on the central server" in text and re.search(r"expires in \d+ min", text)
                assert page.inner_text("#pairing-code") == code
                central.claim(code, "Hallway")
                # the 'pairing' server-sent event makes the page reload the state
                wait_until(lambda: "Paired with" in page.inner_text("#st-pairing"), 10, message="paired on the page")
                assert page.inner_text("#st-pairing") == f"Paired with {central.url} as Hallway"
            finally:
                browser.close()
    finally:
        _stop(service)
