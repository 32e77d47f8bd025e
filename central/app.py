"""The central server's FastAPI application: database, bootstrap, discovery, pairing and the fleet."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, AsyncIterator

from fastapi import FastAPI, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy import Engine, delete
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from central import __version__, bootstrap, pairing
from central.config import CentralSettings
from central.db import make_engine, session_factory, upgrade
from central.models import RevokedSession, ServerState, utcnow
from central.ratelimit import AttemptLimiter, InFlight
from central.security import DatabaseRevocations, random_token
from pcs_common.errors import document_errors, validation_message
from pcs_common.offline_docs import install_offline_docs
from pcs_common.service_errors import install_error_boundary
from pcs_common.fileio import make_private_dir
from pcs_common.limits import json_safe

log = logging.getLogger(__name__)
SECRET_KEY_STATE = "jwt_secret_key"
PURGE_INTERVAL_S = 600


@dataclass
class CentralState:
    """What the request handlers share (``app.state.central``)."""

    settings: CentralSettings
    engine: Engine
    sessions: sessionmaker[Session]
    limiter: AttemptLimiter
    waiters: pairing.PairingWaiters
    browser: Any
    faces: Any = None  # central.people.FaceRegistry: face indexes and media files
    mqtt: Any = None  # central.mqtt.SightingPublisher, or None when CENTRAL_MQTT_URL is unset
    secret_key: str = ""
    started_at: float = field(default_factory=time.time)
    password_gate: Any = None  # pcs_common.limits.PasswordCheckGate: argon2 checks in flight
    viewer_seal: Any = None  # central.viewer_keys.ViewerKeySeal: the cameras' viewer keys, stored sealed
    listener: Any = None  # central.notify.Listener on PostgreSQL (other processes' pairings and changes)
    pairing_in_flight: InFlight = field(default_factory=InFlight)  # admins' pairing checks in flight here

    def revoke_session(self, claims: Any) -> None:
        """Refuse the session token with these claims until it expires, on every path
        (:class:`central.security.DatabaseRevocations`: the ``revoked_sessions`` table)."""
        DatabaseRevocations(self.sessions).add(str(claims.get("jti", "")), float(claims.get("exp", time.time())))

    def session_revoked(self, db: Session, jti: str) -> bool:
        """True when the session with this ``jti`` was logged out (see :meth:`revoke_session`)."""
        return jti in DatabaseRevocations(self.sessions, db)


def purge_revoked_sessions(db: Session) -> int:
    """Delete logged-out sessions whose token has expired anyway; returns rows deleted. Commits."""
    result = db.execute(delete(RevokedSession).where(RevokedSession.expires_at < utcnow()))
    db.commit()
    return result.rowcount or 0


def _limiter(settings: CentralSettings, sessions: sessionmaker[Session]) -> AttemptLimiter:
    """The attempt budgets (docs/security.md#rate-limits), counted in the database."""
    return AttemptLimiter(sessions, {
        "login-pair": f"{settings.login_failures_per_user}/15 minutes",
        "login-address": f"{settings.login_failures_per_address}/15 minutes",
        "login-user": f"{settings.login_failures_per_user_global}/15 minutes",
        "login-known": "1/30 days",
        "setup-address": "10/15 minutes",
        "pair-address": f"{settings.pairing_failures_per_address}/15 minutes",
        "pair-admin": f"{settings.pairing_failures_per_address}/15 minutes",
        "pair-global": f"{settings.pairing_failures_global}/hour",
        "pairing-requests": f"{settings.pairing_requests_per_address}/hour",
    })


def _secret_key(settings: CentralSettings, db: Session) -> str:
    """``CENTRAL_SECRET_KEY`` or a random key generated once and kept in the database (so every
    instance of the server on one database signs alike and restarts keep logins valid)."""
    if settings.secret_key:
        return settings.secret_key
    row = db.get(ServerState, SECRET_KEY_STATE)
    if row is None:
        row = ServerState(key=SECRET_KEY_STATE, value=random_token(48))
        db.add(row)
        try:
            db.commit()
        except IntegrityError:  # another server process starting at the same time stored its key first
            db.rollback()
            row = db.get(ServerState, SECRET_KEY_STATE)
            assert row is not None
    return row.value


def _start_listener(state: CentralState) -> Any:
    """The ``LISTEN`` connection of this process (PostgreSQL only): other processes' pairings wake the
    long polls waiting here, their face changes refresh this process's index (:mod:`central.notify`)."""
    from central import changes
    from central.notify import CHANGES_CHANNEL, PAIRING_CHANNEL, Listener

    refreshing: set[asyncio.Task[None]] = set()

    def refresh_faces() -> None:
        def run() -> None:
            try:
                with state.sessions() as db, state.faces.lock:
                    state.faces.ensure_loaded(db)
            except Exception:  # noqa: BLE001 - the next request that matches faces reloads anyway
                log.exception("refreshing the face index after another process's change failed")

        if state.faces is None or state.faces.loaded_version is None or refreshing:
            return  # never loaded here (loads at its first use), or a refresh is already running
        task = asyncio.ensure_future(run_in_threadpool(run))
        refreshing.add(task)
        task.add_done_callback(refreshing.discard)

    def changed(payload: str) -> None:
        name, _, version = payload.partition(" ")
        if name == changes.FACES and state.faces is not None and str(state.faces.loaded_version) != version:
            refresh_faces()

    def connected() -> None:  # notifications sent while disconnected are lost: re-check what they said
        state.waiters.wake_all()
        refresh_faces()

    return Listener(state.settings.resolved_database_url(), {PAIRING_CHANNEL: state.waiters.wake,
                                                             CHANGES_CHANNEL: changed}, on_connect=connected)


def _make_browser(settings: CentralSettings) -> Any:
    from central.discovery import CameraBrowser

    return CameraBrowser(interfaces=settings.mdns_interface_list())


def _make_faces(settings: CentralSettings) -> Any:
    from central.ingest import MediaStore
    from central.people import FaceRegistry

    return FaceRegistry(MediaStore(settings.resolved_media_dir()), settings.match_tolerance, settings.sighting_gap_s,
                        ann_threshold=settings.match_ann_threshold,
                        representatives=settings.unknown_group_representatives,
                        unknown_retention_days=settings.unknown_face_retention_days)


async def _purge_loop(state: CentralState) -> None:
    while True:
        await asyncio.sleep(PURGE_INTERVAL_S)
        try:
            with state.sessions() as db:
                await run_in_threadpool(pairing.purge, db)
                await run_in_threadpool(state.limiter.purge, db)
                await run_in_threadpool(purge_revoked_sessions, db)
                await run_in_threadpool(state.faces.prune_unknown, db)
        except Exception:  # noqa: BLE001 - a failed purge is retried next time
            log.exception("purging old pairing requests failed")


UPLOAD_OVERHEAD = 2**20
"""Bytes allowed on top of a file's own cap in a multipart upload (boundaries, headers, other fields)."""


def body_limit(settings: CentralSettings, method: str, path: str) -> int:
    """The largest request body accepted for ``method path``, bytes (413 beyond; docs/security.md):
    ``CENTRAL_INGEST_MAX_REQUEST_MB`` for ``POST /v1/ingest/events``, a photo's cap plus
    :data:`UPLOAD_OVERHEAD` for ``POST /v1/ingest/photos`` and ``POST /v1/people/{id}/faces``,
    ``CENTRAL_MAX_BODY_KB`` for everything else (JSON and form routes)."""
    from central.ingest import MAX_PHOTO_BYTES

    if method == "POST" and path == "/v1/ingest/events":
        return settings.ingest_max_request_mb * 2**20
    if method == "POST" and (path == "/v1/ingest/photos" or _is_enrol_path(path)):
        return MAX_PHOTO_BYTES + UPLOAD_OVERHEAD
    return settings.max_body_kb * 1024


def _is_enrol_path(path: str) -> bool:
    parts = path.split("/")
    return len(parts) == 5 and parts[1:3] == ["v1", "people"] and parts[4] == "faces"


def _install_limits(app: FastAPI, state: CentralState) -> None:
    """Password-check gate and body limits; the upload routes authenticate before their body is read."""
    from central.api.deps import authenticate, authenticate_device
    from pcs_common.limits import BodyLimitMiddleware, PasswordCheckGate

    settings = state.settings
    state.password_gate = PasswordCheckGate(settings.password_checks_max, settings.password_check_wait)

    async def preauth(scope: dict[str, Any]) -> tuple[int, dict[str, Any], dict[str, str]] | None:
        from starlette.requests import Request as StarletteRequest

        path = scope.get("path", "")
        if scope.get("method") != "POST" or not (path.startswith("/v1/ingest/") or _is_enrol_path(path)):
            return None
        request = StarletteRequest(scope)

        def check() -> None:
            with state.sessions() as db:
                if path.startswith("/v1/ingest/"):
                    authenticate_device(request, db)
                elif "cameras" not in authenticate(request, db).scopes:  # the scope enrol_photo requires
                    raise HTTPException(403, "this token lacks the 'cameras' scope needed to enrol photos")

        try:
            await run_in_threadpool(check)
        except HTTPException as exc:
            body = exc.detail if isinstance(exc.detail, dict) and "detail" in exc.detail else {"detail": exc.detail}
            return exc.status_code, body, dict(exc.headers or {})
        return None

    app.add_middleware(BodyLimitMiddleware, preauth=preauth,
                       limit_for=lambda scope: body_limit(settings, scope.get("method", ""), scope.get("path", "")))


def worker_app() -> FastAPI:
    """The app of one uvicorn worker of ``central-server --workers N``, from the environment: the parent
    process already migrated the database and printed the bootstrap password, so the workers do not.

    Raises:
        central.config.ConfigError: invalid settings (the parent checked them already).
    """
    from central.config import configure_logging, load_settings

    settings = load_settings()
    configure_logging(settings.log_level)
    return create_app(settings, prepare=False)


def prepare_database(settings: CentralSettings) -> None:
    """Start-up work done once per start, not per worker: migrate (when ``migrate_on_start``), make
    sure the signing key exists, and print a new bootstrap password while no admin exists.

    Raises:
        sqlalchemy.exc.OperationalError: the database is unreachable.
    """
    url = settings.resolved_database_url()
    if settings.migrate_on_start:
        upgrade(url)
    engine = make_engine(url)
    try:
        with session_factory(engine)() as db:
            _secret_key(settings, db)
            password = bootstrap.prepare(db)
    finally:
        engine.dispose()
    if password:
        _log_bootstrap_password(password)


def _log_bootstrap_password(password: str) -> None:
    log.warning("no admin exists yet. One-time bootstrap password: %s — POST it to /v1/setup "
                "(or open the dashboard) to create the first admin; a new one is printed at every "
                "start until then.", password)


def create_app(settings: CentralSettings, prepare: bool = True) -> FastAPI:
    """Build the central server app; the database is migrated (when ``migrate_on_start``) and the
    bootstrap password printed at start-up, in the lifespan (unless ``prepare`` is False: a worker of
    ``--workers N``, whose parent did it, see :func:`prepare_database`). On PostgreSQL the lifespan
    also starts this process's notification listener (:mod:`central.notify`).

    Raises:
        sqlalchemy.exc.OperationalError: at start-up, the database is unreachable.
    """
    url = settings.resolved_database_url()
    if settings.database_url is None:
        make_private_dir(settings.data_dir)  # the default SQLite file (signing key, faces) lives there
    make_private_dir(settings.resolved_media_dir())
    engine = make_engine(url)
    sessions = session_factory(engine)
    state = CentralState(settings=settings, engine=engine, sessions=sessions,
                         limiter=_limiter(settings, sessions), waiters=pairing.PairingWaiters(), browser=_make_browser(settings))
    state.faces = _make_faces(settings)
    from central.mqtt import from_settings as mqtt_publisher

    state.mqtt = mqtt_publisher(settings, state.sessions)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        from central.viewer_keys import ViewerKeySeal

        if prepare and settings.migrate_on_start:
            await run_in_threadpool(upgrade, url)
        with state.sessions() as db:
            state.secret_key = _secret_key(settings, db)
            password = bootstrap.prepare(db) if prepare else None
            await run_in_threadpool(state.faces.prune_unknown, db)  # unknown faces past their retention
        state.viewer_seal = ViewerKeySeal(state.secret_key)
        if password:
            _log_bootstrap_password(password)
        if engine.dialect.name == "postgresql":
            state.listener = _start_listener(state)
            await state.listener.start()
        if settings.mdns_enabled:
            await state.browser.start()
        purger = asyncio.create_task(_purge_loop(state))
        if state.mqtt is not None:
            await run_in_threadpool(state.mqtt.start)  # returns at once; connects in the background
        app.state.central = state
        try:
            yield
        finally:
            purger.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await purger
            if state.mqtt is not None:
                await run_in_threadpool(state.mqtt.stop)
            if settings.mdns_enabled:
                await state.browser.stop()
            if state.listener is not None:
                await state.listener.stop()
            engine.dispose()

    app = FastAPI(title="Pi Camera Service — central server", version=__version__, lifespan=lifespan,
                  docs_url=None, redoc_url=None)  # served from the package, no CDN
    install_offline_docs(app)
    app.state.central = state
    _install_limits(app, state)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"detail": validation_message(exc)}, status_code=422)

    @app.exception_handler(HTTPException)
    async def _http(_: Request, exc: HTTPException) -> JSONResponse:
        body = exc.detail if isinstance(exc.detail, dict) and "detail" in exc.detail else {"detail": exc.detail}
        return JSONResponse(json_safe(body, cut=False), status_code=exc.status_code, headers=exc.headers)

    install_error_boundary(app)  # pcs_common.service_errors -> HTTP (409 Conflict, 429 TooManyRequests, ...)

    from central.people import PeopleError  # loads the face encoder: only when an app is made

    @app.exception_handler(PeopleError)
    async def _people(_: Request, exc: PeopleError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=exc.status)

    @app.exception_handler(pairing.PairingError)
    async def _pairing(_: Request, exc: pairing.PairingError) -> JSONResponse:
        return JSONResponse({"detail": str(exc), "error": exc.error}, status_code=exc.status)

    @app.get("/health", tags=["health"])
    def health() -> dict[str, Any]:
        """Liveness without authentication: ``{status, version, database, database_dialect,
        notifications}`` (``notifications``: ``listening`` / ``reconnecting`` for the PostgreSQL
        listener, ``local`` on SQLite)."""
        from sqlalchemy import text

        try:
            with engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            database = "ok"
        except Exception as exc:  # noqa: BLE001 - reported, not raised
            database = f"error: {type(exc).__name__}"
        return {"status": "healthy" if database == "ok" else "degraded", "version": __version__,
                "database": database, "database_dialect": engine.dialect.name,
                "notifications": state.listener.state if state.listener is not None else "local"}

    from central.api import admin_routes, auth_routes, camera_routes, device_routes, ingest_routes, people_routes

    for module in (auth_routes, admin_routes, camera_routes, device_routes, ingest_routes, people_routes):
        app.include_router(module.router)
    try:
        from central.web.routes import install as install_web
    except ImportError:  # the dashboard is optional in a stripped install
        install_web = None
    if install_web is not None:
        install_web(app)
    document_errors(app)
    return app
