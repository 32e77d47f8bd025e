"""Crash-safe file writes and private file modes shared by every store of the service (camera controls,
stills, outbox, secrets; the central server's database and media).

A power cut while writing must leave either the old file or the new one, never a truncated one: data
goes to a temporary file in the same directory, is flushed and fsynced, then renamed over the final
name (``os.replace`` is atomic on POSIX); :func:`fsync_dir` then makes the rename itself durable.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Callable
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


PRIVATE_DIR_MODE = 0o700
"""Mode of every data and state directory: only the service's user may list or enter it."""

PRIVATE_FILE_MODE = 0o600
"""Mode of every data, state and secret file: only the service's user may read or write it."""


def make_private_dir(path: Path) -> Path:
    """Create ``path`` (and missing parents) and make ``path`` itself mode 0700, whatever the umask.

    An existing directory with a wider mode is tightened (logged at WARNING): the directory holds
    secrets, face encodings or photos of people, so other local users must not read it. Parents
    that already existed are left alone (``/var/lib`` belongs to the system). Returns ``path``.

    Raises:
        OSError: the directory cannot be created or its mode changed.
        ValueError: ``path`` is a world-writable sticky directory such as ``/tmp`` (tightening it
            would break every other user of it; configure a directory of the service's own).
    """
    path = Path(path)
    existed = path.is_dir()
    path.mkdir(mode=PRIVATE_DIR_MODE, parents=True, exist_ok=True)
    mode = path.stat().st_mode & 0o7777
    if mode & 0o1000 and mode & 0o002:
        raise ValueError(f"{path} is a shared world-writable directory (mode {mode:o}); use a directory of its own")
    if mode != PRIVATE_DIR_MODE:
        if existed and mode & 0o077:
            log.warning("%s was accessible by other users (mode %o): tightened to 0700", path, mode)
        os.chmod(path, PRIVATE_DIR_MODE)  # also when a umask such as 0277 left the owner without write
    return path


def make_private_file(path: Path) -> bool:
    """Set an existing file's mode to 0600 when it is wider (logged at WARNING); ``True`` when changed.

    A missing file is fine (``False``).

    Raises:
        OSError: the mode cannot be changed (not the file's owner).
    """
    try:
        mode = os.stat(path).st_mode & 0o7777
    except FileNotFoundError:
        return False
    if mode & 0o177 == 0:
        return False
    log.warning("%s was accessible by other users (mode %o): tightened to 0600", path, mode)
    os.chmod(path, PRIVATE_FILE_MODE)
    return True


def prepare_private_sqlite(path: Path) -> None:
    """Make an SQLite database file and its ``-wal``/``-shm``/``-journal`` companions mode 0600.

    The database file is created empty with mode 0600 when missing (an empty file is a valid empty
    SQLite database); SQLite's unix VFS creates the WAL, shared-memory and journal files with the
    mode of the database file (``findCreateFileMode`` in sqlite3's ``os_unix.c``), so they are 0600
    too whatever the umask. Existing files with a wider mode are tightened.

    Raises:
        OSError: the file cannot be created or its mode changed.
    """
    path = Path(path)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), PRIVATE_FILE_MODE)
    try:
        if os.fstat(fd).st_mode & 0o177:
            os.fchmod(fd, PRIVATE_FILE_MODE)
    finally:
        os.close(fd)
    for suffix in ("-wal", "-shm", "-journal"):
        make_private_file(path.with_name(path.name + suffix))


def read_or_create_secret(
    path: Path, generate: Callable[[], str], valid: Callable[[str], bool] = bool
) -> tuple[str, bool]:
    """The secret (or id) stored in ``path``, or a new one from ``generate()`` stored there: ``(value, created)``.

    The one way both services keep a secret file (signing keys, API and pairing keys, the hardware
    id): the directory is made mode 0700 (:func:`make_private_dir`, also when it already existed);
    an existing file is read as UTF-8 and stripped, tightened to 0600 when wider
    (:func:`make_private_file`) and kept when ``valid(value)``; a missing, empty (the default
    ``valid``), undecodable or invalid file is replaced (logged at WARNING unless missing) by
    ``generate()``, written atomically with mode 0600 from its creation on (:func:`write_atomic`:
    ``mkstemp``, fsync, rename, then :func:`fsync_dir`) followed by a newline.

    Args:
        path: the file, e.g. ``<state_dir>/pairing_key``.
        generate: makes a new value, e.g. ``lambda: secrets.token_urlsafe(32)``.
        valid: whether a stored value is usable (default: not empty).

    Raises:
        OSError: the directory or the file cannot be created, read (other than missing), written
            or its mode changed.
        ValueError: the directory is a shared world-writable one such as ``/tmp`` (see
            :func:`make_private_dir`).
    """
    path = Path(path)
    make_private_dir(path.parent)
    try:
        value: str | None = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        value = None
    except UnicodeDecodeError:
        log.warning("%s is not UTF-8 text: replaced by a new value", path)
        value = None
    else:
        make_private_file(path)
        if valid(value):
            return value, False
        log.warning("%s holds no usable value: replaced by a new one", path)
    value = generate()
    write_atomic(path, (value + "\n").encode("utf-8"))  # mkstemp: mode 0600 from the start
    fsync_dir(path.parent)
    return value, True
