"""The web page (pi_camera_service.web): login, session cookie, CSRF rules, logout, page weight."""

from __future__ import annotations

import re
import time

import jwt
import pytest
from fastapi.testclient import TestClient

from pi_camera_service.auth import CSRF_HEADER, SESSION_COOKIE, hash_password
from tests.support.camera_app import make_camera_app

PASSWORD = "pw-correct-horse-42"
API_KEY = "web-test-key-0123456789abcdef"


def _app(tmp_path, **kw):
    return make_camera_app(tmp_path, api_key=API_KEY, **{"password_hash": hash_password(PASSWORD), **kw})


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    with TestClient(_app(tmp_path_factory.mktemp("web")), base_url="http://testserver") as c:
        yield c


def _login(client: TestClient) -> str:
    """Log in; return the page's CSRF token (the cookie stays in the client's jar)."""
    r = client.post("/login", data={"username": "admin", "password": PASSWORD}, follow_redirects=False)
    assert r.status_code == 303, r.text
    page = client.get("/")
    assert page.status_code == 200
    return re.search(r'name="csrf-token" content="([^"]+)"', page.text).group(1)


@pytest.fixture()
def session(client):
    client.cookies.clear()
    csrf = _login(client)
    yield csrf
    client.cookies.clear()


def test_login_page_is_served(client):
    client.cookies.clear()
    r = client.get("/login")
    assert r.status_code == 200
    assert 'name="password"' in r.text and "Content-Security-Policy" in r.headers


def test_login_sets_httponly_samesite_strict_cookie(client):
    client.cookies.clear()
    r = client.post("/login", data={"username": "admin", "password": PASSWORD}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/"
    cookie = r.headers["set-cookie"]
    assert cookie.startswith(f"{SESSION_COOKIE}=")
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie.replace("Strict", "strict")
    assert "Secure" not in cookie  # plain http here; https requests get Secure
    assert "Max-Age=3600" in cookie
    token = r.cookies[SESSION_COOKIE]
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["exp"] - claims["iat"] == 3600 and claims["sub"] == "admin"


def test_https_login_cookie_is_secure(tmp_path):
    with TestClient(_app(tmp_path), base_url="https://testserver") as c:
        r = c.post("/login", data={"username": "admin", "password": PASSWORD}, follow_redirects=False)
        assert r.status_code == 303 and "Secure" in r.headers["set-cookie"]


@pytest.mark.parametrize("user,pw", [("admin", "wrong"), ("root", PASSWORD), ("", "")])
def test_wrong_credentials_give_the_page_again_with_401(client, user, pw):
    client.cookies.clear()
    r = client.post("/login", data={"username": user, "password": pw}, follow_redirects=False)
    assert r.status_code == 401
    assert "Wrong username or password" in r.text and "set-cookie" not in r.headers


def test_index_redirects_to_login_when_logged_out(client):
    client.cookies.clear()
    r = client.get("/", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/login"


def test_index_with_session_shows_the_page(client, session):
    r = client.get("/")
    assert r.status_code == 200 and "/v1/camera/mjpeg" in r.text and r.headers["cache-control"] == "no-store"


def test_cookie_authenticates_get_routes(client, session):
    assert client.get("/v1/camera/status").status_code == 200
    assert client.get("/v1/streaming/status").json()["state"] == "stopped"
    assert client.get("/v1/camera/controls").status_code == 200
    assert client.get("/v1/web/config").json()["webrtc_url"] is None


def test_web_config_reports_webrtc_url(tmp_path):
    app = _app(tmp_path)
    # stands in for the Settings with CAMERA_WEBRTC_URL the config engineer is adding
    app.state.settings = type("S", (), {"webrtc_url": "http://cam.local:8889/cam"})()
    with TestClient(app) as c:
        _login(c)
        assert c.get("/v1/web/config").json()["webrtc_url"] == "http://cam.local:8889/cam"
        assert "frame-src http://cam.local:8889" in c.get("/").headers["content-security-policy"]


def test_state_change_with_cookie_needs_csrf(client, session):
    r = client.patch("/v1/camera/controls", json={"brightness": 0.1})
    assert r.status_code == 403 and "CSRF token missing" in r.json()["detail"]
    r = client.patch("/v1/camera/controls", json={"brightness": 0.1}, headers={CSRF_HEADER: "not-the-token"})
    assert r.status_code == 403 and "CSRF token invalid" in r.json()["detail"]
    r = client.post("/v1/streaming/stop")
    assert r.status_code == 403
    r = client.patch("/v1/camera/controls", json={"brightness": 0.1}, headers={CSRF_HEADER: session})
    assert r.status_code == 200, r.text
    assert client.post("/v1/streaming/stop", headers={CSRF_HEADER: session}).status_code == 200


def test_csrf_token_of_another_session_is_refused(client, session):
    first = session
    client.cookies.clear()
    second = _login(client)
    assert first != second
    r = client.post("/v1/streaming/stop", headers={CSRF_HEADER: first})
    assert r.status_code == 403


def test_api_key_and_bearer_need_no_csrf(client, session):
    r = client.post("/v1/streaming/stop", headers={"X-API-Key": API_KEY})
    assert r.status_code == 200
    token = client.post("/v1/auth/token", data={"username": "admin", "password": PASSWORD}).json()["access_token"]
    assert client.post("/v1/streaming/stop", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    # a wrong header is not rescued by the cookie
    assert client.get("/v1/camera/status", headers={"X-API-Key": "wrong"}).status_code == 401


def test_expired_cookie_is_refused_with_401(client):
    client.cookies.clear()
    cfg = client.app.state.auth
    now = int(time.time())
    expired = jwt.encode({"sub": "admin", "iat": now - 7200, "exp": now - 10, "jti": "x" * 22}, cfg.jwt_secret, "HS256")
    client.cookies.set(SESSION_COOKIE, expired)
    r = client.get("/v1/camera/status")
    assert r.status_code == 401 and "session cookie refused (token expired)" in r.json()["detail"]
    assert client.get("/", follow_redirects=False).headers["location"] == "/login"
    client.cookies.clear()


def test_forged_cookie_is_refused(client):
    client.cookies.clear()
    now = int(time.time())
    forged = jwt.encode({"sub": "admin", "iat": now, "exp": now + 60, "jti": "y" * 22}, "another-secret-" * 4, "HS256")
    client.cookies.set(SESSION_COOKIE, forged)
    assert client.get("/v1/camera/status").status_code == 401
    client.cookies.clear()


def test_logout_needs_csrf_then_clears_cookie_and_is_refused(client):
    client.cookies.clear()
    csrf = _login(client)
    old_cookie = client.cookies[SESSION_COOKIE]
    assert client.post("/logout", follow_redirects=False).status_code == 403
    r = client.post("/logout", data={"csrf": csrf}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/login"
    assert f'{SESSION_COOKIE}=""' in r.headers["set-cookie"] and "Max-Age=0" in r.headers["set-cookie"]
    assert SESSION_COOKIE not in client.cookies
    assert client.get("/", follow_redirects=False).status_code == 303
    assert client.get("/v1/camera/status").status_code == 401
    # the old cookie value, replayed, is revoked too
    client.cookies.set(SESSION_COOKIE, old_cookie)
    r = client.get("/v1/camera/status")
    assert r.status_code == 401 and "logged out" in r.json()["detail"]
    client.cookies.clear()


def test_api_key_login_when_no_password_is_configured(tmp_path):
    with TestClient(_app(tmp_path, password_hash=None)) as c:
        page = c.get("/login").text
        assert "pi-camera-service hash-password" in page and 'name="api_key"' in page
        assert c.post("/login", data={"api_key": "nope"}, follow_redirects=False).status_code == 401
        r = c.post("/login", data={"api_key": API_KEY}, follow_redirects=False)
        assert r.status_code == 303
        assert c.get("/v1/camera/status").status_code == 200


def test_first_load_is_under_150_kb(client, session):
    page = client.get("/")
    assets = re.findall(r'(?:href|src)="(/static/[^"]+)"', page.text)
    assert any(a.split("?")[0].endswith(".css") for a in assets) and any(a.split("?")[0].endswith(".js") for a in assets)
    total = len(page.content)
    for asset in assets:
        r = client.get(asset)
        assert r.status_code == 200
        total += len(r.content)
    print(f"first load: {total} bytes")
    assert total < 150_000
