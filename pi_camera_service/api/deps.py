"""Typed FastAPI dependencies: what a route needs, declared as a parameter (``camera: CameraDep``).

Each alias reads a component of the typed :class:`~pi_camera_service.api.state.AppServices`; routes never
reach into ``request.app.state`` themselves. A component that is switched off raises a
:class:`~pcs_common.service_errors.Conflict` saying which setting turns it on; one that has not started
yet raises :class:`~pcs_common.service_errors.Unavailable` (503, ``Retry-After: 1``). The app's error
boundary (:func:`pcs_common.service_errors.install_error_boundary`) turns both into HTTP answers.
"""

from __future__ import annotations

from typing import Annotated, TypeVar

from fastapi import Depends, Request

from pcs_common.service_errors import Conflict, ServiceError, Unavailable
from pi_camera_service.api.state import AppServices
from pi_camera_service.central_link import CentralLink
from pi_camera_service.config import Settings
from pi_camera_service.controls.manager import CameraControls
from pi_camera_service.detection.service import DetectionService
from pi_camera_service.events import EventLog
from pi_camera_service.live import MjpegBroadcaster
from pi_camera_service.outbox import Outbox
from pi_camera_service.sources.base import Camera
from pi_camera_service.stills.service import StillsService

STARTING = "the service is starting; retry in a second"
DETECTION_DISABLED = "face detection is disabled (CAMERA_DETECTION_ENABLED=false)"
STILLS_DISABLED = "stills are disabled (CAMERA_STILLS_ENABLED=false); enable them and restart"
OUTBOX_DISABLED = "the outbox is off: it needs CAMERA_CENTRAL_URL and CAMERA_OUTBOX_ENABLED=true"


def get_services(request: Request) -> AppServices:
    """The app's :class:`AppServices` (``app.state.services``)."""
    services: AppServices = request.app.state.services
    return services


ServicesDep = Annotated[AppServices, Depends(get_services)]
T = TypeVar("T")


def _present(component: T | None, error: ServiceError) -> T:
    """``component``, or raise ``error`` when it is None (switched off or not started yet)."""
    if component is None:
        raise error
    return component


def get_settings(services: ServicesDep) -> Settings:
    """The validated settings the app was made with."""
    return services.settings


def get_camera(services: ServicesDep) -> Camera:
    """The open camera.

    Raises:
        Unavailable: the lifespan has not opened it yet.
    """
    return _present(services.camera, Unavailable(STARTING))


def get_detection(services: ServicesDep) -> DetectionService | None:
    """The background detection service, or None when ``CAMERA_DETECTION_ENABLED=false``."""
    return services.detection


def require_detection(services: ServicesDep) -> DetectionService:
    """The detection service.

    Raises:
        Conflict: detection is disabled.
    """
    return _present(services.detection, Conflict(DETECTION_DISABLED))


def get_controls(services: ServicesDep) -> CameraControls:
    """The camera controls (``/v1/camera/controls``).

    Raises:
        Unavailable: not started yet.
    """
    return _present(services.controls, Unavailable(STARTING))


def get_events(services: ServicesDep) -> EventLog:
    """The service's event log (``/v1/events``).

    Raises:
        Unavailable: not started yet.
    """
    return _present(services.events, Unavailable(STARTING))


def get_stills(services: ServicesDep) -> StillsService:
    """The stills history.

    Raises:
        Conflict: stills are disabled (``CAMERA_STILLS_ENABLED=false``).
    """
    return _present(services.stills, Conflict(STILLS_DISABLED))


def get_outbox(services: ServicesDep) -> Outbox:
    """The outbox of items waiting for the central server.

    Raises:
        Conflict: the outbox is off (no ``CAMERA_CENTRAL_URL``, ``CAMERA_OUTBOX_ENABLED=false``, or it could
            not be opened).
    """
    return _present(services.outbox, Conflict(OUTBOX_DISABLED))


def get_mjpeg(services: ServicesDep) -> MjpegBroadcaster:
    """The MJPEG broadcaster.

    Raises:
        Unavailable: not started yet.
    """
    return _present(services.mjpeg, Unavailable(STARTING))


def get_central_link(services: ServicesDep) -> CentralLink:
    """The link to the central server (state ``unconfigured`` without ``CAMERA_CENTRAL_URL``).

    Raises:
        Unavailable: the lifespan has not created it yet.
    """
    return _present(services.central_link, Unavailable(STARTING))


SettingsDep = Annotated[Settings, Depends(get_settings)]
CameraDep = Annotated[Camera, Depends(get_camera)]
DetectionDep = Annotated[DetectionService | None, Depends(get_detection)]
RequiredDetectionDep = Annotated[DetectionService, Depends(require_detection)]
ControlsDep = Annotated[CameraControls, Depends(get_controls)]
EventLogDep = Annotated[EventLog, Depends(get_events)]
StillsDep = Annotated[StillsService, Depends(get_stills)]
OutboxDep = Annotated[Outbox, Depends(get_outbox)]
MjpegDep = Annotated[MjpegBroadcaster, Depends(get_mjpeg)]
CentralLinkDep = Annotated[CentralLink, Depends(get_central_link)]
