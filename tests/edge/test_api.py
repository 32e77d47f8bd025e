"""API behaviour in-process (FastAPI TestClient) on the real sample-video source, without RTSP or detection."""

from __future__ import annotations

import os

import cv2
import numpy as np
import pytest
from tests.support.camera_app import connected, make_camera_app


KEY = "api-test-key-0123456789abcdef"


@pytest.fixture()
def app(tmp_path, monkeypatch):
    for key in list(os.environ):
        if key.startswith("CAMERA_"):
            monkeypatch.delenv(key)
    return make_camera_app(tmp_path, api_key=KEY)


@pytest.fixture()
def client(app):
    with connected(app, KEY) as c:
        yield c


def test_every_v1_route_except_auth_needs_credentials(app, client):
    # every operation the app documents (routers may be nested, the OpenAPI schema lists them all)
    paths = {p: ops for p, ops in app.openapi()["paths"].items() if p.startswith("/v1/")}
    assert {"/v1/auth/token", "/v1/camera/snapshot", "/v1/detection/run"} <= set(paths)
    checked = 0
    for path, ops in paths.items():
        if path.startswith("/v1/auth/"):
            continue
        for method in ops:
            r = client.request(method.upper(), path, headers={"X-API-Key": ""})
            assert r.status_code == 401, (method, path, r.status_code)
            checked += 1
    assert checked >= 8


def test_health_reports_degraded_parts_honestly(client):
    body = client.get("/health").json()
    assert body == {
        "status": "healthy", "camera_configured": True, "streaming_active": False,
        "detection_active": False, "version": body["version"], "hardware_id": body["hardware_id"],
        "stream": {"state": "stopped", "fps_10s": 0.0, "frame_gaps_60s": 0, "max_gap_ms_60s": 0.0,
                   "frames_dropped_60s": 0},
    }
    assert len(body["hardware_id"]) == 32


def test_detection_disabled_is_a_clear_409(client):
    r = client.get("/v1/detection/latest")
    assert r.status_code == 409 and "CAMERA_DETECTION_ENABLED" in r.json()["detail"]


def test_snapshot_sizes_and_validation(client):
    r = client.get("/v1/camera/snapshot", params={"width": 160, "quality": 50})
    img = cv2.imdecode(np.frombuffer(r.content, np.uint8), cv2.IMREAD_COLOR)
    assert img.shape == (120, 160, 3)
    too_big = client.get("/v1/camera/snapshot", params={"width": 640})
    assert too_big.status_code == 422 and "16..320" in too_big.json()["detail"]
    bad_quality = client.get("/v1/camera/snapshot", params={"quality": 0})
    assert bad_quality.status_code == 422 and "quality" in bad_quality.json()["detail"]


def test_streaming_start_stop_are_idempotent_without_a_server(client):
    # nothing listens on the default RTSP port here: the service keeps answering and reports it
    assert client.post("/v1/streaming/stop").json()["state"] == "stopped"
    first = client.post("/v1/streaming/start").json()
    second = client.post("/v1/streaming/start").json()
    assert first["state"] in {"connecting", "reconnecting"} and second["state"] in {"connecting", "reconnecting"}
    assert client.post("/v1/streaming/stop").json()["state"] == "stopped"
    assert client.post("/v1/streaming/stop").json()["state"] == "stopped"
