"""The web page in a real browser: headless Chromium (Playwright) against the real service process.

Logs in, checks the live MJPEG view moves, a detection box appears over the sample's face, a control
slider changes the next snapshot, a still opens in full resolution (when the stills API exists),
logging out locks the page and the API, and the page fits a 360 px wide phone screen.
Screenshots go to test-artifacts/.
"""

from __future__ import annotations


import httpx
import numpy as np
import pytest

import tests.support.browser  # noqa: F401 - skips this module without Playwright or Chromium
from tests.support.camera_browser import H, W, api_client as _api, login as _login, service  # noqa: F401 - the module's camera fixture
from tests.support.net import wait_until

pytestmark = pytest.mark.browser


# bypass_csp: the page's CSP (script-src 'self', no eval) would block Playwright's wait_for_function strings


def _snapshot_mean(api: httpx.Client) -> float:
    import cv2

    r = api.get("/v1/camera/snapshot")
    assert r.status_code == 200
    img = cv2.imdecode(np.frombuffer(r.content, np.uint8), cv2.IMREAD_GRAYSCALE)
    return float(img.mean())


def test_login_live_view_boxes_controls_stills_logout(service, browser, artifacts):
    context = browser.new_context(viewport={"width": 1280, "height": 900}, bypass_csp=True)
    page = context.new_page()
    api = _api(service)
    try:
        # a wrong password first: the page again, with a message
        page.goto(service.base + "/login")
        page.fill('input[name="username"]', "admin")
        page.fill('input[name="password"]', "wrong")
        page.click('button[type="submit"]')
        assert "Wrong username or password" in page.inner_text("#login-error")

        _login(page, service)

        # live view: the MJPEG <img> shows frames and they change
        page.wait_for_function("document.getElementById('live').naturalWidth > 0", timeout=20_000)
        live = page.locator("#live")
        first = live.screenshot()
        page.wait_for_timeout(1200)
        second = live.screenshot()
        assert first != second, "the live view did not change in 1.2 s"

        # a detection box over the sample's face, inside the image
        # (read in one step: the page redraws the boxes at each detection result, so an element found
        # by one call may be gone by the next)
        box = page.wait_for_function(
            """() => { const b = document.querySelector('#boxes .box');
                       if (!b) return null;
                       const r = b.getBoundingClientRect();
                       return r.width > 0 ? {x: r.x, y: r.y, width: r.width, height: r.height} : null; }""",
            timeout=30_000).json_value()
        img = live.bounding_box()
        assert box and img and box["width"] > 10 and box["height"] > 10
        assert img["x"] - 1 <= box["x"] and box["x"] + box["width"] <= img["x"] + img["width"] + 1
        assert img["y"] - 1 <= box["y"] and box["y"] + box["height"] <= img["y"] + img["height"] + 1
        page.screenshot(path=str(artifacts / "web-live-detection.png"))

        # status panel filled in
        wait_until(lambda: "fps" in page.inner_text("#st-detect"), 15, message="detection fps in the status panel")
        assert page.inner_text("#st-stream").startswith("stopped")

        # brightness slider -> PATCH (with the CSRF header) -> the next snapshot is brighter
        page.wait_for_selector("#c-brightness", timeout=15_000)
        before = np.mean([_snapshot_mean(api) for _ in range(3)])
        page.eval_on_selector(
            "#c-brightness", "e => { e.value = '0.6'; e.dispatchEvent(new Event('input', {bubbles: true})); }"
        )
        wait_until(
            lambda: abs((api.get("/v1/camera/controls").json()["controls"]["brightness"]["value"] or 0) - 0.6) < 1e-6,
            10, message="brightness 0.6 applied from the page",
        )
        page.wait_for_timeout(500)
        after = np.mean([_snapshot_mean(api) for _ in range(3)])
        assert after > before + 20, f"snapshot mean luma {before:.1f} -> {after:.1f}"
        assert page.inner_text("#ctl-msg") == ""
        page.screenshot(path=str(artifacts / "web-controls-brightness.png"), full_page=True)
        api.patch("/v1/camera/controls", json={"brightness": 0.0})

        # stills: take one from the page and open it in full resolution (when the stills API exists)
        if api.get("/v1/stills/latest").status_code == 404 and api.get("/v1/stills/days").status_code == 404:
            assert "No stills yet" in page.inner_text("#latest")
        else:
            page.click("#still-take")
            page.wait_for_selector("#thumbs figure", timeout=15_000)
            page.click("#thumbs figure >> nth=0")
            page.wait_for_function("document.getElementById('full-img').naturalWidth > 0", timeout=10_000)
            natural = page.eval_on_selector("#full-img", "e => [e.naturalWidth, e.naturalHeight]")
            assert natural == [W, H]
            page.screenshot(path=str(artifacts / "web-still-full.png"))
            page.click("#full form button")  # close

        # log out: the page and the API refuse the browser
        page.click("#logout")
        page.wait_for_url("**/login", wait_until="domcontentloaded")
        page.goto(service.base + "/", wait_until="domcontentloaded")
        assert page.url.endswith("/login")
        assert page.request.get(service.base + "/v1/camera/status").status == 401
        page.screenshot(path=str(artifacts / "web-logged-out.png"))
    finally:
        api.close()
        context.close()


def test_phone_screen_has_no_horizontal_scroll(service, browser, artifacts):
    context = browser.new_context(viewport={"width": 360, "height": 740}, device_scale_factor=2, is_mobile=True, bypass_csp=True)
    page = context.new_page()
    try:
        page.goto(service.base + "/login", wait_until="domcontentloaded")
        assert page.evaluate("document.documentElement.scrollWidth") <= 360
        page.screenshot(path=str(artifacts / "web-phone-login.png"))
        _login(page, service)
        page.wait_for_selector("#controls fieldset", timeout=15_000)
        page.wait_for_function("document.getElementById('live').naturalWidth > 0", timeout=20_000)
        assert page.evaluate("document.documentElement.scrollWidth") <= 360
        page.screenshot(path=str(artifacts / "web-phone-360.png"), full_page=True)
    finally:
        context.close()
