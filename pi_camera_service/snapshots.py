"""Snapshots on demand: the JPEG of the newest frame, and queueing one for the central server.

Shared by ``GET /v1/camera/snapshot``, ``POST /v1/camera/snapshot/upload`` and ONVIF's snapshot URI.
Blocking (JPEG encoding): call from a worker thread. Errors are the domain errors of
:mod:`pcs_common.service_errors`; the app's error boundary turns them into HTTP answers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from pcs_common.service_errors import InsufficientStorage, InvalidRequest, Unavailable
from pi_camera_service.sources.base import Camera, CameraUnavailable

if TYPE_CHECKING:
    from pi_camera_service.outbox import Outbox


def take_snapshot(camera: Camera, width: int | None, quality: int) -> bytes:
    """JPEG bytes of the newest frame, ``width`` px wide (None: the main stream's width), JPEG ``quality``
    1..100 (:meth:`Camera.snapshot_jpeg`).

    Raises:
        InvalidRequest: ``width`` larger than the main stream (the message gives the allowed 16..width).
        Unavailable: no frame has been captured yet (``Retry-After: 1``).
    """
    if width is not None and width > camera.width:
        raise InvalidRequest(
            f"width={width} is larger than the main stream ({camera.width} px); allowed 16..{camera.width}")
    try:
        return camera.snapshot_jpeg(width, quality)
    except CameraUnavailable as exc:
        raise Unavailable(str(exc)) from exc


@dataclass(frozen=True)
class QueuedSnapshot:
    """A snapshot queued in the outbox: its ``item_id`` and JPEG size in ``bytes``."""

    item_id: str
    bytes: int


def queue_snapshot_upload(outbox: Outbox, camera: Camera, width: int | None, quality: int) -> QueuedSnapshot:
    """Take a snapshot (:func:`take_snapshot`) and queue it as a ``photo`` item of ``kind`` ``snapshot``
    (its metadata: the size in px) for the central server.

    Raises:
        InvalidRequest, Unavailable: as :func:`take_snapshot`.
        InsufficientStorage: the item could not be written (disk full or unwritable).
    """
    from pi_camera_service.outbox_sender import queue_snapshot

    jpeg = take_snapshot(camera, width, quality)
    scale = (width or camera.width) / camera.width
    try:
        item_id = queue_snapshot(outbox, jpeg, width or camera.width, round(camera.height * scale))
    except OSError as exc:
        raise InsufficientStorage(f"the snapshot could not be queued: {exc}") from None
    return QueuedSnapshot(item_id, len(jpeg))
