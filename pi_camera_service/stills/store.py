"""The stills history on disk and its in-memory index.

Layout under the stills directory (``CAMERA_STILLS_DIR``)::

    2026-11-22/                       one directory per local day (YYYY-MM-DD)
        20261122_143005_123.jpg       the still (full main-stream size); the id is the stem
        20261122_143005_123.thumb.jpg its thumbnail (made once, at capture)
        20261122_143005_123.json      the sidecar: metadata, and the commit marker

An id is the local capture time to the millisecond, ``YYYYMMDD_HHMMSS_mmm``, so ids sort in time
order (except within the hour repeated when daylight saving time ends) and name their day. Two
stills in the same millisecond get the next free millisecond.

Writing a still: each file is written to a temporary file in the day directory (``.<name>.<random>.tmp``),
flushed, fsynced and renamed over its final name; the JPEG and thumbnail first, then the directory is
fsynced, then the sidecar, then the directory again. A still exists once its sidecar exists. If
anything fails (a full disk: ``ENOSPC``, no inode left, an I/O error), every file of that still is
removed again and the error is raised; nothing partial stays. At start-up (:meth:`StillStore.open`)
temporary files, and JPEGs or thumbnails without a sidecar (left by a power cut) are removed.

The index (one small record per still, sorted by id) is built once at start-up by reading the sidecars
and then kept up to date by :meth:`StillStore.add` and :meth:`StillStore.delete`, so listing, paging
and retention never scan the disk.
"""

from __future__ import annotations

import base64
import bisect
import errno
import json
import logging
import math
import os
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import cv2
import numpy as np

from pcs_common.fileio import fsync_dir, unlink_quietly, write_atomic

log = logging.getLogger(__name__)

Trigger = Literal["schedule", "detection", "manual"]
TRIGGERS: tuple[str, ...] = ("schedule", "detection", "manual")

#: ``YYYYMMDD_HHMMSS_mmm`` (local capture time, ASCII digits; always used with ``fullmatch``): the only
#: accepted still id, so no other path can be built from a request
ID_RE = re.compile(r"[0-9]{8}_[0-9]{6}_[0-9]{3}")
#: ``YYYY-MM-DD`` (with ``fullmatch``): a day directory and the ``day`` filter
DAY_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
#: JPEG quality of thumbnails
THUMBNAIL_QUALITY = 80
#: bumped when the sidecar layout changes incompatibly
SIDECAR_FORMAT = 1
_CURSOR_PREFIX = "s1:"


class InvalidId(ValueError):
    """A still id that does not match :data:`ID_RE` (``YYYYMMDD_HHMMSS_mmm``)."""


class InvalidCursor(ValueError):
    """A pagination cursor that this store did not issue."""


class InvalidDay(ValueError):
    """A day that is not a calendar date written ``YYYY-MM-DD``."""


@dataclass(frozen=True, slots=True)
class StillRecord:
    """One still in the index (what listings return; the sidecar has more).

    Attributes:
        id: ``YYYYMMDD_HHMMSS_mmm``, the local capture time.
        taken_at: capture time, s since the epoch.
        taken_at_iso: local capture time, ISO 8601 with the UTC offset, ms precision.
        trigger: ``schedule`` | ``detection`` | ``manual``.
        width, height: the JPEG's size, px.
        bytes: size of the JPEG, bytes.
        disk_bytes: size of the JPEG, thumbnail and sidecar together, bytes (what retention counts).
        nb_faces, nb_profiles: faces in the detection result stored with the still, None when no
            (recent enough) result was stored.
    """

    id: str
    taken_at: float
    taken_at_iso: str
    trigger: str
    width: int
    height: int
    bytes: int
    disk_bytes: int
    nb_faces: int | None
    nb_profiles: int | None

    @property
    def day(self) -> str:
        """The local day ``YYYY-MM-DD`` (also the directory name)."""
        return day_of(self.id)

    def to_dict(self) -> dict[str, Any]:
        """``{id, taken_at, taken_at_iso, trigger, width, height, bytes, nb_faces, nb_profiles}``."""
        return {
            "id": self.id, "taken_at": self.taken_at, "taken_at_iso": self.taken_at_iso, "trigger": self.trigger,
            "width": self.width, "height": self.height, "bytes": self.bytes,
            "nb_faces": self.nb_faces, "nb_profiles": self.nb_profiles,
        }


# ------------------------------------------------------------------------------------ helpers
def day_of(still_id: str) -> str:
    """``20261122_143005_123`` -> ``2026-11-22``."""
    return f"{still_id[0:4]}-{still_id[4:6]}-{still_id[6:8]}"


def check_id(still_id: str) -> str:
    """Return ``still_id`` if it is a well-formed id.

    Raises:
        InvalidId: it does not match ``YYYYMMDD_HHMMSS_mmm``.
    """
    if not isinstance(still_id, str) or not ID_RE.fullmatch(still_id):
        raise InvalidId(
            f"{still_id!r} is not a still id; ids look like 20261122_143005_123 (YYYYMMDD_HHMMSS_mmm, local time)"
        )
    return still_id


def check_day(day: str) -> str:
    """Return ``day`` if it is a calendar date written ``YYYY-MM-DD``.

    Raises:
        InvalidDay: any other string (``2026-02-30`` included).
    """
    try:
        if not DAY_RE.fullmatch(day):
            raise ValueError
        datetime.strptime(day, "%Y-%m-%d")
    except (TypeError, ValueError):
        raise InvalidDay(f"day={day!r} is not a date; use YYYY-MM-DD, such as 2026-11-22") from None
    return day


def encode_cursor(still_id: str) -> str:
    """The opaque cursor that continues a listing after ``still_id`` (URL-safe base64)."""
    return base64.urlsafe_b64encode((_CURSOR_PREFIX + still_id).encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> str:
    """The still id inside a cursor made by :func:`encode_cursor`.

    Raises:
        InvalidCursor: the cursor was not made by :func:`encode_cursor`.
    """
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
    except (ValueError, UnicodeDecodeError):
        raw = ""
    still_id = raw.removeprefix(_CURSOR_PREFIX)
    if not raw.startswith(_CURSOR_PREFIX) or not ID_RE.fullmatch(still_id):
        raise InvalidCursor(
            f"cursor={cursor!r} is not a cursor this API issued; pass next_cursor from the previous page unchanged, "
            "or no cursor for the first page"
        )
    return still_id


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


def compact_detection(result: dict[str, Any] | None) -> dict[str, Any] | None:
    """A detection result dict (``DetectionResult.to_dict()``) without the 128-float face encodings.

    Encodings would make each sidecar ~2.5 KB per face larger; boxes, counts and timestamps are kept.
    """
    if result is None:
        return None
    out = dict(result)
    out["faces"] = [{k: v for k, v in face.items() if k != "encoding"} for face in result.get("faces", ())]
    return out


# ------------------------------------------------------------------------------------ the store
class StillStore:
    """The stills history under ``root`` and its in-memory index. Thread-safe.

    Args:
        root: the stills directory (created at the first still, not before).
        thumbnail_width: thumbnail width, px.
    """

    def __init__(self, root: Path, thumbnail_width: int = 320) -> None:
        self.root = Path(root)
        self.thumbnail_width = thumbnail_width
        self._lock = threading.Lock()
        self._ids: list[str] = []  # sorted ascending
        self._records: dict[str, StillRecord] = {}
        self._reserved: set[str] = set()  # ids being written
        self._dir_lock = threading.Lock()  # a write and the removal of an emptied day directory exclude each other
        self._days: dict[str, list[int]] = {}  # day -> [count, disk bytes]
        self._total = 0

    # --- paths ------------------------------------------------------------------------------------
    def jpeg_path(self, still_id: str) -> Path:
        """Where the JPEG of ``still_id`` is (whether or not it exists). Raises :class:`InvalidId`."""
        return self.root / day_of(check_id(still_id)) / f"{still_id}.jpg"

    def thumbnail_path(self, still_id: str) -> Path:
        """Where the thumbnail of ``still_id`` is. Raises :class:`InvalidId`."""
        return self.root / day_of(check_id(still_id)) / f"{still_id}.thumb.jpg"

    def sidecar_path(self, still_id: str) -> Path:
        """Where the sidecar of ``still_id`` is. Raises :class:`InvalidId`."""
        return self.root / day_of(check_id(still_id)) / f"{still_id}.json"

    # --- start-up ---------------------------------------------------------------------------------
    def open(self) -> dict[str, int]:
        """Build the index from the sidecars on disk and clean up after interrupted writes.

        Removes temporary files, JPEGs and thumbnails without a sidecar, sidecars that cannot be
        read or whose JPEG is missing (with a warning), and empty day directories. Files and
        directories with other names are left alone. A missing stills directory is an empty history.

        Returns:
            ``{"stills": n, "removed": files removed}``.

        Raises:
            OSError: the stills directory exists but cannot be listed.
        """
        records: list[StillRecord] = []
        removed = 0
        if self.root.is_dir():
            for day_entry in sorted(os.scandir(self.root), key=lambda e: e.name):
                if not (DAY_RE.fullmatch(day_entry.name) and day_entry.is_dir(follow_symlinks=False)):
                    continue
                found, n = self._scan_day(Path(day_entry.path))
                records.extend(found)
                removed += n
        with self._lock:
            self._ids = sorted(r.id for r in records)
            self._records = {r.id: r for r in records}
            self._days = {}
            self._total = 0
            for r in records:
                self._account(r, +1)
        if removed:
            log.warning("stills: removed %d leftover file(s) of interrupted writes under %s", removed, self.root)
        log.info("stills: %d still(s), %.1f MB under %s", len(records), self._total / 1e6, self.root)
        return {"stills": len(records), "removed": removed}

    def _scan_day(self, day_dir: Path) -> tuple[list[StillRecord], int]:
        sizes = {}
        for entry in os.scandir(day_dir):
            if entry.is_file(follow_symlinks=False):
                sizes[entry.name] = entry.stat(follow_symlinks=False).st_size
        removed = 0
        records = []
        day = day_dir.name
        for name in sorted(sizes):
            if name.startswith(".") and name.endswith(".tmp"):
                unlink_quietly(day_dir / name)
                removed += 1
                continue
            if not name.endswith(".json"):
                continue
            still_id = name[:-5]
            if not ID_RE.fullmatch(still_id):
                continue
            problem = None
            if day_of(still_id) != day:
                problem = "is in the wrong day directory"
            elif f"{still_id}.jpg" not in sizes:
                problem = "has no JPEG"
            else:
                try:
                    meta = json.loads((day_dir / name).read_bytes())
                    record = self._record(meta, sizes.get(f"{still_id}.jpg", 0) + sizes.get(f"{still_id}.thumb.jpg", 0)
                                          + sizes[name])
                    if record.id != still_id:
                        raise ValueError(f"its id is {record.id!r}")
                except (OSError, ValueError, KeyError, TypeError) as exc:
                    problem = f"cannot be read ({exc})"
            if problem is not None:
                log.warning("stills: sidecar %s %s; removing that still", day_dir / name, problem)
                for suffix in (".json", ".jpg", ".thumb.jpg"):
                    if f"{still_id}{suffix}" in sizes:
                        unlink_quietly(day_dir / f"{still_id}{suffix}")
                        removed += 1
                continue
            records.append(record)
        committed = {r.id for r in records}
        for name in sizes:
            for suffix in (".thumb.jpg", ".jpg"):
                if name.endswith(suffix):
                    stem = name[: -len(suffix)]
                    if ID_RE.fullmatch(stem) and stem not in committed and (day_dir / name).exists():
                        unlink_quietly(day_dir / name)  # written before a sidecar that never came
                        removed += 1
                    break
        if not records:
            try:
                day_dir.rmdir()
            except OSError:
                pass  # other files in it, left alone
        return records, removed

    @staticmethod
    def _record(meta: dict[str, Any], disk_bytes: int) -> StillRecord:
        detection = meta.get("detection")
        return StillRecord(
            id=check_id(meta["id"]),
            taken_at=float(meta["taken_at"]),
            taken_at_iso=str(meta["taken_at_iso"]),
            trigger=str(meta["trigger"]),
            width=int(meta["width"]),
            height=int(meta["height"]),
            bytes=int(meta["bytes"]),
            disk_bytes=int(disk_bytes),
            nb_faces=int(detection["nb_faces"]) if detection else None,
            nb_profiles=int(detection["nb_profiles"]) if detection else None,
        )

    def _account(self, record: StillRecord, sign: int) -> None:
        """Update day counts and the total (caller holds the lock)."""
        entry = self._days.setdefault(record.day, [0, 0])
        entry[0] += sign
        entry[1] += sign * record.disk_bytes
        if entry[0] <= 0:
            del self._days[record.day]
        self._total += sign * record.disk_bytes

    # --- writing ----------------------------------------------------------------------------------
    def _new_id(self, taken_at: float) -> str:
        """The id for ``taken_at``, moved on by 1 ms while taken (caller holds the lock)."""
        ms = math.floor(taken_at * 1000)
        moment = datetime.fromtimestamp(ms // 1000) + timedelta(milliseconds=ms % 1000)
        while True:
            still_id = moment.strftime("%Y%m%d_%H%M%S_") + f"{moment.microsecond // 1000:03d}"
            if still_id not in self._records and still_id not in self._reserved \
                    and not self.sidecar_path(still_id).exists():
                return still_id
            moment += timedelta(milliseconds=1)

    def add(
        self,
        jpeg: bytes,
        *,
        taken_at: float | None = None,
        trigger: Trigger = "manual",
        detection: dict[str, Any] | None = None,
        camera: dict[str, Any] | None = None,
    ) -> StillRecord:
        """Store a still: JPEG, thumbnail and sidecar, atomically, and add it to the index.

        Args:
            jpeg: the still as JPEG bytes.
            taken_at: capture time, s since the epoch (default: now), kept to the millisecond; names
                the still and its day.
            trigger: ``schedule`` | ``detection`` | ``manual``.
            detection: ``DetectionResult.to_dict()`` to store with it (encodings are dropped), or None.
            camera: camera metadata to store with it (JSON-serialisable; other values become strings).

        Returns:
            the new :class:`StillRecord`.

        Raises:
            ValueError: ``jpeg`` is not a decodable JPEG or ``trigger`` is unknown (nothing written).
            OSError: writing failed (``errno.ENOSPC`` when the disk or its inodes are full); every file
                of this still has been removed again and the index is unchanged.
        """
        if trigger not in TRIGGERS:
            raise ValueError(f"trigger must be one of {', '.join(TRIGGERS)}, got {trigger!r}")
        taken_at = math.floor((time.time() if taken_at is None else float(taken_at)) * 1000) / 1000
        width, height = jpeg_size(jpeg)
        thumbnail = make_thumbnail(jpeg, (width, height), self.thumbnail_width)
        detection = compact_detection(detection)
        with self._lock:
            still_id = self._new_id(taken_at)
            self._reserved.add(still_id)
        try:
            with self._dir_lock:
                record = self._write(still_id, jpeg, thumbnail, (width, height), taken_at, trigger, detection, camera)
        except BaseException:
            with self._lock:
                self._reserved.discard(still_id)
            raise
        with self._lock:
            self._reserved.discard(still_id)
            self._records[still_id] = record
            bisect.insort(self._ids, still_id)
            self._account(record, +1)
        return record

    def _write(
        self, still_id: str, jpeg: bytes, thumbnail: bytes, size: tuple[int, int], taken_at: float,
        trigger: str, detection: dict[str, Any] | None, camera: dict[str, Any] | None,
    ) -> StillRecord:
        day_dir = self.root / day_of(still_id)
        jpeg_path, thumb_path, sidecar_path = (
            self.jpeg_path(still_id), self.thumbnail_path(still_id), self.sidecar_path(still_id)
        )
        created_dir = False
        try:
            if not day_dir.is_dir():
                day_dir.mkdir(parents=True, exist_ok=True)
                created_dir = True
            write_atomic(jpeg_path, jpeg)
            write_atomic(thumb_path, thumbnail)
            fsync_dir(day_dir)  # the JPEG and thumbnail are durable before the sidecar commits them
            iso = datetime.fromtimestamp(taken_at).astimezone().isoformat(timespec="milliseconds")
            sidecar = {
                "format": SIDECAR_FORMAT,
                "id": still_id,
                "taken_at": taken_at,
                "taken_at_iso": iso,
                "trigger": trigger,
                "width": size[0],
                "height": size[1],
                "bytes": len(jpeg),
                "thumbnail": dict(zip(("width", "height"), thumbnail_size(size, self.thumbnail_width)),
                                  bytes=len(thumbnail)),
                "detection": detection,
                "camera": camera or {},
            }
            payload = json.dumps(sidecar, separators=(",", ":"), default=str).encode()
            write_atomic(sidecar_path, payload)
            fsync_dir(day_dir)
        except BaseException as exc:
            for path in (sidecar_path, thumb_path, jpeg_path):
                unlink_quietly(path)
            if created_dir:
                try:
                    day_dir.rmdir()
                except OSError:
                    pass
            if isinstance(exc, OSError):
                level = logging.ERROR if exc.errno != errno.ENOSPC else logging.WARNING
                log.log(level, "stills: could not write %s (%s); nothing of it was kept", still_id, exc)
            raise
        return self._record(sidecar, len(jpeg) + len(thumbnail) + len(payload))

    # --- deleting ---------------------------------------------------------------------------------
    def delete(self, still_id: str) -> StillRecord | None:
        """Remove a still from the index and the disk (sidecar first, so a crash leaves no half still).

        Returns:
            the removed record, or None if there was no such still.

        Raises:
            InvalidId: malformed id.
        """
        check_id(still_id)
        with self._lock:
            record = self._records.get(still_id)
            if record is None:
                return None
            del self._records[still_id]
            index = bisect.bisect_left(self._ids, still_id)
            if index < len(self._ids) and self._ids[index] == still_id:
                del self._ids[index]
            self._account(record, -1)
        for path in (self.sidecar_path(still_id), self.jpeg_path(still_id), self.thumbnail_path(still_id)):
            unlink_quietly(path)
        with self._dir_lock:
            try:
                self.jpeg_path(still_id).parent.rmdir()  # only succeeds once the day is empty
            except OSError:
                pass
        return record

    # --- reading (index only) ---------------------------------------------------------------------
    def get(self, still_id: str) -> StillRecord | None:
        """The record of ``still_id``, or None. Raises :class:`InvalidId` for a malformed id."""
        check_id(still_id)
        return self._records.get(still_id)

    def latest(self) -> StillRecord | None:
        """The newest still's record, or None when there is none."""
        with self._lock:
            return self._records[self._ids[-1]] if self._ids else None

    def oldest(self, n: int = 1) -> list[StillRecord]:
        """The ``n`` oldest records, oldest first."""
        with self._lock:
            return [self._records[i] for i in self._ids[:n]]

    def __len__(self) -> int:
        """Number of stills in the index."""
        return len(self._ids)

    def __iter__(self) -> Iterator[StillRecord]:
        """Records oldest first (a copy: safe while stills are added or deleted)."""
        with self._lock:
            records = [self._records[i] for i in self._ids]
        return iter(records)

    @property
    def total_bytes(self) -> int:
        """Size of every still's JPEG, thumbnail and sidecar together, bytes."""
        return self._total

    def page(
        self, limit: int = 50, cursor: str | None = None, day: str | None = None
    ) -> tuple[list[StillRecord], str | None]:
        """One page of stills, newest first.

        Args:
            limit: most records to return, >= 1.
            cursor: ``next_cursor`` of the previous page, or None for the first page.
            day: only stills of this local day (``YYYY-MM-DD``).

        Returns:
            (records, next_cursor); ``next_cursor`` is None on the last page. Stills added after the
            first page do not shift later pages; deleted ones simply do not appear.

        Raises:
            InvalidCursor: ``cursor`` was not issued by this store.
            InvalidDay: ``day`` is not ``YYYY-MM-DD``.
            ValueError: ``limit`` < 1.
        """
        if limit < 1:
            raise ValueError("limit must be >= 1")
        before = decode_cursor(cursor) if cursor is not None else None
        key = check_day(day).replace("-", "") if day is not None else None
        with self._lock:
            ids = self._ids
            lo, hi = 0, len(ids)
            if key is not None:
                lo = bisect.bisect_left(ids, key)
                hi = bisect.bisect_left(ids, key + "~")  # "~" sorts after every id of that day
            if before is not None:
                hi = min(hi, bisect.bisect_left(ids, before))
            start = max(lo, hi - limit)
            records = [self._records[i] for i in reversed(ids[start:hi])]
        return records, (encode_cursor(records[-1].id) if records and start > lo else None)

    def days(self) -> list[dict[str, Any]]:
        """``[{"day": "YYYY-MM-DD", "count": n, "bytes": disk bytes}]``, newest day first."""
        with self._lock:
            return [{"day": d, "count": c, "bytes": b} for d, (c, b) in sorted(self._days.items(), reverse=True)]

    def read_sidecar(self, still_id: str) -> dict[str, Any] | None:
        """The sidecar of ``still_id`` as stored, or None when there is no such still.

        Raises:
            InvalidId: malformed id.
            OSError, ValueError: the sidecar exists but cannot be read or parsed.
        """
        if self.get(still_id) is None:
            return None
        try:
            return json.loads(self.sidecar_path(still_id).read_bytes())
        except FileNotFoundError:
            return None
