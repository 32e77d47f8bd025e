"""The durable outbox: what the camera still has to deliver to the central server, on disk.

Layout under ``<state_dir>``::

    outbox.db                 SQLite database (WAL journal, synchronous=FULL)
    outbox/<item_id>-<part>.jpg   images the items name (face crops, full frames, photos)

Table ``items``: ``item_id`` (32 hex, ``uuid4().hex`` made here when the item is recorded; the
central server stores an id once, so a re-sent item is answered ``duplicate``), ``kind``
(``face_event`` | ``photo``), ``created_at`` (s since the epoch), ``payload`` (JSON text),
``files`` (JSON list of file names in ``outbox/``, or NULL), ``size`` (bytes: payload + files),
``attempts`` (failed deliveries), ``last_error``. Table ``counters`` keeps ``dropped``, ``rejected``,
``sent`` and a few texts (last error, last rejection reason, last send time) across restarts.

Durability order:

* :meth:`Outbox.add`: every file is written through :func:`~pcs_common.fileio.write_atomic`
  (temp file, fsync, rename) and the directory fsynced *before* the row naming them is committed;
  a crash in between leaves only an orphan file, removed on the next :meth:`Outbox.open`.
* :meth:`Outbox.ack` / :meth:`Outbox.reject` / dropping: the rows are deleted (committed) first,
  then the files unlinked; a crash in between again leaves orphans only.

Bounds (:class:`OutboxLimits`): at most ``max_items`` rows, ``max_bytes`` bytes and items no older
than ``max_age_s``; the oldest go first, counted in the persistent ``dropped`` counter.

All methods are thread-safe (one connection behind a lock): the detection thread adds, the sender
(an asyncio task, through ``asyncio.to_thread``) peeks and acknowledges.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pcs_common.fileio import fsync_dir, make_private_dir, prepare_private_sqlite, unlink_quietly, write_atomic
from pcs_common.timefmt import utc_iso_ms as iso_utc  # the old name, still imported by the sender

log = logging.getLogger("pi_camera_service.outbox")

DB_FILE = "outbox.db"
"""Name of the database in the state directory."""

FILES_DIR = "outbox"
"""Name of the directory of the items' files in the state directory."""

Kind = Literal["face_event", "photo"]
KINDS: tuple[str, ...] = ("face_event", "photo")

MB = 1024 * 1024

_SCHEMA = """
CREATE TABLE IF NOT EXISTS items (
    item_id    TEXT PRIMARY KEY,
    kind       TEXT NOT NULL,
    created_at REAL NOT NULL,
    payload    TEXT NOT NULL,
    files      TEXT,
    size       INTEGER NOT NULL,
    attempts   INTEGER NOT NULL DEFAULT 0,
    last_error TEXT
);
CREATE INDEX IF NOT EXISTS items_by_age ON items (created_at);
CREATE TABLE IF NOT EXISTS counters (
    name  TEXT PRIMARY KEY,
    value
);
"""


class OutboxError(RuntimeError):
    """The outbox cannot be used (database not opened, or closed)."""


@dataclass(frozen=True)
class OutboxLimits:
    """Bounds of the outbox; the oldest items are dropped (and counted) to keep them.

    Attributes:
        max_items: most items kept (>= 1).
        max_bytes: most bytes kept, payloads + files (>= 1).
        max_age_s: items older than this are dropped, s (> 0).
    """

    max_items: int = 10_000
    max_bytes: int = 200 * MB
    max_age_s: float = 30 * 86_400.0


@dataclass(frozen=True)
class OutboxItem:
    """One stored item, as :meth:`Outbox.peek` returns it.

    Attributes:
        item_id: 32 hex characters.
        kind: ``face_event`` | ``photo``.
        created_at: when it was recorded, s since the epoch.
        payload: the JSON object stored with it.
        files: absolute paths of its files (may be empty).
        size: bytes (payload + files).
        attempts: failed deliveries so far.
        last_error: message of the latest failed delivery, or None.
    """

    item_id: str
    kind: str
    created_at: float
    payload: dict[str, Any]
    files: tuple[Path, ...]
    size: int
    attempts: int
    last_error: str | None

    def file_named(self, name: str) -> Path | None:
        """The path among :attr:`files` whose name is ``name``, or None."""
        for path in self.files:
            if path.name == name:
                return path
        return None


def new_item_id() -> str:
    """A fresh item id: ``uuid.uuid4().hex`` (32 lowercase hex characters)."""
    return uuid.uuid4().hex


class Outbox:
    """The outbox database and its files (see the module docstring).

    Args:
        state_dir: directory holding ``outbox.db`` and ``outbox/`` (created, mode 0700, when missing).
        limits: bounds.
        clock: ``() -> float`` s since the epoch (tests pass a fake one).

    Call :meth:`open` before anything else, :meth:`close` at the end.
    """

    def __init__(self, state_dir: Path, limits: OutboxLimits | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.state_dir = Path(state_dir)
        self.db_path = self.state_dir / DB_FILE
        self.files_dir = self.state_dir / FILES_DIR
        self.limits = limits or OutboxLimits()
        self._clock = clock
        self._lock = threading.RLock()
        self._db: sqlite3.Connection | None = None
        self._listeners: list[Callable[[], None]] = []

    @classmethod
    def from_settings(cls, settings: Any) -> Outbox:
        """An outbox in ``settings.state_dir`` bounded by ``outbox_max_items``, ``outbox_max_mb`` (MB)
        and ``outbox_max_age_days`` (days). Not opened yet."""
        return cls(
            Path(settings.state_dir),
            OutboxLimits(
                max_items=int(settings.outbox_max_items),
                max_bytes=int(settings.outbox_max_mb * MB),
                max_age_s=float(settings.outbox_max_age_days) * 86_400.0,
            ),
        )

    # ------------------------------------------------------------------ lifecycle
    def open(self) -> None:
        """Open (creating when needed) the database in WAL mode with ``synchronous=FULL``, remove
        leftover temp files and files no row names, then apply the bounds. Idempotent.

        Raises:
            OSError: the state directory cannot be created or written.
            sqlite3.Error: the database cannot be opened (e.g. not a database).
        """
        with self._lock:
            if self._db is not None:
                return
            make_private_dir(self.state_dir)
            make_private_dir(self.files_dir)
            prepare_private_sqlite(self.db_path)  # 0600: it holds face encodings
            db = sqlite3.connect(self.db_path, check_same_thread=False, isolation_level=None, timeout=30)
            try:
                mode = db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
                if str(mode).lower() != "wal":
                    raise sqlite3.OperationalError(f"cannot switch {self.db_path} to WAL (journal_mode={mode})")
                db.execute("PRAGMA synchronous=FULL")
                db.executescript(_SCHEMA)
            except BaseException:
                db.close()
                raise
            self._db = db
            self._clean_files()
        self.enforce_limits()

    def close(self) -> None:
        """Close the database (idempotent); every committed item stays for the next :meth:`open`."""
        with self._lock:
            db, self._db = self._db, None
        if db is not None:
            db.close()

    def add_listener(self, listener: Callable[[], None]) -> None:
        """Call ``listener()`` after each :meth:`add` (on the adding thread; keep it quick)."""
        with self._lock:
            self._listeners = [*self._listeners, listener]

    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            raise OutboxError("the outbox is not open")
        return self._db

    def _clean_files(self) -> None:
        """Remove temp files and files whose item is not in the database (crash leftovers)."""
        names: set[str] = set()
        for (files,) in self._conn().execute("SELECT files FROM items WHERE files IS NOT NULL"):
            names.update(json.loads(files))
        removed = 0
        for entry in os.scandir(self.files_dir):
            if entry.name not in names:
                unlink_quietly(Path(entry.path))
                removed += 1
        if removed:
            log.info("outbox: removed %d leftover file(s) from an interrupted write or delete", removed)
            fsync_dir(self.files_dir)

    # ------------------------------------------------------------------ writing
    def add(self, kind: Kind, payload: Mapping[str, Any], files: Mapping[str, bytes] | None = None,
            *, item_id: str | None = None, created_at: float | None = None) -> str:
        """Record one item durably; returns its id.

        Args:
            kind: ``face_event`` | ``photo``.
            payload: JSON-serialisable object stored with the item.
            files: ``{part: bytes}``; each is stored as ``outbox/<item_id>-<part>`` (``part`` is a
                simple file name such as ``crop0.jpg``). Written and fsynced before the row commits.
            item_id: the id to use (default: :func:`new_item_id`).
            created_at: s since the epoch (default: now).

        Returns:
            the item id (32 hex).

        Raises:
            ValueError: unknown ``kind``, a bad ``part`` name, or a payload that is not JSON.
            OutboxError: the outbox is not open.
            OSError: a file cannot be written (e.g. ENOSPC); nothing of the item is kept.
            sqlite3.Error: the row cannot be committed; its files are removed.
        """
        if kind not in KINDS:
            raise ValueError(f"unknown outbox item kind {kind!r}; expected one of {KINDS}")
        item_id = item_id or new_item_id()
        body = json.dumps(payload, separators=(",", ":"), allow_nan=False)
        now = self._clock() if created_at is None else float(created_at)
        parts = dict(files or {})
        for part in parts:
            if not part or "/" in part or part.startswith("."):
                raise ValueError(f"bad file part name {part!r}")
        self._conn()
        names = [f"{item_id}-{part}" for part in parts]
        written: list[Path] = []
        try:
            for name, data in zip(names, parts.values()):
                path = self.files_dir / name
                write_atomic(path, bytes(data))
                written.append(path)
            if written:
                fsync_dir(self.files_dir)
            size = len(body) + sum(len(d) for d in parts.values())
            with self._lock:
                self._conn().execute(
                    "INSERT INTO items (item_id, kind, created_at, payload, files, size) VALUES (?, ?, ?, ?, ?, ?)",
                    (item_id, kind, now, body, json.dumps(names) if names else None, size),
                )
        except BaseException:
            for path in written:
                unlink_quietly(path)
            raise
        self.enforce_limits()
        for listener in self._listeners:
            try:
                listener()
            except Exception:
                log.exception("outbox listener %r failed", listener)
        return item_id

    def enforce_limits(self) -> int:
        """Drop the oldest items beyond ``max_age_s``, ``max_items`` and ``max_bytes``; returns how many
        were dropped (added to the persistent ``dropped`` counter, logged at WARNING).

        Raises:
            OutboxError: the outbox is not open.
        """
        limits = self.limits
        with self._lock:
            db = self._conn()
            cutoff = self._clock() - limits.max_age_s
            victims = [r[0] for r in db.execute("SELECT item_id FROM items WHERE created_at < ?", (cutoff,))]
            count, total = db.execute("SELECT COUNT(*), COALESCE(SUM(size), 0) FROM items WHERE created_at >= ?",
                                      (cutoff,)).fetchone()
            if count > limits.max_items or total > limits.max_bytes:
                for item_id, size in db.execute(
                    "SELECT item_id, size FROM items WHERE created_at >= ? ORDER BY created_at, rowid", (cutoff,)
                ):
                    if count <= limits.max_items and total <= limits.max_bytes:
                        break
                    victims.append(item_id)
                    count -= 1
                    total -= size
            if not victims:
                return 0
            files, _ = self._delete(victims, counter="dropped")
        self._unlink(files)
        log.warning("outbox: dropped %d oldest item(s) to stay within %d items / %g MB / %g days",
                    len(victims), limits.max_items, limits.max_bytes / MB, limits.max_age_s / 86_400)
        return len(victims)

    def _delete(self, item_ids: list[str], counter: str,
                text: tuple[str, str] | None = None) -> tuple[list[Path], int]:
        """Delete rows (one transaction) and bump ``counter`` by the rows deleted; returns their files
        and the number of rows deleted. Caller holds the lock."""
        db = self._conn()
        files: list[Path] = []
        db.execute("BEGIN IMMEDIATE")
        try:
            deleted = 0
            for start in range(0, len(item_ids), 500):
                chunk = item_ids[start:start + 500]
                marks = ",".join("?" * len(chunk))
                for (names,) in db.execute(f"SELECT files FROM items WHERE item_id IN ({marks}) AND files IS NOT NULL",
                                           chunk):
                    files.extend(self.files_dir / n for n in json.loads(names))
                deleted += db.execute(f"DELETE FROM items WHERE item_id IN ({marks})", chunk).rowcount
            if deleted:
                self._bump(counter, deleted)
            if text is not None:
                self._set_text(*text)
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return files, deleted

    def _unlink(self, files: Iterable[Path]) -> None:
        files = list(files)
        for path in files:
            unlink_quietly(path)
        if files:
            try:
                fsync_dir(self.files_dir)
            except OSError as exc:
                log.warning("outbox: cannot sync %s: %s", self.files_dir, exc)

    def _bump(self, name: str, by: int) -> None:
        self._conn().execute(
            "INSERT INTO counters (name, value) VALUES (?, ?) "
            "ON CONFLICT(name) DO UPDATE SET value = COALESCE(value, 0) + excluded.value", (name, by))

    def _set_text(self, name: str, value: str | None) -> None:
        self._conn().execute(
            "INSERT INTO counters (name, value) VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET value = excluded.value",
            (name, value))

    # ------------------------------------------------------------------ reading and acknowledging
    def peek(self, batch: int = 100, kind: Kind | None = None, max_bytes: int | None = None) -> list[OutboxItem]:
        """The oldest items (oldest first), at most ``batch`` of them; nothing is removed.

        Args:
            batch: most items returned (>= 1).
            kind: only this kind (None: any).
            max_bytes: stop before the total size passes this many bytes (the first item is always
                returned, whatever its size).

        Raises:
            OutboxError: the outbox is not open.
        """
        query = "SELECT item_id, kind, created_at, payload, files, size, attempts, last_error FROM items"
        args: list[Any] = []
        if kind is not None:
            query += " WHERE kind = ?"
            args.append(kind)
        query += " ORDER BY created_at, rowid LIMIT ?"
        args.append(max(1, int(batch)))
        with self._lock:
            rows = self._conn().execute(query, args).fetchall()
        items: list[OutboxItem] = []
        total = 0
        for item_id, k, created, payload, files, size, attempts, error in rows:
            if items and max_bytes is not None and total + size > max_bytes:
                break
            total += size
            items.append(OutboxItem(
                item_id, k, created, json.loads(payload),
                tuple(self.files_dir / n for n in json.loads(files)) if files else (),
                size, attempts, error,
            ))
        return items

    def ack(self, item_ids: Iterable[str]) -> int:
        """The central server has the items: delete their rows (one transaction), then their files.
        Counts them in ``sent`` and sets ``last_sent_at``; unknown ids are ignored.

        Returns:
            the number of rows deleted.

        Raises:
            OutboxError: the outbox is not open.
        """
        ids = list(dict.fromkeys(item_ids))
        if not ids:
            return 0
        with self._lock:
            files, deleted = self._delete(ids, counter="sent", text=("last_sent_at", repr(self._clock())))
        self._unlink(files)
        return deleted

    def reject(self, item_id: str, reason: str) -> bool:
        """The central server will never accept the item: delete it (and its files), count it in
        ``rejected`` and keep ``reason`` as ``last_rejected_reason``. Returns True if it was there.

        Raises:
            OutboxError: the outbox is not open.
        """
        with self._lock:
            files, deleted = self._delete([item_id], counter="rejected",
                                          text=("last_rejected_reason", str(reason)[:500]))
        self._unlink(files)
        if deleted:
            log.warning("outbox: item %s rejected by the central server: %s", item_id, reason)
        return deleted > 0

    def note_failure(self, item_ids: Iterable[str], error: str) -> None:
        """A delivery of these items failed (they stay): ``attempts += 1``, their ``last_error`` and the
        outbox's ``last_error`` become ``error``.

        Raises:
            OutboxError: the outbox is not open.
        """
        ids = list(item_ids)
        error = str(error)[:500]
        with self._lock:
            db = self._conn()
            db.execute("BEGIN IMMEDIATE")
            try:
                db.executemany("UPDATE items SET attempts = attempts + 1, last_error = ? WHERE item_id = ?",
                               [(error, i) for i in ids])
                self._set_text("last_error", error)
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise

    def clear_error(self) -> None:
        """A delivery succeeded: ``last_error`` becomes None.

        Raises:
            OutboxError: the outbox is not open.
        """
        with self._lock:
            self._set_text("last_error", None)

    def depth(self) -> int:
        """Number of items waiting.

        Raises:
            OutboxError: the outbox is not open.
        """
        with self._lock:
            return self._conn().execute("SELECT COUNT(*) FROM items").fetchone()[0]

    def get_text(self, name: str) -> Any:
        """A stored counter or text (``last_queued_still`` etc.), or None.

        Raises:
            OutboxError: the outbox is not open.
        """
        with self._lock:
            row = self._conn().execute("SELECT value FROM counters WHERE name = ?", (name,)).fetchone()
        return row[0] if row else None

    def set_text(self, name: str, value: str | None) -> None:
        """Store a text under ``name`` (survives restarts).

        Raises:
            OutboxError: the outbox is not open.
        """
        with self._lock:
            self._set_text(name, value)

    def stats(self) -> dict[str, Any]:
        """What ``GET /v1/outbox`` reports about the store.

        Returns:
            ``{depth, by_kind: {kind: n}, bytes, oldest_item_at (ISO-8601 UTC or None),
            oldest_age_s (s or None), last_error, last_sent_at (ISO-8601 UTC or None), dropped,
            rejected, last_rejected_reason, sent, limits: {max_items, max_bytes, max_age_s}}``.

        Raises:
            OutboxError: the outbox is not open.
        """
        with self._lock:
            db = self._conn()
            depth, size, oldest = db.execute(
                "SELECT COUNT(*), COALESCE(SUM(size), 0), MIN(created_at) FROM items").fetchone()
            by_kind = dict(db.execute("SELECT kind, COUNT(*) FROM items GROUP BY kind").fetchall())
            counters = dict(db.execute("SELECT name, value FROM counters").fetchall())
        now = self._clock()
        sent_at = counters.get("last_sent_at")
        return {
            "depth": depth,
            "by_kind": {k: by_kind.get(k, 0) for k in KINDS},
            "bytes": size,
            "oldest_item_at": iso_utc(oldest) if oldest is not None else None,
            "oldest_age_s": round(max(0.0, now - oldest), 3) if oldest is not None else None,
            "last_error": counters.get("last_error"),
            "last_sent_at": iso_utc(float(sent_at)) if sent_at else None,
            "dropped": int(counters.get("dropped") or 0),
            "rejected": int(counters.get("rejected") or 0),
            "last_rejected_reason": counters.get("last_rejected_reason"),
            "sent": int(counters.get("sent") or 0),
            "limits": {"max_items": self.limits.max_items, "max_bytes": self.limits.max_bytes,
                       "max_age_s": self.limits.max_age_s},
        }
