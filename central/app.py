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
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from central import __version__, bootstrap, pairing
from central.config import CentralSettings
from central.db import make_engine, session_factory, upgrade
from central.models import ServerState
from central.ratelimit import FailureLimiter
from central.security import random_token
from pi_camera_service.api.errors import validation_message

log = logging.getLogger(__name__)
SECRET_KEY_STATE = "jwt_secret_key"
PURGE_INTERVAL_S = 600


@dataclass
class CentralState:
    """What the request handlers share (``app.state.central``)."""

    settings: CentralSettings
    engine: Engine
    sessions: sessionmaker[Session]
    limiter: FailureLimiter
    waiters: pairing.PairingWaiters
    browser: Any
    faces: Any = None  # central.people.FaceRegistry: face indexes and media files
    mqtt: Any = None  # central.mqtt.SightingPublisher, or None when CENTRAL_MQTT_URL is unset
    secret_key: str = ""
    started_at: float = field(default_factory=time.time)
    revoked_sessions: dict[str, float] = field(default_factory=dict)
    viewer_keys: dict[str, str] = field(default_factory=dict)
    """Camera id -> the viewer key its last heartbeat sent (memory only; see central.api.camera_routes.live_ticket)."""

    def revoke_session(self, claims: dict[str, Any]) -> None:
        """Refuse the session token with these claims until it expires (kept in memory; expired entries
        are dropped here)."""
        now = time.time()
        self.revoked_sessions = {jti: exp for jti, exp in self.revoked_sessions.items() if exp > now}
        self.revoked_sessions[claims.get("jti", "")] = float(claims.get("exp", now))


def _limiter(settings: CentralSettings) -> FailureLimiter:
    return FailureLimiter({
        "login-user": f"{settings.login_failures_per_user}/15 minutes",
        "login-address": f"{settings.login_failures_per_address}/15 minutes",
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
        db.commit()
    return row.value


def _make_browser(settings: CentralSettings) -> Any:
    from central.discovery import CameraBrowser

    return CameraBrowser(interfaces=settings.mdns_interface_list())


def _make_faces(settings: CentralSettings) -> Any:
    from central.ingest import MediaStore
    from central.people import FaceRegistry

    return FaceRegistry(MediaStore(settings.resolved_media_dir()), settings.match_tolerance, settings.sighting_gap_s)


async def _purge_loop(state: CentralState) -> None:
    while True:
        await asyncio.sleep(PURGE_INTERVAL_S)
        try:
            with state.sessions() as db:
                await run_in_threadpool(pairing.purge, db)
        except Exception:  # noqa: BLE001 - a failed purge is retried next time
            log.exception("purging old pairing requests failed")


def create_app(settings: CentralSettings) -> FastAPI:
    """Build the central server app; the database is migrated (when ``migrate_on_start``) and the
    bootstrap password printed at start-up, in the lifespan.

    Raises:
        sqlalchemy.exc.OperationalError: at start-up, the database is unreachable.
    """
    url = settings.resolved_database_url()
    engine = make_engine(url)
    state = CentralState(settings=settings, engine=engine, sessions=session_factory(engine),
                         limiter=_limiter(settings), waiters=pairing.PairingWaiters(), browser=_make_browser(settings))
    state.faces = _make_faces(settings)
    from central.mqtt import from_settings as mqtt_publisher

    state.mqtt = mqtt_publisher(settings, state.sessions)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if settings.migrate_on_start:
            await run_in_threadpool(upgrade, url)
        with state.sessions() as db:
            state.secret_key = _secret_key(settings, db)
            password = bootstrap.prepare(db)
        if password:
            log.warning("no admin exists yet. One-time bootstrap password: %s — POST it to /v1/setup "
                        "(or open the dashboard) to create the first admin; a new one is printed at every "
                        "start until then.", password)
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
            engine.dispose()

    app = FastAPI(title="Pi Camera Service — central server", version=__version__, lifespan=lifespan)
    app.state.central = state

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"detail": validation_message(exc)}, status_code=422)

    @app.exception_handler(HTTPException)
    async def _http(_: Request, exc: HTTPException) -> JSONResponse:
        body = exc.detail if isinstance(exc.detail, dict) and "detail" in exc.detail else {"detail": exc.detail}
        return JSONResponse(body, status_code=exc.status_code, headers=exc.headers)

    @app.get("/health", tags=["health"])
    def health() -> dict[str, Any]:
        """Liveness without authentication: ``{status, version, database}``."""
        from sqlalchemy import text

        try:
            with engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            database = "ok"
        except Exception as exc:  # noqa: BLE001 - reported, not raised
            database = f"error: {type(exc).__name__}"
        return {"status": "healthy" if database == "ok" else "degraded", "version": __version__,
                "database": database, "database_dialect": engine.dialect.name}

    from central.api import admin_routes, auth_routes, camera_routes, device_routes, ingest_routes, people_routes

    for module in (auth_routes, admin_routes, camera_routes, device_routes, ingest_routes, people_routes):
        app.include_router(module.router)
    try:
        from central.web.routes import install as install_web
    except ImportError:  # the dashboard is optional in a stripped install
        install_web = None
    if install_web is not None:
        install_web(app)
    return app
