"""Delivery through faults, with real processes: the camera service (``python -m pi_camera_service``
on the sample video, whose face yields track events) and a small ingest server written here (FastAPI
served by uvicorn on a real socket), storing items by ``item_id`` in memory.

(a) central down for a while, then up: every queued item arrives, once.
(b) SIGKILL of the camera while a batch is in flight (the server stored it and holds its answer):
    after a restart the batch is sent again and answered ``duplicate``; nothing is lost.
(c) the connection is cut after the server stored a batch, before the answer arrives: the retry is
    answered ``duplicate``; the item is stored once and leaves the camera's outbox.
"""

from __future__ import annotations

import asyncio
import base64
import json
import sqlite3
import threading
from collections import Counter
from pathlib import Path

import httpx
import pytest
import uvicorn
from fastapi import FastAPI, Form, Request, UploadFile
from fastapi.responses import JSONResponse

from pi_camera_service.central_link import DeviceCredentials, store_credentials
from tests.support.net import free_port, wait_until
from tests.support.processes import ServiceProcess, sample_camera_env

API_KEY = "outbox-test-key-0123456789"
DEVICE = ("dev-1", "s3cret-device-secret")


class IngestServer:
    """The ingest side of the central protocol (docs/outbox.md), idempotent by ``item_id``.

    ``stored``: item_id -> item; ``answers``: Counter of (item_id, status); ``hold_first_batch``: s to
    hold the answer of the first events request after storing it; ``cut_batches``: events requests
    whose connection is closed after storing, before the answer.
    """

    def __init__(self, port: int) -> None:
        self.port = port
        self.stored: dict[str, dict] = {}
        self.photos: dict[str, bytes] = {}
        self.answers: Counter = Counter()
        self.batches: list[list[str]] = []
        self.hold_first_batch = 0.0
        self.cut_batches = 0
        self.cut_ids: list[str] = []
        self.holding = threading.Event()
        self.lock = threading.Lock()
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.app = self._build()

    def _authorized(self, request: Request) -> bool:
        expected = "Basic " + base64.b64encode(f"{DEVICE[0]}:{DEVICE[1]}".encode()).decode()
        return request.headers.get("authorization") == expected

    def _build(self):
        app = FastAPI()

        @app.post("/v1/devices/heartbeat")
        async def heartbeat(request: Request):
            if not self._authorized(request):
                return JSONResponse({"error": "unknown_device"}, 401)
            return {"camera_name": "x", "heartbeat_interval_s": 30}

        @app.post("/v1/ingest/events")
        async def events(request: Request):
            if not self._authorized(request):
                return JSONResponse({"error": "unknown_device"}, 401)
            body = await request.json()
            assert len(body["items"]) <= 100
            results = []
            with self.lock:
                first = not self.batches
                self.batches.append([i["item_id"] for i in body["items"]])
                for item in body["items"]:
                    item_id = item["item_id"]
                    if item_id in self.stored:
                        status = "duplicate"
                    else:
                        self.stored[item_id] = item
                        status = "stored"
                    self.answers[(item_id, status)] += 1
                    results.append({"item_id": item_id, "status": status, "reason": None})
            if first and self.hold_first_batch:
                self.holding.set()
                for _ in range(int(self.hold_first_batch * 10)):  # ends early once the test clears it
                    if not self.hold_first_batch:
                        break
                    await asyncio.sleep(0.1)
            return {"results": results}

        @app.post("/v1/ingest/photos")
        async def photos(request: Request, item_id: str = Form(), kind: str = Form(), captured_at: str = Form(),
                         metadata: str = Form(), file: UploadFile = None):
            if not self._authorized(request):
                return JSONResponse({"error": "unknown_device"}, 401)
            data = await file.read()
            json.loads(metadata)
            with self.lock:
                status = "duplicate" if item_id in self.photos else "stored"
                self.photos.setdefault(item_id, data)
                self.answers[(item_id, status)] += 1
            return {"item_id": item_id, "status": status}

        async def asgi(scope, receive, send):
            if scope["type"] != "http" or scope["path"] != "/v1/ingest/events" or self.cut_batches <= 0:
                return await app(scope, receive, send)
            self.cut_batches -= 1
            held: list[dict] = []

            async def keep(message):
                held.append(message)

            await app(scope, receive, keep)  # the items are stored...
            with self.lock:
                self.cut_ids.extend(self.batches[-1])
            await send(held[0])  # ...the status line goes out, then the connection drops mid-answer
            raise ConnectionAbortedError("test: connection cut before the answer's body")

        return asgi

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> IngestServer:
        config = uvicorn.Config(self.app, host="127.0.0.1", port=self.port, log_level="critical")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)
        self._thread.start()
        wait_until(lambda: self._server.started, 15, 0.05, "ingest server started")
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
            self._thread.join(15)

    def stored_once(self) -> bool:
        """Every id was answered ``stored`` exactly once."""
        return all(self.answers[(i, "stored")] == 1 for i in [*self.stored, *self.photos])


def paired_camera(tmp_path: Path, central_port: int, **overrides: str) -> ServiceProcess:
    """A camera process whose state directory already holds credentials for ``central_port``."""
    central_url = f"http://127.0.0.1:{central_port}"
    store_credentials(tmp_path / "state", DeviceCredentials(central_url, DEVICE[0], DEVICE[1], "x",
                                                            "2024-01-01T00:00:00Z"))
    env = sample_camera_env(tmp_path, API_KEY, **{
        "CAMERA_CENTRAL_URL": central_url,
        "CAMERA_OUTBOX_UPDATE_INTERVAL": "1",
        "CAMERA_CENTRAL_RETRY_MAX_DELAY": "2",
        "CAMERA_DETECTION_FPS": "5",
        "CAMERA_LOG_LEVEL": "INFO",
        **overrides,
    })
    return ServiceProcess(env, tmp_path / "camera.log")


def outbox_status(camera: ServiceProcess) -> dict:
    r = httpx.get(camera.base + "/v1/outbox", headers={"X-API-Key": API_KEY}, timeout=5)
    assert r.status_code == 200, r.text
    return r.json()


def queued_ids(tmp_path: Path) -> set[str]:
    """Item ids in the camera's outbox database right now (a second reader of the WAL database)."""
    db = sqlite3.connect(tmp_path / "state" / "outbox.db", timeout=10)
    try:
        return {row[0] for row in db.execute("SELECT item_id FROM items")}
    finally:
        db.close()


def check_items(server: IngestServer) -> None:
    """What arrived is well formed (protocol shapes)."""
    for item in server.stored.values():
        assert len(item["item_id"]) == 32 and item["type"] == "face_event"
        assert item["event"] in ("appeared", "updated") and item["captured_at"].endswith("Z")
        for f in item["faces"]:
            assert len(f["box"]) == 4 and all(isinstance(v, int) for v in f["box"])
            assert f["encoding"] is None or len(f["encoding"]) == 128
            if f["crop_jpeg"] is not None:
                assert base64.b64decode(f["crop_jpeg"])[:2] == b"\xff\xd8"


@pytest.fixture()
def cleanup():
    things: list = []
    yield things
    for thing in reversed(things):
        thing.stop()


def test_central_down_then_up_delivers_every_item_once(tmp_path, cleanup):
    port = free_port()
    camera = paired_camera(tmp_path, port, CAMERA_OUTBOX_STILLS="true", CAMERA_STILLS_INTERVAL="1").start()
    cleanup.append(camera)
    down = wait_until(lambda: (s := outbox_status(camera))["depth"] >= 4 and s["by_kind"]["photo"] >= 1
                      and s["state"] == "retrying" and s, 60, 0.3, "items queued while the central server is down")
    assert down["last_error"] and down["sent"] == 0
    waiting = queued_ids(tmp_path)
    server = IngestServer(port).start()
    cleanup.append(server)
    wait_until(lambda: waiting <= set(server.stored) | set(server.photos), 60, 0.2, "the queued items delivered")
    up = wait_until(lambda: (s := outbox_status(camera))["last_error"] is None and s["sent"] >= len(waiting) and s,
                    30, 0.2, "the camera counted them sent")
    # one still marked for upload by hand; an unknown one is a 404
    headers = {"X-API-Key": API_KEY}
    still_id = httpx.get(camera.base + "/v1/stills/latest", headers=headers, timeout=5).json()["id"]
    marked = httpx.post(camera.base + f"/v1/stills/{still_id}/upload", headers=headers, timeout=5)
    assert marked.status_code == 202, marked.text
    wait_until(lambda: marked.json()["item_id"] in server.photos, 30, 0.2, "the marked still delivered")
    assert httpx.post(camera.base + "/v1/stills/20000101_000000_000/upload", headers=headers,
                      timeout=5).status_code == 404
    assert httpx.get(camera.base + "/v1/outbox", timeout=5).status_code == 401
    camera.stop()
    assert up["state"] in ("idle", "sending") and up["dropped"] == 0 and up["rejected"] == 0
    assert server.stored_once()
    assert all(data[:2] == b"\xff\xd8" for data in server.photos.values())
    assert any(f["crop_jpeg"] for item in server.stored.values() for f in item["faces"])
    check_items(server)
    left = queued_ids(tmp_path)
    assert not (waiting & left)


def test_sigkill_while_a_batch_is_in_flight_loses_and_doubles_nothing(tmp_path, cleanup):
    port = free_port()
    server = IngestServer(port)
    server.hold_first_batch = 30.0  # stored, answer held: the camera dies waiting for it
    server.start()
    cleanup.append(server)
    camera = paired_camera(tmp_path, port).start(wait=False)
    assert server.holding.wait(30), camera.log()
    in_flight = set(server.batches[0])
    before = queued_ids(tmp_path)
    assert in_flight <= before  # not acknowledged, so still queued
    camera.proc.kill()  # SIGKILL
    camera.proc.wait(10)
    camera._log.close()
    assert queued_ids(tmp_path) >= in_flight  # the database survived the kill with the items

    server.hold_first_batch = 0.0
    again = ServiceProcess(camera.env, tmp_path / "camera2.log").start()
    cleanup.append(again)
    wait_until(lambda: not (before & queued_ids(tmp_path)), 20, 0.3, "the items queued before the kill delivered")
    assert before <= set(server.stored)
    assert all(server.answers[(i, "duplicate")] >= 1 for i in in_flight)  # re-sent, not stored again
    assert server.stored_once()
    status = outbox_status(again)
    assert status["dropped"] == 0 and status["rejected"] == 0 and status["sent"] >= len(before)
    check_items(server)


def test_answer_lost_in_flight_is_answered_duplicate_on_retry(tmp_path, cleanup):
    port = free_port()
    server = IngestServer(port)
    server.cut_batches = 1
    server.start()
    cleanup.append(server)
    camera = paired_camera(tmp_path, port).start()
    cleanup.append(camera)
    wait_until(lambda: server.cut_ids, 30, 0.2, "a batch stored and its answer cut")
    cut = set(server.cut_ids)
    wait_until(lambda: all(server.answers[(i, "duplicate")] for i in cut), 20, 0.2, "the cut batch re-sent")
    wait_until(lambda: not (cut & queued_ids(tmp_path)), 10, 0.2, "the cut batch acknowledged on the camera")
    assert server.stored_once()
    assert all(server.answers[(i, "stored")] == 1 for i in cut)
    status = outbox_status(camera)
    assert status["sent"] >= len(cut) and status["dropped"] == 0
    assert "outbox: delivery failed" in camera.log()
    check_items(server)
