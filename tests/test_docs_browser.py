"""/docs (Swagger UI) and /redoc (ReDoc) render with every request off the machine blocked.

The real camera service and the real central server run on 127.0.0.1; Chromium aborts any request to
another host (a LAN without internet). The pages must show the API's operations from the assets
served by the service itself: no script, stylesheet or font from a CDN.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

import tests.support.browser  # noqa: F401 - skips this module without Playwright or Chromium
from tests.support.browser import watch
from tests.support.central_web import start_central
from tests.support.processes import ServiceProcess, sample_camera_env

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def camera(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("docs-camera")
    env = sample_camera_env(workdir, "docs-test-key-0123456789abcdef", CAMERA_DETECTION_ENABLED="false",
                            CAMERA_STILLS_ENABLED="false", CAMERA_MDNS_ENABLED="false")
    svc = ServiceProcess(env, workdir / "service.log").start()
    yield svc
    svc.stop()


@pytest.fixture(scope="module")
def central(tmp_path_factory):
    proc = start_central(tmp_path_factory.mktemp("docs-central"))
    yield proc
    proc.stop()


def _offline_page(browser, blocked: list[str]):
    context = browser.new_context(viewport={"width": 1280, "height": 900})

    def route(r):
        if urlsplit(r.request.url).hostname in ("127.0.0.1", "localhost"):
            r.continue_()
        else:
            blocked.append((r.request.resource_type, r.request.url))
            r.abort("internetdisconnected")

    context.route("**/*", route)
    return context


@pytest.mark.parametrize("which", ["camera", "central"])
def test_docs_and_redoc_render_offline(which, request, browser, artifacts):
    svc = request.getfixturevalue(which)
    blocked: list[str] = []
    problems: list[str] = []
    context = _offline_page(browser, blocked)
    page = context.new_page()
    watch(page, problems)
    try:
        page.goto(svc.base + "/docs", wait_until="load")
        page.wait_for_selector(".swagger-ui .opblock", timeout=20_000)
        paths = page.locator(".opblock-summary-path").all_inner_texts()
        assert any(p.startswith("/v1/") for p in paths), paths
        assert "/health" in "".join(paths)
        page.screenshot(path=str(artifacts / f"docs-offline-{which}.png"))

        page.goto(svc.base + "/redoc", wait_until="load")
        page.wait_for_selector("[data-section-id^='operation/']", timeout=20_000)
        assert page.locator("[data-section-id^='operation/']").count() >= 3
        page.screenshot(path=str(artifacts / f"redoc-offline-{which}.png"))

        assert page.request.get(svc.base + "/favicon.ico").status == 200
    finally:
        context.close()
    # Nothing the pages need comes from elsewhere; ReDoc's "API docs by Redocly" footer logo is the one
    # image it links to cdn.redoc.ly, which then simply does not show.
    needed = [(kind, url) for kind, url in blocked if kind != "image"]
    assert needed == [], f"the docs pages need resources from other hosts: {needed}"
    assert problems == [], problems
