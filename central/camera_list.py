"""The camera list at fleet size: filter by state and name, sort and page in SQL.

A camera's state (see :func:`central.fleet.camera_state`) is derived from its row and the clock, so the
filter turns each state into the equivalent ``WHERE`` clause instead of loading every camera:

- ``disabled``: ``disabled``;
- ``awaiting_camera``: not disabled, credentials never used (``claimed_at IS NULL``);
- ``online``: not disabled, claimed, last heartbeat no older than ``offline_after`` s;
- ``offline``: not disabled, claimed, no heartbeat or an older one.

Pages are ``limit``/``offset`` over a total order (the sort key, then the camera id), so consecutive
pages neither repeat nor skip a camera while the list does not change.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Literal

from sqlalchemy import ColumnElement, and_, case, false, func, or_, select, true
from sqlalchemy.orm import Session

from central.models import Camera, utcnow

CameraState = Literal["online", "offline", "disabled", "awaiting_camera"]
"""The states :func:`central.fleet.camera_state` reports."""

CameraSort = Literal["name", "-name", "last_seen", "-last_seen", "paired", "-paired", "state", "-state"]
"""Sort keys: a leading ``-`` reverses the order. ``last_seen``/``paired`` are times; ``state`` orders
online, offline, awaiting_camera, disabled (what needs attention after what works)."""

STATES: tuple[CameraState, ...] = ("online", "offline", "awaiting_camera", "disabled")
MAX_PAGE = 1000
"""Largest ``limit`` one request may ask for."""
MAX_NAME_FILTER = 100
"""Longest name filter, characters (a camera name is at most 100)."""


@dataclass(frozen=True)
class CameraQuery:
    """What to list.

    Attributes:
        states: keep cameras in one of these states (empty: every state).
        name: keep cameras whose name contains this text, case-insensitively (``%``/``_`` match
            themselves); None or empty: every name.
        sort: one of :data:`CameraSort`.
        limit: page size (1..:data:`MAX_PAGE`), or None for every match.
        offset: matches skipped before the page (>= 0).
    """

    states: tuple[CameraState, ...] = ()
    name: str | None = None
    sort: CameraSort = "name"
    limit: int | None = None
    offset: int = 0


def state_clause(state: CameraState, offline_after_s: int, now: dt.datetime) -> ColumnElement[bool]:
    """The SQL condition equivalent to ``camera_state(camera, offline_after_s, now) == state``."""
    cutoff = now - dt.timedelta(seconds=offline_after_s)
    live = and_(Camera.disabled.is_(false()), Camera.claimed_at.is_not(None))
    if state == "disabled":
        return Camera.disabled.is_(true())
    if state == "awaiting_camera":
        return and_(Camera.disabled.is_(false()), Camera.claimed_at.is_(None))
    if state == "online":
        return and_(live, Camera.last_seen_at.is_not(None), Camera.last_seen_at >= cutoff)
    return and_(live, or_(Camera.last_seen_at.is_(None), Camera.last_seen_at < cutoff))


def _state_rank(offline_after_s: int, now: dt.datetime) -> ColumnElement[int]:
    return case(*((state_clause(s, offline_after_s, now), rank) for rank, s in enumerate(STATES)), else_=len(STATES))


def list_cameras(db: Session, query: CameraQuery, offline_after_s: int,
                 now: dt.datetime | None = None) -> tuple[list[Camera], int]:
    """One page of cameras and the number of matches over all pages.

    Args:
        db: an open session.
        query: filter, sort and page.
        offline_after_s: a camera is offline once its last heartbeat is older than this, s.
        now: the time the states are taken at (UTC; default: now).

    Returns:
        ``(cameras, total)``: the page, in order; how many cameras match the filter.
    """
    now = now or utcnow()
    conditions: list[ColumnElement[bool]] = []
    if query.states:
        conditions.append(or_(*(state_clause(s, offline_after_s, now) for s in dict.fromkeys(query.states))))
    if query.name:
        conditions.append(func.lower(Camera.name).contains(query.name.lower(), autoescape=True))
    where = and_(true(), *conditions)
    total = db.scalar(select(func.count()).select_from(Camera).where(where)) or 0
    descending = query.sort.startswith("-")
    key = query.sort.lstrip("-")
    column: ColumnElement[object]
    if key == "name":
        column = func.lower(Camera.name)
    elif key == "last_seen":
        column = Camera.last_seen_at
    elif key == "paired":
        column = Camera.paired_at
    else:
        column = _state_rank(offline_after_s, now)
    # never-seen cameras sort as the oldest: last with "-last_seen", first with "last_seen"
    order = [column.desc().nulls_last() if descending else column.asc().nulls_first()]
    if key == "state":
        order.append(func.lower(Camera.name).asc())
    order.append(Camera.id.desc() if descending else Camera.id.asc())
    statement = select(Camera).where(where).order_by(*order).offset(query.offset)
    if query.limit is not None:
        statement = statement.limit(query.limit)
    return list(db.scalars(statement)), int(total)


def state_counts(db: Session, offline_after_s: int, now: dt.datetime | None = None) -> dict[str, int]:
    """``{"total", "online", "offline", "awaiting_camera", "disabled"}``: cameras per state, one query."""
    now = now or utcnow()
    columns = [func.count().label("total")]
    columns += [func.sum(case((state_clause(s, offline_after_s, now), 1), else_=0)).label(s) for s in STATES]
    row = db.execute(select(*columns).select_from(Camera)).one()
    return {name: int(getattr(row, name) or 0) for name in ("total", *STATES)}
