"""The one UTC time format of both services: ISO-8601 (RFC 3339) with a ``Z``, e.g. ``2026-12-01T23:26:50Z``.

Every timestamp either service writes into JSON, MQTT payloads, ONVIF (``xs:dateTime``) or state
files comes from :func:`utc_iso`; only the precision differs by use (``timespec``, the parameter of
:meth:`datetime.datetime.isoformat`). ``datetime.fromisoformat`` (Python >= 3.11) reads every form
back.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

TimeSpec = str
"""``"seconds"``, ``"milliseconds"``, ``"microseconds"`` or ``"auto"`` (as :meth:`datetime.isoformat`)."""


def utc_iso(moment: float | datetime | None = None, timespec: TimeSpec = "seconds") -> str:
    """``moment`` as ISO-8601 UTC with a ``Z``: ``2026-12-01T23:26:50Z`` (``timespec="seconds"``, the default).

    Args:
        moment: s since the epoch (``time.time()``), a :class:`~datetime.datetime` (a naive one is
            taken as UTC) or ``None`` for now.
        timespec: precision, as :meth:`datetime.datetime.isoformat`: ``"seconds"`` (truncated, not
            rounded), ``"milliseconds"`` (``...:50.123Z``), ``"microseconds"``, or ``"auto"``
            (microseconds only when not zero).

    Raises:
        ValueError: unknown ``timespec``.
        OverflowError, OSError: an epoch outside the platform's range.
    """
    if moment is None:
        moment = time.time()
    if isinstance(moment, datetime):
        value = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    else:
        value = datetime.fromtimestamp(moment, UTC)
    return value.isoformat(timespec=timespec).replace("+00:00", "Z")


def utc_iso_ms(moment: float | datetime | None = None) -> str:
    """:func:`utc_iso` to the millisecond: ``2026-12-01T23:26:50.123Z`` (capture times, outbox status)."""
    return utc_iso(moment, "milliseconds")


__all__ = ["utc_iso", "utc_iso_ms"]
