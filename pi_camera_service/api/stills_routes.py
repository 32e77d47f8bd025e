"""Stills history routes (all behind authentication; see docs/stills.md).

* ``GET /v1/stills?day=YYYY-MM-DD&limit=&cursor=``: newest first, paginated with an opaque cursor.
* ``GET /v1/stills/days``: days with counts, newest first.  ``GET /v1/stills/latest``: the newest still.
* ``GET /v1/stills/status``: counts, sizes, free disk, settings, next run, last capture, skips, errors.
* ``GET /v1/stills/{id}`` (JPEG), ``/thumbnail`` (JPEG), ``/metadata`` (the JSON sidecar);
  ``DELETE /v1/stills/{id}``; ``POST /v1/stills``: take one now.

Errors (JSON ``{"detail": ...}``): 404 unknown id or no still yet, 409 stills disabled, 422 malformed
id, day, cursor or limit, 503 no camera frame yet (``Retry-After``), 507 disk below the free-space floor.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse
from pydantic import BaseModel, Field

from pcs_common.service_errors import InsufficientStorage, NotFound, OperationFailed, Unavailable
from pi_camera_service.api.deps import StillsDep
from pi_camera_service.api.schemas import Problem
from pi_camera_service.sources.base import CameraUnavailable
from pi_camera_service.stills.service import StillsDiskFull, StillsService
from pi_camera_service.stills.store import StillRecord

#: stills never change once written
IMAGE_CACHE_CONTROL = "private, max-age=86400"

ERRORS: dict[int | str, dict[str, Any]] = {
    409: {"model": Problem, "description": "stills are disabled (CAMERA_STILLS_ENABLED=false)"},
    422: {"model": Problem, "description": "malformed id, day, cursor or limit"},
}
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"model": Problem, "description": "no such still"}}
JPEG: dict[int | str, dict[str, Any]] = {200: {"content": {"image/jpeg": {}}}, **NOT_FOUND}

router = APIRouter(tags=["stills"], responses=ERRORS)


class StillOut(BaseModel):
    """One still of the history."""

    id: str = Field(description="YYYYMMDD_HHMMSS_mmm, the local capture time")
    taken_at: float = Field(description="capture time, s since the epoch")
    taken_at_iso: str = Field(description="local capture time, ISO 8601 with UTC offset")
    trigger: str = Field(description="schedule | detection | manual")
    width: int = Field(description="px")
    height: int = Field(description="px")
    bytes: int = Field(description="size of the JPEG, bytes")
    nb_faces: int | None = Field(description="frontal faces in the stored detection result; null: no result stored")
    nb_profiles: int | None = Field(description="profile faces in the stored detection result; null: none stored")
    url: str = Field(description="the JPEG")
    thumbnail_url: str = Field(description="the thumbnail JPEG")


class StillPage(BaseModel):
    """A page of stills, newest first."""

    items: list[StillOut]
    next_cursor: str | None = Field(description="pass as ?cursor= for the next page; null on the last page")


class DayOut(BaseModel):
    """A day of the history."""

    day: str = Field(description="YYYY-MM-DD, local time")
    count: int = Field(description="stills that day")
    bytes: int = Field(description="disk bytes of that day's stills, thumbnails and sidecars")


def _out(request: Request, record: StillRecord) -> dict[str, Any]:
    base = request.scope.get("root_path", "") + f"/v1/stills/{record.id}"
    return {**record.to_dict(), "url": base, "thumbnail_url": base + "/thumbnail"}


def _record(stills: StillsService, still_id: str) -> StillRecord:
    """The record of ``still_id``.

    Raises:
        InvalidId: malformed id (422 at the app's error boundary).
        NotFound: no such still.
    """
    record = stills.store.get(still_id)
    if record is None:
        raise NotFound(f"no still {still_id!r}: it was never taken or has been deleted")
    return record


def _image(path: Path, still_id: str, what: str) -> FileResponse:
    try:
        stat = os.stat(path)
    except FileNotFoundError:
        raise NotFound(f"the {what} of still {still_id!r} is missing on disk") from None
    return FileResponse(
        path, media_type="image/jpeg", stat_result=stat, filename=path.name, content_disposition_type="inline",
        headers={"Cache-Control": IMAGE_CACHE_CONTROL},
    )


@router.get("/stills", response_model=StillPage)
def list_stills(
    request: Request,
    stills: StillsDep,
    day: Annotated[str | None, Query(description="only this local day, YYYY-MM-DD")] = None,
    limit: Annotated[int, Query(ge=1, le=200, description="stills per page")] = 50,
    cursor: Annotated[str | None, Query(description="next_cursor of the previous page")] = None,
) -> dict[str, Any]:
    """Stills newest first, ``limit`` per page; follow ``next_cursor`` until it is null. Served from the
    in-memory index (no disk access)."""
    records, next_cursor = stills.store.page(limit, cursor, day)  # InvalidCursor, InvalidDay: 422
    return {"items": [_out(request, r) for r in records], "next_cursor": next_cursor}


@router.post(
    "/stills",
    response_model=StillOut,
    status_code=201,
    responses={
        503: {"model": Problem, "description": "the camera has no frame yet (Retry-After)"},
        507: {"model": Problem, "description": "the disk is below CAMERA_STILLS_MIN_FREE_MB even after retention"},
    },
)
async def take_still(request: Request, stills: StillsDep) -> dict[str, Any]:
    """Take a still now (trigger ``manual``) from the live pipeline; returns its record (201)."""
    try:
        record = await run_in_threadpool(stills.capture, "manual")
    except CameraUnavailable as exc:
        raise Unavailable(f"no frame to take a still from yet: {exc}") from None
    except StillsDiskFull as exc:
        raise InsufficientStorage(f"still not taken: {exc}") from None
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise InsufficientStorage(f"still not taken, the disk is full: {exc}") from None
        raise OperationFailed(f"still not taken, writing it failed: {exc}") from None
    return _out(request, record)


@router.get("/stills/days", response_model=list[DayOut])
def still_days(stills: StillsDep) -> list[dict[str, Any]]:
    """Days that have stills, newest first, with their counts (for a day picker)."""
    return stills.store.days()


@router.get("/stills/latest", response_model=StillOut, responses=NOT_FOUND)
def latest_still(request: Request, stills: StillsDep) -> dict[str, Any]:
    """The newest still (404 when there is none yet)."""
    record = stills.store.latest()
    if record is None:
        raise NotFound("no still has been taken yet")
    return _out(request, record)


@router.get("/stills/status")
def stills_status(stills: StillsDep) -> dict[str, Any]:
    """Count, total bytes, free disk bytes, settings in force (interval or cron, on_detection, limits),
    next scheduled run, last capture, captures taken/skipped/failed, last skip reason and last error."""
    return stills.status()


@router.get("/stills/{still_id}", response_class=FileResponse, responses=JPEG)
def get_still(stills: StillsDep, still_id: str) -> FileResponse:
    """The still as JPEG (full main-stream size); cacheable for a day (stills never change)."""
    _record(stills, still_id)
    return _image(stills.store.jpeg_path(still_id), still_id, "JPEG")


@router.get("/stills/{still_id}/thumbnail", response_class=FileResponse, responses=JPEG)
def get_thumbnail(stills: StillsDep, still_id: str) -> FileResponse:
    """The still's thumbnail (``CAMERA_STILLS_THUMBNAIL_WIDTH`` px wide) as JPEG."""
    _record(stills, still_id)
    return _image(stills.store.thumbnail_path(still_id), still_id, "thumbnail")


@router.get("/stills/{still_id}/metadata", responses=NOT_FOUND)
def get_metadata(stills: StillsDep, still_id: str) -> dict[str, Any]:
    """The still's JSON sidecar: id, times, trigger, size, thumbnail, detection result (boxes without
    encodings) and camera metadata."""
    _record(stills, still_id)
    try:
        sidecar = stills.store.read_sidecar(still_id)
    except (OSError, ValueError) as exc:
        raise OperationFailed(f"the sidecar of still {still_id!r} cannot be read: {exc}") from None
    if sidecar is None:
        raise NotFound(f"no still {still_id!r}: it has just been deleted")
    return sidecar


@router.delete("/stills/{still_id}", status_code=204, response_class=Response, responses=NOT_FOUND)
def delete_still(stills: StillsDep, still_id: str) -> Response:
    """Delete a still: its JPEG, thumbnail and sidecar (204)."""
    _record(stills, still_id)
    if stills.store.delete(still_id) is None:
        raise NotFound(f"no still {still_id!r}: it has just been deleted")
    return Response(status_code=204)
