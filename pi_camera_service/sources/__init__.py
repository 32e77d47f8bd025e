"""Camera sources behind one interface (:class:`~pi_camera_service.sources.base.Camera`), chosen by ``CAMERA_SOURCE``.

``auto`` picks the Raspberry Pi camera when one is present, else ``/dev/video0`` when present, else the
bundled sample video.
"""

from __future__ import annotations

import logging

from pi_camera_service.config import Settings
from pi_camera_service.sources.base import Camera, SourceOpenError

log = logging.getLogger(__name__)


def resolve_source(source: str) -> str:
    """Resolve ``auto`` to ``picamera2:0``, ``/dev/video0`` or the bundled sample's path; others unchanged."""
    if source != "auto":
        return source
    from pi_camera_service.sources.picamera2_backend import picamera2_available
    from pi_camera_service.sources.software import sample_video_path, video_device_present

    if picamera2_available(0):
        return "picamera2:0"
    if video_device_present(0):
        return "/dev/video0"
    return str(sample_video_path())


def create_camera(settings: Settings) -> Camera:
    """Build (not open) the camera for ``settings.source``.

    Raises:
        SourceOpenError: the source names a missing file or an unavailable backend.
    """
    source = resolve_source(settings.source)
    if settings.source == "auto":
        log.info("CAMERA_SOURCE=auto resolved to %s", source)
    if source == "picamera2" or source.startswith("picamera2:"):
        from pi_camera_service.sources.picamera2_backend import Picamera2Camera

        number = int(source.split(":", 1)[1]) if ":" in source else 0
        return Picamera2Camera(settings, number)
    from pi_camera_service.sources.software import SoftwareCamera, parse_av_source

    return SoftwareCamera(settings, parse_av_source(source, settings.width, settings.height, settings.framerate))


__all__ = ["Camera", "SourceOpenError", "create_camera", "resolve_source"]
