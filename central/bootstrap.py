"""First start: a one-time bootstrap password, a 15-minute setup token, the first admin, then closed.

The flow of the seed ``srs-build-journal.md`` (default credentials → 15 min token → create the admin →
log in for 24 h tokens), without its fixed default password: while no admin exists, every start
generates a new random password, stores its argon2 hash and prints it once to the log. Creating the
first admin closes bootstrap for good (``bootstrap_closed_at`` is kept even if admins are deleted).
"""

from __future__ import annotations

import secrets

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from central.models import Admin, ServerState, utcnow
from central.security import hash_password

PASSWORD_KEY = "bootstrap_password_hash"
CLOSED_KEY = "bootstrap_closed_at"
# 20 characters from the pairing alphabet's 55 symbols ≈ 115 bits; readable from a log line.
_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghjkmnpqrstuvwxyz23456789"


def _get(db: Session, key: str) -> str | None:
    row = db.get(ServerState, key)
    return row.value if row else None


def _set(db: Session, key: str, value: str) -> None:
    row = db.get(ServerState, key)
    if row is None:
        db.add(ServerState(key=key, value=value))
    else:
        row.value = value


def is_open(db: Session) -> bool:
    """True while bootstrap was never closed and no admin exists."""
    if _get(db, CLOSED_KEY) is not None:
        return False
    return db.scalar(select(func.count()).select_from(Admin)) == 0


def prepare(db: Session) -> str | None:
    """At start-up: a new one-time password when bootstrap is open (its hash replaces any older one),
    or None when it is closed. Commits. The caller logs the password once."""
    if not is_open(db):
        if _get(db, CLOSED_KEY) is None:  # admins were created another way (CLI): close it now
            close(db)
        return None
    password = "".join(secrets.choice(_ALPHABET) for _ in range(20))
    _set(db, PASSWORD_KEY, hash_password(password))
    db.commit()
    return password


def password_hash(db: Session) -> str | None:
    """The current bootstrap password's hash, or None when bootstrap is closed."""
    return _get(db, PASSWORD_KEY) if is_open(db) else None


def claim(db: Session) -> bool:
    """Close bootstrap atomically for the one caller that creates the first admin; False when it is
    already closed (by this or a concurrent request).

    The ``bootstrap_closed_at`` row is *inserted* as the transaction's first write: its primary key lets
    exactly one of any number of concurrent transactions succeed (PostgreSQL makes the others wait on
    the key and then raises a unique violation; SQLite serialises writers and the later ones see the
    row). Nothing is committed here: the caller adds the admin and commits, so a failure rolls the claim
    back; on False the session is rolled back. The bootstrap password hash is deleted in the same
    transaction.
    """
    try:
        db.add(ServerState(key=CLOSED_KEY, value=utcnow().isoformat()))
        db.flush()
    except IntegrityError:
        db.rollback()
        return False
    if db.scalar(select(func.count()).select_from(Admin)):  # created another way since the start-up
        return False
    row = db.get(ServerState, PASSWORD_KEY)
    if row is not None:
        db.delete(row)
    return True


def close(db: Session) -> None:
    """Close bootstrap for good: forget the password hash, record when. Commits."""
    row = db.get(ServerState, PASSWORD_KEY)
    if row is not None:
        db.delete(row)
    _set(db, CLOSED_KEY, utcnow().isoformat())
    db.commit()
