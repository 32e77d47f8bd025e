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

What a still is (its id, day, record and cursor) is in :mod:`pi_camera_service.stills.records`, the
JPEG size and thumbnails in :mod:`pi_camera_service.stills.thumbnails`; both are importable from here
too, as before.
"""

from __future__ import annotations

import bisect
import errno
import json
import logging
import math
import os
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from pcs_common.fileio import fsync_dir, unlink_quietly, write_atomic
from pi_camera_service.stills.records import (
    DAY_RE,
    ID_RE,
    SIDECAR_FORMAT,
    TRIGGERS,
    InvalidCursor,
    InvalidDay,
    InvalidId,
    StillRecord,
    Trigger,
    check_day,
    check_id,
    compact_detection,
    day_of,
    decode_cursor,
    encode_cursor,
)
from pi_camera_service.stills.thumbnails import THUMBNAIL_QUALITY, jpeg_size, make_thumbnail, thumbnail_size

__all__ = [
    "DAY_RE", "ID_RE", "SIDECAR_FORMAT", "THUMBNAIL_QUALITY", "TRIGGERS", "InvalidCursor", "InvalidDay",
    "InvalidId", "StillRecord", "StillStore", "Trigger", "check_day", "check_id", "compact_detection",
    "day_of", "decode_cursor", "encode_cursor", "jpeg_size", "make_thumbnail", "thumbnail_size",
]

log = logging.getLogger(__name__)


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
