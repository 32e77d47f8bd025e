"""Readable request-validation errors shared by the edge service and the central server."""

from __future__ import annotations

from fastapi.exceptions import RequestValidationError

from pi_camera_service.limits import excerpt


def validation_message(exc: RequestValidationError) -> str:
    """One readable line per invalid field: ``query.width: Input should be ... (got '99999')``.

    The value sent is repeated as a short excerpt only (:func:`~pi_camera_service.limits.excerpt`), so a
    large input does not come back whole; at most 20 errors are listed."""
    parts = []
    errors = exc.errors()
    for err in errors[:20]:
        loc = ".".join(str(p) for p in err.get("loc", ()) if p != "body") or "request"
        got = f" (got {excerpt(err['input'])})" if "input" in err and err["input"] is not None else ""
        parts.append(f"{loc}: {err.get('msg', 'invalid')}{got}")
    if len(errors) > 20:
        parts.append(f"... and {len(errors) - 20} more errors")
    return "; ".join(parts)
