"""Camera under a hostile LAN: token types and audiences, logouts that survive a restart, atomic login
budgets with real parallel requests over a socket, forwarded headers only when trusted, private file
modes whatever the umask, and the pairing key."""

from __future__ import annotations

import os
import re
import stat
import threading
import time

import httpx
import jwt
import pytest
from fastapi.testclient import TestClient

from pi_camera_service.api.app import create_app
from pi_camera_service.auth import CSRF_HEADER, SESSION_COOKIE, hash_password, load_auth_config
from tests.support.camera_app import camera_settings
from tests.support.net import free_port, parallel as _parallel, wait_until

PASSWORD = "pw-correct-horse-42"
API_KEY = "hardening-test-key-0123456789abcdef"


def _settings(tmp_path, **kw):
    values = {"state_dir": tmp_path / "state", "password_hash": hash_password(PASSWORD), **kw}
    return camera_settings(values.pop("state_dir"), api_key=API_KEY, **values)


class Served:
    """The camera app served by uvicorn in a thread on 127.0.0.1 (real socket), with the settings'
    proxy-header options, as the CLI passes them."""

    def __init__(self, settings) -> None:
        import uvicorn

        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(uvicorn.Config(create_app(settings), host="127.0.0.1", port=self.port,
                                                    log_level="warning", **settings.uvicorn_proxy_options()))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> "Served":
        self.thread.start()
        wait_until(lambda: self.server.started, 30, 0.05, "camera app started")
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(15)


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


# ----------------------------------------------------------------------------- token types and logout
def _web_login(client: TestClient) -> tuple[str, str]:
    r = client.post("/login", data={"username": "admin", "password": PASSWORD}, follow_redirects=False)
    assert r.status_code == 303, r.text
    csrf = re.search(r'name="csrf-token" content="([^"]+)"', client.get("/").text).group(1)
    return client.cookies[SESSION_COOKIE], csrf


def test_session_token_is_no_bearer_token_and_logout_survives_restart(tmp_path):
    settings = _settings(tmp_path)
    with TestClient(create_app(settings)) as client:
        cookie, csrf = _web_login(client)
        claims = jwt.decode(cookie, options={"verify_signature": False})
        assert (claims["typ"], claims["aud"], claims["iss"]) == ("session", "pi-camera-service", "pi-camera-service")
        client.cookies.clear()
        as_bearer = client.get("/v1/camera/status", headers={"Authorization": f"Bearer {cookie}"})
        assert as_bearer.status_code == 401 and "only accepted as the session cookie" in as_bearer.json()["detail"]
        client.cookies.set(SESSION_COOKIE, cookie)
        assert client.get("/v1/camera/status").status_code == 200
        assert client.post("/logout", headers={CSRF_HEADER: csrf}, follow_redirects=False).status_code == 303
        client.cookies.set(SESSION_COOKIE, cookie)
        assert client.get("/v1/camera/status").status_code == 401
    assert _mode(tmp_path / "state" / "revoked_sessions.json") == 0o600
    with TestClient(create_app(settings)) as client:  # a restart: the logout still holds
        client.cookies.set(SESSION_COOKIE, cookie)
        r = client.get("/v1/camera/status")
        assert r.status_code == 401 and "logged out" in r.json()["detail"]
        assert client.get("/v1/camera/status", headers={"Authorization": f"Bearer {cookie}"}).status_code == 401
        # An access token is not a session cookie either.
        token = client.post("/v1/auth/token", data={"username": "admin", "password": PASSWORD}).json()["access_token"]
        assert jwt.decode(token, options={"verify_signature": False})["typ"] == "access"
        client.cookies.set(SESSION_COOKIE, token)
        assert client.get("/v1/camera/status").status_code == 401
        client.cookies.clear()
        assert client.get("/v1/camera/status", headers={"Authorization": f"Bearer {token}"}).status_code == 200


def test_tokens_of_another_audience_or_issuer_are_refused(tmp_path):
    settings = _settings(tmp_path)
    cfg = load_auth_config(settings)
    now = int(time.time())
    base = {"sub": "admin", "iat": now, "exp": now + 600, "jti": "j" * 22, "typ": "access",
            "iss": "pi-camera-service", "aud": "pi-camera-service"}
    with TestClient(create_app(settings)) as client:
        def get(claims):
            token = jwt.encode(claims, cfg.jwt_secret, algorithm="HS256")
            return client.get("/v1/camera/status", headers={"Authorization": f"Bearer {token}"})

        assert get(base).status_code == 200
        r = get({**base, "aud": "pi-camera-central", "iss": "pi-camera-central"})  # a central server's token
        assert r.status_code == 401 and "issuer" in r.json()["detail"]
        r = get({**base, "aud": "pi-camera-central"})
        assert r.status_code == 401 and "audience" in r.json()["detail"]
        r = get({**base, "iss": "someone"})
        assert r.status_code == 401 and "issuer" in r.json()["detail"]
        assert get({k: v for k, v in base.items() if k != "aud"}).status_code == 401
        assert get({k: v for k, v in base.items() if k != "typ"}).status_code == 401


# ----------------------------------------------------------------------------- rate limits
def test_parallel_wrong_logins_get_exactly_the_budget(tmp_path):
    # a generous password-check wait: this test is about the budget, not the 503 of a busy gate
    with Served(_settings(tmp_path, login_failures_per_address=5, password_check_wait=30)) as served:
        def attempt(i: int) -> httpx.Response:
            return httpx.post(served.base + "/v1/auth/token", data={"username": "admin", "password": f"no {i}"},
                              timeout=120)

        answers = _parallel(40, attempt)
        codes = [r.status_code for r in answers]
        assert codes.count(401) == 5 and codes.count(429) == 35, codes
        assert all(0 < int(r.headers["Retry-After"]) <= 900 for r in answers if r.status_code == 429)
        basic = httpx.get(served.base + "/v1/auth/login", auth=("admin", "wrong"), timeout=30)
        assert basic.status_code == 429  # one budget for every login form
        page = httpx.post(served.base + "/login", data={"username": "admin", "password": "x"}, timeout=30)
        assert page.status_code == 429 and "Retry-After" in page.headers


def test_forwarded_for_is_ignored_unless_trusted_and_owner_is_not_locked_out(tmp_path):
    def tries(base: str, n: int, prefix: str) -> list[int]:
        return [httpx.post(base + "/v1/auth/token", data={"username": "admin", "password": "bad"},
                           headers={"X-Forwarded-For": f"{prefix}.{i}"}, timeout=30).status_code for i in range(n)]

    with Served(_settings(tmp_path, login_failures_per_address=3)) as served:
        assert tries(served.base, 5, "10.0.0") == [401, 401, 401, 429, 429]  # all one address: 127.0.0.1
    with Served(_settings(tmp_path, login_failures_per_address=3, login_failures_global=6,
                          trust_proxy_headers=True)) as served:
        owner = {"X-Forwarded-For": "192.168.1.10"}
        ok = httpx.post(served.base + "/v1/auth/token", data={"username": "admin", "password": PASSWORD},
                        headers=owner, timeout=30)
        assert ok.status_code == 200
        codes = tries(served.base, 8, "10.0.1")  # eight proxied clients
        assert codes == [401] * 6 + [429] * 2  # the global slow-down after 6 failures in total
        again = httpx.post(served.base + "/v1/auth/token", data={"username": "admin", "password": PASSWORD},
                           headers=owner, timeout=30)
        assert again.status_code == 200  # the owner's known address is not slowed down


def test_cli_passes_the_proxy_setting_to_uvicorn(monkeypatch, tmp_path):
    import uvicorn

    from pi_camera_service import cli

    seen: list[dict] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: seen.append(kw))
    monkeypatch.setattr("pi_camera_service.api.app.create_app", lambda settings: object())
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CAMERA_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("CAMERA_FORWARDED_ALLOW_IPS", "10.0.0.5")
    monkeypatch.setenv("CAMERA_TRUST_PROXY_HEADERS", "false")
    assert cli.main([]) == 0 and seen[-1]["proxy_headers"] is False
    monkeypatch.setenv("CAMERA_TRUST_PROXY_HEADERS", "true")
    assert cli.main([]) == 0
    assert seen[-1]["proxy_headers"] is True and seen[-1]["forwarded_allow_ips"] == "10.0.0.5"


# ----------------------------------------------------------------------------- file modes and the pairing key
@pytest.mark.parametrize("umask", [0o000, 0o022])
def test_state_dir_outbox_and_secrets_are_private_whatever_the_umask(tmp_path, umask):
    from pi_camera_service.central_link import pairing_key
    from pi_camera_service.identity import hardware_id
    from pi_camera_service.outbox import Outbox, OutboxLimits

    state = tmp_path / "state"
    state.mkdir()
    os.chmod(state, 0o755)  # as the camera's was
    old = os.umask(umask)
    try:
        load_auth_config(_settings(tmp_path, jwt_secret="Zq8w-" + "x7Yk2pLm9vBn4cRt6sDf1gHj3kQe5uWa"))
        assert _mode(state) == 0o700  # tightened although every secret is configured
        outbox = Outbox(state, OutboxLimits(max_items=10, max_bytes=10**6, max_age_s=3600))
        outbox.open()
        try:
            for name in ("outbox.db", "outbox.db-wal", "outbox.db-shm"):
                if (state / name).exists() or name == "outbox.db":
                    assert _mode(state / name) == 0o600, name
        finally:
            outbox.close()
        fresh = tmp_path / "fresh-state"
        hardware_id(fresh)
        key = pairing_key(fresh)
        assert len(key) >= 43 and pairing_key(fresh) == key  # kept
        assert _mode(fresh) == 0o700
        assert _mode(fresh / "pairing_key") == _mode(fresh / "hardware-id") == 0o600
    finally:
        os.umask(old)


def test_a_shared_sticky_directory_is_refused_as_state_dir(tmp_path):
    from pi_camera_service.config import ConfigError

    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o1777)
    with pytest.raises(ConfigError, match="CAMERA_STATE_DIR"):
        load_auth_config(_settings(tmp_path, state_dir=shared))
