"""Database tables of the central server (SQLAlchemy 2 declarative; the schema itself is made by Alembic).

Secrets are never stored in clear: passwords as argon2 hashes, API tokens, device secrets and pairing
poll tokens as SHA-256 hex digests (they are 256-bit random values, so a fast hash is enough and lets a
camera's heartbeat be checked without an argon2 computation).
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


def utcnow() -> dt.datetime:
    """The current time, timezone-aware UTC."""
    return dt.datetime.now(dt.timezone.utc)


def new_id() -> str:
    """A random UUID4 as 32 hex characters (primary keys of cameras, admins, tokens)."""
    return uuid.uuid4().hex


class UtcDateTime(TypeDecorator):
    """A timestamp stored as UTC and always read back timezone-aware (SQLite keeps no zone).

    Raises:
        ValueError: on write, a naive datetime (its zone would be a guess).
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        """To the database: UTC (ValueError for a naive datetime)."""
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: use timezone-aware UTC")
        return value.astimezone(dt.timezone.utc)

    def process_result_value(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        """From the database: timezone-aware UTC (a naive value from SQLite is taken as UTC)."""
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.timezone.utc)
        return value.astimezone(dt.timezone.utc)


class Base(DeclarativeBase):
    """Declarative base of every central-server table."""


class ServerState(Base):
    """Key/value facts about the server itself, e.g. ``bootstrap_password_hash``, ``bootstrap_closed_at``."""

    __tablename__ = "server_state"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow, onupdate=utcnow)


class Admin(Base):
    """An administrator account (argon2 password hash; ``disabled`` refuses its logins and tokens at once)."""

    __tablename__ = "admins"
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)
    password_changed_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)
    last_login_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime, nullable=True)
    created_by: Mapped[str | None] = mapped_column(String(32), nullable=True)

    tokens: Mapped[list["ApiToken"]] = relationship(back_populates="admin", cascade="all, delete-orphan")


class ApiToken(Base):
    """A long-lived, named, scoped API token for scripts; only its SHA-256 digest is kept."""

    __tablename__ = "api_tokens"
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    admin_id: Mapped[str] = mapped_column(ForeignKey("admins.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(100))
    prefix: Mapped[str] = mapped_column(String(16))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    scopes: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)
    expires_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime, nullable=True)
    last_used_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime, nullable=True)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime, nullable=True)

    admin: Mapped[Admin] = relationship(back_populates="tokens")

    @property
    def scope_list(self) -> list[str]:
        """The scopes as a list (stored space-separated, as OAuth2's ``scope`` parameter)."""
        return self.scopes.split()


class Camera(Base):
    """A paired camera and its last reported health.

    ``secret_hash`` is the current device secret's digest. After an admin asks for a rotation
    (``rotate_requested``) the camera's next heartbeat receives a new secret; ``retiring_secret_hash``
    keeps the previous one usable for heartbeats only, until the camera first authenticates with the new
    one (so a lost heartbeat response does not lock the camera out).

    The secret itself is never stored: it is generated when the camera collects its credentials over
    its pairing long poll (again on each collection until ``claimed_at``, the first authenticated call).

    ``pairing_key_hash`` is the SHA-256 digest of the pairing key the camera proved when it was paired
    (see :mod:`central.pairing`): a later pairing of the same hardware id needs the same key.
    """

    __tablename__ = "cameras"
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(100))
    hardware_id: Mapped[str] = mapped_column(String(64), index=True)
    secret_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    retiring_secret_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    rotate_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    secret_rotated_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime, nullable=True)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    paired_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)
    paired_by: Mapped[str | None] = mapped_column(String(32), nullable=True)
    claimed_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime, nullable=True)
    last_seen_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime, nullable=True)
    last_address: Mapped[str | None] = mapped_column(String(64), nullable=True)
    version: Mapped[str | None] = mapped_column(String(32), nullable=True)
    api_url: Mapped[str | None] = mapped_column(String(255), nullable=True)
    rtsp_url: Mapped[str | None] = mapped_column(String(255), nullable=True)
    status: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    pairing_key_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    viewer_key_sealed: Mapped[str | None] = mapped_column(String(128), nullable=True)
    """The viewer key of the camera's last heartbeat, encrypted (:mod:`central.viewer_keys`)."""


class PairingRequest(Base):
    """A pending pairing: the code a camera shows until an admin enters it (the seed's "paillasson" table).

    ``code`` is unique among rows; a row is deleted once expired for long enough, so a code value can
    come back later, never while its row exists. ``pairing_key_hash`` is the SHA-256 digest of the
    camera's pairing key (None for a camera too old to send one).
    """

    __tablename__ = "pairing_requests"
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    code: Mapped[str] = mapped_column(String(16), unique=True)
    poll_token_hash: Mapped[str] = mapped_column(String(64))
    hardware_id: Mapped[str] = mapped_column(String(64))
    name: Mapped[str | None] = mapped_column(String(100), nullable=True)
    version: Mapped[str | None] = mapped_column(String(32), nullable=True)
    api_url: Mapped[str | None] = mapped_column(String(255), nullable=True)
    rtsp_url: Mapped[str | None] = mapped_column(String(255), nullable=True)
    client_address: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    camera_id: Mapped[str | None] = mapped_column(ForeignKey("cameras.id", ondelete="CASCADE"), nullable=True)
    used_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime, nullable=True)
    pairing_key_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)

    __table_args__ = (Index("ix_pairing_requests_expires_at", "expires_at"),)


class RevokedSession(Base):
    """A dashboard session ended by ``POST /v1/auth/logout``: its token's ``jti``, refused until
    ``expires_at`` (the token's ``exp``; purged afterwards). In the database, so a logout holds across
    restarts and across server processes sharing it."""

    __tablename__ = "revoked_sessions"
    jti: Mapped[str] = mapped_column(String(64), primary_key=True)
    expires_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, index=True)


class RateLimitCounter(Base):
    """Attempts counted under one rate-limit ``rule`` for one ``key`` (SHA-256 hex of the address,
    username, ...) in the fixed window starting at ``window_start`` (s since the epoch). Incremented
    with an atomic upsert (see :mod:`central.ratelimit`), so the budget holds across threads and
    across server processes sharing the database."""

    __tablename__ = "rate_limit_counters"
    rule: Mapped[str] = mapped_column(String(32), primary_key=True)
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    window_start: Mapped[int] = mapped_column(BigInteger, primary_key=True, index=True)
    count: Mapped[int] = mapped_column(Integer, default=0)


class PairingAttempt(Base):
    """One failed pairing attempt (wrong, expired or reused code), kept for counting and auditing."""

    __tablename__ = "pairing_attempts"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow, index=True)
    admin_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    client_address: Mapped[str | None] = mapped_column(String(64), nullable=True)
    reason: Mapped[str] = mapped_column(String(16))


# --- faces, people and sightings (migration 0002) ----------------------------------------------------


class IngestedItem(Base):
    """One item a camera sent (a face event or a photo), kept so a repeated upload is recognised.

    ``item_id`` is the 32-hex id the camera generated; ``(camera_id, item_id)`` is unique, which makes
    ``POST /v1/ingest/*`` idempotent. ``track_id``, ``event`` and ``profiles`` (``[{"box": [x, y, w, h]}]``,
    px) are set for face events only.
    """

    __tablename__ = "ingested_items"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    camera_id: Mapped[str] = mapped_column(ForeignKey("cameras.id", ondelete="CASCADE"))
    item_id: Mapped[str] = mapped_column(String(32))
    kind: Mapped[str] = mapped_column(String(16))
    captured_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    received_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)
    track_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    event: Mapped[str | None] = mapped_column(String(16), nullable=True)
    profiles: Mapped[list[Any] | None] = mapped_column(JSON, nullable=True)

    __table_args__ = (UniqueConstraint("camera_id", "item_id", name="uq_ingested_items_camera_item"),)


class Person(Base):
    """A named person faces are matched to."""

    __tablename__ = "people"
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)


class UnknownGroup(Base):
    """Faces matching no person that resemble each other (their members are :class:`FaceObservation` s)."""

    __tablename__ = "unknown_groups"
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)


class FaceObservation(Base):
    """One face in one face event.

    ``box`` is ``[x, y, w, h]`` in the camera's main-stream px. ``encoding`` is the 128-d dlib encoding
    as 128 little-endian float64 (1,024 bytes), or None when the camera sent none. ``crop_path`` is
    relative to the media directory. ``distance`` is the Euclidean distance to the nearest enrolled
    encoding of ``person_id`` (matched) or to the nearest member of ``unknown_group_id``'s group
    (None when the face started the group or has no encoding).
    """

    __tablename__ = "face_observations"
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    camera_id: Mapped[str] = mapped_column(ForeignKey("cameras.id", ondelete="CASCADE"))
    item_id: Mapped[str] = mapped_column(String(32))
    track_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    captured_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, index=True)
    box: Mapped[list[int]] = mapped_column(JSON)
    encoding: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    crop_path: Mapped[str | None] = mapped_column(String(255), nullable=True)
    person_id: Mapped[str | None] = mapped_column(ForeignKey("people.id", ondelete="SET NULL"), nullable=True,
                                                  index=True)
    unknown_group_id: Mapped[str | None] = mapped_column(
        ForeignKey("unknown_groups.id", ondelete="SET NULL"), nullable=True, index=True)
    distance: Mapped[float | None] = mapped_column(Float, nullable=True)

    __table_args__ = (Index("ix_face_observations_camera_item", "camera_id", "item_id"),)


class Photo(Base):
    """A JPEG a camera uploaded: a still or snapshot (``POST /v1/ingest/photos``) or the frame of a
    face event (``kind="frame"``, same ``item_id`` as the event). ``path`` is relative to the media
    directory; ``size`` in bytes; ``sha256`` hex of the file."""

    __tablename__ = "photos"
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    camera_id: Mapped[str] = mapped_column(ForeignKey("cameras.id", ondelete="CASCADE"))
    item_id: Mapped[str] = mapped_column(String(32))
    kind: Mapped[str] = mapped_column(String(16))
    path: Mapped[str] = mapped_column(String(255))
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(Integer)
    captured_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, index=True)
    received_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)
    meta: Mapped[dict[str, Any] | None] = mapped_column("metadata", JSON, nullable=True)

    __table_args__ = (UniqueConstraint("camera_id", "item_id", "kind", name="uq_photos_camera_item_kind"),)


class PersonEncoding(Base):
    """An enrolled encoding of a person (128 little-endian float64), from an uploaded photo
    (``source="photo"``, ``source_path`` the stored photo) or a received face (``source="observation"``,
    ``observation_id``; ``source_path`` its crop, if any)."""

    __tablename__ = "person_encodings"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    person_id: Mapped[str] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"), index=True)
    encoding: Mapped[bytes] = mapped_column(LargeBinary)
    source: Mapped[str] = mapped_column(String(16))
    source_path: Mapped[str | None] = mapped_column(String(255), nullable=True)
    observation_id: Mapped[str | None] = mapped_column(
        ForeignKey("face_observations.id", ondelete="SET NULL"), nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)


class Sighting(Base):
    """A person seen on one camera without a gap longer than ``sighting_gap_s``: from ``started_at``
    to ``ended_at`` (capture times of the first and last matched face), ``detections`` faces."""

    __tablename__ = "sightings"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    person_id: Mapped[str] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"))
    camera_id: Mapped[str] = mapped_column(ForeignKey("cameras.id", ondelete="CASCADE"))
    started_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    ended_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, index=True)
    detections: Mapped[int] = mapped_column(Integer, default=1)

    __table_args__ = (Index("ix_sightings_person_camera_ended", "person_id", "camera_id", "ended_at"),)


class ChangeCounter(Base):
    """A version number moved by every change of one kind (``name`` ``faces``: enrolments, merges,
    deletions, group naming), in the changing transaction, so that every server process on the database
    knows whether its in-memory index is current (:mod:`central.changes`)."""

    __tablename__ = "change_counters"
    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    version: Mapped[int] = mapped_column(BigInteger, default=0)
