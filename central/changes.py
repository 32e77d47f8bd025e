"""Change counters: how every server process on one database knows its in-memory index is current.

Each server process keeps the enrolled and unknown face encodings in memory
(:class:`central.people.FaceRegistry`). A change that alters them (enrolment, merge, deletion of a person
or of an unknown group, naming a group) moves the ``faces`` counter of table ``change_counters`` **in
the same transaction** (:func:`begin_change`); a process compares the version it loaded with the
database's at each request that matches faces (:func:`read`) and reloads when they differ. The
counter move also sends a ``pcs_changes`` notification (:mod:`central.notify`) so that idle processes
refresh before the next request arrives; correctness never depends on that notification.

On PostgreSQL the counter is guarded by a transaction-level advisory lock (PostgreSQL manual,
"Advisory Locks", ``pg_advisory_xact_lock`` / ``pg_advisory_xact_lock_shared``): a change takes it
exclusively as its first statement, a request that matches faces takes it shared before it reads the
version. So a face is never matched against an index that a concurrent, not yet committed change is
making stale (e.g. assigned to an unknown group another process is deleting), and a version read always
describes committed data. Readers never block each other; a change waits for the requests matching at
that moment, and those arriving meanwhile wait for the change (milliseconds). On SQLite (one process,
one writer at a time) the locks are not needed and not taken.
"""

from __future__ import annotations

import zlib

from sqlalchemy import select, text, update
from sqlalchemy.orm import Session

from central.models import ChangeCounter

FACES = "faces"
"""Counter of everything the face index is built from: enrolled encodings, people, unknown groups."""


def _lock_key(name: str) -> int:
    """The advisory lock key of counter ``name``: a fixed 32-bit number (CRC-32 of ``pcs-change:<name>``)."""
    return zlib.crc32(f"pcs-change:{name}".encode())


def _postgresql(db: Session) -> bool:
    return db.get_bind().dialect.name == "postgresql"


def read(db: Session, name: str = FACES) -> int:
    """The committed version of counter ``name`` (0 before its first change), as seen by ``db``'s
    transaction; on PostgreSQL first takes the shared advisory lock, held until that transaction ends,
    so no change of ``name`` commits before it does. Inside a change (after :func:`begin_change`) this
    is the change's own, uncommitted version."""
    if _postgresql(db):
        db.execute(text("SELECT pg_advisory_xact_lock_shared(:key)"), {"key": _lock_key(name)})
    return db.scalar(select(ChangeCounter.version).where(ChangeCounter.name == name)) or 0


def begin_change(db: Session, name: str = FACES) -> int:
    """Start a change of kind ``name`` in ``db``'s transaction; call it before the change's first write.

    Takes the exclusive advisory lock (PostgreSQL; held until commit or rollback), moves the counter by
    one and queues a ``pcs_changes`` notification ``"<name> <version>"`` (delivered at commit). Nothing
    is committed here.

    Returns:
        The counter's new version; the committed version before it is that minus one (no other change
        of ``name`` can commit while this one holds the lock).
    """
    from central.notify import CHANGES_CHANNEL, notify

    if _postgresql(db):
        db.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _lock_key(name)})
    version = db.scalar(update(ChangeCounter).where(ChangeCounter.name == name)
                        .values(version=ChangeCounter.version + 1).returning(ChangeCounter.version))
    if version is None:  # first change ever: the row does not exist yet (the lock serialises its insert)
        version = 1
        db.add(ChangeCounter(name=name, version=version))
        db.flush()
    notify(db, CHANGES_CHANNEL, f"{name} {version}")
    return int(version)
