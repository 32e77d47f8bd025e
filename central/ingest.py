"""What cameras upload: face events (``POST /v1/ingest/events``) and photos (``POST /v1/ingest/photos``).

Every item carries a 32-hex ``item_id`` generated on the camera; ``(camera, item_id)`` is unique in
``ingested_items``, so a repeated upload (the camera retrying after a lost response) answers
``duplicate`` and stores nothing. Items are validated one by one: a malformed item is ``rejected``
with a reason and the others of the batch are still stored.

Files (face crops, event frames, photos) go under the media directory (``CENTRAL_MEDIA_DIR``,
default ``<data_dir>/media``): written to a temp file, fsynced and renamed (plus a directory fsync)
*before* the database commit that names them, so a stored row never names a missing file; when that
commit fails they are removed again. Paths in the database are relative to the media directory.

The face matching of each stored face (people, unknown groups, sightings) is done by
:class:`central.people.FaceRegistry`; this module validates, stores files and rows.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import logging
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pcs_common import protocol
from pcs_common.fileio import fsync_dir, make_private_dir, unlink_quietly, write_atomic
from pcs_common.limits import ImageTooLarge, check_jpeg_pixels, excerpt
from pcs_common.protocol import (
    MAX_CROP_BYTES,
    MAX_CROP_PIXELS,
    MAX_FRAME_BYTES,
    MAX_PHOTO_BYTES,
    MAX_PHOTO_PIXELS,
    FaceEventItem,
    PhotoUpload,
    ProtocolError,
    check_item_id,  # noqa: F401 - re-exported: central.ingest.check_item_id
    parse_time,
)

log = logging.getLogger(__name__)

MAX_ITEMS = protocol.MAX_BATCH_ITEMS
"""Most items in one ``POST /v1/ingest/events`` (the limits live in :mod:`pcs_common.protocol`)."""
_JPEG_MAGIC = b"\xff\xd8\xff"

ItemRejected = ProtocolError
"""An uploaded item is malformed; ``str()`` says what is wrong and what is allowed."""


# --- media files ------------------------------------------------------------------------------------


class MediaStore:
    """Files under one root directory, named by paths relative to it (the form kept in the database).

    Args:
        root: the media directory; created on first write.
    """

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def path(self, relative: str) -> Path:
        """Absolute path of a stored file.

        Raises:
            ValueError: ``relative`` escapes the media directory.
        """
        path = (self.root / relative).resolve()
        if self.root.resolve() not in path.parents:
            raise ValueError(f"{relative!r} is outside the media directory")
        return path

    def write(self, relative: str, data: bytes) -> str:
        """Write ``data`` durably (temp file + fsync + rename + directory fsync); returns ``relative``.

        Raises:
            OSError: the write failed (e.g. disk full); nothing is left behind.
        """
        path = self.path(relative)
        self._private_dirs(path.parent)
        write_atomic(path, data)  # mkstemp: mode 0600
        fsync_dir(path.parent)
        return relative

    def _private_dirs(self, directory: Path) -> None:
        """Create ``directory`` and every missing one between it and the root with mode 0700."""
        root = self.root.resolve()
        make_private_dir(root)
        current = root
        for part in directory.relative_to(root).parts:
            current = current / part
            if not current.is_dir():
                make_private_dir(current)

    def delete(self, relatives: list[str | None] | tuple[str | None, ...]) -> None:
        """Remove these files (None entries and missing files are skipped; errors are logged)."""
        for relative in relatives:
            if relative:
                try:
                    unlink_quietly(self.path(relative))
                except ValueError:
                    log.warning("not deleting %r: outside the media directory", relative)


def unique_name(*parts: str) -> str:
    """``parts[0]/.../parts[-1]-<8 random hex>.jpg``: a new file name never shared by two writers."""
    return "/".join(parts[:-1] + (f"{parts[-1]}-{uuid.uuid4().hex[:8]}.jpg",))


# --- validation -------------------------------------------------------------------------------------


def check_pixels(data: bytes, name: str, max_pixels: int) -> None:
    """Refuse a JPEG declaring more than ``max_pixels`` px before anything decodes it (a 1 KB file can
    declare 30000x30000 px, 2.7 GB once decoded).

    Raises:
        ItemRejected: no JPEG frame header, or too many pixels (the message gives both sizes).
    """
    try:
        check_jpeg_pixels(data, max_pixels, name)
    except ImageTooLarge as exc:
        raise ItemRejected(str(exc)) from None


def is_jpeg(data: bytes) -> bool:
    """True when ``data`` starts like a JPEG (FF D8 FF) and OpenCV decodes it (at 1/8 scale, cheap).
    Call :func:`check_pixels` first."""
    if not data.startswith(_JPEG_MAGIC):
        return False
    import cv2

    try:
        image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_REDUCED_GRAYSCALE_8)
    except cv2.error:
        return False
    return image is not None and image.size > 0


def decode_jpeg_b64(value: Any, name: str, limit: int, max_pixels: int) -> bytes | None:
    """Base64 text -> JPEG bytes (None stays None).

    Raises:
        ItemRejected: not a string, not base64, bigger than ``limit`` bytes, declaring more than
            ``max_pixels`` px, or not a decodable JPEG.
    """
    if value is None:
        return None
    if not isinstance(value, str):
        raise ItemRejected(f"{name} must be base64 text of a JPEG, or null")
    if len(value) > (limit + 2) // 3 * 4 + 4:
        raise ItemRejected(f"{name} is too big: at most {limit // 1024} KB of JPEG")
    try:
        data = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise ItemRejected(f"{name} is not valid base64 (standard alphabet, with padding)") from None
    if len(data) > limit:
        raise ItemRejected(f"{name} is too big: {len(data)} bytes, at most {limit // 1024} KB")
    if data.startswith(_JPEG_MAGIC):
        check_pixels(data, name, max_pixels)
    if not is_jpeg(data):
        raise ItemRejected(f"{name} is not a JPEG image")
    return data


@dataclass
class ParsedFace:
    """One face of a validated event: ``box`` px, ``encoding`` ``(128,)`` float64 or None, ``crop`` JPEG bytes or None."""

    box: list[int]
    encoding: np.ndarray | None
    crop: bytes | None


@dataclass
class ParsedEvent:
    """A validated ``face_event`` item (see :func:`parse_event`)."""

    item_id: str
    captured_at: dt.datetime
    track_id: str
    event: str
    faces: list[ParsedFace]
    profiles: list[dict[str, list[int]]]
    frame: bytes | None = None
    observation_ids: list[str] = field(default_factory=list)


def parse_event(raw: Any, now: dt.datetime | None = None) -> ParsedEvent:
    """Validate one item of ``POST /v1/ingest/events``: its fields by
    :meth:`pcs_common.protocol.FaceEventItem.parse`, then its JPEGs (decoded here).

    Raises:
        ItemRejected: the first problem found, naming the field and what is allowed.
    """
    item = FaceEventItem.parse(raw)
    captured_at = parse_time(item.captured_at, now=now)
    faces = [
        ParsedFace(face.box, np.asarray(face.encoding, dtype=np.float64) if face.encoding is not None else None,
                   decode_jpeg_b64(face.crop_jpeg, f"faces[{i}].crop_jpeg", MAX_CROP_BYTES, MAX_CROP_PIXELS))
        for i, face in enumerate(item.faces)
    ]
    profiles = [{"box": profile.box} for profile in item.profiles]
    frame = decode_jpeg_b64(item.frame_jpeg, "frame_jpeg", MAX_FRAME_BYTES, MAX_PHOTO_PIXELS)
    return ParsedEvent(item.item_id, captured_at, item.track_id, item.event, faces, profiles, frame)


@dataclass
class ParsedPhoto:
    """A validated ``POST /v1/ingest/photos`` upload: ``data`` the JPEG, ``sha256`` hex of it."""

    item_id: str
    kind: str
    captured_at: dt.datetime
    metadata: dict[str, Any] | None
    data: bytes
    sha256: str


def parse_photo(item_id: Any, kind: Any, captured_at: Any, metadata: Any, data: bytes | None,
                content_type: str | None) -> ParsedPhoto:
    """Validate the form fields of a photo upload.

    Args:
        data: the file's bytes (at most ``MAX_PHOTO_BYTES + 1`` read), None when no file was sent.
        content_type: the file part's declared type (``image/jpeg`` expected; ``application/octet-stream``
            and none are tolerated, the bytes decide).

    Raises:
        ItemRejected: a field is missing or malformed, the file is over 10 MB or is not a JPEG.
    """
    fields = PhotoUpload.parse({"item_id": item_id, "kind": kind, "captured_at": captured_at,
                                "metadata": metadata})
    if data is None:
        raise ItemRejected("file is missing: send the JPEG as the multipart field 'file'")
    if content_type and content_type.split(";")[0].strip().lower() not in ("image/jpeg", "image/jpg",
                                                                           "application/octet-stream"):
        raise ItemRejected(f"file has content type {excerpt(content_type)}; only image/jpeg is accepted")
    if len(data) > MAX_PHOTO_BYTES:
        raise ItemRejected("file is too big: at most 10 MB")
    if not data:
        raise ItemRejected("file is empty")
    if data.startswith(_JPEG_MAGIC):
        check_pixels(data, "file", MAX_PHOTO_PIXELS)
    if not is_jpeg(data):
        raise ItemRejected("file is not a JPEG image (it must decode as JPEG)")
    return ParsedPhoto(fields.item_id, fields.kind, parse_time(fields.captured_at), fields.metadata, data,
                       hashlib.sha256(data).hexdigest())


# --- storing ----------------------------------------------------------------------------------------


def _stored_ids(db: Any, camera_id: str, item_ids: list[str]) -> set[str]:
    from sqlalchemy import select

    from central.models import IngestedItem

    if not item_ids:
        return set()
    return set(db.scalars(select(IngestedItem.item_id).where(IngestedItem.camera_id == camera_id,
                                                             IngestedItem.item_id.in_(item_ids))))


@dataclass
class _EventFiles:
    """The files of one event, written before its rows (:func:`_write_files`): the frame's path (or
    None) and, per face in order, ``(observation_id, crop path or None)``."""

    frame: str | None
    faces: list[tuple[str, str | None]]

    def paths(self) -> list[str]:
        return [p for p in [self.frame, *(c for _, c in self.faces)] if p]


def _write_files(media: MediaStore, camera_id: str, event: ParsedEvent) -> _EventFiles:
    """Write the frame and the face crops of ``event`` durably (each file is fsynced): done before the
    registry lock is taken, so the lock covers the database work only. Names are unique, so a file
    written for an event that turns out to be a duplicate is simply deleted.

    Raises:
        OSError: a file could not be written (the ones already written are removed).
    """
    from central.models import new_id

    written: list[str] = []
    try:
        frame = None
        if event.frame is not None:
            frame = media.write(unique_name("frames", camera_id, event.item_id), event.frame)
            written.append(frame)
        faces = []
        for face in event.faces:
            obs_id = new_id()
            crop = None
            if face.crop is not None:
                crop = media.write(unique_name("crops", camera_id, obs_id), face.crop)
                written.append(crop)
            faces.append((obs_id, crop))
    except BaseException:
        media.delete(written)
        raise
    return _EventFiles(frame, faces)


def _add_events(registry: Any, db: Any, camera_id: str, batch: list[ParsedEvent], pending: list[Any],
                files: dict[str, _EventFiles]) -> None:
    """Rows (items, frames, observations, sightings, new unknown groups) of new events whose files are
    written; not committed. Round trips are batched: the faces are classified in memory first (a new
    group and the sightings of this batch are seen by its later faces through ``pending`` and the
    sightings' ``recent`` map, without a flush), then one flush writes the items, frames, new groups
    and sightings, and the observations that refer to the groups follow at the commit."""
    from central.matching import encoding_to_bytes
    from central.models import FaceObservation, IngestedItem, Photo

    recent: dict[tuple[str, str], list[Any]] = {}
    observations = []
    for event in batch:
        event.observation_ids.clear()
        event_files = files[event.item_id]
        db.add(IngestedItem(camera_id=camera_id, item_id=event.item_id, kind="face_event",
                            captured_at=event.captured_at, track_id=event.track_id, event=event.event,
                            profiles=event.profiles))
        if event_files.frame is not None:  # written from event.frame
            db.add(Photo(camera_id=camera_id, item_id=event.item_id, kind="frame", path=event_files.frame,
                         sha256=hashlib.sha256(event.frame).hexdigest(), size=len(event.frame),
                         captured_at=event.captured_at))
        for face, (obs_id, crop_path) in zip(event.faces, event_files.faces):
            person_id = group_id = distance = None
            if face.encoding is not None:
                found = registry.classify(db, face.encoding, pending)
                person_id, group_id, distance = found.person_id, found.group_id, found.distance
                if person_id is not None:
                    registry.record_sighting(db, person_id, camera_id, event.captured_at, recent)
            observations.append(FaceObservation(
                id=obs_id, camera_id=camera_id, item_id=event.item_id, track_id=event.track_id,
                captured_at=event.captured_at, box=face.box,
                encoding=encoding_to_bytes(face.encoding) if face.encoding is not None else None,
                crop_path=crop_path, person_id=person_id, unknown_group_id=group_id, distance=distance))
            event.observation_ids.append(obs_id)
    db.flush()  # the new groups before the observations that refer to them
    db.add_all(observations)


def store_events(registry: Any, db: Any, camera_id: str, events: list[ParsedEvent]) -> dict[str, str]:
    """Store the new events of one request and match their faces (see :class:`central.people.FaceRegistry`).

    Events already stored for this camera are skipped, and the files (frames, crops) of the others are
    written, outside any lock. Then, under ``registry.lock``, their rows are added and committed at
    once (:func:`_add_events`: a few round trips per request, not per face, since the lock serialises
    every ingest of the process). If that commit fails on the uniqueness of ``(camera, item_id)``
    (another request or process stored one meanwhile), every event is retried alone. Files of events
    not stored in the end are deleted.

    Returns:
        ``{item_id: "stored" | "duplicate"}`` for every event given.

    Raises:
        OSError: a file could not be written (the transaction is rolled back, written files removed).
        sqlalchemy.exc.SQLAlchemyError: the database failed for another reason.
    """
    from sqlalchemy.exc import IntegrityError

    status = {e.item_id: "duplicate" for e in events}
    known = _stored_ids(db, camera_id, [e.item_id for e in events])
    db.rollback()  # end the read: the transaction that stores starts under the lock
    files: dict[str, _EventFiles] = {}
    try:
        for event in events:
            if event.item_id not in known:
                files[event.item_id] = _write_files(registry.media, camera_id, event)
        todo = [e for e in events if e.item_id in files]
        with registry.lock:

            def attempt(batch: list[ParsedEvent]) -> bool:
                pending: list[Any] = []
                try:
                    registry.ensure_loaded(db)  # in this transaction: its shared change lock holds until the commit
                    _add_events(registry, db, camera_id, batch, pending, files)
                    db.commit()
                except IntegrityError as exc:
                    db.rollback()
                    log.info("storing %d event(s) of camera %s conflicted (%s); retrying one by one",
                             len(batch), camera_id, type(exc.orig).__name__)
                    return False
                except BaseException:
                    db.rollback()
                    raise
                if pending:
                    registry.unknown.add(np.stack([e for e, _ in pending]), [g for _, g in pending])
                for event in batch:
                    status[event.item_id] = "stored"
                return True

            if todo and not attempt(todo):
                for event in todo:
                    attempt([event])  # a failure here is a concurrent duplicate: stays "duplicate"
    finally:
        registry.media.delete([p for item_id, f in files.items() if status[item_id] != "stored" for p in f.paths()])
    return status


def store_photo(registry: Any, db: Any, camera_id: str, photo: ParsedPhoto) -> str:
    """Store one photo (file under ``photos/<camera>/``, rows in ``ingested_items`` and ``photos``).

    Returns:
        ``"stored"``, or ``"duplicate"`` when this camera already sent ``photo.item_id``.

    Raises:
        OSError: the file could not be written.
    """
    from sqlalchemy.exc import IntegrityError

    from central.models import IngestedItem, Photo

    if _stored_ids(db, camera_id, [photo.item_id]):
        return "duplicate"
    path = registry.media.write(unique_name("photos", camera_id, photo.item_id), photo.data)
    db.add(IngestedItem(camera_id=camera_id, item_id=photo.item_id, kind=photo.kind, captured_at=photo.captured_at))
    db.add(Photo(camera_id=camera_id, item_id=photo.item_id, kind=photo.kind, path=path, sha256=photo.sha256,
                 size=len(photo.data), captured_at=photo.captured_at, meta=photo.metadata))
    try:
        db.commit()
    except IntegrityError:
        db.rollback()
        registry.media.delete([path])
        return "duplicate"
    except BaseException:
        db.rollback()
        registry.media.delete([path])
        raise
    return "stored"
