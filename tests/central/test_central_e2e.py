"""Pairing end to end between a real camera process and a real central server process over loopback
HTTP: the code shown by the camera, wrong/expired/reused codes, the brute-force cut-off, credentials
stored 0600, heartbeats into the fleet view, and disable/unpair taking effect at once — on SQLite and
PostgreSQL."""

from __future__ import annotations

import json
import re
import stat
from pathlib import Path

import httpx
import pytest

from tests.support.central_server import bearer
from tests.support.e2e import (
    API_KEY,
    admin_token,
    camera_pairing,
    start_camera,
    start_central,
    wait_for_code,
    wait_for_state,
)
from tests.support.net import free_port, wait_until
from tests.support.processes import CentralProcess, ServiceProcess

pytestmark = pytest.mark.e2e


@pytest.fixture()
def central_and_camera(tmp_path, database_url):
    central = start_central(tmp_path, database_url, CENTRAL_PAIRING_FAILURES_PER_ADDRESS="4")
    camera = None
    try:
        token = admin_token(central)
        camera = start_camera(tmp_path, central)
        yield central, camera, token
    finally:
        if camera is not None:
            camera.stop()
        central.stop()


def test_pairing_between_two_real_processes(central_and_camera, tmp_path):
    central, camera, token = central_and_camera
    c = httpx.Client(base_url=central.base, headers=bearer(token), timeout=30)
    code = wait_for_code(camera)
    assert re.fullmatch(r"[A-HJ-NP-Za-km-np-z2-9]{8}", code)
    assert f"pairing code: {code}" in camera.log()

    # A wrong code is refused and pairs nothing; the camera keeps waiting with its code.
    wrong = c.post("/v1/cameras/pair", json={"code": code[::-1] if code[::-1] != code else "ABCDEFGH", "name": "x"})
    assert wrong.status_code == 404 and wrong.json()["error"] == "wrong_code"
    assert c.get("/v1/cameras").json() == []

    paired = c.post("/v1/cameras/pair", json={"code": code, "name": "Front door"})
    assert paired.status_code == 201, paired.text
    camera_id = paired.json()["id"]
    state = wait_for_state(camera, "paired")
    assert state["device_id"] == camera_id and state["camera_name"] == "Front door" and "device_secret" not in state

    creds_file = tmp_path / "state" / "central-credentials.json"
    assert stat.S_IMODE(creds_file.stat().st_mode) == 0o600
    creds = json.loads(creds_file.read_text())
    assert creds["device_id"] == camera_id and creds["central_url"] == central.base

    # Heartbeats fill the fleet view with the camera's real health.
    def online() -> dict | None:
        cam = c.get(f"/v1/cameras/{camera_id}").json()
        return cam if cam["state"] == "online" and (cam["detection_fps"] or 0) > 0 else None

    cam = wait_until(online, 30, 0.3, "camera online with detection fps in the fleet view")
    assert cam["streaming"] is False and cam["api_url"] == f"http://127.0.0.1:{camera.port}"
    assert cam["mjpeg_url"] == f"http://127.0.0.1:{camera.port}/v1/camera/mjpeg"
    # The device credentials open the camera's own API (the central server's way in).
    status = httpx.get(camera.base + "/v1/camera/status", auth=(creds["device_id"], creds["device_secret"]))
    assert status.status_code == 200

    reused = c.post("/v1/cameras/pair", json={"code": code, "name": "again"})
    assert reused.status_code == 409 and reused.json()["error"] == "used_code"

    # Disable: the camera is refused at its next heartbeat, keeps its credentials, resumes when enabled.
    c.patch(f"/v1/cameras/{camera_id}", json={"disabled": True})
    wait_for_state(camera, "disabled")
    assert creds_file.exists()
    c.patch(f"/v1/cameras/{camera_id}", json={"disabled": False})
    wait_for_state(camera, "paired")

    # Unpair: refused at once; the camera forgets its credentials and shows a new code.
    assert c.delete(f"/v1/cameras/{camera_id}").status_code == 204
    new_code = wait_for_code(camera, not_code=code)
    assert not creds_file.exists()
    assert httpx.get(camera.base + "/v1/camera/status",
                     auth=(creds["device_id"], creds["device_secret"])).status_code == 401
    assert c.post("/v1/cameras/pair", json={"code": new_code, "name": "Front door"}).status_code == 201
    wait_for_state(camera, "paired")
    cameras = c.get("/v1/cameras").json()
    assert len(cameras) == 1 and cameras[0]["id"] != camera_id  # unpairing deleted the old record


def test_expired_code_is_refused_and_replaced_and_guessing_is_cut_off(tmp_path, database_url):
    central = start_central(tmp_path, database_url, CENTRAL_PAIRING_CODE_TTL="5",
                            CENTRAL_PAIRING_FAILURES_PER_ADDRESS="3")
    camera = None
    try:
        token = admin_token(central)
        c = httpx.Client(base_url=central.base, headers=bearer(token), timeout=30)
        camera = start_camera(tmp_path, central)
        first = wait_for_code(camera)
        second = wait_for_code(camera, not_code=first)  # the first one expired; the camera asked again
        late = c.post("/v1/cameras/pair", json={"code": first, "name": "late"})
        assert late.status_code == 410 and late.json()["error"] == "expired_code"
        for guess in ("Guess222", "Guess333"):
            assert c.post("/v1/cameras/pair", json={"code": guess, "name": "x"}).status_code == 404
        cut = c.post("/v1/cameras/pair", json={"code": second, "name": "x"})
        assert cut.status_code == 429 and int(cut.headers["Retry-After"]) > 0
        assert camera_pairing(camera)["state"] == "waiting_for_admin"
        stats = c.get("/v1/pairing/stats").json()["refused_last_hour"]
        assert stats == {"expired": 1, "wrong": 2}
    finally:
        if camera is not None:
            camera.stop()
        central.stop()


def test_discovery_of_a_real_camera_by_the_central_server(tmp_path, database_url, loopback_multicast):
    """mDNS on the loopback interface between the two processes, then the scan fallback, then the
    "paired" mark once the camera is paired."""
    central = start_central(tmp_path, database_url, CENTRAL_MDNS_ENABLED="true", CENTRAL_MDNS_INTERFACES="127.0.0.1")
    camera = None
    try:
        token = admin_token(central)
        c = httpx.Client(base_url=central.base, headers=bearer(token), timeout=30)
        camera = start_camera(tmp_path, central, CAMERA_MDNS_ENABLED="true", CAMERA_MDNS_INTERFACES="127.0.0.1",
                              CAMERA_ADVERTISED_HOST="127.0.0.1", CAMERA_MDNS_NAME="Porch camera")
        hardware_id = httpx.get(camera.base + "/health").json()["hardware_id"]

        def listed() -> dict | None:
            return next((d for d in c.get("/v1/discovery").json() if d["hardware_id"] == hardware_id), None)

        found = wait_until(listed, 20, 0.2, "the camera in the central server's discovery list")
        assert found["source"] == "mdns" and found["paired"] is False and found["camera_id"] is None
        assert (found["host"], found["port"]) == ("127.0.0.1", camera.port)
        assert found["api_path"] == "/v1" and found["rtsp_url"].startswith("rtsp://127.0.0.1:")
        assert found["name"].startswith("Porch camera")

        scanned = c.post("/v1/discovery/scan", json={"cidr": "127.0.0.0/29", "port": camera.port})
        assert scanned.status_code == 200
        assert [d["hardware_id"] for d in scanned.json()] == [hardware_id]
        bad = c.post("/v1/discovery/scan", json={"cidr": "10.0.0.0/8"})
        assert bad.status_code == 422 and "/20" in bad.json()["detail"]

        code = wait_for_code(camera)
        camera_id = c.post("/v1/cameras/pair", json={"code": code, "name": "Porch"}).json()["id"]
        found = wait_until(lambda: (d := listed()) and d["paired"] and d, 20, 0.2, "discovery marks it paired")
        assert found["camera_id"] == camera_id and found["camera_name"] == "Porch"

        camera.stop()  # goodbye packets: the camera leaves the mDNS list
        camera = None
        wait_until(lambda: not any(d["hardware_id"] == hardware_id and d["source"] == "mdns"
                                   for d in c.get("/v1/discovery").json()), 20, 0.2,
                   "the stopped camera's mDNS entry is gone")
    finally:
        if camera is not None:
            camera.stop()
        central.stop()


# ----------------------------------------------------------------------------- detections and people
def pair_camera(c: httpx.Client, camera: ServiceProcess, name: str) -> str:
    """Pair ``camera`` through the central API under ``name``; returns its camera id once it reports in."""
    camera_id = c.post("/v1/cameras/pair", json={"code": wait_for_code(camera), "name": name}).json()["id"]
    wait_for_state(camera, "paired")
    return camera_id


def outbox(camera: ServiceProcess) -> dict:
    return httpx.get(camera.base + "/v1/outbox", headers={"X-API-Key": API_KEY}, timeout=10).json()


def camera_outbox_after_stop(camera: ServiceProcess) -> tuple[int, set[str]]:
    """``(acknowledged items, ids still queued)`` from a stopped camera's outbox database."""
    return camera_outbox_after_stop_dir(Path(camera.env["CAMERA_STATE_DIR"]))


def camera_outbox_after_stop_dir(state_dir: Path) -> tuple[int, set[str]]:
    """``(acknowledged items, ids still queued)`` from the outbox database in ``state_dir``."""
    import sqlite3

    db = sqlite3.connect(state_dir / "outbox.db")
    try:
        sent = db.execute("SELECT value FROM counters WHERE name = 'sent'").fetchone()
        left = {row[0] for row in db.execute("SELECT item_id FROM items")}
    finally:
        db.close()
    return int(sent[0]) if sent else 0, left


def ingested(database_url: str, camera_id: str) -> list[tuple[str, str]]:
    """``(item_id, kind)`` of every item the central server stored for ``camera_id`` (read from its database)."""
    import sqlalchemy

    engine = sqlalchemy.create_engine(database_url)
    with engine.connect() as conn:
        rows = conn.execute(sqlalchemy.text("SELECT item_id, kind FROM ingested_items WHERE camera_id = :c"),
                            {"c": camera_id}).all()
    engine.dispose()
    return [tuple(r) for r in rows]


def test_a_person_is_recognised_across_two_real_cameras_and_nothing_is_lost_in_an_outage(tmp_path, database_url):
    central = start_central(tmp_path, database_url)
    cameras: list[ServiceProcess] = []
    try:
        token = admin_token(central)
        c = httpx.Client(base_url=central.base, headers=bearer(token), timeout=60)
        for name in ("front", "back"):
            workdir = tmp_path / name
            workdir.mkdir()
            cameras.append(start_camera(workdir, central, CAMERA_OUTBOX_UPDATE_INTERVAL="1",
                                        CAMERA_STILLS_ENABLED="true"))
        ids = [pair_camera(c, cam, name) for cam, name in zip(cameras, ("Front door", "Back door"))]

        # Enrol the person from a snapshot of the first camera (a real frame of the sample video).
        # As a user retakes a photo: the sample turns its head in some frames (photo-mode recall ~0.95,
        # docs/performance.md), so up to 5 snapshots, each refused with a 422 that says why.
        person = c.post("/v1/people", json={"name": "Carphone"}).json()
        for _ in range(5):
            snap = httpx.get(cameras[0].base + "/v1/camera/snapshot", headers={"X-API-Key": API_KEY}, timeout=30)
            enrolled = c.post(f"/v1/people/{person['id']}/faces",
                              files={"file": ("me.jpg", snap.content, "image/jpeg")})
            if enrolled.status_code != 422:
                break
            assert "the photo must show" in enrolled.json()["detail"], enrolled.text
        assert enrolled.status_code == 201, enrolled.text

        def seen_on_both() -> list | None:
            rows = c.get("/v1/sightings", params={"person_id": person["id"]}).json()
            return rows if {r["camera_id"] for r in rows} == set(ids) else None

        sightings = wait_until(seen_on_both, 60, 0.5, "sightings of the person on both cameras")
        assert {r["camera_name"] for r in sightings} == {"Front door", "Back door"}
        last = c.get(f"/v1/people/{person['id']}/last-seen").json()
        assert last["person_name"] == "Carphone" and last["sighting"]["camera_name"] in ("Front door", "Back door")

        # Central down: both cameras keep recording into their outboxes; a still and a snapshot are
        # marked for upload.
        central.stop()
        still = httpx.post(cameras[0].base + "/v1/stills", headers={"X-API-Key": API_KEY}, timeout=30).json()
        queued = httpx.post(cameras[0].base + f"/v1/stills/{still['id']}/upload", headers={"X-API-Key": API_KEY})
        assert queued.status_code == 202
        snap_queued = httpx.post(cameras[0].base + "/v1/camera/snapshot/upload", params={"width": 160},
                                 headers={"X-API-Key": API_KEY})
        assert snap_queued.status_code == 202 and snap_queued.json()["bytes"] > 1000
        wait_until(lambda: all(outbox(cam)["depth"] >= 3 for cam in cameras), 30, 0.5, "items queued while central is down")
        assert all(outbox(cam)["last_error"] for cam in cameras)

        central = CentralProcess(central.env, tmp_path / "central-2.log").start()
        wait_until(lambda: all(outbox(cam)["depth"] == 0 for cam in cameras), 60, 0.5, "outboxes drained")
        for cam in cameras:
            cam.stop()  # no new items from here on
        kinds = set()
        for cam, camera_id in zip(cameras, ids):
            acked, left = camera_outbox_after_stop(cam)
            stored = ingested(database_url, camera_id)
            stored_ids = [i for i, _ in stored]
            assert len(stored_ids) == len(set(stored_ids)), "an item was stored twice"
            # Every item the camera forgot was acknowledged, and exactly those arrived (plus, at most,
            # items still queued whose acknowledgement was cut by the shutdown).
            assert len(set(stored_ids) - left) == acked > 0
            kinds |= {k for _, k in stored}
        assert kinds == {"face_event", "still", "snapshot"}
    finally:
        for cam in cameras:
            cam.stop()
        central.stop()


class FaultProxy:
    """A TCP proxy between a camera and the real central server that can lose or hold the answers to
    ``POST /v1/ingest/...`` after the server has processed the request (what a network cut or a
    camera crash at the worst moment looks like). Modes: ``pass``, ``drop`` (close the connection
    instead of answering), ``hold`` (never answer)."""

    def __init__(self, target_port: int) -> None:
        import asyncio
        import threading

        self.target_port = target_port
        self.port = free_port()
        self.mode = "pass"
        self.dropped = 0
        self.duplicates_seen = 0
        self.held = threading.Event()
        self._loop = asyncio.new_event_loop()
        started = threading.Event()

        async def serve() -> None:
            self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)
            started.set()

        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        asyncio.run_coroutine_threadsafe(serve(), self._loop)
        assert started.wait(10)
        self.url = f"http://127.0.0.1:{self.port}"

    async def _handle(self, client_reader, client_writer) -> None:
        import asyncio

        try:
            server_reader, server_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            client_writer.transport.abort()
            return
        last = {"ingest": False}

        async def upstream() -> None:
            while data := await client_reader.read(65536):
                if data.startswith((b"POST ", b"GET ", b"PUT ", b"DELETE ", b"PATCH ")):
                    last["ingest"] = data.startswith(b"POST /v1/ingest/")
                server_writer.write(data)
                await server_writer.drain()
            server_writer.close()

        async def downstream() -> None:
            while data := await server_reader.read(65536):
                if last["ingest"] and self.mode == "drop":
                    self.dropped += 1
                    client_writer.transport.abort()
                    server_writer.close()
                    return
                if last["ingest"] and self.mode == "hold":
                    self.held.set()
                    await asyncio.sleep(3600)
                self.duplicates_seen += data.count(b'"status":"duplicate"')
                client_writer.write(data)
                await client_writer.drain()
            client_writer.close()

        await asyncio.gather(upstream(), downstream(), return_exceptions=True)

    def close(self) -> None:
        import asyncio

        async def shutdown() -> None:
            self._server.close()
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(shutdown(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()


def test_lost_acknowledgements_and_a_camera_killed_mid_send_lose_and_duplicate_nothing(tmp_path, database_url):
    central = start_central(tmp_path, database_url)
    proxy = FaultProxy(central.port)
    camera = None
    try:
        token = admin_token(central)
        c = httpx.Client(base_url=central.base, headers=bearer(token), timeout=60)
        env = {"CAMERA_OUTBOX_UPDATE_INTERVAL": "1", "CAMERA_CENTRAL_URL": proxy.url}
        camera = start_camera(tmp_path, central, **env)
        camera_id = pair_camera(c, camera, "Hall")
        wait_until(lambda: ingested(database_url, camera_id), 30, 0.3, "first items stored")

        # The network cuts the answer of two uploads the server has stored: the retries are duplicates.
        proxy.mode = "drop"
        wait_until(lambda: proxy.dropped >= 2, 30, 0.2, "two acknowledgements lost")
        proxy.mode = "pass"
        wait_until(lambda: proxy.duplicates_seen >= 1, 30, 0.2, "a retry answered 'duplicate'")

        # The camera is killed while the server's answer is on its way.
        proxy.held.clear()
        proxy.mode = "hold"
        assert proxy.held.wait(30), "no upload to hold"
        camera.proc.kill()
        camera.proc.wait(10)
        camera.stop()
        before_restart = proxy.duplicates_seen
        proxy.mode = "pass"
        camera = ServiceProcess(camera.env, tmp_path / "camera-2.log").start()
        wait_until(lambda: proxy.duplicates_seen > before_restart, 30, 0.2,
                   "the held batch re-sent after the restart and answered 'duplicate'")
        wait_until(lambda: outbox(camera)["depth"] <= 2, 30, 0.3, "outbox drained after the restart")
        stats = outbox(camera)
        assert stats["dropped"] == 0 and stats["rejected"] == 0
        camera.stop()
        camera = None

        acked, left = camera_outbox_after_stop_dir(tmp_path / "state")
        stored_ids = [i for i, _ in ingested(database_url, camera_id)]
        assert len(stored_ids) == len(set(stored_ids))
        assert len(set(stored_ids) - left) == acked > 0
    finally:
        if camera is not None:
            camera.stop()
        proxy.close()
        central.stop()
