"""Routes under ``/v1/auth`` that exchange the user's password for a JWT.

* ``POST /v1/auth/token``: OAuth 2.0 resource owner password grant (RFC 6749 §4.3), form fields
  ``username`` and ``password`` → ``{"access_token", "token_type": "bearer", "expires_in"}``
  (RFC 6749 §5.1). Missing fields are answered with 401 (not 422) and a message naming the field.
* ``GET /v1/auth/login``: HTTP Basic (RFC 7617) → the same fields plus ``"token"``, the flow of the
  original camera servers (``curl -u user:password .../v1/auth/login``).

Both answer 401 with a JSON ``detail`` and a ``WWW-Authenticate`` challenge (``Bearer`` for the
token endpoint, ``Basic realm="pi-camera-service", charset="UTF-8"`` for the login endpoint).
Wrong username, wrong password or both give the same message, so usernames cannot be probed.
Responses carrying a token have ``Cache-Control: no-store`` (RFC 6749 §5.1). The argon2
verification runs in the thread pool, off the event loop, through the app's password-check gate
(:class:`~pcs_common.limits.PasswordCheckGate`): at most ``CAMERA_PASSWORD_CHECKS_MAX`` at
once, 503 with ``Retry-After`` when no slot frees up within ``CAMERA_PASSWORD_CHECK_WAIT``.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request, Response, status
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from fastapi.security import HTTPBasic, HTTPBasicCredentials, OAuth2PasswordRequestForm
from pydantic import BaseModel, Field

from pcs_common.auth import BasicCredentialsError, basic_scheme as _split_scheme, parse_basic
from pi_camera_service.auth import (
    HASH_PASSWORD_HINT,
    REALM,
    AuthConfig,
    TooManyLogins,
    authenticate,
    bearer_challenge,
    client_address,
    get_auth_config,
    issue_token,
    login_attempt,
    login_limiter,
    password_gate,
    unauthorized,
)

INVALID_CREDENTIALS = "invalid username or password"
PASSWORD_LOGIN_DISABLED = (
    "password login is not configured on this camera: set CAMERA_PASSWORD_HASH to the output of "
    f"`{HASH_PASSWORD_HINT}` and restart the service (or use the X-API-Key header)"
)
BASIC_CHALLENGE = f'Basic realm="{REALM}", charset="UTF-8"'


class TokenResponse(BaseModel):
    """Successful token response (RFC 6749 §5.1); ``expires_in`` is in seconds."""

    access_token: str = Field(description="HS256 JWT to send as Authorization: Bearer <token>")
    token_type: str = Field("bearer", description='always "bearer" (RFC 6750)')
    expires_in: int = Field(description="token lifetime, seconds")


class LoginResponse(TokenResponse):
    """:class:`TokenResponse` plus ``token`` (same value as ``access_token``) for older clients."""

    token: str = Field(description="same value as access_token")


class _FormErrorsAs401Route(APIRoute):
    """Route class that answers request-validation errors with 401 instead of FastAPI's 422.

    A token request missing ``username`` or ``password`` is a failed authentication for the
    client, so it gets a Bearer challenge and a ``detail`` naming the missing field.
    """

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def handler_with_401(request: Request) -> Response:
            try:
                return await handler(request)
            except RequestValidationError as exc:
                raise unauthorized(_describe_form_errors(exc), error="invalid_request") from None

        return handler_with_401


def _describe_form_errors(exc: RequestValidationError) -> str:
    missing: list[str] = []
    other: list[str] = []
    for error in exc.errors():
        name = str(error.get("loc", ("", "?"))[-1])
        (missing if error.get("type") == "missing" else other).append(name)
    if missing:
        return (
            f"{' and '.join(missing)} missing: send username and password as "
            "application/x-www-form-urlencoded form fields"
        )
    if "grant_type" in other:
        return 'grant_type must be "password" (or left out)'
    return f"invalid form field(s): {', '.join(other)}"


class _BasicCredentials(HTTPBasic):
    """``HTTPBasic`` (documents the scheme in OpenAPI) with precise 401 messages.

    Credentials are decoded as UTF-8 (RFC 7617 §2.1, ``charset="UTF-8"``) rather than ASCII only.
    """

    def make_authenticate_headers(self) -> dict[str, str]:
        return {"WWW-Authenticate": BASIC_CHALLENGE}

    def _fail(self, detail: str) -> HTTPException:
        return unauthorized(detail, challenge=BASIC_CHALLENGE)

    async def __call__(self, request: Request) -> HTTPBasicCredentials:  # type: ignore[override]
        authorization = request.headers.get("Authorization")
        if not authorization:
            raise self._fail("not authenticated: send HTTP Basic credentials (curl -u user:password)")
        try:
            credentials = parse_basic(authorization, "username:password")
        except BasicCredentialsError as exc:
            raise self._fail(str(exc)) from None
        if credentials is None:
            scheme = _split_scheme(authorization)[0]
            raise self._fail(f"Authorization scheme {scheme[:20]!r} is not accepted here: use Basic")
        return HTTPBasicCredentials(username=credentials.username, password=credentials.password)


basic_scheme = _BasicCredentials(
    scheme_name="HTTPBasic",
    realm=REALM,
    description="CAMERA_USERNAME and the password whose hash is CAMERA_PASSWORD_HASH",
)

router = APIRouter(prefix="/v1/auth", tags=["auth"], route_class=_FormErrorsAs401Route)

_UNAUTHORIZED_DOC: dict[int | str, dict[str, Any]] = {
    401: {"description": "Credentials missing or wrong, or password login not configured"},
    429: {"description": "Too many failed logins from this address (or in total); see Retry-After"},
    503: {"description": "Too many password checks in progress (Retry-After, s)"},
}


def too_many_logins(retry_after: int) -> HTTPException:
    """429 with ``Retry-After`` (RFC 9110 §10.2.3, RFC 6585 §4) for a used-up login budget."""
    return HTTPException(
        status_code=status.HTTP_429_TOO_MANY_REQUESTS,
        detail=f"too many failed logins from this address or in total; retry in {retry_after} s",
        headers={"Retry-After": str(retry_after)},
    )


async def _check_login(
    request: Request, cfg: AuthConfig, username: str, password: str, challenge: dict[str, str]
) -> None:
    """Raise a 401 with ``challenge`` unless ``username``/``password`` are right, or a 429 when the
    login budget of the client's address (or the global one) is used up (:class:`LoginLimiter`).

    The budget is checked first (no argon2 work for a refused attempt); the argon2 check then runs in
    the thread pool through the password-check gate (503 with Retry-After when it stays busy)."""

    def fail(detail: str) -> HTTPException:
        return unauthorized(detail, challenge=challenge["WWW-Authenticate"])

    if not cfg.password_login_enabled:
        raise fail(PASSWORD_LOGIN_DISABLED)
    if not username:
        raise fail("username missing")
    if not password:
        raise fail("password missing")
    try:
        with login_attempt(login_limiter(request), client_address(request)) as attempt:
            attempt.ok = ok = await password_gate(request).run(authenticate, cfg, username, password)
    except TooManyLogins as exc:
        raise too_many_logins(exc.retry_after) from None
    if not ok:
        raise fail(INVALID_CREDENTIALS)


def _no_store(response: Response) -> None:
    response.headers["Cache-Control"] = "no-store"
    response.headers["Pragma"] = "no-cache"


@router.post("/token", response_model=TokenResponse, responses=_UNAUTHORIZED_DOC)
async def token(
    request: Request,
    response: Response,
    form: Annotated[OAuth2PasswordRequestForm, Depends()],
) -> TokenResponse:
    """Exchange ``username`` and ``password`` form fields for a bearer JWT (RFC 6749 §4.3).

    Returns ``access_token``, ``token_type`` ("bearer") and ``expires_in`` (seconds). 401 with
    ``WWW-Authenticate: Bearer`` when a field is missing, the credentials are wrong or password
    login is not configured (``CAMERA_PASSWORD_HASH`` unset).
    """
    cfg = get_auth_config(request)
    challenge = {"WWW-Authenticate": bearer_challenge()}
    await _check_login(request, cfg, form.username, form.password, challenge)
    access_token, expires_in = issue_token(cfg, cfg.username)
    _no_store(response)
    return TokenResponse(access_token=access_token, expires_in=expires_in)


@router.get("/login", response_model=LoginResponse, responses=_UNAUTHORIZED_DOC)
async def login(
    request: Request,
    response: Response,
    credentials: Annotated[HTTPBasicCredentials, Depends(basic_scheme)],
) -> LoginResponse:
    """Exchange HTTP Basic credentials (RFC 7617) for a bearer JWT.

    Returns ``token`` and, with the same value, ``access_token``, plus ``token_type`` ("bearer")
    and ``expires_in`` (seconds). 401 with ``WWW-Authenticate: Basic realm="pi-camera-service"``
    when credentials are missing, malformed or wrong, or password login is not configured.
    """
    cfg = get_auth_config(request)
    await _check_login(
        request, cfg, credentials.username, credentials.password, basic_scheme.make_authenticate_headers()
    )
    access_token, expires_in = issue_token(cfg, cfg.username)
    _no_store(response)
    return LoginResponse(access_token=access_token, token=access_token, expires_in=expires_in)
