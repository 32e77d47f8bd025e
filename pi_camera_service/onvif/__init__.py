"""ONVIF Profile S device (plus Imaging and PullPoint events) served by the camera service (docs/onvif.md).

Modules: :mod:`.soap` (safe parsing, envelopes, faults), :mod:`.security` (credentials, WS-Security
UsernameToken), :mod:`.httpauth` (Digest/Basic for the snapshot URI), :mod:`.service` (the operation
table and the ``/onvif/...`` router), :mod:`.imaging` (ONVIF imaging <-> the control table),
:mod:`.events` ("face detected" PullPoint subscriptions), :mod:`.discovery` (WS-Discovery).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

log = logging.getLogger(__name__)


class OnvifDevice:
    """Starts and stops the ONVIF parts inside the service's lifespan.

    :meth:`start` puts an :class:`~pi_camera_service.onvif.service.OnvifContext` on ``app.state.onvif``
    (the router reads it), registers the face-event listener and starts WS-Discovery in a background
    task that follows address changes every :attr:`refresh_interval` s and retries after socket errors
    (logged, never fatal). :meth:`stop` sends Bye.
    """

    def __init__(self, app: Any, settings: Any, camera: Any, controls: Any, detection: Any, hardware_id: str) -> None:
        self.app, self.settings, self.camera = app, settings, camera
        self.controls, self.detection, self.hardware_id = controls, detection, hardware_id
        self.responder: Any = None
        self._task: asyncio.Task | None = None
        from pi_camera_service.discovery import REFRESH_INTERVAL

        #: s between checks of the interface addresses (a DHCP lease after boot, roaming), as mDNS does
        self.refresh_interval = REFRESH_INTERVAL

    async def start(self) -> None:
        """Build the context and start discovery; a no-op when ``CAMERA_ONVIF_ENABLED=false``.

        Raises:
            ConfigError: the ONVIF password file cannot be created or read.
        """
        from fastapi.concurrency import run_in_threadpool

        from pi_camera_service.discovery import default_instance_name
        from pi_camera_service.onvif.events import FaceEvents
        from pi_camera_service.onvif.security import load_onvif_credentials
        from pi_camera_service.onvif.service import OnvifContext

        self.app.state.onvif = None
        if not self.settings.onvif_enabled:
            log.info("ONVIF disabled (CAMERA_ONVIF_ENABLED=false)")
            return
        credentials = await run_in_threadpool(load_onvif_credentials, self.settings)
        name = self.settings.mdns_name or default_instance_name(self.hardware_id)
        events = FaceEvents(asyncio.get_running_loop())
        from pi_camera_service.auth import login_limiter_of

        ctx = OnvifContext(self.settings, self.camera, self.controls, credentials, self.hardware_id, name, events,
                           login_limiter=login_limiter_of(self.app))
        if self.detection is not None:
            self.detection.add_listener(events.on_detection)
        self.app.state.onvif = ctx
        log.info("ONVIF device service at http://<camera>:%d/onvif/device_service (user %r)",
                 self.settings.port, credentials.username)
        if self.settings.onvif_discovery_enabled:
            await self._start_discovery(ctx)

    async def _start_discovery(self, ctx: Any) -> None:
        from pi_camera_service.onvif.discovery import WsDiscoveryResponder, discovery_interfaces, endpoint_for
        from pi_camera_service.onvif.service import DEVICE_PATH

        port = self.settings.port
        responder: Any = None

        def xaddrs() -> list[str]:
            hosts = [self.settings.advertised_host] if self.settings.advertised_host else responder.interfaces
            return [f"http://{h}:{port}{DEVICE_PATH}" for h in hosts]

        async def run() -> None:
            nonlocal responder
            await self._http_listening()  # an NVR answering Hello at once must find the port open
            failures = 0
            while True:
                interfaces = await asyncio.to_thread(discovery_interfaces, self.settings)
                try:
                    if responder is None:
                        candidate = WsDiscoveryResponder(endpoint_for(self.hardware_id), xaddrs, ctx.scopes,
                                                         interfaces, self.settings.onvif_discovery_port)
                        responder = candidate
                        try:
                            await candidate.start()
                        except OSError:
                            responder = None
                            raise
                        self.responder = candidate
                    else:
                        responder.set_interfaces(interfaces)
                    failures = 0
                except OSError as exc:
                    failures += 1
                    log.log(logging.WARNING if failures == 1 else logging.DEBUG,
                            "WS-Discovery unavailable (%s); retrying every %.0f s, NVRs can still add the camera "
                            "by address", exc, self.refresh_interval)
                await asyncio.sleep(self.refresh_interval)

        self._task = asyncio.create_task(run(), name="ws-discovery")

    async def _http_listening(self, timeout: float = 15.0) -> None:
        """Return once the HTTP port accepts connections (uvicorn binds it after the lifespan started),
        or after ``timeout`` s."""
        from pi_camera_service.discovery import _specific_ipv4

        host = _specific_ipv4(self.settings.host) or "127.0.0.1"
        deadline = asyncio.get_running_loop().time() + timeout
        while asyncio.get_running_loop().time() < deadline:
            try:
                _, writer = await asyncio.wait_for(asyncio.open_connection(host, self.settings.port), 1.0)
            except (OSError, asyncio.TimeoutError):
                await asyncio.sleep(0.1)
                continue
            writer.close()
            return

    async def stop(self) -> None:
        """Send WS-Discovery Bye and close its socket; never raises."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        if self.responder is not None:
            try:
                self.responder.stop()
            except Exception as exc:  # noqa: BLE001 - shutdown goes on
                log.debug("WS-Discovery Bye failed: %s", exc)
            self.responder = None
