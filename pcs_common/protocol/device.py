"""Pairing and heartbeat models of the camera <-> central server protocol (:mod:`pcs_common.protocol`)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import ConfigDict, Field, ValidationError

from pcs_common.protocol.fields import WireModel
from pcs_common.protocol.limits import MAX_BOX_PX, MAX_STATUS_TEXT

# --- pairing --------------------------------------------------------------------------------------------


class PairingRequest(WireModel):
    """``POST /v1/pairing/requests``: what an unpaired camera tells about itself when it asks for a code."""

    hardware_id: str = Field(min_length=8, max_length=64, pattern=r"^[A-Za-z0-9_-]+$",
                             description="stable id of the camera's hardware (the Pi's serial, hashed)")
    pairing_key: str | None = Field(
        None, min_length=43, max_length=128, pattern=r"^[A-Za-z0-9_-]+$",
        description="the camera's secret pairing key (base64url, >= 256 bits); binds the code to this camera: "
                    "only a request with the same key can replace it (docs/security.md#pairing)",
    )
    name: str | None = Field(None, max_length=100, description="name offered to the administrator (mDNS name)")
    version: str | None = Field(None, max_length=32, description="software version of the camera")
    api_url: str | None = Field(None, max_length=255, pattern=r"^https?://[^\s\x00-\x1f\x7f]+$")
    rtsp_url: str | None = Field(None, max_length=255, pattern=r"^rtsps?://[^\s\x00-\x1f\x7f]+$")


class PairingCode(WireModel):
    """201 answer to :class:`PairingRequest`: the code to show and how to poll for the result."""

    request_id: str = Field(min_length=1, max_length=200)
    code: str = Field(min_length=1, max_length=64, description="8 characters the administrator types")
    expires_at: str = Field(description="ISO-8601 UTC end of the code's validity")
    poll_token: str = Field(min_length=1, max_length=200, description="send as Authorization: Bearer <token>")
    poll_url: str | None = Field(None, description="path of the long poll")


class PairingPollAnswer(WireModel):
    """200 answer to the long poll: ``pending`` (poll again) or ``paired`` with the device credentials."""

    status: Literal["pending", "paired"]
    expires_at: str | None = Field(None, description="while pending: ISO-8601 UTC end of the code's validity")
    device_id: str | None = Field(None, min_length=1, max_length=200)
    device_secret: str | None = Field(None, min_length=1, max_length=200)
    camera_name: str | None = Field(None, max_length=100)


# --- heartbeat ------------------------------------------------------------------------------------------


DayNight = Literal["day", "night"]


class HeartbeatStatus(WireModel):
    """The ``status`` of a heartbeat: what the fleet view shows of a camera. Everything may be null.

    Types are strict (``"5"`` is no number, ``true`` no number); the central server keeps the valid
    fields of a report and drops the others (:meth:`tolerant`), texts cut at :data:`MAX_STATUS_TEXT`.
    """

    model_config = ConfigDict(extra="ignore", strict=True)

    version: str | None = Field(None, description="software version")
    hardware_id: str | None = None
    streaming: bool | None = Field(None, description="the RTSP publisher is streaming")
    stream_state: str | None = Field(None, description="stopped, connecting, streaming or reconnecting")
    detection_fps: float | None = Field(None, allow_inf_nan=False, description="analysed frames/s; null: detection off")
    temperature_c: float | None = Field(None, allow_inf_nan=False, description="sensor temperature, °C "
                                        "(libcamera SensorTemperature)")
    api_url: str | None = None
    rtsp_url: str | None = Field(None, description="the URL viewers use (no credentials)")
    mjpeg_path: str | None = Field(None, description="path of the MJPEG live view on api_url")
    webrtc_url: str | None = None
    uptime_s: float | None = Field(None, allow_inf_nan=False, description="s since the service started")
    source: str | None = Field(None, description="what CAMERA_SOURCE resolved to, e.g. picamera2:0")
    width: int | None = Field(None, ge=1, le=MAX_BOX_PX, description="main stream width, px")
    height: int | None = Field(None, ge=1, le=MAX_BOX_PX, description="main stream height, px")
    camera_model: str | None = Field(None, description="sensor model (libcamera camera property Model, e.g. "
                                     "imx708_wide); null for software sources")
    day_night: DayNight | None = Field(None, description="day/night mode in force (null: no day/night switching)")

    @classmethod
    def tolerant(cls, report: Any) -> "HeartbeatStatus":
        """The valid known fields of ``report`` (unknown keys and values of the wrong type are dropped,
        texts cut at :data:`MAX_STATUS_TEXT`); never raises."""
        if not isinstance(report, dict):
            return cls()
        kept: dict[str, Any] = {}
        for name in cls.model_fields:
            value = report.get(name)
            if value is None:
                continue
            if isinstance(value, str):
                value = value[:MAX_STATUS_TEXT]
            try:
                cls.model_validate({name: value})
            except ValidationError:
                continue
            kept[name] = value
        return cls.model_validate(kept)

    def report(self) -> dict[str, Any]:
        """The fields that are set (not null), as JSON values: what central stores as the camera's status."""
        return self.model_dump(mode="json", exclude_none=True)


class Heartbeat(WireModel):
    """``POST /v1/devices/heartbeat`` body: the camera's status and the key for its viewer tickets."""

    status: dict[str, Any] = Field(default_factory=dict, description="a HeartbeatStatus report")
    viewer_key: str | None = Field(None, pattern=r"^[A-Za-z0-9_-]{43}$",
                                   description="key for signing the camera's MJPEG viewer tickets "
                                               "(pcs_common.viewer_ticket); the central server stores it encrypted")


class HeartbeatAnswer(WireModel):
    """200 answer to a heartbeat; ``device_secret`` only when the server rotated the secret."""

    camera_name: str | None = Field(None, max_length=100)
    device_id: str | None = Field(None, max_length=200)
    heartbeat_interval_s: int | float | None = Field(None, description="s until the next heartbeat")
    device_secret: str | None = Field(None, min_length=1, max_length=200)
