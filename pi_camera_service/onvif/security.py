"""ONVIF credentials and the WS-Security UsernameToken check.

Credentials. The camera keeps its web password only as an argon2 hash (``CAMERA_PASSWORD_HASH``), and
both ONVIF schemes (WS-Security PasswordDigest, HTTP Digest for the snapshot) need the secret itself.
So ONVIF has a credential of its own: ``CAMERA_ONVIF_USERNAME`` (default ``CAMERA_USERNAME``) and
``CAMERA_ONVIF_PASSWORD``; without the latter a random password is generated once, stored in
``<CAMERA_STATE_DIR>/onvif_password`` (mode 0600) and printed once in the log, as the API key is.
It is a separate secret, so giving it to an NVR gives no access to ``/v1`` or the web page.

UsernameToken (OASIS WS-Security UsernameToken Profile 1.0, ONVIF Core §5.12):
``PasswordDigest = base64(sha1(nonce + created + password))`` where ``nonce`` is the decoded
``wsse:Nonce`` and ``created`` the ``wsu:Created`` text. The profile (§4) recommends rejecting tokens
whose ``Created`` is older than five minutes and caching nonces for that long; this module accepts
``Created`` within :data:`CLOCK_SKEW` s of its own clock either way and refuses a nonce seen in that
window. Only tokens whose digest is right enter the nonce cache, so unauthenticated traffic cannot
fill it; the cache holds at most :data:`MAX_NONCES` entries. ``PasswordText`` is refused: on plain HTTP
it would send the password in clear.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
import secrets
import sys
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from pi_camera_service.onvif.soap import Fault, find, not_authorized, text

log = logging.getLogger(__name__)

ONVIF_PASSWORD_FILE = "onvif_password"
#: largest accepted difference between a token's ``Created`` and this clock, s (UsernameToken Profile §4: 5 min)
CLOCK_SKEW = 300.0
#: most nonces remembered at once (each < 100 bytes)
MAX_NONCES = 65_536
#: longest accepted nonce, bytes (zeep sends 16, others 20)
MAX_NONCE_BYTES = 64

PASSWORD_DIGEST = (
    "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0#PasswordDigest"
)


@dataclass(frozen=True)
class OnvifCredentials:
    """The one ONVIF user: ``username`` and the plain ``password`` (kept out of ``repr``)."""

    username: str
    password: str = field(repr=False)


def load_onvif_credentials(settings: Any) -> OnvifCredentials:
    """``CAMERA_ONVIF_USERNAME`` / ``CAMERA_ONVIF_PASSWORD``, generating and storing the password when unset.

    Raises:
        ConfigError: the state directory or password file cannot be created or read.
    """
    from pi_camera_service.auth import _load_or_create_secret

    username = settings.onvif_username or settings.username
    password = settings.onvif_password
    if not password:
        path = Path(settings.state_dir) / ONVIF_PASSWORD_FILE
        password, created = _load_or_create_secret(path, lambda: secrets.token_urlsafe(18))
        if created:
            message = (f"generated an ONVIF password (CAMERA_ONVIF_PASSWORD is not set), stored in {path} "
                       f"(mode 0600) and shown only this once: ONVIF user {username!r}, password {password}")
            if log.isEnabledFor(logging.WARNING):
                log.warning("%s", message)
            else:
                print(f"WARNING {log.name}: {message}", file=sys.stderr, flush=True)
        else:
            log.info("ONVIF user %r; password stored in %s", username, path)
    return OnvifCredentials(username, password)


def password_digest(nonce: bytes, created: str, password: str) -> str:
    """``base64(sha1(nonce + created + password))`` (UsernameToken Profile 1.0 §3.1), UTF-8 text."""
    return base64.b64encode(hashlib.sha1(nonce + created.encode() + password.encode()).digest()).decode()


def parse_created(value: str) -> float:
    """``wsu:Created`` (xs:dateTime, ``Z`` or an offset; naive is taken as UTC) -> epoch s.

    Raises:
        ValueError: not an xs:dateTime.
    """
    v = value.strip()
    if v.endswith(("Z", "z")):
        v = v[:-1] + "+00:00"
    dt = datetime.fromisoformat(v)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return dt.timestamp()


class UsernameTokenVerifier:
    """Checks ``wsse:UsernameToken`` headers against :class:`OnvifCredentials`; thread-safe.

    Args:
        credentials: the ONVIF user.
        clock_skew: accepted ``|Created - now|``, s.
        clock: ``() -> epoch s`` (tests).
    """

    def __init__(self, credentials: OnvifCredentials, clock_skew: float = CLOCK_SKEW, clock: Any = time.time) -> None:
        self.credentials = credentials
        self.clock_skew = clock_skew
        self._clock = clock
        self._nonces: OrderedDict[bytes, float] = OrderedDict()
        self._lock = threading.Lock()

    def verify(self, header: Any) -> str:
        """The authenticated user name of a SOAP ``Header``.

        Raises:
            Fault: ``ter:NotAuthorized`` (HTTP 401): no token, wrong user or digest, ``Created`` outside
                the window, a replayed nonce or ``PasswordText``; the reason says which.
        """
        token = find(header, "wsse:Security/wsse:UsernameToken")
        if token is None:
            raise not_authorized("this operation needs a WS-Security UsernameToken with PasswordDigest "
                                 "(ONVIF Core §5.12)")
        username = text(token, "wsse:Username") or ""
        pw = find(token, "wsse:Password")
        nonce_b64 = text(token, "wsse:Nonce")
        created = text(token, "wsu:Created")
        if pw is None or pw.text is None:
            raise not_authorized("the UsernameToken has no Password")
        if (pw.get("Type") or PASSWORD_DIGEST) != PASSWORD_DIGEST:
            raise not_authorized("only PasswordDigest is accepted (PasswordText would send the password in clear)")
        if not nonce_b64 or not created:
            raise not_authorized("PasswordDigest needs a wsse:Nonce and a wsu:Created")
        try:
            nonce = base64.b64decode(nonce_b64, validate=True)
        except (binascii.Error, ValueError):
            raise not_authorized("wsse:Nonce is not base64") from None
        if not 0 < len(nonce) <= MAX_NONCE_BYTES:
            raise not_authorized(f"wsse:Nonce must be 1..{MAX_NONCE_BYTES} bytes")
        try:
            created_at = parse_created(created)
        except ValueError:
            raise not_authorized(f"wsu:Created {created[:40]!r} is not an xs:dateTime") from None
        now = self._clock()
        if abs(now - created_at) > self.clock_skew:
            raise not_authorized(
                f"wsu:Created is {now - created_at:+.0f} s from the camera's clock (allowed ±{self.clock_skew:.0f} s); "
                "call GetSystemDateAndTime and correct the offset")
        expected = password_digest(nonce, created, self.credentials.password)
        user_ok = hmac.compare_digest(username.encode(), self.credentials.username.encode())
        if not (hmac.compare_digest(expected.encode(), pw.text.strip().encode()) and user_ok):
            raise not_authorized("wrong user name or password digest")
        with self._lock:
            self._expire(now)
            if nonce in self._nonces:
                raise not_authorized("this nonce was already used (replayed request); send a fresh wsse:Nonce")
            self._nonces[nonce] = now
            while len(self._nonces) > MAX_NONCES:
                self._nonces.popitem(last=False)
        return username

    def _expire(self, now: float) -> None:
        horizon = now - 2 * self.clock_skew  # a token is valid for at most 2 * skew of our clock
        while self._nonces:
            nonce, seen = next(iter(self._nonces.items()))
            if seen >= horizon:
                break
            self._nonces.popitem(last=False)


__all__ = ["Fault", "OnvifCredentials", "UsernameTokenVerifier", "load_onvif_credentials", "password_digest"]
