"""uvicorn's forwarded-header options from a service's trust setting (both services' command lines)."""

from __future__ import annotations


def uvicorn_proxy_options(trust_proxy_headers: bool, forwarded_allow_ips: str) -> dict[str, object]:
    """Keyword arguments for ``uvicorn.run`` so that ``X-Forwarded-For`` is honoured only when trusted.

    uvicorn's own defaults (``proxy_headers=True``, ``forwarded_allow_ips="127.0.0.1"``) would honour
    the header from localhost even when the service's setting is off.

    Args:
        trust_proxy_headers: ``CAMERA_TRUST_PROXY_HEADERS`` / ``CENTRAL_TRUST_PROXY_HEADERS``.
        forwarded_allow_ips: comma-separated proxy addresses/networks (uvicorn's ``forwarded_allow_ips``).
    """
    if not trust_proxy_headers:
        return {"proxy_headers": False}
    return {"proxy_headers": True, "forwarded_allow_ips": forwarded_allow_ips}
