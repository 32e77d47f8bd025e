"""Cameras (pair by code, list, rename, disable, unpair, rotate the secret, live-view tickets) and discovery
(mDNS, scan)."""

from __future__ import annotations

import datetime as dt
import ipaddress
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from sqlalchemy import select

from central import camera_list, pairing
from central.api.deps import DB, Principal, central, client_address, get_or_404, require
from central.api.schemas import CameraPatch, PairIn, ScanIn
from central.fleet import camera_view
from central.models import Camera, utcnow
from central.ratelimit import too_many
from pcs_common.viewer_ticket import DEFAULT_TICKET_TTL, TICKET_PARAM, issue_ticket

router = APIRouter(prefix="/v1", tags=["cameras"])
Reader = Annotated[Principal, Depends(require("read"))]
Operator = Annotated[Principal, Depends(require("cameras"))]


def _view(request: Request, camera: Camera) -> dict[str, Any]:
    return camera_view(camera, central(request).settings.offline_after_s())


@router.get("/cameras")
def list_cameras(
    request: Request, response: Response, _: Reader, db: DB,
    state: Annotated[list[camera_list.CameraState] | None, Query(
        description="keep cameras in these states (repeat the parameter for several); default: all")] = None,
    q: Annotated[str | None, Query(max_length=camera_list.MAX_NAME_FILTER,
                                   description="keep cameras whose name contains this, ignoring case")] = None,
    sort: Annotated[camera_list.CameraSort, Query(
        description="name, last_seen, paired or state; a leading '-' reverses")] = "name",
    limit: Annotated[int | None, Query(ge=1, le=camera_list.MAX_PAGE,
                                       description="page size; default: every match")] = None,
    offset: Annotated[int, Query(ge=0, le=10_000_000, description="matches skipped before the page")] = 0,
) -> list[dict[str, Any]]:
    """Paired cameras with their state (``online``/``offline``/``disabled``/``awaiting_camera``), by name.

    Filter with ``state`` and ``q``, order with ``sort``, page with ``limit`` and ``offset``. The
    response's ``X-Total-Count`` header gives the number of matches over all pages, and a ``Link``
    header (RFC 8288) the ``next``/``prev`` pages when ``limit`` is given."""
    offline_after = central(request).settings.offline_after_s()
    query = camera_list.CameraQuery(tuple(state or ()), q, sort, limit, offset)
    cameras, total = camera_list.list_cameras(db, query, offline_after)
    response.headers["X-Total-Count"] = str(total)
    if limit is not None:
        links = []
        if offset + limit < total:
            links.append(f'<{request.url.include_query_params(offset=offset + limit)}>; rel="next"')
        if offset > 0:
            links.append(f'<{request.url.include_query_params(offset=max(0, offset - limit))}>; rel="prev"')
        if links:
            response.headers["Link"] = ", ".join(links)
    return [_view(request, c) for c in cameras]


@router.get("/fleet/summary")
def fleet_summary(request: Request, _: Reader, db: DB) -> dict[str, int]:
    """How many paired cameras are in each state: ``{"total", "online", "offline", "awaiting_camera",
    "disabled"}`` (one query; for a dashboard header or a monitoring probe)."""
    return camera_list.state_counts(db, central(request).settings.offline_after_s())


@router.get("/cameras/{camera_id}")
def get_camera(camera_id: str, request: Request, _: Reader, db: DB) -> dict[str, Any]:
    """One paired camera."""
    return _view(request, get_or_404(db, Camera, camera_id, "paired camera"))


@router.post("/cameras/pair", status_code=201)
async def pair_camera(body: PairIn, request: Request, principal: Operator) -> dict[str, Any]:
    """Pair the camera showing ``code`` as ``name``. Wrong (404), expired (410) and reused (409) codes
    are counted; after too many per address, per admin or overall the endpoint answers 429 (a request
    over a budget only because of this process's checks in flight waits for them first, up to 10 s)."""
    state = central(request)
    address = client_address(request)
    checks = [("pair-address", address), ("pair-admin", principal.admin.id), ("pair-global", "all")]
    keys = [f"{rule}|{key}" for rule, key in checks]
    # atomic: reserved before the lookup; a refusal caused only by this process's pairings still in
    # flight (an admin entering many codes at once) waits for them instead (central.ratelimit.InFlight)
    blocked = await state.pairing_in_flight.reserve(keys, lambda: run_in_threadpool(state.limiter.acquire, checks))
    if blocked:
        raise too_many("too many refused pairing codes", blocked[1])

    def run() -> dict[str, Any]:
        with state.sessions() as db:
            camera, row = pairing.pair(db, body.code, body.name, principal.admin.id, address)
            return {**_view(request, camera), "pairing_request_id": row.id}

    try:
        out = await run_in_threadpool(run)
    except pairing.PairingError as exc:
        if exc.error not in pairing.COUNTED_REFUSALS:  # a wrong/expired/reused code keeps its reservation
            await run_in_threadpool(state.limiter.release, checks)
        raise  # answered by the app's error boundary (central.app), {"detail", "error"}
    else:
        await run_in_threadpool(state.limiter.release, checks)
    finally:
        await state.pairing_in_flight.done(keys)
    state.waiters.wake(out.pop("pairing_request_id"))
    return out


@router.patch("/cameras/{camera_id}")
def patch_camera(camera_id: str, body: CameraPatch, request: Request, _: Operator, db: DB) -> dict[str, Any]:
    """Rename and/or disable/enable a camera; a disabled camera's requests are refused at once (403)."""
    camera = get_or_404(db, Camera, camera_id, "paired camera")
    if body.name is not None:
        camera.name = body.name
    if body.disabled is not None:
        camera.disabled = body.disabled
    db.commit()
    return _view(request, camera)


@router.delete("/cameras/{camera_id}", status_code=204)
def unpair_camera(camera_id: str, request: Request, _: Operator, db: DB) -> Response:
    """Unpair: delete the camera record; its credentials are refused at once (401 ``unknown_device``) and
    the camera goes back to asking for a pairing code."""
    db.delete(get_or_404(db, Camera, camera_id, "paired camera"))
    db.commit()  # its stored viewer key goes with the row
    return Response(status_code=204)


def _refuse(status: int, error: str, message: str) -> HTTPException:
    return HTTPException(status, {"detail": message, "error": error})


@router.post("/cameras/{camera_id}/live-ticket")
def live_ticket(camera_id: str, request: Request, principal: Reader, db: DB) -> dict[str, Any]:
    """A short-lived ticket that opens this camera's MJPEG live view in the admin's browser, without a
    login on the camera: ``{"mjpeg_url", "ticket", "token_type": "viewer_ticket", "expires_in"}``
    (``mjpeg_url`` already carries ``?ticket=``; it opens one stream, within ``expires_in`` s).

    Only for a logged-in admin (dashboard session or login token, not API tokens). The ticket is a
    JWT signed with the key the camera sent in its last heartbeat, bound to this camera (``aud``) and to
    its MJPEG view (``scope``); see :mod:`pcs_common.viewer_ticket`.

    Raises:
        HTTPException: 404 unknown camera; 403 for API tokens; 409 ``camera_disabled``,
            ``no_live_address`` (the camera reported no API address or MJPEG path) or ``no_viewer_key``
            (no heartbeat with a viewer key stored yet: wait for the next one).
    """
    if principal.via not in ("session", "jwt"):
        raise HTTPException(403, "live-view tickets are issued to logged-in admins only, not to API tokens")
    camera = get_or_404(db, Camera, camera_id, "paired camera")
    view = _view(request, camera)
    if camera.disabled:
        raise _refuse(409, "camera_disabled", "this camera is disabled; enable it to watch it")
    if not view["mjpeg_url"]:
        raise _refuse(409, "no_live_address", "this camera has not reported its address and MJPEG path yet")
    key = central(request).viewer_seal.key_of(camera)  # stored by whichever process got the heartbeat
    if key is None:
        interval = central(request).settings.heartbeat_interval
        raise _refuse(409, "no_viewer_key", "this camera has not sent its viewer key yet (or the server's "
                      f"signing key changed since); it does with its next heartbeat (every {interval} s) if "
                      "its software is recent enough")
    ticket, expires_in = issue_ticket(key, camera.id, principal.admin.username, DEFAULT_TICKET_TTL)
    return {"mjpeg_url": f"{view['mjpeg_url']}?{TICKET_PARAM}={ticket}", "ticket": ticket,
            "token_type": "viewer_ticket", "expires_in": expires_in}


@router.post("/cameras/{camera_id}/rotate-secret", status_code=202)
def rotate_secret(camera_id: str, request: Request, _: Operator, db: DB) -> dict[str, Any]:
    """Ask for a new device secret: the camera receives it in its next heartbeat response; from then
    on the old secret only serves to collect the new one, until the camera first uses the new one.
    To cut off a camera whose secret leaked, unpair or disable it instead."""
    camera = get_or_404(db, Camera, camera_id, "paired camera")
    camera.rotate_requested = True
    db.commit()
    return _view(request, camera)


@router.get("/pairing/stats")
def pairing_stats(request: Request, _: Reader, db: DB) -> dict[str, Any]:
    """Pending codes and refused attempts over the last hour and day, by reason."""
    now = utcnow()
    return {
        "pending_codes": pairing.pending_count(db, now),
        "refused_last_hour": pairing.failures_since(db, now - dt.timedelta(hours=1)),
        "refused_last_day": pairing.failures_since(db, now - dt.timedelta(days=1)),
    }


def _discovered(request: Request, db: DB, cameras: list[Any]) -> list[dict[str, Any]]:
    paired = {c.hardware_id: c for c in db.scalars(select(Camera))}
    out = []
    for found in cameras:
        item = found.to_dict()
        camera = paired.get(found.hardware_id)
        item["paired"] = camera is not None
        item["camera_id"] = camera.id if camera else None
        item["camera_name"] = camera.name if camera else None
        out.append(item)
    return out


@router.get("/discovery")
def discovery(request: Request, _: Reader, db: DB) -> list[dict[str, Any]]:
    """Cameras seen on the LAN (mDNS ``_pi-camera._tcp`` and scans), each marked ``paired`` or not."""
    return _discovered(request, db, central(request).browser.cameras())


@router.post("/discovery/scan")
async def scan(body: ScanIn, request: Request, _: Operator) -> list[dict[str, Any]]:
    """Scan an IPv4 network (at most /20) for cameras on ``port`` (default ``CENTRAL_CAMERA_PORT``);
    found cameras join the discovery list. For networks without multicast."""
    from central.discovery import scan_cidr

    state = central(request)
    try:
        network = ipaddress.ip_network(body.cidr, strict=False)
    except ValueError:
        raise HTTPException(422, f"cidr={body.cidr!r} is not an IPv4 network such as 192.168.1.0/24") from None
    try:
        found = await scan_cidr(str(network), body.port or state.settings.camera_port)
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from None
    for camera in found:
        state.browser.add(camera)

    def view() -> list[dict[str, Any]]:
        with state.sessions() as db:
            return _discovered(request, db, found)

    return await run_in_threadpool(view)
