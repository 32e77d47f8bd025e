"""Outbox routes (behind authentication; see docs/outbox.md).

* ``GET /v1/outbox``: what waits for the central server and how delivery goes.
* ``POST /v1/stills/{id}/upload``: queue one still of the history for upload (202).
* ``POST /v1/camera/snapshot/upload``: take a snapshot now and queue it for upload (202).

Errors (JSON ``{"detail": ...}``): 404 unknown still, 409 outbox or stills disabled, 422 malformed id or
width, 503 no frame yet, 507 the item could not be queued (disk full or unwritable).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool

from pi_camera_service.api.routes import UNAUTHORIZED, take_snapshot
from pi_camera_service.api.schemas import Problem
from pi_camera_service.auth import require_auth
from pi_camera_service.outbox_sender import queue_snapshot, queue_still
from pi_camera_service.stills.store import InvalidId

router = APIRouter(prefix="/v1", dependencies=[Depends(require_auth)], responses={
    **UNAUTHORIZED, 409: {"model": Problem, "description": "the outbox (or the stills history) is disabled"},
})


def _outbox(request: Request) -> Any:
    outbox = getattr(request.app.state, "outbox", None)
    if outbox is None:
        raise HTTPException(409, "the outbox is off: it needs CAMERA_CENTRAL_URL and CAMERA_OUTBOX_ENABLED=true")
    return outbox


@router.get("/outbox", tags=["outbox"])
def outbox_status(request: Request) -> dict[str, Any]:
    """Delivery to the central server.

    ``{state: disabled | unpaired | idle | sending | retrying, next_attempt_at, depth, by_kind:
    {face_event, photo}, bytes, oldest_item_at, oldest_age_s (s), last_error, last_sent_at, dropped,
    rejected, last_rejected_reason, sent, limits: {max_items, max_bytes, max_age_s}, recorder:
    {events_recorded, events_skipped, errors, last_error, active_tracks} | null}``; times are
    ISO-8601 UTC. ``dropped``, ``rejected`` and ``sent`` count items since the outbox was created.
    """
    outbox = _outbox(request)
    stats = outbox.stats()
    sender = getattr(request.app.state, "outbox_sender", None)
    recorder = getattr(request.app.state, "outbox_recorder", None)
    state = sender.state() if sender is not None else {"state": "disabled", "next_attempt_at": None}
    return {**state, **stats, "recorder": recorder.stats() if recorder is not None else None}


@router.post("/stills/{still_id}/upload", status_code=202, tags=["stills"], responses={
    404: {"model": Problem, "description": "no such still"},
    422: {"model": Problem, "description": "malformed still id"},
    507: {"model": Problem, "description": "the still could not be queued"},
})
async def upload_still(request: Request, still_id: str) -> dict[str, Any]:
    """Queue the still for upload to the central server; returns ``{item_id, still_id}`` (202). Each
    call queues a new copy (a new ``item_id``)."""
    stills = getattr(request.app.state, "stills", None)
    if stills is None:
        raise HTTPException(409, "stills are disabled (CAMERA_STILLS_ENABLED=false); enable them and restart")
    outbox = _outbox(request)
    try:
        item_id = await run_in_threadpool(queue_still, outbox, stills, still_id)
    except InvalidId as exc:
        raise HTTPException(422, str(exc)) from None
    except (KeyError, FileNotFoundError):
        raise HTTPException(404, f"no still {still_id!r}: it was never taken or has been deleted") from None
    except OSError as exc:
        raise HTTPException(507, f"the still could not be queued: {exc}") from None
    return {"item_id": item_id, "still_id": still_id}


@router.post("/camera/snapshot/upload", status_code=202, tags=["camera"], responses={
    503: {"model": Problem, "description": "no frame yet"},
    507: {"model": Problem, "description": "the snapshot could not be queued"},
})
async def upload_snapshot(
    request: Request,
    width: Annotated[int | None, Query(ge=16, le=4608, description="scaled copy this many px wide")] = None,
    quality: Annotated[int, Query(ge=1, le=100, description="JPEG quality")] = 90,
) -> dict[str, Any]:
    """Take a snapshot now and queue it for upload to the central server (202 ``{item_id, bytes}``)."""
    outbox = _outbox(request)
    camera = request.app.state.camera
    jpeg = await take_snapshot(camera, width, quality)
    scale = (width or camera.width) / camera.width
    try:
        item_id = await run_in_threadpool(queue_snapshot, outbox, jpeg, width or camera.width,
                                          round(camera.height * scale))
    except OSError as exc:
        raise HTTPException(507, f"the snapshot could not be queued: {exc}") from None
    return {"item_id": item_id, "bytes": len(jpeg)}
