"""The dashboard with 500 cameras and the fleet-wide sightings page, in headless Chromium (Playwright).

The camera table shows one page at a time (50 rows by default) with a pager, filters by name and state
and sorts, all done by the server; the Sightings page draws a lane per camera for the chosen day and
lists the sightings, filtered by person and camera. The pages run under their own CSP, and no CSP
violation or script error may occur. Screenshots go to test-artifacts/central-fleet-*.png.
"""

from __future__ import annotations

import datetime as dt

import pytest

from central.models import Person, Sighting
from tests.support.browser import csp_events, expect, watch
from tests.support.central_server import CentralServer
from tests.support.fleet import N_CAMERAS, add_fleet as _add_fleet

pytestmark = [pytest.mark.browser]

USER, PASSWORD = "alice", "correct horse battery"


@pytest.fixture()
def server(tmp_path):
    server = CentralServer(f"sqlite:///{tmp_path / 'central.db'}").start()
    try:
        server.create_first_admin(USER, PASSWORD)
        yield server
    finally:
        server.stop()


def _login(page, base: str) -> None:
    page.goto(base + "/login")
    page.fill("#login-username", USER)
    page.fill("#login-password", PASSWORD)
    page.click("#login-form button[type=submit]")
    page.wait_for_url(base + "/")


def test_dashboard_pages_filters_and_sorts_500_cameras(server, browser, artifacts):
    cameras = _add_fleet(server)
    summary = server.client.get("/v1/fleet/summary", headers=_bearer(server)).json()
    problems: list[str] = []
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(20000)
    watch(page, problems, record_csp=True)
    try:
        _login(page, server.base)
        rows = page.locator("#camera-rows > tr")
        expect(rows).to_have_count(50)
        expect(page.locator("#cam-range")).to_have_text(f"1–50 of {N_CAMERAS}")
        expect(page.locator("#camera-count")).to_have_text(f"({summary['online']} of {N_CAMERAS} online)")
        by_name = sorted(cameras, key=lambda c: (c.name.lower(), c.id))
        expect(rows.first.locator(".cam-name")).to_have_text(by_name[0].name)
        expect(page.locator("#cam-prev")).to_be_disabled()
        page.screenshot(path=str(artifacts / "central-fleet-list.png"), full_page=True)

        page.click("#cam-next")
        expect(page.locator("#cam-range")).to_have_text(f"51–100 of {N_CAMERAS}")
        expect(rows.first.locator(".cam-name")).to_have_text(by_name[50].name)
        page.click("#cam-prev")
        expect(page.locator("#cam-range")).to_have_text(f"1–50 of {N_CAMERAS}")

        page.select_option("#cam-state", "disabled")
        expect(page.locator("#cam-range")).to_have_text(f"1–50 of {summary['disabled']}")
        assert set(rows.locator(".state").all_inner_texts()) == {"disabled"}

        page.fill("#cam-q", "GARAGE 01")
        wanted = sorted(c.name for c in cameras if "garage 01" in c.name.lower() and c.disabled)
        expect(rows).to_have_count(len(wanted))
        assert rows.locator(".cam-name").all_inner_texts() == wanted

        page.fill("#cam-q", "no such camera")
        expect(page.locator("#no-match")).to_be_visible()
        expect(page.locator("#no-cameras")).to_be_hidden()
        page.fill("#cam-q", "")
        page.select_option("#cam-state", "")
        page.select_option("#cam-sort", "-paired")
        newest = sorted(cameras, key=lambda c: (c.paired_at, c.id), reverse=True)[0]
        expect(rows.first.locator(".cam-name")).to_have_text(newest.name)
        page.select_option("#cam-per-page", "200")
        expect(rows).to_have_count(200)
        expect(page.locator("#cam-range")).to_have_text(f"1–200 of {N_CAMERAS}")
        assert not problems and not csp_events(page), problems
    finally:
        context.close()


def _bearer(server: CentralServer) -> dict[str, str]:
    r = server.client.post("/v1/auth/token", data={"username": USER, "password": PASSWORD})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def test_sightings_page_shows_who_was_where_and_filters(server, browser, artifacts):
    cameras = _add_fleet(server, n=4)
    now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    day = (now - dt.timedelta(days=1)).replace(hour=0, minute=0, second=0)  # yesterday, a whole day in the past
    old = day - dt.timedelta(days=3)
    with server.state.sessions() as db:
        ada, grace = Person(name="Ada"), Person(name="Grace")
        db.add_all([ada, grace])
        db.flush()
        plan = [(ada, cameras[0], 1), (grace, cameras[1], 2), (ada, cameras[2], 3), (grace, cameras[0], 4)]
        for person, camera, k in plan:
            start = day + dt.timedelta(hours=k)
            db.add(Sighting(person_id=person.id, camera_id=camera.id, started_at=start,
                            ended_at=start + dt.timedelta(minutes=3), detections=k))
        db.add(Sighting(person_id=ada.id, camera_id=cameras[3].id, started_at=old + dt.timedelta(hours=9),
                        ended_at=old + dt.timedelta(hours=9, minutes=1), detections=1))
        db.commit()
        ada_id = ada.id
    problems: list[str] = []
    context = browser.new_context(viewport={"width": 1280, "height": 900}, timezone_id="UTC")
    page = context.new_page()
    page.set_default_timeout(20000)
    watch(page, problems, record_csp=True)
    try:
        _login(page, server.base)
        page.click("#nav-sightings")
        page.wait_for_url(server.base + "/sightings*")
        expect(page.locator("#sg-day")).to_have_value(now.date().isoformat())  # today by default
        expect(page.locator("#sg-day-title")).to_contain_text("Today")
        page.fill("#sg-day", day.date().isoformat())
        page.dispatch_event("#sg-day", "change")
        expect(page.locator("#sg-day-title")).to_contain_text("Yesterday")
        items = page.locator("#sg-list > li")
        expect(items).to_have_count(4)  # that day's four; the one three days earlier is another day
        lanes = page.locator("#sg-bar .bar-row")
        expect(lanes).to_have_count(3)
        assert sorted(lanes.locator(".bar-cam").all_inner_texts()) == sorted(c.name for c in cameras[:3])
        expect(page.locator(f"#sg-bar .bar-row[data-camera-id='{cameras[0].id}'] .bar-seg")).to_have_count(2)
        expect(items.first.locator(".s-person")).to_have_text("Grace")  # newest end first
        expect(page.locator("#sg-legend li")).to_have_text(["Ada", "Grace"])
        colours = page.eval_on_selector_all(
            "#sg-bar .bar-seg", "segs => segs.map(s => [s.dataset.personId, getComputedStyle(s).backgroundColor])")
        by_person: dict[str, set[str]] = {}
        for person_id, colour in colours:
            by_person.setdefault(person_id, set()).add(colour)
        assert len(by_person) == 2 and all(len(c) == 1 for c in by_person.values())
        assert len(set.union(*by_person.values())) == 2  # each person one colour, the two apart
        page.screenshot(path=str(artifacts / "central-fleet-sightings.png"), full_page=True)

        page.select_option("#sg-person", ada_id)
        expect(items).to_have_count(2)
        assert set(items.locator(".s-person").all_inner_texts()) == {"Ada"}
        page.select_option("#sg-camera", cameras[2].id)
        expect(items).to_have_count(1)
        expect(items.first.locator(".s-camera")).to_have_text(cameras[2].name)

        page.select_option("#sg-camera", "")
        old_day = old.date().isoformat()
        page.fill("#sg-day", old_day)
        page.dispatch_event("#sg-day", "change")
        expect(items).to_have_count(1)
        expect(items.first.locator(".s-camera")).to_have_text(cameras[3].name)
        assert f"day={old_day}" in page.url and f"person={ada_id}" in page.url
        page.reload()  # the filter survives a reload (kept in the address)
        expect(items).to_have_count(1)
        expect(page.locator("#sg-person")).to_have_value(ada_id)
        assert not problems and not csp_events(page), problems
    finally:
        context.close()
