"""Central server: recognition across cameras on real faces — enrolment (photo upload, received faces),
matching, unknown groups, naming a group, merge, erasure, sightings, last seen — over real HTTP on
SQLite and PostgreSQL. Faces: the bundled carphone video (one person) and scikit-image's astronaut
photo (another person); encodings computed with the cameras' detector."""

from __future__ import annotations

import datetime as dt

import cv2
import numpy as np
import pytest
from sqlalchemy import func, select

from central.matching import EncodingIndex, match
from central.models import FaceObservation, PersonEncoding, Sighting
from tests.support.central_api import T0, api, enrol_photo, event, jpeg, paired_camera, post_events
from tests.support.central_server import CentralServer, bearer
from tests.support.faces import astronaut, camera_encoding, carphone_frames, to_jpeg

@pytest.fixture()
def server(make_central_server):
    """A central server with its first admin (``server.admin``) and a paired camera (``server.camera``)."""
    return make_central_server(sighting_gap_s=60)


def ingest_one(server: CentralServer, encoding, at: dt.datetime = T0, camera: dict | None = None,
               crop: bytes | None = None) -> dict:
    """Post one event with one face; returns its observation."""
    item = event(encoding, at, crop=crop)
    r = post_events(server, camera or server.camera, [item])
    assert r.json()["results"][0]["status"] == "stored", r.text
    with server.state.sessions() as db:
        obs = db.scalars(select(FaceObservation).where(FaceObservation.item_id == item["item_id"])).one()
    return {"id": obs.id, "person_id": obs.person_id, "group": obs.unknown_group_id, "distance": obs.distance,
            "crop_path": obs.crop_path}


def test_index_matches_brute_force_nearest_within_tolerance():
    rng = np.random.default_rng(7)
    enrolled = rng.normal(0, 0.09, (500, 128))
    labels = [f"p{i % 50}" for i in range(500)]
    index = EncodingIndex(0.6)
    index.replace(enrolled, labels)
    for _ in range(20):
        query = enrolled[rng.integers(500)] + rng.normal(0, 0.02, 128)
        distances = np.sqrt(((enrolled - query) ** 2).sum(axis=1))
        label, distance = match(index, query)
        # float32 storage (dlib computes its encodings in float32): distances agree to 1e-6
        assert label == labels[int(np.argmin(distances))] and distance == pytest.approx(distances.min(), abs=1e-6)
    far = rng.normal(0, 0.09, 128) + 1.0
    assert match(index, far)[0] is None and match(index, far)[1] > 0.6
    index.remove({"p0"})
    assert len(index) == 490 and index.count("p0") == 0
    with pytest.raises(ValueError, match="128 finite"):
        index.nearest([0.0] * 127)
    assert match(EncodingIndex(), [0.0] * 128) == (None, None)


def test_recognition_unknown_groups_and_naming_a_group(server):
    frames = carphone_frames()
    person = api(server, "POST", "/v1/people", 201, json={"name": "Driver"})
    enrolled = enrol_photo(server, person["id"], to_jpeg(frames[10]))  # the server computes the encoding
    assert enrolled["encodings"] == 1

    # another frame of the video, as a camera encodes it -> the same person
    seen = ingest_one(server, camera_encoding(frames[110]), crop=to_jpeg(frames[110][30:100, 50:120]))
    assert seen["person_id"] == person["id"] and seen["distance"] < 0.6 and seen["group"] is None

    # a different real person -> unknown; a second picture of her joins the same group
    a1 = ingest_one(server, camera_encoding(astronaut()), crop=to_jpeg(astronaut()[60:200, 150:300]))
    a2 = ingest_one(server, camera_encoding(cv2.flip(astronaut(), 1)), at=T0 + dt.timedelta(seconds=5),
                    crop=to_jpeg(astronaut()[50:210, 140:310]))
    assert a1["person_id"] is None and a1["group"] is not None
    assert a2["person_id"] is None and a2["group"] == a1["group"] and a2["distance"] < 0.6
    groups = api(server, "GET", "/v1/unknown-groups")
    assert len(groups) == 1 and groups[0]["id"] == a1["group"] and groups[0]["faces"] == 2
    assert groups[0]["camera_ids"] == [server.camera["device_id"]] and len(groups[0]["samples"]) == 2
    crop = server.client.get(groups[0]["samples"][0]["crop_url"], headers=bearer(server.admin))
    assert crop.status_code == 200 and crop.content[:3] == b"\xff\xd8\xff"

    # naming the group enrols its faces; later astronaut faces match her
    named = api(server, "POST", f"/v1/unknown-groups/{a1['group']}/assign", json={"name": "Astronaut"})
    assert named["enrolled"] == 2 and named["person"]["name"] == "Astronaut" and named["person"]["encodings"] == 2
    assert api(server, "GET", "/v1/unknown-groups") == []
    later = ingest_one(server, camera_encoding(cv2.resize(astronaut(), (400, 400))), at=T0 + dt.timedelta(minutes=10))
    assert later["person_id"] == named["person"]["id"] and later["group"] is None
    driver = ingest_one(server, camera_encoding(frames[60]), at=T0 + dt.timedelta(minutes=11))
    assert driver["person_id"] == person["id"]

    listed = {p["name"]: p for p in api(server, "GET", "/v1/people")}
    assert listed["Driver"]["encodings"] == 1 and listed["Astronaut"]["encodings"] == 2
    assert listed["Astronaut"]["last_seen"]["camera_name"] == "Porch"
    assert listed["Astronaut"]["last_seen"]["at"].startswith("2026-11-22T10:10:00")
    bad = api(server, "POST", f"/v1/unknown-groups/{a1['group']}/assign", 404, json={"name": "x"})
    assert "no unknown group" in bad["detail"]


def test_enrolment_errors_and_from_observations(server):
    person = api(server, "POST", "/v1/people", 201, json={"name": "Driver"})
    blank = enrol_photo(server, person["id"], to_jpeg(np.full((300, 300, 3), 128, np.uint8)), 422)
    assert "must show a face; 0 found" in blank["detail"]
    png = cv2.imencode(".png", astronaut())[1].tobytes()
    assert "JPEG" in enrol_photo(server, person["id"], png, 422)["detail"]
    assert "no person" in enrol_photo(server, "0" * 32, to_jpeg(astronaut()), 404)["detail"]
    assert api(server, "POST", "/v1/people", 422, json={"name": "   "})["detail"]

    obs = ingest_one(server, camera_encoding(carphone_frames()[110]))
    no_encoding = ingest_one(server, None)
    assert obs["group"] is not None  # nobody enrolled yet: unknown
    out = api(server, "POST", f"/v1/people/{person['id']}/faces/from-observations",
              json={"observation_ids": [obs["id"], "f" * 32, no_encoding["id"], obs["id"]]})["results"]
    assert [r["status"] for r in out] == ["enrolled", "rejected", "rejected", "already_enrolled"]
    assert "no face observation" in out[1]["reason"] and "no encoding" in out[2]["reason"]
    assert api(server, "GET", "/v1/unknown-groups") == []  # its only member left the group
    again = ingest_one(server, camera_encoding(carphone_frames()[10]), at=T0 + dt.timedelta(seconds=20))
    assert again["person_id"] == person["id"]


def crowd_photo() -> np.ndarray:
    """1280x1024: the astronaut's face ~185 px wide, and two carphone faces ~75 px wide at the right."""
    canvas = np.full((1024, 1280, 3), 100, np.uint8)
    canvas[:, :1024] = cv2.resize(astronaut(), (1024, 1024), interpolation=cv2.INTER_CUBIC)
    frames = carphone_frames()
    canvas[0:216, 1016:1280] = cv2.resize(frames[10], (264, 216), interpolation=cv2.INTER_CUBIC)
    canvas[600:816, 1016:1280] = cv2.resize(frames[60], (264, 216), interpolation=cv2.INTER_CUBIC)
    return canvas


def test_enrolment_takes_the_dominant_face_and_says_which(server):
    person = api(server, "POST", "/v1/people", 201, json={"name": "Astronaut"})
    out = enrol_photo(server, person["id"], to_jpeg(crowd_photo()))
    assert out["faces_found"] == 3 and out["encodings"] == 1
    box = out["box"]
    assert set(box) == {"x", "y", "width", "height"}
    assert 300 < box["x"] + box["width"] / 2 < 500 and 150 < box["width"] < 230  # the astronaut's face
    # the enrolled encoding is the astronaut's: her face as a camera sees it matches her
    seen = ingest_one(server, camera_encoding(astronaut()))
    assert seen["person_id"] == person["id"]


def test_enrolment_refuses_two_faces_of_similar_size_listing_both_boxes(server):
    person = api(server, "POST", "/v1/people", 201, json={"name": "Twins"})
    two = np.hstack([astronaut(), cv2.flip(astronaut(), 1)])  # the same face twice, mirrored
    detail = enrol_photo(server, person["id"], to_jpeg(two), 422)["detail"]
    assert "2 faces of similar size" in detail
    assert detail.count("width=") == 2 and detail.count("x=") == 2
    xs = sorted(int(part.split()[0]) for part in detail.split("x=")[1:])
    assert xs[0] < 512 <= xs[1]  # one box in each half
    assert api(server, "GET", f"/v1/people/{person['id']}")["encodings"] == 0


@pytest.mark.parametrize("scale", [2.0, 3.0, 4.0])
def test_a_high_resolution_portrait_enrols_its_one_face(server, scale):
    # at 3x the astronaut photo (scaled back to 1280 px for detection) dlib's HOG scores the patch
    # on her suit 0.03; no second face may be reported
    person = api(server, "POST", "/v1/people", 201, json={"name": "Astronaut"})
    big = cv2.resize(astronaut(), None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC)
    out = enrol_photo(server, person["id"], to_jpeg(big))
    assert out["faces_found"] == 1, out
    assert 150 * scale < out["box"]["x"] + out["box"]["width"] / 2 < 280 * scale


def test_merge_then_delete_erases_rows_and_files(server):
    frames = carphone_frames()
    a = api(server, "POST", "/v1/people", 201, json={"name": "Driver"})
    b = api(server, "POST", "/v1/people", 201, json={"name": "Driver (2)"})
    enrol_photo(server, a["id"], to_jpeg(frames[10]))
    enrol_photo(server, b["id"], to_jpeg(frames[110]))
    seen = ingest_one(server, camera_encoding(frames[60]), crop=to_jpeg(frames[60]))
    assert seen["person_id"] in (a["id"], b["id"])
    assert api(server, "POST", f"/v1/people/{a['id']}/merge", 422, json={"other_id": a["id"]})["detail"]
    merged = api(server, "POST", f"/v1/people/{a['id']}/merge", json={"other_id": b["id"]})
    assert merged["encodings"] == 2 and merged["last_seen"]["camera_name"] == "Porch"
    assert api(server, "GET", f"/v1/people/{b['id']}", 404)["detail"]
    renamed = api(server, "PATCH", f"/v1/people/{a['id']}", json={"name": "The driver"})
    assert renamed["name"] == "The driver"
    with server.state.sessions() as db:
        assert db.scalar(select(FaceObservation.person_id).where(FaceObservation.id == seen["id"])) == a["id"]

    media = server.state.faces.media
    files = [p for p in media.root.rglob("*.jpg")]
    assert len(files) == 3  # two enrolment photos and one crop
    erased = api(server, "DELETE", f"/v1/people/{a['id']}")
    assert erased["encodings"] == 2 and erased["observations"] == 1 and erased["sightings"] == 1
    assert [p for p in media.root.rglob("*.jpg")] == []
    with server.state.sessions() as db:
        for model in (PersonEncoding, FaceObservation, Sighting):
            assert db.scalar(select(func.count()).select_from(model)) == 0
    assert api(server, "GET", "/v1/people") == []
    after = ingest_one(server, camera_encoding(frames[60]), at=T0 + dt.timedelta(minutes=5))
    assert after["person_id"] is None  # no longer recognised


def test_sightings_merge_close_detections_and_split_after_the_gap(server):
    frames = carphone_frames()
    person = api(server, "POST", "/v1/people", 201, json={"name": "Driver"})
    enrol_photo(server, person["id"], to_jpeg(frames[10]))
    garden = paired_camera(server, server.admin, "Garden")
    enc = camera_encoding(frames[110])
    for seconds in (0, 30, 85):  # each within 60 s of the previous one: one sighting
        ingest_one(server, enc, at=T0 + dt.timedelta(seconds=seconds))
    ingest_one(server, enc, at=T0 + dt.timedelta(seconds=200))  # 115 s later: a new sighting
    ingest_one(server, enc, at=T0 + dt.timedelta(seconds=210), camera=garden)  # another camera
    ingest_one(server, enc, at=T0 + dt.timedelta(seconds=15))  # late arrival inside the first one
    found = api(server, "GET", "/v1/sightings", params={"person_id": person["id"]})
    assert [(s["camera_name"], s["detections"], s["duration_s"]) for s in found] == [
        ("Garden", 1, 0.0), ("Porch", 1, 0.0), ("Porch", 4, 85.0)]
    assert found[2]["person_name"] == "Driver" and found[2]["started_at"].startswith("2026-11-22T10:00:00")
    porch = api(server, "GET", "/v1/sightings",
                params={"camera_id": server.camera["device_id"], "since": "2026-11-22T10:02:00Z"})
    assert [s["detections"] for s in porch] == [1]
    assert "UTC offset" in api(server, "GET", "/v1/sightings", 422, params={"since": "2026-11-22T10:02:00"})["detail"]
    last = api(server, "GET", f"/v1/people/{person['id']}/last-seen")
    assert last["sighting"]["camera_name"] == "Garden" and last["sighting"]["ended_at"].startswith("2026-11-22T10:03:30")
    nobody = api(server, "POST", "/v1/people", 201, json={"name": "Nobody"})
    assert api(server, "GET", f"/v1/people/{nobody['id']}/last-seen")["sighting"] is None
    assert server.client.get("/v1/sightings").status_code == 401


def test_one_request_with_many_faces_makes_the_same_sightings_and_groups_as_one_request_each(server):
    """Faces of one batch are classified without a flush between them: a person's detections in one
    request still join or split sightings by the gap (also out of order), and a stranger seen twice in
    the request forms one unknown group, which the next request matches."""
    frames = carphone_frames()
    person = api(server, "POST", "/v1/people", 201, json={"name": "Driver"})
    enrol_photo(server, person["id"], to_jpeg(frames[10]))
    enc = camera_encoding(frames[110])
    stranger = np.asarray(enc) + 0.5  # far from the driver (>= 0.6 in every direction's sum)
    items = [event(enc, T0 + dt.timedelta(seconds=s)) for s in (0, 30, 200, 15, 85)]
    items += [event(stranger.tolist(), T0), event((stranger + 0.01).tolist(), T0 + dt.timedelta(seconds=5))]
    r = post_events(server, server.camera, items)
    assert [x["status"] for x in r.json()["results"]] == ["stored"] * 7, r.text
    found = api(server, "GET", "/v1/sightings", params={"person_id": person["id"]})
    assert [(s["detections"], s["duration_s"]) for s in found] == [(1, 0.0), (4, 85.0)]
    with server.state.sessions() as db:
        groups = [o.unknown_group_id for o in db.scalars(select(FaceObservation).where(
            FaceObservation.item_id.in_([items[5]["item_id"], items[6]["item_id"]])))]
    assert len(groups) == 2 and groups[0] is not None and groups[0] == groups[1]
    assert ingest_one(server, (stranger - 0.01).tolist(), at=T0 + dt.timedelta(seconds=9))["group"] == groups[0]


def test_unknown_group_erasure(server):
    crop = jpeg()
    one = ingest_one(server, camera_encoding(astronaut()), crop=crop)
    ingest_one(server, camera_encoding(cv2.flip(astronaut(), 1)), crop=crop)
    out = api(server, "DELETE", f"/v1/unknown-groups/{one['group']}")
    assert out["observations"] == 2
    assert list(server.state.faces.media.root.rglob("*.jpg")) == []
    again = ingest_one(server, camera_encoding(astronaut()))
    assert again["group"] != one["group"]  # the erased faces no longer group anything
