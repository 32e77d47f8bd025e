"""Crash-safe file writes shared by every store of the service (camera controls, stills).

A power cut while writing must leave either the old file or the new one, never a truncated one: data
goes to a temporary file in the same directory, is flushed and fsynced, then renamed over the final
name (``os.replace`` is atomic on POSIX); :func:`fsync_dir` then makes the rename itself durable.
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path

log = logging.getLogger(__name__)


def fsync_dir(path: Path) -> None:
    """fsync the directory ``path`` so the renames and creations inside it survive a power cut.

    Raises:
        OSError: the directory cannot be opened or synced.
    """
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def unlink_quietly(path: Path) -> None:
    """Remove ``path``; a missing file is fine, other errors are logged, never raised."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    except OSError as exc:
        log.warning("cannot remove %s: %s", path, exc)


def write_atomic(path: Path, data: bytes) -> int:
    """Write ``data`` to ``path`` through a temp file in the same directory (fsync + rename).

    The directory must exist; it is not fsynced here (call :func:`fsync_dir` once after a batch).
    Returns the bytes written.

    Raises:
        OSError: writing failed (e.g. ENOSPC); the temp file is removed and ``path`` is untouched.
    """
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            view = memoryview(data)
            while view:
                view = view[fh.write(view):]
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        unlink_quietly(Path(tmp))
        raise
    return len(data)
