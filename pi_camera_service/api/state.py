"""The application state, typed: every component the app runs, in one :class:`AppServices`.

``create_app`` makes one :class:`AppServices` and installs it as ``app.state`` through
:class:`ServiceState`, so ``app.state.camera`` and ``app.state.services.camera`` are the same value
(for code and tests that read or set ``app.state.<name>``), while routes receive typed components from
:mod:`pi_camera_service.api.deps`. Components started by the lifespan are None until they have started
(and the optional ones stay None when disabled); names that are not fields (e.g. the login limiter the
auth module creates on first use) are kept as plain state attributes, as Starlette's ``State`` does.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any

from starlette.datastructures import State

if TYPE_CHECKING:  # the runtime modules are imported where the components are made (some load OpenCV)
    from pcs_common.limits import PasswordCheckGate, ViewerLimit
    from pcs_common.viewer_ticket import TicketVerifier
    from pi_camera_service.auth import AuthConfig
    from pi_camera_service.central_link import CentralLink
    from pi_camera_service.config import Settings
    from pi_camera_service.controls.manager import CameraControls
    from pi_camera_service.detection.service import DetectionService
    from pi_camera_service.discovery import ServiceAdvertiser
    from pi_camera_service.events import EventLog
    from pi_camera_service.ha_mqtt import CameraMqtt
    from pi_camera_service.live import MjpegBroadcaster
    from pi_camera_service.onvif.service import OnvifContext
    from pi_camera_service.outbox import Outbox
    from pi_camera_service.outbox_sender import DetectionRecorder, OutboxSender
    from pi_camera_service.sources.base import Camera
    from pi_camera_service.stills import StillsService


@dataclass(eq=False)
class AppServices:
    """What one camera service app runs; the lifespan fills in the components as they start.

    Always set (by ``create_app``): ``settings``, ``auth``, ``password_gate``, ``viewer_limits``. Set once
    started: ``camera`` (open, capture thread running), ``events``, ``controls``, ``mjpeg``, ``central_link``,
    ``hardware_id`` (32 hex characters), ``advertiser``. None when disabled: ``detection``
    (``CAMERA_DETECTION_ENABLED``), ``stills`` (``CAMERA_STILLS_ENABLED``), ``outbox``, ``outbox_recorder``,
    ``outbox_sender`` (``CAMERA_OUTBOX_ENABLED`` and ``CAMERA_CENTRAL_URL``), ``onvif``
    (``CAMERA_ONVIF_ENABLED``), ``mqtt`` (``CAMERA_MQTT_URL``). ``viewer_tickets`` is made on the first
    ``?ticket=`` request.
    """

    settings: Settings
    auth: AuthConfig
    password_gate: PasswordCheckGate
    viewer_limits: dict[str, ViewerLimit] = field(default_factory=dict)
    camera: Camera | None = None
    events: EventLog | None = None
    controls: CameraControls | None = None
    detection: DetectionService | None = None
    stills: StillsService | None = None
    mjpeg: MjpegBroadcaster | None = None
    central_link: CentralLink | None = None
    outbox: Outbox | None = None
    outbox_recorder: DetectionRecorder | None = None
    outbox_sender: OutboxSender | None = None
    hardware_id: str | None = None
    advertiser: ServiceAdvertiser | None = None
    onvif: OnvifContext | None = None
    mqtt: CameraMqtt | None = None
    viewer_tickets: TicketVerifier | None = None


#: the attribute names :class:`ServiceState` forwards to the :class:`AppServices`
SERVICE_FIELDS = frozenset(f.name for f in fields(AppServices))


class ServiceState(State):
    """``app.state`` backed by an :class:`AppServices`: reading or setting ``state.<field>`` reads or sets
    the field; ``state.services`` is the :class:`AppServices` itself; other names behave as in Starlette's
    ``State``."""

    def __init__(self, services: AppServices) -> None:
        super().__init__({"services": services})

    @property
    def services(self) -> AppServices:
        """The typed state."""
        return self._state["services"]  # type: ignore[no-any-return]

    def __getattr__(self, key: Any) -> Any:
        if key in SERVICE_FIELDS:
            return getattr(self._state["services"], key)
        return super().__getattr__(key)

    def __setattr__(self, key: Any, value: Any) -> None:
        if key in SERVICE_FIELDS:
            setattr(self._state["services"], key, value)
        else:
            super().__setattr__(key, value)

    def __delattr__(self, key: Any) -> None:
        if key in SERVICE_FIELDS:
            setattr(self._state["services"], key, None)
        else:
            super().__delattr__(key)
