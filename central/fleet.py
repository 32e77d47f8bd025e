"""The fleet view: each paired camera's state from what it reported in its last heartbeat.

Cameras report in (``POST /v1/devices/heartbeat``, every ``heartbeat_interval`` s) rather than being
polled, so a camera behind NAT or a firewall needs no inbound port. A camera is *online* while its
last heartbeat is younger than ``offline_after`` (3 missed heartbeats by default).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from central.models import Camera, utcnow
from pcs_common.protocol import HeartbeatStatus

STATUS_FIELDS: tuple[str, ...] = tuple(HeartbeatStatus.model_fields)
"""Fields a heartbeat's ``status`` may carry (:class:`pcs_common.protocol.HeartbeatStatus`); others are dropped."""


def clean_status(status: dict[str, Any]) -> dict[str, Any]:
    """The known fields of a heartbeat ``status`` that have the right types, strings cut at 255
    (:meth:`pcs_common.protocol.HeartbeatStatus.tolerant`); nulls are left out."""
    return HeartbeatStatus.tolerant(status).report()


def camera_state(camera: Camera, offline_after_s: int, now: dt.datetime | None = None) -> str:
    """``disabled`` | ``awaiting_camera`` (paired, credentials not yet used) | ``online`` | ``offline``."""
    if camera.disabled:
        return "disabled"
    if camera.claimed_at is None:
        return "awaiting_camera"
    now = now or utcnow()
    if camera.last_seen_at is not None and (now - camera.last_seen_at).total_seconds() <= offline_after_s:
        return "online"
    return "offline"


def camera_view(camera: Camera, offline_after_s: int, now: dt.datetime | None = None) -> dict[str, Any]:
    """A camera as the API and dashboard show it (never its secret).

    Keys: ``id``, ``name``, ``hardware_id``, ``state``, ``online``, ``disabled``, ``paired_at``,
    ``last_seen_at``, ``streaming``, ``detection_fps``, ``temperature_c`` (°C), ``version``, ``api_url``,
    ``rtsp_url``, ``webrtc_url``, ``mjpeg_url``, ``source`` (what the camera captures, e.g. ``picamera2:0``),
    ``width`` / ``height`` (main stream, px), ``camera_model`` (sensor, e.g. ``imx708_wide``; None for
    software sources), ``day_night`` (``day`` | ``night`` | None), ``rotation_pending``, ``status``
    (last report, :class:`pcs_common.protocol.HeartbeatStatus` fields).
    """
    status = camera.status or {}
    state = camera_state(camera, offline_after_s, now)
    api_url = status.get("api_url") or camera.api_url
    mjpeg = status.get("mjpeg_path")
    return {
        "id": camera.id,
        "name": camera.name,
        "hardware_id": camera.hardware_id,
        "state": state,
        "online": state == "online",
        "disabled": camera.disabled,
        "paired_at": camera.paired_at,
        "last_seen_at": camera.last_seen_at,
        "last_address": camera.last_address,
        "streaming": status.get("streaming"),
        "detection_fps": status.get("detection_fps"),
        "temperature_c": status.get("temperature_c"),
        "version": status.get("version") or camera.version,
        "api_url": api_url,
        "rtsp_url": status.get("rtsp_url") or camera.rtsp_url,
        "webrtc_url": status.get("webrtc_url"),
        "mjpeg_url": f"{api_url.rstrip('/')}{mjpeg}" if api_url and mjpeg else None,
        "source": status.get("source"),
        "width": status.get("width"),
        "height": status.get("height"),
        "camera_model": status.get("camera_model"),
        "day_night": status.get("day_night"),
        "rotation_pending": camera.rotate_requested or camera.retiring_secret_hash is not None,
        "status": status,
    }
