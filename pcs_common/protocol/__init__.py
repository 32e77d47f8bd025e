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

Modules: :mod:`.limits` (paths, headers, limits), :mod:`.fields` (shared field checks and their
messages), :mod:`.device` (pairing and heartbeat models), :mod:`.ingest` (face event and photo models).
Import everything from ``pcs_common.protocol``.
"""

from pcs_common.protocol.device import (
    DayNight,
    Heartbeat,
    HeartbeatAnswer,
    HeartbeatStatus,
    PairingCode,
    PairingPollAnswer,
    PairingRequest,
)
from pcs_common.protocol.fields import ProtocolError, check_item_id, first_problem, parse_time
from pcs_common.protocol.ingest import (
    EventBatch,
    EventBatchAnswer,
    FaceEventItem,
    FaceIn,
    ItemResult,
    PhotoAnswer,
    PhotoUpload,
    ProfileIn,
)
from pcs_common.protocol.limits import (
    ACKNOWLEDGED,
    ENCODING_LENGTH,
    EVENT_TYPES,
    EVENTS,
    HEARTBEAT_PATH,
    INGEST_EVENTS_PATH,
    INGEST_PHOTOS_PATH,
    MAX_BATCH_ITEMS,
    MAX_BOX_PX,
    MAX_CROP_BYTES,
    MAX_CROP_PIXELS,
    MAX_FACES,
    MAX_FRAME_BYTES,
    MAX_FUTURE_S,
    MAX_METADATA_CHARS,
    MAX_PHOTO_BYTES,
    MAX_PHOTO_PIXELS,
    MAX_POLL_WAIT_S,
    MAX_STATUS_TEXT,
    MAX_TRACK_ID,
    MJPEG_PATH,
    PAIRING_REQUESTS_PATH,
    PHOTO_KINDS,
    POLL_TOKEN_SCHEME,
    RETRY_AFTER,
    pairing_request_path,
)

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
