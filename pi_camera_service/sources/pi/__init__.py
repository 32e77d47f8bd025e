"""The Raspberry Pi camera source, one module per concern; the camera itself is
:class:`pi_camera_service.sources.picamera2_backend.Picamera2Camera` (see that module's table)."""
