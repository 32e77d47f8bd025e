"""Lens correction on the Pi camera: the calibrated lens model cropped to what a stream shows."""

from __future__ import annotations

from typing import Any


def lens_processor(
    lens: Any,
    roi: tuple[float, float, float, float],
    width: int,
    height: int,
    crop_max: tuple[int, int, int, int] | None,
) -> Any:
    """A :class:`~pi_camera_service.imaging.FrameProcessor` undistorting ``width`` x ``height`` px frames.

    The lens model (calibrated on the full pixel array) is cropped to the ``ScalerCrop`` requested for
    the normalised ``roi`` inside ``crop_max`` (``ScalerCropMaximum``, sensor px), bounded to the
    stream's aspect ratio and centred as libcamera's Raspberry Pi pipeline handler does
    (``boundedToAspectRatio`` + ``centeredTo``). Without ``crop_max`` the model is used as is.
    """
    from pi_camera_service.controls.spec import roi_to_scaler_crop
    from pi_camera_service.imaging import FrameProcessor, ImageAdjust

    if crop_max is not None:
        x, y, w, h = roi_to_scaler_crop(roi, crop_max)
        if w * height > h * width:  # wider than the output: narrow it, centred
            x, w = x + (w - h * width / height) / 2, h * width / height
        else:
            y, h = y + (h - w * height / width) / 2, w * height / width
        lens = lens.cropped((x, y, w, h), width, height)
    return FrameProcessor(width, height, ImageAdjust(lens=lens))
