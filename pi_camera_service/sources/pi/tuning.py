"""Tuning files and the Camera Module 3's sensor HDR: the two things libcamera only reads at open.

* A tuning file (``CAMERA_TUNING_FILE`` or ``CAMERA_NOIR=true``) reaches libcamera through
  ``LIBCAMERA_RPI_TUNING_FILE`` and a fresh camera manager (libcamera reads it only when a manager is
  created), and through ``Picamera2(tuning=...)``.
* The IMX708's HDR is a *sensor* mode set with ``picamera2.devices.imx708.IMX708(n).set_sensor_hdr_mode``
  while no ``Picamera2`` holds the camera; picamera2 then resets its camera manager so the next
  ``Picamera2`` sees the new sensor modes.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from typing import Any

from pi_camera_service.config import Settings
from pi_camera_service.sources.base import CameraError, SourceOpenError


@dataclass
class Tuning:
    """The tuning chosen for a camera.

    Attributes:
        path: what to hand to ``Picamera2(tuning=...)`` and ``LIBCAMERA_RPI_TUNING_FILE``; None lets
            libcamera pick ``<model>.json`` (for a NoIR module already its ``_noir`` tuning).
        name: how ``/v1/camera/capabilities`` shows it.
        tmp: the temporary file holding a tuning found by name (keep it open while the camera is used).
    """

    path: str | None
    name: str | None
    tmp: Any = None

    def close(self) -> None:
        """Delete the temporary file (and unset ``LIBCAMERA_RPI_TUNING_FILE`` if it names it)."""
        if self.tmp is None:
            return
        if os.environ.get("LIBCAMERA_RPI_TUNING_FILE") == self.tmp.name:
            del os.environ["LIBCAMERA_RPI_TUNING_FILE"]  # the file is about to be deleted
        self.tmp.close()
        self.tmp = None


def resolve_tuning(settings: Settings, model: str | None) -> Tuning:
    """The tuning file for ``Picamera2(tuning=...)``.

    ``CAMERA_TUNING_FILE`` wins (a path, or a name looked up with ``Picamera2.load_tuning_file``
    where libcamera installs them and written to a temporary file kept while the camera is used:
    picamera2 passes a string to libcamera as a path relative to the working directory); else
    ``CAMERA_NOIR=true`` on a sensor libcamera does not name ``_noir`` loads ``<model>_noir.json``;
    else None (libcamera's default).

    Raises:
        SourceOpenError: the named tuning file is not installed, or the path does not exist.
    """
    from picamera2 import Picamera2

    name = settings.tuning_file
    model = model or ""
    if name is None and settings.noir == "true" and model and "_noir" not in model:
        name = f"{model}_noir.json"
    if name is None:
        return Tuning(None, f"{model}.json (libcamera default)" if model else None)
    if os.sep in name or os.path.isfile(name):
        path = os.path.abspath(os.path.expanduser(name))
        if not os.path.isfile(path):
            raise SourceOpenError(f"CAMERA_TUNING_FILE={name!r}: no such file")
        return Tuning(path, path)
    try:
        tuning = Picamera2.load_tuning_file(name)
    except RuntimeError as exc:
        raise SourceOpenError(
            f"tuning file {name!r} not found where libcamera installs them (/usr/share/libcamera/ipa/rpi/...): {exc}"
        ) from exc
    tmp = tempfile.NamedTemporaryFile("w", prefix="tuning-", suffix=".json")
    json.dump(tuning, tmp)
    tmp.flush()
    return Tuning(tmp.name, name, tmp)


def use_tuning(path: str | None) -> None:
    """Make the next ``Picamera2`` load ``path``: set ``LIBCAMERA_RPI_TUNING_FILE`` and reset
    picamera2's camera manager (it keeps the one ``global_camera_info()`` made). None: nothing."""
    if path is None:
        return
    from picamera2 import Picamera2

    os.environ["LIBCAMERA_RPI_TUNING_FILE"] = path
    Picamera2._cm.reset()


def apply_sensor_hdr(camera_num: int, enabled: bool) -> None:
    """Set the IMX708's HDR mode with ``picamera2.devices.imx708.IMX708(n).set_sensor_hdr_mode``.

    Must run while no Picamera2 holds the camera: the driver refuses the control while streaming,
    and picamera2 then only prints a message.

    Raises:
        CameraError: the IMX708 device node cannot be found.
    """
    from picamera2.devices.imx708 import IMX708

    try:
        with IMX708(camera_num) as sensor:
            sensor.set_sensor_hdr_mode(enabled)
    except RuntimeError as exc:
        raise CameraError(f"cannot set sensor HDR on camera {camera_num}: {exc}") from exc
