"""Ingest models of the camera <-> central server protocol (:mod:`pcs_common.protocol`): face events
(``POST /v1/ingest/events``) and photos (``POST /v1/ingest/photos``)."""

from __future__ import annotations

import json
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, Field, ValidationError, field_validator

from pcs_common.protocol.fields import (
    ProtocolError,
    WireModel,
    check_b64,
    check_box,
    check_choice,
    check_encoding,
    check_item_id,
    first_problem,
    parse_time,
)
from pcs_common.protocol.limits import (
    EVENT_TYPES,
    EVENTS,
    MAX_BATCH_ITEMS,
    MAX_CROP_BYTES,
    MAX_FACES,
    MAX_FRAME_BYTES,
    MAX_METADATA_CHARS,
    MAX_TRACK_ID,
    PHOTO_KINDS,
)

# --- ingest: face events ------------------------------------------------------------------------------------


class FaceIn(WireModel):
    """One frontal face of an event: ``box`` ``[x, y, w, h]`` main-stream px, its 128-d ``encoding``
    (face_recognition / dlib) or null, its JPEG crop (base64, <= :data:`MAX_CROP_BYTES`) or null."""

    box: list[int]
    encoding: list[float] | None = None
    crop_jpeg: str | None = None

    @field_validator("box", mode="before")
    @classmethod
    def _box(cls, value: Any) -> list[int]:
        return check_box(value, "box")

    @field_validator("encoding", mode="before")
    @classmethod
    def _encoding(cls, value: Any) -> list[float] | None:
        return check_encoding(value, "encoding")

    @field_validator("crop_jpeg", mode="before")
    @classmethod
    def _crop(cls, value: Any) -> str | None:
        return check_b64(value, "crop_jpeg", MAX_CROP_BYTES)


class ProfileIn(WireModel):
    """A face seen in profile (no encoding): its ``box`` ``[x, y, w, h]`` px."""

    box: list[int]

    @field_validator("box", mode="before")
    @classmethod
    def _box(cls, value: Any) -> list[int]:
        return check_box(value, "box")


class _Item(WireModel):
    """What every uploaded item carries: its id and its capture time."""

    item_id: str = Field(description="32 hex, made by the camera; the server stores an id once")
    captured_at: str = Field(description="ISO-8601 with a UTC offset")

    @field_validator("item_id", mode="before")
    @classmethod
    def _item_id(cls, value: Any) -> str:
        return check_item_id(value)

    @field_validator("captured_at", mode="before")
    @classmethod
    def _captured_at(cls, value: Any) -> str:
        parse_time(value)
        return value


class FaceEventItem(_Item):
    """One item of ``POST /v1/ingest/events``: a track of one face appeared or was updated."""

    type: Literal["face_event"]
    track_id: str
    event: str = Field(description="appeared | updated")
    faces: list[FaceIn] = Field(default_factory=list)
    profiles: list[ProfileIn] = Field(default_factory=list)
    frame_jpeg: str | None = Field(None, description="the whole frame, base64 JPEG (<= 2 MB) or null")

    @field_validator("type", mode="before")
    @classmethod
    def _type(cls, value: Any) -> str:
        return check_choice(value, "type", EVENT_TYPES, "is not supported")

    @field_validator("track_id", mode="before")
    @classmethod
    def _track_id(cls, value: Any) -> str:
        if not isinstance(value, str) or not 1 <= len(value) <= MAX_TRACK_ID:
            raise ProtocolError(f"track_id must be a string of 1 to {MAX_TRACK_ID} characters")
        return value

    @field_validator("event", mode="before")
    @classmethod
    def _event(cls, value: Any) -> str:
        return check_choice(value, "event", EVENTS)

    @field_validator("faces", "profiles", mode="before")
    @classmethod
    def _lists(cls, value: Any, info: Any) -> Any:
        if not isinstance(value, list) or len(value) > MAX_FACES:
            raise ProtocolError(f"{info.field_name} must be a list of at most {MAX_FACES} {info.field_name}")
        for i, entry in enumerate(value):
            if not isinstance(entry, dict) and not isinstance(entry, BaseModel):
                shape = "{box, encoding, crop_jpeg}" if info.field_name == "faces" else "{box}"
                raise ProtocolError(f"{info.field_name}[{i}] must be an object {shape}")
        return value

    @field_validator("frame_jpeg", mode="before")
    @classmethod
    def _frame(cls, value: Any) -> str | None:
        return check_b64(value, "frame_jpeg", MAX_FRAME_BYTES)

    @classmethod
    def parse(cls, raw: Any) -> "FaceEventItem":
        """Validate one item as received.

        Raises:
            ProtocolError: the first problem, naming the field (``faces[0].encoding``) and what is allowed.
        """
        if not isinstance(raw, dict):
            raise ProtocolError("an item must be a JSON object")
        try:
            return cls.model_validate(raw)
        except ValidationError as exc:
            message = first_problem(exc)
            error = exc.errors(include_url=False)[0]
            loc = error["loc"]
            if len(loc) > 2 and isinstance(loc[1], int) and not message.startswith(f"{loc[0]}["):
                message = f"{loc[0]}[{loc[1]}].{message}"  # a face's own check names only its field
            raise ProtocolError(message) from None


class EventBatch(WireModel):
    """``POST /v1/ingest/events`` body: at most :data:`MAX_BATCH_ITEMS` items (413 beyond). The server
    validates each item on its own (:meth:`FaceEventItem.parse`), so the list is kept raw here."""

    items: list[Any] = Field(max_length=MAX_BATCH_ITEMS)


class ItemResult(WireModel):
    """The answer for one item, in item order: ``reason`` says what is wrong when ``rejected``."""

    item_id: str | None
    status: Literal["stored", "duplicate", "rejected"]
    reason: str | None = None


class EventBatchAnswer(WireModel):
    """200 answer to :class:`EventBatch`: one result per item."""

    results: list[ItemResult]


# --- ingest: photos --------------------------------------------------------------------------------------


class PhotoUpload(_Item):
    """Form fields of ``POST /v1/ingest/photos`` (``multipart/form-data``; the JPEG in the part ``file``,
    at most :data:`MAX_PHOTO_BYTES`). ``metadata`` travels as JSON text of an object (<= 64 KB)."""

    kind: str = Field(description="still | snapshot")
    metadata: dict[str, Any] | None = None

    FILE_FIELD: ClassVar[str] = "file"

    @field_validator("kind", mode="before")
    @classmethod
    def _kind(cls, value: Any) -> str:
        return check_choice(value, "kind", PHOTO_KINDS)

    @field_validator("metadata", mode="before")
    @classmethod
    def _metadata(cls, value: Any) -> dict[str, Any] | None:
        if value in (None, ""):
            return None
        if isinstance(value, dict):
            value = json.dumps(value)
        if not isinstance(value, str) or len(value) > MAX_METADATA_CHARS:
            raise ProtocolError(f"metadata must be a JSON object of at most {MAX_METADATA_CHARS // 1024} KB")
        try:
            meta = json.loads(value)
        except ValueError:
            raise ProtocolError("metadata is not valid JSON; send a JSON object such as {\"exposure_us\": 10000}") from None
        if not isinstance(meta, dict):
            raise ProtocolError("metadata must be a JSON object, not a list or a scalar")
        return meta

    @classmethod
    def parse(cls, fields: dict[str, Any]) -> "PhotoUpload":
        """Validate the text fields of an upload.

        Raises:
            ProtocolError: the first problem, naming the field and what is allowed.
        """
        try:
            return cls.model_validate(fields)
        except ValidationError as exc:
            raise ProtocolError(first_problem(exc)) from None

    def form(self) -> dict[str, str]:
        """The multipart text fields (``metadata`` as JSON text)."""
        return {"item_id": self.item_id, "kind": self.kind, "captured_at": self.captured_at,
                "metadata": json.dumps(self.metadata or {})}


class PhotoAnswer(WireModel):
    """200 answer to a photo upload."""

    item_id: str
    status: Literal["stored", "duplicate"]
