"""The central server's live views of a real camera process paired with a real central server process:
the MJPEG stream opens in headless Chromium without a login on the camera (viewer tickets), a ticket
opens only that camera's MJPEG view and only once, the camera listens on no new port, the failure
message shows on every page load, and the grid shows every paired camera.
Screenshots go to test-artifacts/central-live-*.png and central-grid*.png."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import psutil
import pytest

from pcs_common.viewer_ticket import audience, issue_ticket, viewer_key
from tests.support.central_server import bearer
from tests.support.e2e import ADMIN, admin_token, start_camera, start_central, wait_for_code, wait_for_state
from tests.support.net import wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.browser, pytest.mark.xdist_group("central-live")]
PAGE_LOADS = 6


def _first_jpeg(response: httpx.Response, limit: int = 2_000_000) -> bytes:
    """The first JPEG part of a ``multipart/x-mixed-replace`` stream."""
    data = b""
    for chunk in response.iter_bytes():
        data += chunk
        start = data.find(b"\xff\xd8")
        end = data.find(b"\xff\xd9", start + 2) if start >= 0 else -1
        if end > 0:
            return data[start:end + 2]
        assert len(data) < limit, "no JPEG in the first 2 MB of the stream"
    raise AssertionError(f"stream ended without a JPEG: {data[:200]!r}")


class Fleet:
    """A central server process with an admin and two paired camera processes (SQLite)."""

    def __init__(self, tmp: Path) -> None:
        self.central = start_central(tmp, f"sqlite:///{tmp / 'central.db'}")
        self.token = admin_token(self.central)
        self.api = httpx.Client(base_url=self.central.base, headers=bearer(self.token), timeout=30)
        self.cameras = {}
        for name in ("Front door", "Garden"):
            workdir = tmp / name.replace(" ", "-")
            workdir.mkdir()
            camera = start_camera(workdir, self.central)
            code = wait_for_code(camera)
            paired = self.api.post("/v1/cameras/pair", json={"code": code, "name": name})
            assert paired.status_code == 201, paired.text
            wait_for_state(camera, "paired")
            creds = json.loads((workdir / "state" / "central-credentials.json").read_text())
            self.cameras[name] = (camera, paired.json()["id"], creds)
        for _, camera_id, _ in self.cameras.values():
            wait_until(lambda: self.api.post(f"/v1/cameras/{camera_id}/live-ticket").status_code == 200, 30, 0.3,
                       "the camera's heartbeat brought its viewer key")

    def stop(self) -> None:
        for camera, _, _ in self.cameras.values():
            camera.stop()
        self.central.stop()


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    f = Fleet(tmp_path_factory.mktemp("central-live"))
    yield f
    f.stop()


def test_a_ticket_opens_only_its_cameras_mjpeg_view_and_only_once(fleet):
    camera, camera_id, creds = fleet.cameras["Front door"]
    _, other_id, _ = fleet.cameras["Garden"]
    mjpeg = camera.base + "/v1/camera/mjpeg"
    # Without credentials the camera refuses its MJPEG view, as before.
    assert httpx.get(mjpeg, timeout=10).status_code == 401

    issued = fleet.api.post(f"/v1/cameras/{camera_id}/live-ticket")
    assert issued.status_code == 200, issued.text
    body = issued.json()
    assert body["token_type"] == "viewer_ticket" and 0 < body["expires_in"] <= 120
    assert body["mjpeg_url"] == f"{mjpeg}?ticket={body['ticket']}"
    with httpx.stream("GET", body["mjpeg_url"], timeout=20) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("multipart/x-mixed-replace")
        assert _first_jpeg(r)[:2] == b"\xff\xd8"
    # The same ticket again (a replay from a log or history): refused.
    again = httpx.get(body["mjpeg_url"], timeout=10)
    assert again.status_code == 401 and "already used" in again.json()["detail"]

    # A ticket opens nothing but the MJPEG view.
    for path in ("/v1/camera/status", "/v1/camera/snapshot", "/v1/events/stream", "/v1/stills", "/v1/camera/controls"):
        ticket = fleet.api.post(f"/v1/cameras/{camera_id}/live-ticket").json()["ticket"]
        r = httpx.get(camera.base + path, params={"ticket": ticket}, timeout=10)
        assert r.status_code == 401, (path, r.status_code)
        assert "only accepted by GET /v1/camera/mjpeg" in r.json()["detail"]
    # ... and only on its own camera: Garden's ticket is refused by Front door.
    other = fleet.api.post(f"/v1/cameras/{other_id}/live-ticket").json()["ticket"]
    r = httpx.get(mjpeg, params={"ticket": other}, timeout=10)
    assert r.status_code == 401 and "signature invalid" in r.json()["detail"]
    # Even signed with the right key, a ticket for another audience or scope, or too long-lived, is refused.
    key = viewer_key(creds["device_secret"])
    now = int(time.time())
    import jwt

    for claims, message in [
        ({"aud": audience(other_id), "scope": "mjpeg"}, "another camera"),
        ({"aud": audience(camera_id), "scope": "admin"}, "scope"),
        ({"aud": audience(camera_id), "scope": "mjpeg", "exp": now + 86400}, "longer than"),
    ]:
        forged = jwt.encode({"sub": "x", "iat": now, "exp": now + 60, "jti": str(time.time_ns()), **claims}, key)
        r = httpx.get(mjpeg, params={"ticket": forged}, timeout=10)
        assert r.status_code == 401 and message in r.json()["detail"], r.text
    # A ticket together with other credentials or parameters: refused (one method per request).
    ticket = fleet.api.post(f"/v1/cameras/{camera_id}/live-ticket").json()["ticket"]
    r = httpx.get(mjpeg, params={"ticket": ticket}, headers={"X-API-Key": "e2e-camera-key-0123456789"}, timeout=10)
    assert r.status_code == 401 and "nothing else" in r.json()["detail"]

    # The camera's own credentials still work as before.
    with httpx.stream("GET", mjpeg, headers={"X-API-Key": "e2e-camera-key-0123456789"}, timeout=20) as r:
        assert r.status_code == 200

    # Tickets are for logged-in admins: an API token (even with every scope) gets none.
    made = fleet.api.post("/v1/tokens", json={"name": "script", "scopes": ["read", "cameras", "admins"]})
    assert made.status_code == 201, made.text
    r = httpx.post(f"{fleet.central.base}/v1/cameras/{camera_id}/live-ticket", headers=bearer(made.json()["token"]))
    assert r.status_code == 403 and "logged-in admins" in r.json()["detail"]
    assert httpx.post(f"{fleet.central.base}/v1/cameras/{camera_id}/live-ticket").status_code == 401
    assert fleet.api.post("/v1/cameras/no-such-camera/live-ticket").status_code == 404
    # A disabled camera gets no ticket.
    fleet.api.patch(f"/v1/cameras/{camera_id}", json={"disabled": True})
    try:
        r = fleet.api.post(f"/v1/cameras/{camera_id}/live-ticket")
        assert r.status_code == 409 and r.json()["error"] == "camera_disabled"
    finally:
        fleet.api.patch(f"/v1/cameras/{camera_id}", json={"disabled": False})
        wait_for_state(camera, "paired")


def test_the_camera_listens_on_no_new_port(fleet):
    for camera, _, _ in fleet.cameras.values():
        listening = {c.laddr.port for c in psutil.Process(camera.proc.pid).net_connections(kind="inet")
                     if c.status == psutil.CONN_LISTEN}
        assert listening == {camera.port}


def _login(browser, base: str):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15000)
    page.goto(base + "/login")
    page.fill("#login-username", ADMIN[0])
    page.fill("#login-password", ADMIN[1])
    page.click("#login-form button[type=submit]")
    page.wait_for_url(base + "/")
    return context, page


def _frames_shown(img) -> int:
    return img.evaluate("img => img.complete ? img.naturalWidth : 0")


def test_live_view_and_grid_show_the_cameras_in_chromium_without_a_camera_login(fleet, browser, artifacts):
    from tests.support.browser import expect, watch

    problems: list[str] = []
    context, page = _login(browser, fleet.central.base)
    watch(page, problems)
    base = fleet.central.base
    try:
        _, camera_id, _ = fleet.cameras["Front door"]
        row = page.locator("#camera-rows tr", has_text="Front door")
        expect(row.locator(".state")).to_have_text("online")
        row.locator("a[data-action=live]").click()
        page.wait_for_url(f"{base}/cameras/{camera_id}/live")
        for load in range(PAGE_LOADS):
            if load:
                page.reload()
            img = page.locator("#mjpeg")
            expect(img).to_be_visible()
            wait_until(lambda: _frames_shown(img) > 0, 20, 0.1, f"MJPEG frames in page load {load + 1}")
            assert "?ticket=" in img.get_attribute("src")
            expect(page.locator("#mjpeg-msg")).to_have_text("")
        page.screenshot(path=str(artifacts / "central-live-mjpeg-ticket.png"))

        # The grid: one tile per paired camera, each showing its stream; a tile opens its live view.
        page.goto(base + "/")
        page.click("#nav-live")
        page.wait_for_url(base + "/live")
        tiles = page.locator("#tiles .tile")
        expect(tiles).to_have_count(2)
        expect(page.locator("#grid-count")).to_have_text("(2 of 2 online)")
        for name in ("Front door", "Garden"):
            tile = page.locator("#tiles .tile", has_text=name)
            wait_until(lambda: _frames_shown(tile.locator("img")) > 0, 20, 0.1, f"grid tile {name} shows frames")
            expect(tile.locator(".msg")).to_have_text("")
        page.screenshot(path=str(artifacts / "central-grid.png"))
        page.locator("#tiles .tile", has_text="Garden").locator("a").click()
        page.wait_for_url(f"{base}/cameras/{fleet.cameras['Garden'][1]}/live")
        wait_until(lambda: _frames_shown(page.locator("#mjpeg")) > 0, 20, 0.1, "Garden's live view")

        # A phone: the grid in one column without horizontal scrolling.
        phone = browser.new_context(viewport={"width": 360, "height": 740}, is_mobile=True,
                                    storage_state=context.storage_state())
        try:
            p = phone.new_page()
            watch(p, problems)
            p.goto(base + "/live")
            expect(p.locator("#tiles .tile")).to_have_count(2)
            assert p.evaluate("document.documentElement.scrollWidth") <= 360
            p.screenshot(path=str(artifacts / "central-grid-phone.png"), full_page=True)
        finally:
            phone.close()
        assert problems == []
    finally:
        context.close()


def test_an_unreachable_camera_is_explained_on_every_page_load(fleet, browser, artifacts):
    """Runs last in this module: it stops the Garden camera."""
    from tests.support.browser import expect, watch

    camera, camera_id, _ = fleet.cameras["Garden"]
    camera.stop()
    problems: list[str] = []
    context, page = _login(browser, fleet.central.base)
    watch(page, problems)
    try:
        for load in range(PAGE_LOADS):
            page.goto(f"{fleet.central.base}/cameras/{camera_id}/live")
            expect(page.locator("#mjpeg-msg")).to_contain_text("The MJPEG stream did not load")
            expect(page.locator("#mjpeg-msg")).to_have_class("msg error")
        page.screenshot(path=str(artifacts / "central-live-unreachable.png"))
        page.goto(fleet.central.base + "/live")
        expect(page.locator("#tiles .tile", has_text="Garden").locator(".msg")).to_contain_text("did not load")
        front = page.locator("#tiles .tile", has_text="Front door")
        wait_until(lambda: _frames_shown(front.locator("img")) > 0, 20, 0.1, "the other tile still shows frames")
        page.screenshot(path=str(artifacts / "central-grid-one-unreachable.png"))
        assert problems == []
    finally:
        context.close()
