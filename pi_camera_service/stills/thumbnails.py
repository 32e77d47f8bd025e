"""JPEG facts and thumbnails of stills: the size read from the JPEG's SOFn header (no decoding),
and the thumbnail made once at capture."""

from __future__ import annotations

import cv2
import numpy as np

#: JPEG quality of thumbnails
THUMBNAIL_QUALITY = 80


def jpeg_size(data: bytes) -> tuple[int, int]:
    """(width, height) px read from a JPEG's SOF header, without decoding the image.

    Raises:
        ValueError: ``data`` is not a JPEG (no SOI marker, or no frame header).
    """
    if data[:2] != b"\xff\xd8":
        raise ValueError("not a JPEG (no SOI marker)")
    i, n = 2, len(data)
    while i + 4 <= n:
        if data[i] != 0xFF:
            raise ValueError(f"not a JPEG (bad marker at byte {i})")
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker in (0x01, *range(0xD0, 0xD8)):  # markers without a length
            i += 2
            continue
        length = int.from_bytes(data[i + 2:i + 4], "big")
        if marker in (0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF):
            if i + 9 > n:
                break
            height = int.from_bytes(data[i + 5:i + 7], "big")
            width = int.from_bytes(data[i + 7:i + 9], "big")
            return width, height
        if marker == 0xDA:  # start of scan before any frame header
            break
        i += 2 + length
    raise ValueError("not a JPEG (no frame header)")


def thumbnail_size(size: tuple[int, int], width: int) -> tuple[int, int]:
    """(width, height) px of the thumbnail of a ``size`` still: ``width`` px wide but never wider than
    the still, aspect ratio kept."""
    w, h = size
    width = max(1, min(width, w))
    return width, max(1, round(h * width / w))


def make_thumbnail(jpeg: bytes, size: tuple[int, int], width: int) -> bytes:
    """A JPEG thumbnail ``width`` px wide (never wider than the still), aspect ratio kept.

    The still is decoded at 1/2, 1/4 or 1/8 scale by libjpeg when that is still at least ``width``
    wide (much cheaper than a full decode on a Pi Zero), then scaled with ``cv2.INTER_AREA``.

    Args:
        jpeg: the still.
        size: the still's (width, height) px.
        width: thumbnail width, px.

    Raises:
        ValueError: the JPEG cannot be decoded or re-encoded.
    """
    w = size[0]
    width, height = thumbnail_size(size, width)
    flag = cv2.IMREAD_COLOR
    for factor, reduced in ((8, cv2.IMREAD_REDUCED_COLOR_8), (4, cv2.IMREAD_REDUCED_COLOR_4),
                            (2, cv2.IMREAD_REDUCED_COLOR_2)):
        if -(-w // factor) >= width:
            flag = reduced
            break
    image = cv2.imdecode(np.frombuffer(jpeg, np.uint8), flag)
    if image is None:
        raise ValueError("the still cannot be decoded")
    if image.shape[1] != width or image.shape[0] != height:
        image = cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, THUMBNAIL_QUALITY])
    if not ok:
        raise ValueError("the thumbnail cannot be encoded")
    return buf.tobytes()
