"""People (create, list, rename, merge, delete, enrol faces), unknown-face groups and sightings.

Reading needs the ``read`` scope; changing people and groups needs ``cameras`` (the operator scope).
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request, UploadFile
from pydantic import BaseModel, Field, field_validator
from sqlalchemy import func, select

from central import people, sightings
from central.api.deps import DB, Principal, central, require
from central.api.params import check_time_range
from central.models import FaceObservation, Person, UnknownGroup

router = APIRouter(prefix="/v1", tags=["people"])
Reader = Annotated[Principal, Depends(require("read"))]
Operator = Annotated[Principal, Depends(require("cameras"))]
MAX_ENROL_PHOTO_BYTES = 10 * 1024 * 1024


def _name(value: str) -> str:
    value = value.strip()
    if not 1 <= len(value) <= 100:
        raise ValueError("name must be 1 to 100 characters (not only spaces)")
    return value


class PersonIn(BaseModel):
    """``{name}``: 1 to 100 characters."""

    name: str = Field(max_length=200)

    @field_validator("name")
    @classmethod
    def _n(cls, value: str) -> str:
        return _name(value)


class MergeIn(BaseModel):
    """``{other_id}``: the person merged into this one (then deleted)."""

    other_id: str = Field(min_length=1, max_length=32)


class FromObservationsIn(BaseModel):
    """``{observation_ids}``: 1 to 1,000 face observation ids."""

    observation_ids: list[str] = Field(min_length=1, max_length=1000)


class AssignIn(BaseModel):
    """``{person_id}`` (an existing person) or ``{name}`` (a new person), not both."""

    person_id: str | None = Field(None, max_length=32)
    name: str | None = Field(None, max_length=200)

    @field_validator("name")
    @classmethod
    def _n(cls, value: str | None) -> str | None:
        return None if value is None else _name(value)


def _registry(request: Request) -> people.FaceRegistry:
    return central(request).faces


@router.post("/people", status_code=201)
def create_person(body: PersonIn, request: Request, _: Operator, db: DB) -> dict[str, Any]:
    """Create a person ``{name}`` (names need not be unique)."""
    person = Person(name=body.name)
    db.add(person)
    db.commit()
    _announce_on_broker(request, person.id)
    return people.person_view(person, 0, None)


@router.get("/people")
def list_people(_: Reader, db: DB) -> list[dict[str, Any]]:
    """Every person by name: ``[{id, name, created_at, encodings, last_seen: {camera_id, camera_name, at} | null}]``."""
    return people.list_people(db)


@router.get("/people/{person_id}")
def get_person(person_id: str, request: Request, _: Reader, db: DB) -> dict[str, Any]:
    """One person (as in the list)."""
    return people.one_person(db, _registry(request).person_or_404(db, person_id))


@router.patch("/people/{person_id}")
def rename_person(person_id: str, body: PersonIn, request: Request, _: Operator, db: DB) -> dict[str, Any]:
    """Rename ``{name}``."""
    person = _registry(request).person_or_404(db, person_id)
    person.name = body.name
    db.commit()
    _announce_on_broker(request, person.id)
    return people.one_person(db, person)


@router.post("/people/{person_id}/merge")
def merge_people(person_id: str, body: MergeIn, request: Request, _: Operator, db: DB) -> dict[str, Any]:
    """Merge ``other_id`` into this person: its encodings, faces and sightings move here; it is deleted."""
    person = _registry(request).merge(db, person_id, body.other_id)
    _forget_on_broker(request, body.other_id)
    _announce_on_broker(request, person.id)
    return people.one_person(db, person)


@router.delete("/people/{person_id}")
def delete_person(person_id: str, request: Request, _: Operator, db: DB) -> dict[str, Any]:
    """Erase a person everywhere: enrolled encodings and their photos, the faces matched to them (rows
    and crops; event frames left with no face), sightings. Answers the counts erased."""
    erased = _registry(request).delete_person(db, person_id)
    _forget_on_broker(request, person_id)
    return {"deleted": person_id, **erased}


def _forget_on_broker(request: Request, person_id: str) -> None:
    """Clear a person's retained MQTT ``last_seen`` and Home Assistant presence device once they no
    longer exist (when MQTT is on)."""
    publisher = central(request).mqtt
    if publisher is not None:
        publisher.forget_person(person_id)


def _announce_on_broker(request: Request, person_id: str) -> None:
    """(Re)publish a person's Home Assistant presence device after a creation or a rename (when MQTT is on)."""
    publisher = central(request).mqtt
    if publisher is not None:
        publisher.announce_person(person_id)


@router.post("/people/{person_id}/faces", status_code=201)
async def enrol_photo(person_id: str, file: UploadFile, request: Request, _: Operator) -> dict[str, Any]:
    """Enrol from a photo (multipart field ``file``, JPEG, at most 10 MB): the server finds the faces
    with the cameras' detector and enrols the only one, or the dominant one when the others are far
    smaller (a person in front of a crowd); ``box`` says which (photo px) and ``faces_found`` how many
    were seen. No face, or two faces of similar size: 422 (listing the boxes)."""
    from fastapi.concurrency import run_in_threadpool

    data = await file.read(MAX_ENROL_PHOTO_BYTES + 1)
    if len(data) > MAX_ENROL_PHOTO_BYTES:
        raise HTTPException(413, "the photo is over 10 MB")
    if not data.startswith(b"\xff\xd8\xff"):
        raise HTTPException(422, "file must be a JPEG image")
    state = central(request)

    def run() -> dict[str, Any]:
        with state.sessions() as db:
            state.faces.person_or_404(db, person_id)
            row, box, found = state.faces.enrol_photo(db, person_id, data)
            return {"encoding_id": row.id, "person_id": person_id, "source": row.source,
                    "encodings": state.faces.people.count(person_id), "box": box, "faces_found": found}

    return await run_in_threadpool(run)


@router.post("/people/{person_id}/faces/from-observations")
def enrol_observations(person_id: str, body: FromObservationsIn, request: Request, _: Operator,
                       db: DB) -> dict[str, Any]:
    """Enrol received faces: ``{observation_ids}`` → ``{results: [{observation_id, status: "enrolled" |
    "already_enrolled" | "rejected", reason}]}``; an unknown id or a face without encoding is rejected
    without blocking the others."""
    return {"results": _registry(request).enrol_observations(db, person_id, body.observation_ids)}


@router.get("/people/{person_id}/last-seen")
def last_seen(person_id: str, request: Request, _: Reader, db: DB) -> dict[str, Any]:
    """The person's newest sighting with the camera's name; ``{"person_id", "sighting": null}`` if never seen."""
    person = _registry(request).person_or_404(db, person_id)
    return {"person_id": person.id, "person_name": person.name, "sighting": sightings.last_seen(db, person.id)}


# --- unknown groups ---------------------------------------------------------------------------------


@router.get("/unknown-groups")
def list_unknown_groups(
    _: Reader, db: DB, limit: Annotated[int, Query(ge=1, le=500)] = 50,
    samples: Annotated[int, Query(ge=0, le=20)] = 4,
) -> list[dict[str, Any]]:
    """Groups of unknown faces, most recently seen first: ``[{id, created_at, faces, first_seen,
    last_seen, camera_ids, samples: [{observation_id, camera_id, captured_at, crop_url}]}]``."""
    stats = db.execute(
        select(FaceObservation.unknown_group_id, func.count(), func.min(FaceObservation.captured_at),
               func.max(FaceObservation.captured_at))
        .where(FaceObservation.unknown_group_id.is_not(None)).group_by(FaceObservation.unknown_group_id)
        .order_by(func.max(FaceObservation.captured_at).desc()).limit(limit)
    ).all()
    out = []
    for gid, count, first, last in stats:
        group = db.get(UnknownGroup, gid)
        members = list(db.scalars(select(FaceObservation).where(FaceObservation.unknown_group_id == gid)
                                  .order_by(FaceObservation.captured_at.desc()).limit(max(samples, 1) * 5)))
        cameras = sorted({m.camera_id for m in members})
        with_crop = [m for m in members if m.crop_path][:samples]
        out.append({
            "id": gid, "created_at": group.created_at if group else None, "faces": count,
            "first_seen": _utc(first), "last_seen": _utc(last), "camera_ids": cameras,
            "samples": [{"observation_id": m.id, "camera_id": m.camera_id, "captured_at": m.captured_at,
                         "crop_url": f"/v1/observations/{m.id}/crop"} for m in with_crop],
        })
    return out


def _utc(value: dt.datetime | None) -> dt.datetime | None:
    """Aggregates bypass the column type on SQLite: make them aware UTC like the rest."""
    if value is None or isinstance(value, dt.datetime) and value.tzinfo is not None:
        return value
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    return value.replace(tzinfo=dt.timezone.utc) if value.tzinfo is None else value


@router.post("/unknown-groups/{group_id}/assign")
def assign_group(group_id: str, body: AssignIn, request: Request, _: Operator, db: DB) -> dict[str, Any]:
    """Name a group: ``{person_id}`` or ``{name}`` (creates the person). Its faces become the person's
    enrolled encodings; later faces like them match the person. The group is deleted."""
    person, enrolled = _registry(request).assign_group(db, group_id, body.person_id, body.name)
    _announce_on_broker(request, person.id)
    return {"person": people.one_person(db, person), "enrolled": enrolled}


@router.delete("/unknown-groups/{group_id}")
def delete_unknown_group(group_id: str, request: Request, _: Operator, db: DB) -> dict[str, Any]:
    """Erase a group of unknown faces (rows and crops)."""
    return {"deleted": group_id, **_registry(request).delete_group(db, group_id)}


# --- sightings --------------------------------------------------------------------------------------


@router.get("/sightings")
def list_sightings(
    _: Reader, db: DB, person_id: str | None = None, camera_id: str | None = None,
    since: dt.datetime | None = None, until: dt.datetime | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=10_000_000, description="sightings skipped before the page")] = 0,
) -> list[dict[str, Any]]:
    """Sightings overlapping ``[since, until]`` (ISO-8601 with offset), newest end first, across every camera
    unless ``camera_id`` is given and of everyone unless ``person_id`` is:
    ``[{id, person_id, person_name, camera_id, camera_name, started_at, ended_at, duration_s, detections}]``.
    Page with ``limit`` and ``offset``."""
    check_time_range(since, until)
    return sightings.search(db, person_id, camera_id, since, until, limit, offset)
