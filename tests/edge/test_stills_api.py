"""The /v1/stills API in-process (FastAPI TestClient) on the real sample-video source and a real filesystem."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from datetime import datetime

import cv2
import numpy as np
import pytest
from fastapi.testclient import TestClient

from pi_camera_service.sources.base import CameraUnavailable
from tests.support.camera_app import first_frame, make_camera_app
from tests.support.net import wait_until

KEY = "stills-test-key-0123456789abcdef"
ROUTES = [
    ("GET", "/v1/stills"), ("POST", "/v1/stills"), ("GET", "/v1/stills/days"), ("GET", "/v1/stills/latest"),
    ("GET", "/v1/stills/status"), ("GET", "/v1/stills/20261122_143005_123"),
    ("GET", "/v1/stills/20261122_143005_123/thumbnail"), ("GET", "/v1/stills/20261122_143005_123/metadata"),
    ("DELETE", "/v1/stills/20261122_143005_123"), ("POST", "/v1/stills/20261122_143005_123/upload"),
]


def make_client(tmp_path, monkeypatch, **overrides):
    for key in list(os.environ):
        if key.startswith("CAMERA_"):
            monkeypatch.delenv(key)
    app = make_camera_app(tmp_path / "state", api_key=KEY, **{
        "stills_dir": tmp_path / "stills", "stills_thumbnail_width": 160, **overrides})
    return TestClient(app, headers={"X-API-Key": KEY})


@pytest.fixture()
def client(tmp_path, monkeypatch):
    with make_client(tmp_path, monkeypatch) as c:
        first_frame(c)
        yield c


def decode(content: bytes) -> np.ndarray:
    return cv2.imdecode(np.frombuffer(content, np.uint8), cv2.IMREAD_COLOR)


def test_every_stills_route_needs_credentials(client):
    documented = {(m.upper(), p) for p, ops in client.app.openapi()["paths"].items() if p.startswith("/v1/stills")
                  for m in ops}
    assert len(documented) == len(ROUTES) == 10
    for method, path in ROUTES:
        r = client.request(method, path, headers={"X-API-Key": ""})
        assert r.status_code == 401, (method, path, r.status_code)
        assert client.request(method, path, headers={"X-API-Key": "wrong"}).status_code == 401
    assert client.get("/v1/stills/status").status_code == 200
    assert all(op["tags"] == ["stills"] for p, ops in client.app.openapi()["paths"].items()
               if p.startswith("/v1/stills") for op in ops.values())


def test_an_empty_history(client, tmp_path):
    assert client.get("/v1/stills").json() == {"items": [], "next_cursor": None}
    assert client.get("/v1/stills/days").json() == []
    r = client.get("/v1/stills/latest")
    assert r.status_code == 404 and "no still" in r.json()["detail"]
    status = client.get("/v1/stills/status").json()
    assert status["count"] == 0 and status["total_bytes"] == 0 and status["running"]
    assert status["settings"] == {
        "dir": str(tmp_path / "stills"), "interval_s": 3600.0, "cron": None, "on_detection": False,
        "detection_min_interval_s": 60.0, "max_age_days": 30.0, "max_total_mb": 1024.0, "min_free_mb": 200.0,
        "thumbnail_width": 160, "quality": 90,
    }
    assert 3500 < status["next_run_at"] - time.time() <= 3600 and status["free_disk_bytes"] > 0
    assert status["last_capture"] is None and status["captures"]["taken"] == 0
    assert not (tmp_path / "stills").exists(), "nothing is created before the first still"


def test_take_list_fetch_and_delete_a_still(client, tmp_path):
    r = client.post("/v1/stills")
    assert r.status_code == 201, r.text
    still = r.json()
    sid = still["id"]
    assert still["trigger"] == "manual" and (still["width"], still["height"]) == (320, 240)
    assert still["url"] == f"/v1/stills/{sid}" and still["thumbnail_url"] == f"/v1/stills/{sid}/thumbnail"
    assert still["nb_faces"] is None and abs(still["taken_at"] - time.time()) < 5
    assert datetime.fromisoformat(still["taken_at_iso"]).timestamp() == pytest.approx(still["taken_at"], abs=0.002)

    assert client.get("/v1/stills").json()["items"][0] == still
    assert client.get("/v1/stills/latest").json() == still
    assert client.get("/v1/stills/days").json() == [
        {"day": datetime.fromtimestamp(still["taken_at"]).strftime("%Y-%m-%d"), "count": 1,
         "bytes": client.get("/v1/stills/status").json()["total_bytes"]}]

    image = client.get(still["url"])
    assert image.status_code == 200 and image.headers["content-type"] == "image/jpeg"
    assert image.headers["cache-control"] == "private, max-age=86400"
    assert decode(image.content).shape == (240, 320, 3) and len(image.content) == still["bytes"]
    thumb = client.get(still["thumbnail_url"])
    assert thumb.headers["content-type"] == "image/jpeg" and decode(thumb.content).shape == (120, 160, 3)
    meta = client.get(f"/v1/stills/{sid}/metadata").json()
    assert {k: meta[k] for k in ("id", "trigger", "width", "height", "bytes", "taken_at")} == {
        k: still[k] for k in ("id", "trigger", "width", "height", "bytes", "taken_at")}
    assert meta["camera"]["source"].startswith("file:") and "day_night" in meta["camera"]["controls"]

    status = client.get("/v1/stills/status").json()
    assert status["count"] == 1 and status["last_capture"]["id"] == sid
    assert status["captures"]["by_trigger"]["manual"] == 1

    second = client.post("/v1/stills").json()
    listing = client.get("/v1/stills").json()["items"]
    assert [i["id"] for i in listing] == [second["id"], sid], "the newest still comes first"

    day_dir = tmp_path / "stills" / f"{sid[:4]}-{sid[4:6]}-{sid[6:8]}"
    files = [day_dir / f"{sid}.jpg", day_dir / f"{sid}.thumb.jpg", day_dir / f"{sid}.json"]
    assert all(f.is_file() for f in files)
    assert client.delete(f"/v1/stills/{sid}").status_code == 204
    assert not any(f.exists() for f in files)
    assert [i["id"] for i in client.get("/v1/stills").json()["items"]] == [second["id"]]
    for method, suffix in (("GET", ""), ("GET", "/thumbnail"), ("GET", "/metadata"), ("DELETE", "")):
        r = client.request(method, f"/v1/stills/{sid}{suffix}")
        assert r.status_code == 404 and sid in r.json()["detail"], (method, suffix)


def test_paging_days_and_validation(client):
    store = client.app.state.stills.store
    jpeg = client.app.state.camera.snapshot_jpeg(None, 90)
    base = datetime(2026, 6, 10, 22, 0, 0).timestamp()
    made = [store.add(jpeg, taken_at=base + i * 600, trigger="schedule") for i in range(20)]  # 22:00 -> 01:10
    expected = [r.id for r in reversed(made)]

    seen, cursor = [], None
    while True:
        params = {"limit": 3} | ({"cursor": cursor} if cursor else {})
        body = client.get("/v1/stills", params=params).json()
        assert len(body["items"]) <= 3
        seen += [i["id"] for i in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert seen == expected

    days = client.get("/v1/stills/days").json()
    assert [(d["day"], d["count"]) for d in days] == [("2026-06-11", 8), ("2026-06-10", 12)]
    day = client.get("/v1/stills", params={"day": "2026-06-11", "limit": 200}).json()
    assert [i["id"] for i in day["items"]] == expected[:8] and day["next_cursor"] is None
    assert client.get("/v1/stills", params={"day": "2026-06-09"}).json() == {"items": [], "next_cursor": None}
    assert len(client.get("/v1/stills").json()["items"]) == 20  # default limit 50

    for params, needle in [
        ({"day": "2026-13-01"}, "YYYY-MM-DD"), ({"day": "yesterday"}, "YYYY-MM-DD"),
        ({"cursor": "not-a-cursor"}, "next_cursor"), ({"limit": 0}, "limit"), ({"limit": 201}, "200"),
        ({"limit": "ten"}, "limit"),
    ]:
        r = client.get("/v1/stills", params=params)
        assert r.status_code == 422 and needle in r.json()["detail"], (params, r.text)
    for bad in ("not-an-id", "20260610_220000_000.jpg", "..", "20260610-220000-000"):
        r = client.get(f"/v1/stills/{bad}")
        assert r.status_code in (404, 422), bad
        if r.status_code == 422:
            assert "YYYYMMDD_HHMMSS_mmm" in r.json()["detail"]
    assert client.get("/v1/stills/not-an-id/thumbnail").status_code == 422
    assert client.delete("/v1/stills/not-an-id").status_code == 422
    assert client.get("/v1/stills/..%2F..%2Fetc%2Fpasswd").status_code in (404, 422)
    assert client.get("/v1/stills/20990101_000000_000").status_code == 404


def test_no_frame_yet_is_503_with_retry_after(client, monkeypatch):
    def no_frame(*_args, **_kwargs):
        raise CameraUnavailable("no frame from the camera yet")

    monkeypatch.setattr(client.app.state.camera, "snapshot_jpeg", no_frame)
    r = client.post("/v1/stills")
    assert r.status_code == 503 and r.headers["retry-after"] == "1" and "no frame" in r.json()["detail"]
    assert client.get("/v1/stills/status").json()["captures"]["skipped"] == 1


def test_stills_disabled_is_a_clear_409(tmp_path, monkeypatch):
    with make_client(tmp_path, monkeypatch, stills_enabled=False) as c:
        for method, path in ROUTES:
            r = c.request(method, path)
            assert r.status_code == 409 and "CAMERA_STILLS_ENABLED" in r.json()["detail"], (method, path)


def test_a_disk_below_the_floor_is_507_and_the_service_goes_on(tmp_path, monkeypatch):
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root (CAP_SYS_ADMIN)")
    fs = tmp_path / "fs"
    fs.mkdir()
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(fs)],
                          check=False, capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {proc.stderr.strip()}")
    try:
        with make_client(tmp_path, monkeypatch, stills_dir=fs / "stills", stills_min_free_mb=1.9) as c:
            wait_until(lambda: c.get("/health").json()["camera_configured"], 10, message="first frame")
            first = c.post("/v1/stills")
            assert first.status_code == 201
            (fs / "filler").write_bytes(b"\0" * 300_000)  # something else takes the disk
            r = c.post("/v1/stills")
            assert r.status_code == 507 and "CAMERA_STILLS_MIN_FREE_MB=1.9" in r.json()["detail"], r.text
            status = c.get("/v1/stills/status").json()
            assert status["captures"]["skipped"] == 1 and "disk full" in status["last_skip"]["reason"]
            assert status["count"] == 0, "the oldest stills were deleted first, then the capture skipped"
            assert sorted(p.name for p in fs.rglob("*")) == ["filler", "stills"]
            assert c.get("/health").json()["status"] == "healthy"
            (fs / "filler").unlink()
            assert c.post("/v1/stills").status_code == 201
            assert c.get("/v1/stills/status").json()["count"] == 1
    finally:
        if subprocess.run(["umount", str(fs)], check=False, capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(fs)], check=False, capture_output=True)
    assert shutil.disk_usage(fs).total != 2 * 1024 * 1024  # unmounted


def test_detection_stills_through_the_app(tmp_path, monkeypatch):
    """With detection on, the listener is registered and removed again at shutdown."""
    with make_client(tmp_path, monkeypatch, detection_enabled=True, stills_on_detection=True,
                     stills_detection_min_interval=1) as c:
        detection = c.app.state.detection
        stills = c.app.state.stills
        assert stills.on_detection in detection._listeners
        wait_until(lambda: c.get("/v1/stills/status").json()["captures"]["by_trigger"]["detection"] >= 1, 30,
                   message="a detection still (the sample video shows a face)")
        item = c.get("/v1/stills").json()["items"][0]
        assert item["trigger"] == "detection" and (item["nb_faces"] or 0) + (item["nb_profiles"] or 0) >= 1
    assert stills.on_detection not in detection._listeners and not stills.running
