"""Request and response bodies of the central server's API (pydantic)."""

from __future__ import annotations

import datetime as dt
import re

from pydantic import BaseModel, Field, field_validator

from central.models import Admin, ApiToken
from pcs_common.protocol import Heartbeat, PairingRequest

USERNAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{1,63}")
"""A username, matched with ``fullmatch`` (``$`` would also accept a trailing newline)."""


class AdminCreate(BaseModel):
    """A new admin: username 2-64 characters ``[A-Za-z0-9._@-]``, password 12-200 characters."""

    username: str = Field(min_length=2, max_length=64)
    password: str = Field(min_length=12, max_length=200)

    @field_validator("username")
    @classmethod
    def _username(cls, value: str) -> str:
        if not USERNAME_RE.fullmatch(value):
            raise ValueError("use 2-64 letters, digits and . _ @ - (starting with a letter or digit)")
        return value


class AdminOut(BaseModel):
    """An admin as listed (never the password hash)."""

    id: str
    username: str
    disabled: bool
    created_at: dt.datetime
    last_login_at: dt.datetime | None

    @classmethod
    def from_admin(cls, admin: Admin) -> "AdminOut":
        """Build from the ORM row."""
        return cls(id=admin.id, username=admin.username, disabled=admin.disabled,
                   created_at=admin.created_at, last_login_at=admin.last_login_at)


class AdminPatch(BaseModel):
    """Changes to another admin: ``disabled`` only (passwords are changed by their owner)."""

    disabled: bool


class PasswordChange(BaseModel):
    """Change one's own password: the current one and a new one of 12-200 characters."""

    current_password: str = Field(min_length=1, max_length=200)
    new_password: str = Field(min_length=12, max_length=200)


class TokenOut(BaseModel):
    """OAuth2 token response (RFC 6749 §5.1)."""

    access_token: str
    token_type: str = "bearer"
    expires_in: int
    scope: str


class ApiTokenCreate(BaseModel):
    """A new API token: a name, scopes among ``read``, ``cameras``, ``admins``, optional lifetime in days."""

    name: str = Field(min_length=1, max_length=100)
    scopes: list[str] = Field(min_length=1)
    expires_in_days: int | None = Field(None, ge=1, le=3650)

    @field_validator("scopes")
    @classmethod
    def _scopes(cls, value: list[str]) -> list[str]:
        from central.api.deps import SCOPES

        unknown = sorted(set(value) - set(SCOPES))
        if unknown:
            raise ValueError(f"unknown scope(s) {', '.join(unknown)}; allowed: {', '.join(sorted(SCOPES))}")
        return sorted(set(value))


class ApiTokenOut(BaseModel):
    """An API token as listed; ``token`` is only present in the creation response."""

    id: str
    name: str
    prefix: str
    scopes: list[str]
    created_at: dt.datetime
    expires_at: dt.datetime | None
    last_used_at: dt.datetime | None
    revoked_at: dt.datetime | None
    token: str | None = None

    @classmethod
    def from_row(cls, row: ApiToken, token: str | None = None) -> "ApiTokenOut":
        """Build from the ORM row, with the clear token only when just created."""
        return cls(id=row.id, name=row.name, prefix=row.prefix, scopes=row.scope_list, created_at=row.created_at,
                   expires_at=row.expires_at, last_used_at=row.last_used_at, revoked_at=row.revoked_at, token=token)


class PairIn(BaseModel):
    """Pair the camera showing ``code`` (8 characters; spaces and dashes are ignored) as ``name``."""

    code: str = Field(min_length=8, max_length=16)
    name: str = Field(min_length=1, max_length=100)


class CameraPatch(BaseModel):
    """Rename and/or disable/enable a camera."""

    name: str | None = Field(None, min_length=1, max_length=100)
    disabled: bool | None = None


PairingRequestIn = PairingRequest
"""What an unpaired camera tells about itself when it asks for a code (:class:`pcs_common.protocol.PairingRequest`)."""

HeartbeatIn = Heartbeat
"""A camera's report (:class:`pcs_common.protocol.Heartbeat`): its status and its viewer key."""


class ScanIn(BaseModel):
    """A CIDR scan for cameras: an IPv4 network of at most 4096 addresses and the camera port."""

    cidr: str = Field(min_length=9, max_length=18, examples=["192.168.1.0/24"])
    port: int | None = Field(None, ge=1, le=65535)
