"""Central server: first-run bootstrap, login, the seed journal's authentication failures, rate limits,
admins and API tokens — over real HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt

import jwt
from sqlalchemy import select

from central.models import Admin, ApiToken
from tests.support.central_server import CentralServer, bearer

PASSWORD = "correct horse battery"


# ----------------------------------------------------------------------------- bootstrap
def test_bootstrap_password_is_random_logged_and_single_use(central_server: CentralServer, database_url):
    c = central_server.client
    first = central_server.bootstrap_password()
    assert len(first) == 20 and first not in ("admin", "mdp", "password")
    assert c.get("/v1/setup").json() == {"bootstrap_open": True}

    wrong = c.post("/v1/setup", json={"password": "admin"})
    assert wrong.status_code == 401 and "bootstrap password" in wrong.json()["detail"]

    # A restart before the first admin exists prints a new password; the old one stops working.
    central_server.restart()
    second = central_server.bootstrap_password()
    assert second != first
    c = central_server.client
    assert c.post("/v1/setup", json={"password": first}).status_code == 401

    setup = c.post("/v1/setup", json={"password": second})
    assert setup.status_code == 200
    body = setup.json()
    assert body["token_type"] == "bearer" and body["expires_in"] == 15 * 60
    claims = jwt.decode(body["setup_token"], options={"verify_signature": False})
    assert claims["typ"] == "setup" and claims["exp"] - claims["iat"] == 900

    # The setup token cannot do anything but create the first admin.
    assert c.get("/v1/admins", headers=bearer(body["setup_token"])).status_code == 401
    assert c.get("/v1/cameras", headers=bearer(body["setup_token"])).status_code == 401

    created = c.post("/v1/setup/admin", json={"username": "alice", "password": PASSWORD},
                     headers=bearer(body["setup_token"]))
    assert created.status_code == 201 and created.json()["username"] == "alice"

    # Closed for good: the password, the same setup token, a restart.
    assert c.post("/v1/setup", json={"password": second}).status_code == 409
    again = c.post("/v1/setup/admin", json={"username": "mallory", "password": PASSWORD},
                   headers=bearer(body["setup_token"]))
    assert again.status_code == 409
    assert c.get("/v1/setup").json() == {"bootstrap_open": False}
    seen = len(central_server.capture.lines)
    central_server.restart()
    assert not [line for line in central_server.capture.lines[seen:] if "bootstrap password" in line]
    assert central_server.client.post("/v1/setup", json={"password": second}).status_code == 409
    with central_server.state.sessions() as db:
        assert [a.username for a in db.scalars(select(Admin))] == ["alice"]


def test_setup_refusals(central_server: CentralServer):
    c = central_server.client
    assert c.post("/v1/setup/admin", json={"username": "a1", "password": PASSWORD}).status_code == 401
    setup = c.post("/v1/setup", json={"password": central_server.bootstrap_password()}).json()["setup_token"]
    short = c.post("/v1/setup/admin", json={"username": "alice", "password": "short"}, headers=bearer(setup))
    assert short.status_code == 422 and "password" in short.json()["detail"]
    bad_name = c.post("/v1/setup/admin", json={"username": "a b", "password": PASSWORD}, headers=bearer(setup))
    assert bad_name.status_code == 422 and "letters, digits" in bad_name.json()["detail"]
    # An access token of another server (other key) or an expired setup token is refused.
    forged = jwt.encode({"sub": "bootstrap", "typ": "setup", "iat": 0, "exp": 2**31}, "x" * 40, algorithm="HS256")
    assert c.post("/v1/setup/admin", json={"username": "alice", "password": PASSWORD},
                  headers=bearer(forged)).status_code == 401
    key = central_server.state.secret_key
    now = dt.datetime.now(dt.timezone.utc)
    expired = jwt.encode({"sub": "bootstrap", "typ": "setup", "iat": now - dt.timedelta(minutes=20),
                          "exp": now - dt.timedelta(minutes=5)}, key, algorithm="HS256")
    r = c.post("/v1/setup/admin", json={"username": "alice", "password": PASSWORD}, headers=bearer(expired))
    assert r.status_code == 401 and "expired" in r.json()["detail"]


def test_bootstrap_password_guessing_is_limited(central_server: CentralServer):
    c = central_server.client
    codes = [c.post("/v1/setup", json={"password": f"guess{i}"}).status_code for i in range(11)]
    assert codes[:10] == [401] * 10 and codes[10] == 429
    # Even the right password waits now.
    r = c.post("/v1/setup", json={"password": central_server.bootstrap_password()})
    assert r.status_code == 429 and int(r.headers["Retry-After"]) > 0


# ----------------------------------------------------------------------------- login
SEED_FAILURES = [
    # the seed journal's list (all must be 401): wrong credentials, missing password (wrong / right
    # username), missing username (wrong / right password), right username + wrong password, wrong
    # username + right password
    ({"username": "nobody", "password": "nothing-at-all"}, "incorrect credentials"),
    ({"username": "nobody"}, "missing password, wrong username"),
    ({"username": "alice"}, "missing password, right username"),
    ({"password": "nothing-at-all"}, "missing username, wrong password"),
    ({"password": PASSWORD}, "missing username, right password"),
    ({"username": "alice", "password": "wrong password!"}, "right username, wrong password"),
    ({"username": "bob", "password": PASSWORD}, "wrong username, right password"),
    ({"username": "alice", "password": ""}, "empty password"),
    ({"username": "ALICE", "password": PASSWORD}, "username case differs"),
]


def test_seed_journal_authentication_failures_all_401(central_server: CentralServer):
    central_server.create_first_admin("alice", PASSWORD)
    c = central_server.client
    for form, case in SEED_FAILURES:
        r = c.post("/v1/auth/token", data=form)
        assert r.status_code == 401, (case, r.text)
        assert r.json() == {"detail": "incorrect username or password", "error": "invalid_grant"}, case
        assert r.headers["WWW-Authenticate"].startswith("Bearer")
    ok = c.post("/v1/auth/token", data={"username": "alice", "password": PASSWORD})
    assert ok.status_code == 200
    body = ok.json()
    assert body["token_type"] == "bearer" and body["expires_in"] == 24 * 3600
    claims = jwt.decode(body["access_token"], options={"verify_signature": False})
    assert claims["exp"] - claims["iat"] == 24 * 3600 and claims["typ"] == "access"


def test_protected_endpoints_refuse_bad_tokens(central_server: CentralServer):
    token = central_server.create_first_admin()
    c = central_server.client
    key = central_server.state.secret_key
    sub = jwt.decode(token, options={"verify_signature": False})["sub"]
    now = dt.datetime.now(dt.timezone.utc)

    def signed(secret: str, **claims) -> str:
        base = {"sub": sub, "typ": "access", "iat": now, "exp": now + dt.timedelta(hours=1), "pwd": 2**31}
        return jwt.encode({**base, **claims}, secret, algorithm="HS256")

    cases = {
        "no header": {},
        "bearer without token": {"Authorization": "Bearer"},
        "garbage": bearer("not-a-jwt"),
        "basic scheme": {"Authorization": "Basic YWxpY2U6cGFzcw=="},
        "other key": bearer(signed("y" * 48)),
        "expired": bearer(signed(key, iat=now - dt.timedelta(days=2), exp=now - dt.timedelta(days=1))),
        "alg none": bearer(jwt.encode({"sub": sub, "typ": "access", "iat": 0, "exp": 2**31}, None, algorithm="none")),
        "session kind": bearer(signed(key, typ="session")),
        "unknown admin": bearer(signed(key, sub="0" * 32)),
    }
    for case, headers in cases.items():
        r = c.get("/v1/admins", headers=headers)
        assert r.status_code == 401, (case, r.text)
        assert r.json()["detail"], case
    assert c.get("/v1/admins", headers=bearer(token)).status_code == 200


def test_unknown_usernames_cost_one_argon2_verification_too(central_server: CentralServer, monkeypatch):
    """Timing: an unknown username is checked against a dummy argon2 hash, like a known one."""
    import central.api.auth_routes as auth_routes

    central_server.create_first_admin("alice", PASSWORD)
    calls: list[str | None] = []
    real = auth_routes.verify_and_update_password

    def spy(password: str, password_hash: str | None) -> tuple[bool, str | None]:
        calls.append(password_hash)
        return real(password, password_hash)

    monkeypatch.setattr(auth_routes, "verify_and_update_password", spy)
    c = central_server.client
    c.post("/v1/auth/token", data={"username": "alice", "password": "wrong password!"})
    c.post("/v1/auth/token", data={"username": "nobody-here", "password": "wrong password!"})
    c.post("/v1/auth/token", data={"password": "wrong password!"})
    assert len(calls) == 3
    assert calls[0].startswith("$argon2id$") and calls[1] is None and calls[2] is None


def test_failed_logins_are_limited_per_username_and_per_address(database_url):
    server = CentralServer(database_url, login_failures_per_user=3, login_failures_per_address=6).start()
    try:
        server.create_first_admin("alice", PASSWORD)
        c = server.client
        for _ in range(3):
            assert c.post("/v1/auth/token", data={"username": "alice", "password": "nope nope"}).status_code == 401
        blocked = c.post("/v1/auth/token", data={"username": "alice", "password": PASSWORD})
        assert blocked.status_code == 429
        assert "this username" in blocked.json()["detail"] and 0 < int(blocked.headers["Retry-After"]) <= 900
        # Other usernames from the same address go on until the address budget (6) is spent.
        for i in range(3):
            assert c.post("/v1/auth/token", data={"username": f"u{i}", "password": "x"}).status_code == 401
        r = c.post("/v1/auth/token", data={"username": "someone", "password": "x"})
        assert r.status_code == 429 and "this address" in r.json()["detail"]
    finally:
        server.stop()


def test_successful_login_resets_the_username_budget(database_url):
    server = CentralServer(database_url, login_failures_per_user=3, login_failures_per_address=100).start()
    try:
        server.create_first_admin("alice", PASSWORD)
        c = server.client
        for _ in range(2):
            c.post("/v1/auth/token", data={"username": "alice", "password": "nope nope"})
        assert c.post("/v1/auth/token", data={"username": "alice", "password": PASSWORD}).status_code == 200
        for _ in range(2):
            assert c.post("/v1/auth/token", data={"username": "alice", "password": "nope"}).status_code == 401
        assert c.post("/v1/auth/token", data={"username": "alice", "password": PASSWORD}).status_code == 200
    finally:
        server.stop()


# ----------------------------------------------------------------------------- admins
def test_admin_lifecycle_and_immediate_effect(central_server: CentralServer):
    alice = central_server.create_first_admin("alice", PASSWORD)
    c = central_server.client
    r = c.post("/v1/admins", json={"username": "bob", "password": "bob's long password"}, headers=bearer(alice))
    assert r.status_code == 201
    bob_id = r.json()["id"]
    dup = c.post("/v1/admins", json={"username": "bob", "password": "another long one"}, headers=bearer(alice))
    assert dup.status_code == 409 and "bob" in dup.json()["detail"]
    assert [a["username"] for a in c.get("/v1/admins", headers=bearer(alice)).json()] == ["alice", "bob"]
    assert "password" not in str(c.get("/v1/admins", headers=bearer(alice)).json())

    bob = central_server.login("bob", "bob's long password")
    assert c.get("/v1/cameras", headers=bearer(bob)).status_code == 200
    # Disabling refuses bob's existing token at once, and his logins.
    assert c.patch(f"/v1/admins/{bob_id}", json={"disabled": True}, headers=bearer(alice)).status_code == 200
    r = c.get("/v1/cameras", headers=bearer(bob))
    assert r.status_code == 401 and "disabled" in r.json()["detail"]
    assert c.post("/v1/auth/token", data={"username": "bob", "password": "bob's long password"}).status_code == 401
    c.patch(f"/v1/admins/{bob_id}", json={"disabled": False}, headers=bearer(alice))
    assert c.get("/v1/cameras", headers=bearer(bob)).status_code == 200

    # Nobody removes themselves or the last active admin.
    alice_id = c.get("/v1/auth/me", headers=bearer(alice)).json()["admin"]["id"]
    assert c.delete(f"/v1/admins/{alice_id}", headers=bearer(alice)).status_code == 409
    assert c.patch(f"/v1/admins/{alice_id}", json={"disabled": True}, headers=bearer(alice)).status_code == 409
    assert c.delete(f"/v1/admins/{bob_id}", headers=bearer(alice)).status_code == 204
    assert c.get("/v1/cameras", headers=bearer(bob)).status_code == 401
    assert c.delete("/v1/admins/" + "0" * 32, headers=bearer(alice)).status_code == 404


def test_change_own_password(central_server: CentralServer):
    old_token = central_server.create_first_admin("alice", PASSWORD)
    c = central_server.client
    wrong = c.post("/v1/admins/me/password", json={"current_password": "nope", "new_password": "a new long password"},
                   headers=bearer(old_token))
    assert wrong.status_code == 403
    short = c.post("/v1/admins/me/password", json={"current_password": PASSWORD, "new_password": "short"},
                   headers=bearer(old_token))
    assert short.status_code == 422
    ok = c.post("/v1/admins/me/password", json={"current_password": PASSWORD, "new_password": "a new long password"},
                headers=bearer(old_token))
    assert ok.status_code == 204
    r = c.get("/v1/cameras", headers=bearer(old_token))
    assert r.status_code == 401 and "password changed" in r.json()["detail"]
    assert c.post("/v1/auth/token", data={"username": "alice", "password": PASSWORD}).status_code == 401
    new_token = central_server.login("alice", "a new long password")
    assert c.get("/v1/cameras", headers=bearer(new_token)).status_code == 200
    with central_server.state.sessions() as db:
        stored = db.scalar(select(Admin.password_hash))
    assert stored.startswith("$argon2id$") and "a new long password" not in stored


# ----------------------------------------------------------------------------- API tokens
def test_api_tokens_named_scoped_shown_once_hashed_revocable(central_server: CentralServer):
    admin = central_server.create_first_admin()
    c = central_server.client
    r = c.post("/v1/tokens", json={"name": "backup script", "scopes": ["read"]}, headers=bearer(admin))
    assert r.status_code == 201
    created = r.json()
    token = created["token"]
    assert token.startswith("pcs_") and len(token) > 40 and created["scopes"] == ["read"]
    listed = c.get("/v1/tokens", headers=bearer(admin)).json()
    assert [t["name"] for t in listed] == ["backup script"] and listed[0]["token"] is None
    with central_server.state.sessions() as db:
        row = db.scalar(select(ApiToken))
        assert token not in (row.token_hash, row.prefix) and len(row.token_hash) == 64

    assert c.get("/v1/cameras", headers=bearer(token)).status_code == 200
    denied = c.post("/v1/cameras/pair", json={"code": "ABCDEFGH", "name": "x"}, headers=bearer(token))
    assert denied.status_code == 403 and "'cameras' scope" in denied.json()["detail"]
    assert c.get("/v1/admins", headers=bearer(token)).status_code == 403
    assert c.get("/v1/tokens", headers=bearer(admin)).json()[0]["last_used_at"] is not None

    bad = c.post("/v1/tokens", json={"name": "x", "scopes": ["root"]}, headers=bearer(admin))
    assert bad.status_code == 422 and "allowed: admins, cameras, read" in bad.json()["detail"]

    assert c.delete(f"/v1/tokens/{created['id']}", headers=bearer(admin)).status_code == 204
    r = c.get("/v1/cameras", headers=bearer(token))
    assert r.status_code == 401 and "revoked" in r.json()["detail"]
    assert c.get("/v1/cameras", headers=bearer("pcs_" + "A" * 43)).status_code == 401


def test_api_token_expiry_and_owner_disabled(central_server: CentralServer):
    alice = central_server.create_first_admin()
    c = central_server.client
    c.post("/v1/admins", json={"username": "bob", "password": "bob's long password"}, headers=bearer(alice))
    bob = central_server.login("bob", "bob's long password")
    token = c.post("/v1/tokens", json={"name": "cron", "scopes": ["read", "cameras"], "expires_in_days": 1},
                   headers=bearer(bob)).json()
    assert c.get("/v1/cameras", headers=bearer(token["token"])).status_code == 200
    bob_id = c.get("/v1/auth/me", headers=bearer(bob)).json()["admin"]["id"]
    c.patch(f"/v1/admins/{bob_id}", json={"disabled": True}, headers=bearer(alice))
    assert c.get("/v1/cameras", headers=bearer(token["token"])).status_code == 401
    c.patch(f"/v1/admins/{bob_id}", json={"disabled": False}, headers=bearer(alice))
    with central_server.state.sessions() as db:
        row = db.get(ApiToken, token["id"])
        row.expires_at = dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=1)
        db.commit()
    r = c.get("/v1/cameras", headers=bearer(token["token"]))
    assert r.status_code == 401 and "expired" in r.json()["detail"]
    # Alice cannot revoke (or see) Bob's tokens through her own list.
    assert c.delete(f"/v1/tokens/{token['id']}", headers=bearer(alice)).status_code == 404


def test_dashboard_session_cookie_needs_csrf_for_changes(central_server: CentralServer):
    central_server.create_first_admin("alice", PASSWORD)
    c = central_server.client
    r = c.post("/v1/auth/session", data={"username": "alice", "password": PASSWORD})
    assert r.status_code == 200
    csrf = r.json()["csrf_token"]
    cookie = r.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie.replace("Strict", "strict")
    assert c.get("/v1/cameras").status_code == 200  # the cookie
    no_csrf = c.post("/v1/admins", json={"username": "bob", "password": "bob's long password"})
    assert no_csrf.status_code == 403 and "X-CSRF-Token" in no_csrf.json()["detail"]
    ok = c.post("/v1/admins", json={"username": "bob", "password": "bob's long password"},
                headers={"X-CSRF-Token": csrf})
    assert ok.status_code == 201
    assert c.get("/v1/auth/me").json()["csrf_token"] == csrf
    assert c.post("/v1/auth/logout", headers={"X-CSRF-Token": csrf}).status_code == 204
    c.cookies.clear()
    c.cookies.set("pcs_central_session", cookie.split(";")[0].split("=", 1)[1])
    assert c.get("/v1/cameras").status_code == 401
