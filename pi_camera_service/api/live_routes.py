"""Live routes (behind authentication): the MJPEG view and the server-sent event stream.

* ``GET /v1/camera/mjpeg``: ``multipart/x-mixed-replace`` JPEGs at ``CAMERA_MJPEG_FPS`` (default 5) and
  ``CAMERA_MJPEG_WIDTH`` px, from the service itself (works without MediaMTX; an ``<img src>`` shows it).
  Besides the usual credentials it accepts ``?ticket=<JWT>`` from the paired central server's dashboard
  (see :mod:`pcs_common.viewer_ticket`), and only here.
* ``GET /v1/events/stream``: server-sent events (``text/event-stream``): ``detection`` (each new
  detection result, boxes in main-stream px, without encodings) and every event of ``/v1/events``
  (``day_night``, ``controls``, ``camera_restart``...), with ``id:`` lines so a reconnecting
  ``EventSource`` resumes with ``Last-Event-ID``.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Request, Security
from fastapi.responses import StreamingResponse

from pi_camera_service.api.deps import DetectionDep, EventLogDep, MjpegDep, ServicesDep
from pi_camera_service.api.state import AppServices
from pi_camera_service.auth import api_key_scheme, bearer_scheme, require_auth, unauthorized
from pi_camera_service.detection.detector import DetectionResult
from pi_camera_service.detection.service import DetectionService
from pi_camera_service.events import EventLog
from pcs_common.limits import LIVE_BODY_STATE
from pi_camera_service.live import BOUNDARY, mjpeg_parts
from pcs_common.viewer_ticket import TICKET_PARAM, TicketError, TicketVerifier

#: ``GET /camera/mjpeg``: authenticated by :func:`require_viewer` (the usual credentials or a viewer ticket)
viewer_router = APIRouter()
#: ``GET /events/stream``: included into the authenticated ``/v1`` router
router = APIRouter()

#: how often the event stream looks for a new detection result or event, s
POLL_INTERVAL = 0.1
#: a comment line is sent after this many s of silence so proxies keep the connection open
KEEPALIVE = 15.0


VIEWER_PRINCIPAL_PREFIX = "viewer:"
"""Principal of an MJPEG request opened with a central server's viewer ticket: ``viewer:<admin>``."""


def _ticket_verifier(services: AppServices) -> TicketVerifier:
    if services.viewer_tickets is None:
        services.viewer_tickets = TicketVerifier()
    return services.viewer_tickets


async def require_viewer(
    request: Request,
    services: ServicesDep,
    api_key: Annotated[str | None, Security(api_key_scheme)],
    bearer_token: Annotated[str | None, Security(bearer_scheme)],
) -> str:
    """Authentication of ``GET /v1/camera/mjpeg``: :func:`~pi_camera_service.auth.require_auth`, or a
    viewer ticket in ``?ticket=`` while the camera is paired with a central server; returns the principal
    (``viewer:<admin>`` for a ticket).

    Raises:
        HTTPException: 401 when the ticket is refused (see
            :meth:`~pcs_common.viewer_ticket.TicketVerifier.verify`), when the camera is not paired,
            when credentials are sent besides a ticket (one method per request, as RFC 6750 §2 asks), and
            in every case :func:`~pi_camera_service.auth.require_auth` refuses.
    """
    tickets = request.query_params.getlist(TICKET_PARAM)
    if not tickets:
        return await require_auth(request, api_key, bearer_token)
    if len(tickets) > 1 or api_key is not None or request.headers.get("Authorization") or len(request.query_params) > 1:
        raise unauthorized(f"send one ?{TICKET_PARAM}= and nothing else (no other parameters or credentials)",
                           error="invalid_request")
    link = services.central_link
    creds = link.device_credentials() if link is not None else None
    if creds is None:
        raise unauthorized("viewer tickets are only accepted while this camera is paired with a central server",
                           error="invalid_token")
    try:
        claims = _ticket_verifier(services).verify(tickets[0], creds[0], creds[1])
    except TicketError as exc:
        raise unauthorized(str(exc), error="invalid_token") from None
    request.state.principal = VIEWER_PRINCIPAL_PREFIX + str(claims["sub"])[:100]
    return request.state.principal


@viewer_router.get(
    "/camera/mjpeg",
    tags=["camera"],
    response_class=StreamingResponse,
    responses={200: {"content": {f"multipart/x-mixed-replace; boundary={BOUNDARY}": {}}},
               503: {"description": "CAMERA_MAX_MJPEG_VIEWERS viewers connected (Retry-After, s)"}},
    dependencies=[Depends(require_viewer)],
)
async def mjpeg(request: Request, broadcaster: MjpegDep) -> StreamingResponse:
    """Live MJPEG: the newest frame as JPEG ``fps`` times a second, encoded once for all viewers; a slow
    viewer skips frames. Ends after 10 s without a frame (camera gone). Opens with the usual credentials
    or a paired central server's viewer ticket (``?ticket=``). At most ``CAMERA_MAX_MJPEG_VIEWERS`` at
    once (503 beyond); a viewer that takes no data for ``CAMERA_VIEWER_WRITE_TIMEOUT`` s is dropped."""
    sub = broadcaster.subscribe()
    body = mjpeg_parts(broadcaster, sub)
    setattr(request.state, LIVE_BODY_STATE, body)  # closed by LiveViewMiddleware when the viewer goes
    return StreamingResponse(
        body,
        media_type=f"multipart/x-mixed-replace; boundary={BOUNDARY}",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


def _sse(event: str, data: Any, event_id: int | None = None) -> bytes:
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


def _detection_payload(result: DetectionResult) -> dict[str, Any]:
    body = result.to_dict()
    for face in body.get("faces", []):
        face.pop("encoding", None)  # 128 floats per face: not for drawing boxes
    return body


async def _event_stream(
    request: Request, log: EventLog, detection: DetectionService | None, last_id: int
) -> AsyncIterator[bytes]:
    seen_frame = None
    idle = 0.0
    yield b"retry: 2000\n\n"
    while not await request.is_disconnected():
        sent = False
        for event in log.since(last_id, limit=50):
            last_id = event.id
            yield _sse(event.type, event.to_dict(), event.id)
            sent = True
        result = detection.latest() if detection is not None else None
        if result is not None and result.frame_index != seen_frame:
            seen_frame = result.frame_index
            yield _sse("detection", _detection_payload(result))
            sent = True
        idle = 0.0 if sent else idle + POLL_INTERVAL
        if idle >= KEEPALIVE:
            idle = 0.0
            yield b": keep-alive\n\n"
        await asyncio.sleep(POLL_INTERVAL)


@router.get("/events/stream", tags=["events"], response_class=StreamingResponse,
            responses={200: {"content": {"text/event-stream": {}}},
                       503: {"description": "CAMERA_MAX_EVENT_STREAMS clients connected (Retry-After, s)"}})
async def event_stream(
    request: Request,
    log: EventLogDep,
    detection: DetectionDep,
    last_event_id: Annotated[int | None, Header(alias="Last-Event-ID")] = None,
) -> StreamingResponse:
    """Server-sent events: ``detection`` results as they come and the service's events (day/night,
    controls, restarts) from ``Last-Event-ID`` on (new events only on a first connection). At most
    ``CAMERA_MAX_EVENT_STREAMS`` at once (503 beyond); a client that takes no data for
    ``CAMERA_VIEWER_WRITE_TIMEOUT`` s is dropped."""
    start = last_event_id if last_event_id is not None else log.last_id
    body = _event_stream(request, log, detection, start)
    setattr(request.state, LIVE_BODY_STATE, body)
    return StreamingResponse(
        body,
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
