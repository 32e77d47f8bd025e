"""The camera page's controls and details in headless Chromium, against the real service on the sample.

Contrast and saturation sliders centred on 1 (0..1 on the left half, 1..32 logarithmic on the right),
the region of interest in the page, reset to defaults, readable group labels, "1 face", a favicon,
and the face box inside the picture (not in the black bars of ``CAMERA_SCALE_MODE=fit``).
Screenshots go to test-artifacts/.
"""

from __future__ import annotations

import math

import pytest

import tests.support.browser  # noqa: F401 - skips this module without Playwright or Chromium
from pi_camera_service.frames import scale_plan
from tests.support.camera_browser import H, W, api_client as _api, login as _login, service  # noqa: F401 - the module's camera fixture

pytestmark = pytest.mark.browser


def _value(api, name):
    return api.get("/v1/camera/controls").json()["controls"][name]["value"]


def _slide(page, selector: str, position: int) -> None:
    page.eval_on_selector(
        selector, f"e => {{ e.value = '{position}'; e.dispatchEvent(new Event('input', {{bubbles: true}})); }}"
    )


def test_centred_sliders_roi_reset_labels_plural_and_favicon(service, browser, artifacts):  # noqa: F811
    from playwright.sync_api import expect

    context = browser.new_context(viewport={"width": 1280, "height": 1000}, bypass_csp=True)
    page = context.new_page()
    missing: list[str] = []
    page.on("response", lambda r: missing.append(r.url) if r.status == 404 else None)
    api = _api(service)
    try:
        _login(page, service)
        page.wait_for_selector("#c-contrast", timeout=15_000)

        # group labels as words, not identifiers
        legends = page.locator("#controls legend").all_inner_texts()
        assert "Region of interest" in legends and "Day/night" in legends, legends
        assert not {"Roi", "roi", "Day Night", "day night"} & set(legends), legends

        # contrast: a 0..1000 slider whose middle is 1; 0..2 takes 60% of its length (not 6%)
        for name in ("contrast", "saturation"):
            slider = page.locator(f"#c-{name}")
            assert slider.get_attribute("data-scale") == "centred"
            assert (slider.get_attribute("min"), slider.get_attribute("max")) == ("0", "1000")
            assert slider.input_value() == "500"
        two = round(500 * (1 + math.log(2) / math.log(32)))
        assert two == 600
        _slide(page, "#c-contrast", two)
        expect(page.locator("#ctl-contrast output")).to_have_text("2")
        _wait(lambda: _value(api, "contrast") == 2.0, "contrast 2 from 60% of the slider")
        _slide(page, "#c-saturation", 250)  # a quarter: 0.5, linear below 1
        _wait(lambda: _value(api, "saturation") == 0.5, "saturation 0.5 from 25% of the slider")
        _slide(page, "#c-saturation", 1000)
        _wait(lambda: _value(api, "saturation") == 32.0, "saturation 32 at the right end")

        # region of interest: four fields, one PATCH with the rectangle; zoom follows
        for axis, value in (("w", "0.5"), ("h", "0.5"), ("x", "0.25"), ("y", "0.25")):
            page.fill(f"#c-roi-{axis}", value)
            page.dispatch_event(f"#c-roi-{axis}", "change")
        _wait(lambda: _value(api, "roi") == [0.25, 0.25, 0.5, 0.5], "roi from the page")
        assert _value(api, "zoom") == 2.0
        expect(page.locator("#ctl-zoom output")).to_have_text("2")  # the page shows what roi implied
        page.locator("#controls").screenshot(path=str(artifacts / "web-controls-centred-roi.png"))

        # reset to defaults: one click, every supported control back to its default
        page.click("#ctl-reset")
        expect(page.locator("#ctl-done")).to_have_text("Controls reset to their defaults.")
        controls = api.get("/v1/camera/controls").json()["controls"]
        for name in ("contrast", "saturation", "brightness", "sharpness", "roi", "zoom", "day_night"):
            assert controls[name]["value"] == controls[name]["default"], (name, controls[name])
        expect(page.locator("#c-contrast")).to_have_value("500")
        expect(page.locator("#c-roi-w")).to_have_value("1")
        assert page.inner_text("#ctl-msg") == ""

        # "1 face" (the sample shows one person), never "1 faces"
        expect(page.locator("#st-faces")).to_have_text("1 face, 0 profiles", timeout=30_000)

        # the face box lies over the picture, not over the letterbox bars
        page.wait_for_selector("#boxes .box", timeout=30_000)
        box = page.locator("#boxes .box").first.bounding_box()
        img = page.locator("#live").bounding_box()
        sw, _, x0, _ = scale_plan(176, 144, W, H, "fit")
        left, right = img["x"] + img["width"] * x0 / W, img["x"] + img["width"] * (x0 + sw) / W
        assert left - 1 <= box["x"] and box["x"] + box["width"] <= right + 1, (box, left, right)
        page.screenshot(path=str(artifacts / "web-page-details.png"), full_page=True)

        # favicon: linked from the page, served, nothing 404s
        assert page.locator('head link[rel="icon"]').get_attribute("href") == "/favicon.ico"
        icon = page.request.get(service.base + "/favicon.ico")
        assert icon.status == 200 and icon.headers["content-type"] == "image/x-icon"
        assert icon.body()[:4] == b"\x00\x00\x01\x00"  # ICO header
        assert [u for u in missing if "/v1/" not in u] == [], missing  # (/v1/stills/latest: 404 = no still yet)
    finally:
        api.patch("/v1/camera/controls", json={"contrast": 1.0, "saturation": 1.0, "roi": [0, 0, 1, 1]})
        api.close()
        context.close()


def _wait(predicate, message: str) -> None:
    from tests.support.net import wait_until

    wait_until(predicate, 10, message=message)
