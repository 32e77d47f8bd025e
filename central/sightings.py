"""Sightings: a person seen on one camera, detections no more than ``sighting_gap_s`` apart.

Each face matched to a person extends that person's sighting on that camera when its capture time
is within ``gap`` s of the sighting (after its end, or before its start: events may arrive out of
order); otherwise it opens a new sighting. A sighting counts its detections (matched faces).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from central.models import Camera, Person, Sighting


def record(db: Session, person_id: str, camera_id: str, at: dt.datetime, gap_s: float,
           recent: dict[tuple[str, str], list[Sighting]] | None = None) -> Sighting:
    """Count one detection of ``person_id`` on ``camera_id`` at ``at`` (UTC): extend the sighting
    within ``gap_s`` s of ``at`` (the one ending last), else add a new one. Neither flushed nor
    committed; the caller serialises calls (two concurrent detections could otherwise open two sightings).

    Args:
        recent: for a batch recorded in one transaction without flushes in between: ``{(person_id,
            camera_id): [sightings]}`` this batch extended or added (updated here). They are looked at
            first, and the database is queried without autoflush, so recording N detections costs at
            most one query per person and camera instead of a flush and a query each. Without it the
            query autoflushes, so rows added earlier in the session are seen.

    Returns:
        The sighting extended or added.
    """
    gap = dt.timedelta(seconds=gap_s)
    key = (person_id, camera_id)
    row = None
    if recent is not None:
        fitting = [r for r in recent.get(key, ()) if r.ended_at >= at - gap and r.started_at <= at + gap]
        row = max(fitting, key=lambda r: r.ended_at) if fitting else None
    if row is None:
        query = (select(Sighting)
                 .where(Sighting.person_id == person_id, Sighting.camera_id == camera_id,
                        Sighting.ended_at >= at - gap, Sighting.started_at <= at + gap)
                 .order_by(Sighting.ended_at.desc()).limit(1))
        if recent is None:
            row = db.scalars(query).first()
        else:
            with db.no_autoflush:
                row = db.scalars(query).first()
    if row is None:
        row = Sighting(person_id=person_id, camera_id=camera_id, started_at=at, ended_at=at, detections=1)
        db.add(row)
    else:
        row.started_at = min(row.started_at, at)
        row.ended_at = max(row.ended_at, at)
        row.detections += 1
    if recent is not None and row not in recent.setdefault(key, []):
        recent[key].append(row)
    return row


def view(row: Sighting, camera_name: str | None, person_name: str | None) -> dict[str, Any]:
    """JSON of one sighting: ``{id, person_id, person_name, camera_id, camera_name, started_at,
    ended_at, duration_s, detections}``."""
    return {
        "id": row.id, "person_id": row.person_id, "person_name": person_name, "camera_id": row.camera_id,
        "camera_name": camera_name, "started_at": row.started_at, "ended_at": row.ended_at,
        "duration_s": (row.ended_at - row.started_at).total_seconds(), "detections": row.detections,
    }


def _joined() -> Select[Any]:
    return (select(Sighting, Camera.name, Person.name)
            .join(Camera, Camera.id == Sighting.camera_id).join(Person, Person.id == Sighting.person_id))


def search(db: Session, person_id: str | None = None, camera_id: str | None = None,
           since: dt.datetime | None = None, until: dt.datetime | None = None, limit: int = 100,
           offset: int = 0) -> list[dict[str, Any]]:
    """Sightings overlapping ``[since, until]`` (either bound optional), newest end first (then by id, a
    total order, so pages do not overlap), at most ``limit`` after skipping ``offset``."""
    query = _joined()
    if person_id:
        query = query.where(Sighting.person_id == person_id)
    if camera_id:
        query = query.where(Sighting.camera_id == camera_id)
    if since is not None:
        query = query.where(Sighting.ended_at >= since)
    if until is not None:
        query = query.where(Sighting.started_at <= until)
    rows = db.execute(query.order_by(Sighting.ended_at.desc(), Sighting.id.desc())
                      .offset(offset).limit(limit)).all()
    return [view(row, camera, person) for row, camera, person in rows]


def last_seen(db: Session, person_id: str) -> dict[str, Any] | None:
    """The person's newest sighting (by end time) with the camera's name, or None if never seen."""
    found = search(db, person_id=person_id, limit=1)
    return found[0] if found else None


def last_seen_all(db: Session) -> dict[str, dict[str, Any]]:
    """``{person_id: {camera_id, camera_name, at}}`` of every person ever seen: one query."""
    from sqlalchemy import func

    newest = (select(Sighting.person_id, func.max(Sighting.ended_at).label("at"))
              .group_by(Sighting.person_id).subquery())
    rows = db.execute(
        select(Sighting.person_id, Sighting.camera_id, Camera.name, Sighting.ended_at)
        .join(newest, (newest.c.person_id == Sighting.person_id) & (newest.c.at == Sighting.ended_at))
        .join(Camera, Camera.id == Sighting.camera_id)
    ).all()
    return {pid: {"camera_id": cid, "camera_name": name, "at": at} for pid, cid, name, at in rows}
