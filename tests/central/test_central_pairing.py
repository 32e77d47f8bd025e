"""Central server: pairing codes, the long poll, device credentials, disable/unpair/rotate, brute-force
limits and the fleet state — over real HTTP, on SQLite and PostgreSQL. (The same flow between a real
camera process and a real central process is in test_central_e2e.py.)"""

from __future__ import annotations

import concurrent.futures
import datetime as dt
import re
import time
import uuid

import httpx
from sqlalchemy import select, update

from central.models import Camera, PairingAttempt, PairingRequest
from central.security import CODE_ALPHABET
from tests.support.central_api import ask_code, basic, collect, paired_camera
from tests.support.central_server import CentralServer, bearer


def test_codes_are_8_symbols_without_look_alikes_and_unique(central_server: CentralServer):
    c = central_server.client
    codes = [ask_code(c)["code"] for _ in range(25)]
    assert len(set(codes)) == 25
    for code in codes:
        assert len(code) == 8 and set(code) <= set(CODE_ALPHABET)
    assert not set("0O1lIio") & set(CODE_ALPHABET) and len(CODE_ALPHABET) == 55
    assert any(ch.islower() for ch in "".join(codes)) and any(ch.isupper() for ch in "".join(codes))
    req = ask_code(c)
    expires = dt.datetime.fromisoformat(req["expires_at"].replace("Z", "+00:00"))
    assert 590 <= (expires - dt.datetime.now(dt.timezone.utc)).total_seconds() <= 600
    with central_server.state.sessions() as db:  # stored server-side, the poll token only as a digest
        row = db.get(PairingRequest, req["request_id"])
        assert row.code == req["code"] and req["poll_token"] != row.poll_token_hash and len(row.poll_token_hash) == 64


def test_pairing_request_validation(central_server: CentralServer):
    c = central_server.client
    r = c.post("/v1/pairing/requests", json={"hardware_id": "x"})
    assert r.status_code == 422 and "hardware_id" in r.json()["detail"]
    r = c.post("/v1/pairing/requests", json={"hardware_id": uuid.uuid4().hex, "api_url": "ftp://cam"})
    assert r.status_code == 422 and "api_url" in r.json()["detail"]


def test_a_new_request_expires_the_cameras_previous_code(central_server: CentralServer):
    admin = central_server.create_first_admin()
    c = central_server.client
    hw = uuid.uuid4().hex
    old, new = ask_code(c, hw), ask_code(c, hw)
    r = c.post("/v1/cameras/pair", json={"code": old["code"], "name": "x"}, headers=bearer(admin))
    assert r.status_code == 410 and r.json()["error"] == "expired_code"
    assert collect(c, old).status_code == 410
    assert c.post("/v1/cameras/pair", json={"code": new["code"], "name": "x"}, headers=bearer(admin)).status_code == 201


def test_long_poll_returns_credentials_as_soon_as_the_admin_pairs(central_server: CentralServer):
    admin = central_server.create_first_admin()
    c = central_server.client
    req = ask_code(c, api_url="http://192.0.2.7:8000", rtsp_url="rtsp://192.0.2.7:8554/cam", version="0.1.0")
    pending = collect(c, req, wait=0.3)
    assert pending.status_code == 200 and pending.json()["status"] == "pending"

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        started = time.monotonic()
        waiting = pool.submit(lambda: httpx.get(
            f"{central_server.base}/v1/pairing/requests/{req['request_id']}", params={"wait": 20},
            headers=bearer(req["poll_token"]), timeout=30))
        time.sleep(0.5)
        # The code as typed: spaces and a dash are ignored, case is not.
        typed = req["code"][:4] + "-" + req["code"][4:]
        paired = c.post("/v1/cameras/pair", json={"code": typed, "name": "Front door"}, headers=bearer(admin))
        assert paired.status_code == 201, paired.text
        answer = waiting.result()
        elapsed = time.monotonic() - started
    assert elapsed < 10, "the long poll was not woken by the pairing"
    body = answer.json()
    assert answer.status_code == 200 and body["status"] == "paired"
    assert body["device_id"] == paired.json()["id"] and body["camera_name"] == "Front door"
    assert len(body["device_secret"]) >= 43
    camera = paired.json()
    assert camera["state"] == "awaiting_camera" and camera["api_url"] == "http://192.0.2.7:8000"
    with central_server.state.sessions() as db:
        stored = db.get(Camera, body["device_id"])
        assert stored.secret_hash != body["device_secret"] and len(stored.secret_hash) == 64


def test_lost_credentials_response_can_be_collected_again_until_used(central_server: CentralServer):
    admin = central_server.create_first_admin()
    c = central_server.client
    req = ask_code(c)
    c.post("/v1/cameras/pair", json={"code": req["code"], "name": "Porch"}, headers=bearer(admin))
    first = collect(c, req).json()
    second = collect(c, req).json()  # the first answer was "lost"
    assert first["device_id"] == second["device_id"] and first["device_secret"] != second["device_secret"]
    # Only the newest secret works; using it closes collection.
    lost = c.post("/v1/devices/heartbeat", json={}, auth=basic(first["device_id"], first["device_secret"]))
    assert lost.status_code == 401
    ok = c.post("/v1/devices/heartbeat", json={}, auth=basic(second["device_id"], second["device_secret"]))
    assert ok.status_code == 200
    again = collect(c, req)
    assert again.status_code == 410 and again.json()["error"] == "already_claimed"
    wrong_token = c.get(f"/v1/pairing/requests/{req['request_id']}", headers=bearer("x" * 43))
    assert wrong_token.status_code == 401


def test_wrong_expired_and_reused_codes_are_refused_clearly_and_counted(central_server: CentralServer):
    admin = central_server.create_first_admin()
    c = central_server.client
    req = ask_code(c)
    wrong_case = req["code"].swapcase()
    r = c.post("/v1/cameras/pair", json={"code": wrong_case, "name": "x"}, headers=bearer(admin))
    assert r.status_code == 404 and r.json()["error"] == "wrong_code" and "case-sensitive" in r.json()["detail"]

    with central_server.state.sessions() as db:
        db.execute(update(PairingRequest).where(PairingRequest.id == req["request_id"])
                   .values(expires_at=dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=1)))
        db.commit()
    r = c.post("/v1/cameras/pair", json={"code": req["code"], "name": "x"}, headers=bearer(admin))
    assert r.status_code == 410 and r.json()["error"] == "expired_code"
    expired_poll = collect(c, req)
    assert expired_poll.status_code == 410 and expired_poll.json()["error"] == "expired"

    used = ask_code(c)
    assert c.post("/v1/cameras/pair", json={"code": used["code"], "name": "a"}, headers=bearer(admin)).status_code == 201
    r = c.post("/v1/cameras/pair", json={"code": used["code"], "name": "b"}, headers=bearer(admin))
    assert r.status_code == 409 and r.json()["error"] == "used_code"

    bad = c.post("/v1/cameras/pair", json={"code": "short", "name": "x"}, headers=bearer(admin))
    assert bad.status_code == 422 and "code" in bad.json()["detail"]

    stats = c.get("/v1/pairing/stats", headers=bearer(admin)).json()
    assert stats["refused_last_hour"] == {"wrong": 1, "expired": 1, "reused": 1}
    with central_server.state.sessions() as db:
        assert sorted(db.scalars(select(PairingAttempt.reason))) == ["expired", "reused", "wrong"]
    assert c.post("/v1/cameras/pair", json={"code": "ABCDEFGH", "name": "x"}).status_code == 401


def test_brute_forcing_codes_is_cut_off(database_url):
    server = CentralServer(database_url, pairing_failures_per_address=5, pairing_failures_global=8).start()
    try:
        admin = server.create_first_admin()
        c = server.client
        real = ask_code(c)
        statuses = [c.post("/v1/cameras/pair", json={"code": f"Guess{i:03d}", "name": "x"},
                           headers=bearer(admin)).status_code for i in range(7)]
        assert statuses[:5] == [404] * 5 and statuses[5:] == [429, 429]
        # Even the right code is refused while the budget is spent.
        r = c.post("/v1/cameras/pair", json={"code": real["code"], "name": "x"}, headers=bearer(admin))
        assert r.status_code == 429 and int(r.headers["Retry-After"]) > 0
        assert re.search(r"retry in \d+ s", r.json()["detail"])
    finally:
        server.stop()


def test_pairing_code_requests_are_rate_limited_per_address(database_url):
    server = CentralServer(database_url, pairing_requests_per_address=3, max_pending_pairings=100).start()
    try:
        c = server.client
        assert [c.post("/v1/pairing/requests", json={"hardware_id": uuid.uuid4().hex}).status_code
                for _ in range(4)] == [201, 201, 201, 429]
    finally:
        server.stop()


def test_outstanding_codes_are_capped(database_url):
    server = CentralServer(database_url, max_pending_pairings=2).start()
    try:
        c = server.client
        ask_code(c), ask_code(c)
        r = c.post("/v1/pairing/requests", json={"hardware_id": uuid.uuid4().hex})
        assert r.status_code == 503 and "already waiting" in r.json()["detail"]
    finally:
        server.stop()


def test_heartbeat_makes_the_camera_online_with_its_health(central_server: CentralServer):
    admin = central_server.create_first_admin()
    c = central_server.client
    creds = paired_camera(central_server, admin)
    status = {"streaming": True, "stream_state": "streaming", "detection_fps": 5.1, "temperature_c": 41.5,
              "version": "0.1.0", "api_url": "http://192.0.2.7:8000", "mjpeg_path": "/v1/camera/mjpeg",
              "webrtc_url": "http://192.0.2.7:8889/cam", "junk": "x" * 10_000, "uptime_s": "not a number"}
    hb = c.post("/v1/devices/heartbeat", json={"status": status}, auth=basic(creds["device_id"], creds["device_secret"]))
    assert hb.json() == {"camera_name": "Porch", "device_id": creds["device_id"], "heartbeat_interval_s": 30}
    cam = c.get(f"/v1/cameras/{creds['device_id']}", headers=bearer(admin)).json()
    assert cam["state"] == "online" and cam["online"] is True
    assert (cam["streaming"], cam["detection_fps"], cam["temperature_c"]) == (True, 5.1, 41.5)
    assert cam["mjpeg_url"] == "http://192.0.2.7:8000/v1/camera/mjpeg"
    assert cam["webrtc_url"] == "http://192.0.2.7:8889/cam" and cam["last_address"] == "127.0.0.1"
    assert "junk" not in cam["status"] and "uptime_s" not in cam["status"]
    # Silent for longer than 3 heartbeats: offline.
    with central_server.state.sessions() as db:
        db.execute(update(Camera).values(last_seen_at=dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=91)))
        db.commit()
    assert c.get("/v1/cameras", headers=bearer(admin)).json()[0]["state"] == "offline"


def test_disable_and_unpair_take_effect_at_once(central_server: CentralServer):
    admin = central_server.create_first_admin()
    c = central_server.client
    creds = paired_camera(central_server, admin)
    auth = basic(creds["device_id"], creds["device_secret"])
    cam_id = creds["device_id"]

    r = c.patch(f"/v1/cameras/{cam_id}", json={"disabled": True, "name": "Back door"}, headers=bearer(admin))
    assert r.json()["state"] == "disabled" and r.json()["name"] == "Back door"
    hb = c.post("/v1/devices/heartbeat", json={}, auth=auth)
    assert hb.status_code == 403 and hb.json()["error"] == "camera_disabled"
    c.patch(f"/v1/cameras/{cam_id}", json={"disabled": False}, headers=bearer(admin))
    assert c.post("/v1/devices/heartbeat", json={}, auth=auth).json()["camera_name"] == "Back door"

    assert c.delete(f"/v1/cameras/{cam_id}", headers=bearer(admin)).status_code == 204
    hb = c.post("/v1/devices/heartbeat", json={}, auth=auth)
    assert hb.status_code == 401 and hb.json()["error"] == "unknown_device"
    assert c.get(f"/v1/cameras/{cam_id}", headers=bearer(admin)).status_code == 404
    assert c.post("/v1/devices/heartbeat", json={}).status_code == 401
    assert c.post("/v1/devices/heartbeat", json={}, headers={"Authorization": "Basic !!!"}).status_code == 401


def test_repairing_a_known_camera_keeps_its_record_and_cuts_the_old_secret(central_server: CentralServer):
    admin = central_server.create_first_admin()
    c = central_server.client
    hw = uuid.uuid4().hex
    req = ask_code(c, hw)
    c.post("/v1/cameras/pair", json={"code": req["code"], "name": "Porch"}, headers=bearer(admin))
    old = collect(c, req).json()
    c.post("/v1/devices/heartbeat", json={}, auth=basic(old["device_id"], old["device_secret"]))
    again = ask_code(c, hw)  # the camera was reset and asks again
    c.post("/v1/cameras/pair", json={"code": again["code"], "name": "Porch 2"}, headers=bearer(admin))
    new = collect(c, again).json()
    assert new["device_id"] == old["device_id"]
    assert c.post("/v1/devices/heartbeat", json={}, auth=basic(old["device_id"], old["device_secret"])).status_code == 401
    assert c.post("/v1/devices/heartbeat", json={}, auth=basic(new["device_id"], new["device_secret"])).status_code == 200
    assert len(c.get("/v1/cameras", headers=bearer(admin)).json()) == 1


def test_secret_rotation_survives_a_lost_response(central_server: CentralServer):
    admin = central_server.create_first_admin()
    c = central_server.client
    creds = paired_camera(central_server, admin)
    cam_id, s0 = creds["device_id"], creds["device_secret"]
    r = c.post(f"/v1/cameras/{cam_id}/rotate-secret", headers=bearer(admin))
    assert r.status_code == 202 and r.json()["rotation_pending"] is True

    s1 = c.post("/v1/devices/heartbeat", json={}, auth=basic(cam_id, s0)).json()["device_secret"]
    # The response was lost: the camera retries with the old secret and gets another new one.
    s2 = c.post("/v1/devices/heartbeat", json={}, auth=basic(cam_id, s0)).json()["device_secret"]
    assert len({s0, s1, s2}) == 3
    assert c.post("/v1/devices/heartbeat", json={}, auth=basic(cam_id, s1)).status_code == 401
    done = c.post("/v1/devices/heartbeat", json={}, auth=basic(cam_id, s2))
    assert done.status_code == 200 and "device_secret" not in done.json()
    # Once the new secret is used, the old one is refused everywhere.
    assert c.post("/v1/devices/heartbeat", json={}, auth=basic(cam_id, s0)).status_code == 401
    assert c.get(f"/v1/cameras/{cam_id}", headers=bearer(admin)).json()["rotation_pending"] is False
