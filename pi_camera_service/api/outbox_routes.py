"""Outbox routes (behind authentication; see docs/outbox.md).

* ``GET /v1/outbox``: what waits for the central server and how delivery goes.
* ``POST /v1/stills/{id}/upload``: queue one still of the history for upload (202).
* ``POST /v1/camera/snapshot/upload``: take a snapshot now and queue it for upload (202).

Errors (JSON ``{"detail": ...}``): 404 unknown still, 409 outbox or stills disabled, 422 malformed id or
width, 503 no frame yet, 507 the item could not be queued (disk full or unwritable).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.concurrency import run_in_threadpool

from pcs_common.service_errors import InsufficientStorage, NotFound
from pi_camera_service.api.deps import CameraDep, OutboxDep, ServicesDep, StillsDep
from pi_camera_service.api.schemas import Problem
from pi_camera_service.outbox_sender import queue_still
from pi_camera_service.snapshots import queue_snapshot_upload

router = APIRouter(responses={
    409: {"model": Problem, "description": "the outbox (or the stills history) is disabled"},
})


@router.get("/outbox", tags=["outbox"])
def outbox_status(outbox: OutboxDep, services: ServicesDep) -> dict[str, Any]:
    """Delivery to the central server.

    ``{state: disabled | unpaired | idle | sending | retrying, next_attempt_at, depth, by_kind:
    {face_event, photo}, bytes, oldest_item_at, oldest_age_s (s), last_error, last_sent_at, dropped,
    rejected, last_rejected_reason, sent, limits: {max_items, max_bytes, max_age_s}, recorder:
    {events_recorded, events_skipped, errors, last_error, active_tracks} | null}``; times are
    ISO-8601 UTC. ``dropped``, ``rejected`` and ``sent`` count items since the outbox was created.
    """
    stats = outbox.stats()
    sender, recorder = services.outbox_sender, services.outbox_recorder
    state = sender.state() if sender is not None else {"state": "disabled", "next_attempt_at": None}
    return {**state, **stats, "recorder": recorder.stats() if recorder is not None else None}


@router.post("/stills/{still_id}/upload", status_code=202, tags=["stills"], responses={
    404: {"model": Problem, "description": "no such still"},
    422: {"model": Problem, "description": "malformed still id"},
    507: {"model": Problem, "description": "the still could not be queued"},
})
async def upload_still(stills: StillsDep, outbox: OutboxDep, still_id: str) -> dict[str, Any]:
    """Queue the still for upload to the central server; returns ``{item_id, still_id}`` (202). Each
    call queues a new copy (a new ``item_id``)."""
    try:
        item_id = await run_in_threadpool(queue_still, outbox, stills, still_id)  # InvalidId: 422
    except (KeyError, FileNotFoundError):
        raise NotFound(f"no still {still_id!r}: it was never taken or has been deleted") from None
    except OSError as exc:
        raise InsufficientStorage(f"the still could not be queued: {exc}") from None
    return {"item_id": item_id, "still_id": still_id}


@router.post("/camera/snapshot/upload", status_code=202, tags=["camera"], responses={
    503: {"model": Problem, "description": "no frame yet"},
    507: {"model": Problem, "description": "the snapshot could not be queued"},
})
async def upload_snapshot(
    outbox: OutboxDep,
    camera: CameraDep,
    width: Annotated[int | None, Query(ge=16, le=4608, description="scaled copy this many px wide")] = None,
    quality: Annotated[int, Query(ge=1, le=100, description="JPEG quality")] = 90,
) -> dict[str, Any]:
    """Take a snapshot now and queue it for upload to the central server (202 ``{item_id, bytes}``)."""
    queued = await run_in_threadpool(queue_snapshot_upload, outbox, camera, width, quality)
    return {"item_id": queued.item_id, "bytes": queued.bytes}
