"""The ONVIF device, media, imaging and event services: one table of operations, one router.

The operations are in one module per ONVIF service (:mod:`.device_service`, :mod:`.media_service`,
:mod:`.imaging_service`, :mod:`.events_service`); what they share (paths, tokens, :class:`Call`) is in
:mod:`.calls`. This module holds the context they read, the table, the dispatch and the routes.

``POST /onvif/device_service`` (the fixed device entry point, ONVIF Core §5.1.1),
``/onvif/media_service``, ``/onvif/imaging_service``, ``/onvif/events_service`` and
``/onvif/subscription/<id>`` take SOAP 1.2 requests; the operation is picked from the namespace and
local name of the Body's element in :data:`OPERATIONS`, whatever the path, so a client that sends a
device call to the media address is still answered. ``GET /onvif/snapshot`` is the snapshot URI.

Operations marked PRE_AUTH (ONVIF Core §5.9.4.3 access classes: clock, service and capability
discovery) answer without credentials; every other one needs a WS-Security UsernameToken
(:mod:`pi_camera_service.onvif.security`). Anything wrong answers a SOAP fault
(:mod:`pi_camera_service.onvif.soap`), never an unhandled error.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from pi_camera_service.onvif import events as ev
from pi_camera_service.auth.login import ONVIF_FAILURES_PER_ADDRESS
from pi_camera_service.onvif.httpauth import DigestAuth
from pi_camera_service.onvif.imaging import ImagingMapper
from pi_camera_service.onvif.security import OnvifCredentials, UsernameTokenVerifier
from pi_camera_service.onvif.soap import (
    NS,
    SOAP_CONTENT_TYPE,
    Fault,
    MAX_REQUEST_BYTES,
    action_not_supported,
    envelope,
    fault_envelope,
    find,
    parse_request,
    sender_fault,
)
from pi_camera_service.onvif.calls import (
    Call,
    DEVICE_PATH,
    EVENTS_PATH,
    Handler,
    IMAGING_PATH,
    MANUFACTURER,
    MEDIA_PATH,
    PROFILE_TOKEN,
    SNAPSHOT_PATH,
    SUBSCRIPTION_PATH,
    VEC_TOKEN,
    VIDEO_SOURCE_TOKEN,
    VSC_TOKEN,
    base_url,
    stream_uri,
)
from pi_camera_service.onvif.device_service import (
    _service_capabilities_op,
    get_capabilities,
    get_device_information,
    get_hostname,
    get_network_interfaces,
    get_network_protocols,
    get_scopes,
    get_services,
    get_system_date_and_time,
    posix_tz,
)
from pi_camera_service.onvif.media_service import (
    get_profile,
    get_profiles,
    get_snapshot_uri,
    get_stream_uri,
    get_vec,
    get_vec_options,
    get_vecs,
    get_video_sources,
    get_vsc,
    get_vsc_options,
    get_vscs,
)
from pi_camera_service.onvif.imaging_service import (
    get_imaging_settings,
    get_move_options,
    get_options,
    get_status,
    move,
    set_imaging_settings,
    stop,
)
from pi_camera_service.onvif.events_service import (
    create_pull_point,
    get_event_properties,
    pull_messages,
    renew,
    set_synchronization_point,
    unsubscribe,
)

#: names other modules import from here (the operations moved to one module per ONVIF service)
__all__ = [
    "AUTH_FAILURES_PER_ADDRESS", "DEVICE_PATH", "EVENTS_PATH", "IMAGING_PATH", "MANUFACTURER", "MEDIA_PATH",
    "OPERATIONS", "PROFILE_TOKEN", "SNAPSHOT_PATH", "SUBSCRIPTION_PATH", "VEC_TOKEN", "VIDEO_SOURCE_TOKEN",
    "VSC_TOKEN", "Call", "Handler", "OnvifContext", "base_url", "build_router", "dispatch", "posix_tz",
    "router", "stream_uri",
]

log = logging.getLogger(__name__)

#: failed ONVIF logins (WS-Security or snapshot Digest/Basic) allowed per client address (``limits`` rate
#: string), counted by the camera's one LoginLimiter (pi_camera_service.auth.login)
AUTH_FAILURES_PER_ADDRESS = ONVIF_FAILURES_PER_ADDRESS


@dataclass
class OnvifContext:
    """Everything the operations read: settings, the camera, its controls, the credentials, the events."""

    settings: Any
    camera: Any
    controls: Any
    credentials: OnvifCredentials
    hardware_id: str
    name: str
    events: ev.FaceEvents
    login_limiter: Any = None  # pi_camera_service.auth.LoginLimiter of the app; made on first use when None
    verifier: UsernameTokenVerifier = field(init=False)
    digest: DigestAuth = field(init=False)
    imaging: ImagingMapper = field(init=False)

    def __post_init__(self) -> None:
        self.verifier = UsernameTokenVerifier(self.credentials)
        self.digest = DigestAuth(self.credentials)
        self.imaging = ImagingMapper(self.controls)

    def authenticate(self, address: str, check: Callable[[], Any], presented: bool) -> Any:
        """Run ``check()`` (raising a 401 :class:`Fault` on bad credentials) as one login attempt at the
        ONVIF door of the camera's login budget (:func:`pi_camera_service.auth.login_attempt`,
        :data:`AUTH_FAILURES_PER_ADDRESS`); atomic, so parallel guesses cannot overrun it.

        Raises:
            Fault: HTTP 429 while ``address`` is over budget (even with the right credentials), else
                what ``check`` raises; a failure counts only when credentials were ``presented``.
        """
        from pi_camera_service.auth import ONVIF_DOOR, LoginLimiter, TooManyLogins, login_attempt

        if self.login_limiter is None:
            self.login_limiter = LoginLimiter(getattr(self.settings, "login_failures_per_address", 10),
                                              getattr(self.settings, "login_failures_global", 30))
        try:
            with login_attempt(self.login_limiter, address, ONVIF_DOOR) as attempt:
                attempt.counted = presented
                result = check()
                attempt.ok = True
                return result
        except TooManyLogins as exc:
            raise Fault("Sender", ("ter:NotAuthorized",), f"too many failed ONVIF logins from {address}; "
                        f"retry in {exc.retry_after} s", 429, retry_after=exc.retry_after) from None

    @property
    def model(self) -> str:
        """Sensor model (``imx708_wide``...) or ``software`` for non-Pi sources."""
        try:
            return self.camera.capabilities().model or "software"
        except Exception:  # noqa: BLE001 - decoration only
            return "software"

    def scopes(self) -> list[str]:
        """The WS-Discovery / GetScopes scopes (ONVIF Core §7.3.2.2)."""
        scopes = [
            "onvif://www.onvif.org/Profile/Streaming",
            "onvif://www.onvif.org/type/video_encoder",
            f"onvif://www.onvif.org/name/{quote(self.name, safe='')}",
            f"onvif://www.onvif.org/hardware/{quote(self.model, safe='')}",
        ]
        if self.settings.onvif_location:
            scopes.append(f"onvif://www.onvif.org/location/{quote(self.settings.onvif_location, safe='')}")
        return scopes


#: (namespace prefix, operation) -> (handler, needs authentication)
OPERATIONS: dict[tuple[str, str], tuple[Handler, bool]] = {
    ("tds", "GetSystemDateAndTime"): (get_system_date_and_time, False),
    ("tds", "GetServices"): (get_services, False),
    ("tds", "GetServiceCapabilities"): (_service_capabilities_op("tds"), False),
    ("tds", "GetCapabilities"): (get_capabilities, False),
    ("tds", "GetDeviceInformation"): (get_device_information, True),
    ("tds", "GetScopes"): (get_scopes, True),
    ("tds", "GetHostname"): (get_hostname, True),
    ("tds", "GetNetworkInterfaces"): (get_network_interfaces, True),
    ("tds", "GetNetworkProtocols"): (get_network_protocols, True),
    ("trt", "GetServiceCapabilities"): (_service_capabilities_op("trt"), True),
    ("trt", "GetProfiles"): (get_profiles, True),
    ("trt", "GetProfile"): (get_profile, True),
    ("trt", "GetVideoSources"): (get_video_sources, True),
    ("trt", "GetVideoSourceConfigurations"): (get_vscs, True),
    ("trt", "GetVideoSourceConfiguration"): (get_vsc, True),
    ("trt", "GetVideoEncoderConfigurations"): (get_vecs, True),
    ("trt", "GetVideoEncoderConfiguration"): (get_vec, True),
    ("trt", "GetVideoEncoderConfigurationOptions"): (get_vec_options, True),
    ("trt", "GetVideoSourceConfigurationOptions"): (get_vsc_options, True),
    ("trt", "GetStreamUri"): (get_stream_uri, True),
    ("trt", "GetSnapshotUri"): (get_snapshot_uri, True),
    ("timg", "GetServiceCapabilities"): (_service_capabilities_op("timg"), True),
    ("timg", "GetImagingSettings"): (get_imaging_settings, True),
    ("timg", "SetImagingSettings"): (set_imaging_settings, True),
    ("timg", "GetOptions"): (get_options, True),
    ("timg", "GetMoveOptions"): (get_move_options, True),
    ("timg", "Move"): (move, True),
    ("timg", "Stop"): (stop, True),
    ("timg", "GetStatus"): (get_status, True),
    ("tev", "GetServiceCapabilities"): (_service_capabilities_op("tev"), True),
    ("tev", "GetEventProperties"): (get_event_properties, True),
    ("tev", "CreatePullPointSubscription"): (create_pull_point, True),
    ("tev", "PullMessages"): (pull_messages, True),
    ("tev", "SetSynchronizationPoint"): (set_synchronization_point, True),
    ("wsnt", "Renew"): (renew, True),
    ("wsnt", "Unsubscribe"): (unsubscribe, True),
}
_PREFIX_OF = {NS[p]: p for p in ("tds", "trt", "timg", "tev", "wsnt")}


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _soap_response(payload: bytes, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(payload, status_code=status, media_type=SOAP_CONTENT_TYPE, headers=headers)


async def _read_body(request: Request) -> bytes:
    length = request.headers.get("content-length")
    if length is not None and (not length.isdigit() or int(length) > MAX_REQUEST_BYTES):
        raise sender_fault(f"Content-Length {length[:20]} is over the {MAX_REQUEST_BYTES} bytes allowed",
                           "ter:InvalidArgs")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_REQUEST_BYTES:
            raise sender_fault(f"request body over the {MAX_REQUEST_BYTES} bytes allowed", "ter:InvalidArgs")
        chunks.append(chunk)
    return b"".join(chunks)


async def dispatch(request: Request, ctx: OnvifContext, path_id: str | None = None) -> Response:
    """Parse, authenticate and answer one SOAP request; every failure becomes a SOAP fault."""
    try:
        soap = parse_request(await _read_body(request))
        prefix = _PREFIX_OF.get(soap.namespace)
        entry = OPERATIONS.get((prefix, soap.operation)) if prefix else None
        if entry is None:
            implemented = sorted({op for _, op in OPERATIONS})
            raise action_not_supported(
                f"operation {{{soap.namespace}}}{soap.operation[:64]} is not implemented; implemented: "
                f"{', '.join(implemented)}")
        handler, needs_auth = entry
        if needs_auth:
            presented = find(soap.header, "wsse:Security/wsse:UsernameToken") is not None
            ctx.authenticate(_client(request), lambda: ctx.verifier.verify(soap.header), presented)
        body = await handler(Call(soap, request, base_url(request, ctx.settings), ctx, path_id))
        return _soap_response(envelope(body))
    except Fault as fault:
        if fault.http_status in (401, 429):
            log.info("ONVIF request refused from %s: %s", _client(request), fault.reason)
        headers = {"Retry-After": str(fault.retry_after)} if fault.retry_after else None
        return _soap_response(fault_envelope(fault), fault.http_status, headers)
    except Exception:  # noqa: BLE001 - a bug must still answer a SOAP fault
        log.exception("ONVIF operation failed")
        internal = Fault("Receiver", ("ter:Action",), "internal error (logged by the camera)", 500)
        return _soap_response(fault_envelope(internal), 500)


def build_router() -> APIRouter:
    """The ``/onvif/...`` routes; they read the :class:`OnvifContext` from ``app.state.onvif``."""
    router = APIRouter(include_in_schema=False)

    def context(request: Request) -> OnvifContext | None:
        return getattr(request.app.state, "onvif", None)

    async def soap_endpoint(request: Request) -> Response:
        ctx = context(request)
        if ctx is None:
            return _soap_response(fault_envelope(Fault("Receiver", ("ter:Action",), "ONVIF is starting", 503)), 503)
        return await dispatch(request, ctx)

    for path in (DEVICE_PATH, MEDIA_PATH, IMAGING_PATH, EVENTS_PATH):
        router.add_api_route(path, soap_endpoint, methods=["POST"])

    @router.post(SUBSCRIPTION_PATH + "/{sid}")
    async def subscription_endpoint(sid: str, request: Request) -> Response:
        ctx = context(request)
        if ctx is None:
            return _soap_response(fault_envelope(Fault("Receiver", ("ter:Action",), "ONVIF is starting", 503)), 503)
        return await dispatch(request, ctx, path_id=sid[:64])

    @router.get(SNAPSHOT_PATH)
    async def snapshot(request: Request) -> Response:
        from pi_camera_service.snapshots import take_snapshot

        ctx = context(request)
        if ctx is None:
            return Response("ONVIF is starting", status_code=503, headers={"Retry-After": "1"})
        uri = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        authorization = request.headers.get("authorization")

        def check() -> tuple[bool, bool]:
            ok, stale = ctx.digest.check(authorization, request.method, uri)
            if not ok and not stale:
                raise Fault("Sender", ("ter:NotAuthorized",), "wrong credentials", 401)
            return ok, stale

        try:
            ok, stale = ctx.authenticate(_client(request), check, presented=bool(authorization))
        except Fault as fault:
            ok, stale = False, False
            if fault.http_status == 429:
                return Response(fault.reason, status_code=429, media_type="text/plain",
                                headers={"Retry-After": str(fault.retry_after)})
        if not ok:
            return Response("ONVIF credentials needed (HTTP Digest or Basic)", status_code=401,
                            headers={"WWW-Authenticate": ctx.digest.challenge(stale)}, media_type="text/plain")
        profile = request.query_params.get("profile", PROFILE_TOKEN)
        if profile != PROFILE_TOKEN:
            return Response(f"no profile {profile[:64]!r}; the profile is {PROFILE_TOKEN!r}", status_code=404,
                            media_type="text/plain")
        jpeg = await run_in_threadpool(take_snapshot, ctx.camera, None, 90)
        return Response(jpeg, media_type="image/jpeg", headers={"Cache-Control": "no-store"})

    return router


router = build_router()
