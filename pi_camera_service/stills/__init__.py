"""Stills history: JPEG stills from the live pipeline on a schedule, on detections and on request,
stored by day with thumbnails and JSON sidecars, kept within age, size and free-disk limits.

* :mod:`.records`: what a still is: its id, day, index record, paging cursor.
* :mod:`.thumbnails`: the JPEG size read from its header, thumbnails.
* :mod:`.store`: layout on disk, atomic writes, start-up clean-up, the in-memory index and paging.
* :mod:`.retention`: maximum age, maximum total size, free-disk floor.
* :mod:`.service`: the APScheduler scheduler, the detection listener, capture and status.

See ``docs/stills.md``.
"""

from pi_camera_service.stills.retention import RetentionPolicy, RetentionResult, enforce
from pi_camera_service.stills.service import StillsDiskFull, StillsService
from pi_camera_service.stills.store import (
    InvalidCursor,
    InvalidDay,
    InvalidId,
    StillRecord,
    StillStore,
)

__all__ = [
    "InvalidCursor",
    "InvalidDay",
    "InvalidId",
    "RetentionPolicy",
    "RetentionResult",
    "StillRecord",
    "StillStore",
    "StillsDiskFull",
    "StillsService",
    "enforce",
]
