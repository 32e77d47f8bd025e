"""Outbox store (real SQLite file), face tracks and the sender against a real HTTP server."""

from __future__ import annotations

import itertools
import json
import os
import sqlite3
import threading
from pathlib import Path

import pytest

from pi_camera_service.detection.detector import DetectionResult, Face, Profile
from pi_camera_service.detection.tracks import FaceTracker, encoding_distance
from pi_camera_service.outbox import DB_FILE, Outbox, OutboxLimits


class Clock:
    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def open_outbox(tmp_path: Path, **limits) -> Outbox:
    box = Outbox(tmp_path / "state", OutboxLimits(**limits) if limits else None)
    box.open()
    return box


# ----------------------------------------------------------------------------- store
def test_database_is_wal_with_full_sync(tmp_path):
    box = open_outbox(tmp_path)
    box.add("face_event", {"n": 1})
    with sqlite3.connect(tmp_path / "state" / DB_FILE) as other:
        assert other.execute("PRAGMA journal_mode").fetchone()[0] == "wal"  # persistent in the file
    assert box._conn().execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    box.close()


def test_file_is_on_disk_before_the_row_commits(tmp_path, monkeypatch):
    box = open_outbox(tmp_path)
    seen = {}
    real_execute = sqlite3.Connection.execute

    class Spy(sqlite3.Connection):
        def execute(self, sql, *args):
            if sql.startswith("INSERT INTO items"):
                seen["files"] = sorted(p.name for p in box.files_dir.iterdir())
                seen["content"] = (box.files_dir / f"{args[0][0]}-crop0.jpg").read_bytes()
            return real_execute(self, sql, *args)

    spy = sqlite3.connect(box.db_path, factory=Spy, isolation_level=None, check_same_thread=False)
    box._db.close()
    box._db = spy
    item_id = box.add("face_event", {"n": 1}, {"crop0.jpg": b"\xff\xd8jpeg"})
    assert seen["files"] == [f"{item_id}-crop0.jpg"]
    assert seen["content"] == b"\xff\xd8jpeg"
    [item] = box.peek()
    assert item.item_id == item_id and len(item_id) == 32 and int(item_id, 16) >= 0
    assert item.files[0].read_bytes() == b"\xff\xd8jpeg"
    assert item.size == len(json.dumps({"n": 1}, separators=(",", ":"))) + 6
    box.close()


def test_failed_commit_leaves_no_file(tmp_path):
    box = open_outbox(tmp_path)
    item_id = box.add("photo", {"n": 1}, {"photo.jpg": b"x"})
    with pytest.raises(sqlite3.IntegrityError):
        box.add("photo", {"n": 2}, {"other.jpg": b"y"}, item_id=item_id)  # same primary key
    assert sorted(p.name for p in box.files_dir.iterdir()) == [f"{item_id}-photo.jpg"]
    assert box.depth() == 1
    box.close()


def test_restart_keeps_items_and_removes_leftovers(tmp_path):
    box = open_outbox(tmp_path)
    kept = box.add("photo", {"kind": "still"}, {"photo.jpg": b"jpeg"})
    acked = box.add("face_event", {"n": 2}, {"crop0.jpg": b"c"})
    assert box.ack([acked]) == 1
    box.close()
    # what a crash leaves: a temp file of write_atomic, a file written but never committed
    (box.files_dir / f".{kept}-x.jpg.abc.tmp").write_bytes(b"partial")
    (box.files_dir / "0123456789abcdef0123456789abcdef-crop0.jpg").write_bytes(b"orphan")
    again = open_outbox(tmp_path)
    assert [i.item_id for i in again.peek()] == [kept]
    assert sorted(p.name for p in again.files_dir.iterdir()) == [f"{kept}-photo.jpg"]
    stats = again.stats()
    assert stats["sent"] == 1 and stats["depth"] == 1 and stats["by_kind"] == {"face_event": 0, "photo": 1}
    again.close()


def test_bounds_drop_the_oldest_and_count_them(tmp_path):
    clock = Clock()
    box = Outbox(tmp_path / "state", OutboxLimits(max_items=3, max_bytes=10_000, max_age_s=100), clock=clock)
    box.open()
    ids = []
    for n in range(5):
        clock.now += 1
        ids.append(box.add("face_event", {"n": n}, {"crop0.jpg": b"z" * 10}))
    assert [i.item_id for i in box.peek()] == ids[2:]
    assert box.stats()["dropped"] == 2
    assert len(list(box.files_dir.iterdir())) == 3  # the dropped items' files are gone too
    # bytes: one large item pushes out the older ones
    big = box.add("photo", {"n": "big"}, {"photo.jpg": b"b" * 9_960})
    assert [i.item_id for i in box.peek()] == [ids[4], big]
    assert box.stats()["dropped"] == 4
    # age
    clock.now += 101
    assert box.enforce_limits() == 2
    stats = box.stats()
    assert stats["depth"] == 0 and stats["dropped"] == 6 and stats["oldest_item_at"] is None
    box.close()
    again = Outbox(tmp_path / "state", clock=clock)
    again.open()
    assert again.stats()["dropped"] == 6  # persistent
    again.close()


def test_peek_ack_reject_and_stats(tmp_path):
    clock = Clock()
    box = Outbox(tmp_path / "state", clock=clock)
    box.open()
    a = box.add("face_event", {"n": "a"})
    clock.now += 10
    b = box.add("photo", {"n": "b"}, {"photo.jpg": b"p" * 100})
    clock.now += 10
    c = box.add("face_event", {"n": "c"})
    assert [i.item_id for i in box.peek(kind="face_event")] == [a, c]
    assert [i.item_id for i in box.peek(batch=2)] == [a, b]
    assert [i.item_id for i in box.peek(max_bytes=1)] == [a]  # the first is always returned
    box.note_failure([a], "HTTP 503")
    [first, *_] = box.peek()
    assert first.attempts == 1 and first.last_error == "HTTP 503"
    stats = box.stats()
    assert stats["last_error"] == "HTTP 503"
    assert stats["oldest_age_s"] == pytest.approx(20.0)
    assert stats["oldest_item_at"] == "2023-11-14T22:13:20.000Z"
    assert box.ack([a, "f" * 32]) == 1
    assert box.reject(b, "too large") is True
    box.clear_error()
    stats = box.stats()
    assert (stats["depth"], stats["sent"], stats["rejected"]) == (1, 1, 1)
    assert stats["last_rejected_reason"] == "too large" and stats["last_error"] is None
    assert stats["last_sent_at"].endswith("Z")
    assert list(box.files_dir.iterdir()) == []
    box.close()


def test_adds_from_many_threads(tmp_path):
    box = open_outbox(tmp_path)
    errors = []

    def work(k: int) -> None:
        try:
            for n in range(20):
                box.add("face_event", {"k": k, "n": n}, {"crop0.jpg": os.urandom(64)})
                if n % 5 == 0:
                    box.ack([i.item_id for i in box.peek(3)])
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    stats = box.stats()
    assert stats["depth"] + stats["sent"] == 120
    assert len(list(box.files_dir.iterdir())) == stats["depth"]
    box.close()


# ----------------------------------------------------------------------------- tracks
def result(t: float, faces=(), profiles=()) -> DetectionResult:
    return DetectionResult(frame_index=int(t * 10), frame_timestamp=t, analysed_at=t, analysis_ms=1.0,
                           width=640, height=480, faces=tuple(faces), profiles=tuple(profiles))


def face(x: int, y: int, enc: float | None = None, size: int = 80) -> Face:
    return Face(x, y, size, size, tuple([enc] * 128) if enc is not None else ())


def test_one_face_at_five_fps_gives_appeared_then_rate_limited_updates():
    tracker = FaceTracker(update_interval=30, end_after=5)
    events = []
    for n in range(5 * 95):  # 95 s at 5 fps, drifting slowly
        t = 1000 + n / 5
        events += tracker.update(result(t, [face(100 + n // 10, 100, 0.1)]))
    kinds = [e.event for e in events]
    assert kinds == ["appeared", "updated", "updated", "updated"]
    assert len({e.track_id for e in events}) == 1
    times = [e.result.frame_timestamp for e in events]
    assert all(b - a >= 30 for a, b in itertools.pairwise(times))


def test_tracks_end_after_absence_and_two_people_are_two_tracks():
    tracker = FaceTracker(update_interval=30, end_after=3)
    first = tracker.update(result(0, [face(10, 10, 0.0), face(400, 10, 0.5)]))
    assert [e.event for e in first] == ["appeared", "appeared"]
    assert first[0].track_id != first[1].track_id
    # both seen again (moved a little): nothing new
    assert tracker.update(result(1, [face(14, 10, 0.0), face(404, 12, 0.5)])) == []
    # the person on the left jumps across the frame: the encoding keeps the track
    assert tracker.update(result(2, [face(300, 200, 0.01)])) == []
    # gone for longer than end_after: a new track when seen again
    again = tracker.update(result(10, [face(300, 200, 0.01)]))
    assert [e.event for e in again] == ["appeared"] and again[0].track_id not in {e.track_id for e in first}
    assert tracker.tracks_started == 3


def test_profile_continues_a_face_track_by_overlap():
    tracker = FaceTracker(update_interval=2, end_after=5)
    [appeared] = tracker.update(result(0, [face(100, 100, None)]))
    assert tracker.update(result(1, profiles=[Profile(105, 100, 80, 80)])) == []
    [updated] = tracker.update(result(2.5, profiles=[Profile(108, 100, 80, 80)]))
    assert updated.track_id == appeared.track_id and updated.event == "updated"
    assert updated.face is None and updated.box == (108, 100, 80, 80)


def test_encoding_distance():
    assert encoding_distance((0.0, 0.0), (3.0, 4.0)) == 5.0
    assert encoding_distance((), (1.0,)) == float("inf")
    with pytest.raises(ValueError):
        FaceTracker(update_interval=0)
