"""Central's API driven the way a camera and an admin drive it: pairing, ingest items, people.

Every helper asserts the status it expects, so a failure names the call that went wrong.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import uuid

import cv2
import httpx
import numpy as np

from tests.support.central_server import CentralServer, bearer

#: the capture time of :func:`event` items unless a test gives another
T0 = dt.datetime(2026, 11, 22, 10, 0, 0, tzinfo=dt.timezone.utc)


# ----------------------------------------------------------------------------- pairing
def ask_code(c: httpx.Client, hardware_id: str | None = None, **extra) -> dict:
    """``POST /v1/pairing/requests`` as an unpaired camera; asserts 201, returns code, request_id, poll_token."""
    r = c.post("/v1/pairing/requests", json={"hardware_id": hardware_id or uuid.uuid4().hex, "name": "porch", **extra})
    assert r.status_code == 201, r.text
    return r.json()


def collect(c: httpx.Client, req: dict, wait: float = 0) -> httpx.Response:
    """Poll the pairing request ``req`` (long poll up to ``wait`` s) with its poll token."""
    return c.get(f"/v1/pairing/requests/{req['request_id']}", params={"wait": wait},
                 headers=bearer(req["poll_token"]))


def basic(device_id: str, secret: str) -> httpx.BasicAuth:
    """HTTP Basic credentials of a paired camera."""
    return httpx.BasicAuth(device_id, secret)


def paired_camera(server: CentralServer, admin: str, name: str = "Porch") -> dict:
    """Pair a simulated camera through the API; returns its credentials and first heartbeat answer."""
    c = server.client
    req = ask_code(c)
    assert c.post("/v1/cameras/pair", json={"code": req["code"], "name": name}, headers=bearer(admin)).status_code == 201
    creds = collect(c, req).json()
    hb = c.post("/v1/devices/heartbeat", json={"status": {"streaming": True}},
                auth=basic(creds["device_id"], creds["device_secret"]))
    assert hb.status_code == 200, hb.text
    return creds


def start_ready_server(database_url: str, **overrides: object) -> CentralServer:
    """A started in-thread central server (``overrides``: central Settings fields) whose first admin exists
    (``server.admin``: an access token) and with one paired camera "Porch" (``server.camera``: its device
    credentials). The caller stops it."""
    srv = CentralServer(database_url, **overrides).start()
    srv.admin = srv.create_first_admin()
    srv.camera = paired_camera(srv, srv.admin, "Porch")
    return srv


# ----------------------------------------------------------------------------- ingest
def jpeg(width: int = 64, height: int = 48, value: int = 90) -> bytes:
    """A real JPEG of a gradient (OpenCV-encoded)."""
    img = np.zeros((height, width, 3), np.uint8)
    img[:] = np.linspace(0, 255, width, dtype=np.uint8)[None, :, None]
    img[..., 1] = value
    return cv2.imencode(".jpg", img)[1].tobytes()


def b64(data: bytes) -> str:
    """``data`` as standard base64 text (how ingest items carry JPEGs)."""
    return base64.b64encode(data).decode()


def event(encoding=None, at: dt.datetime = T0, crop: bytes | None = None, frame: bytes | None = None,
          **overrides) -> dict:
    """One face_event item with one face (``encoding``: 128 floats or None)."""
    item = {
        "item_id": uuid.uuid4().hex, "type": "face_event", "captured_at": at.isoformat().replace("+00:00", "Z"),
        "track_id": "t1", "event": "appeared",
        "faces": [{"box": [10, 20, 50, 60], "encoding": None if encoding is None else [float(v) for v in encoding],
                   "crop_jpeg": b64(crop) if crop else None}],
        "profiles": [{"box": [200, 20, 40, 50]}],
        "frame_jpeg": b64(frame) if frame else None,
    }
    item.update(overrides)
    return item


def post_events(server: CentralServer, creds: dict, items: list[dict]):
    """``POST /v1/ingest/events`` with ``items`` as the camera ``creds`` (not asserted: tests check the answer)."""
    # json.dumps writes NaN as the bare token NaN (as a careless client would); httpx's json= refuses it
    return server.client.post("/v1/ingest/events", content=json.dumps({"items": items}),
                              headers={"content-type": "application/json"},
                              auth=basic(creds["device_id"], creds["device_secret"]))


# ----------------------------------------------------------------------------- people
def api(server: CentralServer, method: str, url: str, status: int = 200, **kwargs):
    """One admin API call with ``server.admin``'s token; asserts ``status`` and returns the JSON body."""
    r = server.client.request(method, url, headers=bearer(server.admin), **kwargs)
    assert r.status_code == status, (url, r.status_code, r.text)
    return r.json()


def enrol_photo(server: CentralServer, person_id: str, data: bytes, status: int = 201):
    """Enrol the JPEG ``data`` as a face of ``person_id``; asserts ``status``."""
    return api(server, "POST", f"/v1/people/{person_id}/faces", status, files={"file": ("p.jpg", data, "image/jpeg")})
