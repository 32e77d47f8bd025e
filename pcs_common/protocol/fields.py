"""Field checks shared by the protocol's models, their error messages (each names its field and what is
allowed) and the models' base class."""

from __future__ import annotations

import datetime as dt
import math
import re
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from pcs_common.protocol.limits import ENCODING_LENGTH, MAX_BOX_PX, MAX_FUTURE_S

_ITEM_ID = re.compile(r"[0-9a-fA-F]{32}")  # fullmatch: "$" would accept a trailing "\n"
_B64_SLACK = 4


def _b64_chars(limit: int) -> int:
    """Longest base64 text (RFC 4648 §4, padded) of at most ``limit`` bytes."""
    return (limit + 2) // 3 * 4 + _B64_SLACK


def _excerpt(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


class ProtocolError(ValueError):
    """A value breaks the protocol; ``str()`` names the field, what is wrong and what is allowed."""


# --- shared field checks (each message starts with the field's name) ---------------------------------------


def check_item_id(value: Any, name: str = "item_id") -> str:
    """A 32-hex item id, lower-cased (``uuid4().hex`` made by the camera when it records the item).

    Raises:
        ProtocolError: not 32 hexadecimal characters.
    """
    if not isinstance(value, str) or not _ITEM_ID.fullmatch(value):
        raise ProtocolError(f"{name} must be 32 hexadecimal characters, got {str(value)[:40]!r}")
    return value.lower()


def parse_time(value: Any, name: str = "captured_at", now: dt.datetime | None = None) -> dt.datetime:
    """An ISO-8601 time with a UTC offset (``2026-11-22T10:00:00Z``), as timezone-aware UTC.

    Raises:
        ProtocolError: not a string, not ISO-8601, without an offset, or more than
            :data:`MAX_FUTURE_S` s after ``now`` (default: the current time).
    """
    if not isinstance(value, str):
        raise ProtocolError(f"{name} must be an ISO-8601 string such as 2026-11-22T10:00:00Z")
    try:
        parsed = dt.datetime.fromisoformat(value.strip())
    except ValueError:
        raise ProtocolError(f"{name}={value[:40]!r} is not an ISO-8601 time such as 2026-11-22T10:00:00Z") from None
    if parsed.tzinfo is None:
        raise ProtocolError(f"{name}={value[:40]!r} has no UTC offset; send e.g. 2026-11-22T10:00:00Z")
    parsed = parsed.astimezone(dt.timezone.utc)
    now = now or dt.datetime.now(dt.timezone.utc)
    if (parsed - now).total_seconds() > MAX_FUTURE_S:
        raise ProtocolError(f"{name}={value[:40]!r} is more than 24 h in the future (is the camera's clock set?)")
    return parsed


def check_box(value: Any, name: str) -> list[int]:
    """``[x, y, w, h]`` px: four integers, x and y >= 0, w and h >= 1, each <= :data:`MAX_BOX_PX`.

    Raises:
        ProtocolError: anything else.
    """
    if (not isinstance(value, list) or len(value) != 4
            or not all(isinstance(v, int) and not isinstance(v, bool) for v in value)):
        raise ProtocolError(f"{name} must be [x, y, w, h], four integers in px")
    x, y, w, h = value
    if x < 0 or y < 0 or w < 1 or h < 1 or max(value) > MAX_BOX_PX:
        raise ProtocolError(f"{name}={value} is out of range: x, y >= 0; w, h >= 1; each <= {MAX_BOX_PX}")
    return list(value)


def check_encoding(value: Any, name: str) -> list[float] | None:
    """A face encoding: exactly :data:`ENCODING_LENGTH` finite numbers (not booleans), as floats; None stays None.

    Raises:
        ProtocolError: anything else.
    """
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
        raise ProtocolError(f"{name} must be a list of {ENCODING_LENGTH} numbers, or null")
    if len(value) != ENCODING_LENGTH:
        raise ProtocolError(f"{name} has {len(value)} numbers; a face encoding has exactly {ENCODING_LENGTH}")
    if not all(math.isfinite(v) for v in value):
        raise ProtocolError(f"{name} contains NaN or infinity; only finite numbers are allowed")
    return [float(v) for v in value]


def check_b64(value: Any, name: str, limit: int) -> str | None:
    """Base64 text no longer than ``limit`` bytes encode to (the JPEG inside is the central server's to
    check); None stays None.

    Raises:
        ProtocolError: not text, or too long.
    """
    if value is None:
        return None
    if not isinstance(value, str):
        raise ProtocolError(f"{name} must be base64 text of a JPEG, or null")
    if len(value) > _b64_chars(limit):
        raise ProtocolError(f"{name} is too big: at most {limit // 1024} KB of JPEG")
    return value


def check_choice(value: Any, name: str, allowed: tuple[str, ...], verb: str = "is not allowed") -> str:
    """``value`` when it is one of ``allowed``.

    Raises:
        ProtocolError: ``name=<value> is not allowed; allowed: a, b``.
    """
    if value not in allowed:
        raise ProtocolError(f"{name}={_excerpt(value)} {verb}; allowed: {', '.join(allowed)}")
    return value


def first_problem(exc: ValidationError) -> str:
    """The message of the first error of ``exc``: a :class:`ProtocolError`'s own text (which names the
    field), else ``<field> <pydantic's message>`` (``faces[0].box``-style path)."""
    error = exc.errors(include_url=False)[0]
    cause = (error.get("ctx") or {}).get("error")
    if isinstance(cause, ProtocolError):
        return str(cause)
    loc = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error["loc"]).lstrip(".")
    if error["type"] == "missing":
        return f"{loc} is missing"
    return f"{loc}: {error['msg']}" if loc else str(error["msg"])


class WireModel(BaseModel):
    """Base of the wire models: unknown fields are ignored (an older peer keeps working with a newer one;
    the contract tests make sure both sides know every field)."""

    model_config = ConfigDict(extra="ignore")
