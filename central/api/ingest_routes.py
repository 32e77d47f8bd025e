"""Uploads from cameras (device Basic auth): face events and photos; and, for admins, the stored faces
(observations, their crops) and photos. The protocol (paths, limits, models) is :mod:`pcs_common.protocol`;
its use for faces is in docs/people.md."""

from __future__ import annotations

import datetime as dt
import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse
from sqlalchemy import select

from central import ingest
from central.api.params import check_time_range
from central.api.deps import DB, Principal, authenticate_device, central, get_or_404, require
from central.models import FaceObservation, Photo, utcnow
from pcs_common import protocol
from pcs_common.protocol import EventBatchAnswer, ItemResult, PhotoAnswer

router = APIRouter(prefix="/v1", tags=["ingest"])
Reader = Annotated[Principal, Depends(require("read"))]


async def _read_body(request: Request, limit: int) -> bytes:
    """The request body, refusing (413) more than ``limit`` bytes before reading it all."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise HTTPException(413, f"request body of {int(declared)} bytes is over the {limit // 2**20} MB limit "
                                 "(CENTRAL_INGEST_MAX_REQUEST_MB); send fewer items per request")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise HTTPException(413, f"request body is over the {limit // 2**20} MB limit "
                                     "(CENTRAL_INGEST_MAX_REQUEST_MB); send fewer items per request")
        chunks.append(chunk)
    return b"".join(chunks)


def _items(body: bytes) -> list[Any]:
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise HTTPException(422, "the body is not JSON; send {\"items\": [...]}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("items"), list):
        raise HTTPException(422, "the body must be a JSON object with an \"items\" list")
    items = doc["items"]
    if len(items) > ingest.MAX_ITEMS:
        raise HTTPException(413, f"{len(items)} items in one request; at most {ingest.MAX_ITEMS}")
    return items


@router.post(protocol.INGEST_EVENTS_PATH.removeprefix("/v1"))
async def ingest_events(request: Request) -> dict[str, Any]:
    """Face events from a camera (HTTP Basic ``device_id:device_secret``).

    Body ``{"items": [...]}``, at most 100 items (413 beyond). Answers 200 ``{"results": [{item_id,
    status: "stored" | "duplicate" | "rejected", reason}]}`` in item order; a malformed item is
    rejected with a reason and does not stop the others. 422 when the body is not JSON or has no
    ``items`` list; 401 unknown device; 403 disabled camera.
    """
    state = central(request)
    with state.sessions() as db:
        camera_id = (await run_in_threadpool(authenticate_device, request, db)).camera.id
    items = _items(await _read_body(request, state.settings.ingest_max_request_mb * 2**20))

    def run() -> list[ItemResult]:
        now = utcnow()
        parsed: list[ingest.ParsedEvent | str] = []
        seen: set[str] = set()
        for raw in items:
            try:
                event = ingest.parse_event(raw, now)
            except ingest.ItemRejected as exc:
                parsed.append(str(exc))
                continue
            parsed.append("duplicate" if event.item_id in seen else event)
            seen.add(event.item_id)
        events = [p for p in parsed if isinstance(p, ingest.ParsedEvent)]
        with state.sessions() as db:
            status = ingest.store_events(state.faces, db, camera_id, events)
        if state.mqtt is not None:  # after the commit; only queues the ids (central/mqtt.py publishes)
            state.mqtt.notify(camera_id, [o for e in events if status[e.item_id] == "stored"
                                          for o in e.observation_ids])
        results = []
        for raw, p in zip(items, parsed):
            if isinstance(p, ingest.ParsedEvent):
                results.append(ItemResult(item_id=p.item_id, status=status[p.item_id]))
            elif p == "duplicate":
                results.append(ItemResult(item_id=raw["item_id"].lower(), status="duplicate",
                                          reason="the same item_id appears earlier in this request"))
            else:
                item_id = raw.get("item_id") if isinstance(raw, dict) else None
                results.append(ItemResult(item_id=item_id if isinstance(item_id, str) else None, status="rejected",
                                          reason=p))
        return results

    return EventBatchAnswer(results=await run_in_threadpool(run)).model_dump()


@router.post(protocol.INGEST_PHOTOS_PATH.removeprefix("/v1"))
async def ingest_photo(request: Request) -> dict[str, Any]:
    """One still or snapshot from a camera (HTTP Basic auth), multipart form: ``item_id`` (32 hex),
    ``kind`` (``still`` | ``snapshot``), ``captured_at`` (ISO-8601 with offset), ``metadata`` (JSON
    object, optional), ``file`` (JPEG, at most 10 MB). 200 ``{item_id, status: "stored" | "duplicate"}``;
    422 with the reason for a malformed upload (the camera drops it)."""
    state = central(request)
    with state.sessions() as db:
        camera_id = (await run_in_threadpool(authenticate_device, request, db)).camera.id
    try:
        form = await request.form(max_files=1, max_fields=10, max_part_size=1024 * 1024)
    except Exception as exc:  # noqa: BLE001 - malformed multipart of any kind
        raise HTTPException(422, f"the body must be multipart/form-data with item_id, kind, captured_at, "
                                 f"metadata and file fields ({exc})") from None
    upload = form.get(protocol.PhotoUpload.FILE_FIELD)
    data = content_type = None
    if upload is not None and not isinstance(upload, str):
        data = await upload.read(ingest.MAX_PHOTO_BYTES + 1)
        content_type = upload.content_type
    elif isinstance(upload, str):
        raise HTTPException(422, "file must be a file part (a JPEG), not a text field")

    def run() -> dict[str, Any]:
        try:
            photo = ingest.parse_photo(form.get("item_id"), form.get("kind"), form.get("captured_at"),
                                       form.get("metadata"), data, content_type)
        except ingest.ItemRejected as exc:
            raise HTTPException(422, str(exc)) from None
        with state.sessions() as db:
            stored = ingest.store_photo(state.faces, db, camera_id, photo)
        return PhotoAnswer(item_id=photo.item_id, status=stored).model_dump()

    try:
        return await run_in_threadpool(run)
    finally:
        await form.close()


def _observation_view(o: FaceObservation) -> dict[str, Any]:
    return {"id": o.id, "camera_id": o.camera_id, "item_id": o.item_id, "track_id": o.track_id,
            "captured_at": o.captured_at, "box": o.box, "has_encoding": o.encoding is not None,
            "person_id": o.person_id, "unknown_group_id": o.unknown_group_id, "distance": o.distance,
            "crop_url": f"/v1/observations/{o.id}/crop" if o.crop_path else None}


@router.get("/observations")
def list_observations(
    _: Reader, db: DB, person_id: str | None = None, unknown_group_id: str | None = None,
    camera_id: str | None = None, since: dt.datetime | None = None, until: dt.datetime | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[dict[str, Any]]:
    """Received faces, newest first, filtered by person, unknown group, camera and capture time."""
    query = select(FaceObservation)
    for column, value in ((FaceObservation.person_id, person_id), (FaceObservation.unknown_group_id, unknown_group_id),
                          (FaceObservation.camera_id, camera_id)):
        if value:
            query = query.where(column == value)
    check_time_range(since, until)
    if since is not None:
        query = query.where(FaceObservation.captured_at >= since)
    if until is not None:
        query = query.where(FaceObservation.captured_at <= until)
    rows = db.scalars(query.order_by(FaceObservation.captured_at.desc(), FaceObservation.id).limit(limit))
    return [_observation_view(o) for o in rows]


def _file(request: Request, relative: str | None) -> FileResponse:
    path = central(request).faces.media.path(relative) if relative else None
    if path is None or not path.is_file():
        raise HTTPException(404, "no file stored for this item")
    return FileResponse(path, media_type="image/jpeg")


@router.get("/observations/{observation_id}/crop")
def observation_crop(observation_id: str, request: Request, _: Reader, db: DB) -> FileResponse:
    """The JPEG crop of a received face (404 when the camera sent none)."""
    return _file(request, get_or_404(db, FaceObservation, observation_id, "face observation").crop_path)


@router.get("/photos")
def list_photos(
    _: Reader, db: DB, camera_id: str | None = None, kind: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[dict[str, Any]]:
    """Stored photos (``still``, ``snapshot``, event ``frame``), newest capture first."""
    query = select(Photo)
    if camera_id:
        query = query.where(Photo.camera_id == camera_id)
    if kind:
        query = query.where(Photo.kind == kind)
    return [{"id": p.id, "camera_id": p.camera_id, "item_id": p.item_id, "kind": p.kind, "size": p.size,
             "sha256": p.sha256, "captured_at": p.captured_at, "received_at": p.received_at, "metadata": p.meta,
             "url": f"/v1/photos/{p.id}/file"}
            for p in db.scalars(query.order_by(Photo.captured_at.desc(), Photo.id).limit(limit))]


@router.get("/photos/{photo_id}/file")
def photo_file(photo_id: str, request: Request, _: Reader, db: DB) -> FileResponse:
    """The JPEG of a stored photo."""
    return _file(request, get_or_404(db, Photo, photo_id, "photo").path)
