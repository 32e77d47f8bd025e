"""JSON Web Tokens of both services: HS256 through PyJWT, typed claims, one :class:`TokenError`.

Each service has one :class:`TokenService` naming its issuer and audience (RFC 7519 §4.1.1/§4.1.3):
the camera ``pi-camera-service``, the central server ``pi-camera-central``, so a token of one is
refused by the other even when both were given the same key. Every token carries ``sub``, ``typ``
(``access``, ``session``, ``setup``), ``iss``, ``aud``, ``iat``, ``exp`` (NumericDate, s since the
epoch) and a random ``jti``, plus service-specific claims (central: ``pwd``, ``name``).
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import jwt

JWT_ALGORITHM = "HS256"
"""The only signing algorithm issued and accepted (``alg: none`` and all others are refused)."""

ACCESS_TOKEN = "access"
"""``typ`` of bearer tokens (``Authorization: Bearer``, RFC 6750 §2.1)."""

SESSION_TOKEN = "session"
"""``typ`` of browser session tokens: accepted only as the session cookie, never as Bearer."""

_REGISTERED = ("sub", "typ", "iss", "aud", "iat", "exp", "jti")


class TokenError(ValueError):
    """A token was refused; ``str()`` is a short reason such as ``"token expired"``.

    Raised by :meth:`TokenService.decode`, the single place where PyJWT exceptions are mapped; the
    services turn it into a 401 with ``error="invalid_token"`` (RFC 6750 §3.1).
    """


def header_safe(text: str) -> str:
    """Keep only characters allowed in an RFC 6750 ``error_description`` (no quote, no backslash)."""
    return "".join(c for c in text if 0x20 <= ord(c) <= 0x7E and c not in '"\\')


@dataclass(frozen=True, slots=True)
class TokenClaims:
    """The verified claims of a token (RFC 7519 §4.1) and the service's own ones in ``extra``.

    ``iat`` and ``exp`` are NumericDate (int s since the epoch). The object also reads like the JWT
    payload (``claims["sub"]``, ``claims.get("pwd", 0)``), for code written against the dict.
    """

    sub: str
    typ: str
    iss: str
    aud: str
    iat: int
    exp: int
    jti: str
    extra: Mapping[str, Any] = field(default_factory=dict)

    def payload(self) -> dict[str, Any]:
        """The claims as the JWT payload dict."""
        return {**self.extra, **{name: getattr(self, name) for name in _REGISTERED}}

    def __getitem__(self, name: str) -> Any:
        if name in _REGISTERED:
            return getattr(self, name)
        return self.extra[name]

    def __contains__(self, name: object) -> bool:
        return name in _REGISTERED or name in self.extra

    def get(self, name: str, default: Any = None) -> Any:
        """``self[name]``, or ``default`` for a claim the token does not carry."""
        try:
            return self[name]
        except KeyError:
            return default


@dataclass(frozen=True, slots=True)
class TokenService:
    """How one service signs and checks its tokens.

    Attributes:
        issuer: ``iss`` of every token signed, and the only one accepted.
        audience: ``aud`` of every token signed, and the only one accepted.
        renew_hint: said after "token expired" (``"; get a new one from POST /v1/auth/token"``).
        access_hint: said after "a session token is only accepted as the session cookie"
            (``"; get an access token from POST /v1/auth/token"``).
        session_name: what the service calls its session ("web session", "dashboard session").
    """

    issuer: str
    audience: str
    renew_hint: str = ""
    access_hint: str = ""
    session_name: str = "session"

    def encode(self, secret: str, subject: str, kind: str, ttl_s: int, **extra: Any) -> tuple[str, int]:
        """Sign an HS256 JWT for ``subject`` of type ``kind`` valid ``ttl_s`` s.

        Returns ``(token, ttl_s)``. Claims: ``sub``, ``typ``, ``iss``, ``aud``, ``iat`` = now,
        ``exp`` = now + ``ttl_s``, a random ``jti`` (128 bits, url-safe) and ``extra``.
        """
        lifetime = int(ttl_s)
        now = int(time.time())
        payload = {**extra, "sub": subject, "typ": kind, "iss": self.issuer, "aud": self.audience,
                   "iat": now, "exp": now + lifetime, "jti": secrets.token_urlsafe(16)}
        return jwt.encode(payload, secret, algorithm=JWT_ALGORITHM), lifetime

    def decode(self, secret: str, token: str, kind: str, *,
               subject_ok: Callable[[str], bool] | None = None) -> TokenClaims:
        """Verify ``token`` and return its claims.

        Only HS256 is accepted (so ``alg: none`` and algorithm confusion are refused); ``exp``, ``iat``
        and ``sub`` are required, ``exp`` is checked against the current time (no leeway), ``iss`` and
        ``aud`` must be this service's (PyJWT's ``issuer``/``audience`` checks), ``typ`` must be
        ``kind``, a ``jti`` must be present and, with ``subject_ok``, ``subject_ok(sub)`` true.

        Raises:
            TokenError: with a message saying what is wrong ("token expired", "token signature
                invalid", "token is malformed ...", ...).
        """
        try:
            claims = jwt.decode(token, secret, algorithms=[JWT_ALGORITHM], audience=self.audience,
                                issuer=self.issuer, options={"require": ["exp", "iat", "sub"]})
        except jwt.ExpiredSignatureError:
            raise TokenError("token expired" + self.renew_hint) from None
        except jwt.InvalidSignatureError:
            raise TokenError("token signature invalid (the token was altered or signed with another secret)") from None
        except jwt.InvalidAlgorithmError:
            raise TokenError(f"token algorithm not allowed (only {JWT_ALGORITHM} is accepted)") from None
        except jwt.MissingRequiredClaimError as exc:
            raise TokenError(f"token lacks the required {exc.claim} claim") from None
        except jwt.InvalidAudienceError:
            raise TokenError(f"token audience invalid (not issued for {self.audience}: a token of another service)") from None
        except jwt.InvalidIssuerError:
            raise TokenError(f"token issuer invalid (not issued by {self.issuer})") from None
        except jwt.ImmatureSignatureError:
            raise TokenError("token is not valid yet (issued in the future)") from None
        except jwt.DecodeError:
            raise TokenError("token is malformed (not a JWS compact serialization)") from None
        except jwt.InvalidTokenError as exc:  # e.g. exp or iat that is not a number
            raise TokenError(f"token is invalid ({header_safe(str(exc))})") from None
        typ = claims.get("typ")
        if typ != kind:
            if kind == ACCESS_TOKEN and typ == SESSION_TOKEN:
                raise TokenError(f"a {self.session_name} token is only accepted as the session cookie, not as a "
                                 "bearer token" + self.access_hint)
            raise TokenError(f"token type {str(typ)[:20]!r} is not accepted here ({kind!r} needed)")
        jti = claims.get("jti")
        if not isinstance(jti, str) or not jti:
            raise TokenError("token lacks the required jti claim")
        sub = claims["sub"]
        if not isinstance(sub, str) or (subject_ok is not None and not subject_ok(sub)):
            raise TokenError("token subject is not a known user")
        extra = {k: v for k, v in claims.items() if k not in _REGISTERED}
        return TokenClaims(sub=sub, typ=typ, iss=self.issuer, aud=self.audience, iat=int(claims["iat"]),
                           exp=int(claims["exp"]), jti=jti, extra=extra)
