"""Authentication of the /v1 API: API key, password login (form and HTTP Basic), JWT validation and
the start-up secret bootstrap.

Each test builds a small FastAPI app from ``auth_routes.router`` plus a protected ``/v1/ping``.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import secrets
import stat
import time
from pathlib import Path

import jwt
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from pi_camera_service import auth
from pi_camera_service.api import auth_routes
from pi_camera_service.auth import (
    AuthConfig,
    AuthDep,
    TokenError,
    decode_token,
    hash_password,
    issue_token,
    load_auth_config,
    verify_password,
)
from pi_camera_service.config import ConfigError, load_settings

USERNAME = "operator"
PASSWORD = "correct horse battery staple"
PASSWORD_HASH = hash_password(PASSWORD)
JWT_SECRET = secrets.token_urlsafe(48)
API_KEY = secrets.token_urlsafe(32)
TTL = 600

BEARER_CHALLENGE = 'Bearer realm="pi-camera-service"'


# --------------------------------------------------------------------------------------------- helpers


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No CAMERA_* variable or .env file of the developer's machine leaks into a test."""
    for name in list(os.environ):
        if name.startswith("CAMERA_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def make_settings(tmp_path: Path, **overrides: object):
    values: dict[str, object] = {
        "state_dir": tmp_path / "state",
        "username": USERNAME,
        "password_hash": PASSWORD_HASH,
        "jwt_secret": JWT_SECRET,
        "api_key": API_KEY,
        "token_ttl": TTL,
    }
    values.update(overrides)
    return load_settings(**values)


def make_app(cfg: AuthConfig) -> FastAPI:
    app = FastAPI()
    app.state.auth = cfg
    app.include_router(auth_routes.router)

    @app.get("/v1/ping")
    def ping(principal: AuthDep) -> dict[str, str]:
        return {"principal": principal}

    return app


@pytest.fixture
def cfg(tmp_path: Path) -> AuthConfig:
    return load_auth_config(make_settings(tmp_path))


@pytest.fixture
def client(cfg: AuthConfig) -> TestClient:
    return TestClient(make_app(cfg))


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def basic(username: str, password: str) -> dict[str, str]:
    raw = f"{username}:{password}".encode()
    return {"Authorization": "Basic " + base64.b64encode(raw).decode("ascii")}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def valid_token(cfg: AuthConfig) -> str:
    return issue_token(cfg, cfg.username)[0]


def assert_bearer_401(response, *, message: str, error: str | None = None) -> None:
    assert response.status_code == 401, response.text
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith(BEARER_CHALLENGE)
    if error is None:
        assert "error=" not in challenge
    else:
        assert f'error="{error}"' in challenge
        assert "error_description=" in challenge
    assert message in response.json()["detail"]


def assert_basic_401(response, *, message: str) -> None:
    assert response.status_code == 401, response.text
    assert response.headers["www-authenticate"].startswith('Basic realm="pi-camera-service"')
    assert message in response.json()["detail"]


# -------------------------------------------------------------------------------------- API key


def test_valid_api_key_is_accepted(client: TestClient) -> None:
    response = client.get("/v1/ping", headers={"X-API-Key": API_KEY})
    assert response.status_code == 200
    assert response.json() == {"principal": "api-key"}


@pytest.mark.parametrize("key", ["wrong", API_KEY[:-1], API_KEY + "x", API_KEY.upper() + "!"],
                         ids=["wrong", "one-character-short", "one-character-more", "upper-case"])
def test_wrong_api_key_is_refused(client: TestClient, key: str) -> None:
    response = client.get("/v1/ping", headers={"X-API-Key": key})
    assert_bearer_401(response, message="API key invalid")


def test_api_key_refused_when_none_is_configured(tmp_path: Path) -> None:
    cfg = load_auth_config(make_settings(tmp_path, api_key=None))
    assert cfg.api_key is None
    assert not (tmp_path / "state" / "api_key").exists()  # a password is set: nothing generated
    response = TestClient(make_app(cfg)).get("/v1/ping", headers={"X-API-Key": "anything"})
    assert_bearer_401(response, message="no API key is configured")


def test_valid_api_key_with_invalid_bearer_is_refused(client: TestClient) -> None:
    headers = {"X-API-Key": API_KEY, "Authorization": "Bearer not-a-jwt"}
    assert_bearer_401(client.get("/v1/ping", headers=headers), message="malformed", error="invalid_token")


def test_valid_api_key_and_valid_bearer_give_the_user(client: TestClient, cfg: AuthConfig) -> None:
    headers = {"X-API-Key": API_KEY, **bearer(valid_token(cfg))}
    response = client.get("/v1/ping", headers=headers)
    assert response.status_code == 200
    assert response.json() == {"principal": USERNAME}


def test_api_key_compared_in_constant_time(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[bytes, bytes]] = []
    real = auth.hmac.compare_digest

    def spy(a, b):
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(auth.hmac, "compare_digest", spy)
    client.get("/v1/ping", headers={"X-API-Key": "guess"})
    assert (b"guess", API_KEY.encode()) in calls


# ------------------------------------------------------------------------------ no credentials


def test_no_credentials(client: TestClient) -> None:
    response = client.get("/v1/ping")
    assert_bearer_401(response, message="not authenticated")
    assert response.headers["www-authenticate"] == BEARER_CHALLENGE
    assert "X-API-Key" in response.json()["detail"]
    assert "Authorization: Bearer" in response.json()["detail"]


def test_other_authorization_scheme_is_refused(client: TestClient) -> None:
    response = client.get("/v1/ping", headers=basic(USERNAME, PASSWORD))
    assert_bearer_401(response, message="'Basic' is not accepted", error="invalid_request")


# ---------------------------------------------------------------------------- GET /v1/auth/login

LOGIN_FAILURES = {
    "wrong username and password": (("intruder", "guess"), "invalid username or password"),
    "missing password, right user": ((USERNAME, ""), "password missing"),
    "missing password, wrong user": (("intruder", ""), "password missing"),
    "missing username, right password": (("", PASSWORD), "username missing"),
    "missing username, wrong password": (("", "guess"), "username missing"),
    "right user, wrong password": ((USERNAME, "guess"), "invalid username or password"),
    "wrong user, right password": (("intruder", PASSWORD), "invalid username or password"),
    "username differs in case": ((USERNAME.upper(), PASSWORD), "invalid username or password"),
}


@pytest.mark.parametrize(
    ("credentials", "message"), list(LOGIN_FAILURES.values()), ids=list(LOGIN_FAILURES)
)
def test_basic_login_failures(client: TestClient, credentials: tuple[str, str], message: str) -> None:
    response = client.get("/v1/auth/login", headers=basic(*credentials))
    assert_basic_401(response, message=message)
    assert "token" not in response.json()


def test_basic_login_without_credentials(client: TestClient) -> None:
    response = client.get("/v1/auth/login")
    assert_basic_401(response, message="not authenticated")


@pytest.mark.parametrize(
    ("authorization", "message"),
    [
        ("Basic !!!not-base64!!!", "not valid base64"),
        ("Basic " + base64.b64encode(b"no-colon-here").decode(), "lack the ':'"),
        ("Bearer abc.def.ghi", "'Bearer' is not accepted here"),
    ],
    ids=["bad base64", "no colon", "bearer scheme"],
)
def test_basic_login_malformed_header(client: TestClient, authorization: str, message: str) -> None:
    response = client.get("/v1/auth/login", headers={"Authorization": authorization})
    assert_basic_401(response, message=message)


def test_basic_login_token_works_as_bearer(client: TestClient) -> None:
    response = client.get("/v1/auth/login", headers=basic(USERNAME, PASSWORD))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["token"] == body["access_token"]
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == TTL
    assert response.headers["cache-control"] == "no-store"

    protected = client.get("/v1/ping", headers=bearer(body["token"]))
    assert protected.status_code == 200
    assert protected.json() == {"principal": USERNAME}


def test_basic_login_accepts_utf8_password(tmp_path: Path) -> None:
    password = "mot de passe sûr ☃"
    cfg = load_auth_config(make_settings(tmp_path, password_hash=hash_password(password)))
    response = TestClient(make_app(cfg)).get("/v1/auth/login", headers=basic(USERNAME, password))
    assert response.status_code == 200, response.text


# ---------------------------------------------------------------------------- POST /v1/auth/token


@pytest.mark.parametrize(
    ("credentials", "message"), list(LOGIN_FAILURES.values()), ids=list(LOGIN_FAILURES)
)
def test_token_endpoint_failures(client: TestClient, credentials: tuple[str, str], message: str) -> None:
    username, password = credentials
    response = client.post("/v1/auth/token", data={"username": username, "password": password})
    assert response.status_code == 401, response.text  # never FastAPI's 422
    assert response.headers["www-authenticate"].startswith(BEARER_CHALLENGE)
    assert "access_token" not in response.json()
    # An empty form value counts as a missing field, like an absent one.
    assert message in response.json()["detail"]


@pytest.mark.parametrize(
    ("form", "missing"),
    [
        ({"password": PASSWORD}, "username"),
        ({"username": USERNAME}, "password"),
        ({}, "username and password"),
    ],
    ids=["no username field", "no password field", "no fields"],
)
def test_token_endpoint_missing_fields_give_401(client: TestClient, form: dict, missing: str) -> None:
    response = client.post("/v1/auth/token", data=form)
    assert_bearer_401(response, message=f"{missing} missing", error="invalid_request")


def test_token_endpoint_json_body_is_refused_with_hint(client: TestClient) -> None:
    response = client.post("/v1/auth/token", json={"username": USERNAME, "password": PASSWORD})
    assert_bearer_401(response, message="x-www-form-urlencoded", error="invalid_request")


def test_token_endpoint_wrong_grant_type(client: TestClient) -> None:
    form = {"username": USERNAME, "password": PASSWORD, "grant_type": "client_credentials"}
    response = client.post("/v1/auth/token", data=form)
    assert_bearer_401(response, message="grant_type", error="invalid_request")


def test_oauth2_token_works(client: TestClient, cfg: AuthConfig) -> None:
    before = int(time.time())
    response = client.post("/v1/auth/token", data={"username": USERNAME, "password": PASSWORD})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == TTL
    assert response.headers["cache-control"] == "no-store"

    header = jwt.get_unverified_header(body["access_token"])
    assert header["alg"] == "HS256"
    claims = decode_token(cfg, body["access_token"])
    assert claims["sub"] == USERNAME
    assert before <= claims["iat"] <= int(time.time())
    assert claims["exp"] - claims["iat"] == TTL

    protected = client.get("/v1/ping", headers=bearer(body["access_token"]))
    assert protected.status_code == 200
    assert protected.json() == {"principal": USERNAME}


def test_wrong_username_costs_a_password_verification(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The username check must not short-circuit argon2 (timing would reveal valid usernames)."""
    calls: list[str] = []
    real = auth.verify_and_update_password

    def spy(password: str, password_hash: str) -> tuple[bool, str | None]:
        calls.append(password)
        return real(password, password_hash)

    monkeypatch.setattr(auth, "verify_and_update_password", spy)
    response = client.post("/v1/auth/token", data={"username": "intruder", "password": "guess"})
    assert response.status_code == 401
    assert calls == ["guess"]


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "challenge"),
    [
        ("post", "/v1/auth/token", {"data": {"username": USERNAME, "password": PASSWORD}}, "Bearer"),
        ("get", "/v1/auth/login", {"headers": basic(USERNAME, PASSWORD)}, "Basic"),
    ],
    ids=["token", "login"],
)
def test_token_endpoints_without_password_configured(
    tmp_path: Path, method: str, path: str, kwargs: dict, challenge: str
) -> None:
    cfg = load_auth_config(make_settings(tmp_path, password_hash=None))
    assert not cfg.password_login_enabled
    response = getattr(TestClient(make_app(cfg)), method)(path, **kwargs)
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith(challenge)
    detail = response.json()["detail"]
    assert "password login is not configured" in detail
    assert "CAMERA_PASSWORD_HASH" in detail
    assert "pi-camera-service hash-password" in detail


# ---------------------------------------------------------------------------------- bad tokens


@pytest.mark.parametrize(
    "token",
    ["not-a-jwt", "a.b.c", "a.b", "eyJhbGciOiJIUzI1NiJ9.%%%.sig", "....", "a.b.c.d.e"],
)
def test_malformed_token(client: TestClient, token: str) -> None:
    response = client.get("/v1/ping", headers=bearer(token))
    assert_bearer_401(response, message="token is malformed", error="invalid_token")


def test_empty_bearer_token(client: TestClient) -> None:
    response = client.get("/v1/ping", headers={"Authorization": "Bearer "})
    assert_bearer_401(response, message="bearer token is empty", error="invalid_token")


def test_token_signed_with_another_secret(client: TestClient, tmp_path: Path) -> None:
    other = load_auth_config(make_settings(tmp_path, jwt_secret=secrets.token_urlsafe(48)))
    token = valid_token(other)
    response = client.get("/v1/ping", headers=bearer(token))
    assert_bearer_401(response, message="token signature invalid", error="invalid_token")


def test_token_with_wrong_signature(client: TestClient, cfg: AuthConfig) -> None:
    header, payload, signature = valid_token(cfg).split(".")
    forged = b64url(bytes(b ^ 0x01 for b in base64.urlsafe_b64decode(signature + "==")))
    response = client.get("/v1/ping", headers=bearer(f"{header}.{payload}.{forged}"))
    assert_bearer_401(response, message="token signature invalid", error="invalid_token")


@pytest.mark.parametrize(
    "change",
    [
        {"sub": "root"},
        {"exp": int(time.time()) + 10 * 365 * 86400},
        {"admin": True},
    ],
    ids=["subject", "expiry", "extra claim"],
)
def test_token_with_changed_payload(client: TestClient, cfg: AuthConfig, change: dict) -> None:
    header, payload, signature = valid_token(cfg).split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims.update(change)
    tampered = b64url(json.dumps(claims, separators=(",", ":")).encode())
    assert tampered != payload
    response = client.get("/v1/ping", headers=bearer(f"{header}.{tampered}.{signature}"))
    assert_bearer_401(response, message="token signature invalid", error="invalid_token")


def test_expired_token(client: TestClient, cfg: AuthConfig) -> None:
    now = int(time.time())
    token = jwt.encode(
        {"sub": USERNAME, "iat": now - 3600, "exp": now - 60}, cfg.jwt_secret, algorithm="HS256"
    )
    response = client.get("/v1/ping", headers=bearer(token))
    assert_bearer_401(response, message="token expired", error="invalid_token")


@pytest.mark.parametrize("signature", ["", "c2lnbmF0dXJl"], ids=["empty signature", "junk signature"])
def test_alg_none_token(client: TestClient, signature: str) -> None:
    now = int(time.time())
    header = b64url(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    payload = b64url(json.dumps({"sub": USERNAME, "iat": now, "exp": now + 600}).encode())
    response = client.get("/v1/ping", headers=bearer(f"{header}.{payload}.{signature}"))
    assert_bearer_401(response, message="algorithm not allowed", error="invalid_token")


def test_other_hmac_algorithm_is_refused(client: TestClient, cfg: AuthConfig) -> None:
    now = int(time.time())
    token = jwt.encode(
        {"sub": USERNAME, "iat": now, "exp": now + 600}, cfg.jwt_secret, algorithm="HS512"
    )
    response = client.get("/v1/ping", headers=bearer(token))
    assert_bearer_401(response, message="algorithm not allowed", error="invalid_token")


@pytest.mark.parametrize("claim", ["exp", "iat", "sub"])
def test_token_missing_required_claim(client: TestClient, cfg: AuthConfig, claim: str) -> None:
    now = int(time.time())
    claims = {"sub": USERNAME, "iat": now, "exp": now + 600}
    del claims[claim]
    token = jwt.encode(claims, cfg.jwt_secret, algorithm="HS256")
    response = client.get("/v1/ping", headers=bearer(token))
    assert_bearer_401(response, message=f"lacks the required {claim} claim", error="invalid_token")


def test_token_for_unknown_subject(client: TestClient, cfg: AuthConfig) -> None:
    response = client.get("/v1/ping", headers=bearer(issue_token(cfg, "someone-else")[0]))
    assert_bearer_401(response, message="not a known user", error="invalid_token")


def test_decode_token_raises_token_error(cfg: AuthConfig) -> None:
    with pytest.raises(TokenError, match="malformed"):
        decode_token(cfg, "garbage")


# --------------------------------------------------------------------------- token in the URL


@pytest.mark.parametrize("param", ["token", "access_token"])
@pytest.mark.parametrize("with_header", [False, True], ids=["query only", "query and valid header"])
def test_token_in_query_string_is_refused(
    client: TestClient, cfg: AuthConfig, param: str, with_header: bool
) -> None:
    token = valid_token(cfg)
    headers = bearer(token) if with_header else {}
    response = client.get(f"/v1/ping?{param}={token}", headers=headers)
    assert_bearer_401(response, message="Authorization header", error="invalid_request")
    assert f"?{param}=" in response.json()["detail"]


# ------------------------------------------------------------------------------- secret bootstrap


def test_api_key_generated_once_and_reused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="pi_camera_service.auth")
    state_dir = tmp_path / "fresh" / "state"
    settings = make_settings(tmp_path, state_dir=state_dir, api_key=None, password_hash=None, jwt_secret=None)

    first = load_auth_config(settings)
    key_file = state_dir / "api_key"
    assert first.api_key
    assert stat.S_IMODE(state_dir.stat().st_mode) == 0o700
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert key_file.read_text().strip() == first.api_key
    printed = capsys.readouterr()
    shown = caplog.text + printed.out + printed.err
    assert shown.count(first.api_key) == 1
    assert f"X-API-Key: {first.api_key}" in caplog.text
    assert str(key_file) in caplog.text

    caplog.clear()
    second = load_auth_config(settings)
    assert second.api_key == first.api_key
    printed = capsys.readouterr()
    assert first.api_key not in caplog.text + printed.out + printed.err
    assert str(key_file) in caplog.text  # says where the key is, without showing it

    # The generated key opens /v1.
    response = TestClient(make_app(second)).get("/v1/ping", headers={"X-API-Key": first.api_key})
    assert response.status_code == 200


def test_generated_api_key_keeps_working_after_a_password_is_set(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """First start without credentials prints a key; adding CAMERA_PASSWORD_HASH later must not revoke it."""
    caplog.set_level(logging.INFO, logger="pi_camera_service.auth")
    first = load_auth_config(make_settings(tmp_path, api_key=None, password_hash=None))
    key_file = tmp_path / "state" / "api_key"
    assert first.api_key and key_file.read_text().strip() == first.api_key

    caplog.clear()
    both = load_auth_config(make_settings(tmp_path, api_key=None))  # now with the password hash
    assert both.api_key == first.api_key
    assert both.password_login_enabled
    assert first.api_key not in caplog.text  # named, not shown again
    accepted = [r.getMessage() for r in caplog.records if r.getMessage().startswith("/v1 accepts:")]
    assert len(accepted) == 1
    assert str(key_file) in accepted[0] and "CAMERA_PASSWORD_HASH" in accepted[0]

    client = TestClient(make_app(both))
    assert client.get("/v1/ping", headers={"X-API-Key": first.api_key}).json() == {"principal": "api-key"}
    token = client.post("/v1/auth/token", data={"username": USERNAME, "password": PASSWORD}).json()["access_token"]
    assert client.get("/v1/ping", headers={"Authorization": f"Bearer {token}"}).json() == {"principal": USERNAME}

    # Deleting the file revokes the key; the password keeps working.
    key_file.unlink()
    revoked = load_auth_config(make_settings(tmp_path, api_key=None))
    assert revoked.api_key is None and not key_file.exists()


def test_generated_api_key_printed_when_warnings_are_filtered(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = make_settings(tmp_path, api_key=None, password_hash=None)
    previous = auth.logger.level
    auth.logger.setLevel(logging.ERROR)  # setLevel also clears the isEnabledFor cache
    try:
        cfg = load_auth_config(settings)
        assert capsys.readouterr().err.count(f"X-API-Key: {cfg.api_key}") == 1
        load_auth_config(settings)
        assert cfg.api_key not in capsys.readouterr().err
    finally:
        auth.logger.setLevel(previous)


def test_jwt_secret_generated_and_reused(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, jwt_secret=None)
    first = load_auth_config(settings)
    secret_file = tmp_path / "state" / "jwt_secret"
    assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
    assert secret_file.read_text().strip() == first.jwt_secret
    assert len(first.jwt_secret) >= 64  # secrets.token_urlsafe(48)
    assert auth.jwt_secret_problem(first.jwt_secret) is None

    second = load_auth_config(settings)
    assert second.jwt_secret == first.jwt_secret
    # Tokens survive a restart.
    assert decode_token(second, valid_token(first))["sub"] == USERNAME
    # No temporary files are left behind.
    assert sorted(p.name for p in (tmp_path / "state").iterdir()) == ["jwt_secret"]


def test_stored_secret_with_loose_mode_is_tightened(tmp_path: Path) -> None:
    state_dir = tmp_path / "state"
    state_dir.mkdir()
    secret_file = state_dir / "jwt_secret"
    stored = secrets.token_urlsafe(48)
    secret_file.write_text(stored + "\n")
    secret_file.chmod(0o644)
    cfg = load_auth_config(make_settings(tmp_path, jwt_secret=None))
    assert cfg.jwt_secret == stored
    assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600


def test_weak_stored_secret_is_refused(tmp_path: Path) -> None:
    state_dir = tmp_path / "state"
    state_dir.mkdir()
    (state_dir / "jwt_secret").write_text("changeme\n")
    with pytest.raises(ConfigError) as excinfo:
        load_auth_config(make_settings(tmp_path, jwt_secret=None))
    message = str(excinfo.value)
    assert "\n" not in message
    assert str(state_dir / "jwt_secret") in message


@pytest.mark.parametrize(
    "weak",
    [
        "secret",
        "changeme",
        "your-secret-key",
        "change-me",
        "password",
        "jwt-secret",
        "Change-Me-Please-This-Is-Not-Random-0123456789",
        "a" * 64,
        "ab" * 32,
        "0123" * 12,
        "Xk3p9-short-random",
        "09d25e094faa6ca2556c818166b7a9563b93f7099f6f0f4caa6cf63b88e8d3e7",
    ],
)
def test_weak_jwt_secret_is_refused(tmp_path: Path, weak: str) -> None:
    with pytest.raises(ConfigError) as excinfo:
        load_auth_config(make_settings(tmp_path, jwt_secret=weak))
    message = str(excinfo.value)
    assert "\n" not in message
    assert message.startswith("CAMERA_JWT_SECRET ")
    assert "secrets.token_urlsafe(48)" in message
    assert "unset" in message
    if len(weak) >= 10:
        assert weak not in message  # the secret itself is not echoed into logs


def test_strong_jwt_secret_is_accepted(tmp_path: Path) -> None:
    strong = secrets.token_urlsafe(32)  # 43 characters
    cfg = load_auth_config(make_settings(tmp_path, jwt_secret=strong))
    assert cfg.jwt_secret == strong
    assert not (tmp_path / "state").exists()  # nothing had to be generated


def test_invalid_password_hash_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as excinfo:
        load_auth_config(make_settings(tmp_path, password_hash="plain-text-password"))
    message = str(excinfo.value)
    assert "CAMERA_PASSWORD_HASH" in message
    assert "pi-camera-service hash-password" in message
    assert "plain-text-password" not in message


def test_auth_config_repr_hides_secrets(cfg: AuthConfig) -> None:
    text = repr(cfg)
    assert JWT_SECRET not in text and API_KEY not in text and PASSWORD_HASH not in text
    assert USERNAME in text


# ------------------------------------------------------------------------------------ misc


def test_hash_and_verify_password() -> None:
    hashed = hash_password("s3cret pass")
    assert hashed.startswith("$argon2id$")
    assert hashed != hash_password("s3cret pass")  # salted
    assert verify_password("s3cret pass", hashed)
    assert not verify_password("s3cret pas", hashed)
    assert not verify_password("s3cret pass", "not-a-hash")
    with pytest.raises(ValueError):
        hash_password("")


def test_openapi_documents_the_security_schemes(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    schemes = spec["components"]["securitySchemes"]
    assert schemes["APIKey"] == {
        "type": "apiKey",
        "in": "header",
        "name": "X-API-Key",
        "description": schemes["APIKey"]["description"],
    }
    assert schemes["OAuth2Password"]["flows"]["password"]["tokenUrl"] == "/v1/auth/token"
    assert schemes["HTTPBasic"]["scheme"] == "basic"
    ping_security = spec["paths"]["/v1/ping"]["get"]["security"]
    assert {"APIKey": []} in ping_security and {"OAuth2Password": []} in ping_security
    assert spec["paths"]["/v1/auth/login"]["get"]["security"] == [{"HTTPBasic": []}]


def test_missing_app_state_fails_closed() -> None:
    app = FastAPI()

    @app.get("/v1/ping")
    def ping(principal: AuthDep) -> dict[str, str]:
        return {"principal": principal}

    with pytest.raises(RuntimeError, match="app.state.auth"):
        TestClient(app).get("/v1/ping", headers={"X-API-Key": API_KEY})
