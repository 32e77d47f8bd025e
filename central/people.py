"""People, their enrolled face encodings, unknown-face groups, and the in-memory indexes over them.

:class:`FaceRegistry` (one per server process, ``CentralState.faces``) keeps two
:class:`~central.matching.EncodingIndex` es: enrolled encodings labelled with person ids, and the
newest ``representatives`` encodings of each unknown group labelled with the group id
(:class:`UnknownFaces`). Both are loaded from the database on first use (:meth:`FaceRegistry.reload`,
a full rebuild) and updated in place by every change made through this module (enrolment, merge,
deletion, group assignment, pruning: :meth:`FaceRegistry.prune_unknown`) and by the ingest. Changes
are serialised by ``registry.lock`` (a face being matched never sees half an operation).

Several server processes may share one database: each change moves the ``faces`` change counter in
its transaction (:func:`central.changes.begin_change`), and :meth:`FaceRegistry.ensure_loaded` reloads
when the database's version differs from the one loaded, so every process matches with the others'
enrolments from its next request on.

Face encodings of uploaded photos are computed here with the cameras' own detector
(:class:`pcs_common.faces.detector.FaceDetector`, dlib HOG + 5-point alignment + ResNet,
face_recognition's ``face_encodings(model="small")`` numbers), so server and camera encodings compare
like for like.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections import deque
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import Select, delete, exists, func, select, tuple_, update
from sqlalchemy.orm import Session

from central import changes, sightings
from central.ingest import MediaStore, unique_name
from central.matching import DEFAULT_ANN_THRESHOLD, EncodingIndex, Match, encoding_to_bytes, encodings_from_bytes
from central.models import FaceObservation, Person, PersonEncoding, Photo, Sighting, UnknownGroup, new_id
from central.photo_faces import (  # noqa: F401 - re-exported: the people API's errors and photo faces
    DOMINANT_WIDTH_RATIO,
    MAX_DETECT_SIDE,
    MAX_ENROL_PIXELS,
    MIN_DETECT_SIDE,
    PeopleError,
    dominant_face,
    encode_faces,
)

log = logging.getLogger(__name__)

#: newest faces per unknown group in the in-memory index (the database keeps all of them)
DEFAULT_REPRESENTATIVES = 20
#: unknown faces (faces matching no person) older than this are erased by :meth:`FaceRegistry.prune_unknown`, days
DEFAULT_UNKNOWN_RETENTION_DAYS = 30.0
#: rows from which the unknown-face index is approximate (lower than the people's: each stranger
#: ingested queries it; a rare miss only starts a new group)
UNKNOWN_ANN_THRESHOLD = 50_000
#: rows read (and converted) at once when an index is loaded from the database
LOAD_CHUNK = 50_000
#: unknown faces erased per transaction by :meth:`FaceRegistry.prune_unknown`
PRUNE_CHUNK = 2_000


# --- the registry -----------------------------------------------------------------------------------


def _load(db: Session, query: Select[Any]) -> tuple[list[str], np.ndarray]:
    """``(labels, (N, 128) float32)`` of a ``(label, encoding bytes)`` query, read in chunks of
    :data:`LOAD_CHUNK` rows (bounded temporaries: 50 MB of blobs at a time)."""
    labels: list[str] = []
    parts = []
    for chunk in db.execute(query.execution_options(yield_per=LOAD_CHUNK)).partitions():
        labels.extend(row[0] for row in chunk)
        parts.append(encodings_from_bytes([row[1] for row in chunk]))
    return labels, (np.concatenate(parts) if parts else np.empty((0, 128), np.float32))


class UnknownFaces:
    """The unknown-face index: encodings labelled with their group id, at most ``per_group`` per
    group (the newest added; an older one is dropped when a group is full), so its size is bounded
    by the number of groups, not by how often a stranger came by.

    Args:
        tolerance: as :class:`~central.matching.EncodingIndex`.
        per_group: representatives kept per group (>= 1).
        ann_threshold: rows from which the approximate search is used (0: never).
    """

    def __init__(self, tolerance: float, per_group: int = DEFAULT_REPRESENTATIVES,
                 ann_threshold: int = UNKNOWN_ANN_THRESHOLD) -> None:
        if per_group < 1:
            raise ValueError("per_group must be >= 1")
        self.per_group = per_group
        self.index = EncodingIndex(tolerance, ann_threshold=ann_threshold)
        self._members: dict[str, deque[int]] = {}  # group -> row keys, oldest first

    def __len__(self) -> int:
        return len(self.index)

    def nearest(self, encoding: np.ndarray, tolerance: float | None = None) -> Match:
        """:meth:`EncodingIndex.nearest` over the representatives."""
        return self.index.nearest(encoding, tolerance)

    def count(self, group_id: str) -> int:
        """Representatives of ``group_id`` in the index (at most ``per_group``)."""
        return self.index.count(group_id)

    def replace(self, encodings: np.ndarray, group_ids: list[str]) -> None:
        """Make the index exactly these faces (oldest first), keeping the newest ``per_group`` of each group."""
        self.index.replace(np.empty((0, 128), np.float32), [])
        self._members = {}
        self.add(encodings, group_ids)

    def add(self, encodings: np.ndarray, group_ids: list[str]) -> None:
        """Add faces (in capture order), dropping each full group's oldest: O(1) amortised per face."""
        if not len(group_ids):
            return
        keys = self.index.add(encodings, group_ids)
        dropped = []
        for key, gid in zip(keys.tolist(), group_ids):
            members = self._members.setdefault(gid, deque())
            members.append(key)
            if len(members) > self.per_group:
                dropped.append(members.popleft())
        self.index.remove_keys(dropped)

    def remove(self, group_ids: list[str] | set[str]) -> None:
        """Drop every face of these groups."""
        gone = [g for g in group_ids if self._members.pop(g, None) is not None]
        self.index.remove(gone)


@dataclass
class Classified:
    """Where one ingested face went: ``person_id`` (matched), else ``group_id`` (unknown; ``new_group``
    when it started the group); ``distance`` to the nearest enrolled encoding / group member."""

    person_id: str | None
    group_id: str | None
    distance: float | None
    new_group: bool = False


class FaceRegistry:
    """The indexes of enrolled and unknown encodings, the media store and the settings they use.

    Args:
        media: where crops, frames, photos and enrolment photos are written.
        tolerance: match tolerance (Euclidean distance, default 0.6) for people and unknown groups.
        sighting_gap_s: s between two detections beyond which a new sighting opens.
    """

    def __init__(self, media: MediaStore, tolerance: float = 0.6, sighting_gap_s: float = 60.0, *,
                 ann_threshold: int = DEFAULT_ANN_THRESHOLD, representatives: int = DEFAULT_REPRESENTATIVES,
                 unknown_retention_days: float = DEFAULT_UNKNOWN_RETENTION_DAYS) -> None:
        self.media = media
        self.tolerance = tolerance
        self.sighting_gap_s = sighting_gap_s
        self.unknown_retention_days = unknown_retention_days
        self.people = EncodingIndex(tolerance, ann_threshold=ann_threshold)
        self.unknown = UnknownFaces(tolerance, representatives,
                                    ann_threshold=min(ann_threshold, UNKNOWN_ANN_THRESHOLD) if ann_threshold else 0)
        self.lock = threading.RLock()
        self._loaded = False
        self.loaded_version: int | None = None
        """The ``faces`` change counter (:mod:`central.changes`) the indexes reflect."""

    # --- indexes ------------------------------------------------------------------------------------

    def reload(self, db: Session, version: int | None = None) -> None:
        """Rebuild both indexes from the database: every enrolled encoding, and the newest
        ``representatives`` unknown faces of each group. Vectorised: the rows are read in chunks of
        :data:`LOAD_CHUNK` and converted with one ``np.frombuffer`` per chunk (start-up times in
        docs/performance.md). ``version``: the change counter the data read reflects (default: read
        before the data)."""
        with self.lock:
            version = changes.read(db) if version is None else version
            labels, matrix = _load(db, select(PersonEncoding.person_id, PersonEncoding.encoding))
            self.people.replace(matrix, labels)
            labels, matrix = _load(db, self._representatives_query())
            self.unknown.replace(matrix, labels)
            self._loaded = True
            self.loaded_version = version

    def _representatives_query(self, group_ids: list[str] | None = None) -> Select[Any]:
        """``(group_id, encoding)`` of the newest :attr:`UnknownFaces.per_group` faces with an encoding
        of each unknown group (or of ``group_ids``), oldest first (so that adding them in order keeps
        the newest: :meth:`UnknownFaces.add`). One window-function query (SQLite >= 3.25, PostgreSQL)."""
        newest = func.row_number().over(partition_by=FaceObservation.unknown_group_id,
                                        order_by=(FaceObservation.captured_at.desc(), FaceObservation.id.desc()))
        inner = select(FaceObservation.unknown_group_id.label("g"), FaceObservation.encoding.label("e"),
                       FaceObservation.captured_at.label("t"), FaceObservation.id.label("i"),
                       newest.label("rn")).where(FaceObservation.unknown_group_id.is_not(None),
                                                 FaceObservation.encoding.is_not(None))
        if group_ids is not None:
            inner = inner.where(FaceObservation.unknown_group_id.in_(group_ids))
        sub = inner.subquery()
        return select(sub.c.g, sub.c.e).where(sub.c.rn <= self.unknown.per_group).order_by(sub.c.t, sub.c.i)

    def _reload_groups(self, db: Session, group_ids: set[str] | list[str]) -> None:
        """Reload the representatives of these unknown groups from the database (groups gone are
        just dropped): O(size of the groups), not a rebuild of the index."""
        ids = sorted(group_ids)
        self.unknown.remove(ids)
        for start in range(0, len(ids), 500):
            labels, matrix = _load(db, self._representatives_query(ids[start:start + 500]))
            self.unknown.add(matrix, labels)

    def _applied(self, version: int) -> None:
        """The in-place update of a change counted as ``version`` is done: the indexes now reflect
        ``version`` if they reflected the one before (else the next request reloads them)."""
        if self.loaded_version == version - 1:
            self.loaded_version = version

    def ensure_loaded(self, db: Session, committed: int | None = None) -> None:
        """:meth:`reload` unless loaded at the database's current ``faces`` version (one indexed read
        per call; another process's change is seen here). ``committed``: inside a change, the version
        before it (:func:`central.changes.begin_change` minus one)."""
        version = changes.read(db) if committed is None else committed
        if not self._loaded or version != self.loaded_version:
            self.reload(db, version)

    def classify(self, db: Session, encoding: np.ndarray, pending: list[tuple[np.ndarray, str]]) -> Classified:
        """Match one face: the enrolled person within tolerance, else the unknown group whose nearest
        member is within tolerance (``pending``: members added in this batch, not yet in the index),
        else a new group (added to the session, not flushed, and to ``pending``: flush the session
        before adding faces that refer to it). Call under :attr:`lock`.

        Args:
            encoding: ``(128,)`` float64.
            pending: ``[(encoding, group_id)]`` of this batch; appended to.
        """
        person = self.people.nearest(encoding)
        if person.label is not None:
            return Classified(person.label, None, person.distance)
        best: Match = self.unknown.nearest(encoding)
        if pending:
            stack = np.stack([e for e, _ in pending])
            dists = np.linalg.norm(stack - encoding, axis=1)
            i = int(np.argmin(dists))
            if best.distance is None or dists[i] < best.distance:
                best = Match(pending[i][1] if dists[i] <= self.tolerance else None, float(dists[i]), pending[i][1])
        if best.label is not None:
            pending.append((encoding, best.label))
            return Classified(None, best.label, best.distance)
        group = UnknownGroup(id=new_id())
        db.add(group)  # not flushed: no ORM relationship orders the inserts, so flush before its faces
        pending.append((encoding, group.id))
        return Classified(None, group.id, None, new_group=True)

    def record_sighting(self, db: Session, person_id: str, camera_id: str, at: dt.datetime,
                        recent: dict[tuple[str, str], list[Any]] | None = None) -> None:
        """:func:`central.sightings.record` with this registry's gap (``recent``: see there)."""
        sightings.record(db, person_id, camera_id, at, self.sighting_gap_s, recent)

    # --- people -------------------------------------------------------------------------------------

    def person_or_404(self, db: Session, person_id: str) -> Person:
        """The person.

        Raises:
            PeopleError: 404 when there is no person with this id.
        """
        person = db.get(Person, person_id)
        if person is None:
            raise PeopleError(404, f"no person with id {person_id!r}")
        return person

    def enrol_photo(self, db: Session, person_id: str, jpeg: bytes) -> tuple[PersonEncoding, dict[str, int], int]:
        """Enrol the face of a photo: the only face, or the dominant one when every other face is at
        most :data:`DOMINANT_WIDTH_RATIO` of its width. The photo is kept under ``enrol/<person>/``
        and the encoding computed with :func:`encode_faces`.

        Returns:
            The new row, the box used ``{x, y, width, height}`` (photo px) and the number of faces found.

        Raises:
            PeopleError: 404 unknown person; 422 not a JPEG, no face, or two or more faces of
            similar size (the message lists their boxes).
        """
        encodings, boxes = encode_faces(jpeg)
        chosen = dominant_face(boxes)
        if chosen is None:
            if not boxes:
                raise PeopleError(422, "the photo must show a face; 0 found (use a sharper, frontal, well-lit "
                                       "photo, face at least 40 px wide)")
            listed = "; ".join(f"x={x} y={y} width={w} height={h}" for x, y, w, h in boxes)
            raise PeopleError(422, f"the photo shows {len(boxes)} faces of similar size, so which one to enrol is "
                                   f"ambiguous: {listed} (crop it to one face, or use a photo where that face "
                                   f"is the largest by far)")
        x, y, w, h = boxes[chosen]
        with self.lock:
            version = changes.begin_change(db)
            self.ensure_loaded(db, version - 1)
            self.person_or_404(db, person_id)
            path = self.media.write(unique_name("enrol", person_id, "photo"), jpeg)
            row = PersonEncoding(person_id=person_id, encoding=encoding_to_bytes(encodings[chosen]), source="photo",
                                 source_path=path)
            db.add(row)
            try:
                db.commit()
            except Exception:
                db.rollback()
                self.media.delete([path])
                raise
            self.people.add(encodings[chosen : chosen + 1], [person_id])
            self._applied(version)
            return row, {"x": x, "y": y, "width": w, "height": h}, len(boxes)

    def enrol_observations(self, db: Session, person_id: str, observation_ids: list[str]) -> list[dict[str, Any]]:
        """Enrol received faces as encodings of the person; each is linked to the person and leaves
        its unknown group (emptied groups are deleted). One result per id, in order:
        ``{observation_id, status: "enrolled" | "already_enrolled" | "rejected", reason}``.

        Raises:
            PeopleError: 404 unknown person.
        """
        with self.lock:
            version = changes.begin_change(db)
            self.ensure_loaded(db, version - 1)
            self.person_or_404(db, person_id)
            rows = {o.id: o for o in db.scalars(select(FaceObservation).where(FaceObservation.id.in_(observation_ids)))}
            done = set(db.scalars(select(PersonEncoding.observation_id).where(
                PersonEncoding.person_id == person_id, PersonEncoding.observation_id.in_(observation_ids))))
            results, touched_groups = [], set()
            for oid in observation_ids:
                obs = rows.get(oid)
                if obs is None:
                    results.append({"observation_id": oid, "status": "rejected", "reason": "no face observation with this id"})
                elif obs.encoding is None:
                    results.append({"observation_id": oid, "status": "rejected",
                                    "reason": "this face has no encoding (the camera sent none); it cannot be enrolled"})
                elif oid in done:
                    results.append({"observation_id": oid, "status": "already_enrolled", "reason": None})
                else:
                    done.add(oid)
                    db.add(PersonEncoding(person_id=person_id, encoding=obs.encoding, source="observation",
                                          source_path=obs.crop_path, observation_id=oid))
                    if obs.unknown_group_id:
                        touched_groups.add(obs.unknown_group_id)
                    if obs.person_id != person_id:
                        obs.person_id, obs.unknown_group_id, obs.distance = person_id, None, 0.0
                        self.record_sighting(db, person_id, obs.camera_id, obs.captured_at)
                    results.append({"observation_id": oid, "status": "enrolled", "reason": None})
            db.flush()
            self._drop_empty_groups(db, touched_groups)
            enrolled = [rows[r["observation_id"]].encoding for r in results if r["status"] == "enrolled"]
            db.commit()
            self.people.add(encodings_from_bytes(enrolled), [person_id] * len(enrolled))
            self._reload_groups(db, touched_groups)
            self._applied(version)
            return results

    def _drop_empty_groups(self, db: Session, group_ids: set[str]) -> None:
        for gid in group_ids:
            left = db.scalar(select(func.count()).select_from(FaceObservation).where(FaceObservation.unknown_group_id == gid))
            if not left:
                db.execute(delete(UnknownGroup).where(UnknownGroup.id == gid))

    def merge(self, db: Session, person_id: str, other_id: str) -> Person:
        """Move ``other_id``'s encodings, observations and sightings to ``person_id``; delete ``other_id``.

        Raises:
            PeopleError: 404 either person unknown; 422 both ids are the same.
        """
        if person_id == other_id:
            raise PeopleError(422, "other_id must be a different person than the one merged into")
        with self.lock:
            version = changes.begin_change(db)
            self.ensure_loaded(db, version - 1)
            person = self.person_or_404(db, person_id)
            other = self.person_or_404(db, other_id)
            for model in (PersonEncoding, FaceObservation, Sighting):
                db.execute(update(model).where(model.person_id == other_id).values(person_id=person_id))
            db.delete(other)
            db.commit()
            self.people.relabel(other_id, person_id)
            self._applied(version)
            return person

    def delete_person(self, db: Session, person_id: str) -> dict[str, int]:
        """Erase a person: their enrolled encodings (and enrolment photos), every face observation
        matched to them (rows and crop files), the frames of events left with no face, their sightings,
        then the person. Files are removed after the commit.

        Returns:
            Counts ``{encodings, observations, frames, sightings, files}`` erased.

        Raises:
            PeopleError: 404 unknown person.
        """
        with self.lock:
            version = changes.begin_change(db)
            self.ensure_loaded(db, version - 1)
            person = self.person_or_404(db, person_id)
            encs = db.execute(select(PersonEncoding.id, PersonEncoding.source_path).where(
                PersonEncoding.person_id == person_id)).all()
            obs = db.execute(select(FaceObservation.id, FaceObservation.crop_path, FaceObservation.camera_id,
                                    FaceObservation.item_id).where(FaceObservation.person_id == person_id)).all()
            files = [p for _, p in encs] + [p for _, p, _, _ in obs]
            db.execute(delete(PersonEncoding).where(PersonEncoding.person_id == person_id))
            db.execute(delete(FaceObservation).where(FaceObservation.person_id == person_id))
            frames = self._orphan_frames(db, {(c, i) for _, _, c, i in obs})
            files += [f.path for f in frames]
            for frame in frames:
                db.delete(frame)
            n_sightings = db.execute(delete(Sighting).where(Sighting.person_id == person_id)).rowcount
            db.delete(person)
            db.commit()
            self.media.delete(files)
            self.people.remove([person_id])
            self._applied(version)
            return {"encodings": len(encs), "observations": len(obs), "frames": len(frames),
                    "sightings": n_sightings or 0, "files": len({f for f in files if f})}

    def _orphan_frames(self, db: Session, items: set[tuple[str, str]]) -> list[Photo]:
        """The stored frames of these ``(camera_id, item_id)`` events that no longer have a face row."""
        out = []
        for camera_id, item_id in items:
            left = db.scalar(select(func.count()).select_from(FaceObservation).where(
                FaceObservation.camera_id == camera_id, FaceObservation.item_id == item_id))
            if not left:
                out += list(db.scalars(select(Photo).where(Photo.camera_id == camera_id, Photo.item_id == item_id,
                                                           Photo.kind == "frame")))
        return out

    # --- unknown groups -----------------------------------------------------------------------------

    def assign_group(self, db: Session, group_id: str, person_id: str | None, name: str | None) -> tuple[Person, int]:
        """Name an unknown group: its faces become enrolled encodings of the person (an existing one,
        or a new one called ``name``), are linked to them and counted in their sightings (in capture
        order); the group is deleted. Later matching faces match the person.

        Returns:
            The person and the number of faces enrolled.

        Raises:
            PeopleError: 404 unknown group or person; 422 neither or both of person_id and name.
        """
        if (person_id is None) == (name is None):
            raise PeopleError(422, "send exactly one of person_id (an existing person) or name (a new person)")
        with self.lock:
            version = changes.begin_change(db)
            self.ensure_loaded(db, version - 1)
            group = db.get(UnknownGroup, group_id)
            if group is None:
                raise PeopleError(404, f"no unknown group with id {group_id!r}")
            person = self.person_or_404(db, person_id) if person_id else Person(id=new_id(), name=name)
            db.add(person)
            db.flush()
            members = list(db.scalars(select(FaceObservation).where(FaceObservation.unknown_group_id == group_id)
                                      .order_by(FaceObservation.captured_at)))
            for obs in members:
                obs.person_id, obs.unknown_group_id = person.id, None
                if obs.encoding is not None:
                    db.add(PersonEncoding(person_id=person.id, encoding=obs.encoding, source="observation",
                                          source_path=obs.crop_path, observation_id=obs.id))
                self.record_sighting(db, person.id, obs.camera_id, obs.captured_at)
            db.flush()
            db.delete(group)
            enrolled = [o.encoding for o in members if o.encoding is not None]
            db.commit()
            self.people.add(encodings_from_bytes(enrolled), [person.id] * len(enrolled))
            self.unknown.remove([group_id])
            self._applied(version)
            return person, len(enrolled)

    def delete_group(self, db: Session, group_id: str) -> dict[str, int]:
        """Erase an unknown group: its face observations (rows and crops), frames left with no face,
        then the group.

        Raises:
            PeopleError: 404 unknown group.
        """
        with self.lock:
            version = changes.begin_change(db)
            group = db.get(UnknownGroup, group_id)
            if group is None:
                raise PeopleError(404, f"no unknown group with id {group_id!r}")
            obs = db.execute(select(FaceObservation.crop_path, FaceObservation.camera_id, FaceObservation.item_id)
                             .where(FaceObservation.unknown_group_id == group_id)).all()
            db.execute(delete(FaceObservation).where(FaceObservation.unknown_group_id == group_id))
            frames = self._orphan_frames(db, {(c, i) for _, c, i in obs})
            files = [p for p, _, _ in obs] + [f.path for f in frames]
            for frame in frames:
                db.delete(frame)
            db.delete(group)
            db.commit()
            self.media.delete(files)
            self.unknown.remove([group_id])
            self._applied(version)
            return {"observations": len(obs), "frames": len(frames)}

    def prune_unknown(self, db: Session, now: dt.datetime | None = None) -> dict[str, int]:
        """Erase the faces of nobody known (no person: in an unknown group, or without an encoding)
        captured more than :attr:`unknown_retention_days` before ``now``: their rows and crops, the
        frames of events left with no face, and the groups left empty. Enrolled encodings and faces
        matched or named to a person are never touched. Runs at start-up and every
        ``PURGE_INTERVAL_S`` (central/app.py), in transactions of :data:`PRUNE_CHUNK` faces; the
        unknown index is updated for the groups touched only.

        Args:
            now: the reference time (UTC); default the current time.

        Returns:
            Counts ``{observations, frames, groups}`` erased (all 0 when the retention is 0: keep forever).
        """
        counts = {"observations": 0, "frames": 0, "groups": 0}
        if not self.unknown_retention_days:
            return counts
        cutoff = (now or dt.datetime.now(dt.timezone.utc)) - dt.timedelta(days=self.unknown_retention_days)
        touched: set[str] = set()
        with self.lock:
            while True:
                rows = db.execute(select(FaceObservation.id, FaceObservation.crop_path, FaceObservation.camera_id,
                                         FaceObservation.item_id, FaceObservation.unknown_group_id)
                                  .where(FaceObservation.person_id.is_(None), FaceObservation.captured_at < cutoff)
                                  .limit(PRUNE_CHUNK)).all()
                if not rows:
                    break
                groups = {g for *_, g in rows if g}
                items = list({(c, i) for _, _, c, i, _ in rows})
                db.execute(delete(FaceObservation).where(FaceObservation.id.in_([r[0] for r in rows])))
                faceless = ~exists().where(FaceObservation.camera_id == Photo.camera_id,
                                           FaceObservation.item_id == Photo.item_id)
                frames = db.execute(select(Photo.id, Photo.path).where(
                    Photo.kind == "frame", tuple_(Photo.camera_id, Photo.item_id).in_(items), faceless)).all()
                if frames:
                    db.execute(delete(Photo).where(Photo.id.in_([f for f, _ in frames])))
                emptied = db.execute(delete(UnknownGroup).where(UnknownGroup.id.in_(groups), ~exists().where(
                    FaceObservation.unknown_group_id == UnknownGroup.id))).rowcount if groups else 0
                db.commit()
                self.media.delete([p for _, p, *_ in rows] + [p for _, p in frames])
                touched |= groups
                counts["observations"] += len(rows)
                counts["frames"] += len(frames)
                counts["groups"] += emptied or 0
            if touched and self._loaded:
                self._reload_groups(db, touched)
        if counts["observations"]:
            log.info("erased %d unknown face(s) older than %g days (%d frame(s), %d group(s))",
                     counts["observations"], self.unknown_retention_days, counts["frames"], counts["groups"])
        return counts


def person_view(person: Person, encodings: int, last_seen: dict[str, Any] | None) -> dict[str, Any]:
    """JSON of a person: ``{id, name, created_at, encodings, last_seen: {camera_id, camera_name, at} | null}``."""
    return {"id": person.id, "name": person.name, "created_at": person.created_at, "encodings": encodings,
            "last_seen": last_seen}


def list_people(db: Session) -> list[dict[str, Any]]:
    """Every person by name, with their enrolled-encoding count and last sighting (three queries)."""
    counts = dict(db.execute(select(PersonEncoding.person_id, func.count()).group_by(PersonEncoding.person_id)).all())
    seen = sightings.last_seen_all(db)
    return [person_view(p, counts.get(p.id, 0), seen.get(p.id))
            for p in db.scalars(select(Person).order_by(Person.name, Person.id))]


def one_person(db: Session, person: Person) -> dict[str, Any]:
    """:func:`person_view` of one person."""
    count = db.scalar(select(func.count()).select_from(PersonEncoding).where(PersonEncoding.person_id == person.id))
    last = sightings.last_seen(db, person.id)
    return person_view(person, count or 0,
                       {"camera_id": last["camera_id"], "camera_name": last["camera_name"], "at": last["ended_at"]}
                       if last else None)
