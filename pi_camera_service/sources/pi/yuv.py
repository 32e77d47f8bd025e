"""Picamera2 YUV420 buffers -> packed I420, and how often the capture thread pulls one.

picamera2 facts (0.3.36 source): ``make_array(name)`` returns a *copy* shaped ``(h * 3 // 2,
stride)`` for YUV420, padding columns included when ``stride > width``; the U and V planes follow Y
with stride ``stride // 2`` (the layout ``CompletedRequest.save`` slices). ``align_stream`` notes
that the hardware pads each plane's rows to 32 (VC4) or 64 (Pi 5) bytes, so e.g. a 320 px YUV420
lores on a Pi 5 is expected to arrive with padded rows: :func:`yuv420_to_i420` removes them.
"""

from __future__ import annotations

import numpy as np

from pi_camera_service.config import Settings


def yuv420_to_i420(array: np.ndarray, width: int, height: int) -> np.ndarray:
    """Turn a Picamera2 YUV420 array into a packed I420 ``(height * 3 // 2, width)`` uint8 array.

    Args:
        array: ``(height * 3 // 2, stride)`` uint8 as ``CompletedRequest.make_array`` returns for a
            ``"YUV420"`` stream: ``height`` rows of Y (``stride`` bytes each, ``width`` used), then
            U and V, each ``height / 2`` rows of ``stride / 2`` bytes (``width / 2`` used).
        width, height: the stream size, px (even).

    Returns:
        ``array`` itself when there is no padding (``stride == width``), else a new packed array.

    Raises:
        ValueError: ``array`` does not have that layout.
    """
    rows, stride = array.shape
    if rows != height * 3 // 2 or stride < width or stride % 2:
        raise ValueError(f"expected a ({height * 3 // 2}, >= {width}) YUV420 array, got {array.shape}")
    if stride == width:
        return np.ascontiguousarray(array)
    out = np.empty((height * 3 // 2, width), dtype=np.uint8)
    out[:height] = array[:height, :width]
    half_rows = array.reshape(height * 3, stride // 2)
    cw, ch = width // 2, height // 2
    chroma = out[height:].reshape(2 * ch, cw)
    chroma[:ch] = half_rows[2 * height : 2 * height + ch, :cw]
    chroma[ch:] = half_rows[2 * height + ch :, :cw]
    return out


def analysis_rate(settings: Settings) -> float:
    """Frames per second the capture thread pulls from the lores stream.

    The camera runs at ``settings.framerate`` regardless (the encoder is fed by picamera2's event
    loop, and picamera2 recycles requests nobody asks for), so the capture thread only needs to be
    fast enough that the detector, which runs ``detection_fps`` times a second on the newest frame,
    never analyses a frame older than half its period: ``2 * detection_fps``, at least 5/s so sensor
    metadata stays fresh, and never above the camera rate. Without detection, 2/s keeps metadata
    current. Pulling all 30 frames/s would cost a Pi Zero 2 W a lores copy, a metadata conversion
    and a request round trip per frame for nothing.
    """
    wanted = max(2.0 * settings.detection_fps, 5.0) if settings.detection_enabled else 2.0
    return min(float(settings.framerate), wanted)
