"""Admin accounts as a service: creating one (used by ``POST /v1/admins`` and the first-admin set-up)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from central.models import Admin
from central.security import hash_password
from pcs_common.service_errors import Conflict

if TYPE_CHECKING:
    from central.api.schemas import AdminCreate


def create_admin(db: Session, body: AdminCreate, created_by: str | None) -> Admin:
    """Insert an admin with an argon2 hash of ``body.password``, created by the admin id ``created_by``
    (None: the bootstrap), and commit.

    Raises:
        Conflict: the username is taken (409 at the app's error boundary).
    """
    admin = Admin(username=body.username, password_hash=hash_password(body.password), created_by=created_by)
    db.add(admin)
    try:
        db.commit()
    except IntegrityError:
        db.rollback()
        raise Conflict(f"an admin named {body.username!r} already exists") from None
    return admin
