"""The people page in a real browser: headless Chromium (Playwright) against the real central server.

A simulated camera, paired through the API, uploads face events with real encodings (the face of the
bundled carphone video, scikit-image's astronaut) as a camera computes them. In the page: the
astronaut's faces appear under Unknown faces with crops that load, and are named in one step; a person
is created and enrolled by uploading a frame of the video (a face-free photo first: the server's
message is shown); later sightings appear in the person's timeline (last seen, the 24 h bar, the days);
rename, merge and delete (after confirming) work; a 360 px phone screen does not scroll sideways. The
page runs under its own CSP (not bypassed): no CSP violation or script error may occur. Screenshots go
to test-artifacts/central-people-*.png.
"""

from __future__ import annotations

import datetime as dt
import json

import cv2
import httpx
import pytest

from tests.support.browser import csp_events, expect, watch
from tests.support.central_api import event
from tests.support.central_web import PASSWORD, SimulatedCamera, USER, bearer_headers, create_first_admin, start_central
from tests.support.faces import astronaut, camera_encoding, carphone_frames, to_jpeg
from tests.support.paths import FACE_FREE as BIKES

pytestmark = [pytest.mark.browser]



# every securitypolicyviolation event of the page, kept for the end of the test
RECORD_CSP = ("window.__csp = []; document.addEventListener('securitypolicyviolation', "
              "e => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI));")


def bikes_frame_jpeg() -> bytes:
    """A frame of tests/data/bikes.mp4 (no face in it) as a JPEG."""
    cap = cv2.VideoCapture(str(BIKES))
    ok, frame = cap.read()
    cap.release()
    assert ok, f"cannot read {BIKES}"
    return to_jpeg(frame)


class Camera:
    """A paired camera sending face events through the device API (HTTP Basic)."""

    def __init__(self, base: str, api: dict[str, str], name: str) -> None:
        sim = SimulatedCamera.ask_for_code(base, name="sim")
        r = httpx.post(base + "/v1/cameras/pair", json={"code": sim.code, "name": name}, headers=api, timeout=10)
        assert r.status_code == 201, r.text
        assert sim.collect()
        assert sim.heartbeat(streaming=True).status_code == 200
        self.base, self.id, self.sim = base, r.json()["id"], sim

    def send(self, *faces: tuple[list[float], dt.datetime, bytes | None]) -> None:
        """One face event per ``(encoding, captured_at, crop JPEG)``; all must be stored."""
        items = [event(enc, at, crop=crop) for enc, at, crop in faces]
        r = httpx.post(self.base + "/v1/ingest/events", content=json.dumps({"items": items}),
                       headers={"content-type": "application/json"},
                       auth=(self.sim.device_id, self.sim.device_secret), timeout=30)
        assert r.status_code == 200, r.text
        assert [x["status"] for x in r.json()["results"]] == ["stored"] * len(items), r.text


@pytest.fixture(scope="module")
def central(tmp_path_factory):
    proc = start_central(tmp_path_factory.mktemp("central-people-browser"))
    try:
        create_first_admin(proc)
        yield proc
    finally:
        proc.stop()





def _person_row(page, name: str):
    return page.locator("#people > li", has=page.locator(".person-name", has_text=name))


def test_unknown_faces_enrolment_timeline_merge_and_delete(central, browser, artifacts):
    base = central.base
    api = bearer_headers(central)
    frames = carphone_frames()
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    cam = Camera(base, api, "Front door")

    # the astronaut, twice, with her face crops: one unknown group
    seen = now - dt.timedelta(hours=2, minutes=10)
    cam.send((camera_encoding(astronaut()), seen, to_jpeg(astronaut()[60:200, 150:300])),
             (camera_encoding(cv2.flip(astronaut(), 1)), seen + dt.timedelta(seconds=5),
              to_jpeg(astronaut()[50:210, 140:310])))
    groups = httpx.get(base + "/v1/unknown-groups", headers=api).json()
    assert len(groups) == 1 and groups[0]["faces"] == 2

    problems: list[str] = []
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(8000)
    watch(page, problems, record_csp=True)
    try:
        # ---- log in, then the People link in the dashboard's header
        page.goto(base + "/login")
        page.fill("#login-username", USER)
        page.fill("#login-password", PASSWORD)
        page.click("#login-form button[type=submit]")
        page.wait_for_url(base + "/")
        page.click("#nav-people")
        page.wait_for_url(base + "/people")
        expect(page.locator("#who")).to_have_text(USER)
        expect(page.locator("#no-people")).to_be_visible()

        # ---- unknown faces: the astronaut's group, its crops loaded through the session cookie
        group = page.locator("#groups > li")
        expect(group).to_have_count(1)
        expect(group.locator(".status")).to_contain_text("2 faces · Front door · last seen 2 h ago")
        crops = group.locator(".crops img")
        expect(crops).to_have_count(2)
        for i in range(2):
            crops.nth(i).evaluate("img => img.complete || new Promise(r => img.addEventListener('load', r, {once: true}))")
            assert crops.nth(i).evaluate("img => img.naturalWidth") > 0
        assert crops.first.get_attribute("src") == groups[0]["samples"][0]["crop_url"]
        expect(page.locator("#unknown-count")).to_have_text("(1 group, 2 faces)")
        page.screenshot(path=str(artifacts / "central-people-unknown.png"), full_page=True)

        # ---- "This is… a new person: Astronaut"
        expect(group.locator("select[data-action=who]")).to_have_value("")
        group.locator("input[name=name]").fill("Astronaut")
        group.locator("button[data-action=assign]").click()
        expect(page.locator("#groups-msg")).to_have_text("Named “Astronaut”: 2 faces enrolled.")
        expect(group).to_have_count(0)
        expect(page.locator("#no-groups")).to_be_visible()
        astro = _person_row(page, "Astronaut")
        expect(astro).to_have_count(1)
        expect(astro.locator(".faces")).to_have_text("2 faces enrolled")
        expect(astro.locator(".seen")).to_have_text("last seen on Front door, 2 h ago")

        # ---- create the driver; a photo without a face shows the server's message verbatim
        page.fill("#person-name", "Driver")
        page.click("#person-form button[type=submit]")
        driver = _person_row(page, "Driver")
        expect(driver).to_have_count(1)
        expect(driver.locator(".seen")).to_have_text("never seen")
        driver_id = driver.get_attribute("data-id")
        bikes = bikes_frame_jpeg()
        refused = httpx.post(f"{base}/v1/people/{driver_id}/faces", files={"file": ("b.jpg", bikes, "image/jpeg")},
                             headers=api, timeout=30)
        assert refused.status_code == 422 and "0 found" in refused.json()["detail"]
        driver.locator("input[type=file]").set_input_files(
            {"name": "bikes.jpg", "mimeType": "image/jpeg", "buffer": bikes})
        expect(page.locator("#people-msg")).to_have_text(refused.json()["detail"])
        expect(page.locator("#people-msg")).to_have_class("msg error")
        expect(driver.locator(".faces")).to_have_text("0 faces enrolled")

        # ---- enrol a frame of the sample video through the file input
        driver.locator("input[type=file]").set_input_files(
            {"name": "carphone.jpg", "mimeType": "image/jpeg", "buffer": to_jpeg(frames[10])})
        expect(page.locator("#people-msg")).to_have_text("Added a face to “Driver”: 1 face enrolled.")
        expect(driver.locator(".faces")).to_have_text("1 face enrolled")

        # ---- the camera sees the driver: twice 40 s apart half an hour ago (one sighting), once 30 h ago
        enc = camera_encoding(frames[110])
        cam.send((enc, now - dt.timedelta(minutes=30), None), (enc, now - dt.timedelta(minutes=30, seconds=-40), None),
                 (enc, now - dt.timedelta(hours=30), None))
        found = httpx.get(base + "/v1/sightings", params={"person_id": driver_id}, headers=api).json()
        assert [(s["camera_name"], s["detections"], s["duration_s"]) for s in found] == [
            ("Front door", 2, 40.0), ("Front door", 1, 0.0)]

        # ---- the timeline: where last seen, the 24 h bar, the sightings by day
        driver.locator("button[data-action=timeline]").last.click()
        card = page.locator("#timeline-card")
        expect(card).to_be_visible()
        expect(page.locator("#tl-name")).to_have_text("Driver")
        expect(page.locator("#tl-last .tl-last-camera")).to_have_text("Front door")
        expect(page.locator("#tl-last .tl-last-ago")).to_have_text("29 min ago")
        expect(page.locator("#tl-last")).to_contain_text("40 s · 2 detections")
        rows = page.locator("#tl-bar .bar-row")
        expect(rows).to_have_count(1)  # the sighting of 30 h ago is outside the last 24 h
        expect(rows.locator(".bar-cam")).to_have_text("Front door")
        seg = rows.locator(".bar-seg")
        expect(seg).to_have_count(1)
        left = float(seg.evaluate("s => s.style.getPropertyValue('--left')").rstrip("%"))
        assert 97.8 < left < 98.0, left  # 23.5 h after the start of the window
        track = rows.locator(".bar-track").bounding_box()
        box = seg.bounding_box()
        assert box["x"] > track["x"] + 0.97 * track["width"] and box["width"] >= 2
        days = page.locator("#tl-days .day")
        expect(days).to_have_count(2)
        newest = days.first.locator("li.sighting")
        expect(newest).to_have_count(1)
        expect(newest.locator(".s-camera")).to_have_text("Front door")
        expect(newest.locator(".s-duration")).to_have_text("40 s")
        expect(newest.locator(".s-detections")).to_have_text("2 detections")
        expect(days.nth(1).locator(".s-detections")).to_have_text("1 detection")
        start = (now - dt.timedelta(minutes=30)).astimezone()  # the browser runs in this machine's zone
        expect(newest.locator(".s-time")).to_contain_text(start.strftime("%M:%S"))
        expect(driver.locator(".seen")).to_have_text("last seen on Front door, 29 min ago")
        page.screenshot(path=str(artifacts / "central-people-timeline.png"), full_page=True)

        # ---- rename through the dialog
        driver.locator("button[data-action=rename]").click()
        expect(page.locator("#ask-input")).to_have_value("Driver")
        page.fill("#ask-input", "The driver")
        page.click("#ask-ok")
        driver = _person_row(page, "The driver")
        expect(driver).to_have_count(1)
        expect(page.locator("#tl-name")).to_have_text("The driver")

        # ---- a duplicate person (another photo), merged into the driver through the select
        twin = httpx.post(base + "/v1/people", json={"name": "Driver (2)"}, headers=api).json()
        r = httpx.post(f"{base}/v1/people/{twin['id']}/faces", headers=api, timeout=30,
                       files={"file": ("c.jpg", to_jpeg(frames[110]), "image/jpeg")})
        assert r.status_code == 201, r.text
        expect(_person_row(page, "Driver (2)")).to_have_count(1, timeout=8000)  # the 5 s refresh
        driver.locator("button[data-action=merge]").click()
        expect(page.locator("#ask-select")).to_be_visible()
        expect(page.locator("#ask-input")).to_be_hidden()
        page.select_option("#ask-select", twin["id"])
        page.screenshot(path=str(artifacts / "central-people-merge.png"))
        page.click("#ask-ok")
        expect(page.locator("#people-msg")).to_have_text("Merged “Driver (2)” into “The driver” (2 faces enrolled).")
        expect(_person_row(page, "Driver (2)")).to_have_count(0)
        expect(driver.locator(".faces")).to_have_text("2 faces enrolled")
        assert httpx.get(f"{base}/v1/people/{twin['id']}", headers=api).status_code == 404

        # ---- delete the astronaut: cancel first, then confirm
        astro.locator("button[data-action=delete]").click()
        expect(page.locator("#ask-text")).to_have_text(
            "Delete “Astronaut”? This erases all their faces, crops and sightings.")
        page.click("#ask-cancel")
        expect(astro).to_have_count(1)
        astro.locator("button[data-action=delete]").click()
        page.click("#ask-ok")
        expect(astro).to_have_count(0)
        expect(page.locator("#people-msg")).to_have_text("Deleted “Astronaut” with 2 faces and 1 sighting.")
        assert [p["name"] for p in httpx.get(base + "/v1/people", headers=api).json()] == ["The driver"]
        expect(page.locator("#people-count")).to_have_text("(1)")

        # ---- a phone: the timeline (opened from the address) without horizontal scrolling
        phone = browser.new_context(viewport={"width": 360, "height": 740}, device_scale_factor=2, is_mobile=True,
                                    storage_state=context.storage_state())
        try:
            p = phone.new_page()
            watch(p, problems, record_csp=True)
            p.goto(f"{base}/people#person={driver_id}")
            expect(p.locator("#timeline-card")).to_be_visible()
            expect(p.locator("#tl-days .sighting")).to_have_count(2)
            expect(p.locator("#tl-bar .bar-seg")).to_have_count(1)
            width = p.evaluate("document.documentElement.scrollWidth")
            assert width <= 360, f"the people page is {width} px wide at 360 px"
            p.screenshot(path=str(artifacts / "central-people-phone-360.png"), full_page=True)
            assert csp_events(p) == []
        finally:
            phone.close()

        assert csp_events(page) == []
        assert problems == [], problems
    finally:
        context.close()
