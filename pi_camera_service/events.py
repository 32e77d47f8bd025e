"""In-memory event log of the service: day/night switches, control changes, camera restarts.

Events are kept in a bounded ring (newest ``capacity``) with increasing ids, so a client polls
``GET /v1/events?since=<last id>`` and misses nothing while it keeps up; listeners (e.g. a push
channel) get each event as it is published.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Event:
    """One event.

    Attributes:
        id: increasing from 1 since the service started.
        type: e.g. ``day_night``, ``controls``, ``camera_restart``.
        time: wall clock, s since the epoch.
        data: JSON-serialisable details.
    """

    id: int
    type: str
    time: float
    data: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """``{id, type, time, data}``."""
        return {"id": self.id, "type": self.type, "time": self.time, "data": self.data}


class EventLog:
    """Thread-safe bounded log of :class:`Event` with listeners.

    Args:
        capacity: events kept (oldest dropped first).
    """

    def __init__(self, capacity: int = 500) -> None:
        self._events: deque[Event] = deque(maxlen=capacity)
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._listeners: list[Callable[[Event], None]] = []

    def publish(self, type_: str, **data: Any) -> Event:
        """Record an event and call every listener with it (exceptions in listeners are logged)."""
        with self._lock:
            event = Event(next(self._ids), type_, time.time(), data)
            self._events.append(event)
            listeners = list(self._listeners)
        for listener in listeners:
            try:
                listener(event)
            except Exception:  # noqa: BLE001 - one bad listener must not stop the others
                log.exception("event listener %r failed", listener)
        return event

    @property
    def last_id(self) -> int:
        """Id of the newest event (0 before the first)."""
        with self._lock:
            return self._events[-1].id if self._events else 0

    def since(self, last_id: int = 0, type_: str | None = None, limit: int = 100) -> list[Event]:
        """Events with ``id > last_id`` (of ``type_`` when given), oldest first, at most ``limit``."""
        with self._lock:
            events = [e for e in self._events if e.id > last_id and (type_ is None or e.type == type_)]
        return events[:limit]

    def add_listener(self, listener: Callable[[Event], None]) -> None:
        """Call ``listener(event)`` for every future event (on the publishing thread; keep it quick)."""
        with self._lock:
            self._listeners.append(listener)

    def remove_listener(self, listener: Callable[[Event], None]) -> None:
        """Stop calling ``listener`` (no error if absent)."""
        with self._lock:
            self._listeners = [fn for fn in self._listeners if fn != listener]
