"""The camera's outbox: what it still has to deliver to the central server, kept on disk until the
server acknowledged it (docs/outbox.md).

* :mod:`.store`: the durable store (:class:`Outbox`, SQLite + files, bounded by :class:`OutboxLimits`).
* :mod:`.recorder`: filling it (:class:`DetectionRecorder` for face events, :func:`queue_still`,
  :func:`queue_snapshot`, :class:`StillsFollower` for photos).
* :mod:`.sender`: draining it (:class:`OutboxSender`), in the wire format of :mod:`pcs_common.protocol`.

``pi_camera_service.outbox_sender`` (the recorder and the sender) is the old import path of the last two.
"""

from pi_camera_service.outbox.store import (
    DB_FILE,
    FILES_DIR,
    KINDS,
    MB,
    Kind,
    Outbox,
    OutboxError,
    OutboxItem,
    OutboxLimits,
    iso_utc,
    new_item_id,
)

__all__ = [
    "DB_FILE", "FILES_DIR", "KINDS", "MB", "Kind", "Outbox", "OutboxError", "OutboxItem", "OutboxLimits",
    "iso_utc", "new_item_id",
]
