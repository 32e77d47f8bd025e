"""Web page routes: ``/login``, ``/logout``, ``/`` and ``/v1/web/config``; static files under ``/static``.

The page is plain HTML (Jinja2) + one CSS + one vanilla JS file, no build step. Login checks
``CAMERA_USERNAME`` / ``CAMERA_PASSWORD_HASH`` with :func:`~pi_camera_service.auth.authenticate`; when
no password hash is configured, the form asks for the API key instead (and says how to set a password).
A successful login sets the HttpOnly, SameSite=Strict session cookie (Secure over https) holding a
JWT valid :data:`~pi_camera_service.auth.SESSION_TTL` s; the page then calls the ``/v1`` API with that
cookie and sends the session's CSRF token (in the page's ``<meta name="csrf-token">``) as
``X-CSRF-Token`` on every state-changing request (see :mod:`pi_camera_service.auth`).

Use :func:`install` to add all of it to an app.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from pi_camera_service import __version__
from pi_camera_service.auth import (
    CSRF_HEADER,
    HASH_PASSWORD_HINT,
    SESSION_COOKIE,
    TooManyLogins,
    _same,
    authenticate,
    client_address,
    csrf_token_for,
    csrf_valid,
    get_auth_config,
    issue_session,
    login_attempt,
    login_limiter,
    password_gate,
    require_auth,
    revoke_session,
    session_from_request,
)

HERE = Path(__file__).resolve().parent
TEMPLATES_DIR = HERE / "templates"
STATIC_DIR = HERE / "static"

templates = Jinja2Templates(directory=str(TEMPLATES_DIR))
"""Jinja2 templates of the page (``login.html``, ``index.html``)."""

router = APIRouter(tags=["web"])
"""The page's routes (``/``, ``/login``, ``/logout``, ``/v1/web/config``); :func:`install` adds them."""

INVALID_LOGIN = "Wrong username or password."
INVALID_KEY = "Wrong API key."


def _security_headers(response: Response, frame_src: str | None = None) -> Response:
    """No caching of pages holding a CSRF token; a strict CSP; no framing of the page itself."""
    frames = f" frame-src {frame_src};" if frame_src else ""
    response.headers["Cache-Control"] = "no-store"
    response.headers["Content-Security-Policy"] = (
        "default-src 'self'; img-src 'self' data: blob:; style-src 'self'; script-src 'self'; "
        f"connect-src 'self';{frames} frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    )
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


def _origin(url: str | None) -> str | None:
    """``scheme://host[:port]`` of ``url`` for the CSP ``frame-src``, or None."""
    if not url or "://" not in url:
        return None
    scheme, rest = url.split("://", 1)
    host = rest.split("/", 1)[0]
    if not host or any(c in host for c in " ;'\""):
        return None
    return f"{scheme}://{host}"


def _webrtc_url(request: Request) -> str | None:
    return request.app.state.settings.webrtc_url  # CAMERA_WEBRTC_URL


def _login_page(request: Request, error: str | None = None, status_code: int = 200, username: str = "") -> HTMLResponse:
    cfg = get_auth_config(request)
    response = templates.TemplateResponse(
        request,
        "login.html",
        {
            "error": error,
            "password_login": cfg.password_login_enabled,
            "api_key_login": not cfg.password_login_enabled and cfg.api_key is not None,
            "hash_hint": HASH_PASSWORD_HINT,
            "username": username or cfg.username,
            "version": __version__,
        },
        status_code=status_code,
    )
    return _security_headers(response)


@router.get("/login", response_class=HTMLResponse, include_in_schema=False)
def login_form(request: Request) -> Response:
    """The login page (or a redirect to ``/`` when the session cookie is already valid)."""
    if session_from_request(request) is not None:
        return RedirectResponse("/", status_code=303)
    return _login_page(request)


@router.post("/login", response_class=HTMLResponse, include_in_schema=False)
async def login_submit(
    request: Request,
    username: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    api_key: Annotated[str, Form()] = "",
) -> Response:
    """Check the form; on success set the session cookie and redirect to ``/`` (303).

    ``username`` + ``password`` when ``CAMERA_PASSWORD_HASH`` is set; otherwise ``api_key`` (the
    only credential such a camera has). Wrong credentials: the login page again with a message, 401.
    The argon2 check runs in the thread pool through the password-check gate (503 when busy).
    """
    cfg = get_auth_config(request)
    try:
        with login_attempt(login_limiter(request), client_address(request)) as attempt:
            if cfg.password_login_enabled:
                attempt.ok = bool(username and password
                                  and await password_gate(request).run(authenticate, cfg, username, password))
            elif cfg.api_key is not None:
                attempt.ok = bool(api_key and _same(api_key, cfg.api_key))
    except TooManyLogins as exc:
        page = _login_page(request, f"Too many failed logins; try again in {exc.retry_after} s.", 429, username)
        page.headers["Retry-After"] = str(exc.retry_after)
        return page
    ok = attempt.ok
    if not ok:
        if cfg.password_login_enabled:
            return _login_page(request, INVALID_LOGIN, 401, username)
        return _login_page(request, INVALID_KEY, 401)
    token, ttl, _csrf = issue_session(cfg)
    response = RedirectResponse("/", status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=ttl,
        path="/",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    response.headers["Cache-Control"] = "no-store"
    return response


def _clear_cookie(request: Request, response: Response) -> None:
    response.delete_cookie(
        SESSION_COOKIE, path="/", httponly=True, samesite="strict", secure=request.url.scheme == "https"
    )


@router.post("/logout", include_in_schema=False)
async def logout(request: Request) -> Response:
    """End the session: revoke its token, clear the cookie, redirect to ``/login`` (303).

    Needs the session's CSRF token as the ``csrf`` form field or the ``X-CSRF-Token`` header
    (403 otherwise), so another site cannot log the user out. Without a valid session it only
    clears the cookie.
    """
    claims = session_from_request(request)
    if claims is not None:
        sent = request.headers.get(CSRF_HEADER)
        if not sent:
            form = await request.form()
            value = form.get("csrf")
            sent = value if isinstance(value, str) else None
        if not csrf_valid(get_auth_config(request), claims, sent):
            return Response(
                '{"detail":"CSRF token missing or invalid: log out with the page\'s Log out button"}',
                status_code=403,
                media_type="application/json",
            )
        revoke_session(request.app, claims)
    response = RedirectResponse("/login", status_code=303)
    _clear_cookie(request, response)
    response.headers["Cache-Control"] = "no-store"
    return response


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
def index(request: Request) -> Response:
    """The camera page; a 303 redirect to ``/login`` without a valid session cookie."""
    claims = session_from_request(request)
    if claims is None:
        response = RedirectResponse("/login", status_code=303)
        if request.cookies.get(SESSION_COOKIE):
            _clear_cookie(request, response)
        return response
    cfg = get_auth_config(request)
    response = templates.TemplateResponse(
        request,
        "index.html",
        {
            "csrf": csrf_token_for(cfg, claims["jti"]),
            "username": claims["sub"],
            "expires": int(claims["exp"]),
            "version": __version__,
        },
    )
    return _security_headers(response, _origin(_webrtc_url(request)))


@router.get("/v1/web/config", tags=["web"], dependencies=[Depends(require_auth)])
def web_config(request: Request) -> dict[str, Any]:
    """What the page needs to know: the MJPEG, snapshot and event URLs, and the MediaMTX WebRTC page URL
    (``webrtc_url``, null when not configured)."""
    return {
        "mjpeg_url": "/v1/camera/mjpeg",
        "snapshot_url": "/v1/camera/snapshot",
        "events_url": "/v1/events/stream",
        "webrtc_url": _webrtc_url(request),
        "version": __version__,
    }


def install(app: FastAPI) -> None:
    """Add the page to ``app``: include :data:`router` and mount the static files at ``/static``."""
    app.include_router(router)
    app.mount("/static", StaticFiles(directory=str(STATIC_DIR)), name="static")
