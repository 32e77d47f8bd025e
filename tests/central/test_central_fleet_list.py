"""The camera list and the sightings timeline at fleet size, on SQLite and PostgreSQL, over a real socket.

500 cameras in every state are written straight to the database (pairing each through the API would
test pairing, not the list); the list's state filter is checked against :func:`central.fleet.camera_state`
applied to every row, its pages against the whole list, and the ``Link``/``X-Total-Count`` headers
against RFC 8288 as httpx parses them.
"""

from __future__ import annotations

import concurrent.futures
import datetime as dt

import pytest

from central.fleet import camera_state
from central.models import Person, Sighting
from tests.support.central_server import CentralServer, bearer
from tests.support.fleet import N_CAMERAS, add_fleet as _add_fleet

STATES = ("online", "offline", "awaiting_camera", "disabled")



@pytest.fixture()
def fleet(central_server: CentralServer):
    token = central_server.create_first_admin()
    cameras = _add_fleet(central_server)
    return central_server, bearer(token), cameras


def _all_pages(server: CentralServer, headers: dict[str, str], **params: object) -> list[dict]:
    """Follow ``Link: rel="next"`` from the first page to the last."""
    url = server.base + "/v1/cameras"
    seen: list[dict] = []
    first = True
    while url:
        r = server.client.get(url, headers=headers, params=params if first else None)
        assert r.status_code == 200, r.text
        seen += r.json()
        url = r.links.get("next", {}).get("url")
        first = False
    return seen


def test_pages_cover_the_whole_list_once_in_order_for_every_sort(fleet):
    server, headers, cameras = fleet
    everything = server.client.get("/v1/cameras", headers=headers)
    assert everything.status_code == 200
    assert len(everything.json()) == N_CAMERAS and everything.headers["X-Total-Count"] == str(N_CAMERAS)
    assert "Link" not in everything.headers  # no limit: one page, as before paging existed
    for sort in ("name", "-name", "last_seen", "-last_seen", "paired", "-paired", "state", "-state"):
        pages = _all_pages(server, headers, sort=sort, limit=37)
        ids = [c["id"] for c in pages]
        assert len(ids) == N_CAMERAS and len(set(ids)) == N_CAMERAS, sort
        whole = [c["id"] for c in server.client.get("/v1/cameras", headers=headers, params={"sort": sort}).json()]
        assert ids == whole, f"paging by 37 differs from the whole list sorted by {sort}"
    names = [c["name"].lower() for c in everything.json()]
    assert names == sorted(names)
    seen = [c["last_seen_at"] for c in server.client.get("/v1/cameras", headers=headers,
                                                         params={"sort": "-last_seen"}).json()]
    stamped = [s for s in seen if s is not None]
    assert stamped == sorted(stamped, reverse=True) and seen[: len(stamped)] == stamped  # never seen: last
    ranks = [STATES.index(c["state"]) for c in server.client.get("/v1/cameras", headers=headers,
                                                                  params={"sort": "state"}).json()]
    assert ranks == sorted(ranks)


def test_state_filter_agrees_with_the_state_each_camera_reports(fleet):
    server, headers, cameras = fleet
    shown = {c["id"]: c["state"] for c in server.client.get("/v1/cameras", headers=headers).json()}
    offline_after = server.state.settings.offline_after_s()
    assert shown == {c.id: camera_state(c, offline_after) for c in cameras}
    assert set(shown.values()) == set(STATES)
    summary = server.client.get("/v1/fleet/summary", headers=headers).json()
    assert summary["total"] == N_CAMERAS
    for state in STATES:
        r = server.client.get("/v1/cameras", headers=headers, params={"state": state, "limit": 1000})
        assert {c["id"] for c in r.json()} == {i for i, s in shown.items() if s == state}, state
        assert int(r.headers["X-Total-Count"]) == summary[state] == sum(1 for s in shown.values() if s == state)
    both = server.client.get("/v1/cameras", headers=headers, params=[("state", "online"), ("state", "disabled")])
    assert {c["state"] for c in both.json()} == {"online", "disabled"}
    assert len(both.json()) == summary["online"] + summary["disabled"]


def test_name_filter_ignores_case_and_takes_wildcards_literally(fleet):
    server, headers, cameras = fleet
    for needle in ("porch", "PORCH", "shop_", "50%", "_", "%", "00"):
        got = {c["id"] for c in server.client.get("/v1/cameras", headers=headers, params={"q": needle}).json()}
        assert got == {c.id for c in cameras if needle.lower() in c.name.lower()}, needle
    combined = server.client.get("/v1/cameras", headers=headers, params={"q": "hall", "state": "online", "limit": 5})
    assert all("hall" in c["name"].lower() and c["state"] == "online" for c in combined.json())
    expected = sum(1 for c in cameras if "hall" in c.name.lower()
                   and camera_state(c, server.state.settings.offline_after_s()) == "online")
    assert int(combined.headers["X-Total-Count"]) == expected


def test_bad_list_parameters_get_a_clear_422(fleet):
    server, headers, _ = fleet
    for params, word in (({"state": "asleep"}, "state"), ({"sort": "hardware_id"}, "sort"),
                         ({"limit": 0}, "limit"), ({"limit": 1001}, "limit"), ({"offset": -1}, "offset"),
                         ({"q": "x" * 101}, "q")):
        r = server.client.get("/v1/cameras", headers=headers, params=params)
        assert r.status_code == 422, (params, r.text)
        assert word in r.text
    assert server.client.get("/v1/cameras").status_code == 401
    assert server.client.get("/v1/fleet/summary").status_code == 401


def test_parallel_page_requests_agree_with_one_request(fleet):
    server, headers, _ = fleet
    whole = [c["id"] for c in server.client.get("/v1/cameras", headers=headers, params={"sort": "-paired"}).json()]

    def page(offset: int) -> list[str]:
        r = server.client.get("/v1/cameras", headers=headers, params={"sort": "-paired", "limit": 50, "offset": offset})
        assert r.status_code == 200
        return [c["id"] for c in r.json()]

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        pages = list(pool.map(page, range(0, N_CAMERAS, 50)))
    assert [i for p in pages for i in p] == whole


def test_sightings_across_the_fleet_page_without_overlap_and_filter(central_server: CentralServer):
    token = central_server.create_first_admin()
    headers = bearer(token)
    cameras = _add_fleet(central_server, n=6)
    day = dt.datetime(2026, 11, 20, tzinfo=dt.timezone.utc)
    with central_server.state.sessions() as db:
        people = [Person(name=n) for n in ("Ada", "Grace", "Linus")]
        db.add_all(people)
        db.flush()
        rows = []
        for i in range(250):
            start = day + dt.timedelta(minutes=5 * i)
            rows.append(Sighting(person_id=people[i % 3].id, camera_id=cameras[i % 6].id, started_at=start,
                                 ended_at=start + dt.timedelta(seconds=30 + i), detections=1 + i % 4))
        db.add_all(rows)
        db.commit()
        person_ids = [p.id for p in people]
    got: list[dict] = []
    for offset in range(0, 300, 60):
        r = central_server.client.get("/v1/sightings", headers=headers, params={"limit": 60, "offset": offset})
        assert r.status_code == 200
        got += r.json()
    assert len(got) == 250 and len({s["id"] for s in got}) == 250
    ends = [s["ended_at"] for s in got]
    assert ends == sorted(ends, reverse=True)
    one = central_server.client.get("/v1/sightings", headers=headers, params={
        "person_id": person_ids[1], "camera_id": cameras[1].id, "limit": 1000,
        "since": "2026-11-20T06:00:00Z", "until": "2026-11-20T12:00:00Z"}).json()
    assert one and all(s["person_id"] == person_ids[1] and s["camera_id"] == cameras[1].id for s in one)
    assert all(s["ended_at"] >= "2026-11-20T06:00:00" and s["started_at"] <= "2026-11-20T12:00:00" for s in one)
    assert {s["camera_name"] for s in one} == {cameras[1].name} and {s["person_name"] for s in one} == {"Grace"}
    r = central_server.client.get("/v1/sightings", headers=headers, params={"offset": -1})
    assert r.status_code == 422 and "offset" in r.text
