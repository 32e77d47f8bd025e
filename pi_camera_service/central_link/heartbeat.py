"""Heartbeat client: a paired camera reports in (``POST /v1/devices/heartbeat`` with HTTP Basic device
credentials, :class:`pcs_common.protocol.Heartbeat`), applies the answer (rotated secret, new name,
interval) and notices being removed (401) or disabled (403). Part of
:class:`~pi_camera_service.central_link.CentralLink`."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace

import httpx
from pydantic import ValidationError

from pcs_common import protocol
from pcs_common.backoff import Backoff
from pcs_common.protocol import Heartbeat, HeartbeatAnswer, HeartbeatStatus
from pcs_common.viewer_ticket import viewer_key
from pi_camera_service import __version__
from pi_camera_service.central_link.credentials import credentials_path, store_credentials, utc_iso
from pi_camera_service.central_link.replies import describe, detail, error_code, short

log = logging.getLogger("pi_camera_service.central_link")  # one logger for the link (journal lines unchanged)


class _Unpaired(Exception):
    """The central server refused the device credentials (heartbeat 401): pair again."""


class HeartbeatClient:
    """The heartbeat half of :class:`~pi_camera_service.central_link.CentralLink` (a mixin over its state)."""

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
            body = Heartbeat(status=status.model_dump(mode="json"), viewer_key=viewer_key(creds.device_secret))
            try:
                response = await self._client.post(
                    protocol.HEARTBEAT_PATH, json=body.model_dump(mode="json"),
                    auth=(creds.device_id, creds.device_secret),
                )
            except httpx.HTTPError as exc:
                await self._fail_heartbeat(backoff, f"central server unreachable: {describe(exc)}")
                continue
            if response.status_code == 401:
                log.error(
                    "the central server %s refused this camera's credentials (device %s, %s): it was "
                    "removed there or its secret is no longer valid. Deleting %s and pairing again",
                    self.central_url, creds.device_id, detail(response), credentials_path(self.state_dir),
                )
                raise _Unpaired
            if response.status_code == 403:
                message = f"camera disabled on the central server ({detail(response)})"
                if error_code(response) not in (None, "camera_disabled"):
                    message = f"heartbeat forbidden: {detail(response)}"
                if self._info["state"] != "disabled":
                    log.warning("%s: credentials kept, retrying until it is enabled again", message)
                await self._sleep(backoff.next_delay(), state="disabled", last_error=message)
                continue
            if response.status_code != 200:
                await self._fail_heartbeat(backoff, f"heartbeat failed: {detail(response)}")
                continue
            try:
                answer = HeartbeatAnswer.model_validate(response.json())
            except (ValueError, ValidationError) as exc:
                await self._fail_heartbeat(backoff, f"unexpected answer to the heartbeat: {short(exc)}")
                continue
            backoff.reset()
            await self._accept(answer)
            if answer.heartbeat_interval_s is not None and answer.heartbeat_interval_s > 0:
                interval = max(self.min_heartbeat_interval, min(3600.0, answer.heartbeat_interval_s))
            if self._info["state"] == "disabled":
                log.warning("camera enabled again on the central server %s", self.central_url)
            await self._sleep(interval, state="paired", last_error=None, last_heartbeat_at=utc_iso())

    async def _status(self) -> HeartbeatStatus:
        """The status to report (:class:`~pcs_common.protocol.HeartbeatStatus`): the status function's
        fields, the link's own ones filled in. A field the protocol does not know, or of the wrong type,
        is logged and left out (the heartbeat still goes)."""
        try:
            status = dict(await asyncio.to_thread(self._status_fn))
        except Exception as exc:  # noqa: BLE001 - report in even when the camera cannot be read
            log.warning("cannot gather the camera status for the heartbeat: %s", exc)
            status = {}
        status.setdefault("version", __version__)
        status.setdefault("hardware_id", self._hardware_id)
        status.setdefault("api_url", self._api_url)
        status.setdefault("rtsp_url", self._rtsp_url)
        status.setdefault("mjpeg_path", protocol.MJPEG_PATH)
        status.setdefault("webrtc_url", self.settings.webrtc_url or None)
        unknown = sorted(set(status) - set(HeartbeatStatus.model_fields))
        try:
            if unknown:
                raise ValueError(f"fields unknown to the protocol: {', '.join(unknown)}")
            return HeartbeatStatus.model_validate(status)
        except (ValueError, ValidationError) as exc:
            problem = short(exc)
            if problem != self._status_problem:  # logged once per kind of problem, not at every heartbeat
                self._status_problem = problem
                log.warning("heartbeat status left out what the protocol does not allow: %s", problem)
            return HeartbeatStatus.tolerant(status)

    async def _accept(self, answer: HeartbeatAnswer) -> None:
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
        await self._sleep(delay, last_error=message)
