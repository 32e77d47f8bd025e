"""Paths, headers and limits of the camera <-> central server protocol (:mod:`pcs_common.protocol`)."""

from __future__ import annotations

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
