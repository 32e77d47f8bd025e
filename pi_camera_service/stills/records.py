"""What one still is: its id (the local capture time, ``YYYYMMDD_HHMMSS_mmm``), its day, its index
record and sidecar fields, the paging cursor, and the errors a bad id, day or cursor raises.

Layout and write protocol: :mod:`pi_camera_service.stills.store`.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

Trigger = Literal["schedule", "detection", "manual"]
TRIGGERS: tuple[str, ...] = ("schedule", "detection", "manual")

#: ``YYYYMMDD_HHMMSS_mmm`` (local capture time, ASCII digits; always used with ``fullmatch``): the only
#: accepted still id, so no other path can be built from a request
ID_RE = re.compile(r"[0-9]{8}_[0-9]{6}_[0-9]{3}")
#: ``YYYY-MM-DD`` (with ``fullmatch``): a day directory and the ``day`` filter
DAY_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
#: bumped when the sidecar layout changes incompatibly
SIDECAR_FORMAT = 1
_CURSOR_PREFIX = "s1:"


class InvalidId(ValueError):
    """A still id that does not match :data:`ID_RE` (``YYYYMMDD_HHMMSS_mmm``)."""


class InvalidCursor(ValueError):
    """A pagination cursor that this store did not issue."""


class InvalidDay(ValueError):
    """A day that is not a calendar date written ``YYYY-MM-DD``."""


@dataclass(frozen=True, slots=True)
class StillRecord:
    """One still in the index (what listings return; the sidecar has more).

    Attributes:
        id: ``YYYYMMDD_HHMMSS_mmm``, the local capture time.
        taken_at: capture time, s since the epoch.
        taken_at_iso: local capture time, ISO 8601 with the UTC offset, ms precision.
        trigger: ``schedule`` | ``detection`` | ``manual``.
        width, height: the JPEG's size, px.
        bytes: size of the JPEG, bytes.
        disk_bytes: size of the JPEG, thumbnail and sidecar together, bytes (what retention counts).
        nb_faces, nb_profiles: faces in the detection result stored with the still, None when no
            (recent enough) result was stored.
    """

    id: str
    taken_at: float
    taken_at_iso: str
    trigger: str
    width: int
    height: int
    bytes: int
    disk_bytes: int
    nb_faces: int | None
    nb_profiles: int | None

    @property
    def day(self) -> str:
        """The local day ``YYYY-MM-DD`` (also the directory name)."""
        return day_of(self.id)

    def to_dict(self) -> dict[str, Any]:
        """``{id, taken_at, taken_at_iso, trigger, width, height, bytes, nb_faces, nb_profiles}``."""
        return {
            "id": self.id, "taken_at": self.taken_at, "taken_at_iso": self.taken_at_iso, "trigger": self.trigger,
            "width": self.width, "height": self.height, "bytes": self.bytes,
            "nb_faces": self.nb_faces, "nb_profiles": self.nb_profiles,
        }


# ------------------------------------------------------------------------------------ helpers
def day_of(still_id: str) -> str:
    """``20261122_143005_123`` -> ``2026-11-22``."""
    return f"{still_id[0:4]}-{still_id[4:6]}-{still_id[6:8]}"


def check_id(still_id: str) -> str:
    """Return ``still_id`` if it is a well-formed id.

    Raises:
        InvalidId: it does not match ``YYYYMMDD_HHMMSS_mmm``.
    """
    if not isinstance(still_id, str) or not ID_RE.fullmatch(still_id):
        raise InvalidId(
            f"{still_id!r} is not a still id; ids look like 20261122_143005_123 (YYYYMMDD_HHMMSS_mmm, local time)"
        )
    return still_id


def check_day(day: str) -> str:
    """Return ``day`` if it is a calendar date written ``YYYY-MM-DD``.

    Raises:
        InvalidDay: any other string (``2026-02-30`` included).
    """
    try:
        if not DAY_RE.fullmatch(day):
            raise ValueError
        datetime.strptime(day, "%Y-%m-%d")
    except (TypeError, ValueError):
        raise InvalidDay(f"day={day!r} is not a date; use YYYY-MM-DD, such as 2026-11-22") from None
    return day


def encode_cursor(still_id: str) -> str:
    """The opaque cursor that continues a listing after ``still_id`` (URL-safe base64)."""
    return base64.urlsafe_b64encode((_CURSOR_PREFIX + still_id).encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> str:
    """The still id inside a cursor made by :func:`encode_cursor`.

    Raises:
        InvalidCursor: the cursor was not made by :func:`encode_cursor`.
    """
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
    except (ValueError, UnicodeDecodeError):
        raw = ""
    still_id = raw.removeprefix(_CURSOR_PREFIX)
    if not raw.startswith(_CURSOR_PREFIX) or not ID_RE.fullmatch(still_id):
        raise InvalidCursor(
            f"cursor={cursor!r} is not a cursor this API issued; pass next_cursor from the previous page unchanged, "
            "or no cursor for the first page"
        )
    return still_id


def compact_detection(result: dict[str, Any] | None) -> dict[str, Any] | None:
    """A detection result dict (``DetectionResult.to_dict()``) without the 128-float face encodings.

    Encodings would make each sidecar ~2.5 KB per face larger; boxes, counts and timestamps are kept.
    """
    if result is None:
        return None
    out = dict(result)
    out["faces"] = [{k: v for k, v in face.items() if k != "encoding"} for face in result.get("faces", ())]
    return out
