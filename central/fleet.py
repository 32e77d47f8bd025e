"""The fleet view: each paired camera's state from what it reported in its last heartbeat.

Cameras report in (``POST /v1/devices/heartbeat``, every ``heartbeat_interval`` s) rather than being
polled, so a camera behind NAT or a firewall needs no inbound port. A camera is *online* while its
last heartbeat is younger than ``offline_after`` (3 missed heartbeats by default).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from central.models import Camera, utcnow

# Fields a heartbeat's ``status`` may carry, with their types; anything else is dropped.
STATUS_FIELDS: dict[str, tuple[type, ...]] = {
    "version": (str,),
    "hardware_id": (str,),
    "streaming": (bool,),
    "stream_state": (str,),
    "detection_fps": (int, float),
    "temperature_c": (int, float),
    "api_url": (str,),
    "rtsp_url": (str,),
    "mjpeg_path": (str,),
    "webrtc_url": (str,),
    "uptime_s": (int, float),
    "camera_model": (str,),
    "day_night": (str,),
}


def clean_status(status: dict[str, Any]) -> dict[str, Any]:
    """Keep the known fields of a heartbeat ``status`` with the right types (strings cut at 255)."""
    clean: dict[str, Any] = {}
    for key, types in STATUS_FIELDS.items():
        value = status.get(key)
        if value is None or isinstance(value, bool) and bool not in types:
            continue
        if isinstance(value, types):
            clean[key] = value[:255] if isinstance(value, str) else value
    return clean


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
    ``rtsp_url``, ``webrtc_url``, ``mjpeg_url``, ``rotation_pending``, ``status`` (last report).
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
        "rotation_pending": camera.rotate_requested or camera.retiring_secret_hash is not None,
        "status": status,
    }
