"""The camera's real pairing client, heartbeat client and outbox sender against the real central app
(uvicorn on a loopback socket), on SQLite and PostgreSQL: a field one side sends and the other drops,
or expects and never gets, fails here."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from pcs_common.protocol import (
    ENCODING_LENGTH,
    HEARTBEAT_PATH,
    INGEST_EVENTS_PATH,
    INGEST_PHOTOS_PATH,
    PAIRING_REQUESTS_PATH,
    FaceEventItem,
    FaceIn,
    HeartbeatStatus,
)
from pi_camera_service.central_link import CentralLink
from pi_camera_service.controls.manager import CameraControls, default_store
from pi_camera_service.detection.detector import DetectionResult, Face, Profile
from pi_camera_service.detection.tracks import FaceTracker, TrackEvent
from pi_camera_service.config import load_settings
from pi_camera_service.events import EventLog
from pi_camera_service.outbox import Outbox
from pi_camera_service.outbox.recorder import DetectionRecorder, face_event_payload, queue_snapshot
from pi_camera_service.outbox.sender import OutboxSender
from pi_camera_service.sources import create_camera
from tests.support.central_server import CentralServer, bearer
from tests.support.net import wait_until
from tests.support.paths import SAMPLE

class RecordingTransport(httpx.AsyncBaseTransport):
    """The network, recording every request the camera sends (``attempted``: method, path, body bytes)
    and those the server answered (``sent``; one cancelled by the link stopping may be missing there)."""

    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.attempted: list[tuple[str, str, bytes]] = []
        self.sent: list[tuple[str, str, bytes]] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = await request.aread()
        self.attempted.append((request.method, request.url.path, body))
        response = await self.inner.handle_async_request(request)
        self.sent.append((request.method, request.url.path, body))
        return response

    def json_bodies(self, path: str, attempted: bool = False) -> list[dict[str, Any]]:
        """The JSON bodies POSTed to ``path`` that were answered (or only sent, with ``attempted``)."""
        requests = self.attempted if attempted else self.sent
        return [json.loads(body) for method, p, body in requests if p == path and method == "POST"]

    def kept_heartbeat(self, stored: dict[str, Any]) -> dict[str, Any]:
        """The status of the heartbeat whose report the server kept (the last one, or one the link sent
        as it stopped), recognised by its ``uptime_s``."""
        beats = [b["status"] for b in self.json_bodies(HEARTBEAT_PATH, attempted=True)]
        return next((b for b in reversed(beats) if b.get("uptime_s") == stored.get("uptime_s")), beats[-1])

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


def heartbeat_problems(produced: dict[str, Any], sent: dict[str, Any], stored: dict[str, Any]) -> list[str]:
    """Where the camera's status report (``produced`` by its real status function), what went over the
    wire (``sent``) and what the central server keeps (``stored``) disagree; empty when they agree."""
    problems = []
    fields = set(HeartbeatStatus.model_fields)
    if unknown := sorted(set(produced) - fields):
        problems.append(f"the camera reports fields the protocol does not know: {unknown}")
    if never_sent := sorted(fields - set(produced)):
        problems.append(f"protocol fields the camera never reports: {never_sent}")
    if dropped := sorted(k for k, v in sent.items() if v is not None and k not in stored):
        problems.append(f"the central server dropped status fields the camera sends: {dropped}")
    if changed := sorted(k for k, v in stored.items() if k in sent and sent[k] != v):
        problems.append(f"the central server changed status fields: {changed}")
    return problems


def run_heartbeats(central: CentralServer, camera, tmp_path: Path, monkeypatch,
                   tamper=None) -> tuple[str, RecordingTransport, list[dict[str, Any]]]:
    """Pair the camera's real link (its real status function, optionally ``tamper``-ed) and let it
    report in twice; ``(camera_id, transport, status reports produced)``."""
    import pi_camera_service.central_link.link as link_module

    produced: list[dict[str, Any]] = []
    real = link_module.heartbeat_status

    def recorded(*args: Any, **kwargs: Any) -> dict[str, Any]:
        status = real(*args, **kwargs)
        status = tamper(status) if tamper else status
        produced.append(dict(status))
        return status

    monkeypatch.setattr(link_module, "heartbeat_status", recorded)
    settings = camera_settings(tmp_path, central)
    transport = RecordingTransport()

    async def scenario() -> str:
        link = CentralLink.for_service(settings, camera, None, EventLog(), camera.controls, transport=transport,
                                       retry_initial=0.05, retry_max_delay=0.5, min_heartbeat_interval=0.2)
        await link.start()
        try:
            camera_id = await pair(central, link)
            state = link.state()
            assert (state["device_id"], state["camera_name"]) == (camera_id, "Porch")
            assert link.device_credentials()[0] == camera_id
            await wait_for(lambda: len(transport.json_bodies(HEARTBEAT_PATH)) >= 2, 20, "a second heartbeat")
            assert link.state()["state"] == "paired"
        finally:
            await link.stop()
        return camera_id

    return asyncio.run(scenario()), transport, produced


def test_pairing_then_heartbeat_fields_land_in_the_fleet_view(central, camera, tmp_path, monkeypatch):
    """Request -> admin pairs with the code -> the camera gets credentials -> every status field the
    camera reports is what the fleet view shows; the protocol has no field the camera does not send."""
    camera_id, transport, produced = run_heartbeats(central, camera, tmp_path, monkeypatch)
    [request] = transport.json_bodies(PAIRING_REQUESTS_PATH)
    view = fleet_view(central, camera_id)
    assert view["hardware_id"] == request["hardware_id"] and view["state"] == "online"
    assert view["name"] == "Porch" and view["api_url"] == request["api_url"] == "http://127.0.0.1:8123"
    stored = view["status"]
    sent = transport.kept_heartbeat(stored)
    assert heartbeat_problems(produced[-1], sent, stored) == []
    assert (stored["source"], stored["width"], stored["height"]) == (camera.source, 320, 240)
    assert stored["day_night"] in ("day", "night") and "camera_model" not in stored  # a software source has none
    assert (view["source"], view["width"], view["height"], view["day_night"]) == (
        camera.source, 320, 240, stored["day_night"])
    assert view["mjpeg_url"] == "http://127.0.0.1:8123/v1/camera/mjpeg" and stored["streaming"] is False


def test_a_field_added_on_one_side_only_fails_the_contract(central, camera, tmp_path, monkeypatch, caplog):
    """The check above is not blind: a status field the camera adds without the protocol, or a
    protocol field the camera stops sending, is reported."""

    def add_and_drop(status: dict[str, Any]) -> dict[str, Any]:
        return {**{k: v for k, v in status.items() if k != "source"}, "battery_pct": 80}

    camera_id, transport, produced = run_heartbeats(central, camera, tmp_path, monkeypatch, tamper=add_and_drop)
    stored = fleet_view(central, camera_id)["status"]
    sent = transport.kept_heartbeat(stored)
    assert "battery_pct" not in sent  # the camera's own check keeps it off the wire, and says so once
    warnings = [r for r in caplog.records if "heartbeat status left out" in r.getMessage()]
    assert len(warnings) == 1 and "battery_pct" in warnings[0].getMessage() and len(produced) >= 2
    problems = heartbeat_problems(produced[-1], sent, stored)
    assert problems == ["the camera reports fields the protocol does not know: ['battery_pct']",
                        "protocol fields the camera never reports: ['source']"], problems
    assert sent["source"] is None  # the protocol model fills in what the camera left out as null
    # and a central server storing a value other than the one sent is caught too
    stored = dict(stored, streaming=True)
    assert heartbeat_problems(produced[-1], sent, stored)[-1] == "the central server changed status fields: ['streaming']"


# ------------------------------------------------------------------------------------------ outbox
class DroppingTransport(RecordingTransport):
    """The network, where the answer to the first ``drop`` requests to a path is lost after the server
    handled them (the camera sees a read error, as when the link breaks mid-answer)."""

    def __init__(self, drop: dict[str, int]) -> None:
        super().__init__()
        self.drop = dict(drop)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await super().handle_async_request(request)
        if self.drop.get(request.url.path, 0) > 0:
            self.drop[request.url.path] -= 1
            await response.aread()
            await response.aclose()
            raise httpx.ReadError("connection reset while reading the answer", request=request)
        return response


def track_events(camera, n: int) -> list[TrackEvent]:
    """``n`` face tracks appearing in the camera's newest frame, each with its own 128-d encoding, and
    one profile track."""
    rng = np.random.default_rng(7)
    now = time.time()
    faces = tuple(Face(10 + 60 * i, 40, 50, 60, tuple(float(v) for v in rng.normal(0, 0.1, ENCODING_LENGTH)))
                  for i in range(n))
    profile = Profile(250, 100, 40, 50)
    result = DetectionResult(1, now, now, 5.0, camera.width, camera.height, faces, (profile,))
    events = [TrackEvent(uuid.uuid4().hex, "appeared", result, face=f) for f in faces]
    return events + [TrackEvent(uuid.uuid4().hex, "appeared", result, profile=profile)]


def deliver(central: CentralServer, camera, tmp_path: Path, transport: RecordingTransport,
            fill) -> tuple[str, Outbox]:
    """Pair the camera's real link, ``fill(outbox)`` and run the real outbox sender until the outbox
    is empty; ``(camera_id, outbox)`` (open)."""
    settings = camera_settings(tmp_path, central)
    outbox = Outbox(settings.state_dir)
    outbox.open()

    async def scenario() -> str:
        link = CentralLink.for_service(settings, camera, None, EventLog(), camera.controls,
                                       retry_initial=0.05, retry_max_delay=0.5)
        await link.start()
        sender = OutboxSender(outbox, central.base, link.device_credentials, retry_initial=0.05,
                              retry_max_delay=0.3, unpaired_poll=0.05, transport=transport)
        try:
            await asyncio.to_thread(fill, outbox)
            await sender.start()
            camera_id = await pair(central, link)
            await wait_for(lambda: outbox.depth() == 0, 30, "an empty outbox")
            assert sender.state()["state"] in ("idle", "sending")
        finally:
            await sender.stop()
            await link.stop()
        return camera_id

    return asyncio.run(scenario()), outbox


def fill_outbox(camera, queued: dict[str, list[str]]):
    def fill(outbox: Outbox) -> None:
        recorder = DetectionRecorder(outbox, camera, FaceTracker(), full_frame=True)
        wait_until(lambda: camera.latest_frame() is not None, 10, 0.02, "a first frame")
        queued["events"] = recorder.record(track_events(camera, 3))
        queued["photos"] = [queue_snapshot(outbox, camera.snapshot_jpeg(), camera.width, camera.height)]

    return fill


def stored_rows(central: CentralServer, camera_id: str) -> dict[str, Any]:
    from sqlalchemy import select

    from central.models import FaceObservation, IngestedItem, Photo

    with central.state.sessions() as db:
        return {
            "items": [(i.item_id, i.kind, i.track_id, i.event, i.profiles) for i in
                      db.scalars(select(IngestedItem).where(IngestedItem.camera_id == camera_id))],
            "faces": [(o.item_id, o.box, o.encoding, o.crop_path) for o in
                      db.scalars(select(FaceObservation).where(FaceObservation.camera_id == camera_id))],
            "photos": [(p.item_id, p.kind, p.path, p.size, p.meta) for p in
                       db.scalars(select(Photo).where(Photo.camera_id == camera_id))],
        }


def check_delivered_once(central: CentralServer, camera_id: str, outbox: Outbox, queued: dict[str, list[str]]):
    rows = stored_rows(central, camera_id)
    item_ids = [r[0] for r in rows["items"]]
    assert sorted(item_ids) == sorted(queued["events"] + queued["photos"]), "every item stored exactly once"
    by_id = {r[0]: r for r in rows["items"]}
    face_rows = {r[0]: r for r in rows["faces"]}
    assert len(rows["faces"]) == 3  # the three frontal faces; the profile is an item without a face
    media = central.state.faces.media
    for item_id in queued["events"][:3]:
        _, box, encoding, crop_path = face_rows[item_id]
        assert np.frombuffer(encoding, "<f8").shape == (ENCODING_LENGTH,)
        assert media.path(crop_path).read_bytes()[:3] == b"\xff\xd8\xff"
        kind, track_id, event = by_id[item_id][1:4]
        assert (kind, event, len(track_id)) == ("face_event", "appeared", 32)
    assert by_id[queued["events"][3]][4] == [{"box": [250, 100, 40, 50]}]  # the profile
    frames = [p for p in rows["photos"] if p[1] == "frame"]
    assert sorted(p[0] for p in frames) == sorted(queued["events"])  # full_frame=True: one frame per event
    [snapshot] = [p for p in rows["photos"] if p[1] == "snapshot"]
    assert snapshot[0] == queued["photos"][0] and snapshot[4] == {"width": 320, "height": 240}
    stats = outbox.stats()
    assert stats["rejected"] == 0 and stats["depth"] == 0


def test_outbox_delivers_face_events_and_photos_exactly_once(central, camera, tmp_path):
    """Face events with encodings, crops, frames and a profile, and a snapshot, queued before pairing,
    reach the central server once each; encodings arrive bit for bit."""
    queued: dict[str, list[str]] = {}
    transport = RecordingTransport()
    camera_id, outbox = deliver(central, camera, tmp_path, transport, fill_outbox(camera, queued))
    try:
        check_delivered_once(central, camera_id, outbox, queued)
        [body] = transport.json_bodies(INGEST_EVENTS_PATH)
        sent_encodings = {i["item_id"]: i["faces"][0]["encoding"] for i in body["items"] if i["faces"]}
        for item_id, _, encoding, _ in stored_rows(central, camera_id)["faces"]:
            assert np.frombuffer(encoding, "<f8").tolist() == sent_encodings[item_id]
        # the wire items are exactly the protocol's fields, and nothing the camera stores is left behind
        for item in body["items"]:
            assert set(item) == set(FaceEventItem.model_fields)
            for face in item["faces"]:
                assert set(face) == set(FaceIn.model_fields)
        payload = face_event_payload(track_events(camera, 1)[0])
        assert set(payload) <= set(FaceEventItem.model_fields) - {"item_id", "frame_jpeg"}
        assert set(payload["faces"][0]) <= set(FaceIn.model_fields) - {"crop_jpeg"}
    finally:
        outbox.close()


def test_a_lost_answer_is_retried_and_answered_duplicate_not_stored_twice(central, camera, tmp_path):
    """The server stores a batch and a photo but the answers are lost: the camera sends them again, the
    server answers ``duplicate``, and each id is stored once."""
    queued: dict[str, list[str]] = {}
    transport = DroppingTransport({INGEST_EVENTS_PATH: 1, INGEST_PHOTOS_PATH: 1})
    camera_id, outbox = deliver(central, camera, tmp_path, transport, fill_outbox(camera, queued))
    try:
        check_delivered_once(central, camera_id, outbox, queued)
        batches = transport.json_bodies(INGEST_EVENTS_PATH)
        assert len(batches) == 2 and batches[0] == batches[1], "the same batch sent again after the lost answer"
        photos = [p for m, p, _ in transport.sent if p == INGEST_PHOTOS_PATH and m == "POST"]
        assert len(photos) == 2
    finally:
        outbox.close()


def test_an_item_the_protocol_refuses_is_dropped_on_the_camera_and_does_not_block_the_others(central, camera,
                                                                                             tmp_path):
    """A stored face event the protocol does not allow (a negative box, as an older version might have
    written) is dropped and counted as rejected on the camera; the items after it are delivered."""
    queued: dict[str, list[str]] = {}
    good = fill_outbox(camera, queued)

    def fill(outbox: Outbox) -> None:
        queued["bad"] = [outbox.add("face_event", {
            "type": "face_event", "captured_at": "2026-11-22T10:00:00Z", "track_id": "t", "event": "appeared",
            "faces": [{"box": [-5, 0, 10, 10], "encoding": None}], "profiles": []})]
        good(outbox)

    transport = RecordingTransport()
    camera_id, outbox = deliver(central, camera, tmp_path, transport, fill)
    try:
        stats = outbox.stats()
        assert stats["rejected"] == 1 and "faces[0].box=[-5, 0, 10, 10] is out of range" in stats["last_rejected_reason"]
        sent_ids = {i["item_id"] for body in transport.json_bodies(INGEST_EVENTS_PATH) for i in body["items"]}
        assert queued["bad"][0] not in sent_ids
        stored = {r[0] for r in stored_rows(central, camera_id)["items"]}
        assert stored == set(queued["events"] + queued["photos"])
    finally:
        outbox.close()


def test_the_same_items_from_two_senders_at_once_are_stored_once(central, camera, tmp_path):
    """Two senders deliver the same items at the same moment (a camera's state directory restored on a
    second card, say): both see every item acknowledged (``stored`` or ``duplicate``, none rejected)
    and the server keeps each item once."""
    queued: dict[str, list[str]] = {}
    settings = camera_settings(tmp_path, central)
    first = Outbox(settings.state_dir)
    first.open()
    fill_outbox(camera, queued)(first)
    first.close()
    shutil.copytree(settings.state_dir, tmp_path / "copy")
    outboxes = [Outbox(settings.state_dir), Outbox(tmp_path / "copy")]
    for box in outboxes:
        box.open()
    transport = RecordingTransport()

    async def scenario() -> str:
        link = CentralLink.for_service(settings, camera, None, EventLog(), camera.controls,
                                       retry_initial=0.05, retry_max_delay=0.5)
        await link.start()
        senders = [OutboxSender(box, central.base, link.device_credentials, retry_initial=0.05,
                                retry_max_delay=0.3, transport=transport) for box in outboxes]
        try:
            camera_id = await pair(central, link)
            await asyncio.gather(*(sender.start() for sender in senders))
            await wait_for(lambda: all(box.depth() == 0 for box in outboxes), 30, "both outboxes empty")
        finally:
            for sender in senders:
                await sender.stop()
            await link.stop()
        return camera_id

    try:
        camera_id = asyncio.run(scenario())
        for box in outboxes:
            check_delivered_once(central, camera_id, box, queued)
        assert len(transport.json_bodies(INGEST_EVENTS_PATH)) == 2  # one batch from each sender
    finally:
        for box in outboxes:
            box.close()
