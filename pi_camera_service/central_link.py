"""The camera's link to a central server: pairing with a one-time code, then heartbeats.

When ``CAMERA_CENTRAL_URL`` is set, :class:`CentralLink` runs as one asyncio task of the service:

1. **Pairing** (no stored credentials): ``POST <central>/v1/pairing/requests`` with the hardware id and
   the camera's secret pairing key (:func:`pairing_key`, which binds the code to this camera) gives an
   8-character code, logged at WARNING and published on the :class:`~pi_camera_service.events.EventLog` (event
   ``pairing``, so the web page shows it). The camera then long-polls
   ``GET <central>/v1/pairing/requests/{request_id}?wait=N`` with ``Authorization: Bearer <poll_token>``
   until an administrator enters the code on the central server (the camera never needs to be reachable
   from the central server for this). 410/404/401 (code expired, already claimed, unknown) ask for a new
   code. The ``paired`` answer carries ``device_id`` and ``device_secret``, stored in
   ``<state_dir>/central-credentials.json`` (mode 0600, written atomically).
2. **Heartbeats** (credentials stored): ``POST <central>/v1/devices/heartbeat`` with HTTP Basic
   ``device_id:device_secret`` and ``{"status": {...}, "viewer_key": ...}`` (see :func:`heartbeat_status`), every
   ``heartbeat_interval_s`` the server answers (30 s until it says otherwise). A ``device_secret`` in
   the answer replaces the stored one (rotation). 401 means the central server no longer knows the
   camera: the credentials are deleted and pairing starts again. 403 ``camera_disabled`` keeps the
   credentials and retries with backoff. Network errors and 5xx are retried with capped exponential
   backoff with jitter (:class:`Backoff`, cap ``CAMERA_CENTRAL_RETRY_MAX_DELAY``, 300 s by default).

Credentials stored for another central URL than the configured one are ignored (the camera pairs again).
While paired, the edge API also accepts the device credentials as HTTP Basic
(:meth:`CentralLink.device_credentials`, used by :func:`pi_camera_service.auth.require_auth`), so the
central server can read ``/v1/camera/status`` and ``/v1/camera/mjpeg``. Each heartbeat also carries the
``viewer_key`` derived from the device secret, with which the central server signs the tickets that open
``/v1/camera/mjpeg`` for its dashboard (:mod:`pcs_common.viewer_ticket`).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import logging
import random
import secrets
import socket
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
from pydantic import BaseModel, Field, ValidationError

from pi_camera_service import __version__
from pi_camera_service.config import Settings
from pi_camera_service.discovery import default_instance_name, viewer_rtsp_url
from pi_camera_service.events import EventLog
from pcs_common.backoff import Backoff
from pcs_common.fileio import fsync_dir, make_private_dir, make_private_file, read_or_create_secret, unlink_quietly, write_atomic
from pi_camera_service.identity import hardware_id
from pcs_common.timefmt import utc_iso
from pcs_common.viewer_ticket import viewer_key

log = logging.getLogger(__name__)

CREDENTIALS_FILE = "central-credentials.json"
"""Name of the credentials file in ``CAMERA_STATE_DIR``."""

PAIRING_KEY_FILE = "pairing_key"
"""Name of the file in ``CAMERA_STATE_DIR`` holding the camera's secret pairing key (see :func:`pairing_key`)."""

MJPEG_PATH = "/v1/camera/mjpeg"
"""Path of the MJPEG live view on this camera, reported in heartbeats."""

EVENT_TYPE = "pairing"
"""Type of the :class:`~pi_camera_service.events.EventLog` events published on state changes."""

DEFAULT_HEARTBEAT_INTERVAL = 30.0
"""Heartbeat interval until the central server names one, s."""

REQUEST_TIMEOUT = 10.0
"""Timeout of one ordinary call to the central server (connect, read, write), s."""

STATES = ("unconfigured", "requesting", "waiting_for_admin", "paired", "disabled", "error")
"""Values of ``state()["state"]``."""


# ------------------------------------------------------------------------------------------------
# Credentials file
# ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DeviceCredentials:
    """What pairing gave the camera, as stored in ``<state_dir>/central-credentials.json``.

    Attributes:
        central_url: the central server they belong to (``CAMERA_CENTRAL_URL`` at pairing time).
        device_id: the camera's id on that server (HTTP Basic user name).
        device_secret: the camera's secret (HTTP Basic password); left out of ``repr()``.
        camera_name: the name the administrator gave the camera.
        paired_at: ISO-8601 UTC time of the pairing.
    """

    central_url: str
    device_id: str
    device_secret: str = field(repr=False)
    camera_name: str
    paired_at: str


def credentials_path(state_dir: Path) -> Path:
    """``<state_dir>/central-credentials.json``."""
    return Path(state_dir) / CREDENTIALS_FILE


def load_credentials(state_dir: Path) -> DeviceCredentials | None:
    """Read the stored credentials, or ``None`` when there are none or the file is unusable.

    A corrupt file (not JSON, fields missing or not strings) is logged at WARNING and treated as
    absent (the camera pairs again and overwrites it). A file readable by group or others is
    tightened to 0600 with a warning.
    """
    path = credentials_path(state_dir)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        log.warning("cannot read %s (%s): pairing again", path, exc)
        return None
    with contextlib.suppress(OSError):
        make_private_file(path)  # 0600, with a warning when it was wider
    try:
        data = json.loads(raw)
        creds = DeviceCredentials(**{k: data[k] for k in DeviceCredentials.__dataclass_fields__})
    except (ValueError, TypeError, KeyError) as exc:
        log.warning("%s is not a valid credentials file (%s): pairing again", path, exc)
        return None
    values = asdict(creds)
    if not all(isinstance(v, str) for v in values.values()) or not (
        creds.central_url and creds.device_id and creds.device_secret
    ):
        log.warning("%s has empty or non-text fields: pairing again", path)
        return None
    return creds


def store_credentials(state_dir: Path, creds: DeviceCredentials) -> Path:
    """Write ``creds`` to ``<state_dir>/central-credentials.json`` atomically with mode 0600.

    The state directory is created (mode 0700) when missing. Returns the file's path.

    Raises:
        OSError: the directory or the file cannot be written (the previous file, if any, is intact).
    """
    path = credentials_path(state_dir)
    make_private_dir(path.parent)
    write_atomic(path, (json.dumps(asdict(creds), indent=2) + "\n").encode("utf-8"))
    fsync_dir(path.parent)
    return path


def pairing_key(state_dir: Path) -> str:
    """This camera's pairing key: 43 base64url characters (256 random bits) kept in
    ``<state_dir>/pairing_key`` (mode 0600), created on first use.

    Sent with every pairing request: the central server binds the code to it, so nobody who only
    knows the (public) hardware id can expire, replace or claim the code this camera shows, nor pair
    another device under this camera's record (docs/security.md#pairing). Kept across unpairing; a
    corrupt or too short file is replaced.

    Raises:
        OSError: the state directory cannot be created or written.
    """
    return read_or_create_secret(Path(state_dir) / PAIRING_KEY_FILE, lambda: secrets.token_urlsafe(32),
                                 lambda v: len(v) >= 43 and all(c.isalnum() or c in "-_" for c in v))[0]


def forget_credentials(state_dir: Path) -> bool:
    """Delete the stored credentials; ``True`` when a file was there (errors are logged, not raised)."""
    path = credentials_path(state_dir)
    existed = path.exists()
    unlink_quietly(path)
    with contextlib.suppress(OSError):
        fsync_dir(path.parent)
    return existed


# ------------------------------------------------------------------------------------------------
# Retry timing
# ------------------------------------------------------------------------------------------------


async def cancel_and_close(task: asyncio.Task | None, client: httpx.AsyncClient | None) -> None:
    """Cancel ``task`` and wait until it has ended, then close ``client``; either may be None."""
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    if client is not None:
        await client.aclose()


def _retry_after(response: httpx.Response) -> float | None:
    """``Retry-After`` in seconds (RFC 9110 §10.2.3, delay-seconds form only), or None."""
    value = response.headers.get("Retry-After", "").strip()
    try:
        seconds = float(value)
    except ValueError:
        return None
    return seconds if seconds >= 0 else None


# ------------------------------------------------------------------------------------------------
# What the camera tells the central server about itself
# ------------------------------------------------------------------------------------------------


def _is_unspecified_or_loopback(host: str) -> bool:
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return host.lower() in ("localhost", "")
    return address.is_unspecified or address.is_loopback


def _route_address(central_url: str) -> str | None:
    """The local IP address the kernel uses to reach ``central_url``'s host, or None.

    A UDP ``connect`` sends nothing; it only picks the route (and so the source address). Resolves
    the host name (blocking: call it in a thread).
    """
    parts = urlsplit(central_url)
    if not parts.hostname:
        return None
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        infos = socket.getaddrinfo(parts.hostname, port, type=socket.SOCK_DGRAM)
    except OSError:
        return None
    for family, type_, proto, _, sockaddr in infos:
        try:
            with socket.socket(family, type_, proto) as s:
                s.connect(sockaddr)
                return s.getsockname()[0]
        except OSError:
            continue
    return None


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def camera_host(settings: Settings) -> str | None:
    """The host name or address the central server can reach this camera at, or None if unknown.

    In order: ``CAMERA_ADVERTISED_HOST`` (also announced over mDNS), ``CAMERA_HOST`` when it is a
    specific non-loopback address, else the local address of the route to the central server (127.0.0.1
    when the central server itself runs on this machine). Blocking (may resolve a name).
    """
    if settings.advertised_host:
        return settings.advertised_host
    if not _is_unspecified_or_loopback(settings.host):
        return settings.host
    if settings.central_url:
        return _route_address(settings.central_url)
    return None


def advertised_urls(settings: Settings) -> tuple[str | None, str | None]:
    """``(api_url, rtsp_url)`` this camera reports to the central server.

    ``api_url``: ``CAMERA_API_URL`` when set, else ``http://<camera_host>:<CAMERA_PORT>`` (None when
    no host is known). ``rtsp_url``: the URL viewers use
    (:func:`pi_camera_service.discovery.viewer_rtsp_url`, as in the mDNS TXT record): ``CAMERA_RTSP_URL``
    without user and password, a loopback host replaced by the camera's host (MediaMTX runs on the
    camera); None when that host is unknown. Blocking (see :func:`camera_host`).
    """
    api_url = settings.api_url
    if api_url:
        host = settings.advertised_host or urlsplit(api_url).hostname
    else:
        host = camera_host(settings)
        api_url = f"http://{_url_host(host)}:{settings.port}" if host else None
    rtsp_url: str | None = viewer_rtsp_url(settings.rtsp_url, host or "")
    if not urlsplit(rtsp_url).hostname:
        rtsp_url = None
    return api_url, rtsp_url


def heartbeat_status(
    settings: Settings,
    camera: Any,
    detection: Any,
    *,
    started_at: float,
    api_url: str | None,
    rtsp_url: str | None,
    hardware: str,
) -> dict[str, Any]:
    """The ``status`` object of a heartbeat.

    Keys: ``version``, ``hardware_id``, ``streaming`` (RTSP publisher state is ``streaming``),
    ``stream_state`` (``stopped``/``connecting``/``streaming``/``reconnecting``), ``detection_fps``
    (analysed frames/s from the detection stats, None when detection is off), ``temperature_c``
    (sensor temperature from the camera metadata, °C, None when the source has none), ``api_url``,
    ``rtsp_url``, ``mjpeg_path``, ``webrtc_url`` (``CAMERA_WEBRTC_URL`` or None), ``uptime_s`` (s since
    ``started_at``, a ``time.monotonic()`` value), ``source``, ``width``, ``height`` (px).

    Blocking (reads the camera): call it in a thread. Parts that fail are reported as None.
    """
    stream_state = None
    try:
        stream_state = camera.streaming_status().state
    except Exception as exc:  # noqa: BLE001 - a status report must not fail on one part
        log.debug("streaming status unavailable: %s", exc)
    temperature = None
    try:
        value = camera.metadata().get("sensor_temperature")
        temperature = float(value) if value is not None else None
    except Exception as exc:  # noqa: BLE001
        log.debug("camera metadata unavailable: %s", exc)
    detection_fps = None
    if detection is not None:
        try:
            fps = detection.stats().get("analysed_fps")
            detection_fps = round(float(fps), 3) if fps is not None else None
        except Exception as exc:  # noqa: BLE001
            log.debug("detection stats unavailable: %s", exc)
    return {
        "version": __version__,
        "hardware_id": hardware,
        "streaming": stream_state == "streaming",
        "stream_state": stream_state,
        "detection_fps": detection_fps,
        "temperature_c": temperature,
        "api_url": api_url,
        "rtsp_url": rtsp_url,
        "mjpeg_path": MJPEG_PATH,
        "webrtc_url": settings.webrtc_url or None,
        "uptime_s": round(time.monotonic() - started_at, 1),
        "source": getattr(camera, "source", None),
        "width": getattr(camera, "width", None),
        "height": getattr(camera, "height", None),
    }


# ------------------------------------------------------------------------------------------------
# Answers of the central server
# ------------------------------------------------------------------------------------------------


class _CodeIssued(BaseModel):
    request_id: str = Field(min_length=1, max_length=200)
    code: str = Field(min_length=1, max_length=64)
    expires_at: str
    poll_token: str = Field(min_length=1)


class _PollAnswer(BaseModel):
    status: str
    expires_at: str | None = None
    device_id: str | None = Field(None, min_length=1)
    device_secret: str | None = Field(None, min_length=1)
    camera_name: str | None = None


class _HeartbeatAnswer(BaseModel):
    camera_name: str | None = None
    heartbeat_interval_s: float | None = None
    device_secret: str | None = Field(None, min_length=1)


def _detail(response: httpx.Response) -> str:
    """``detail`` of a JSON error body (or the start of the text), for logs and ``last_error``."""
    try:
        body = response.json()
        detail = body.get("detail") if isinstance(body, dict) else None
    except ValueError:
        detail = None
    text = detail if isinstance(detail, str) else (json.dumps(detail) if detail is not None else response.text)
    return f"HTTP {response.status_code}: {text[:300]}" if text else f"HTTP {response.status_code}"


def _error_code(response: httpx.Response) -> str | None:
    try:
        body = response.json()
    except ValueError:
        return None
    return body.get("error") if isinstance(body, dict) and isinstance(body.get("error"), str) else None


def _expiry_text(expires_at: str) -> str:
    """``14:32:05 UTC`` from an ISO-8601 time (the raw text if it does not parse)."""
    try:
        moment = datetime.fromisoformat(expires_at)
    except ValueError:
        return expires_at
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).strftime("%H:%M:%S UTC")


class _Unpaired(Exception):
    """The central server refused the device credentials (heartbeat 401): pair again."""


# ------------------------------------------------------------------------------------------------
# The link
# ------------------------------------------------------------------------------------------------


class CentralLink:
    """Pairs the camera with ``settings.central_url`` and keeps reporting in (see the module docstring).

    Args:
        settings: ``central_url`` (None: the link stays ``unconfigured`` and does nothing),
            ``state_dir`` (credentials file, hardware id), ``central_poll_wait`` and
            ``central_retry_max_delay`` (defaults of the arguments below), ``port``/``host``/
            ``rtsp_url``/``api_url`` (what the camera reports about itself).
        status: ``() -> dict`` giving the heartbeat's ``status`` (blocking calls allowed: it runs in
            a thread); ``hardware_id``, ``version``, ``api_url``, ``rtsp_url``, ``mjpeg_path`` and
            ``webrtc_url`` are filled in when it leaves them out. See :meth:`for_service`.
        events: where ``pairing`` events are published (None: not published).
        poll_wait: ``wait`` of the long poll, s (1..60; default ``settings.central_poll_wait``).
        retry_initial: first retry delay after a failure, s.
        retry_max_delay: cap of the retry delay, s (default ``settings.central_retry_max_delay``).
        default_heartbeat_interval: heartbeat interval until the server names one, s.
        min_heartbeat_interval: shortest interval accepted from the server, s (longest: 3600).
        transport: httpx transport to use (None: the network).

    Use ``await start()`` once, ``await stop()`` at shutdown; :meth:`state` any time (same event loop
    or another thread).
    """

    def __init__(
        self,
        settings: Settings,
        *,
        status: Callable[[], dict[str, Any]] | None = None,
        events: EventLog | None = None,
        poll_wait: float | None = None,
        retry_initial: float = 1.0,
        retry_max_delay: float | None = None,
        default_heartbeat_interval: float = DEFAULT_HEARTBEAT_INTERVAL,
        min_heartbeat_interval: float = 1.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.settings = settings
        self.central_url: str | None = settings.central_url
        self.state_dir = Path(settings.state_dir)
        self._status_fn = status or (lambda: {})
        self._events = events
        self.poll_wait = float(poll_wait if poll_wait is not None else settings.central_poll_wait)
        cap = float(retry_max_delay if retry_max_delay is not None else settings.central_retry_max_delay)
        self._retry_initial = min(float(retry_initial), cap)
        self._retry_cap = cap
        self.default_heartbeat_interval = float(default_heartbeat_interval)
        self.min_heartbeat_interval = float(min_heartbeat_interval)
        self._transport = transport
        self._client: httpx.AsyncClient | None = None
        self._task: asyncio.Task[None] | None = None
        self._creds: DeviceCredentials | None = None
        self._hardware_id: str | None = None
        self._pairing_key: str | None = None
        self._api_url: str | None = None
        self._rtsp_url: str | None = None
        self._info: dict[str, Any] = self._blank("unconfigured" if not self.central_url else "requesting")
        self._published: tuple[Any, ...] | None = None

    @classmethod
    def for_service(cls, settings: Settings, camera: Any, detection: Any, events: EventLog | None, **kwargs: Any) -> "CentralLink":
        """A link whose heartbeats describe ``camera`` and ``detection`` (see :func:`heartbeat_status`).

        ``kwargs`` go to the constructor (timing overrides).
        """
        started = time.monotonic()
        link: CentralLink

        def status() -> dict[str, Any]:
            return heartbeat_status(
                settings, camera, detection, started_at=started, api_url=link._api_url,
                rtsp_url=link._rtsp_url, hardware=link._hardware_id or "",
            )

        link = cls(settings, status=status, events=events, **kwargs)
        return link

    # ------------------------------------------------------------------ public
    def state(self) -> dict[str, Any]:
        """What the link is doing, for ``GET /v1/pairing`` and the web page (never the secret).

        ``{"state": one of STATES, "central_url", "code" (while waiting for the administrator),
        "expires_at" (of the code, ISO-8601 UTC as the server sent it), "device_id", "camera_name",
        "last_error" (latest failure, cleared by a success), "last_heartbeat_at" (ISO-8601 UTC),
        "next_attempt_at" (ISO-8601 UTC of the next planned call, None while a call is under way)}``.
        """
        info = dict(self._info)
        creds = self._creds
        info["central_url"] = self.central_url
        info["device_id"] = creds.device_id if creds else None
        info["camera_name"] = creds.camera_name if creds else None
        return info

    def device_credentials(self) -> tuple[str, str] | None:
        """``(device_id, device_secret)`` while paired with the configured central server, else None.

        The edge API accepts them as HTTP Basic credentials (:func:`pi_camera_service.auth.require_auth`).
        """
        creds = self._creds
        return (creds.device_id, creds.device_secret) if creds else None

    @property
    def running(self) -> bool:
        """True while the link's task runs."""
        return self._task is not None and not self._task.done()

    async def start(self) -> None:
        """Start the link's task (nothing happens when no central URL is configured; idempotent).

        Reads the hardware id and the stored credentials and works out the URLs reported to the
        central server (in a thread: it may resolve a host name).

        Raises:
            OSError: the state directory cannot be written (hardware id).
        """
        if not self.central_url or self.running:
            return
        httpx_log = logging.getLogger("httpx")  # one INFO line per heartbeat and poll would flood the journal
        if httpx_log.level == logging.NOTSET and not logging.getLogger().isEnabledFor(logging.DEBUG):
            httpx_log.setLevel(logging.WARNING)
        if self._client is None:
            self._client = httpx.AsyncClient(
                base_url=self.central_url,
                timeout=REQUEST_TIMEOUT,
                headers={"User-Agent": f"pi-camera-service/{__version__}", "Accept": "application/json"},
                transport=self._transport,
                follow_redirects=False,
            )
        self._hardware_id = await asyncio.to_thread(hardware_id, self.state_dir)
        self._pairing_key = await asyncio.to_thread(pairing_key, self.state_dir)
        self._api_url, self._rtsp_url = await asyncio.to_thread(advertised_urls, self.settings)
        self._creds = await self._stored_credentials()
        if self._creds is not None:
            self._set(state="paired", code=None, expires_at=None)
        self._task = asyncio.create_task(self._run(), name="central-link")

    async def stop(self) -> None:
        """Cancel the task, wait for it, and close the HTTP client (idempotent)."""
        task, self._task = self._task, None
        client, self._client = self._client, None
        await cancel_and_close(task, client)

    async def unpair(self) -> bool:
        """Forget the stored credentials and pair again from scratch (``DELETE /v1/pairing``).

        The central server is not told; an administrator removes the old entry there. Returns True
        when credentials were stored.

        Raises:
            RuntimeError: no central URL is configured.
        """
        if not self.central_url:
            raise RuntimeError("no central server is configured (CAMERA_CENTRAL_URL is unset)")
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        had = await asyncio.to_thread(forget_credentials, self.state_dir)
        had = had or self._creds is not None
        self._creds = None
        log.warning("central server pairing forgotten on request: requesting a new pairing code")
        self._set(**self._blank("requesting"))
        await self.start()
        return had

    # ------------------------------------------------------------------ state
    @staticmethod
    def _blank(state: str) -> dict[str, Any]:
        return {
            "state": state, "code": None, "expires_at": None, "last_error": None,
            "last_heartbeat_at": None, "next_attempt_at": None,
        }

    def _set(self, **changes: Any) -> None:
        """Update the state; publish a ``pairing`` event when state, code or error changed."""
        self._info.update(changes)
        key = (self._info["state"], self._info["code"], self._info["last_error"],
               self._creds.device_id if self._creds else None,
               self._creds.camera_name if self._creds else None)
        if key != self._published:
            self._published = key
            if self._events is not None:
                self._events.publish(EVENT_TYPE, **self.state())

    async def _sleep(self, delay: float) -> None:
        self._set(next_attempt_at=utc_iso(time.time() + delay))
        await asyncio.sleep(delay)
        self._info["next_attempt_at"] = None

    # ------------------------------------------------------------------ main loop
    async def _stored_credentials(self) -> DeviceCredentials | None:
        """The stored credentials when they belong to the configured central server, else None."""
        creds = await asyncio.to_thread(load_credentials, self.state_dir)
        if creds is not None and creds.central_url != self.central_url:
            log.warning(
                "stored central credentials are for %s, not the configured %s: pairing again",
                creds.central_url, self.central_url,
            )
            return None
        return creds

    async def _run(self) -> None:
        creds = self._creds
        while True:
            if creds is None:
                self._creds = None
                creds = await self._pair()
            self._creds = creds
            try:
                await self._heartbeats()
            except _Unpaired:
                self._creds = creds = None
                await asyncio.to_thread(forget_credentials, self.state_dir)
                self._set(**{**self._blank("requesting"), "last_error": "the central server refused the "
                             "credentials (camera removed there or secret invalid): pairing again"})

    # ------------------------------------------------------------------ pairing
    async def _pair(self) -> DeviceCredentials:
        """Request codes and long-poll until an administrator claims one; return the stored credentials."""
        assert self._client is not None
        backoff = Backoff(self._retry_initial, self._retry_cap)
        while True:
            self._set(state="requesting", code=None, expires_at=None)
            body = {
                "hardware_id": self._hardware_id,
                "pairing_key": self._pairing_key,
                "name": self._name(),
                "version": __version__,
                "api_url": self._api_url,
                "rtsp_url": self._rtsp_url,
            }
            try:
                response = await self._client.post("/v1/pairing/requests", json=body)
            except httpx.HTTPError as exc:
                await self._fail_request(backoff, f"central server unreachable: {_describe(exc)}")
                continue
            if response.status_code == 429:
                wait = _retry_after(response)
                delay = min(self._retry_cap, wait) + random.random() if wait is not None else backoff.next_delay()
                self._set(state="error", last_error=f"rate-limited by the central server ({_detail(response)})")
                log.warning("central server rate-limits pairing requests: next try in %.0f s", delay)
                await self._sleep(delay)
                continue
            if response.status_code != 201:
                await self._fail_request(backoff, f"pairing request refused: {_detail(response)}")
                continue
            try:
                issued = _CodeIssued.model_validate(response.json())
            except (ValueError, ValidationError) as exc:
                await self._fail_request(backoff, f"unexpected answer to the pairing request: {_short(exc)}")
                continue
            backoff.reset()
            log.warning(
                "pairing code: %s (expires %s) — enter it on the central server %s with the camera name",
                issued.code, _expiry_text(issued.expires_at), self.central_url,
            )
            self._set(state="waiting_for_admin", code=issued.code, expires_at=issued.expires_at, last_error=None)
            creds = await self._wait_for_admin(issued, backoff)
            if creds is not None:
                return creds

    async def _fail_request(self, backoff: Backoff, message: str) -> None:
        delay = backoff.next_delay()
        log.warning("%s; next try in %.1f s", message, delay)
        self._set(state="error", last_error=message)
        await self._sleep(delay)

    async def _wait_for_admin(self, issued: _CodeIssued, backoff: Backoff) -> DeviceCredentials | None:
        """Long-poll one pairing request; credentials once paired, None when a new code is needed."""
        assert self._client is not None
        path = f"/v1/pairing/requests/{quote(issued.request_id, safe='')}"
        headers = {"Authorization": f"Bearer {issued.poll_token}"}
        wait = max(1, min(60, round(self.poll_wait)))
        timeout = httpx.Timeout(REQUEST_TIMEOUT, read=wait + REQUEST_TIMEOUT)
        while True:
            began = time.monotonic()
            try:
                response = await self._client.get(path, params={"wait": wait}, headers=headers, timeout=timeout)
            except httpx.HTTPError as exc:
                await self._fail_poll(backoff, f"central server unreachable while waiting for the code: {_describe(exc)}")
                continue
            if response.status_code in (401, 404, 410):
                log.info("pairing code %s is no longer valid (%s): requesting a new one", issued.code, _detail(response))
                return None
            if response.status_code != 200:
                await self._fail_poll(backoff, f"pairing poll failed: {_detail(response)}")
                continue
            try:
                answer = _PollAnswer.model_validate(response.json())
            except (ValueError, ValidationError) as exc:
                await self._fail_poll(backoff, f"unexpected answer to the pairing poll: {_short(exc)}")
                continue
            if answer.status == "paired" and answer.device_id and answer.device_secret:
                return await self._paired(answer)
            if answer.status != "pending":
                await self._fail_poll(backoff, f"unexpected pairing status {answer.status[:40]!r}")
                continue
            backoff.reset()
            if self._info["last_error"] is not None:
                self._set(last_error=None)
            if answer.expires_at and answer.expires_at != self._info["expires_at"]:
                self._set(expires_at=answer.expires_at)
            # "pending" means poll again at once; a server that does not hold the request is not hammered
            elapsed = time.monotonic() - began
            if elapsed < 1.0:
                await asyncio.sleep(1.0 - elapsed)

    async def _fail_poll(self, backoff: Backoff, message: str) -> None:
        """A failed poll keeps the code (it stays valid on the server): note the error, wait, retry."""
        delay = backoff.next_delay()
        log.warning("%s; next try in %.1f s", message, delay)
        self._set(last_error=message)
        await self._sleep(delay)

    async def _paired(self, answer: _PollAnswer) -> DeviceCredentials:
        assert answer.device_id and answer.device_secret and self.central_url
        creds = DeviceCredentials(
            central_url=self.central_url,
            device_id=answer.device_id,
            device_secret=answer.device_secret,
            camera_name=answer.camera_name or self._name(),
            paired_at=utc_iso(),
        )
        try:
            path = await asyncio.to_thread(store_credentials, self.state_dir, creds)
        except OSError as exc:  # keep going on the credentials in memory; the next start pairs again
            log.error("paired, but cannot store the credentials in %s: %s", credentials_path(self.state_dir), exc)
        else:
            log.warning(
                "paired with the central server %s as %r (device %s); credentials stored in %s (mode 0600)",
                self.central_url, creds.camera_name, creds.device_id, path,
            )
        self._creds = creds
        self._set(state="paired", code=None, expires_at=None, last_error=None)
        return creds

    def _name(self) -> str:
        """The name offered to the administrator: the mDNS instance name (``CAMERA_MDNS_NAME``, default
        ``<hostname>-<6 hardware id characters>``, :func:`pi_camera_service.discovery.default_instance_name`)."""
        return self.settings.mdns_name or default_instance_name(self._hardware_id or "")

    # ------------------------------------------------------------------ heartbeats
    async def _heartbeats(self) -> None:
        """Report in until the central server refuses the credentials (raises :class:`_Unpaired`)."""
        assert self._client is not None and self._creds is not None
        backoff = Backoff(self._retry_initial, self._retry_cap)
        interval = self.default_heartbeat_interval
        if self._info["state"] not in ("paired", "disabled"):
            self._set(state="paired", code=None, expires_at=None)
        while True:
            creds = self._creds
            status = await self._status()
            try:
                response = await self._client.post(
                    "/v1/devices/heartbeat", json={"status": status, "viewer_key": viewer_key(creds.device_secret)},
                    auth=(creds.device_id, creds.device_secret),
                )
            except httpx.HTTPError as exc:
                await self._fail_heartbeat(backoff, f"central server unreachable: {_describe(exc)}")
                continue
            if response.status_code == 401:
                log.error(
                    "the central server %s refused this camera's credentials (device %s, %s): it was "
                    "removed there or its secret is no longer valid. Deleting %s and pairing again",
                    self.central_url, creds.device_id, _detail(response), credentials_path(self.state_dir),
                )
                raise _Unpaired
            if response.status_code == 403:
                message = f"camera disabled on the central server ({_detail(response)})"
                if _error_code(response) not in (None, "camera_disabled"):
                    message = f"heartbeat forbidden: {_detail(response)}"
                if self._info["state"] != "disabled":
                    log.warning("%s: credentials kept, retrying until it is enabled again", message)
                self._set(state="disabled", last_error=message)
                await self._sleep(backoff.next_delay())
                continue
            if response.status_code != 200:
                await self._fail_heartbeat(backoff, f"heartbeat failed: {_detail(response)}")
                continue
            try:
                answer = _HeartbeatAnswer.model_validate(response.json())
            except (ValueError, ValidationError) as exc:
                await self._fail_heartbeat(backoff, f"unexpected answer to the heartbeat: {_short(exc)}")
                continue
            backoff.reset()
            await self._accept(answer)
            if answer.heartbeat_interval_s is not None and answer.heartbeat_interval_s > 0:
                interval = max(self.min_heartbeat_interval, min(3600.0, answer.heartbeat_interval_s))
            if self._info["state"] == "disabled":
                log.warning("camera enabled again on the central server %s", self.central_url)
            self._set(state="paired", last_error=None, last_heartbeat_at=utc_iso())
            await self._sleep(interval)

    async def _status(self) -> dict[str, Any]:
        try:
            status = dict(await asyncio.to_thread(self._status_fn))
        except Exception as exc:  # noqa: BLE001 - report in even when the camera cannot be read
            log.warning("cannot gather the camera status for the heartbeat: %s", exc)
            status = {}
        status.setdefault("version", __version__)
        status.setdefault("hardware_id", self._hardware_id)
        status.setdefault("api_url", self._api_url)
        status.setdefault("rtsp_url", self._rtsp_url)
        status.setdefault("mjpeg_path", MJPEG_PATH)
        status.setdefault("webrtc_url", self.settings.webrtc_url or None)
        return status

    async def _accept(self, answer: _HeartbeatAnswer) -> None:
        """Apply a heartbeat answer: a rotated secret or a new camera name is stored."""
        creds = self._creds
        assert creds is not None
        updated = creds
        if answer.device_secret and answer.device_secret != creds.device_secret:
            updated = replace(updated, device_secret=answer.device_secret)
        if answer.camera_name and answer.camera_name != creds.camera_name:
            updated = replace(updated, camera_name=answer.camera_name)
        if updated is creds:
            return
        self._creds = updated  # used from the next call on, even if storing fails
        try:
            await asyncio.to_thread(store_credentials, self.state_dir, updated)
        except OSError as exc:
            log.error("cannot store the updated central credentials in %s: %s", credentials_path(self.state_dir), exc)
        if updated.device_secret != creds.device_secret:
            log.warning("the central server rotated this camera's secret: new secret stored")
        if updated.camera_name != creds.camera_name:
            log.info("camera name on the central server is now %r", updated.camera_name)

    async def _fail_heartbeat(self, backoff: Backoff, message: str) -> None:
        delay = backoff.next_delay()
        log.warning("%s; next heartbeat in %.1f s", message, delay)
        self._set(last_error=message)
        await self._sleep(delay)


def _describe(exc: httpx.HTTPError) -> str:
    """``ConnectError: [Errno 111] Connection refused`` (type and message, one line)."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _short(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
