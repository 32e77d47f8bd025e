"""The HTTP API's routers in one place: which routes exist under ``/v1`` and how each is authenticated.

* ``/health``: open (systemd watchdogs, load balancers, the central server's network scan).
* ``/v1/auth/*``: open; the request body is the credential (:mod:`pi_camera_service.api.auth_routes`,
  which declares its own ``/v1/auth`` prefix).
* ``/v1/camera/mjpeg``: the usual credentials or a paired central server's viewer ticket
  (:func:`pi_camera_service.api.live_routes.require_viewer`).
* every other ``/v1`` route: :func:`pi_camera_service.auth.require_auth`, declared once, on
  :data:`authenticated`. The body-limit middleware runs the same check before it reads a request body
  (``pi_camera_service.api.app._preauth``).

``/metrics`` (authentication per ``CAMERA_METRICS_AUTH``), ``/onvif/*`` (its own digest/WS-Security) and
the web pages are installed by the app factory.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends

from pi_camera_service.api import control_routes, live_routes, outbox_routes, pairing_routes, routes, stills_routes
from pi_camera_service.api.auth_routes import router as auth_router
from pi_camera_service.api.schemas import UNAUTHORIZED
from pi_camera_service.auth import require_auth

#: the routes behind :func:`~pi_camera_service.auth.require_auth` (prefixed by :data:`v1`)
authenticated = APIRouter(dependencies=[Depends(require_auth)])
authenticated.include_router(routes.router)
authenticated.include_router(control_routes.router)
authenticated.include_router(stills_routes.router)
authenticated.include_router(live_routes.router)
authenticated.include_router(pairing_routes.router)
authenticated.include_router(outbox_routes.router)

#: everything under ``/v1`` but ``/v1/auth/*``; every route documents the 401
v1 = APIRouter(prefix="/v1", responses=UNAUTHORIZED)
v1.include_router(authenticated)
v1.include_router(live_routes.viewer_router)

#: the whole HTTP API
api_router = APIRouter()
api_router.include_router(routes.health_router)
api_router.include_router(auth_router)
api_router.include_router(v1)
