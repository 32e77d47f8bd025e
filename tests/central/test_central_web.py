"""The central server's dashboard pages over plain HTTP, against the real server process.

Security headers on every page, the static files, which page is shown before and after the first
admin exists and with or without a session, the cookie session's CSRF rule, and the live view (its
wider CSP, the camera's addresses in the page, unsafe addresses and names kept out of it).
"""

from __future__ import annotations

import re

import httpx
import pytest

from tests.support.central_web import SimulatedCamera, USER, create_first_admin, session_client, start_central


# ----------------------------------------------------------------------------- helpers
def assert_page_headers(r: httpx.Response, frames: bool = False) -> str:
    """The dashboard's security headers are on ``r``; returns the CSP."""
    csp = r.headers["content-security-policy"]
    directives = {d.split()[0]: d.split()[1:] for d in (p.strip() for p in csp.split(";")) if d}
    assert directives["default-src"] == ["'self'"]
    assert directives["script-src"] == ["'self'"] and directives["style-src"] == ["'self'"]
    assert directives["frame-ancestors"] == ["'none'"]
    assert directives["connect-src"] == ["'self'"]
    if frames:
        assert directives["frame-src"] == ["http:", "https:"]
        assert "http:" in directives["img-src"] and "https:" in directives["img-src"]
    else:
        assert directives["frame-src"] == ["'none'"]
        assert "http:" not in directives["img-src"]
    assert r.headers["x-frame-options"] == "DENY"
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["referrer-policy"] == "no-referrer"
    assert r.headers["cache-control"] == "no-store"
    assert r.headers["content-type"].startswith("text/html")
    return csp


def assert_no_inline_code(html: str) -> None:
    """Nothing in ``html`` that a CSP without 'unsafe-inline' would block."""
    for tag in re.findall(r"<script\b[^>]*>", html, re.IGNORECASE):
        assert re.search(r'\ssrc="/static/[^"]+"', tag), f"inline script: {tag}"
    assert not re.search(r"<style\b", html, re.IGNORECASE)
    for tag in re.findall(r"<[a-z][^>]*>", html, re.IGNORECASE):
        assert not re.search(r"\s(style|on[a-z]+)\s*=", tag, re.IGNORECASE), f"inline style or handler: {tag}"
    assert "javascript:" not in html.lower()


# ----------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A central server whose first admin exists."""
    proc = start_central(tmp_path_factory.mktemp("central-web"))
    try:
        create_first_admin(proc)
        yield proc
    finally:
        proc.stop()


@pytest.fixture()
def session(server):
    client, csrf = session_client(server)
    yield client, csrf
    client.close()


# ----------------------------------------------------------------------------- tests
def test_before_setup_every_page_leads_to_the_first_run_form(tmp_path):
    proc = start_central(tmp_path)
    try:
        r = httpx.get(proc.base + "/", timeout=10)
        assert r.status_code == 303 and r.headers["location"] == "/login"
        r = httpx.get(proc.base + "/login", timeout=10)
        assert r.status_code == 200
        assert_page_headers(r)
        assert_no_inline_code(r.text)
        assert re.search(r'<form id="setup-form"[^>]*>', r.text).group(0).find("hidden") == -1
        assert "hidden" in re.search(r'<form id="login-form"[^>]*>', r.text).group(0)
        assert 'id="setup-bootstrap"' in r.text
        # the live view needs a session too
        r = httpx.get(proc.base + "/cameras/x/live", timeout=10)
        assert r.status_code == 303 and r.headers["location"] == "/login"
        # once the first admin exists, the login form is shown instead
        create_first_admin(proc)
        r = httpx.get(proc.base + "/login", timeout=10)
        assert "hidden" in re.search(r'<form id="setup-form"[^>]*>', r.text).group(0)
        assert re.search(r'<form id="login-form"[^>]*>', r.text).group(0).find("hidden") == -1
    finally:
        proc.stop()


def test_static_files_referenced_by_the_pages_are_served(server, session):
    client, _ = session
    pages = [httpx.get(server.base + "/login", timeout=10).text, client.get("/").text, client.get("/people").text]
    linked = set()
    for html in pages:
        linked |= set(re.findall(r'(?:src|href)="(/static/[^"]+)"', html))
    paths = {p.split("?")[0] for p in linked}
    assert paths == {"/static/central.css", "/static/central.js"}
    for path in sorted(linked):
        r = httpx.get(server.base + path, timeout=10)
        assert r.status_code == 200, path
        assert r.headers["x-content-type-options"] == "nosniff"
        assert len(r.content) > 1000
        if path.startswith("/static/central.css"):
            assert r.headers["content-type"].startswith("text/css")
        else:
            assert "javascript" in r.headers["content-type"]
            assert "X-CSRF-Token" in r.text and "/v1/auth/session" in r.text
    assert httpx.get(server.base + "/static/missing.js", timeout=10).status_code == 404
    assert httpx.get(server.base + "/static/%2e%2e/routes.py", timeout=10).status_code == 404


def test_dashboard_needs_a_session_and_carries_the_security_headers(server, session):
    anonymous = httpx.get(server.base + "/", timeout=10)
    assert anonymous.status_code == 303 and anonymous.headers["location"] == "/login"
    # a forged or stale cookie: back to the login page and the cookie is cleared
    stale = httpx.get(server.base + "/", cookies={"pcs_central_session": "not-a-token"}, timeout=10)
    assert stale.status_code == 303 and stale.headers["location"] == "/login"
    assert "pcs_central_session=" in stale.headers.get("set-cookie", "")

    client, _ = session
    r = client.get("/")
    assert r.status_code == 200
    assert_page_headers(r)
    assert_no_inline_code(r.text)
    for section in ("camera-rows", "pair-form", "discovered", "scan-form", "admins", "tokens", "token-form"):
        assert f'id="{section}"' in r.text, section
    assert f'<span class="who" id="who">{USER}</span>' in r.text
    # the scope checkboxes come from the server's list of scopes
    assert set(re.findall(r'name="scopes" value="([a-z]+)"', r.text)) == {"read", "cameras", "admins"}
    # logged in, the login page sends to the dashboard
    r = client.get("/login")
    assert r.status_code == 303 and r.headers["location"] == "/"


def test_people_page_needs_a_session_and_carries_the_security_headers(server, session):
    anonymous = httpx.get(server.base + "/people", timeout=10)
    assert anonymous.status_code == 303 and anonymous.headers["location"] == "/login"
    client, _ = session
    assert 'href="/people" id="nav-people"' in client.get("/").text  # linked from the dashboard's header
    r = client.get("/people")
    assert r.status_code == 200
    csp = assert_page_headers(r)
    assert "img-src 'self' data:" in csp  # face crops come from this server only
    assert_no_inline_code(r.text)
    assert 'data-page="people"' in r.text
    for section in ("timeline-card", "tl-bar", "tl-days", "groups", "people", "person-form", "ask-select"):
        assert f'id="{section}"' in r.text, section
    assert f'<span class="who" id="who">{USER}</span>' in r.text


def test_cookie_session_state_change_without_csrf_header_is_refused(server, session):
    client, csrf = session
    me = client.get("/v1/auth/me")
    assert me.status_code == 200 and me.json()["csrf_token"] == csrf and me.json()["via"] == "session"

    body = {"name": "csrf-check", "scopes": ["read"]}
    r = client.post("/v1/tokens", json=body)
    assert r.status_code == 403 and "X-CSRF-Token" in r.json()["detail"]
    r = client.post("/v1/tokens", json=body, headers={"X-CSRF-Token": "0" * 64})
    assert r.status_code == 403
    assert client.get("/v1/tokens").json() == [], "a refused request created a token"
    r = client.patch("/v1/cameras/anything", json={"disabled": True})
    assert r.status_code == 403
    r = client.post("/v1/auth/logout")
    assert r.status_code == 403
    assert client.get("/").status_code == 200, "the session must survive a logout without CSRF token"

    r = client.post("/v1/tokens", json=body, headers={"X-CSRF-Token": csrf})
    assert r.status_code == 201 and r.json()["token"].startswith("pcs_")
    r = client.delete(f"/v1/tokens/{r.json()['id']}", headers={"X-CSRF-Token": csrf})
    assert r.status_code == 204


def test_live_view_frames_the_cameras_webrtc_page_and_mjpeg(server, session):
    client, csrf = session
    cam = SimulatedCamera.ask_for_code(server.base, name="porch", api_url="http://127.0.0.1:9",
                                       rtsp_url="rtsp://127.0.0.1:8554/cam")
    r = client.post("/v1/cameras/pair", json={"code": cam.code, "name": "Porch"}, headers={"X-CSRF-Token": csrf})
    assert r.status_code == 201, r.text
    camera_id = r.json()["id"]
    assert cam.collect()
    hb = cam.heartbeat(streaming=True, detection_fps=5.1, temperature_c=41.5, version="0.1.0",
                       api_url="http://127.0.0.1:9", mjpeg_path="/v1/camera/mjpeg",
                       webrtc_url="http://127.0.0.1:8889/cam", rtsp_url="rtsp://127.0.0.1:8554/cam")
    assert hb.status_code == 200, hb.text

    r = client.get(f"/cameras/{camera_id}/live")
    assert r.status_code == 200
    assert_page_headers(r, frames=True)
    assert_no_inline_code(r.text)
    assert re.search(r'<iframe id="webrtc" src="http://127.0.0.1:8889/cam"', r.text)
    assert 'sandbox="allow-scripts allow-same-origin"' in r.text
    # the MJPEG image gets its src from the script (after its error listener), with a viewer ticket
    img = re.search(r'<img id="mjpeg"[^>]*>', r.text).group(0)
    assert " src=" not in img and "127.0.0.1:9" not in img
    ticket = client.post(f"/v1/cameras/{camera_id}/live-ticket", headers={"X-CSRF-Token": csrf})
    assert ticket.status_code == 200, ticket.text
    assert ticket.json()["mjpeg_url"] == "http://127.0.0.1:9/v1/camera/mjpeg?ticket=" + ticket.json()["ticket"]
    assert client.post(f"/v1/cameras/{camera_id}/live-ticket").status_code == 403  # no CSRF token
    # the grid of live views: a session page that may show the cameras' images, never frames
    grid = client.get("/live")
    assert grid.status_code == 200 and 'id="tiles"' in grid.text
    assert_no_inline_code(grid.text)
    assert "img-src 'self' data: http: https:; frame-src 'none'" in grid.headers["content-security-policy"]
    assert httpx.get(server.base + "/live", follow_redirects=False, timeout=10).status_code == 303
    assert 'value="rtsp://127.0.0.1:8554/cam"' in r.text
    assert '<h1 id="live-name">Porch</h1>' in r.text
    assert 'id="view-toggle"' in r.text
    # the dashboard itself keeps frames and remote images out
    assert "frame-src 'none'" in client.get("/").headers["content-security-policy"]

    missing = client.get("/cameras/no-such-camera/live")
    assert missing.status_code == 404 and 'id="live-missing"' in missing.text
    assert_page_headers(missing)
    client.delete(f"/v1/cameras/{camera_id}", headers={"X-CSRF-Token": csrf})


def test_live_view_escapes_names_and_drops_unsafe_addresses(server, session):
    client, csrf = session
    cam = SimulatedCamera.ask_for_code(server.base)
    name = '<script>alert("x")</script>'
    r = client.post("/v1/cameras/pair", json={"code": cam.code, "name": name}, headers={"X-CSRF-Token": csrf})
    assert r.status_code == 201, r.text
    camera_id = r.json()["id"]
    assert cam.collect()
    hb = cam.heartbeat(webrtc_url="javascript:alert(1)", api_url='http://x" onerror="alert(1)',
                       mjpeg_path="/v1/camera/mjpeg", rtsp_url="http://not-rtsp/cam")
    assert hb.status_code == 200, hb.text

    r = client.get(f"/cameras/{camera_id}/live")
    assert r.status_code == 200
    assert "<script>alert" not in r.text and "&lt;script&gt;" in r.text
    assert_no_inline_code(r.text)
    assert "<iframe" not in r.text and 'id="mjpeg"' not in r.text and 'id="rtsp-url"' not in r.text
    assert 'id="no-live"' in r.text and 'id="no-rtsp"' in r.text
    client.delete(f"/v1/cameras/{camera_id}", headers={"X-CSRF-Token": csrf})


def test_logout_ends_the_dashboard_session(server):
    client, csrf = session_client(server)
    try:
        assert client.get("/").status_code == 200
        cookie = client.cookies.get("pcs_central_session")
        r = client.post("/v1/auth/logout", headers={"X-CSRF-Token": csrf})
        assert r.status_code == 204
        r = client.get("/")
        assert r.status_code == 303 and r.headers["location"] == "/login"
    finally:
        client.close()
    # the old cookie, sent again, no longer opens the dashboard
    r = httpx.get(server.base + "/", cookies={"pcs_central_session": cookie}, timeout=10)
    assert r.status_code == 303 and r.headers["location"] == "/login"
