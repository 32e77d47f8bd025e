"""Viewer tickets (pcs_common.viewer_ticket): what a camera accepts and what it refuses."""

from __future__ import annotations

import base64
import json
import secrets
import threading
import time

import jwt
import pytest

from pcs_common.viewer_ticket import (
    MAX_TICKET_LENGTH,
    TicketError,
    TicketVerifier,
    audience,
    issue_ticket,
    viewer_key,
)

DEVICE_ID = "cam-" + secrets.token_hex(4)
SECRET = secrets.token_urlsafe(32)


def _sign(claims: dict, key: str | None = None, algorithm: str = "HS256") -> str:
    return jwt.encode(claims, key or viewer_key(SECRET), algorithm=algorithm)


def _claims(**over: object) -> dict:
    now = int(time.time())
    return {"aud": audience(DEVICE_ID), "sub": "alice", "scope": "mjpeg", "iat": now, "exp": now + 60,
            "jti": secrets.token_urlsafe(16), **over}


def test_viewer_key_is_a_256_bit_hmac_of_the_secret_and_differs_per_secret():
    key = viewer_key(SECRET)
    assert len(base64.urlsafe_b64decode(key + "=")) == 32 and len(key) == 43
    assert viewer_key(SECRET) == key and viewer_key(SECRET + "x") != key
    assert SECRET not in key


def test_a_ticket_from_the_central_server_opens_the_view_once():
    ticket, expires_in = issue_ticket(viewer_key(SECRET), DEVICE_ID, "alice")
    assert expires_in == 60 and len(ticket) < MAX_TICKET_LENGTH
    verifier = TicketVerifier()
    claims = verifier.verify(ticket, DEVICE_ID, SECRET)
    assert claims["sub"] == "alice" and claims["scope"] == "mjpeg" and claims["aud"] == audience(DEVICE_ID)
    with pytest.raises(TicketError, match="already used"):
        verifier.verify(ticket, DEVICE_ID, SECRET)


@pytest.mark.parametrize("case, ticket, message", [
    ("other camera", lambda: _sign(_claims(aud=audience("another-camera"))), "another camera"),
    ("other key", lambda: _sign(_claims(), key=viewer_key("another secret")), "signature invalid"),
    ("device secret itself as key", lambda: _sign(_claims(), key=SECRET), "signature invalid"),
    ("expired", lambda: _sign(_claims(iat=int(time.time()) - 200, exp=int(time.time()) - 100)), "expired"),
    ("from the future", lambda: _sign(_claims(iat=int(time.time()) + 600, exp=int(time.time()) + 660)), "not valid yet"),
    ("too long-lived", lambda: _sign(_claims(exp=int(time.time()) + 3600)), "longer than 120 s"),
    ("other scope", lambda: _sign(_claims(scope="snapshot")), "scope must be 'mjpeg'"),
    ("no scope", lambda: _sign({k: v for k, v in _claims().items() if k != "scope"}), "scope must be 'mjpeg'"),
    ("no jti", lambda: _sign({k: v for k, v in _claims().items() if k != "jti"}), "lacks the jti"),
    ("no audience", lambda: _sign({k: v for k, v in _claims().items() if k != "aud"}), "lacks the aud"),
    ("too long", lambda: "a" * (MAX_TICKET_LENGTH + 1), "longer than"),
    ("garbage", lambda: "not.a.jwt", "malformed"),
])
def test_tickets_the_camera_refuses(case, ticket, message):
    with pytest.raises(TicketError, match=message):
        TicketVerifier().verify(ticket(), DEVICE_ID, SECRET)


def test_alg_none_and_other_algorithms_are_refused():
    header = base64.urlsafe_b64encode(json.dumps({"alg": "none", "typ": "JWT"}).encode()).rstrip(b"=").decode()
    body = base64.urlsafe_b64encode(json.dumps(_claims()).encode()).rstrip(b"=").decode()
    with pytest.raises(TicketError):
        TicketVerifier().verify(f"{header}.{body}.", DEVICE_ID, SECRET)
    with pytest.raises(TicketError, match="malformed"):
        TicketVerifier().verify(_sign(_claims(), key=viewer_key(SECRET) * 2, algorithm="HS512"), DEVICE_ID, SECRET)


def test_issue_refuses_long_lifetimes_and_missing_keys():
    with pytest.raises(ValueError, match="1..120"):
        issue_ticket(viewer_key(SECRET), DEVICE_ID, "alice", ttl=3600)
    with pytest.raises(ValueError, match="no viewer key"):
        issue_ticket("", DEVICE_ID, "alice")


def test_parallel_use_of_one_ticket_opens_exactly_one_stream():
    ticket, _ = issue_ticket(viewer_key(SECRET), DEVICE_ID, "alice")
    verifier, results, start = TicketVerifier(), [], threading.Barrier(16)

    def use() -> None:
        start.wait()
        try:
            verifier.verify(ticket, DEVICE_ID, SECRET)
            results.append("ok")
        except TicketError:
            results.append("refused")

    threads = [threading.Thread(target=use) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == ["ok"] + ["refused"] * 15
