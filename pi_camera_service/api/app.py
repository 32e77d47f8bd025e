"""The FastAPI application: wires the camera, the RTSP publisher and the detection task into one lifespan.

Components live in one typed :class:`~pi_camera_service.api.state.AppServices` (``app.state``); the
lifespan starts them in order on one :class:`contextlib.AsyncExitStack`, each registered for stopping
right after it started, so shutdown, and a start-up that fails half-way, stop exactly what had started,
in reverse order. Routes are assembled in :mod:`pi_camera_service.api.main`; domain errors become HTTP
answers at one boundary (:func:`install_error_boundary`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from pcs_common.service_errors import Conflict, InvalidRequest, Unavailable
from pcs_common.service_errors import install_error_boundary as install_service_errors
from pi_camera_service import __version__
from pi_camera_service import priority as cpu_priority
from pcs_common.errors import document_errors, validation_message
from pi_camera_service.api.main import api_router
from pcs_common.offline_docs import install_offline_docs
from pi_camera_service.api.metrics_routes import install as install_metrics
from pi_camera_service.api.state import AppServices, ServiceState
from pi_camera_service.auth import load_auth_config
from pi_camera_service.central_link import CentralLink
from pi_camera_service.config import Settings
from pi_camera_service.controls.manager import (
    CameraControls, ControlConflict, InvalidControls, UnsupportedControls, default_store,
)
from pi_camera_service.discovery import ServiceAdvertiser
from pi_camera_service.events import Event, EventLog
from pi_camera_service.identity import hardware_id
from pi_camera_service.sources import create_camera
from pi_camera_service.sources.base import Camera, CameraUnavailable
from pi_camera_service.live import MjpegBroadcaster
from pi_camera_service.onvif import OnvifDevice
from pi_camera_service.onvif.service import router as onvif_router
from pi_camera_service.stills import StillsService
from pi_camera_service.stills.store import InvalidCursor, InvalidDay, InvalidId
from pi_camera_service.web.routes import install as install_web

if TYPE_CHECKING:
    from pi_camera_service.detection.service import DetectionService
    from pi_camera_service.ha_mqtt import CameraMqtt

#: exceptions of the camera's modules answered as a class of :mod:`pcs_common.service_errors`
#: (``detail``: the exception's message; ``errors``: its list of per-control problems, if any)
DOMAIN_ERRORS = {
    CameraUnavailable: Unavailable,  # 503, Retry-After: 1
    InvalidControls: InvalidRequest,  # 422
    UnsupportedControls: Conflict,  # 409
    ControlConflict: Conflict,  # 409
    InvalidId: InvalidRequest,  # 422
    InvalidCursor: InvalidRequest,
    InvalidDay: InvalidRequest,
}

log = logging.getLogger(__name__)


def _follow_pairing(advertiser: ServiceAdvertiser, loop: asyncio.AbstractEventLoop) -> Callable[[Event], None]:
    """An EventLog listener keeping the mDNS ``paired`` TXT record in step with ``pairing`` events."""

    def listener(event: Event) -> None:
        if event.type == "pairing":
            paired = event.data.get("state") in ("paired", "disabled")
            loop.call_soon_threadsafe(lambda: loop.create_task(advertiser.set_paired(paired)))

    return listener


def _default_detection(camera: Camera, settings: Settings) -> DetectionService:
    """The detection service ``settings`` describe: ``CAMERA_FACE_DETECTOR`` through the registry, in a
    low-priority worker process unless ``CAMERA_DETECTION_PROCESS=false``, sampling at
    ``CAMERA_DETECTION_FPS`` and backing off while the stream falls behind (``CAMERA_DETECTION_ADAPTIVE``)."""
    from functools import partial

    from pcs_common.faces.registry import create_detector
    from pi_camera_service.detection.service import DetectionService, Detector

    stats = getattr(camera, "stats", None)
    backpressure = None
    if settings.detection_adaptive and stats is not None:
        def backpressure() -> bool:
            return stats.falling_behind(camera.framerate)
    factory: Callable[[], Detector] = partial(create_detector, settings.face_detector)
    if settings.detection_process:
        from pi_camera_service.detection.worker import in_process

        factory = in_process(partial(create_detector, settings.face_detector, encodings="inline"))
    return DetectionService(
        camera, factory, settings.detection_fps, priority=settings.detection_priority, backpressure=backpressure
    )


async def _start_outbox(stack: AsyncExitStack, services: AppServices, settings: Settings, cam: Camera) -> None:
    """Open the outbox, register the face-event recorder and start the sender (docs/outbox.md), each
    registered on ``stack`` for stopping (the sender first, then the recorder, then the database).

    Sets ``services.outbox``, ``outbox_recorder`` and ``outbox_sender``; they stay None when disabled, when
    no central server is configured, or when the database cannot be opened (logged, not fatal).
    """
    from pi_camera_service.detection.tracks import FaceTracker
    from pi_camera_service.outbox import Outbox
    from pi_camera_service.outbox_sender import DetectionRecorder, OutboxSender, StillsFollower

    detection, stills, central_link = services.detection, services.stills, services.central_link
    if not settings.outbox_enabled or not settings.central_url or central_link is None:
        return  # nothing to deliver to: write nothing
    outbox = Outbox.from_settings(settings)
    try:
        await run_in_threadpool(outbox.open)
    except Exception as exc:  # noqa: BLE001 - the camera works without the outbox
        log.error("outbox disabled: cannot open %s: %s", outbox.db_path, exc)
        return
    stack.push_async_callback(run_in_threadpool, outbox.close)  # queued items stay on disk
    recorder = None
    if detection is not None:
        tracker = FaceTracker(settings.outbox_update_interval, settings.outbox_track_end)
        recorder = DetectionRecorder(outbox, cam, tracker, full_frame=settings.outbox_full_frame)
        recorder.start()
        stack.push_async_callback(run_in_threadpool, recorder.stop)
        detection.add_listener(recorder.on_detection)
    follower = StillsFollower(outbox, stills) if (settings.outbox_stills and stills is not None) else None
    sender = OutboxSender(
        outbox, settings.central_url, central_link.device_credentials,
        retry_max_delay=settings.central_retry_max_delay, before_round=follower.poll if follower else None,
    )
    await sender.start()
    stack.push_async_callback(sender.stop)
    services.outbox, services.outbox_recorder, services.outbox_sender = outbox, recorder, sender


async def _start_mqtt(
    stack: AsyncExitStack, services: AppServices, settings: Settings, cam: Camera, hw_id: str
) -> CameraMqtt | None:
    """Start the Home Assistant MQTT device (:mod:`pi_camera_service.ha_mqtt`) when ``CAMERA_MQTT_URL`` is
    set and register its stop on ``stack``; returns it, or None (unset, or TLS set-up failed, which is
    logged, not fatal)."""
    from pi_camera_service.ha_mqtt import from_settings

    detection = services.detection
    mqtt = from_settings(settings, cam, hw_id, detection=detection, stills=services.stills)
    if mqtt is None:
        return None
    try:
        await run_in_threadpool(mqtt.start)  # returns at once; connects in the background
    except Exception as exc:  # noqa: BLE001 - the camera works without MQTT
        log.error("MQTT disabled: %s", exc)
        return None
    stack.push_async_callback(run_in_threadpool, mqtt.stop)
    if detection is not None:
        detection.add_listener(mqtt.on_detection)
    return mqtt


async def _preauth(scope: dict[str, Any]) -> tuple[int, dict[str, Any], dict[str, str]] | None:
    """Check the credentials of a ``/v1`` request that has a body before a byte of it is read.

    The same :func:`~pi_camera_service.auth.require_auth` the route runs afterwards; ``/v1/auth/*``
    (where the body is the credential) is left to the route. Returns None to go on, or the 401/403.
    """
    from fastapi import HTTPException
    from fastapi.security.utils import get_authorization_scheme_param
    from starlette.requests import Request as StarletteRequest

    from pi_camera_service.auth import API_KEY_HEADER, require_auth

    path = scope.get("path", "")
    if not path.startswith("/v1/") or path.startswith("/v1/auth/"):
        return None
    request = StarletteRequest(scope)
    scheme, param = get_authorization_scheme_param(request.headers.get("Authorization"))
    try:
        await require_auth(request, request.headers.get(API_KEY_HEADER), param if scheme.lower() == "bearer" else None)
    except HTTPException as exc:
        return exc.status_code, {"detail": exc.detail}, dict(exc.headers or {})
    return None


def _install_limits(app: FastAPI, settings: Settings, services: AppServices) -> None:
    """Body limit (413) with authentication first, write deadline on live views and viewer caps
    (docs/security.md#resource-limits); the password-check gate is ``services.password_gate``."""
    from pcs_common.limits import BodyLimitMiddleware, LiveViewMiddleware, ViewerLimit, expose_server_send

    viewers = {
        "/v1/camera/mjpeg": ViewerLimit(settings.max_mjpeg_viewers, "MJPEG viewers", "CAMERA_MAX_MJPEG_VIEWERS"),
        "/v1/events/stream": ViewerLimit(settings.max_event_streams, "event-stream clients", "CAMERA_MAX_EVENT_STREAMS"),
    }
    services.viewer_limits = viewers
    limit = settings.max_body_kb * 1024
    app.add_middleware(LiveViewMiddleware, limits=viewers.get, timeout_s=lambda: settings.viewer_write_timeout)
    from pi_camera_service.onvif.soap import MAX_REQUEST_BYTES as ONVIF_MAX

    def limit_for(scope: dict[str, Any]) -> int:
        # ONVIF refuses a body over its own 64 KB with a SOAP fault, as SOAP clients expect; the middleware
        # still bounds what reaches it
        if str(scope.get("path", "")).startswith("/onvif/"):
            return max(limit, 4 * ONVIF_MAX)
        return limit

    app.add_middleware(BodyLimitMiddleware, limit_for=limit_for, preauth=_preauth)
    expose_server_send(app)


def create_app(
    settings: Settings,
    camera: Camera | None = None,
    detection_factory: Callable[[Camera, Settings], DetectionService] | None = None,
) -> FastAPI:
    """Build the service's FastAPI app.

    Args:
        settings: validated settings.
        camera: a camera to use instead of the one ``settings.source`` names (tests).
        detection_factory: ``(camera, settings) -> DetectionService`` replacement (tests).

    Raises:
        ConfigError: a secret setting is unusable (from :func:`~pi_camera_service.auth.load_auth_config`).
        SourceOpenError: ``settings.source`` names a missing file or an unavailable backend.
    """
    from pcs_common.limits import PasswordCheckGate

    auth = load_auth_config(settings)
    cpu_priority.configure(settings.detection_priority)
    cam = camera if camera is not None else create_camera(settings)
    services = AppServices(
        settings=settings, auth=auth,
        password_gate=PasswordCheckGate(settings.password_checks_max, settings.password_check_wait),
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            await _start(stack, app, services, settings, cam, detection_factory or _default_detection)
            yield
            # leaving the stack stops, in reverse order: MQTT, ONVIF (WS-Discovery Bye), mDNS (goodbye
            # packets first: browsers drop the camera at once), outbox, central link, MJPEG, stills,
            # detection, controls, camera

    app = FastAPI(
        title="Pi Camera Service",
        version=__version__,
        description="Raspberry Pi camera: H.264 over RTSP, face detection, snapshots. "
        "Every /v1 route needs `X-API-Key` or `Authorization: Bearer <JWT>` (see /v1/auth/token).",
        lifespan=lifespan,
        docs_url=None,  # served from the package by install_offline_docs (no CDN)
        redoc_url=None,
    )
    app.state = ServiceState(services)  # app.state.<field> is services.<field>
    install_offline_docs(app)
    _install_limits(app, settings, services)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"detail": validation_message(exc)}, status_code=422)

    install_service_errors(app, DOMAIN_ERRORS)
    app.include_router(api_router)
    app.include_router(onvif_router)
    install_metrics(app, settings.metrics_auth)
    install_web(app)
    document_errors(app)
    return app


async def _start(
    stack: AsyncExitStack,
    app: FastAPI,
    services: AppServices,
    settings: Settings,
    cam: Camera,
    detection_factory: Callable[[Camera, Settings], DetectionService],
) -> None:
    """Start every component in order, registering each on ``stack`` right after it started (its stop
    runs when the stack closes: at shutdown, or at once if a later component fails to start)."""
    await run_in_threadpool(cam.open)
    stack.push_async_callback(run_in_threadpool, cam.close)
    services.camera = cam
    events = services.events = EventLog()
    controls = CameraControls(
        cam,
        default_store(settings.state_dir),
        events,
        lens=settings.lens_model(),
        night_max_frame_duration=settings.night_max_frame_duration,
        detection_enabled=settings.detection_enabled,
    )
    await run_in_threadpool(controls.start)
    stack.push_async_callback(run_in_threadpool, controls.stop)
    services.controls = controls
    detection = None
    if settings.detection_enabled:
        detection = detection_factory(cam, settings)
        detection.add_listener(controls.on_detection)
        detection.start()
        stack.push_async_callback(run_in_threadpool, detection.stop)
    services.detection = detection
    stills = None
    if settings.stills_enabled:
        stills = StillsService.from_settings(settings, cam, detection=detection, controls=controls)
        await run_in_threadpool(stills.start)
        stack.push_async_callback(run_in_threadpool, stills.stop)
        if settings.stills_on_detection and detection is not None:
            detection.add_listener(stills.on_detection)
    services.stills = stills
    mjpeg = services.mjpeg = MjpegBroadcaster(cam, fps=settings.mjpeg_fps, width=settings.mjpeg_width)
    stack.push_async_callback(run_in_threadpool, mjpeg.close)
    if settings.stream_on_start:
        cam.start_streaming()  # stopped by cam.close
    log.info(
        "serving %s on http://%s:%d (API docs at /docs); publishing to %s",
        cam.source, settings.host, settings.port, cam.streaming_status().url,
    )
    central_link = services.central_link = CentralLink.for_service(settings, cam, detection, events, controls)
    await central_link.start()
    stack.push_async_callback(central_link.stop)
    await _start_outbox(stack, services, settings, cam)
    hw_id = services.hardware_id = await run_in_threadpool(hardware_id, settings.state_dir)
    advertiser = services.advertiser = ServiceAdvertiser(
        settings, settings.port, camera=cam, paired=central_link.device_credentials() is not None
    )
    await advertiser.start()  # background, best effort: never fails the start-up
    stack.push_async_callback(advertiser.stop)
    events.add_listener(_follow_pairing(advertiser, asyncio.get_running_loop()))
    onvif = OnvifDevice(app, settings, cam, controls, detection, hw_id)  # sets services.onvif
    await onvif.start()
    stack.push_async_callback(onvif.stop)
    services.mqtt = await _start_mqtt(stack, services, settings, cam, hw_id)
