"""Central server: face events and photos uploaded by cameras — idempotency, per-item rejection, device
authentication, files on disk — over real HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import uuid

import cv2
import numpy as np
import pytest
from sqlalchemy import func, select

from central.models import FaceObservation, IngestedItem, Photo
from tests.support.central_api import T0, b64, basic, event, jpeg, paired_camera, post_events
from tests.support.central_server import CentralServer, bearer


@pytest.fixture()
def server(make_central_server):
    """A central server with its first admin (``server.admin``) and a paired camera (``server.camera``)."""
    return make_central_server()


def media(server: CentralServer):
    return server.state.faces.media


def test_same_item_twice_is_stored_once(server):
    rng = np.random.default_rng(1)
    item = event(rng.normal(0, 0.1, 128), crop=jpeg(), frame=jpeg(320, 240))
    first = post_events(server, server.camera, [item])
    assert first.status_code == 200, first.text
    assert first.json() == {"results": [{"item_id": item["item_id"], "status": "stored", "reason": None}]}
    again = post_events(server, server.camera, [item, item])  # a retry, and the id twice in one body
    assert [r["status"] for r in again.json()["results"]] == ["duplicate", "duplicate"]
    with server.state.sessions() as db:
        assert db.scalar(select(func.count()).select_from(IngestedItem)) == 1
        assert db.scalar(select(func.count()).select_from(FaceObservation)) == 1
        obs = db.scalars(select(FaceObservation)).one()
        frame = db.scalars(select(Photo).where(Photo.kind == "frame")).one()
        stored = db.scalars(select(IngestedItem)).one()
    assert stored.track_id == "t1" and stored.event == "appeared" and stored.profiles == [{"box": [200, 20, 40, 50]}]
    assert obs.box == [10, 20, 50, 60] and obs.captured_at == T0 and len(obs.encoding) == 1024
    np.testing.assert_array_equal(np.frombuffer(obs.encoding, "<f8"), np.array(item["faces"][0]["encoding"]))
    assert media(server).path(obs.crop_path).read_bytes() == base64.b64decode(item["faces"][0]["crop_jpeg"])
    assert media(server).path(frame.path).read_bytes() == base64.b64decode(item["frame_jpeg"])
    # the crop is served to admins
    crop = server.client.get(f"/v1/observations/{obs.id}/crop", headers=bearer(server.admin))
    assert crop.status_code == 200 and crop.headers["content-type"] == "image/jpeg"
    assert crop.content == base64.b64decode(item["faces"][0]["crop_jpeg"])
    assert server.client.get(f"/v1/observations/{obs.id}/crop").status_code == 401


def test_bad_items_are_rejected_with_a_reason_and_do_not_block_the_others(server):
    good = [event([0.01] * 128, crop=jpeg()), event(None)]
    png = cv2.imencode(".png", np.zeros((8, 8, 3), np.uint8))[1].tobytes()
    big = jpeg(1200, 1000) + b"\0" * (200 * 1024)  # over the 200 KB crop limit
    bad_face = lambda **face: event(None, faces=[{"box": [1, 2, 3, 4], "encoding": None, "crop_jpeg": None, **face}])
    bad = {
        "has 127 numbers": bad_face(encoding=[0.1] * 127),
        "NaN or infinity": bad_face(encoding=[float("nan")] + [0.1] * 127),
        "not valid base64": bad_face(crop_jpeg="%%%not base64%%%"),
        "not a JPEG": bad_face(crop_jpeg=b64(png)),
        "too big": bad_face(crop_jpeg=b64(big)),
        "is not an ISO-8601 time": event(None, captured_at="yesterday"),
        "has no UTC offset": event(None, captured_at="2026-11-22T10:00:00"),
        "item_id must be 32 hexadecimal": event(None, item_id="xyz"),
        "event='left' is not allowed": event(None, event="left"),
        "box": bad_face(box=[1, 2, -3, 4]),
        "frame_jpeg is not a JPEG": event(None, frame_jpeg=b64(b"GIF89a" + b"\0" * 20)),
    }
    items = [good[0], *bad.values(), good[1]]
    r = post_events(server, server.camera, items)
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    assert [x["item_id"] for x in results[:1] + results[-1:]] == [good[0]["item_id"], good[1]["item_id"]]
    assert results[0]["status"] == results[-1]["status"] == "stored"
    for expected, result in zip(bad, results[1:-1]):
        assert result["status"] == "rejected" and expected in result["reason"], (expected, result)
    assert "allowed: appeared, updated" in results[1 + list(bad).index("event='left' is not allowed")]["reason"]
    with server.state.sessions() as db:
        assert set(db.scalars(select(IngestedItem.item_id))) == {good[0]["item_id"], good[1]["item_id"]}


def test_whole_body_problems(server):
    auth = basic(server.camera["device_id"], server.camera["device_secret"])
    c = server.client
    r = c.post("/v1/ingest/events", content=b"{not json", headers={"content-type": "application/json"}, auth=auth)
    assert r.status_code == 422 and "not JSON" in r.json()["detail"]
    r = c.post("/v1/ingest/events", json={"events": []}, auth=auth)
    assert r.status_code == 422 and '"items" list' in r.json()["detail"]
    r = c.post("/v1/ingest/events", json={"items": [event(None) for _ in range(101)]}, auth=auth)
    assert r.status_code == 413 and "at most 100" in r.json()["detail"]
    r = c.post("/v1/ingest/events", json={"items": ["a string"]}, auth=auth)
    assert r.json()["results"] == [{"item_id": None, "status": "rejected", "reason": "an item must be a JSON object"}]


def test_device_authentication(server):
    c = server.client
    assert c.post("/v1/ingest/events", json={"items": []}).status_code == 401
    wrong = c.post("/v1/ingest/events", json={"items": []}, auth=basic(server.camera["device_id"], "nope"))
    assert wrong.status_code == 401 and wrong.json()["error"] == "unknown_device"
    other = paired_camera(server, server.admin, "Garden")
    cam_id = server.camera["device_id"]
    assert c.patch(f"/v1/cameras/{cam_id}", json={"disabled": True}, headers=bearer(server.admin)).status_code == 200
    r = post_events(server, server.camera, [event(None)])
    assert r.status_code == 403 and r.json()["error"] == "camera_disabled"
    photo = c.post("/v1/ingest/photos", data={"item_id": uuid.uuid4().hex, "kind": "still", "captured_at": "2026-11-22T10:00:00Z"},
                   files={"file": ("a.jpg", jpeg(), "image/jpeg")}, auth=basic(cam_id, server.camera["device_secret"]))
    assert photo.status_code == 403
    assert c.delete(f"/v1/cameras/{other['device_id']}", headers=bearer(server.admin)).status_code == 204
    r = post_events(server, other, [event(None)])  # unpaired
    assert r.status_code == 401 and r.json()["error"] == "unknown_device"
    with server.state.sessions() as db:
        assert db.scalar(select(func.count()).select_from(IngestedItem)) == 0


def test_photos_multipart(server):
    auth = basic(server.camera["device_id"], server.camera["device_secret"])
    c = server.client
    data = jpeg(640, 480)
    form = {"item_id": uuid.uuid4().hex.upper(), "kind": "still", "captured_at": "2026-11-22T10:00:00+01:00",
            "metadata": json.dumps({"exposure_us": 10000, "lens": "wide"})}
    r = c.post("/v1/ingest/photos", data=form, files={"file": ("s.jpg", data, "image/jpeg")}, auth=auth)
    assert r.status_code == 200, r.text
    assert r.json() == {"item_id": form["item_id"].lower(), "status": "stored"}
    again = c.post("/v1/ingest/photos", data=form, files={"file": ("s.jpg", data, "image/jpeg")}, auth=auth)
    assert again.status_code == 200 and again.json()["status"] == "duplicate"
    listed = c.get("/v1/photos", headers=bearer(server.admin)).json()
    assert len(listed) == 1
    p = listed[0]
    assert p["kind"] == "still" and p["size"] == len(data) and p["sha256"] == hashlib.sha256(data).hexdigest()
    assert p["metadata"] == {"exposure_us": 10000, "lens": "wide"}
    assert dt.datetime.fromisoformat(p["captured_at"].replace("Z", "+00:00")) == T0 - dt.timedelta(hours=1)
    assert c.get(p["url"], headers=bearer(server.admin)).content == data

    def refused(files=None, **fields):
        body = {**form, "item_id": uuid.uuid4().hex, **fields}
        r = c.post("/v1/ingest/photos", data={k: v for k, v in body.items() if v is not None},
                   files=files or {"file": ("s.jpg", data, "image/jpeg")}, auth=auth)
        assert r.status_code == 422, r.text
        return r.json()["detail"]

    png = cv2.imencode(".png", np.zeros((8, 8, 3), np.uint8))[1].tobytes()
    assert "not a JPEG" in refused(files={"file": ("x.jpg", png, "image/jpeg")})
    assert "not a JPEG" in refused(files={"file": ("x.jpg", b"\xff\xd8\xff" + b"garbage" * 10, "image/jpeg")})
    assert "only image/jpeg" in refused(files={"file": ("x.png", png, "image/png")})
    assert "kind='movie' is not allowed; allowed: still, snapshot" in refused(kind="movie")
    assert "must be a JSON object" in refused(metadata="[1, 2]")
    assert "has no UTC offset" in refused(captured_at="2026-11-22T10:00:00")
    assert "item_id must be 32 hexadecimal" in refused(item_id="1234")
    r = c.post("/v1/ingest/photos", data=form, auth=auth)
    assert r.status_code == 422 and "file is missing" in r.json()["detail"]
    with server.state.sessions() as db:
        assert db.scalar(select(func.count()).select_from(Photo)) == 1
    assert len(list(media(server).root.rglob("*.jpg"))) == 1
