"""Domain errors of both services, and the one place they become HTTP responses.

Service code (and route code) raises one of the classes below and never builds an HTTP response or
picks a status code itself; the app installs :func:`install_error_boundary` once, which maps each class
to its status (the table :data:`HTTP_STATUS`) and answers ``{"detail": ...}`` (plus ``"errors"`` when
the error lists them), the shape FastAPI gives an ``HTTPException``. The hierarchy, in the style of
httpx's ``_exceptions.py``::

    ServiceError
    ├── InvalidRequest       the request is well-formed but its values are not allowed   -> 422
    ├── NotFound             the thing asked for does not exist (or no longer)           -> 404
    ├── Conflict             valid, but not in the current state or configuration        -> 409
    ├── TooManyRequests      a rate limit; ``retry_after`` s                              -> 429
    ├── Unavailable          not ready yet or a part is down; ``retry_after`` s           -> 503
    ├── InsufficientStorage  the disk is full                                            -> 507
    └── OperationFailed      an operation failed for a reason the client cannot fix      -> 500

Modules whose own exceptions predate this hierarchy (e.g. the stills store's ``InvalidId``) are mapped
by the app with ``install_error_boundary(app, {InvalidId: InvalidRequest, ...})``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

from pcs_common.limits import json_safe

#: an ``errors`` list echoed in a response is cut to this many entries, ``detail`` to this many characters
MAX_ERRORS = 50
MAX_DETAIL = 2000


class ServiceError(Exception):
    """Base class: a request the service cannot fulfil, said in domain terms.

    Args:
        detail: what is wrong and what is allowed (shown to the client as ``detail``).
        errors: optional list of per-item problems (e.g. ``{control, value, message}`` per control).
        retry_after: s after which a retry may succeed (only meaningful for the transient classes).
    """

    def __init__(self, detail: str, *, errors: list[Any] | None = None, retry_after: int | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = errors
        self.retry_after = retry_after


class InvalidRequest(ServiceError):
    """The values of the request are not allowed; nothing was changed."""


class NotFound(ServiceError):
    """The resource asked for does not exist, or no longer."""


class Conflict(ServiceError):
    """The request is valid but cannot be carried out in the current state or configuration."""


class TooManyRequests(ServiceError):
    """A rate limit refused the request; ``retry_after`` s until it may pass (RFC 9110 §10.2.3)."""

    def __init__(self, detail: str, retry_after: int = 1, *, errors: list[Any] | None = None) -> None:
        super().__init__(detail, errors=errors, retry_after=retry_after)


class Unavailable(ServiceError):
    """Not possible yet (starting, no frame yet) or a part is down; ``retry_after`` defaults to 1 s."""

    def __init__(self, detail: str, *, errors: list[Any] | None = None, retry_after: int | None = 1) -> None:
        super().__init__(detail, errors=errors, retry_after=retry_after)


class InsufficientStorage(ServiceError):
    """The disk is full (or below its configured floor); nothing was written."""


class OperationFailed(ServiceError):
    """An operation failed for a reason the client cannot fix (a device or file refused)."""


#: the status each class maps to (RFC 9110 §15; 507 from RFC 4918 §11.5)
HTTP_STATUS: dict[type[ServiceError], int] = {
    InvalidRequest: 422,
    NotFound: 404,
    Conflict: 409,
    TooManyRequests: 429,
    Unavailable: 503,
    InsufficientStorage: 507,
    OperationFailed: 500,
}


def error_body(exc: ServiceError) -> dict[str, Any]:
    """``{"detail"}`` or ``{"detail", "errors"}``: ``detail`` cut to :data:`MAX_DETAIL` characters, ``errors``
    to :data:`MAX_ERRORS` entries with each ``value`` echoed JSON-safe (NaN -> ``"NaN"``)."""
    detail = exc.detail if len(exc.detail) <= MAX_DETAIL else exc.detail[:MAX_DETAIL] + "…"
    body: dict[str, Any] = {"detail": detail}
    if exc.errors:
        body["errors"] = [{**e, "value": json_safe(e.get("value"))} if isinstance(e, dict) else json_safe(e)
                          for e in exc.errors[:MAX_ERRORS]]
    return body


def status_of(exc: ServiceError) -> int:
    """The HTTP status of ``exc``: that of its nearest class in :data:`HTTP_STATUS` (500 if none)."""
    for cls in type(exc).__mro__:
        if cls in HTTP_STATUS:
            return HTTP_STATUS[cls]  # type: ignore[index]
    return 500


def install_error_boundary(app: Any, foreign: Mapping[type[Exception], type[ServiceError]] | None = None) -> None:
    """Answer every :class:`ServiceError` raised by a route or dependency of ``app`` (a FastAPI/Starlette app).

    Args:
        app: the application.
        foreign: exception types of other modules mapped to a class of the hierarchy; such an exception
            is answered as ``target(str(exc), errors=exc.errors)`` (``errors`` when the exception has a list).
    """
    from starlette.requests import Request
    from starlette.responses import JSONResponse

    def respond(exc: ServiceError) -> JSONResponse:
        headers = {"Retry-After": str(exc.retry_after)} if exc.retry_after is not None else None
        return JSONResponse(error_body(exc), status_code=status_of(exc), headers=headers)

    async def service_error(_: Request, exc: Exception) -> JSONResponse:
        return respond(cast(ServiceError, exc))

    app.add_exception_handler(ServiceError, service_error)
    for source, target in (foreign or {}).items():
        async def handler(_: Request, exc: Exception, target: type[ServiceError] = target) -> JSONResponse:
            errors = getattr(exc, "errors", None)
            return respond(target(str(exc), errors=errors if isinstance(errors, list) else None))

        app.add_exception_handler(source, handler)
