"""The one login path of the camera: every door (token endpoints, web form, ONVIF) goes through
``pi_camera_service.auth.login_attempt`` around the app's one ``LoginLimiter``; and the shared
``pcs_common.auth`` building blocks both services use."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from pcs_common.auth import (
    BasicCredentialsError, JsonFileRevocations, SessionService, TokenError, TokenService, csrf_token, parse_basic,
    verify_and_update_password,
)
from pcs_common.limits import PasswordChecksBusy
from pi_camera_service.api.app import create_app
from pi_camera_service.auth import (
    ONVIF_DOOR, PASSWORD_DOOR, LoginLimiter, TooManyLogins, hash_password, login_attempt,
)
from pi_camera_service.config import load_settings
from tests.support.paths import SAMPLE

PASSWORD = "correct horse battery staple"
ONVIF_USER, ONVIF_PASSWORD = "nvr", "onvif-secret-123"


# ------------------------------------------------------------------------------ login_attempt


def test_parallel_attempts_get_exactly_the_budget():
    """20 attempts in flight at once from one address with a budget of 5: exactly 5 are let in."""
    limiter = LoginLimiter(5, 1000)
    release = threading.Event()
    entered = threading.Semaphore(0)

    def attempt(_: int) -> str:
        try:
            with login_attempt(limiter, "10.0.0.9"):
                entered.release()
                release.wait(10)  # still being verified: counts against the budget
        except TooManyLogins:
            return "refused"
        return "checked"

    with ThreadPoolExecutor(20) as pool:
        futures = [pool.submit(attempt, i) for i in range(20)]
        for _ in range(5):
            assert entered.acquire(timeout=10)
        release.set()
        results = [f.result(timeout=10) for f in futures]
    assert results.count("checked") == 5 and results.count("refused") == 15
    with pytest.raises(TooManyLogins) as info:  # the 5 failures are counted
        with login_attempt(limiter, "10.0.0.9"):
            pass
    assert info.value.retry_after > 0


def test_uncounted_attempts_use_up_nothing_and_success_forgets_failures():
    limiter = LoginLimiter(2, 1000)
    for _ in range(5):  # no password-check slot: never checked
        with pytest.raises(PasswordChecksBusy):
            with login_attempt(limiter, "a"):
                raise PasswordChecksBusy(1)
    for _ in range(5):  # no credentials presented (ONVIF's challenge round-trip)
        with login_attempt(limiter, "a") as attempt:
            attempt.counted = False
    with login_attempt(limiter, "a"):
        pass  # a failure: 1 of 2
    with login_attempt(limiter, "a") as attempt:
        attempt.ok = True  # a success forgets the failure
    for _ in range(2):
        with login_attempt(limiter, "a"):
            pass
    with pytest.raises(TooManyLogins):
        with login_attempt(limiter, "a"):
            pass


def test_an_exception_in_the_check_counts_as_a_failure_and_doors_are_separate():
    limiter = LoginLimiter(1, 1000, onvif_per_address="1/5 minutes")
    with pytest.raises(RuntimeError):
        with login_attempt(limiter, "b", ONVIF_DOOR):
            raise RuntimeError("wrong digest")
    with pytest.raises(TooManyLogins):
        with login_attempt(limiter, "b", ONVIF_DOOR):
            pass
    with login_attempt(limiter, "b", PASSWORD_DOOR) as attempt:  # the camera password has its own budget
        attempt.ok = True


def test_global_budget_spares_known_addresses():
    limiter = LoginLimiter(100, 3)
    with login_attempt(limiter, "owner") as attempt:
        attempt.ok = True
    for i in range(3):
        with login_attempt(limiter, f"stranger-{i}"):
            pass
    with pytest.raises(TooManyLogins):
        with login_attempt(limiter, "stranger-9"):
            pass
    with login_attempt(limiter, "owner") as attempt:  # logged in before: not slowed down by the others
        attempt.ok = True


# ---------------------------------------------------------------- the doors share one limiter


def _digest_header(user: str, password: str) -> str:
    nonce = os.urandom(16)
    created = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    digest = base64.b64encode(hashlib.sha1(nonce + created.encode() + password.encode()).digest()).decode()
    return ('<s:Header><wsse:Security xmlns:wsse="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd" '
            'xmlns:wsu="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd">'
            f'<wsse:UsernameToken><wsse:Username>{user}</wsse:Username>'
            '<wsse:Password Type="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0#PasswordDigest">'
            f'{digest}</wsse:Password><wsse:Nonce>{base64.b64encode(nonce).decode()}</wsse:Nonce>'
            f'<wsu:Created>{created}</wsu:Created></wsse:UsernameToken></wsse:Security></s:Header>')


def _get_hostname(client: TestClient, password: str):
    body = ('<?xml version="1.0"?><s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" '
            f'xmlns:tds="http://www.onvif.org/ver10/device/wsdl">{_digest_header(ONVIF_USER, password)}'
            '<s:Body><tds:GetHostname/></s:Body></s:Envelope>')
    return client.post("/onvif/device_service", content=body)


def test_token_endpoint_web_form_and_onvif_draw_on_the_apps_one_limiter(tmp_path: Path):
    settings = load_settings(
        source=str(SAMPLE), width=320, height=240, stream_on_start=False, password_hash=hash_password(PASSWORD),
        state_dir=str(tmp_path / "state"), stills_dir=str(tmp_path / "stills"), detection_enabled=False,
        stills_enabled=False, outbox_enabled=False, mdns_enabled=False, onvif_discovery_enabled=False,
        onvif_username=ONVIF_USER, onvif_password=ONVIF_PASSWORD, login_failures_per_address=3,
    )
    app = create_app(settings)
    with TestClient(app) as client:
        assert app.state.onvif.login_limiter is app.state.login_limiter
        for _ in range(2):
            assert client.post("/v1/auth/token", data={"username": "admin", "password": "x"}).status_code == 401
        assert client.post("/login", data={"username": "admin", "password": "x"}).status_code == 401
        # the token endpoint and the web form used up one budget together
        assert client.post("/v1/auth/token", data={"username": "admin", "password": PASSWORD}).status_code == 429
        page = client.post("/login", data={"username": "admin", "password": PASSWORD}, follow_redirects=False)
        assert page.status_code == 429 and int(page.headers["retry-after"]) > 0
        # ONVIF has its own credential and budget in the same limiter: still answered
        assert _get_hostname(client, "wrong").status_code == 401
        assert _get_hostname(client, ONVIF_PASSWORD).status_code == 200


# ------------------------------------------------------------------------- pcs_common.auth


def test_tokens_of_one_service_are_refused_by_the_other_even_with_one_key():
    camera, central = TokenService("pi-camera-service", "pi-camera-service"), TokenService("pi-camera-central", "pi-camera-central")
    secret = "k" * 16 + "x" * 16 + "0123456789abcdef"
    token, ttl = central.encode(secret, "admin-id", "access", 60, pwd=5)
    claims = central.decode(secret, token, "access")
    assert (claims.sub, claims.typ, claims.exp - claims.iat, claims["pwd"], claims.get("nope", 1)) == ("admin-id", "access", 60, 5, 1)
    with pytest.raises(TokenError, match="issuer"):
        camera.decode(secret, token, "access")
    with pytest.raises(TokenError, match="only accepted as the session cookie"):
        central.decode(secret, central.encode(secret, "a", "session", 60)[0], "access")


def test_sessions_csrf_and_revocation_survive_a_new_store(tmp_path: Path):
    path = tmp_path / "revoked.json"
    tokens = TokenService("svc", "svc")
    service = SessionService(tokens, "cookie", JsonFileRevocations(path))
    cookie, _, csrf = service.open("s" * 40, "alice", 60)
    claims = service.check("s" * 40, cookie)
    assert csrf == csrf_token("s" * 40, "svc", claims.jti) and service.csrf_valid("s" * 40, claims, csrf)
    assert not service.csrf_valid("s" * 40, claims, csrf_token("s" * 40, "other-service", claims.jti))
    service.end(claims)
    again = SessionService(tokens, "cookie", JsonFileRevocations(path))  # a restart
    with pytest.raises(TokenError, match="logged out"):
        again.check("s" * 40, cookie)


@pytest.mark.parametrize(("header", "expected"), [
    (None, None),
    ("Bearer abc", None),
    ("Basic " + base64.b64encode("ü:pa:ss".encode()).decode(), ("ü", "pa:ss")),
])
def test_parse_basic(header, expected):
    assert parse_basic(header) == expected


@pytest.mark.parametrize("header", ["Basic !!!", "Basic " + base64.b64encode(b"nocolon").decode(),
                                    "Basic " + base64.b64encode(b"\xff:x").decode(), "Basic " + "A" * 5000])
def test_parse_basic_refuses_malformed(header):
    with pytest.raises(BasicCredentialsError):
        parse_basic(header)


def test_unknown_user_costs_a_verification_and_is_refused():
    assert verify_and_update_password("x", None) == (False, None)
    assert verify_and_update_password("x", "not-a-hash") == (False, None)
    stored = hash_password("x")
    assert verify_and_update_password("x", stored) == (True, None)
