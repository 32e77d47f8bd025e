"""Reading the central server's replies for the camera's HTTP clients: error texts, ``Retry-After``,
stopping a task together with its client."""

from __future__ import annotations

import asyncio
import contextlib
import json

import httpx

from pcs_common.protocol import RETRY_AFTER

REQUEST_TIMEOUT = 10.0
"""Timeout of one ordinary call to the central server (connect, read, write), s."""


async def cancel_and_close(task: asyncio.Task | None, client: httpx.AsyncClient | None) -> None:
    """Cancel ``task`` and wait until it has ended, then close ``client``; either may be None."""
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    if client is not None:
        await client.aclose()


def retry_after(response: httpx.Response) -> float | None:
    """``Retry-After`` in seconds (RFC 9110 §10.2.3, delay-seconds form only), or None."""
    value = response.headers.get(RETRY_AFTER, "").strip()
    try:
        seconds = float(value)
    except ValueError:
        return None
    return seconds if seconds >= 0 else None


def detail(response: httpx.Response) -> str:
    """``detail`` of a JSON error body (or the start of the text), for logs and ``last_error``."""
    try:
        body = response.json()
        detail = body.get("detail") if isinstance(body, dict) else None
    except ValueError:
        detail = None
    text = detail if isinstance(detail, str) else (json.dumps(detail) if detail is not None else response.text)
    return f"HTTP {response.status_code}: {text[:300]}" if text else f"HTTP {response.status_code}"


def error_code(response: httpx.Response) -> str | None:
    """The ``error`` code of a JSON error body (``camera_disabled``...), or None."""
    try:
        body = response.json()
    except ValueError:
        return None
    return body.get("error") if isinstance(body, dict) and isinstance(body.get("error"), str) else None


def describe(exc: httpx.HTTPError) -> str:
    """``ConnectError: [Errno 111] Connection refused`` (type and message, one line)."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def short(exc: Exception) -> str:
    """The first line of ``str(exc)``, at most 200 characters (the type name when empty)."""
    return str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
