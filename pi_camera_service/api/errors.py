"""Readable request-validation errors shared by the edge service and the central server."""

from __future__ import annotations

from fastapi.exceptions import RequestValidationError


def validation_message(exc: RequestValidationError) -> str:
    """One readable line per invalid field: ``query.width: Input should be ... (got '99999')``."""
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err.get("loc", ()) if p != "body") or "request"
        got = f" (got {err['input']!r})" if "input" in err and err["input"] is not None else ""
        parts.append(f"{loc}: {err.get('msg', 'invalid')}{got}")
    return "; ".join(parts)
