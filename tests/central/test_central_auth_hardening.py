"""Central server under a hostile LAN: the first-admin race, token types and audiences, persistent
logout, atomic rate limits, forwarded headers, private file modes and anchored patterns — over real
HTTP, on SQLite and PostgreSQL, with real parallel requests."""

from __future__ import annotations

import os
import stat

import httpx
import jwt
import pytest
from sqlalchemy import func, select

from central.models import Admin
from tests.support.central_api import ask_code
from tests.support.central_server import CentralServer, bearer
from tests.support.net import parallel as _parallel

PASSWORD = "correct horse battery"


# ----------------------------------------------------------------------------- first admin
def test_concurrent_first_admin_creates_exactly_one(central_server: CentralServer):
    c = central_server.client
    setup = c.post("/v1/setup", json={"password": central_server.bootstrap_password()}).json()["setup_token"]

    def create(i: int) -> int:
        with httpx.Client(base_url=central_server.base, timeout=60) as client:
            return client.post("/v1/setup/admin", json={"username": f"admin{i}", "password": PASSWORD},
                               headers=bearer(setup)).status_code

    codes = _parallel(8, create)
    assert sorted(codes) == [201] + [409] * 7, codes
    with central_server.state.sessions() as db:
        assert db.scalar(select(func.count()).select_from(Admin)) == 1
    # The setup token is spent: neither it nor a new bootstrap attempt can make a second admin.
    again = c.post("/v1/setup/admin", json={"username": "late", "password": PASSWORD}, headers=bearer(setup))
    assert again.status_code == 409


def _session_login(c: httpx.Client, username: str = "alice", password: str = PASSWORD) -> tuple[str, str]:
    r = c.post("/v1/auth/session", data={"username": username, "password": password})
    assert r.status_code == 200, r.text
    return c.cookies["pcs_central_session"], r.json()["csrf_token"]


# ----------------------------------------------------------------------------- token types and logout
def test_session_token_is_no_bearer_token_and_logout_survives_restart(central_server: CentralServer):
    central_server.create_first_admin("alice", PASSWORD)
    c = central_server.client
    cookie, csrf = _session_login(c)
    claims = jwt.decode(cookie, options={"verify_signature": False})
    assert claims["typ"] == "session" and claims["aud"] == "pi-camera-central" and claims["iss"] == "pi-camera-central"
    assert c.get("/v1/admins").status_code == 200  # the cookie itself works
    as_bearer = httpx.get(central_server.base + "/v1/admins", headers=bearer(cookie))
    assert as_bearer.status_code == 401 and "session cookie" in as_bearer.json()["detail"]

    assert c.post("/v1/auth/logout", headers={"X-CSRF-Token": csrf}).status_code == 204
    replay = {"cookie": f"pcs_central_session={cookie}"}
    assert httpx.get(central_server.base + "/v1/admins", headers=replay).status_code == 401
    central_server.restart()  # revocations live in the database
    after = httpx.get(central_server.base + "/v1/admins", headers=replay)
    assert after.status_code == 401 and "logged out" in after.json()["detail"]


def test_tokens_of_another_audience_or_issuer_are_refused(central_server: CentralServer):
    token = central_server.create_first_admin("alice", PASSWORD)
    good = jwt.decode(token, options={"verify_signature": False})
    key = central_server.state.secret_key
    for changed, message in ({"aud": "pi-camera-service"}, "audience"), ({"iss": "pi-camera-service"}, "issuer"):
        forged = jwt.encode({**good, **changed}, key, algorithm="HS256")
        r = central_server.client.get("/v1/admins", headers=bearer(forged))
        assert r.status_code == 401 and message in r.json()["detail"], (changed, r.text)
    no_aud = jwt.encode({k: v for k, v in good.items() if k != "aud"}, key, algorithm="HS256")
    assert central_server.client.get("/v1/admins", headers=bearer(no_aud)).status_code == 401
    assert central_server.client.get("/v1/admins", headers=bearer(token)).status_code == 200


# ----------------------------------------------------------------------------- rate limits
def test_parallel_wrong_logins_get_exactly_the_budget(database_url):
    server = CentralServer(database_url, login_failures_per_user=5, login_failures_per_address=1000,
                           password_check_wait=30).start()  # the budget, not a busy gate's 503
    try:
        server.create_first_admin("alice", PASSWORD)

        def attempt(i: int) -> httpx.Response:
            with httpx.Client(base_url=server.base, timeout=120) as client:
                return client.post("/v1/auth/token", data={"username": "alice", "password": f"wrong {i}"})

        answers = _parallel(60, attempt)
        codes = [r.status_code for r in answers]
        assert codes.count(401) == 5 and codes.count(429) == 55, codes
        assert all(0 < int(r.headers["Retry-After"]) <= 900 for r in answers if r.status_code == 429)
    finally:
        server.stop()


def _pair(server: CentralServer, admin: str, code: str, name: str = "x") -> httpx.Response:
    """``POST /v1/cameras/pair`` on a connection of its own (for requests sent in parallel)."""
    with httpx.Client(base_url=server.base, timeout=120) as client:
        return client.post("/v1/cameras/pair", json={"code": code, "name": name}, headers=bearer(admin))


def test_parallel_wrong_pairing_codes_get_exactly_the_budget(database_url):
    server = CentralServer(database_url, pairing_failures_per_address=5).start()
    try:
        admin = server.create_first_admin("alice", PASSWORD)

        codes = _parallel(40, lambda i: _pair(server, admin, f"WRONG{i:03d}").status_code)
        assert codes.count(404) == 5 and codes.count(429) == 35, codes
    finally:
        server.stop()


def test_more_parallel_right_codes_than_the_budget_all_pair_and_guesses_still_get_only_the_budget(database_url):
    """An admin entering 30 right codes at once against a budget of 5 refused codes: every one pairs
    (a request refused only because of reservations still in flight waits for them); 9 wrong codes
    sent at once afterwards still get exactly the budget's 5 answers."""
    server = CentralServer(database_url, pairing_failures_per_address=5, pairing_requests_per_address=100,
                           max_pending_pairings=100).start()
    try:
        admin = server.create_first_admin("alice", PASSWORD)
        N = 30  # noqa: N806 - enough that checks overlap on SQLite too (before: 429 for many of them)
        codes = [ask_code(server.client)["code"] for _ in range(N)]

        answers = _parallel(N, lambda i: _pair(server, admin, codes[i], f"cam {i}"))
        assert [r.status_code for r in answers] == [201] * N, [r.text for r in answers if r.status_code != 201]
        assert len({r.json()["id"] for r in answers}) == N

        statuses = _parallel(9, lambda i: _pair(server, admin, f"WRONG{i:03d}").status_code)
        assert statuses.count(404) == 5 and statuses.count(429) == 4, statuses
    finally:
        server.stop()


def _xff(address: str) -> dict[str, str]:
    return {"X-Forwarded-For": address}


def test_forwarded_for_is_ignored_unless_trusted(database_url):
    """Over a real socket from 127.0.0.1: uvicorn's defaults would trust X-Forwarded-For from there."""
    server = CentralServer(database_url, login_failures_per_address=3, login_failures_per_user=100).start()
    try:
        codes = [server.client.post("/v1/auth/token", data={"username": f"u{i}", "password": "x"},
                                    headers=_xff(f"10.0.0.{i}")).status_code for i in range(5)]
        assert codes == [401, 401, 401, 429, 429]
    finally:
        server.stop()
    trusted = CentralServer(database_url, login_failures_per_address=3, login_failures_per_user=100,
                            trust_proxy_headers=True, forwarded_allow_ips="127.0.0.1").start()
    try:
        codes = [trusted.client.post("/v1/auth/token", data={"username": f"u{i}", "password": "x"},
                                     headers=_xff(f"10.0.1.{i}")).status_code for i in range(5)]
        assert codes == [401] * 5  # five proxied clients, one failure each
    finally:
        trusted.stop()


def test_an_attacker_cannot_lock_the_owner_out(database_url):
    server = CentralServer(database_url, login_failures_per_user=3, login_failures_per_address=1000,
                           login_failures_per_user_global=6, trust_proxy_headers=True).start()
    try:
        server.create_first_admin("alice", PASSWORD)
        c = server.client
        owner, attacker = _xff("192.168.1.10"), _xff("192.168.1.66")
        assert c.post("/v1/auth/token", data={"username": "alice", "password": PASSWORD}, headers=owner).status_code == 200
        # One attacking address: stopped after 3 guesses; the owner elsewhere is not affected.
        codes = [c.post("/v1/auth/token", data={"username": "alice", "password": "guess"}, headers=attacker).status_code
                 for _ in range(5)]
        assert codes == [401, 401, 401, 429, 429]
        assert c.post("/v1/auth/token", data={"username": "alice", "password": PASSWORD}, headers=owner).status_code == 200
        # Many attacking addresses: the username is slowed down for new addresses only.
        spread = [c.post("/v1/auth/token", data={"username": "alice", "password": "guess"},
                         headers=_xff(f"172.16.0.{i}")).status_code for i in range(6)]
        assert spread.count(401) == 3 and spread.count(429) == 3, spread  # 3 + 3 earlier = the budget of 6
        assert c.post("/v1/auth/token", data={"username": "alice", "password": PASSWORD}, headers=owner).status_code == 200
        assert c.post("/v1/auth/token", data={"username": "alice", "password": PASSWORD},
                      headers=_xff("172.16.9.9")).status_code == 429
    finally:
        server.stop()


def test_cli_passes_the_proxy_setting_to_uvicorn(monkeypatch, tmp_path):
    import uvicorn

    from central import cli

    seen: list[dict] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: seen.append(kw))
    monkeypatch.setattr("central.app.create_app", lambda settings: object())
    monkeypatch.chdir(tmp_path)
    for trust, expected in (("false", {"proxy_headers": False}),
                            ("true", {"proxy_headers": True, "forwarded_allow_ips": "10.0.0.5"})):
        monkeypatch.setenv("CENTRAL_TRUST_PROXY_HEADERS", trust)
        monkeypatch.setenv("CENTRAL_FORWARDED_ALLOW_IPS", "10.0.0.5")
        assert cli.main(["serve"]) == 0
        assert {k: seen[-1][k] for k in expected} == expected
        if trust == "false":
            assert "forwarded_allow_ips" not in seen[-1]


# ----------------------------------------------------------------------------- pairing bound to the camera
def _ask(c: httpx.Client, hardware_id: str, key: str | None = None) -> dict:
    body = {"hardware_id": hardware_id, "name": "porch", **({"pairing_key": key} if key else {})}
    r = c.post("/v1/pairing/requests", json=body)
    assert r.status_code == 201, r.text
    return r.json()


def _poll(c: httpx.Client, req: dict) -> httpx.Response:
    return c.get(f"/v1/pairing/requests/{req['request_id']}", params={"wait": 0}, headers=bearer(req["poll_token"]))


def test_nobody_without_the_pairing_key_can_expire_replace_or_claim_a_code(central_server: CentralServer):
    import secrets
    import uuid

    admin = central_server.create_first_admin("alice", PASSWORD)
    c = central_server.client
    hardware, key = uuid.uuid4().hex, secrets.token_urlsafe(32)
    shown = _ask(c, hardware, key)
    # The hardware id is public: an attacker asks for codes with it, without a key and with their own.
    intruder = _ask(c, hardware)
    intruder_keyed = _ask(c, hardware, secrets.token_urlsafe(32))
    assert _poll(c, shown).json()["status"] == "pending"  # the camera's code is untouched
    # The camera itself refreshing its code does replace its own earlier one.
    refreshed = _ask(c, hardware, key)
    assert _poll(c, shown).status_code == 410
    paired = c.post("/v1/cameras/pair", json={"code": refreshed["code"], "name": "Porch"}, headers=bearer(admin))
    assert paired.status_code == 201
    creds = _poll(c, refreshed).json()
    assert creds["status"] == "paired"
    # A code requested by someone else cannot take the camera's record over, keyed or not.
    for other in (intruder, intruder_keyed):
        r = c.post("/v1/cameras/pair", json={"code": other["code"], "name": "Evil"}, headers=bearer(admin))
        assert r.status_code == 409 and r.json()["error"] == "hardware_id_bound", r.text
        assert _poll(c, other).json()["status"] == "pending"  # no credentials for them
    hb = c.post("/v1/devices/heartbeat", json={"status": {}}, auth=(creds["device_id"], creds["device_secret"]))
    assert hb.status_code == 200 and hb.json()["camera_name"] == "Porch"
    # The genuine camera (same key) may pair again, e.g. after a reset of its credentials.
    again = _ask(c, hardware, key)
    assert c.post("/v1/cameras/pair", json={"code": again["code"], "name": "Porch 2"},
                  headers=bearer(admin)).status_code == 201


# ----------------------------------------------------------------------------- secrets and files at rest
def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_database_media_and_data_dir_are_private_whatever_the_umask(tmp_path):
    from fastapi.testclient import TestClient

    from central.app import create_app
    from central.config import load_settings

    data = tmp_path / "data"
    data.mkdir(mode=0o777)
    os.chmod(data, 0o777)
    old = os.umask(0)
    try:
        settings = load_settings(data_dir=data, mdns_enabled=False)
        with TestClient(create_app(settings)) as client:
            assert client.get("/health").json()["database"] == "ok"
            client.app.state.central.faces.media.write("crops/2026/x.jpg", b"\xff\xd8jpeg")
        assert _mode(data) == 0o700
        for name in ("central.db", "central.db-wal", "central.db-shm"):
            if (data / name).exists() or name == "central.db":
                assert _mode(data / name) == 0o600, name
        media = data / "media"
        assert _mode(media) == _mode(media / "crops") == _mode(media / "crops" / "2026") == 0o700
        assert _mode(media / "crops" / "2026" / "x.jpg") == 0o600
    finally:
        os.umask(old)


def test_wal_and_shm_files_get_the_database_mode(tmp_path):
    import sqlalchemy

    from central.db import make_engine

    old = os.umask(0)
    try:
        engine = make_engine(f"sqlite:///{tmp_path / 'fresh' / 'central.db'}")
        with engine.begin() as conn:
            conn.execute(sqlalchemy.text("CREATE TABLE t (x INTEGER)"))
            conn.execute(sqlalchemy.text("INSERT INTO t VALUES (1)"))
        with engine.connect() as conn:  # WAL and shared-memory files exist while a connection is open
            conn.execute(sqlalchemy.text("SELECT * FROM t")).all()
            assert (tmp_path / "fresh" / "central.db-wal").exists()
            for suffix in ("", "-wal", "-shm"):
                assert _mode(tmp_path / "fresh" / f"central.db{suffix}") == 0o600, suffix
        assert _mode(tmp_path / "fresh") == 0o700
        engine.dispose()
    finally:
        os.umask(old)


@pytest.mark.parametrize("key", ["changeme-changeme-changeme-changeme", "a" * 40, "abcd" * 10, "short-key"])
def test_weak_secret_key_is_refused_without_printing_it(key, tmp_path):
    from central.config import ConfigError, load_settings

    with pytest.raises(ConfigError) as err:
        load_settings(secret_key=key, data_dir=tmp_path)
    assert "CENTRAL_SECRET_KEY" in str(err.value) and key not in str(err.value)


# ----------------------------------------------------------------------------- anchored patterns
def test_identifiers_with_a_trailing_newline_are_refused():
    from pydantic import ValidationError

    from central.api.schemas import AdminCreate, PairingRequestIn
    from central.ingest import ItemRejected, check_item_id

    assert check_item_id("A" * 32) == "a" * 32
    with pytest.raises(ItemRejected):
        check_item_id("a" * 32 + "\n")
    with pytest.raises(ValidationError):
        AdminCreate(username="alice\n", password=PASSWORD)
    for field, value in (("hardware_id", "abcdefgh1\n"), ("api_url", "http://cam\nHost: x"),
                         ("rtsp_url", "rtsp://cam/x\r\n"), ("pairing_key", "k" * 43 + "\n")):
        with pytest.raises(ValidationError):
            PairingRequestIn(**{"hardware_id": "abcdefgh1", field: value})
