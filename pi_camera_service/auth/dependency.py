"""The FastAPI dependency guarding every ``/v1`` route: :func:`require_auth` / :data:`AuthDep`."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import APIKeyHeader, OAuth2PasswordBearer

from pcs_common.auth import BasicCredentialsError, basic_scheme, parse_basic
from pi_camera_service.auth.config import API_KEY_FILE, API_KEY_HEADER, LOGIN_URL, TOKEN_URL, AuthConfig, get_auth_config
from pi_camera_service.auth.sessions import CSRF_HEADER, SAFE_METHODS, SESSION_COOKIE, csrf_valid, decode_session, forbidden
from pi_camera_service.auth.tokens import TokenError, _header_safe, _same, decode_token, unauthorized

API_KEY_PRINCIPAL = "api-key"
"""Principal returned by :func:`require_auth` for a request authenticated with ``X-API-Key``."""

QUERY_TOKEN_PARAMS = ("token", "access_token")


api_key_scheme = APIKeyHeader(
    name=API_KEY_HEADER,
    scheme_name="APIKey",
    description="CAMERA_API_KEY, or the key generated at first start (see the start-up log).",
    auto_error=False,
)
"""OpenAPI security scheme for ``X-API-Key`` (read by :func:`require_auth`)."""

bearer_scheme = OAuth2PasswordBearer(
    tokenUrl=TOKEN_URL,
    scheme_name="OAuth2Password",
    description=f"JWT from POST {TOKEN_URL} (password form) or GET {LOGIN_URL} (HTTP Basic).",
    auto_error=False,
)
"""OpenAPI security scheme for ``Authorization: Bearer <JWT>`` (read by :func:`require_auth`)."""

_CREDENTIALS_HINT = (
    f"send {API_KEY_HEADER}: <key> or Authorization: Bearer <token> "
    f"(get a token from POST {TOKEN_URL} or GET {LOGIN_URL})"
)



def _cookie_principal(request: Request, cfg: AuthConfig, cookie: str) -> str:
    """Authenticate by the session cookie; state-changing methods also need the CSRF header."""
    try:
        claims = decode_session(request, cfg, cookie)
    except TokenError as exc:
        reason = str(exc).split(";", 1)[0]
        raise unauthorized(
            f"session cookie refused ({reason}): log in again at /login, or {_CREDENTIALS_HINT}",
            error="invalid_token",
        ) from None
    if request.method.upper() not in SAFE_METHODS:
        sent = request.headers.get(CSRF_HEADER)
        if not sent:
            raise forbidden(
                f"CSRF token missing: a {request.method} authenticated by the session cookie must send the "
                f"{CSRF_HEADER} header with the token of the page (meta name=csrf-token); API clients "
                f"should use {API_KEY_HEADER} or Authorization: Bearer instead"
            )
        if not csrf_valid(cfg, claims, sent):
            raise forbidden(
                f"CSRF token invalid: the {CSRF_HEADER} header does not belong to this session; "
                "reload the page (a new login issues a new token)"
            )
    principal = claims["sub"]
    request.state.principal = principal
    return principal


DEVICE_PRINCIPAL_PREFIX = "device:"
"""Principal of a request authenticated with the central server's device credentials: ``device:<id>``."""


def _device_principal(request: Request, authorization: str) -> str | None:
    """Check HTTP Basic (RFC 7617) ``device_id:device_secret`` against the paired camera's credentials.

    The credentials come from ``request.app.state.central_link.device_credentials()`` (see
    :mod:`pi_camera_service.central_link`); both parts are compared in constant time. Returns
    ``device:<device_id>`` when they match, ``None`` when the scheme is not Basic or the camera is not
    paired (the caller then refuses the scheme as before).

    Raises:
        HTTPException: 401 when the camera is paired and the Basic credentials are malformed or wrong.
    """
    link = getattr(request.app.state, "central_link", None)
    stored = link.device_credentials() if link is not None and basic_scheme(authorization)[0].lower() == "basic" else None
    if stored is None:
        return None
    try:
        creds = parse_basic(authorization, "device_id:device_secret")
    except BasicCredentialsError as exc:
        raise unauthorized(str(exc), error="invalid_request") from None
    assert creds is not None  # the scheme is Basic
    id_ok = _same(creds.username, stored[0])
    secret_ok = _same(creds.password, stored[1])
    device_id = creds.username
    if not (id_ok and secret_ok):
        raise unauthorized("device credentials invalid (HTTP Basic is only accepted with the device_id and "
                           "device_secret the central server issued to this camera)", error="invalid_token")
    request.state.principal = DEVICE_PRINCIPAL_PREFIX + device_id
    return request.state.principal


async def require_auth(
    request: Request,
    api_key: Annotated[str | None, Security(api_key_scheme)],
    bearer_token: Annotated[str | None, Security(bearer_scheme)],
) -> str:
    """FastAPI dependency guarding ``/v1`` routes; returns the principal.

    The principal is the username for a valid bearer token (RFC 6750 §2.1), else
    :data:`API_KEY_PRINCIPAL` for a valid ``X-API-Key``; it is also stored in
    ``request.state.principal``. Every credential presented must be valid. Without either header,
    a valid session cookie (:data:`SESSION_COOKIE`) is accepted as the username; with it, methods
    other than GET/HEAD/OPTIONS need the session's ``X-CSRF-Token`` (403 when missing or wrong).
    While the camera is paired with a central server, ``Authorization: Basic`` with its device
    credentials is accepted as ``device:<device_id>`` (see :func:`_device_principal`); otherwise the
    Basic scheme is refused like any other non-Bearer scheme.

    Raises:
        HTTPException: 401 with ``WWW-Authenticate: Bearer realm=...`` (RFC 6750 §3) and a
            ``detail`` message when: a token is passed in the query string (``error=
            "invalid_request"``, refused even with a valid header); a viewer ticket (``?ticket=``) is
            sent to a route other than the MJPEG view; no credentials are sent; the
            Authorization scheme is not Bearer; the API key is wrong or API keys are disabled; the
            token is empty, malformed, expired, wrongly signed, altered, ``alg: none`` or for an
            unknown subject (``error="invalid_token"``); the session cookie is invalid, expired or
            logged out.
        HTTPException: 403 when a cookie-authenticated POST/PATCH/PUT/DELETE lacks the session's
            ``X-CSRF-Token`` or sends a wrong one.
        RuntimeError: ``app.state.auth`` is missing (see :func:`get_auth_config`).
    """
    cfg = get_auth_config(request)

    in_query = [name for name in QUERY_TOKEN_PARAMS if name in request.query_params]
    if in_query:
        raise unauthorized(
            f"token in the query string (?{in_query[0]}=) is refused: URLs end up in logs and "
            "browser history; send it in the Authorization header as Authorization: Bearer <token>",
            error="invalid_request",
        )

    if "ticket" in request.query_params:  # pcs_common.viewer_ticket: only the MJPEG view takes one
        raise unauthorized("a viewer ticket (?ticket=) is only accepted by GET /v1/camera/mjpeg",
                           error="invalid_request")

    authorization = request.headers.get("Authorization")
    if api_key is None and not authorization:
        cookie = request.cookies.get(SESSION_COOKIE)
        if cookie:
            return _cookie_principal(request, cfg, cookie)
        raise unauthorized(f"not authenticated: {_CREDENTIALS_HINT}")

    principal: str | None = None
    device = _device_principal(request, authorization) if authorization and bearer_token is None else None
    if device is not None:
        principal, authorization = device, None  # an X-API-Key sent as well must still be valid (below)
    if authorization:
        if bearer_token is None:
            scheme = authorization.split(" ", 1)[0][:20]
            raise unauthorized(
                f"Authorization scheme {_header_safe(scheme)!r} is not accepted here: "
                f"use Authorization: Bearer <token> or {API_KEY_HEADER}: <key>",
                error="invalid_request",
            )
        if not bearer_token.strip():
            raise unauthorized("bearer token is empty", error="invalid_token")
        try:
            claims = decode_token(cfg, bearer_token.strip())
        except TokenError as exc:
            raise unauthorized(str(exc), error="invalid_token") from None
        principal = claims["sub"]

    if api_key is not None:
        if cfg.api_key is None:
            raise unauthorized(
                f"{API_KEY_HEADER} is not accepted: no API key is configured on this camera "
                f"(CAMERA_API_KEY is unset and there is no {API_KEY_FILE} file in the state directory); "
                f"use Authorization: Bearer <token> from POST {TOKEN_URL}"
            )
        if not _same(api_key, cfg.api_key):
            raise unauthorized(f"API key invalid (check the {API_KEY_HEADER} header)")
        principal = principal or API_KEY_PRINCIPAL

    assert principal is not None
    request.state.principal = principal
    return principal


AuthDep = Annotated[str, Depends(require_auth)]
"""Parameter type for protected routes: ``def route(principal: AuthDep)`` (value: the principal)."""
