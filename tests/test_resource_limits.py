"""Resource limits of both services against a hostile LAN client (docs/security.md#resource-limits):
bounded password checks, request bodies refused while they stream in, image sizes checked before
decoding, NaN/Infinity answered with 422, stalled live viewers dropped. Over real sockets where the
limit lives in the connection (body streaming, stalled viewers)."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import socket
import struct
import threading
import time
import uuid
from pathlib import Path

import argon2
import httpx
import pytest
from fastapi.testclient import TestClient
from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher

import pi_camera_service.auth as auth
from pi_camera_service.auth import hash_password
from tests.support.camera_app import API_KEY, camera_app
from tests.support.central_api import basic, event, jpeg, paired_camera, post_events
from tests.support.central_server import CentralServer, bearer
from tests.support.net import free_port, wait_until
from tests.support.processes import ServiceProcess, sample_camera_env

PASSWORD = "correct horse battery"
#: pwdlib's default argon2 cost before this change (m = 64 MiB, t = 3, p = 4): hashes users still have
OLD_HASHER = PasswordHash((Argon2Hasher(),))


@pytest.fixture()
def camera(tmp_path):
    app = camera_app(tmp_path, password_hash=hash_password(PASSWORD))
    with TestClient(app) as client:
        client.headers["X-API-Key"] = API_KEY
        yield client


def fake_dimensions(data: bytes, width: int, height: int) -> bytes:
    """``data`` (a real JPEG) with its SOF0 frame header claiming ``width`` x ``height`` px."""
    i = data.index(b"\xff\xc0")
    return data[:i + 5] + struct.pack(">HH", height, width) + data[i + 9:]


# ----------------------------------------------------------------------------- passwords
def test_new_hashes_use_the_pi_parameters():
    params = argon2.extract_parameters(hash_password("x"))
    assert (params.type, params.memory_cost, params.time_cost, params.parallelism) == (
        argon2.Type.ID, 19_456, 2, 1)


def test_camera_old_hash_keeps_working_and_is_rehashed(tmp_path):
    old = OLD_HASHER.hash(PASSWORD)
    app = camera_app(tmp_path, password_hash=old)
    with TestClient(app) as client:
        assert client.post("/v1/auth/token", data={"username": "admin", "password": "wrong"}).status_code == 401
        assert app.state.auth.upgraded_hash == {}, "a wrong password must not re-hash"
        ok = client.post("/v1/auth/token", data={"username": "admin", "password": PASSWORD})
        assert ok.status_code == 200, ok.text
        new = app.state.auth.upgraded_hash[old]
        assert argon2.extract_parameters(new).memory_cost == 19_456
        again = client.post("/v1/auth/token", data={"username": "admin", "password": PASSWORD})
        assert again.status_code == 200


def _slow_verifier(monkeypatch, module, attr, release: threading.Event, wrap=None):
    """Replace ``module.attr`` (a verify function) by one that counts calls in flight and blocks until
    ``release``; returns the dict of counters."""
    real = getattr(module, attr)
    seen = {"now": 0, "max": 0, "calls": 0}
    lock = threading.Lock()

    def slow(*args):
        with lock:
            seen["now"] += 1
            seen["calls"] += 1
            seen["max"] = max(seen["max"], seen["now"])
        try:
            release.wait(20)
            return real(*args)
        finally:
            with lock:
                seen["now"] -= 1

    monkeypatch.setattr(module, attr, slow)
    return seen


async def _parallel_logins(base: str, path: str, n: int, form: dict) -> list[httpx.Response]:
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        return await asyncio.gather(*(client.post(path, data=form) for _ in range(n)))


def _run_parallel_logins(base, path, n, form, release: threading.Event, seen, expect_in_flight: int, gate):
    """Fire ``n`` logins at once; release the verifier once ``expect_in_flight`` are blocked in it and
    the gate has refused every other request (after its 0.3 s wait)."""
    results: list = []
    thread = threading.Thread(target=lambda: results.extend(asyncio.run(_parallel_logins(base, path, n, form))))
    thread.start()
    wait_until(lambda: seen["now"] >= expect_in_flight, 20, 0.02, "verifications in flight")
    wait_until(lambda: gate.refused >= n - expect_in_flight, 20, 0.02, "excess logins refused")
    release.set()
    thread.join(30)
    return results


def test_camera_password_checks_are_bounded_503_beyond(tmp_path, monkeypatch):
    import uvicorn

    port = free_port()
    # login budgets out of the way: this test is about the password-check gate
    app = camera_app(tmp_path, password_hash=hash_password(PASSWORD), password_checks_max=2,
                     password_check_wait=0.3, port=port, login_failures_per_address=1000,
                     login_failures_global=1000)
    settings = app.state.settings
    release = threading.Event()
    seen = _slow_verifier(monkeypatch, auth, "verify_and_update_password", release)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=settings.port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        wait_until(lambda: server.started, 30, 0.05, "camera started")
        results = _run_parallel_logins(f"http://127.0.0.1:{settings.port}", "/v1/auth/token", 12,
                                       {"username": "admin", "password": "wrong"}, release, seen, 2,
                                       app.state.password_gate)
    finally:
        release.set()
        server.should_exit = True
        thread.join(15)
    codes = sorted(r.status_code for r in results)
    assert seen["max"] == 2, seen
    assert codes.count(401) == seen["calls"] == 2 and codes.count(503) == 10, codes
    busy = next(r for r in results if r.status_code == 503)
    assert busy.headers["Retry-After"] == "1" and "too many password checks" in busy.json()["detail"]


@pytest.fixture()
def central(database_url, tmp_path):
    srv = CentralServer(database_url, data_dir=tmp_path / "data", password_checks_max=2,
                        password_check_wait=0.3, login_failures_per_user=1000, login_failures_per_address=1000,
                        login_failures_per_user_global=1000).start()  # the gate, not the login budgets
    srv.admin = srv.create_first_admin("alice", PASSWORD)
    yield srv
    srv.stop()


def test_central_password_checks_are_bounded_503_beyond(central, monkeypatch):
    import central.api.auth_routes as auth_routes

    release = threading.Event()
    seen = _slow_verifier(monkeypatch, auth_routes, "verify_and_update_password", release)
    results = _run_parallel_logins(central.base, "/v1/auth/token", 12, {"username": "alice", "password": "wrong"},
                                   release, seen, 2, central.state.password_gate)
    codes = sorted(r.status_code for r in results)
    assert seen["max"] == 2, seen
    assert codes.count(503) == 10 and codes.count(401) == 2, codes
    assert next(r for r in results if r.status_code == 503).headers["Retry-After"] == "1"


def test_central_old_hash_keeps_working_and_is_rehashed(central):
    from sqlalchemy import select

    from central.models import Admin

    with central.state.sessions() as db:
        admin = db.scalar(select(Admin).where(Admin.username == "alice"))
        admin.password_hash = OLD_HASHER.hash(PASSWORD)
        changed_at = admin.password_changed_at
        db.commit()
    assert central.client.get("/v1/auth/me", headers=bearer(central.admin)).status_code == 200
    central.login("alice", PASSWORD)
    with central.state.sessions() as db:
        admin = db.scalar(select(Admin).where(Admin.username == "alice"))
        assert argon2.extract_parameters(admin.password_hash).memory_cost == 19_456
        assert admin.password_changed_at == changed_at, "a re-hash is not a password change"
    # tokens issued before the re-hash stay valid, and the new hash verifies
    assert central.client.get("/v1/auth/me", headers=bearer(central.admin)).status_code == 200
    central.login("alice", PASSWORD)


# ----------------------------------------------------------------------------- request bodies
def _raw_request(port: int, head: str, body_parts: list[bytes], read_timeout: float = 10.0) -> bytes:
    """Send ``head`` and ``body_parts`` over a socket (stopping early if the server answers) and
    return what the server sent until it closed or went quiet."""
    with socket.create_connection(("127.0.0.1", port), timeout=read_timeout) as s:
        s.sendall(head.encode())
        for part in body_parts:
            try:
                s.sendall(part)
            except OSError:
                break
        data = b""
        s.settimeout(read_timeout)
        try:
            while b"\r\n\r\n" not in data or len(data) < data.index(b"\r\n\r\n") + 4 + _length(data):
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
        except (socket.timeout, ConnectionResetError):
            pass
        return data


def _length(data: bytes) -> int:
    for line in data.split(b"\r\n\r\n", 1)[0].split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            return int(line.split(b":", 1)[1])
    return 0


@pytest.fixture(scope="module")
def camera_process(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("camera")
    env = sample_camera_env(tmp, API_KEY, CAMERA_DETECTION_ENABLED="false", CAMERA_STILLS_ENABLED="false",
                            CAMERA_MAX_MJPEG_VIEWERS="2", CAMERA_VIEWER_WRITE_TIMEOUT="1",
                            CAMERA_MJPEG_FPS="10")
    proc = ServiceProcess(env, tmp / "camera.log").start()
    yield proc
    proc.stop()


def test_camera_body_over_limit_is_refused_by_content_length(camera_process):
    big = b'{"brightness": "' + b"x" * 200_000 + b'"}'
    r = httpx.patch(camera_process.base + "/v1/camera/controls", content=big,
                    headers={"X-API-Key": API_KEY, "content-type": "application/json"})
    assert r.status_code == 413
    assert "64 KiB limit of PATCH /v1/camera/controls" in r.json()["detail"]


def test_camera_chunked_body_is_cut_at_the_limit(camera_process):
    def chunks():
        yield b'{"brightness": "'
        for _ in range(300):  # 300 x 64 KiB = 19 MiB if the server kept reading
            yield b"x" * 65536

    r = httpx.patch(camera_process.base + "/v1/camera/controls", content=chunks(),
                    headers={"X-API-Key": API_KEY, "content-type": "application/json"}, timeout=30)
    assert r.status_code == 413 and "64 KiB limit" in r.json()["detail"]
    assert httpx.get(camera_process.base + "/health").status_code == 200


def test_camera_authenticates_before_reading_the_body(camera_process):
    """No credentials: 401 although only the headers and a first chunk were sent (the body never ends)."""
    head = ("PATCH /v1/camera/controls HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            "Transfer-Encoding: chunked\r\n\r\n")
    answer = _raw_request(camera_process.port, head, [b"10\r\n" + b"{" * 16 + b"\r\n"])
    assert answer.startswith(b"HTTP/1.1 401"), answer[:200]
    wrong = head.replace("Host: x", f"Host: x\r\nX-API-Key: {'w' * 40}")
    assert _raw_request(camera_process.port, wrong, [b"10\r\n" + b"{" * 16 + b"\r\n"]).startswith(b"HTTP/1.1 401")


def test_validation_errors_echo_only_an_excerpt(camera):
    from pcs_common.limits import excerpt

    r = camera.get("/v1/camera/snapshot", params={"width": "9" * 5000})
    assert r.status_code == 422
    assert len(r.text) < 600 and "9" * 100 not in r.text
    patch = camera.patch("/v1/camera/controls", json={"ae_flicker": "y" * 50_000})
    assert patch.status_code == 422 and len(patch.text) < 3000, len(patch.text)
    assert excerpt("z" * 1000).endswith("(1000 characters)")


@pytest.fixture()
def ingest_server(database_url, tmp_path):
    srv = CentralServer(database_url, data_dir=tmp_path / "data").start()
    srv.admin = srv.create_first_admin()
    srv.camera = paired_camera(srv, srv.admin, "Porch")
    yield srv
    srv.stop()


def test_central_photo_upload_is_capped_while_streaming(ingest_server):
    auth = basic(ingest_server.camera["device_id"], ingest_server.camera["device_secret"])
    boundary = "b0undary"

    def body():
        yield (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.jpg\"\r\n"
               "Content-Type: image/jpeg\r\n\r\n").encode()
        for _ in range(400):  # 25 MiB
            yield b"\xff" * 65536

    r = httpx.post(ingest_server.base + "/v1/ingest/photos", content=body(), auth=auth, timeout=60,
                   headers={"content-type": f"multipart/form-data; boundary={boundary}"})
    assert r.status_code == 413, r.text
    assert "11 MiB limit of POST /v1/ingest/photos" in r.json()["detail"]
    media = Path(ingest_server.state.faces.media.root)
    assert not any(p.is_file() for p in media.rglob("*")) if media.exists() else True


def test_central_upload_needs_credentials_before_the_body(ingest_server):
    head = ("POST /v1/ingest/photos HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=b\r\n"
            "Transfer-Encoding: chunked\r\n\r\n")
    answer = _raw_request(ingest_server.port, head, [b"4\r\n--b\n\r\n"])
    assert answer.startswith(b"HTTP/1.1 401"), answer[:300]
    assert b"unknown_device" in answer


def test_central_json_routes_have_a_small_limit(ingest_server):
    r = ingest_server.client.post("/v1/auth/token", content=b"username=" + b"a" * 100_000,
                                  headers={"content-type": "application/x-www-form-urlencoded"})
    assert r.status_code == 413 and "64 KiB limit of POST /v1/auth/token" in r.json()["detail"]
    r = ingest_server.client.post("/v1/people", content=b"[" * 70_000, headers={
        **bearer(ingest_server.admin), "content-type": "application/json"})
    assert r.status_code == 413


# ----------------------------------------------------------------------------- images
def test_jpeg_dimensions_are_read_from_the_frame_header():
    from pcs_common.limits import jpeg_dimensions

    data = jpeg(64, 48)
    assert jpeg_dimensions(data) == (64, 48)
    assert jpeg_dimensions(fake_dimensions(data, 30000, 30000)) == (30000, 30000)
    assert jpeg_dimensions(b"\xff\xd8\xff\xe0\x00") is None and jpeg_dimensions(b"GIF89a") is None


def test_central_refuses_huge_declared_images(ingest_server):
    bomb = fake_dimensions(jpeg(64, 48), 30000, 30000)
    r = post_events(ingest_server, ingest_server.camera, [event(None, crop=bomb), event(None, frame=bomb)])
    assert r.status_code == 200, r.text
    reasons = [x["reason"] for x in r.json()["results"]]
    assert all(x and "30000x30000" in x and "Mpx" in x for x in reasons), reasons
    auth = basic(ingest_server.camera["device_id"], ingest_server.camera["device_secret"])
    photo = ingest_server.client.post(
        "/v1/ingest/photos", auth=auth, files={"file": ("a.jpg", bomb, "image/jpeg")},
        data={"item_id": uuid.uuid4().hex, "kind": "still", "captured_at": "2026-11-22T10:00:00Z"})
    assert photo.status_code == 422 and "30000x30000" in photo.json()["detail"]
    person = ingest_server.client.post("/v1/people", json={"name": "Ann"}, headers=bearer(ingest_server.admin))
    assert person.status_code in (200, 201), person.text
    enrol = ingest_server.client.post(f"/v1/people/{person.json()['id']}/faces", headers=bearer(ingest_server.admin),
                                      files={"file": ("p.jpg", bomb, "image/jpeg")})
    assert enrol.status_code == 422 and "30000x30000" in enrol.json()["detail"], enrol.text


# ----------------------------------------------------------------------------- NaN and Infinity
NON_FINITE = ["NaN", "Infinity", "-Infinity", "1e309"]


@pytest.mark.parametrize("value", NON_FINITE)
@pytest.mark.parametrize("body", ['{"brightness": %s}', '{"roi": [%s, 0, 1, 1]}', '{"day_night_dwell": %s}',
                                  '{"colour_gains": [%s, 1.5]}'])
def test_camera_controls_non_finite_numbers_are_422(camera, body, value):
    r = camera.patch("/v1/camera/controls", content=body % value, headers={"content-type": "application/json"})
    assert r.status_code == 422, r.text
    assert r.json()["detail"]


@pytest.mark.parametrize("value", NON_FINITE)
def test_camera_manual_exposure_non_finite_is_422(camera, value):
    for body in ('{"exposure_us": %s, "gain": 2}', '{"exposure_us": 20000, "gain": %s}'):
        r = camera.post("/v1/camera/manual_exposure", content=body % value, headers={"content-type": "application/json"})
        assert r.status_code == 422, r.text


def _json_body_routes(openapi: dict) -> list[tuple[str, str, dict]]:
    routes = []
    for path, item in openapi["paths"].items():
        for method, op in item.items():
            content = (op.get("requestBody") or {}).get("content", {})
            if "application/json" in content:
                routes.append((method.upper(), path, content["application/json"].get("schema", {})))
    return routes


def _non_finite_bodies(schema: dict, components: dict) -> list[str]:
    """Bodies with NaN/Infinity in every number field the schema names, and in an unknown field."""
    if "$ref" in schema:
        schema = components[schema["$ref"].rsplit("/", 1)[1]]
    props = schema.get("properties", {})
    out = ['{"x": NaN}', "NaN", "[Infinity]"]
    for value in NON_FINITE:
        out.append("{" + ", ".join(f'"{name}": {value}' for name in props) + "}" if props else '{"v": %s}' % value)
    return out


def test_every_camera_json_route_answers_non_finite_numbers_with_4xx(camera):
    openapi = camera.get("/openapi.json").json()
    components = openapi.get("components", {}).get("schemas", {})
    routes = _json_body_routes(openapi)
    assert len(routes) >= 5, routes
    for method, path, schema in routes:
        concrete = path.replace("{still_id}", "0" * 32).replace("{", "").replace("}", "")
        for body in _non_finite_bodies(schema, components):
            r = camera.request(method, concrete, content=body, headers={"content-type": "application/json"})
            assert 400 <= r.status_code < 500, (method, path, body, r.status_code, r.text[:300])


def test_every_central_json_route_answers_non_finite_numbers_with_4xx(ingest_server):
    openapi = ingest_server.client.get("/openapi.json").json()
    components = openapi.get("components", {}).get("schemas", {})
    routes = _json_body_routes(openapi)
    assert len(routes) >= 8, routes
    for method, path, schema in routes:
        concrete = path
        for name in ("person_id", "camera_id", "admin_id", "token_id", "group_id", "observation_id", "photo_id"):
            concrete = concrete.replace("{" + name + "}", "missing")
        for body in _non_finite_bodies(schema, components):
            r = ingest_server.client.request(method, concrete, content=body, headers={
                **bearer(ingest_server.admin), "content-type": "application/json"})
            assert 400 <= r.status_code < 500 or r.status_code in (200, 201, 204), (method, path, body, r.text[:300])
            assert r.status_code < 500, (method, path, body, r.status_code, r.text[:300])
    r = post_events(ingest_server, ingest_server.camera, [event([float("nan")] * 128)])
    assert r.status_code == 200 and r.json()["results"][0]["status"] == "rejected"


# ----------------------------------------------------------------------------- live viewers
def _stalled_viewer(port: int, path: str) -> socket.socket:
    """A client that asks for ``path`` and never reads (tiny receive buffer, so the server's writes stall)."""
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect(("127.0.0.1", port))
    s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nX-API-Key: {API_KEY}\r\n\r\n".encode())
    return s


def _answer(base: str, path: str) -> tuple[int, str]:
    with httpx.stream("GET", base + path, headers={"X-API-Key": API_KEY}, timeout=5) as r:
        return r.status_code, (r.read().decode() if r.status_code != 200 else "")


def _closed_by_server(s: socket.socket, within: float) -> bool:
    """True when the server closes (EOF or reset) ``s`` within ``within`` s while we drain it."""
    deadline = time.monotonic() + within
    s.settimeout(0.5)
    while time.monotonic() < deadline:
        try:
            if not s.recv(65536):
                return True
        except ConnectionResetError:
            return True
        except socket.timeout:
            continue
    return False


def test_camera_caps_viewers_and_drops_the_stalled_ones(camera_process):
    """Two viewers that never read fill CAMERA_MAX_MJPEG_VIEWERS=2: a third gets 503; once they have
    stalled for CAMERA_VIEWER_WRITE_TIMEOUT (1 s) they are dropped and a new viewer is served."""
    stalled = [_stalled_viewer(camera_process.port, "/v1/camera/mjpeg") for _ in range(2)]
    try:
        status, text = wait_until(lambda: (lambda a: a if a[0] == 503 else None)(
            _answer(camera_process.base, "/v1/camera/mjpeg")), 10, 0.1, "third viewer refused")
        assert "CAMERA_MAX_MJPEG_VIEWERS=2" in text
        # the stalled ones fill their buffers, time out and are dropped: a new viewer gets frames
        wait_until(lambda: _answer(camera_process.base, "/v1/camera/mjpeg")[0] == 200, 30, 0.3, "slot freed")
        # both dropped by the server (its log says so) before we read: a viewer drained here earlier
        # would be a reading viewer again
        wait_until(lambda: camera_process.log().count("client stopped reading") >= 2, 30, 0.2,
                   "both stalled viewers dropped")
        assert all(_closed_by_server(s, 10) for s in stalled)
        assert httpx.get(camera_process.base + "/health", timeout=1).status_code == 200
    finally:
        for s in stalled:
            s.close()
    assert "client stopped reading" in camera_process.log()


def test_an_event_stream_client_that_reads_is_kept(camera_process):
    """The write deadline only drops clients that stop reading: a reading SSE client keeps its stream."""
    with httpx.stream("GET", camera_process.base + "/v1/events/stream", headers={"X-API-Key": API_KEY},
                      timeout=10) as r:
        assert r.status_code == 200
        first = next(r.iter_bytes())
        assert first.startswith(b"retry:")
