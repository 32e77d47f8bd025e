"""Old import path of the outbox's recorder and sender, now :mod:`pi_camera_service.outbox.recorder` and
:mod:`pi_camera_service.outbox.sender`: the same objects, re-exported."""

from pcs_common.protocol import INGEST_EVENTS_PATH as EVENTS_PATH
from pcs_common.protocol import INGEST_PHOTOS_PATH as PHOTOS_PATH
from pcs_common.protocol import MAX_CROP_BYTES, MAX_FRAME_BYTES
from pi_camera_service.outbox.recorder import (
    CROP_MARGIN,
    DetectionRecorder,
    StillsFollower,
    crop_box,
    face_event_payload,
    fit_jpeg,
    newest_frame_bgr,
    queue_snapshot,
    queue_still,
)
from pi_camera_service.outbox.sender import BATCH_BYTES, IDLE_CHECK, MAX_BATCH, REQUEST_TIMEOUT, OutboxSender, events_body

__all__ = [
    "BATCH_BYTES", "CROP_MARGIN", "EVENTS_PATH", "IDLE_CHECK", "MAX_BATCH", "MAX_CROP_BYTES", "MAX_FRAME_BYTES",
    "PHOTOS_PATH", "REQUEST_TIMEOUT", "DetectionRecorder", "OutboxSender", "StillsFollower", "crop_box",
    "events_body", "face_event_payload", "fit_jpeg", "newest_frame_bgr", "queue_snapshot", "queue_still",
]
