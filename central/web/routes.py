"""Dashboard pages: ``/login`` (first-run setup and login), ``/`` (the fleet), ``/cameras/{id}/live``,
``/live`` (a grid of every paired camera's live view), ``/people`` (people, unknown faces, sightings).

The pages are HTML shells; the browser fetches its data from the ``/v1`` API with the dashboard's
session cookie (``POST /v1/auth/session`` sets it) and sends the session's CSRF token, read from
``GET /v1/auth/me``, as ``X-CSRF-Token`` on every state-changing request. The server only decides which
page to show: ``/``, ``/people`` and the live views redirect (303) to ``/login`` without a valid session; ``/login``
redirects to ``/`` with one, and shows the first-run form while no admin exists.

Every page carries a strict Content-Security-Policy (``default-src 'self'``, no inline script or
style) and may not be framed. The live views alone allow ``http:``/``https:`` images (the cameras' MJPEG
streams, opened with viewer tickets: ``POST /v1/cameras/{id}/live-ticket``) and, for one camera,
frames (its MediaMTX WebRTC page); both live on the camera, not here.

Use :func:`install` to add all of it to an app.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from fastapi import APIRouter, FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.types import Scope

from central import __version__, bootstrap
from central.api.deps import SCOPES, SESSION_COOKIE, authenticate, central
from central.fleet import camera_view
from central.models import Camera

HERE = Path(__file__).resolve().parent
TEMPLATES_DIR = HERE / "templates"
STATIC_DIR = HERE / "static"

templates = Jinja2Templates(directory=str(TEMPLATES_DIR))
"""Jinja2 templates of the dashboard (``login.html``, ``dashboard.html``, ``live.html``, ``grid.html``,
``people.html``),
autoescaped."""

router = APIRouter(tags=["web"], include_in_schema=False)
"""The dashboard's page routes; :func:`install` adds them with the static files."""

_CSP_COMMON = (
    "default-src 'self'; style-src 'self'; script-src 'self'; connect-src 'self'; object-src 'none'; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
PAGE_CSP = f"{_CSP_COMMON}; img-src 'self' data:; frame-src 'none'"
"""Content-Security-Policy of the login page and the dashboard: nothing from elsewhere."""

LIVE_CSP = f"{_CSP_COMMON}; img-src 'self' data: http: https:; frame-src http: https:"
"""Content-Security-Policy of the live view: also frames and images from the cameras (http/https)."""

GRID_CSP = f"{_CSP_COMMON}; img-src 'self' data: http: https:; frame-src 'none'"
"""Content-Security-Policy of the grid of live views: also images from the cameras (http/https)."""


def security_headers(response: Response, csp: str = PAGE_CSP) -> Response:
    """Set the page's security headers on ``response`` (and return it).

    ``csp`` becomes Content-Security-Policy; the page may not be framed (X-Frame-Options DENY), MIME
    types are not sniffed, no Referer is sent (so camera addresses and ids do not leak to the
    cameras' pages) and the page is not cached (it reflects the session).
    """
    response.headers["Content-Security-Policy"] = csp
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["Cache-Control"] = "no-store"
    return response


class DashboardStatic(StaticFiles):
    """The dashboard's CSS and JS, served with ``nosniff``, ``no-referrer`` and revalidation.

    The pages link them with ``?v=<version>``, so an upgrade is picked up at once.
    """

    async def get_response(self, path: str, scope: Scope) -> Response:
        """The file at ``path`` (404 when missing), with the headers above."""
        response = await super().get_response(path, scope)
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        response.headers.setdefault("Cache-Control", "no-cache")
        return response


def safe_url(url: Any, schemes: tuple[str, ...] = ("http", "https")) -> str | None:
    """``url`` when it is a string URL with one of ``schemes`` and a host, else None.

    Camera addresses come from the cameras' own reports; anything else (``javascript:``, control
    characters, no host, longer than 2048 characters) is not put in the page.
    """
    if not isinstance(url, str) or not url or len(url) > 2048:
        return None
    if any(ord(ch) <= 32 or ord(ch) == 127 for ch in url):
        return None
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        return None
    if parts.scheme.lower() not in schemes or not host:
        return None
    return url


def _session(request: Request) -> tuple[bool, str | None]:
    """``(bootstrap_open, username)``: whether the first admin is still to be created, and the admin
    of a valid session cookie (None without one). Reads the database (call from a thread)."""
    state = central(request)
    with state.sessions() as db:
        if bootstrap.is_open(db):
            return True, None
        if not request.cookies.get(SESSION_COOKIE):
            return False, None
        try:
            principal = authenticate(request, db)
        except HTTPException:
            return False, None
        if principal.via != "session":
            return False, None
        return False, principal.admin.username


def _to_login(request: Request) -> RedirectResponse:
    """303 to ``/login``, clearing a session cookie that is no longer valid."""
    response = RedirectResponse("/login", status_code=303)
    if request.cookies.get(SESSION_COOKIE):
        response.delete_cookie(SESSION_COOKIE, path="/")
    response.headers["Cache-Control"] = "no-store"
    return response


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request) -> Response:
    """The login page, with the first-run form instead while no admin exists; 303 to ``/`` when the
    session cookie is already valid."""
    bootstrap_open, username = _session(request)
    if username is not None:
        return RedirectResponse("/", status_code=303)
    response = templates.TemplateResponse(
        request, "login.html", {"bootstrap_open": bootstrap_open, "version": __version__}
    )
    return security_headers(response)


@router.get("/", response_class=HTMLResponse)
def dashboard(request: Request) -> Response:
    """The dashboard shell (cameras, discovery, pairing, admins, API tokens); 303 to ``/login`` without a
    valid session cookie (and while the first admin is still to be created)."""
    _, username = _session(request)
    if username is None:
        return _to_login(request)
    response = templates.TemplateResponse(
        request, "dashboard.html", {"username": username, "scopes": SCOPES, "version": __version__}
    )
    return security_headers(response)


@router.get("/people", response_class=HTMLResponse)
def people_page(request: Request) -> Response:
    """The people page: people (create, rename, merge, delete, enrol a photo), unknown faces (name a
    group in one step) and a person's sightings (timeline, last seen); 303 to ``/login`` without a valid
    session cookie. Face crops are same-origin images, fetched with the session cookie."""
    _, username = _session(request)
    if username is None:
        return _to_login(request)
    response = templates.TemplateResponse(
        request, "people.html", {"username": username, "version": __version__}
    )
    return security_headers(response)


@router.get("/sightings", response_class=HTMLResponse)
def sightings_page(request: Request) -> Response:
    """The sightings timeline across every camera: who was seen where on one day (a lane per camera),
    filterable by person and camera, with the day's sightings listed newest first and paged; 303 to
    ``/login`` without a valid session cookie."""
    _, username = _session(request)
    if username is None:
        return _to_login(request)
    response = templates.TemplateResponse(request, "sightings.html", {"username": username, "version": __version__})
    return security_headers(response)


@router.get("/cameras/{camera_id}/live", response_class=HTMLResponse)
def live_view(camera_id: str, request: Request) -> Response:
    """The live view of one paired camera: its MediaMTX WebRTC page in a frame (when it reported
    ``webrtc_url``), its MJPEG stream as an image opened with a viewer ticket (when it reported
    ``api_url`` and ``mjpeg_path``) and
    its RTSP URL for VLC. 303 to ``/login`` without a session; 404 page for an unknown camera."""
    _, username = _session(request)
    if username is None:
        return _to_login(request)
    state = central(request)
    with state.sessions() as db:
        camera = db.get(Camera, camera_id)
        view = camera_view(camera, state.settings.offline_after_s()) if camera is not None else None
    context: dict[str, Any] = {"username": username, "version": __version__, "camera": None}
    if view is not None:
        context["camera"] = {
            "id": view["id"],
            "name": view["name"],
            "state": view["state"],
            "webrtc_url": safe_url(view.get("webrtc_url")),
            "mjpeg_url": safe_url(view.get("mjpeg_url")),
            "rtsp_url": safe_url(view.get("rtsp_url"), ("rtsp", "rtsps")),
            "api_url": safe_url(view.get("api_url")),
        }
    response = templates.TemplateResponse(
        request, "live.html", context, status_code=200 if view is not None else 404
    )
    return security_headers(response, LIVE_CSP if view is not None else PAGE_CSP)


@router.get("/live", response_class=HTMLResponse)
def live_grid(request: Request) -> Response:
    """Every paired camera's MJPEG live view in a grid (the browser asks a viewer ticket per camera);
    303 to ``/login`` without a session."""
    _, username = _session(request)
    if username is None:
        return _to_login(request)
    response = templates.TemplateResponse(request, "grid.html", {"username": username, "version": __version__})
    return security_headers(response, GRID_CSP)


def install(app: FastAPI) -> None:
    """Add the dashboard to ``app``: the page routes and the static files at ``/static``."""
    app.include_router(router)
    app.mount("/static", DashboardStatic(directory=str(STATIC_DIR)), name="static")
