"""Mirrors ``picamera2/request.py`` (0.3.36): ``CompletedRequest`` and the ``Helpers`` it uses.

Upstream behaviour kept:

* a request starts with ``ref_count`` 1; ``acquire()`` at 0 raises ``RuntimeError("CompletedRequest:
  acquiring lock with ref_count 0")``; ``release()`` below 0 raises ``RuntimeError("CompletedRequest:
  lock now has negative ref_count")``; at 0 the buffer goes back to the camera and ``config``,
  ``stream_map`` and ``request`` are cleared, so ``make_array``/``save`` then raise
  ``RuntimeError("Stream 'x' is not defined")`` and ``get_metadata`` fails its ``assert``;
* ``make_array(name)`` returns a copy shaped like the configured stream: ``(h * 3 // 2, stride)``
  for ``YUV420`` (the padding columns included, as upstream), ``(h, w, 4)`` for ``XBGR8888``/
  ``XRGB8888``, ``(h, w, 3)`` for ``BGR888``/``RGB888``;
* ``save(name, file_output, format=None, exif_data=None)`` writes a JPEG (quality from
  ``picam2.options.get("quality", 90)``, as upstream) of the stream's size to a ``BytesIO`` or a path;
  PNG is written too. Upstream encodes with simplejpeg; the fake uses OpenCV.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any, Dict, Optional

import cv2
import numpy as np

from . import _sim


class _LibcameraRequest:
    """Stands in for the ``libcamera.Request`` a CompletedRequest wraps: a sequence number (the
    sensor frame number) and the frame's metadata; ``image`` (fake only) holds the ISP settings the
    simulated pixels depend on (``brightness``, ``saturation``: see ``_sim.yuv420_frame``)."""

    def __init__(self, sequence: int, metadata: dict, image: dict | None = None) -> None:
        self.sequence = sequence
        self.metadata = metadata
        self.image = image or {}


class CompletedRequest:
    FASTER_JPEG = True

    def __init__(self, request: Any, picam2: Any) -> None:
        self.request = request
        self.ref_count: int = 1
        self.lock = picam2.request_lock
        self.picam2 = picam2
        self.stop_count: int = picam2.stop_count
        self.configure_count: int = picam2.configure_count
        self.config = self.picam2.camera_config.copy()
        self.stream_map = self.picam2.stream_map.copy()
        with self.lock:
            self.picam2._buffers_in_use += 1

    def acquire(self) -> None:
        """Acquire a reference to this completed request, which stops it being recycled back to the camera system."""
        with self.lock:
            if self.ref_count == 0:
                raise RuntimeError("CompletedRequest: acquiring lock with ref_count 0")
            self.ref_count += 1

    def release(self) -> None:
        """Release this completed frame back to the camera system (once its reference count reaches zero)."""
        with self.lock:
            self.ref_count -= 1
            if self.ref_count < 0:
                raise RuntimeError("CompletedRequest: lock now has negative ref_count")
            elif self.ref_count == 0:
                if self.stop_count == self.picam2.stop_count:
                    self.picam2._buffers_in_use -= 1
                assert self.request is not None
                self.request = None
                self.config = {}
                self.stream_map = {}

    def _pixels(self, name: str) -> np.ndarray:
        config = self.config[name]
        width, height = config["size"]
        fmt = config["format"]
        image = self.request.image
        if fmt in ("YUV420", "YVU420"):
            return _sim.yuv420_frame(width, height, config["stride"], self.request.sequence, **image)
        yuv = _sim.yuv420_frame(width, height, width, self.request.sequence, **image)
        bgr = cv2.cvtColor(yuv, cv2.COLOR_YUV2BGR_I420)
        if fmt == "RGB888":  # upstream: RGB888 is B, G, R in memory
            return bgr
        if fmt == "BGR888":
            return bgr[:, :, ::-1].copy()
        if fmt == "XRGB8888":
            return np.dstack([bgr, np.full((height, width), 255, np.uint8)])
        if fmt == "XBGR8888":
            return np.dstack([bgr[:, :, ::-1], np.full((height, width), 255, np.uint8)])
        raise RuntimeError("Format " + fmt + " not supported")

    def make_buffer(self, name: str) -> np.ndarray:
        """Make a 1D numpy array from the named stream's buffer."""
        if self.stream_map.get(name) is None:
            raise RuntimeError(f"Stream {name!r} is not defined")
        return self._pixels(name).reshape(-1).copy()

    def get_metadata(self) -> Dict[str, Any]:
        """Fetch the metadata corresponding to this completed request."""
        assert self.request is not None
        return dict(self.request.metadata)

    def make_array(self, name: str) -> np.ndarray:
        """Make a 2d numpy array from the named stream's buffer."""
        config = self.config.get(name, None)
        if config is None:
            raise RuntimeError(f"Stream {name!r} is not defined")
        return np.ascontiguousarray(self._pixels(name))

    def save(
        self, name: str, file_output: Any, format: Optional[str] = None, exif_data: Optional[Dict[str, Any]] = None
    ) -> None:
        """Save a JPEG or PNG image of the named stream's buffer."""
        config = self.config.get(name, None)
        if config is None:
            raise RuntimeError(f"Stream {name!r} is not defined")
        format_str = self.picam2.helpers._get_format_str(file_output, format)
        array = self._pixels(name)
        if config["format"] in ("YUV420", "YVU420"):
            # The same plane slicing upstream does before simplejpeg.encode_jpeg_yuv_planes.
            width, height = config["size"]
            y = array[:height, :width]
            reshaped = array.reshape((array.shape[0] * 2, array.strides[0] // 2))
            u = reshaped[2 * height : 2 * height + height // 2, : width // 2]
            v = reshaped[2 * height + height // 2 :, : width // 2]
            i420 = np.concatenate([y.reshape(-1), u.reshape(-1), v.reshape(-1)]).reshape(height * 3 // 2, width)
            bgr = cv2.cvtColor(i420, cv2.COLOR_YUV2BGR_I420)
        elif array.ndim == 3 and array.shape[2] == 4:
            bgr = np.ascontiguousarray(array[:, :, :3] if config["format"] == "XRGB8888" else array[:, :, 2::-1])
        else:
            bgr = array if config["format"] == "RGB888" else np.ascontiguousarray(array[:, :, ::-1])
        if format_str in ("jpg", "jpeg"):
            quality = self.picam2.options.get("quality", 90)
            ok, encoded = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
        elif format_str == "png":
            ok, encoded = cv2.imencode(".png", bgr)
        else:
            raise RuntimeError(f"fake picamera2 cannot write {format_str!r} images")
        if not ok:
            raise RuntimeError("image encoding failed")
        data = encoded.tobytes()
        if isinstance(file_output, io.BytesIO):
            file_output.write(data)
        else:
            with open(file_output, "wb") as f:
                f.write(data)


class Helpers:
    """The part of upstream's ``Helpers`` that ``CompletedRequest.save`` uses."""

    def __init__(self, picam2: Any) -> None:
        self.picam2 = picam2

    def _get_format_str(self, file_output, format):
        if isinstance(format, str):
            return format.lower()
        elif isinstance(file_output, str):
            return file_output.split(".")[-1].lower()
        elif isinstance(file_output, Path):
            return file_output.suffix.lower()
        else:
            raise RuntimeError("Cannot determine format to save")
