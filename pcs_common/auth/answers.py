"""The 401 answer of both services: ``WWW-Authenticate`` challenge (RFC 6750 §3, RFC 7235) + JSON ``detail``.

Body: ``{"detail": "<what is wrong and what to send>"}``, and with ``error_in_body`` (the central
server) also ``"error": "<RFC 6750 error code>"``. Header: ``Bearer realm="<realm>"``, with
``error`` and ``error_description`` when the request carried credentials (RFC 6750 §3.1), or any
other ``challenge`` given (``Basic realm=...``).
"""

from __future__ import annotations

from fastapi import HTTPException, status

from pcs_common.auth.tokens import header_safe


def bearer_challenge(realm: str, error: str | None = None, description: str | None = None) -> str:
    """A ``WWW-Authenticate`` value for the Bearer scheme (RFC 6750 §3).

    Without ``error`` (request carried no credentials) only the realm is sent, as RFC 6750 §3.1
    recommends; otherwise ``error`` (``invalid_token``, ``invalid_request``...) and an
    ``error_description`` are added (reduced to the characters RFC 6750 allows).
    """
    value = f'Bearer realm="{realm}"'
    if error:
        value += f', error="{error}"'
        if description:
            value += f', error_description="{header_safe(description)}"'
    return value


def unauthorized(detail: str, *, realm: str, error: str | None = None, error_in_body: bool = False,
                 challenge: str | None = None) -> HTTPException:
    """A 401 ``HTTPException``: JSON ``detail`` (``error`` too with ``error_in_body``) and a challenge.

    Args:
        detail: what is wrong and what to send instead.
        realm: the service's realm (RFC 7235 §2.2).
        error: RFC 6750 §3.1 error code, or None when no credentials were sent.
        error_in_body: also put ``error`` in the body (``{"detail", "error"}``, the central server's
            shape; its exception handler sends a dict ``detail`` as the body).
        challenge: the whole ``WWW-Authenticate`` value instead of the Bearer one (``Basic realm=...``).
    """
    body: str | dict[str, str] = {"detail": detail, "error": error or "invalid_request"} if error_in_body else detail
    return HTTPException(status_code=status.HTTP_401_UNAUTHORIZED, detail=body,
                         headers={"WWW-Authenticate": challenge or bearer_challenge(realm, error, detail)})
