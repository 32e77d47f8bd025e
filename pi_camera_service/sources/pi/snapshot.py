"""JPEG snapshots from a running Picamera2 while the H.264 encoder goes on.

picamera2 facts (0.3.36 source): ``captured_request(wait=s)`` waits for the next completed request
and releases it on exit; with a number it raises ``TimeoutError`` when no frame comes (a dislodged
cable stops frames without any error), leaving the job queued, hence ``cancel_all_and_flush()``.
``CompletedRequest.save(name, file, format="jpeg")`` takes its JPEG quality from
``picam2.options["quality"]`` (default 90), not from an argument.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

import cv2

from pi_camera_service.frames import encode_jpeg
from pi_camera_service.sources.base import CameraUnavailable, describe
from pi_camera_service.sources.pi.yuv import yuv420_to_i420


def capture_main(picam2: Any, timeout: float, save_quality: int | None, source: str = "the camera") -> Any:
    """The next main-stream frame of a started ``picam2`` (caller holds the lock around Picamera2 calls).

    With ``save_quality``: ``with captured_request() as r: r.save("main", buf, format="jpeg")`` with
    ``picam2.options["quality"] = save_quality``: the JPEG bytes of a main-size picture with
    picamera2's EXIF. Without: a copy of the main YUV420 array (``make_array("main")``,
    ``(H * 3 // 2, stride)`` uint8), the request released at once so the camera buffer is held only
    for a copy; finish it with :func:`yuv_to_jpeg` outside the lock.

    Raises:
        CameraUnavailable: no frame within ``timeout`` s (the pending capture job is then cancelled
            so it cannot hold a buffer later), or picamera2 failed.
    """
    try:
        if save_quality is not None:
            buf = io.BytesIO()
            picam2.options["quality"] = int(save_quality)
            with picam2.captured_request(wait=timeout) as request:
                request.save("main", buf, format="jpeg")
            return buf.getvalue()
        with picam2.captured_request(wait=timeout) as request:
            return request.make_array("main")
    except TimeoutError as exc:
        # The timed-out job stays queued in picamera2 and would take (and never release) a request
        # when frames come back; the caller's is the only job, so cancelling all of them cancels it.
        try:
            picam2.cancel_all_and_flush()
        except Exception:  # noqa: BLE001
            pass
        raise CameraUnavailable(f"no frame from {source} within {timeout:g} s") from exc
    except Exception as exc:  # noqa: BLE001 - any picamera2 failure means no snapshot now
        raise CameraUnavailable(f"snapshot from {source} failed: {describe(exc)}") from exc


def yuv_to_jpeg(
    main: Any, main_size: tuple[int, int], width: int | None, quality: int, lens: Callable[[], Any] | None = None
) -> bytes:
    """JPEG of a main YUV420 array from :func:`capture_main`.

    Padding removed, lens-corrected by ``lens()`` when given (a
    :class:`~pi_camera_service.imaging.FrameProcessor` for ``main_size``), converted to BGR and, when
    ``width`` px is smaller than the main width, scaled to ``width`` x ``round(width * H / W)`` px with
    OpenCV (aspect ratio kept, INTER_AREA); encoded with :func:`~pi_camera_service.frames.encode_jpeg`.
    """
    main_w, main_h = main_size
    i420 = yuv420_to_i420(main, main_w, main_h)
    if lens is not None:
        i420 = lens().process(i420)
    bgr = cv2.cvtColor(i420, cv2.COLOR_YUV2BGR_I420)
    if width is None or width >= main_w:
        return encode_jpeg(bgr, quality)
    out_h = max(1, round(main_h * width / main_w))
    return encode_jpeg(cv2.resize(bgr, (width, out_h), interpolation=cv2.INTER_AREA), quality)
