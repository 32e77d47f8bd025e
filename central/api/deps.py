"""Request dependencies: database session, client address, admin and device authentication.

Admins authenticate with ``Authorization: Bearer <JWT>`` (from ``POST /v1/auth/token``), a long-lived
API token (``Bearer pcs_...``) or the dashboard's session cookie (+ ``X-CSRF-Token`` on unsafe methods).
Cameras authenticate with HTTP Basic ``device_id:device_secret``. Every check reads the database, so a
disabled admin, a revoked token or an unpaired camera is refused on its very next request.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass, field
from typing import Annotated, Any, Iterator, TypeVar

from fastapi import Depends, HTTPException, Request
from sqlalchemy import select
from sqlalchemy.orm import Session

from central.models import Admin, ApiToken, Camera, utcnow
from central.security import API_TOKEN_PREFIX, TOKENS, DatabaseRevocations, TokenError, decode_jwt, digest
from pcs_common.auth import CSRF_HEADER, SAFE_METHODS, BasicCredentialsError, SessionEnded, SessionService, csrf_token, parse_basic
from pcs_common.auth import unauthorized as _unauthorized

T = TypeVar("T")

SCOPES = {
    "read": "read cameras, discovery and fleet state",
    "cameras": "pair, rename, disable, unpair cameras, rotate their secrets, scan the network",
    "admins": "manage admins and API tokens",
}
SESSION_COOKIE = "pcs_central_session"
REALM = "pi-camera-central"
"""Realm of the admin API's ``WWW-Authenticate: Bearer`` challenges (RFC 7235 §2.2)."""


def central(request: Request) -> Any:
    """The server's shared state (``app.state.central``, a :class:`central.app.CentralState`)."""
    return request.app.state.central


def get_db(request: Request) -> Iterator[Session]:
    """One SQLAlchemy session per request, closed afterwards (commit is explicit in the handlers)."""
    with central(request).sessions() as session:
        yield session


DB = Annotated[Session, Depends(get_db)]


def get_or_404(db: Session, model: type[T], ident: str, what: str) -> T:
    """The ``model`` row with primary key ``ident``.

    Raises:
        HTTPException: 404 ``no <what> with id '<ident>'``.
    """
    row = db.get(model, ident)
    if row is None:
        raise HTTPException(404, f"no {what} with id {ident!r}")
    return row


def client_address(request: Request) -> str:
    """The client's IP address as the ASGI server reports it.

    ``X-Forwarded-For`` is never read here: with ``CENTRAL_TRUST_PROXY_HEADERS`` the server (uvicorn's
    ``proxy_headers`` with ``forwarded_allow_ips``, see :meth:`central.config.CentralSettings.
    uvicorn_proxy_options`) replaces the peer address by the forwarded one only for connections from
    the trusted proxies; otherwise the header is ignored, so rotating it never escapes a rate limit.
    """
    return request.client.host if request.client else "unknown"


def unauthorized(detail: str, error: str = "invalid_token") -> HTTPException:
    """A 401 with ``WWW-Authenticate: Bearer realm=...`` (RFC 6750 §3) and ``{"detail", "error"}``
    (:func:`pcs_common.auth.unauthorized`)."""
    return _unauthorized(detail, realm=REALM, error=error, error_in_body=True)


def csrf_token_for(secret_key: str, jti: str) -> str:
    """The CSRF token bound to a session (:func:`pcs_common.auth.csrf_token` of its ``jti``)."""
    return csrf_token(secret_key, TOKENS.audience, jti)


def sessions(request: Request, db: Session | None = None) -> SessionService:
    """The dashboard's :class:`~pcs_common.auth.SessionService`: logouts in the ``revoked_sessions``
    table, read with ``db`` when given."""
    return SessionService(TOKENS, SESSION_COOKIE, DatabaseRevocations(central(request).sessions, db))


@dataclass
class Principal:
    """Who is calling: the admin, the scopes granted and how (``jwt`` | ``api_token`` | ``session``)."""

    admin: Admin
    scopes: set[str]
    via: str
    claims: Any = field(default_factory=dict)  # pcs_common.auth.TokenClaims of a JWT or session


def _admin_from_claims(db: Session, claims: dict[str, Any]) -> Admin:
    admin = db.get(Admin, claims["sub"])
    if admin is None:
        raise unauthorized("the account of this token no longer exists")
    if admin.disabled:
        raise unauthorized("this account is disabled")
    if claims.get("pwd", 0) < int(admin.password_changed_at.timestamp()):
        raise unauthorized("the password changed after this token was issued; log in again")
    return admin


def _from_api_token(db: Session, token: str) -> Principal:
    row = db.scalar(select(ApiToken).where(ApiToken.token_hash == digest(token)))
    now = utcnow()
    if row is None or row.revoked_at is not None:
        raise unauthorized("unknown or revoked API token")
    if row.expires_at is not None and row.expires_at <= now:
        raise unauthorized("API token expired")
    if row.admin.disabled:
        raise unauthorized("the account owning this API token is disabled")
    row.last_used_at = now
    db.commit()
    return Principal(row.admin, set(row.scope_list), "api_token")


def authenticate(request: Request, db: Session) -> Principal:
    """The calling admin from a Bearer JWT, an API token or the session cookie.

    Raises:
        HTTPException: 401 when credentials are missing or invalid; 403 for a cookie request that
            changes state without a valid ``X-CSRF-Token``.
    """
    state = central(request)
    header = request.headers.get("authorization", "")
    scheme, _, credentials = header.partition(" ")
    if scheme.lower() == "bearer" and credentials:
        if credentials.startswith(API_TOKEN_PREFIX):
            return _from_api_token(db, credentials)
        try:
            claims = decode_jwt(state.secret_key, credentials, "access")
        except TokenError as exc:
            raise unauthorized(str(exc)) from None
        return Principal(_admin_from_claims(db, claims), set(SCOPES), "jwt", claims)
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        service = sessions(request, db)
        try:
            claims = service.check(state.secret_key, cookie)
        except SessionEnded:
            raise unauthorized("session ended (logged out); log in again") from None
        except TokenError as exc:
            raise unauthorized(f"session: {exc}; log in again") from None
        admin = _admin_from_claims(db, claims)
        if request.method not in SAFE_METHODS and not service.csrf_valid(
                state.secret_key, claims, request.headers.get(CSRF_HEADER)):
            raise HTTPException(403, f"missing or wrong {CSRF_HEADER} header for a cookie session")
        return Principal(admin, set(SCOPES), "session", claims)
    raise unauthorized("authentication required: send Authorization: Bearer <access_token>", "invalid_request")


def require(scope: str) -> Any:
    """A dependency admitting admins whose credentials carry ``scope`` (see :data:`SCOPES`).

    Raises:
        HTTPException: 401 as :func:`authenticate`; 403 when the scope is missing.
    """
    if scope not in SCOPES:
        raise ValueError(f"unknown scope {scope!r}")

    def dependency(request: Request, db: DB) -> Principal:
        principal = authenticate(request, db)
        db.commit()  # end the read transaction: its pooled connection is not held while the route waits
        if scope not in principal.scopes:
            raise HTTPException(403, f"this token lacks the {scope!r} scope (it has: {' '.join(sorted(principal.scopes)) or 'none'})")
        return principal

    return dependency


DEVICE_CHALLENGE = 'Basic realm="devices"'
"""``WWW-Authenticate`` of a 401 to a camera (RFC 7617)."""


@dataclass
class DeviceAuth:
    """An authenticated camera; ``with_retiring_secret`` when it used the secret being rotated out."""

    camera: Camera
    with_retiring_secret: bool


def _basic_credentials(request: Request) -> tuple[str, str] | None:
    try:
        return parse_basic(request.headers.get("authorization"), "device_id:device_secret")
    except BasicCredentialsError:
        return None


def authenticate_device(request: Request, db: Session, *, allow_retiring: bool = False) -> DeviceAuth:
    """The calling camera from HTTP Basic ``device_id:device_secret``.

    Raises:
        HTTPException: 401 ``unknown_device`` for missing, unknown or wrong credentials (an unpaired
            camera's); 403 ``camera_disabled`` when an admin disabled the camera.
    """
    creds = _basic_credentials(request)
    if creds is None:
        raise _unauthorized("device credentials required (HTTP Basic device_id:device_secret)", realm="devices",
                            error="unknown_device", error_in_body=True, challenge=DEVICE_CHALLENGE)
    device_id, secret = creds
    camera = db.get(Camera, device_id)
    secret_digest = digest(secret)
    retiring = False
    if camera is not None and camera.secret_hash and hmac.compare_digest(secret_digest, camera.secret_hash):
        pass
    elif (allow_retiring and camera is not None and camera.retiring_secret_hash
          and hmac.compare_digest(secret_digest, camera.retiring_secret_hash)):
        retiring = True
    else:
        raise _unauthorized("unknown device or wrong device secret; the camera must pair again", realm="devices",
                            error="unknown_device", error_in_body=True, challenge=DEVICE_CHALLENGE)
    if camera.disabled:
        raise HTTPException(403, {"detail": "this camera is disabled on the central server", "error": "camera_disabled"})
    if not retiring:
        changed = camera.claimed_at is None or camera.retiring_secret_hash is not None
        if camera.claimed_at is None:
            camera.claimed_at = utcnow()
        camera.retiring_secret_hash = None
        if changed:
            db.commit()
    return DeviceAuth(camera, retiring)
