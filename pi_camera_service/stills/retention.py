"""Retention of the stills history: maximum age, maximum total size and a free-disk floor.

:func:`enforce` deletes the oldest stills (by id, i.e. capture time) until all three rules hold:

1. **age**: no still is older than ``max_age_days``;
2. **size**: the stills' JPEGs, thumbnails and sidecars together take at most ``max_total_bytes``
   (plus the ``reserve_bytes`` a capture about to be written needs);
3. **free disk**: the filesystem of the stills directory keeps at least ``min_free_bytes`` free
   after ``reserve_bytes`` more are written (``shutil.disk_usage``, measured again after each deletion).

It works on the in-memory index (no directory scan); only the free-disk rule asks the filesystem.
When the third rule still fails with nothing left to delete, :attr:`RetentionResult.floor_ok` is
false and the caller skips the capture.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from pi_camera_service.stills.store import StillRecord, StillStore

MB = 1_000_000
#: allowance for filesystem blocks, per file of a still (3 files), bytes
BLOCK_ALLOWANCE = 4096


@dataclass(frozen=True)
class RetentionPolicy:
    """The three retention limits.

    Attributes:
        max_age_days: stills older than this many days are deleted (> 0).
        max_total_bytes: largest size of the whole history (JPEG + thumbnail + sidecar), bytes.
        min_free_bytes: free space to keep on the stills filesystem, bytes (0: none).
    """

    max_age_days: float
    max_total_bytes: int
    min_free_bytes: int

    def to_dict(self) -> dict[str, float]:
        """``{max_age_days, max_total_mb, min_free_mb}`` (MB = 10^6 bytes) for the status."""
        return {
            "max_age_days": self.max_age_days,
            "max_total_mb": self.max_total_bytes / MB,
            "min_free_mb": self.min_free_bytes / MB,
        }


@dataclass
class RetentionResult:
    """What one :func:`enforce` pass did.

    Attributes:
        deleted: ids deleted, oldest first.
        by_rule: how many were deleted for ``age``, ``size`` and ``free_disk``.
        freed_bytes: disk bytes of the deleted stills (JPEG + thumbnail + sidecar).
        free_bytes: free bytes on the stills filesystem afterwards.
        floor_ok: ``free_bytes - reserve_bytes >= min_free_bytes``.
        reason: why the floor is not kept (None when it is), one line for status and logs.
    """

    deleted: list[str] = field(default_factory=list)
    by_rule: dict[str, int] = field(default_factory=lambda: {"age": 0, "size": 0, "free_disk": 0})
    freed_bytes: int = 0
    free_bytes: int = 0
    floor_ok: bool = True
    reason: str | None = None


def existing_dir(path: Path) -> Path:
    """``path`` or its nearest existing ancestor (the stills directory is created at the first still)."""
    path = Path(path).absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def disk_free(path: Path) -> int:
    """Free bytes (for unprivileged users) on the filesystem holding ``path`` (or its nearest existing
    ancestor).

    Raises:
        OSError: the filesystem cannot be queried.
    """
    return shutil.disk_usage(existing_dir(path)).free


def enforce(
    store: StillStore,
    policy: RetentionPolicy,
    *,
    now: float | None = None,
    reserve_bytes: int = 0,
    keep: str | None = None,
) -> RetentionResult:
    """Delete the oldest stills until the age, size and free-disk rules hold.

    Args:
        store: the history.
        policy: the limits.
        now: the time the age rule is measured from, s since the epoch (default: now).
        reserve_bytes: disk bytes a still about to be written will take; the size and free-disk rules
            make room for it.
        keep: an id never deleted (the still just taken).

    Returns:
        what was deleted and whether the free-disk floor holds.

    Raises:
        OSError: the free space of the stills filesystem cannot be measured.
    """
    now = time.time() if now is None else now
    result = RetentionResult()

    def oldest() -> StillRecord | None:
        for record in store.oldest(2):
            if record.id != keep:
                return record
        return None

    def drop(record: StillRecord, rule: str) -> None:
        if store.delete(record.id) is not None:
            result.deleted.append(record.id)
            result.by_rule[rule] += 1
            result.freed_bytes += record.disk_bytes

    cutoff = now - policy.max_age_days * 86_400
    while (record := oldest()) is not None and record.taken_at < cutoff:
        drop(record, "age")
    while store.total_bytes + reserve_bytes > policy.max_total_bytes and (record := oldest()) is not None:
        drop(record, "size")
    free = disk_free(store.root)
    while free - reserve_bytes < policy.min_free_bytes and (record := oldest()) is not None:
        drop(record, "free_disk")
        free = disk_free(store.root)
    result.free_bytes = free
    result.floor_ok = free - reserve_bytes >= policy.min_free_bytes
    if not result.floor_ok:
        result.reason = (
            f"disk full: {free / MB:.2f} MB free on the stills filesystem, a still needs {reserve_bytes / MB:.2f} MB "
            f"and CAMERA_STILLS_MIN_FREE_MB={policy.min_free_bytes / MB:g} must stay free, with no older still "
            "left to delete"
        )
    return result


def capture_reserve(jpeg_bytes: int) -> int:
    """Disk bytes to reserve for a still whose JPEG has ``jpeg_bytes`` bytes: the JPEG, a thumbnail
    (a quarter of it at most), a sidecar and a filesystem block per file."""
    return jpeg_bytes + jpeg_bytes // 4 + 3 * BLOCK_ALLOWANCE
