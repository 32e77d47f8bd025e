"""HTTP Digest (RFC 7616) and Basic (RFC 7617) checks for the ONVIF snapshot URI.

NVRs fetch the URI of ``GetSnapshotUri`` with the ONVIF credentials over HTTP Digest (Home Assistant's
ONVIF integration uses aiohttp's ``DigestAuthMiddleware``) or Basic. The challenge offers
``algorithm=MD5`` (what every client implements) with ``qop="auth"``; a response with
``algorithm=SHA-256`` is verified as well. Nonces are stateless: ``<issued epoch s>.<HMAC-SHA256 of
it under a per-process key>``, valid for :data:`NONCE_TTL` s, after which the challenge says
``stale=true`` so clients retry without asking the user again.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time

from pcs_common.auth import BasicCredentialsError, parse_basic
from pcs_common.auth import same as _same
from pi_camera_service.onvif.security import OnvifCredentials

REALM = "pi-camera-service ONVIF"
#: lifetime of a digest nonce, s
NONCE_TTL = 3600.0
#: longest Authorization header parsed, characters
MAX_HEADER = 4096

_PARAM = re.compile(r'\s*([A-Za-z0-9_-]+)\s*=\s*("((?:[^"\\]|\\.)*)"|[^,\s]*)\s*(?:,|$)')
_HASHES = {"MD5": hashlib.md5, "SHA-256": hashlib.sha256}


class DigestAuth:
    """Issues challenges and checks ``Authorization`` headers against one :class:`OnvifCredentials`."""

    def __init__(self, credentials: OnvifCredentials, clock=time.time) -> None:  # noqa: ANN001
        self.credentials = credentials
        self._key = secrets.token_bytes(32)
        self._clock = clock

    def _sign(self, issued: str) -> str:
        return hmac.new(self._key, issued.encode(), hashlib.sha256).hexdigest()[:32]

    def new_nonce(self) -> str:
        """A fresh nonce ``<epoch s>.<mac>``."""
        issued = str(int(self._clock()))
        return f"{issued}.{self._sign(issued)}"

    def challenge(self, stale: bool = False) -> str:
        """The ``WWW-Authenticate`` value of a 401 (Digest, MD5, qop auth)."""
        return (f'Digest realm="{REALM}", qop="auth", algorithm=MD5, nonce="{self.new_nonce()}", '
                f'opaque="{self._sign("opaque")}"' + (", stale=true" if stale else ""))

    def _nonce_state(self, nonce: str) -> str:
        issued, _, mac = nonce.partition(".")
        if not issued.isdigit() or not hmac.compare_digest(mac, self._sign(issued)):
            return "bad"
        return "stale" if self._clock() - int(issued) > NONCE_TTL else "ok"

    def check(self, authorization: str | None, method: str, uri: str) -> tuple[bool, bool]:
        """``(authenticated, stale)`` for an ``Authorization`` header of a request ``method uri``.

        ``stale`` is True when only the nonce was too old (the client should retry with a new one).
        """
        if not authorization or len(authorization) > MAX_HEADER:
            return False, False
        scheme, _, rest = authorization.strip().partition(" ")
        if scheme.lower() == "basic":
            try:
                basic = parse_basic(authorization)
            except BasicCredentialsError:
                return False, False
            assert basic is not None  # the scheme is Basic
            ok = _same(basic.username, self.credentials.username) & _same(basic.password, self.credentials.password)
            return ok, False
        if scheme.lower() != "digest":
            return False, False
        params = {m.group(1).lower(): (m.group(3) if m.group(3) is not None else m.group(2))
                  for m in _PARAM.finditer(rest)}
        algorithm = params.get("algorithm", "MD5").upper()
        hash_fn = _HASHES.get(algorithm)
        needed = ("username", "realm", "nonce", "uri", "response")
        if hash_fn is None or any(k not in params for k in needed) or params["realm"] != REALM:
            return False, False
        state = self._nonce_state(params["nonce"])
        if state == "bad":
            return False, False
        if params["uri"] != uri:
            return False, False

        def h(value: str) -> str:
            return hash_fn(value.encode()).hexdigest()

        ha1 = h(f"{self.credentials.username}:{REALM}:{self.credentials.password}")
        ha2 = h(f"{method}:{params['uri']}")
        qop = params.get("qop")
        if qop == "auth":
            if "nc" not in params or "cnonce" not in params:
                return False, False
            expected = h(f"{ha1}:{params['nonce']}:{params['nc']}:{params['cnonce']}:auth:{ha2}")
        elif qop is None:
            expected = h(f"{ha1}:{params['nonce']}:{ha2}")  # RFC 2069 compatibility
        else:
            return False, False
        ok = _same(params["response"].lower(), expected) & _same(params["username"], self.credentials.username)
        if ok and state == "stale":
            return False, True
        return ok, False

