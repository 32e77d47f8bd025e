"""Admin accounts (``/v1/admins``) and long-lived API tokens (``/v1/tokens``)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Response
from sqlalchemy import select

from central.admins import create_admin
from central.api.deps import DB, Principal, get_or_404, require
from central.api.schemas import AdminCreate, AdminOut, AdminPatch, ApiTokenCreate, ApiTokenOut, PasswordChange
from central.models import Admin, ApiToken, utcnow
from central.security import digest, hash_password, new_api_token, verify_password

router = APIRouter(prefix="/v1", tags=["admins"])
AdminsScope = Annotated[Principal, Depends(require("admins"))]


def _active_admins(db: DB) -> int:
    return len(db.scalars(select(Admin.id).where(Admin.disabled.is_(False))).all())


@router.get("/admins")
def list_admins(_: AdminsScope, db: DB) -> list[AdminOut]:
    """Every admin, oldest first."""
    return [AdminOut.from_admin(a) for a in db.scalars(select(Admin).order_by(Admin.created_at))]


@router.post("/admins", status_code=201)
def add_admin(body: AdminCreate, principal: AdminsScope, db: DB) -> AdminOut:
    """Create an admin (409 when the username is taken)."""
    return AdminOut.from_admin(create_admin(db, body, principal.admin.id))


@router.patch("/admins/{admin_id}")
def patch_admin(admin_id: str, body: AdminPatch, principal: AdminsScope, db: DB) -> AdminOut:
    """Disable or enable an admin; a disabled admin's tokens and sessions are refused at once.
    Refused (409) for oneself and for the last active admin."""
    admin = get_or_404(db, Admin, admin_id, "admin")
    if body.disabled and admin.id == principal.admin.id:
        raise HTTPException(409, "you cannot disable your own account")
    if body.disabled and not admin.disabled and _active_admins(db) <= 1:
        raise HTTPException(409, "this is the last active admin")
    admin.disabled = body.disabled
    db.commit()
    return AdminOut.from_admin(admin)


@router.delete("/admins/{admin_id}", status_code=204)
def delete_admin(admin_id: str, principal: AdminsScope, db: DB) -> Response:
    """Delete an admin and their API tokens. Refused (409) for oneself and the last active admin."""
    admin = get_or_404(db, Admin, admin_id, "admin")
    if admin.id == principal.admin.id:
        raise HTTPException(409, "you cannot delete your own account")
    if not admin.disabled and _active_admins(db) <= 1:
        raise HTTPException(409, "this is the last active admin")
    db.delete(admin)
    db.commit()
    return Response(status_code=204)


@router.post("/admins/me/password", status_code=204)
def change_password(body: PasswordChange, principal: Annotated[Principal, Depends(require("read"))], db: DB) -> Response:
    """Change one's own password (the current one is required). Tokens issued before are refused from
    now on (log in again); API tokens stay valid."""
    admin = db.get(Admin, principal.admin.id)
    if not verify_password(body.current_password, admin.password_hash):
        raise HTTPException(403, "the current password is wrong")
    if body.new_password == body.current_password:
        raise HTTPException(422, "the new password must differ from the current one")
    admin.password_hash = hash_password(body.new_password)
    # JWTs carry the password time in whole seconds: make the new time strictly later than any of them.
    admin.password_changed_at = utcnow().replace(microsecond=0) + dt.timedelta(seconds=1)
    db.commit()
    return Response(status_code=204)


@router.get("/tokens")
def list_tokens(principal: AdminsScope, db: DB) -> list[ApiTokenOut]:
    """The caller's API tokens (never the tokens themselves)."""
    rows = db.scalars(select(ApiToken).where(ApiToken.admin_id == principal.admin.id).order_by(ApiToken.created_at))
    return [ApiTokenOut.from_row(r) for r in rows]


@router.post("/tokens", status_code=201)
def create_token(body: ApiTokenCreate, principal: AdminsScope, db: DB) -> ApiTokenOut:
    """Create an API token; ``token`` is in this response only (store it now; only a hash is kept)."""
    token = new_api_token()
    expires = utcnow() + dt.timedelta(days=body.expires_in_days) if body.expires_in_days else None
    row = ApiToken(admin_id=principal.admin.id, name=body.name, prefix=token[:8], token_hash=digest(token),
                   scopes=" ".join(body.scopes), expires_at=expires)
    db.add(row)
    db.commit()
    return ApiTokenOut.from_row(row, token)


@router.delete("/tokens/{token_id}", status_code=204)
def revoke_token(token_id: str, principal: AdminsScope, db: DB) -> Response:
    """Revoke one of the caller's API tokens; it is refused from the next request on."""
    row = db.get(ApiToken, token_id)
    if row is None or row.admin_id != principal.admin.id:
        raise HTTPException(404, f"you have no API token with id {token_id!r}")
    if row.revoked_at is None:
        row.revoked_at = utcnow()
        db.commit()
    return Response(status_code=204)
