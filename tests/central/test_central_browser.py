"""The central dashboard in a real browser: headless Chromium (Playwright) against the real central server.

First-run setup with the bootstrap password from the server's log, login, a scan that finds a camera,
pairing it with the code it asked for (a wrong code first: the server's message is shown), the camera
coming online with its heartbeat, rename, disable/enable, secret rotation, the live view (WebRTC page
in a frame, MJPEG image opened with a viewer ticket, RTSP URL), unpair, admins, API tokens, logout, and a 360 px phone screen
without horizontal scrolling. The page runs under its own CSP (not bypassed) and no CSP violation or
script error may occur. Screenshots go to test-artifacts/central-*.png.

The camera is simulated: it talks to the central server through the device-facing HTTP API, and a
small HTTP server stands in for its own endpoints (``/health`` for the scan, a WebRTC page, MJPEG that
checks the viewer ticket with the camera's own verifier).
"""

from __future__ import annotations

import json
import re
import secrets
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import cv2
import httpx
import numpy as np
import pytest

from pcs_common.viewer_ticket import TicketError, TicketVerifier
from tests.support.browser import expect, watch
from tests.support.central_web import PASSWORD, SimulatedCamera, USER, bearer_headers, start_central
from tests.support.net import free_port

pytestmark = [pytest.mark.browser]



HARDWARE_ID = secrets.token_hex(16)
RTSP_URL = "rtsp://127.0.0.1:8554/cam"


class FakeCameraEndpoints:
    """What a camera serves itself, on a real socket: ``/health`` (answers a scan), ``/cam`` (stands in
    for the MediaMTX WebRTC page) and ``/v1/camera/mjpeg`` (a multipart MJPEG stream of 320x240 frames)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.mjpeg_clients = 0
        self.verifier = TicketVerifier()
        self.credentials = lambda: None  # () -> (device_id, device_secret) once paired
        self.stopping = threading.Event()
        frames = []
        for i in range(4):
            img = np.full((240, 320, 3), 40 + 50 * i, np.uint8)
            cv2.putText(img, f"frame {i}", (40, 130), cv2.FONT_HERSHEY_SIMPLEX, 1.2, (255, 255, 255), 2)
            frames.append(cv2.imencode(".jpg", img)[1].tobytes())
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:  # quiet
                pass

            def _send(self, status: int, ctype: str, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                if self.path == "/health":
                    body = {"status": "healthy", "hardware_id": HARDWARE_ID, "version": "0.1.0"}
                    self._send(200, "application/json", json.dumps(body).encode())
                elif self.path == "/cam":
                    page = b"<!doctype html><title>WebRTC</title><h1 id='fake-webrtc'>WebRTC player</h1>"
                    self._send(200, "text/html; charset=utf-8", page)
                elif self.path.startswith("/v1/camera/mjpeg"):
                    # the camera's own check of the dashboard's viewer ticket
                    ticket = parse_qs(urlsplit(self.path).query).get("ticket", [""])[0]
                    try:
                        owner.verifier.verify(ticket, *owner.credentials())
                    except (TicketError, TypeError) as exc:
                        self._send(401, "application/json", json.dumps({"detail": str(exc)}).encode())
                        return
                    owner.mjpeg_clients += 1
                    self.send_response(200)
                    self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
                    self.end_headers()
                    i = 0
                    try:
                        while not owner.stopping.is_set() and i < 300:
                            jpg = frames[i % len(frames)]
                            self.wfile.write(b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: "
                                             + str(len(jpg)).encode() + b"\r\n\r\n" + jpg + b"\r\n")
                            self.wfile.flush()
                            i += 1
                            time.sleep(0.1)
                    except (BrokenPipeError, ConnectionResetError):
                        pass
                else:
                    self._send(404, "text/plain", b"not found")

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> FakeCameraEndpoints:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def central(tmp_path_factory):
    proc = start_central(tmp_path_factory.mktemp("central-browser"))
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def endpoints():
    fake = FakeCameraEndpoints().start()
    yield fake
    fake.stop()




def _no_horizontal_scroll(page) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 360, f"{page.url} is {width} px wide at 360 px"


def test_first_run_pair_manage_watch_and_unpair_a_camera(central, endpoints, browser, artifacts):
    problems: list[str] = []
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(20000)  # argon2 logins take seconds on a loaded 2-core machine
    watch(page, problems)
    base = central.base
    try:
        # ---- first start: the first-run form, a wrong bootstrap password, then the right one
        page.goto(base + "/")
        assert page.url == base + "/login"
        expect(page.locator("#setup-form")).to_be_visible()
        expect(page.locator("#login-form")).to_be_hidden()
        page.fill("#setup-bootstrap", "not-the-bootstrap-password")
        page.fill("#setup-username", USER)
        page.fill("#setup-password", PASSWORD)
        page.fill("#setup-confirm", PASSWORD)
        page.click("#setup-form button[type=submit]")
        expect(page.locator("#setup-error")).to_contain_text("wrong bootstrap password")
        page.fill("#setup-bootstrap", central.bootstrap_password())
        page.screenshot(path=str(artifacts / "central-setup.png"))
        page.click("#setup-form button[type=submit]")
        expect(page.locator("#login-form")).to_be_visible()
        expect(page.locator("#setup-form")).to_be_hidden()
        expect(page.locator("#login-note")).to_contain_text(f"Admin “{USER}” created")
        expect(page.locator("#login-username")).to_have_value(USER)
        assert httpx.get(base + "/v1/setup").json() == {"bootstrap_open": False}

        # ---- login: a wrong password, then the right one
        page.fill("#login-password", "not-the-password")
        page.click("#login-form button[type=submit]")
        expect(page.locator("#login-error")).to_have_text("Wrong username or password.")
        page.fill("#login-password", PASSWORD)
        page.click("#login-form button[type=submit]")
        page.wait_for_url(base + "/")
        expect(page.locator("#who")).to_have_text(USER)
        expect(page.locator("#no-cameras")).to_be_visible()
        api = bearer_headers(central)

        # ---- a scan finds the camera's endpoints
        page.fill("#scan-cidr", "127.0.0.1/32")
        page.fill("#scan-port", str(endpoints.port))
        page.click("#scan-form button[type=submit]")
        expect(page.locator("#scan-msg")).to_have_text("Found 1 camera(s) in 127.0.0.1/32.")
        found = page.locator("#discovered li", has_text=f"127.0.0.1:{endpoints.port}")
        expect(found).to_have_count(1)
        expect(page.locator("#no-discovered")).to_be_hidden()

        # ---- the camera asks for a code; a wrong code shows the server's message verbatim
        cam = SimulatedCamera.ask_for_code(base, HARDWARE_ID, name="porch", api_url=endpoints.base, rtsp_url=RTSP_URL)
        found.locator("button[data-action=pair]").click()
        expect(page.locator("#pair-name")).to_have_value("127.0.0.1")
        page.fill("#pair-name", "Front door")
        page.fill("#pair-code", "ZZZZ-ZZZZ")
        page.click("#pair-form button[type=submit]")
        expect(page.locator("#pair-msg")).to_have_class("msg error")
        refused = httpx.post(base + "/v1/cameras/pair", json={"code": "ZZZZ-ZZZZ", "name": "x"}, headers=api)
        assert refused.status_code == 404
        expect(page.locator("#pair-msg")).to_have_text(refused.json()["detail"])

        # ---- the right code: the camera appears, awaiting the camera
        page.fill("#pair-code", cam.code)
        page.click("#pair-form button[type=submit]")
        expect(page.locator("#pair-msg")).to_contain_text("Paired “Front door”")
        row = page.locator("#camera-rows tr", has_text="Front door")
        expect(row).to_have_count(1)
        expect(row.locator(".state")).to_have_text("awaiting camera")
        expect(row.locator(".hw")).to_have_text(HARDWARE_ID)
        expect(found).to_have_count(0)  # paired now: no longer in "Discovered, not paired"

        # ---- the camera collects its credentials and reports in: online at the next refresh (5 s)
        assert cam.collect()
        endpoints.credentials = lambda: (cam.device_id, cam.device_secret)
        status = {"streaming": True, "detection_fps": 5.1, "temperature_c": 41.5, "version": "0.1.0",
                  "api_url": endpoints.base, "mjpeg_path": "/v1/camera/mjpeg",
                  "webrtc_url": endpoints.base + "/cam", "rtsp_url": RTSP_URL}
        assert cam.heartbeat(**status).status_code == 200
        expect(row.locator(".state")).to_have_text("online", timeout=8000)
        expect(row.locator(".fps")).to_have_text("5.1 fps")
        expect(row.locator(".temp")).to_have_text("41.5 °C")
        expect(row.locator(".streaming")).to_have_text("yes")
        expect(row.locator(".version")).to_have_text("0.1.0")
        expect(row.locator(".seen")).to_have_text("just now")
        expect(page.locator("#camera-count")).to_have_text("(1 of 1 online)")
        page.screenshot(path=str(artifacts / "central-dashboard.png"), full_page=True)

        # ---- rename through the dialog
        row.locator("button[data-action=rename]").click()
        expect(page.locator("#ask")).to_be_visible()
        expect(page.locator("#ask-input")).to_have_value("Front door")
        page.fill("#ask-input", "Garden gate")
        page.click("#ask-ok")
        row = page.locator("#camera-rows tr", has_text="Garden gate")
        expect(row).to_have_count(1)
        camera_id = row.get_attribute("data-id")
        assert httpx.get(f"{base}/v1/cameras/{camera_id}", headers=api).json()["name"] == "Garden gate"

        # ---- disable: the badge changes and the camera is refused; enable again
        row.locator("button[data-action=toggle]").click()
        expect(row.locator(".state")).to_have_text("disabled")
        expect(row.locator(".state .badge")).to_have_class("badge state-disabled")
        expect(row.locator("button[data-action=toggle]")).to_have_text("Enable")
        assert cam.heartbeat(**status).status_code == 403
        row.locator("button[data-action=toggle]").click()
        expect(row.locator(".state")).to_have_text("online")
        assert cam.heartbeat(**status).status_code == 200

        # ---- rotate the secret: pending until the camera uses the new one
        old_secret = cam.device_secret
        row.locator("button[data-action=rotate]").click()
        expect(row.locator("button[data-action=rotate]")).to_have_text("Rotation pending")
        expect(row.locator("button[data-action=rotate]")).to_be_disabled()
        assert cam.heartbeat(**status).status_code == 200 and cam.device_secret != old_secret
        assert cam.heartbeat(**status).status_code == 200  # with the new secret: rotation done
        expect(row.locator("button[data-action=rotate]")).to_have_text("Rotate secret", timeout=8000)

        # ---- live view: the WebRTC page in a frame, the MJPEG stream, the RTSP URL
        row.locator("a[data-action=live]").click()
        page.wait_for_url(f"{base}/cameras/{camera_id}/live")
        expect(page.locator("#live-name")).to_have_text("Garden gate")
        expect(page.locator("#webrtc")).to_have_attribute("src", endpoints.base + "/cam")
        expect(page.frame_locator("#webrtc").locator("#fake-webrtc")).to_have_text("WebRTC player")
        expect(page.locator("#rtsp-url")).to_have_value(RTSP_URL)
        expect(page.locator("#st-fps")).to_have_text("5.1 fps")
        expect(page.locator("#st-temp")).to_have_text("41.5 °C")
        expect(page.locator("#live-state")).to_have_text("online")
        expect(page.locator("#mjpeg-view")).to_be_hidden()
        page.screenshot(path=str(artifacts / "central-live-webrtc.png"))
        page.click("#view-toggle")
        expect(page.locator("#webrtc-view")).to_be_hidden()
        mjpeg = page.locator("#mjpeg")
        expect(mjpeg).to_be_visible()
        expect(mjpeg).to_have_attribute("src", re.compile("^" + re.escape(endpoints.base + "/v1/camera/mjpeg?ticket=")))
        box = mjpeg.bounding_box()
        deadline = time.monotonic() + 8
        while mjpeg.evaluate("img => img.naturalWidth") != 320 and time.monotonic() < deadline:
            page.wait_for_timeout(100)
        assert mjpeg.evaluate("img => [img.naturalWidth, img.naturalHeight]") == [320, 240]
        assert endpoints.mjpeg_clients >= 1 and box and box["width"] > 300
        expect(page.locator("#mjpeg-msg")).to_have_text("")
        page.screenshot(path=str(artifacts / "central-live-mjpeg.png"))

        # ---- a phone: no horizontal scroll on the dashboard, the live view and the login page
        phone = browser.new_context(viewport={"width": 360, "height": 740}, device_scale_factor=2, is_mobile=True,
                                    storage_state=context.storage_state())
        try:
            p = phone.new_page()
            watch(p, problems)
            p.goto(base + "/")
            expect(p.locator("#camera-rows tr", has_text="Garden gate")).to_have_count(1)
            expect(p.locator("#camera-rows .fps")).to_have_text("5.1 fps")
            _no_horizontal_scroll(p)
            p.screenshot(path=str(artifacts / "central-phone-360.png"), full_page=True)
            p.goto(f"{base}/cameras/{camera_id}/live")
            expect(p.frame_locator("#webrtc").locator("#fake-webrtc")).to_have_text("WebRTC player")
            _no_horizontal_scroll(p)
            p.screenshot(path=str(artifacts / "central-phone-live.png"), full_page=True)
        finally:
            phone.close()
        anonymous = browser.new_context(viewport={"width": 360, "height": 740}, is_mobile=True)
        try:
            p = anonymous.new_page()
            p.goto(base + "/")
            expect(p.locator("#login-form")).to_be_visible()
            _no_horizontal_scroll(p)
            p.screenshot(path=str(artifacts / "central-phone-login.png"))
        finally:
            anonymous.close()

        # ---- unpair, after confirming: the row disappears and the camera is refused
        page.click("#back")
        page.wait_for_url(base + "/")
        row = page.locator("#camera-rows tr", has_text="Garden gate")
        row.locator("button[data-action=unpair]").click()
        expect(page.locator("#ask-text")).to_contain_text("Unpair “Garden gate”?")
        page.click("#ask-cancel")
        expect(page.locator("#ask")).to_be_hidden()
        expect(row).to_have_count(1)
        row.locator("button[data-action=unpair]").click()
        page.click("#ask-ok")
        expect(row).to_have_count(0)
        expect(page.locator("#no-cameras")).to_be_visible()
        expect(page.locator("#cameras-msg")).to_have_text("Unpaired “Garden gate”.")
        assert httpx.get(base + "/v1/cameras", headers=api).json() == []
        assert cam.heartbeat(**status).status_code == 401
        # ... and, unpaired again, it is back among the discovered cameras
        expect(page.locator("#discovered li", has_text=f"127.0.0.1:{endpoints.port}")).to_have_count(1)

        # ---- admins: add, disable, delete
        page.click("#admins-card summary >> text=Add an admin")
        page.fill("#admin-username", "second-admin")
        page.fill("#admin-password", "second-admin-password")
        page.click("#admin-form button[type=submit]")
        second = page.locator("#admins li", has_text="second-admin")
        expect(second).to_have_count(1)
        expect(page.locator("#admins li", has_text="(you)")).to_contain_text(USER)
        second.locator("button[data-action=toggle]").click()
        expect(second.locator(".badge")).to_have_text("disabled")
        second.locator("button[data-action=delete]").click()
        page.click("#ask-ok")
        expect(second).to_have_count(0)
        assert [a["username"] for a in httpx.get(base + "/v1/admins", headers=api).json()] == [USER]

        # ---- API tokens: create (shown once), use, revoke
        expect(page.locator("#no-tokens")).to_be_visible()
        page.click("#tokens-card summary >> text=Create a token")
        page.fill("#token-name", "nightly-backup")
        page.check("#token-form input[value=cameras]")
        page.click("#token-form button[type=submit]")
        expect(page.locator("#new-token")).to_be_visible()
        expect(page.locator("#no-tokens")).to_be_hidden()
        token = page.input_value("#new-token-value")
        assert token.startswith("pcs_")
        listed = page.locator("#tokens li", has_text="nightly-backup")
        expect(listed).to_contain_text("scopes: cameras, read")
        expect(listed).to_contain_text(token[:8])
        page.click("#new-token-copy")
        expect(page.locator("#new-token-msg")).not_to_have_text("")
        page.screenshot(path=str(artifacts / "central-token.png"), full_page=True)
        as_token = {"Authorization": f"Bearer {token}"}
        assert httpx.get(base + "/v1/cameras", headers=as_token).status_code == 200
        listed.locator("button[data-action=revoke]").click()
        page.click("#ask-ok")
        expect(listed.locator(".badge")).to_have_text("revoked")
        assert httpx.get(base + "/v1/cameras", headers=as_token).status_code == 401

        # ---- change my password: the session ends, the new password logs in
        new_password = PASSWORD + "-changed"
        page.click("#admins-card summary >> text=Change my password")
        page.fill("#pw-current", PASSWORD)
        page.fill("#pw-new", new_password)
        page.click("#password-form button[type=submit]")
        expect(page.locator("#admins-msg")).to_contain_text("Password changed")
        page.wait_for_url(base + "/login")
        page.fill("#login-username", USER)
        page.fill("#login-password", new_password)
        page.click("#login-form button[type=submit]")
        page.wait_for_url(base + "/")
        expect(page.locator("#who")).to_have_text(USER)

        # ---- log out: back to the login page, the dashboard is closed
        page.click("#logout")
        page.wait_for_url(base + "/login")
        page.goto(base + "/")
        assert page.url == base + "/login"
        assert page.request.get(base + "/v1/cameras").status == 401
        assert problems == [], problems
    finally:
        context.close()
