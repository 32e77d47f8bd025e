"""The camera <-> central server protocol, defined once: paths, headers, limits and the pydantic models
of every request and answer. The camera (:mod:`pi_camera_service.central_link`,
:mod:`pi_camera_service.outbox`) builds its requests and validates the answers with them; the central
server (:mod:`central.api.device_routes`, :mod:`central.api.ingest_routes`, :mod:`central.ingest`,
:mod:`central.fleet`) validates the requests and builds the answers with them. A field exists on the
wire exactly when it is declared here (``tests/contract/`` runs the camera's real clients against the
real central server to prove it).

Exchanges (all JSON unless said otherwise; the camera starts every one, so it needs no inbound port):

==================================  ======================  =============================================
request                             body                    answer
==================================  ======================  =============================================
``POST /v1/pairing/requests``       :class:`PairingRequest`  201 :class:`PairingCode`
``GET /v1/pairing/requests/{id}``   ``?wait=`` s (<= 60),    200 :class:`PairingPollAnswer`; 410 expired or
                                    ``Authorization: Bearer  collected, 404 unknown, 401 wrong token
                                    <poll_token>``
``POST /v1/devices/heartbeat``      :class:`Heartbeat`       200 :class:`HeartbeatAnswer`; 401
                                                             ``unknown_device``, 403 ``camera_disabled``
``POST /v1/ingest/events``          :class:`EventBatch`      200 :class:`EventBatchAnswer` (per item);
                                                             413 over :data:`MAX_BATCH_ITEMS` items
``POST /v1/ingest/photos``          multipart:               200 :class:`PhotoAnswer`; 422 malformed
                                    :class:`PhotoUpload`
                                    fields + ``file`` (JPEG)
==================================  ======================  =============================================

Device requests (heartbeat, ingest) carry HTTP Basic ``device_id:device_secret`` (RFC 7617). Errors are
``{"detail": text, "error": code}``; 429 answers carry ``Retry-After`` (RFC 9110 §10.2.3).

Validation that needs more than the text (JPEG decoding of crops, frames and photos) is the central
server's (:mod:`central.ingest`); the limits it applies are here.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

__all__ = [
    "EVENTS", "EVENT_TYPES", "HEARTBEAT_PATH", "INGEST_EVENTS_PATH", "INGEST_PHOTOS_PATH",
    "ACKNOWLEDGED", "MAX_BATCH_ITEMS", "MAX_BOX_PX", "MAX_CROP_BYTES", "MAX_CROP_PIXELS", "MAX_FACES",
    "MAX_FRAME_BYTES", "MAX_FUTURE_S", "MAX_METADATA_CHARS", "MAX_PHOTO_BYTES", "MAX_PHOTO_PIXELS",
    "MAX_POLL_WAIT_S", "MAX_STATUS_TEXT", "MAX_TRACK_ID", "MJPEG_PATH", "PAIRING_REQUESTS_PATH", "PHOTO_KINDS",
    "POLL_TOKEN_SCHEME", "RETRY_AFTER", "ENCODING_LENGTH",
    "DayNight", "EventBatch", "EventBatchAnswer", "FaceEventItem", "FaceIn", "Heartbeat", "HeartbeatAnswer",
    "HeartbeatStatus", "ItemResult", "PairingCode", "PairingPollAnswer", "PairingRequest", "PhotoAnswer",
    "PhotoUpload", "ProfileIn", "ProtocolError", "check_item_id", "first_problem", "pairing_request_path",
    "parse_time",
]

# --- paths and headers --------------------------------------------------------------------------------

PAIRING_REQUESTS_PATH = "/v1/pairing/requests"
"""``POST``: an unpaired camera asks for a code; ``GET .../{request_id}``: its long poll."""
HEARTBEAT_PATH = "/v1/devices/heartbeat"
"""``POST``: a paired camera reports in (HTTP Basic device credentials)."""
INGEST_EVENTS_PATH = "/v1/ingest/events"
"""``POST``: a batch of face events (HTTP Basic device credentials)."""
INGEST_PHOTOS_PATH = "/v1/ingest/photos"
"""``POST``: one still or snapshot, multipart (HTTP Basic device credentials)."""
MJPEG_PATH = "/v1/camera/mjpeg"
"""The camera's MJPEG live view, reported in heartbeats (``mjpeg_path``)."""
POLL_TOKEN_SCHEME = "Bearer"
"""``Authorization`` scheme of the pairing long poll (RFC 6750 syntax): ``Bearer <poll_token>``."""
RETRY_AFTER = "Retry-After"
"""Header of 429 answers: seconds to wait (RFC 9110 §10.2.3, delay-seconds form)."""


def pairing_request_path(request_id: str) -> str:
    """``/v1/pairing/requests/<request_id>`` with the id percent-encoded (RFC 3986 path segment)."""
    from urllib.parse import quote

    return f"{PAIRING_REQUESTS_PATH}/{quote(request_id, safe='')}"


# --- limits ---------------------------------------------------------------------------------------------

MAX_POLL_WAIT_S = 60
"""Longest ``wait`` of the pairing long poll, s."""
MAX_BATCH_ITEMS = 100
"""Most items in one ``POST /v1/ingest/events``."""
MAX_CROP_BYTES = 200 * 1024
"""Largest face crop JPEG, bytes (decoded)."""
MAX_FRAME_BYTES = 2 * 1024 * 1024
"""Largest event frame JPEG, bytes (decoded)."""
MAX_PHOTO_BYTES = 10 * 1024 * 1024
"""Largest photo JPEG, bytes."""
MAX_CROP_PIXELS = 1_000_000
"""Most pixels a face crop may declare (a crop is a face's box, far below 1000x1000)."""
MAX_PHOTO_PIXELS = 16_000_000
"""Most pixels an event frame or a photo may declare: 16 Mpx covers every Pi camera's full sensor
(Camera Module 3: 4608x2592 = 11.9 Mpx; HQ camera: 4056x3040 = 12.3 Mpx); decoding one takes 48 MB BGR."""
MAX_FACES = 50
"""Most faces (and most profiles) in one event."""
MAX_METADATA_CHARS = 64 * 1024
"""Largest ``metadata`` of a photo, characters of JSON."""
MAX_BOX_PX = 100_000
"""Largest box coordinate, px."""
MAX_FUTURE_S = 24 * 3600
"""How far in the future a capture time may be (camera clock drift), s."""
MAX_TRACK_ID = 64
"""Longest ``track_id``, characters."""
MAX_STATUS_TEXT = 255
"""Longest text of a heartbeat status field, characters (longer ones are cut)."""
ENCODING_LENGTH = 128
"""Numbers in a face encoding (dlib's ResNet face descriptor, as computed by face_recognition)."""
EVENT_TYPES = ("face_event",)
"""Item types of ``POST /v1/ingest/events``."""
EVENTS = ("appeared", "updated")
"""What happened to a track (``event`` of a face event)."""
PHOTO_KINDS = ("still", "snapshot")
"""``kind`` of an uploaded photo."""
ACKNOWLEDGED = ("stored", "duplicate")
"""Answers that acknowledge an item (the camera deletes it); the third, ``rejected``, comes with a
``reason`` (the camera drops the item and counts it)."""

_ITEM_ID = re.compile(r"[0-9a-fA-F]{32}")  # fullmatch: "$" would accept a trailing "\n"
_B64_SLACK = 4


def _b64_chars(limit: int) -> int:
    """Longest base64 text (RFC 4648 §4, padded) of at most ``limit`` bytes."""
    return (limit + 2) // 3 * 4 + _B64_SLACK


def _excerpt(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


class ProtocolError(ValueError):
    """A value breaks the protocol; ``str()`` names the field, what is wrong and what is allowed."""


# --- shared field checks (each message starts with the field's name) ---------------------------------------


def check_item_id(value: Any, name: str = "item_id") -> str:
    """A 32-hex item id, lower-cased (``uuid4().hex`` made by the camera when it records the item).

    Raises:
        ProtocolError: not 32 hexadecimal characters.
    """
    if not isinstance(value, str) or not _ITEM_ID.fullmatch(value):
        raise ProtocolError(f"{name} must be 32 hexadecimal characters, got {str(value)[:40]!r}")
    return value.lower()


def parse_time(value: Any, name: str = "captured_at", now: dt.datetime | None = None) -> dt.datetime:
    """An ISO-8601 time with a UTC offset (``2026-11-22T10:00:00Z``), as timezone-aware UTC.

    Raises:
        ProtocolError: not a string, not ISO-8601, without an offset, or more than
            :data:`MAX_FUTURE_S` s after ``now`` (default: the current time).
    """
    if not isinstance(value, str):
        raise ProtocolError(f"{name} must be an ISO-8601 string such as 2026-11-22T10:00:00Z")
    try:
        parsed = dt.datetime.fromisoformat(value.strip())
    except ValueError:
        raise ProtocolError(f"{name}={value[:40]!r} is not an ISO-8601 time such as 2026-11-22T10:00:00Z") from None
    if parsed.tzinfo is None:
        raise ProtocolError(f"{name}={value[:40]!r} has no UTC offset; send e.g. 2026-11-22T10:00:00Z")
    parsed = parsed.astimezone(dt.timezone.utc)
    now = now or dt.datetime.now(dt.timezone.utc)
    if (parsed - now).total_seconds() > MAX_FUTURE_S:
        raise ProtocolError(f"{name}={value[:40]!r} is more than 24 h in the future (is the camera's clock set?)")
    return parsed


def _check_box(value: Any, name: str) -> list[int]:
    if (not isinstance(value, list) or len(value) != 4
            or not all(isinstance(v, int) and not isinstance(v, bool) for v in value)):
        raise ProtocolError(f"{name} must be [x, y, w, h], four integers in px")
    x, y, w, h = value
    if x < 0 or y < 0 or w < 1 or h < 1 or max(value) > MAX_BOX_PX:
        raise ProtocolError(f"{name}={value} is out of range: x, y >= 0; w, h >= 1; each <= {MAX_BOX_PX}")
    return list(value)


def _check_encoding(value: Any, name: str) -> list[float] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
        raise ProtocolError(f"{name} must be a list of {ENCODING_LENGTH} numbers, or null")
    if len(value) != ENCODING_LENGTH:
        raise ProtocolError(f"{name} has {len(value)} numbers; a face encoding has exactly {ENCODING_LENGTH}")
    if not all(math.isfinite(v) for v in value):
        raise ProtocolError(f"{name} contains NaN or infinity; only finite numbers are allowed")
    return [float(v) for v in value]


def _check_b64(value: Any, name: str, limit: int) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ProtocolError(f"{name} must be base64 text of a JPEG, or null")
    if len(value) > _b64_chars(limit):
        raise ProtocolError(f"{name} is too big: at most {limit // 1024} KB of JPEG")
    return value


def _check_choice(value: Any, name: str, allowed: tuple[str, ...], verb: str = "is not allowed") -> str:
    if value not in allowed:
        raise ProtocolError(f"{name}={_excerpt(value)} {verb}; allowed: {', '.join(allowed)}")
    return value


def first_problem(exc: ValidationError) -> str:
    """The message of the first error of ``exc``: a :class:`ProtocolError`'s own text (which names the
    field), else ``<field> <pydantic's message>`` (``faces[0].box``-style path)."""
    error = exc.errors(include_url=False)[0]
    cause = (error.get("ctx") or {}).get("error")
    if isinstance(cause, ProtocolError):
        return str(cause)
    loc = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error["loc"]).lstrip(".")
    if error["type"] == "missing":
        return f"{loc} is missing"
    return f"{loc}: {error['msg']}" if loc else str(error["msg"])


class _Wire(BaseModel):
    """Base of the wire models: unknown fields are ignored (an older peer keeps working with a newer one;
    the contract tests make sure both sides know every field)."""

    model_config = ConfigDict(extra="ignore")


# --- pairing --------------------------------------------------------------------------------------------


class PairingRequest(_Wire):
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


class PairingCode(_Wire):
    """201 answer to :class:`PairingRequest`: the code to show and how to poll for the result."""

    request_id: str = Field(min_length=1, max_length=200)
    code: str = Field(min_length=1, max_length=64, description="8 characters the administrator types")
    expires_at: str = Field(description="ISO-8601 UTC end of the code's validity")
    poll_token: str = Field(min_length=1, max_length=200, description="send as Authorization: Bearer <token>")
    poll_url: str | None = Field(None, description="path of the long poll")


class PairingPollAnswer(_Wire):
    """200 answer to the long poll: ``pending`` (poll again) or ``paired`` with the device credentials."""

    status: Literal["pending", "paired"]
    expires_at: str | None = Field(None, description="while pending: ISO-8601 UTC end of the code's validity")
    device_id: str | None = Field(None, min_length=1, max_length=200)
    device_secret: str | None = Field(None, min_length=1, max_length=200)
    camera_name: str | None = Field(None, max_length=100)


# --- heartbeat ------------------------------------------------------------------------------------------


DayNight = Literal["day", "night"]


class HeartbeatStatus(_Wire):
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


class Heartbeat(_Wire):
    """``POST /v1/devices/heartbeat`` body: the camera's status and the key for its viewer tickets."""

    status: dict[str, Any] = Field(default_factory=dict, description="a HeartbeatStatus report")
    viewer_key: str | None = Field(None, pattern=r"^[A-Za-z0-9_-]{43}$",
                                   description="key for signing the camera's MJPEG viewer tickets "
                                               "(pcs_common.viewer_ticket); kept in memory only")


class HeartbeatAnswer(_Wire):
    """200 answer to a heartbeat; ``device_secret`` only when the server rotated the secret."""

    camera_name: str | None = Field(None, max_length=100)
    device_id: str | None = Field(None, max_length=200)
    heartbeat_interval_s: int | float | None = Field(None, description="s until the next heartbeat")
    device_secret: str | None = Field(None, min_length=1, max_length=200)


# --- ingest: face events ------------------------------------------------------------------------------------


class FaceIn(_Wire):
    """One frontal face of an event: ``box`` ``[x, y, w, h]`` main-stream px, its 128-d ``encoding``
    (face_recognition / dlib) or null, its JPEG crop (base64, <= :data:`MAX_CROP_BYTES`) or null."""

    box: list[int]
    encoding: list[float] | None = None
    crop_jpeg: str | None = None

    @field_validator("box", mode="before")
    @classmethod
    def _box(cls, value: Any) -> list[int]:
        return _check_box(value, "box")

    @field_validator("encoding", mode="before")
    @classmethod
    def _encoding(cls, value: Any) -> list[float] | None:
        return _check_encoding(value, "encoding")

    @field_validator("crop_jpeg", mode="before")
    @classmethod
    def _crop(cls, value: Any) -> str | None:
        return _check_b64(value, "crop_jpeg", MAX_CROP_BYTES)


class ProfileIn(_Wire):
    """A face seen in profile (no encoding): its ``box`` ``[x, y, w, h]`` px."""

    box: list[int]

    @field_validator("box", mode="before")
    @classmethod
    def _box(cls, value: Any) -> list[int]:
        return _check_box(value, "box")


class _Item(_Wire):
    """What every uploaded item carries: its id and its capture time."""

    item_id: str = Field(description="32 hex, made by the camera; the server stores an id once")
    captured_at: str = Field(description="ISO-8601 with a UTC offset")

    @field_validator("item_id", mode="before")
    @classmethod
    def _item_id(cls, value: Any) -> str:
        return check_item_id(value)

    @field_validator("captured_at", mode="before")
    @classmethod
    def _captured_at(cls, value: Any) -> str:
        parse_time(value)
        return value


class FaceEventItem(_Item):
    """One item of ``POST /v1/ingest/events``: a track of one face appeared or was updated."""

    type: Literal["face_event"]
    track_id: str
    event: str = Field(description="appeared | updated")
    faces: list[FaceIn] = Field(default_factory=list)
    profiles: list[ProfileIn] = Field(default_factory=list)
    frame_jpeg: str | None = Field(None, description="the whole frame, base64 JPEG (<= 2 MB) or null")

    @field_validator("type", mode="before")
    @classmethod
    def _type(cls, value: Any) -> str:
        return _check_choice(value, "type", EVENT_TYPES, "is not supported")

    @field_validator("track_id", mode="before")
    @classmethod
    def _track_id(cls, value: Any) -> str:
        if not isinstance(value, str) or not 1 <= len(value) <= MAX_TRACK_ID:
            raise ProtocolError(f"track_id must be a string of 1 to {MAX_TRACK_ID} characters")
        return value

    @field_validator("event", mode="before")
    @classmethod
    def _event(cls, value: Any) -> str:
        return _check_choice(value, "event", EVENTS)

    @field_validator("faces", "profiles", mode="before")
    @classmethod
    def _lists(cls, value: Any, info: Any) -> Any:
        if not isinstance(value, list) or len(value) > MAX_FACES:
            raise ProtocolError(f"{info.field_name} must be a list of at most {MAX_FACES} {info.field_name}")
        for i, entry in enumerate(value):
            if not isinstance(entry, dict) and not isinstance(entry, BaseModel):
                shape = "{box, encoding, crop_jpeg}" if info.field_name == "faces" else "{box}"
                raise ProtocolError(f"{info.field_name}[{i}] must be an object {shape}")
        return value

    @field_validator("frame_jpeg", mode="before")
    @classmethod
    def _frame(cls, value: Any) -> str | None:
        return _check_b64(value, "frame_jpeg", MAX_FRAME_BYTES)

    @classmethod
    def parse(cls, raw: Any) -> "FaceEventItem":
        """Validate one item as received.

        Raises:
            ProtocolError: the first problem, naming the field (``faces[0].encoding``) and what is allowed.
        """
        if not isinstance(raw, dict):
            raise ProtocolError("an item must be a JSON object")
        try:
            return cls.model_validate(raw)
        except ValidationError as exc:
            message = first_problem(exc)
            error = exc.errors(include_url=False)[0]
            loc = error["loc"]
            if len(loc) > 2 and isinstance(loc[1], int) and not message.startswith(f"{loc[0]}["):
                message = f"{loc[0]}[{loc[1]}].{message}"  # a face's own check names only its field
            raise ProtocolError(message) from None


class EventBatch(_Wire):
    """``POST /v1/ingest/events`` body: at most :data:`MAX_BATCH_ITEMS` items (413 beyond). The server
    validates each item on its own (:meth:`FaceEventItem.parse`), so the list is kept raw here."""

    items: list[Any] = Field(max_length=MAX_BATCH_ITEMS)


class ItemResult(_Wire):
    """The answer for one item, in item order: ``reason`` says what is wrong when ``rejected``."""

    item_id: str | None
    status: Literal["stored", "duplicate", "rejected"]
    reason: str | None = None


class EventBatchAnswer(_Wire):
    """200 answer to :class:`EventBatch`: one result per item."""

    results: list[ItemResult]


# --- ingest: photos --------------------------------------------------------------------------------------


class PhotoUpload(_Item):
    """Form fields of ``POST /v1/ingest/photos`` (``multipart/form-data``; the JPEG in the part ``file``,
    at most :data:`MAX_PHOTO_BYTES`). ``metadata`` travels as JSON text of an object (<= 64 KB)."""

    kind: str = Field(description="still | snapshot")
    metadata: dict[str, Any] | None = None

    FILE_FIELD: ClassVar[str] = "file"

    @field_validator("kind", mode="before")
    @classmethod
    def _kind(cls, value: Any) -> str:
        return _check_choice(value, "kind", PHOTO_KINDS)

    @field_validator("metadata", mode="before")
    @classmethod
    def _metadata(cls, value: Any) -> dict[str, Any] | None:
        if value in (None, ""):
            return None
        if isinstance(value, dict):
            value = json.dumps(value)
        if not isinstance(value, str) or len(value) > MAX_METADATA_CHARS:
            raise ProtocolError(f"metadata must be a JSON object of at most {MAX_METADATA_CHARS // 1024} KB")
        try:
            meta = json.loads(value)
        except ValueError:
            raise ProtocolError("metadata is not valid JSON; send a JSON object such as {\"exposure_us\": 10000}") from None
        if not isinstance(meta, dict):
            raise ProtocolError("metadata must be a JSON object, not a list or a scalar")
        return meta

    @classmethod
    def parse(cls, fields: dict[str, Any]) -> "PhotoUpload":
        """Validate the text fields of an upload.

        Raises:
            ProtocolError: the first problem, naming the field and what is allowed.
        """
        try:
            return cls.model_validate(fields)
        except ValidationError as exc:
            raise ProtocolError(first_problem(exc)) from None

    def form(self) -> dict[str, str]:
        """The multipart text fields (``metadata`` as JSON text)."""
        return {"item_id": self.item_id, "kind": self.kind, "captured_at": self.captured_at,
                "metadata": json.dumps(self.metadata or {})}


class PhotoAnswer(_Wire):
    """200 answer to a photo upload."""

    item_id: str
    status: Literal["stored", "duplicate"]
