"""Checks of query parameters shared by several route modules."""

from __future__ import annotations

import datetime as dt

from pcs_common.service_errors import InvalidRequest


def check_time_range(since: dt.datetime | None, until: dt.datetime | None) -> None:
    """Refuse a ``since``/``until`` without a UTC offset, or ``since`` later than ``until``.

    Raises:
        InvalidRequest: (422) saying which parameter and what to send.
    """
    for name, value in (("since", since), ("until", until)):
        if value is not None and value.tzinfo is None:
            raise InvalidRequest(f"{name} needs a UTC offset, e.g. 2026-11-22T10:00:00Z")
    if since is not None and until is not None and since > until:
        raise InvalidRequest(f"since ({since.isoformat()}) is later than until ({until.isoformat()}); "
                             "send since <= until")
