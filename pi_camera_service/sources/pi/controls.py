"""The Pi camera's libcamera controls and frame metadata (the camera's side of :mod:`pi_camera_service.controls`).

Controls go to ``Picamera2.set_controls`` while everything runs and are remembered so that a re-opened
camera gets them again; metadata from ``CompletedRequest.get_metadata()`` is mapped to API names
through the one table, :data:`pi_camera_service.controls.libcamera_map.METADATA`.
"""

from __future__ import annotations

import threading
from typing import Any

from pi_camera_service.controls.libcamera_map import ONE_SHOT, from_metadata
from pi_camera_service.sources.base import CameraError, CameraUnavailable


class Picamera2Controls:
    """Mixin of :class:`~pi_camera_service.sources.picamera2_backend.Picamera2Camera`: controls and metadata.

    Uses the camera's ``_lock`` (around Picamera2 calls), ``_state_lock`` (``_controls``), ``_picam2``,
    ``_metadata`` (the newest frame's, replaced by the capture thread), ``_sensor_hdr`` and ``source``.
    """

    source: str
    _lock: threading.RLock
    _state_lock: threading.Lock
    _picam2: Any
    _metadata: dict[str, Any]
    _controls: dict[str, Any]
    _sensor_hdr: bool

    def scene_level(self) -> float | None:
        """libcamera's ``Lux`` of the newest frame (None before one)."""
        lux = self._metadata.get("Lux")
        return None if lux is None else float(lux)

    def raw_metadata(self) -> dict[str, Any]:
        """The newest frame's metadata as ``CompletedRequest.get_metadata()`` returned it (libcamera names)."""
        return dict(self._metadata)

    def metadata(self) -> dict[str, Any]:
        """Newest frame metadata, each None until a frame reported it: every field of
        :data:`~pi_camera_service.controls.libcamera_map.METADATA` (``lux``, ``exposure_us``,
        ``analogue_gain``, ``digital_gain``, ``colour_gains``, ``colour_temperature``,
        ``lens_position``, ``focus_distance_m``, ``focus_fom``, ``af_state``, ``sensor_temperature``,
        ``frame_duration_us``, ``scaler_crop``, ``hdr_mode``; the libcamera key, unit and conversion
        of each are listed there), plus ``sensor_hdr`` (the IMX708 HDR mode is on) and
        ``auto_exposure``: the ``AeEnable`` last given to :meth:`set_controls` (libcamera does not
        report it), True by default.
        """
        with self._state_lock:
            auto_exposure = bool(self._controls.get("AeEnable", True))
        return {**from_metadata(self._metadata), "sensor_hdr": self._sensor_hdr, "auto_exposure": auto_exposure}

    def set_controls(self, controls: dict[str, Any]) -> None:
        """Apply libcamera controls (``Picamera2.set_controls``), e.g. ``{"AeEnable": False, "ExposureTime": 10000}``.

        They take effect a few frames later and are re-applied after the camera is re-opened (one-shot
        ones such as ``AfTrigger`` excepted). Names and units are libcamera's (REFERENCE.md, Picamera2
        controls).

        Raises:
            CameraUnavailable: the camera is not open.
            CameraError: picamera2 refused a control (``Control X is not advertised by libcamera``);
                controls listed before it were already applied.
        """
        if not controls:
            return
        with self._lock:
            picam2 = self._picam2
            if picam2 is None:
                raise CameraUnavailable(f"{self.source} is not open")
            try:
                picam2.set_controls(dict(controls))
            except RuntimeError as exc:
                raise CameraError(str(exc)) from exc
            with self._state_lock:
                self._controls.update({k: v for k, v in controls.items() if k not in ONE_SHOT})

    def camera_controls(self) -> dict[str, tuple[Any, Any, Any]]:
        """``{name: (min, max, default)}`` of every control the camera advertises (``Picamera2.camera_controls``).

        Raises:
            CameraUnavailable: the camera is not open.
        """
        with self._lock:
            picam2 = self._picam2
            if picam2 is None:
                raise CameraUnavailable(f"{self.source} is not open")
            return dict(picam2.camera_controls)

    @property
    def controls(self) -> dict[str, Any]:
        """The controls set through :meth:`set_controls` since construction (a copy)."""
        with self._state_lock:
            return dict(self._controls)
