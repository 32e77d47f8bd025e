"""Resource limits shared by the edge service and the central server (docs/security.md, "Resource limits").

* :class:`PasswordCheckGate`: at most N argon2 verifications in flight; the others wait a bounded
  time on the event loop (no thread held), then get 503 with ``Retry-After``.
* :class:`BodyLimitMiddleware`: an ASGI middleware refusing request bodies over a per-route limit
  with 413 while the body streams in (``Content-Length`` checked before a byte is read; chunked
  bodies counted chunk by chunk), before FastAPI parses anything.
* :func:`excerpt`: a short, safe ``repr`` of client input for error messages.
* :func:`jpeg_dimensions` / :func:`check_jpeg_pixels`: a JPEG's declared size read from its frame
  header (ITU-T T.81 §B.2.2, the SOFn marker) without decoding it, to refuse decompression bombs.
* :class:`ViewerLimit` and :class:`LiveViewMiddleware`: a cap on concurrent long-lived viewers (MJPEG,
  SSE) and a deadline on every write to them, so a client that stops reading is dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import struct
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

from fastapi import HTTPException
from fastapi.concurrency import run_in_threadpool

T = TypeVar("T")
log = logging.getLogger(__name__)

EXCERPT_CHARS = 80
"""Longest excerpt of a client's input repeated in an error message, characters."""


def excerpt(value: Any, limit: int = EXCERPT_CHARS) -> str:
    """``repr(value)`` cut to ``limit`` characters (``…`` and the full length appended when cut).

    Used wherever an error message repeats what the client sent, so that a 5 MB input does not come
    back as a 5 MB error (and NaN/Infinity become the text ``nan``/``inf``, always serialisable).
    """
    if isinstance(value, (bytes, bytearray)):
        text = repr(bytes(value[: limit + 1]))
        total = len(value)
    else:
        text = repr(value) if not isinstance(value, str) else repr(value[: limit + 1])
        total = len(value) if isinstance(value, (str, list, dict, tuple)) else len(text)
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… ({total} {'characters' if isinstance(value, str) else 'long'})"


def json_safe(value: Any, depth: int = 0, *, cut: bool = True) -> Any:
    """``value`` with what strict JSON cannot hold replaced, for echoing client input in an error body.

    Non-finite floats (NaN, ±Infinity, also what ``1e309`` parses to) become the strings ``"NaN"``,
    ``"Infinity"``, ``"-Infinity"`` (RFC 8259 §6 has no such numbers; Starlette's JSONResponse
    refuses them); with ``cut``, strings over :data:`EXCERPT_CHARS` become an excerpt and lists and
    objects keep their first 20 entries and 4 levels.
    """
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if not cut:
        if isinstance(value, (list, tuple)):
            return [json_safe(v, depth + 1, cut=False) for v in value]
        if isinstance(value, dict):
            return {k: json_safe(v, depth + 1, cut=False) for k, v in value.items()}
        return value
    if isinstance(value, str):
        return value if len(value) <= EXCERPT_CHARS else excerpt(value)
    if isinstance(value, (list, tuple, dict)) and depth >= 4:
        return excerpt(value)
    if isinstance(value, (list, tuple)):
        return [json_safe(v, depth + 1) for v in list(value)[:20]]
    if isinstance(value, dict):
        return {str(k)[:EXCERPT_CHARS]: json_safe(v, depth + 1) for k, v in list(value.items())[:20]}
    if value is None or isinstance(value, (bool, int, float)):
        return value
    return excerpt(value)


# ------------------------------------------------------------------------------------------------
# Password verifications
# ------------------------------------------------------------------------------------------------


class PasswordChecksBusy(HTTPException):
    """503 answered when no password-check slot freed up in time (``Retry-After`` in s)."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(
            503,
            f"too many password checks in progress; retry in {retry_after} s",
            headers={"Retry-After": str(retry_after)},
        )


class PasswordCheckGate:
    """At most ``concurrency`` password verifications at once, across the whole process.

    Each argon2id verification allocates its memory cost (19 MiB with :data:`ARGON2_PARAMETERS`);
    without a bound, N concurrent logins allocate N times that (40 logins with pwdlib's default
    64 MiB grew a process by 1.6 GB). Callers beyond the limit wait up to ``wait_s`` on the event
    loop, holding no thread, then get :class:`PasswordChecksBusy` (503).

    Args:
        concurrency: verifications in flight at most (>= 1).
        wait_s: how long an excess caller waits for a slot, s (>= 0).
    """

    def __init__(self, concurrency: int = 2, wait_s: float = 2.0) -> None:
        if concurrency < 1:
            raise ValueError(f"concurrency must be >= 1, got {concurrency}")
        self.concurrency = concurrency
        self.wait_s = max(0.0, float(wait_s))
        self._semaphore: asyncio.Semaphore | None = None
        self.refused = 0

    def _sem(self) -> asyncio.Semaphore:
        if self._semaphore is None:  # created lazily: on the serving loop, not at import
            self._semaphore = asyncio.Semaphore(self.concurrency)
        return self._semaphore

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(*args)`` in the thread pool once a slot is free.

        Raises:
            PasswordChecksBusy: no slot within ``wait_s``.
        """
        sem = self._sem()
        try:
            await asyncio.wait_for(sem.acquire(), self.wait_s if self.wait_s > 0 else 0.001)
        except asyncio.TimeoutError:
            self.refused += 1
            raise PasswordChecksBusy(max(1, math.ceil(self.wait_s))) from None
        try:
            return await run_in_threadpool(fn, *args)
        finally:
            sem.release()


# ------------------------------------------------------------------------------------------------
# Request bodies
# ------------------------------------------------------------------------------------------------


class _BodyTooLarge(Exception):
    pass


def _size_text(limit: int) -> str:
    if limit >= 2**20 and limit % 2**20 == 0:
        return f"{limit // 2**20} MiB"
    if limit >= 1024 and limit % 1024 == 0:
        return f"{limit // 1024} KiB"
    return f"{limit} bytes"


Preauth = Callable[[dict[str, Any]], Awaitable[tuple[int, dict[str, Any], dict[str, str]] | None]]


class BodyLimitMiddleware:
    """Refuse HTTP request bodies over a per-route limit with 413, while they stream in.

    ``limit_for(scope)`` gives the limit in bytes for a request (method and path are in ``scope``).
    A ``Content-Length`` over it is answered at once, without reading the body; otherwise the body
    is counted as the application reads it (chunked transfer included) and, at the first byte over
    the limit, the application is stopped and 413 sent (``Connection: close``). The message says the
    limit, e.g. ``request body over the 64 KiB limit of PATCH /v1/camera/controls``.

    ``preauth(scope)``, when given, runs before any body byte is read for requests that have a body;
    it returns None to go on or ``(status, json_body, headers)`` to answer instead (a 401 for missing
    or wrong credentials), so an unauthenticated client cannot make the service read its upload.

    Args:
        app: the ASGI application.
        limit_for: ``scope -> bytes``.
        preauth: optional credential check (see above).
    """

    def __init__(self, app: Any, limit_for: Callable[[dict[str, Any]], int], preauth: Preauth | None = None) -> None:
        self.app = app
        self.limit_for = limit_for
        self.preauth = preauth

    async def __call__(self, scope: dict[str, Any], receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope)
        where = f"{scope.get('method', '')} {scope.get('path', '')}"
        message = f"request body over the {_size_text(limit)} limit of {where}"
        headers = {k.lower(): v for k, v in scope.get("headers", ())}
        declared = headers.get(b"content-length")
        has_body = declared not in (None, b"0") or b"chunked" in headers.get(b"transfer-encoding", b"").lower()
        if declared is not None and declared.strip().isdigit() and int(declared) > limit:
            await _send_json(send, 413, {"detail": f"{message} (Content-Length: {int(declared)})"}, {"connection": "close"})
            return
        if has_body and self.preauth is not None:
            refusal = await self.preauth(scope)
            if refusal is not None:
                status, body, extra = refusal
                await _send_json(send, status, body, {**extra, "connection": "close"})
                return
        received = 0
        exceeded = False
        started = False

        async def limited_receive() -> dict[str, Any]:
            nonlocal received, exceeded
            if exceeded:
                return {"type": "http.disconnect"}
            event = await receive()
            if event["type"] == "http.request":
                received += len(event.get("body", b""))
                if received > limit:
                    exceeded = True
                    raise _BodyTooLarge()
            return event

        async def guarded_send(event: dict[str, Any]) -> None:
            nonlocal started
            if exceeded and not started:
                return  # the application's answer to the cut body is replaced by the 413
            if event["type"] == "http.response.start":
                started = True
            await send(event)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except Exception:
            if not exceeded:
                raise
        if exceeded and not started:
            await _send_json(send, 413, {"detail": message}, {"connection": "close"})


async def _send_json(send: Callable, status: int, body: Any, headers: dict[str, str]) -> None:
    payload = json.dumps(body).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
    raw += [(k.lower().encode(), v.encode("latin-1")) for k, v in headers.items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": payload})


# ------------------------------------------------------------------------------------------------
# JPEG dimensions
# ------------------------------------------------------------------------------------------------

# SOFn markers (ITU-T T.81 Table B.1): C0..CF except DHT (C4), JPG (C8) and DAC (CC).
_SOF_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
_STANDALONE = frozenset({0x01, *range(0xD0, 0xD8)})  # TEM, RSTn: no length field


def jpeg_dimensions(data: bytes) -> tuple[int, int] | None:
    """``(width, height)`` in px declared by a JPEG's first SOFn frame header, without decoding.

    Walks the marker segments from SOI (T.81 §B.1.1.4: each is ``FF xx`` + a 2-byte big-endian length
    that includes itself) to the first SOF0..SOF15 and reads ``Y`` (lines) and ``X`` (samples per
    line) from it (§B.2.2). Returns None when ``data`` is not a JPEG or ends before a frame header.
    """
    if len(data) < 4 or data[:2] != b"\xff\xd8":
        return None
    i = 2
    n = len(data)
    while i + 4 <= n:
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte (§B.1.1.2)
            i += 1
            continue
        if marker in _STANDALONE:
            i += 2
            continue
        if marker in (0xD9, 0xDA):  # EOI or SOS before any frame header
            return None
        (length,) = struct.unpack(">H", data[i + 2:i + 4])
        if length < 2:
            return None
        if marker in _SOF_MARKERS:
            if i + 9 > n:
                return None
            height, width = struct.unpack(">HH", data[i + 5:i + 9])
            return width, height
        i += 2 + length
    return None


class ImageTooLarge(ValueError):
    """A JPEG declares more pixels than allowed for its use (the message says both)."""


def check_jpeg_pixels(data: bytes, max_pixels: int, what: str = "image") -> tuple[int, int]:
    """The declared ``(width, height)`` of the JPEG ``data``, refusing more than ``max_pixels``.

    Call before decoding: a 30000×30000 header in a 1 KB file would otherwise make the decoder
    allocate 2.7 GB.

    Raises:
        ImageTooLarge: no frame header (not a JPEG), a zero dimension, or more than ``max_pixels`` px.
    """
    dims = jpeg_dimensions(data)
    if dims is None:
        raise ImageTooLarge(f"{what} is not a JPEG (no frame header found)")
    width, height = dims
    if width == 0 or height == 0:
        raise ImageTooLarge(f"{what} declares {width}x{height} px; both sides must be > 0")
    if width * height > max_pixels:
        raise ImageTooLarge(
            f"{what} declares {width}x{height} px = {width * height / 1e6:.1f} Mpx; "
            f"at most {max_pixels / 1e6:g} Mpx are accepted"
        )
    return width, height


# ------------------------------------------------------------------------------------------------
# Long-lived viewers
# ------------------------------------------------------------------------------------------------


class ViewerLimit:
    """Counts concurrent viewers of a stream; :class:`LiveViewMiddleware` refuses (503) beyond ``max_viewers``.

    Args:
        max_viewers: viewers at once (>= 1).
        what: name used in the 503 message, e.g. ``"MJPEG viewers"``.
        setting: the setting that raises the cap, named in the message.
    """

    def __init__(self, max_viewers: int, what: str, setting: str) -> None:
        self.max_viewers = max_viewers
        self.what = what
        self.setting = setting
        self.active = 0
        self.dropped = 0

    def refusal(self) -> str | None:
        """The 503 message when ``max_viewers`` are connected, else None (and a place is taken)."""
        if self.active >= self.max_viewers:
            return (f"{self.active} {self.what} connected, the most allowed ({self.setting}={self.max_viewers}); "
                    "close another viewer or retry later")
        self.active += 1
        return None

    def leave(self) -> None:
        """Give a place back."""
        self.active = max(0, self.active - 1)


LIVE_BODY_STATE = "live_body"
"""``request.state`` attribute where a live route leaves its response's async iterator, so that
:class:`LiveViewMiddleware` closes it (and its subscription) as soon as the viewer is gone."""


class LiveViewMiddleware:
    """Caps concurrent viewers per live route and drops a viewer whose writes stall (it stopped reading).

    For each request to a path for which ``limits(path)`` gives a :class:`ViewerLimit`: 503 with
    ``Retry-After: 5`` when it is full; otherwise each ``http.response.body`` send must finish within
    ``timeout_s()`` s, else the connection is aborted (the server's transport, when the server exposes
    it as uvicorn does: ``abort()`` discards the buffered bytes, where ``close()`` would wait for a
    reader that never reads) and the response ended. The place is given back and the route's body
    iterator (``request.state.live_body``) closed however the response ends. The socket's
    ``SO_SNDBUF`` is set to :data:`STREAM_SNDBUF`, bounding the kernel memory of a stalled viewer.

    Args:
        app: the ASGI application.
        limits: ``path -> ViewerLimit | None`` (None: not a live route, passed through).
        timeout_s: ``() -> s`` one write may take.
    """

    def __init__(self, app: Any, limits: Callable[[str], ViewerLimit | None], timeout_s: Callable[[], float]) -> None:
        self.app = app
        self.limits = limits
        self.timeout_s = timeout_s

    async def __call__(self, scope: dict[str, Any], receive: Callable, send: Callable) -> None:
        limit = self.limits(scope.get("path", "")) if scope["type"] == "http" else None
        if limit is None:
            await self.app(scope, receive, send)
            return
        refusal = limit.refusal()
        if refusal is not None:
            await _send_json(send, 503, {"detail": refusal}, {"retry-after": "5"})
            return
        timeout = self.timeout_s()
        raw_send = scope.get(RAW_SEND_KEY, send)
        _bound_socket_buffer(raw_send)
        stalled = False

        async def timed_send(event: dict[str, Any]) -> None:
            nonlocal stalled
            if stalled:
                raise ClientStalled("client dropped")
            try:
                await asyncio.wait_for(send(event), timeout)
            except asyncio.TimeoutError:
                stalled = True
                _abort_transport(raw_send)
                raise ClientStalled(f"{scope.get('path')}: a write took over {timeout:g} s; client dropped") from None

        try:
            await self.app(scope, receive, timed_send)
        except BaseException as exc:  # ClientStalled, possibly inside an ExceptionGroup of the response's task group
            if not stalled or isinstance(exc, asyncio.CancelledError):
                raise
            limit.dropped += 1
            log.info("%s %s: client stopped reading for %g s; dropped", scope.get("method"), scope.get("path"), timeout)
        finally:
            limit.leave()
            body = (scope.get("state") or {}).get(LIVE_BODY_STATE)
            if body is not None and hasattr(body, "aclose"):
                with contextlib.suppress(Exception):
                    await body.aclose()


class ClientStalled(Exception):
    """A streaming client did not take a write within the deadline."""


STREAM_SNDBUF = 128 * 1024
"""``SO_SNDBUF`` set on a live viewer's socket, bytes (Linux doubles it): bounds the kernel memory a
viewer that stops reading can hold, and how long it takes to notice that it stopped."""


def _bound_socket_buffer(send: Callable) -> None:
    """Set :data:`STREAM_SNDBUF` on the socket behind uvicorn's ``send`` (no-op for other servers)."""
    import socket

    transport = getattr(getattr(send, "__self__", None), "transport", None)
    sock = transport.get_extra_info("socket") if transport is not None else None
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, STREAM_SNDBUF)


def _abort_transport(send: Callable) -> None:
    """Abort the connection behind an ASGI ``send`` of uvicorn (its ``RequestResponseCycle.transport``):
    ``abort()`` discards buffered bytes at once, where ``close()`` would wait for a reader that never reads."""
    owner = getattr(send, "__self__", None)
    transport = getattr(owner, "transport", None)
    abort = getattr(transport, "abort", None)
    if callable(abort):
        with contextlib.suppress(Exception):
            abort()


RAW_SEND_KEY = "pi_camera_service.server_send"
"""Scope key holding the server's own ``send`` (set by :func:`expose_server_send`)."""


def expose_server_send(app: Any) -> None:
    """Make the server's ``send`` callable (uvicorn's, which knows the connection) reachable from
    middleware as ``scope[RAW_SEND_KEY]``: Starlette's outermost middleware wraps ``send`` before
    user middleware sees it. Wraps ``app.build_middleware_stack`` (Starlette builds the stack on
    the first request)."""
    build = app.build_middleware_stack

    def build_exposing() -> Any:
        inner = build()

        async def outer(scope: dict[str, Any], receive: Callable, send: Callable) -> None:
            if scope["type"] == "http":
                scope[RAW_SEND_KEY] = send
            await inner(scope, receive, send)

        return outer

    app.build_middleware_stack = build_exposing
