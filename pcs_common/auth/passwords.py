"""Password hashing of both services: argon2id through pwdlib, with the Pi Zero 2 W's parameters.

Hashes are PHC strings (``$argon2id$v=19$m=19456,t=2,p=1$salt$digest``). Hashes made with other
argon2 parameters keep verifying, and :func:`verify_and_update_password` returns a re-hash with
today's parameters so the caller can store it (pwdlib ``verify_and_update``).
"""

from __future__ import annotations

import functools
import secrets

from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher

ARGON2_PARAMETERS = {"memory_cost": 19_456, "time_cost": 2, "parallelism": 1}
"""argon2id cost of new hashes: m = 19 MiB (KiB units), t = 2 passes, p = 1 lane.

The first of the equivalent configurations in OWASP's Password Storage Cheat Sheet (Argon2id,
"m=19456 (19 MiB), t=2, p=1"), chosen for a 512 MB Pi Zero 2 W: pwdlib's default (m = 64 MiB,
t = 3, p = 4) costs 64 MiB per verification. Hashes made with other parameters keep verifying and
are re-hashed with these at the next successful login (:func:`verify_and_update_password`).
"""

_password_hasher = PasswordHash((Argon2Hasher(**ARGON2_PARAMETERS),))


def hash_password(password: str) -> str:
    """Hash ``password`` with argon2id (pwdlib, :data:`ARGON2_PARAMETERS`).

    Returns the PHC-encoded string (``$argon2id$v=19$m=...,t=...,p=...$salt$digest``); a new random
    salt is used on every call.

    Raises:
        ValueError: ``password`` is empty.
    """
    if not password:
        raise ValueError("the password must not be empty")
    return _password_hasher.hash(password)


@functools.cache
def _dummy_hash() -> str:
    """A hash of a random password, verified against when there is no real hash (unknown user)."""
    return hash_password(secrets.token_urlsafe(16))


def verify_password(password: str, password_hash: str | None) -> bool:
    """Check ``password`` against an argon2 ``password_hash`` (constant time inside argon2).

    ``None`` (an unknown user) costs one verification against a dummy hash of the same parameters and
    is ``False``, so the time taken does not reveal whether the user exists. ``False`` as well for a
    value that is not a valid argon2 hash, so a bad stored value fails closed.
    """
    return verify_and_update_password(password, password_hash)[0]


def verify_and_update_password(password: str, password_hash: str | None) -> tuple[bool, str | None]:
    """Check ``password`` like :func:`verify_password`; also a new hash when ``password_hash`` uses
    other argon2 parameters than :data:`ARGON2_PARAMETERS` (pwdlib ``verify_and_update``).

    Returns ``(ok, new_hash)``; ``new_hash`` is None unless ``ok`` and the hash is outdated. The caller
    stores it (same password, today's cost).
    """
    try:
        ok, new_hash = _password_hasher.verify_and_update(password, password_hash or _dummy_hash())
    except Exception:  # pwdlib UnknownHashError, or anything argon2 raises on a corrupt hash
        return False, None
    if password_hash is None or not ok:
        return False, None
    return True, new_hash


def is_argon2_hash(value: str) -> bool:
    """True when ``value`` is a PHC argon2 hash that argon2-cffi can read (its parameters parse)."""
    import argon2

    try:
        argon2.extract_parameters(value)
    except Exception:
        return False
    return Argon2Hasher.identify(value)
