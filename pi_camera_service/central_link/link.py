"""The link itself: one asyncio task that pairs (:class:`PairingClient`) and then reports in
(:class:`HeartbeatClient`), with the state shown by ``GET /v1/pairing`` and the web page."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from pi_camera_service import __version__
from pi_camera_service.central_link.addresses import advertised_urls, heartbeat_status
from pi_camera_service.central_link.credentials import (
    DeviceCredentials,
    forget_credentials,
    load_credentials,
    pairing_key,
    utc_iso,
)
from pi_camera_service.central_link.heartbeat import HeartbeatClient, _Unpaired
from pi_camera_service.central_link.replies import REQUEST_TIMEOUT, cancel_and_close
from pi_camera_service.central_link.pairing import PairingClient
from pi_camera_service.config import Settings
from pi_camera_service.events import EventLog
from pi_camera_service.identity import hardware_id

if TYPE_CHECKING:
    from pi_camera_service.controls.manager import CameraControls
    from pi_camera_service.sources.base import Camera

log = logging.getLogger("pi_camera_service.central_link")  # one logger for the link (journal lines unchanged)

EVENT_TYPE = "pairing"
"""Type of the :class:`~pi_camera_service.events.EventLog` events published on state changes."""

DEFAULT_HEARTBEAT_INTERVAL = 30.0
"""Heartbeat interval until the central server names one, s."""

STATES = ("unconfigured", "requesting", "waiting_for_admin", "paired", "disabled", "error")
"""Values of ``state()["state"]``."""


class CentralLink(PairingClient, HeartbeatClient):
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
        self._status_problem: str | None = None  # last status problem logged (HeartbeatClient._status)

    @classmethod
    def for_service(cls, settings: Settings, camera: Camera, detection: Any, events: EventLog | None,
                    controls: CameraControls | None = None, **kwargs: Any) -> "CentralLink":
        """A link whose heartbeats describe ``camera``, ``detection`` and the day/night mode of
        ``controls`` (see :func:`heartbeat_status`).

        ``kwargs`` go to the constructor (timing overrides).
        """
        started = time.monotonic()
        link: CentralLink

        def status() -> dict[str, Any]:
            return heartbeat_status(
                settings, camera, detection, started_at=started, api_url=link._api_url,
                rtsp_url=link._rtsp_url, hardware=link._hardware_id or "", controls=controls,
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

    async def _sleep(self, delay: float, **changes: Any) -> None:
        """Wait ``delay`` s before the next call; ``changes`` (e.g. the error that caused the wait) are
        published in the same state update as ``next_attempt_at``, so no reader sees one without the other."""
        self._set(**changes, next_attempt_at=utc_iso(time.time() + delay))
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
