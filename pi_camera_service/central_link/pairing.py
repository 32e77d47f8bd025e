"""Pairing client: ask the central server for a one-time code, then long-poll until an administrator
enters it (``POST /v1/pairing/requests``, ``GET /v1/pairing/requests/{id}?wait=N``; the models are
:mod:`pcs_common.protocol`'s). Part of :class:`~pi_camera_service.central_link.CentralLink`."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from datetime import datetime, timezone

import httpx
from pydantic import ValidationError

from pcs_common import protocol
from pcs_common.backoff import Backoff
from pcs_common.protocol import PairingCode, PairingPollAnswer, PairingRequest
from pi_camera_service import __version__
from pi_camera_service.central_link.credentials import DeviceCredentials, credentials_path, store_credentials, utc_iso
from pi_camera_service.central_link.replies import REQUEST_TIMEOUT, describe, detail, retry_after, short
from pi_camera_service.discovery import default_instance_name

log = logging.getLogger("pi_camera_service.central_link")  # one logger for the link (journal lines unchanged)


def _expiry_text(expires_at: str) -> str:
    """``14:32:05 UTC`` from an ISO-8601 time (the raw text if it does not parse)."""
    try:
        moment = datetime.fromisoformat(expires_at)
    except ValueError:
        return expires_at
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).strftime("%H:%M:%S UTC")


class PairingClient:
    """The pairing half of :class:`~pi_camera_service.central_link.CentralLink` (a mixin over its state:
    ``_client``, ``_hardware_id``, ``_pairing_key``, ``_set``, ``_sleep``...)."""

    # ------------------------------------------------------------------ pairing
    async def _pair(self) -> DeviceCredentials:
        """Request codes and long-poll until an administrator claims one; return the stored credentials."""
        assert self._client is not None
        backoff = Backoff(self._retry_initial, self._retry_cap)
        while True:
            self._set(state="requesting", code=None, expires_at=None)
            try:
                body = PairingRequest(
                    hardware_id=self._hardware_id, pairing_key=self._pairing_key, name=self._name()[:100],
                    version=__version__, api_url=self._api_url, rtsp_url=self._rtsp_url,
                ).model_dump(mode="json")
            except ValidationError as exc:  # e.g. CAMERA_API_URL the protocol does not allow
                await self._fail_request(backoff, f"cannot describe this camera to the central server: {short(exc)}")
                continue
            try:
                response = await self._client.post(protocol.PAIRING_REQUESTS_PATH, json=body)
            except httpx.HTTPError as exc:
                await self._fail_request(backoff, f"central server unreachable: {describe(exc)}")
                continue
            if response.status_code == 429:
                wait = retry_after(response)
                delay = min(self._retry_cap, wait) + random.random() if wait is not None else backoff.next_delay()
                log.warning("central server rate-limits pairing requests: next try in %.0f s", delay)
                await self._sleep(delay, state="error",
                                  last_error=f"rate-limited by the central server ({detail(response)})")
                continue
            if response.status_code != 201:
                await self._fail_request(backoff, f"pairing request refused: {detail(response)}")
                continue
            try:
                issued = PairingCode.model_validate(response.json())
            except (ValueError, ValidationError) as exc:
                await self._fail_request(backoff, f"unexpected answer to the pairing request: {short(exc)}")
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
        await self._sleep(delay, state="error", last_error=message)

    async def _wait_for_admin(self, issued: PairingCode, backoff: Backoff) -> DeviceCredentials | None:
        """Long-poll one pairing request; credentials once paired, None when a new code is needed."""
        assert self._client is not None
        path = protocol.pairing_request_path(issued.request_id)
        headers = {"Authorization": f"{protocol.POLL_TOKEN_SCHEME} {issued.poll_token}"}
        wait = max(1, min(protocol.MAX_POLL_WAIT_S, round(self.poll_wait)))
        timeout = httpx.Timeout(REQUEST_TIMEOUT, read=wait + REQUEST_TIMEOUT)
        while True:
            began = time.monotonic()
            try:
                response = await self._client.get(path, params={"wait": wait}, headers=headers, timeout=timeout)
            except httpx.HTTPError as exc:
                await self._fail_poll(backoff, f"central server unreachable while waiting for the code: {describe(exc)}")
                continue
            if response.status_code in (401, 404, 410):
                log.info("pairing code %s is no longer valid (%s): requesting a new one", issued.code, detail(response))
                return None
            if response.status_code != 200:
                await self._fail_poll(backoff, f"pairing poll failed: {detail(response)}")
                continue
            try:
                answer = PairingPollAnswer.model_validate(response.json())
            except (ValueError, ValidationError) as exc:
                await self._fail_poll(backoff, f"unexpected answer to the pairing poll: {short(exc)}")
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
        await self._sleep(delay, last_error=message)

    async def _paired(self, answer: PairingPollAnswer) -> DeviceCredentials:
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
