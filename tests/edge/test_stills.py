"""Stills history: scheduler on the live pipeline, detection stills, naming and paging, start-up clean-up,
retention by age / size / free disk, and full disks (a real tmpfs, mounted for the test)."""

from __future__ import annotations

import errno
import json
import math
import os
import random
import shutil
import subprocess
import threading
import time
from datetime import datetime
from pathlib import Path

import cv2
import numpy as np
import pytest
from apscheduler.triggers.cron import CronTrigger

from pi_camera_service.config import ConfigError, load_settings
from pi_camera_service.detection.detector import DetectionResult, Face, Profile
from pi_camera_service.sources import create_camera
from pi_camera_service.stills import (
    InvalidCursor,
    InvalidDay,
    InvalidId,
    RetentionPolicy,
    StillsDiskFull,
    StillsService,
    StillStore,
    enforce,
)
from pi_camera_service.stills.store import jpeg_size
from tests.support.net import wait_until
from tests.support.paths import SAMPLE

PAGE = 4096  # tmpfs allocates whole pages


# ----------------------------------------------------------------------------------- fixtures
@pytest.fixture(autouse=True)
def _no_camera_env(monkeypatch):
    for key in list(os.environ):
        if key.startswith("CAMERA_"):
            monkeypatch.delenv(key)


@pytest.fixture(scope="module")
def camera():
    """The real sample-video source at 320x240, running for the whole module."""
    with pytest.MonkeyPatch.context() as mp:
        for key in list(os.environ):
            if key.startswith("CAMERA_"):
                mp.delenv(key)
        settings = load_settings(source=str(SAMPLE), width=320, height=240, stream_on_start=False,
                                 detection_enabled=False)
    cam = create_camera(settings)
    cam.open()
    wait_until(lambda: cam.frames_captured > 0, 10, message="first frame")
    yield cam
    cam.close()


@pytest.fixture(scope="module")
def jpeg(camera) -> bytes:
    """A real still of the sample video (320x240)."""
    return camera.snapshot_jpeg(None, 90)


@pytest.fixture()
def services():
    """Make StillsService objects on the real camera; every one is stopped afterwards."""
    made: list[StillsService] = []

    def make(camera, root: Path, *, thumbnail_width: int = 160, max_age_days: float = 30,
             max_total_bytes: int = 10**12, min_free_bytes: int = 0, **kwargs) -> StillsService:
        kwargs.setdefault("interval", 3600)
        svc = StillsService(
            camera, StillStore(root, thumbnail_width),
            RetentionPolicy(max_age_days, max_total_bytes, min_free_bytes), **kwargs,
        )
        made.append(svc)
        return svc

    yield make
    for svc in made:
        svc.stop()


@pytest.fixture()
def small_fs(tmp_path):
    """``mount(size, nr_inodes)`` -> a freshly mounted real tmpfs; unmounted afterwards, whatever happens."""
    mounted: list[Path] = []

    def mount(size: str = "2m", nr_inodes: int | None = None) -> Path:
        if os.geteuid() != 0:
            pytest.skip("mounting a small tmpfs needs root (CAP_SYS_ADMIN); the full-disk tests are skipped")
        point = tmp_path / f"fs{len(mounted)}"
        point.mkdir()
        options = f"size={size}" + (f",nr_inodes={nr_inodes}" if nr_inodes else "")
        proc = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(point)],
                              check=False, capture_output=True, text=True)
        if proc.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here ({proc.stderr.strip() or proc.returncode}); "
                        "the full-disk tests need `mount -t tmpfs` (root in a privileged container)")
        mounted.append(point)
        return point

    yield mount
    for point in reversed(mounted):
        if subprocess.run(["umount", str(point)], check=False, capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(point)], check=False, capture_output=True)


def fill(fs: Path, leave_free: int, name: str = "filler") -> Path:
    """Grow ``fs/name`` until exactly ``leave_free`` bytes (a multiple of the page size) stay free."""
    path = fs / name
    current = path.stat().st_size if path.exists() else 0
    free = shutil.disk_usage(fs).free
    size = current + free - leave_free
    assert size >= 0, f"cannot leave {leave_free} free: only {free} free"
    with open(path, "wb") as fh:
        fh.truncate(0)
        fh.write(b"\0" * size)
    assert shutil.disk_usage(fs).free == leave_free
    return path


def files_under(root: Path) -> list[str]:
    """Every file under ``root``, relative, sorted."""
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def local_ts(*args: int) -> float:
    """Seconds since the epoch of a local date and time."""
    return datetime(*args).timestamp()


def result(faces: int = 0, profiles: int = 0, at: float | None = None) -> DetectionResult:
    """A real DetectionResult with ``faces`` frontal faces (with 128-d encodings) and ``profiles``."""
    at = time.time() if at is None else at
    return DetectionResult(
        frame_index=1, frame_timestamp=at, analysed_at=at, analysis_ms=5.0, width=320, height=240,
        faces=tuple(Face(10 + 60 * i, 20, 50, 50, encoding=tuple(0.01 * k for k in range(128))) for i in range(faces)),
        profiles=tuple(Profile(200, 30 + 40 * i, 30, 30) for i in range(profiles)),
    )


# ----------------------------------------------------------------------------------- scheduler
def test_interval_schedule_takes_stills_from_the_live_pipeline(camera, services, tmp_path):
    svc = services(camera, tmp_path / "stills", interval=0.3, thumbnail_width=160)
    started = time.time()
    svc.start()
    wait_until(lambda: len(svc.store) >= 3, 10, message="three scheduled stills")
    svc.stop()
    records = list(svc.store)
    assert [r.id for r in records] == sorted({r.id for r in records})
    for record in records:
        still = cv2.imread(str(svc.store.jpeg_path(record.id)))
        thumb = cv2.imread(str(svc.store.thumbnail_path(record.id)))
        assert still.shape == (240, 320, 3) and thumb.shape == (120, 160, 3)
        meta = json.loads(svc.store.sidecar_path(record.id).read_text())
        assert meta["id"] == record.id and meta["trigger"] == "schedule"
        assert (meta["width"], meta["height"]) == (320, 240)
        assert meta["bytes"] == svc.store.jpeg_path(record.id).stat().st_size
        assert meta["thumbnail"] == {"width": 160, "height": 120,
                                     "bytes": svc.store.thumbnail_path(record.id).stat().st_size}
        assert started - 1 <= meta["taken_at"] <= time.time()
        iso = datetime.fromisoformat(meta["taken_at_iso"])
        assert iso.utcoffset() is not None and abs(iso.timestamp() - meta["taken_at"]) < 0.002
        assert iso.strftime("%Y%m%d_%H%M%S_") + f"{iso.microsecond // 1000:03d}" == record.id
        assert meta["camera"]["source"].startswith("file:") and "scene_luma" in meta["camera"]
        assert meta["detection"] is None and record.nb_faces is None
        assert svc.store.jpeg_path(record.id).parent.name == record.id[:4] + "-" + record.id[4:6] + "-" + record.id[6:8]
    status = svc.status()
    assert status["captures"]["taken"] == len(records) and status["captures"]["by_trigger"]["schedule"] == len(records)
    assert status["captures"]["skipped"] == status["captures"]["failed"] == 0
    assert status["last_capture"]["id"] == records[-1].id
    assert status["settings"]["interval_s"] == 0.3 and status["settings"]["cron"] is None


def test_cron_schedule_is_accepted_and_its_next_run_is_right(camera, services, tmp_path):
    settings = load_settings(stills_cron="*/5  * * * *", stills_dir=tmp_path / "s", detection_enabled=False)
    assert settings.stills_cron == "*/5 * * * *"
    svc = StillsService.from_settings(settings, camera)
    svc_hourly = services(camera, tmp_path / "t", cron="0 3 * * *")
    try:
        before = datetime.now().astimezone()
        svc.start()
        svc_hourly.start()
        nxt = svc.next_run()
        assert nxt.tzinfo is not None and nxt.minute % 5 == 0 and nxt.second == 0 and nxt.microsecond == 0
        assert 0 < (nxt - before).total_seconds() <= 300
        expected = CronTrigger.from_crontab("*/5 * * * *", timezone=nxt.tzinfo).get_next_fire_time(None, before)
        assert nxt == expected
        at3 = svc_hourly.next_run()
        assert (at3.hour, at3.minute, at3.second) == (3, 0, 0) and 0 < (at3 - before).total_seconds() <= 86_400 + 3600
        status = svc.status()
        assert status["settings"]["cron"] == "*/5 * * * *" and status["settings"]["interval_s"] is None
        assert status["next_run_at"] == pytest.approx(nxt.timestamp())
        assert datetime.fromisoformat(status["next_run"]) == nxt
    finally:
        svc.stop()


@pytest.mark.parametrize(
    ("value", "expected"),
    [("*/5 * * *", "Wrong number of fields"), ("61 * * * *", "59"), ("0 25 * * *", "23"),
     ("every hour", "crontab"), ("0 * * * * *", "Wrong number of fields")],
)
def test_a_bad_cron_expression_is_a_one_line_config_error(monkeypatch, value, expected):
    for key in list(os.environ):
        if key.startswith("CAMERA_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("CAMERA_STILLS_CRON", value)
    with pytest.raises(ConfigError) as err:
        load_settings()
    message = str(err.value)
    assert "\n" not in message and message.startswith(f"CAMERA_STILLS_CRON={value!r} is invalid")
    assert expected in message and "minute hour day month day_of_week" in message


def test_stills_settings_defaults_and_rules(monkeypatch):
    for key in list(os.environ):
        if key.startswith("CAMERA_"):
            monkeypatch.delenv(key)
    s = load_settings()
    assert (s.stills_enabled, s.stills_dir, s.stills_interval, s.stills_cron, s.stills_on_detection) == (
        True, Path("stills"), 3600, None, False)
    assert (s.stills_detection_min_interval, s.stills_max_age_days, s.stills_max_total_mb, s.stills_min_free_mb,
            s.stills_thumbnail_width, s.stills_quality) == (60, 30, 1024, 200, 320, 90)
    monkeypatch.setenv("CAMERA_STILLS_CRON", "")
    assert load_settings().stills_cron is None  # empty means unset
    for var, value, expected in [
        ("CAMERA_STILLS_INTERVAL", "0.5", "greater than or equal to 1"),
        ("CAMERA_STILLS_QUALITY", "101", "less than or equal to 100"),
        ("CAMERA_STILLS_MAX_AGE_DAYS", "0", "greater than 0"),
        ("CAMERA_STILLS_MIN_FREE_MB", "-1", "greater than or equal to 0"),
    ]:
        with monkeypatch.context() as mp:
            mp.setenv(var, value)
            with pytest.raises(ConfigError, match=expected) as err:
                load_settings()
            assert str(err.value).startswith(f"{var}={value!r}")
    with pytest.raises(ConfigError, match="CAMERA_STILLS_ON_DETECTION=true needs CAMERA_DETECTION_ENABLED=true"):
        load_settings(stills_on_detection=True, detection_enabled=False)


# ----------------------------------------------------------------------------------- detection stills
def test_detection_stills_are_rate_limited_and_taken_off_the_detection_thread(camera, services, tmp_path):
    svc = services(camera, tmp_path / "stills", on_detection=True, detection_min_interval=0.6)
    svc.start()
    with svc._capture_lock:  # a capture on the caller's thread would block here: the listener must not
        first_at = time.monotonic()
        svc.on_detection(result(faces=1))
        svc.on_detection(result(faces=2))  # within the minimum interval: ignored
        svc.on_detection(result())  # nobody in the frame: not an event
        assert time.monotonic() - first_at < 0.5 and len(svc.store) == 0
    wait_until(lambda: len(svc.store) == 1, 5, message="the first detection still")
    while time.monotonic() - first_at < 0.6:
        svc.on_detection(result(faces=1))  # still within the interval
        time.sleep(0.05)
    svc.on_detection(result(profiles=1))
    wait_until(lambda: len(svc.store) == 2, 5, message="the second detection still")
    time.sleep(0.2)
    assert len(svc.store) == 2
    first, second = list(svc.store)
    assert (first.trigger, first.nb_faces, first.nb_profiles) == ("detection", 1, 0)
    assert (second.trigger, second.nb_faces, second.nb_profiles) == ("detection", 0, 1)
    meta = json.loads(svc.store.sidecar_path(first.id).read_text())
    assert meta["detection"]["faces"] == [{"x": 10, "y": 20, "width": 50, "height": 50}]  # encodings dropped
    status = svc.status()
    assert status["captures"]["by_trigger"]["detection"] == 2 and status["detection_events_ignored"] >= 2
    svc.stop()
    svc.on_detection(result(faces=1))  # after stop: ignored, no error
    assert len(svc.store) == 2


class LatestOnly:
    """The part of DetectionService the stills service reads: ``latest()`` (and ``remove_listener``)."""

    def __init__(self) -> None:
        self.result: DetectionResult | None = None

    def latest(self) -> DetectionResult | None:
        return self.result

    def remove_listener(self, listener) -> None:
        pass


def test_a_still_carries_the_newest_detection_only_when_recent(camera, services, tmp_path):
    detection = LatestOnly()
    svc = services(camera, tmp_path / "stills", detection=detection)
    detection.result = result(faces=1, profiles=1)
    recent = svc.capture("schedule")
    detection.result = result(faces=1, at=time.time() - 5)
    stale = svc.capture("manual")
    assert (recent.nb_faces, recent.nb_profiles) == (1, 1) and stale.nb_faces is None
    meta = json.loads(svc.store.sidecar_path(recent.id).read_text())
    assert meta["detection"]["nb_faces"] == 1 and "encoding" not in meta["detection"]["faces"][0]
    assert json.loads(svc.store.sidecar_path(stale.id).read_text())["detection"] is None


# ----------------------------------------------------------------------------------- store: naming, paging
def test_ids_are_sortable_capture_times_and_pages_cover_everything_once(jpeg, tmp_path):
    store = StillStore(tmp_path / "stills", 80)
    base = local_ts(2026, 6, 10, 20, 0, 0)
    times = [base + i * 3000.123 for i in range(40)]  # 32.5 h: three local days
    shuffled = times[:]
    random.Random(7).shuffle(shuffled)
    for t in shuffled:
        store.add(jpeg, taken_at=t, trigger="schedule")
    ids = [r.id for r in store]
    assert ids == sorted(ids) and len(ids) == 40
    for t, still_id in zip(times, ids):
        ms = math.floor(t * 1000)
        assert still_id == datetime.fromtimestamp(ms // 1000).strftime("%Y%m%d_%H%M%S_") + f"{ms % 1000:03d}"
        assert (store.root / f"{still_id[:4]}-{still_id[4:6]}-{still_id[6:8]}" / f"{still_id}.jpg").is_file()

    seen, cursor, pages = [], None, 0
    while True:
        page, cursor = store.page(limit=7, cursor=cursor)
        seen += [r.id for r in page]
        pages += 1
        if cursor is None:
            break
    assert seen == ids[::-1] and pages == 6

    days = store.days()
    assert [d["day"] for d in days] == ["2026-06-12", "2026-06-11", "2026-06-10"]
    assert sum(d["count"] for d in days) == 40
    assert sum(d["bytes"] for d in days) == store.total_bytes
    for d in days:
        day_ids, cursor = [], None
        while True:
            page, cursor = store.page(limit=4, cursor=cursor, day=d["day"])
            day_ids += [r.id for r in page]
            if cursor is None:
                break
        assert day_ids == [i for i in ids[::-1] if i.startswith(d["day"].replace("-", ""))]
        assert len(day_ids) == d["count"]
    assert store.page(day="2026-06-09") == ([], None)

    # a cursor stays valid when the still it points at is deleted meanwhile
    page, cursor = store.page(limit=5)
    store.delete(page[-1].id)
    rest, _ = store.page(limit=100, cursor=cursor)
    assert [r.id for r in rest] == ids[::-1][5:]

    for bad in ("garbage", "czE6Li4vZXRj", "", "czE6MjAyNjA2MTBfMjAwMDAwXzAw"):  # s1:../etc, a cut id
        with pytest.raises(InvalidCursor, match="next_cursor"):
            store.page(cursor=bad)
    for bad in ("2026-02-30", "2026-6-1", "today", "2026-06-10/../x"):
        with pytest.raises(InvalidDay, match="YYYY-MM-DD"):
            store.page(day=bad)
    for bad in ("../../etc/passwd", "20260310_200000_000.jpg", "20260310_200000", "2026031_200000_000"):
        with pytest.raises(InvalidId, match="YYYYMMDD_HHMMSS_mmm"):
            store.get(bad)


def test_stills_in_the_same_millisecond_get_distinct_ids(jpeg, tmp_path):
    store = StillStore(tmp_path, 80)
    t = local_ts(2026, 11, 22, 14, 30, 5) + 0.123
    a, b = store.add(jpeg, taken_at=t), store.add(jpeg, taken_at=t)
    assert (a.id, b.id) == ("20261122_143005_123", "20261122_143005_124")
    assert len(store) == 2 and store.latest().id == b.id


def test_a_non_jpeg_is_refused_before_anything_is_written(tmp_path):
    store = StillStore(tmp_path / "s", 80)
    with pytest.raises(ValueError, match="not a JPEG"):
        store.add(b"GIF89a....")
    with pytest.raises(ValueError, match="trigger"):
        store.add(b"\xff\xd8", trigger="cron")
    assert not (tmp_path / "s").exists() and len(store) == 0
    assert jpeg_size(cv2.imencode(".jpg", np.zeros((30, 50, 3), np.uint8))[1].tobytes()) == (50, 30)


# ----------------------------------------------------------------------------------- start-up
def test_startup_removes_leftovers_and_the_index_survives_a_restart(jpeg, tmp_path):
    root = tmp_path / "stills"
    store = StillStore(root, 80)
    t = local_ts(2026, 11, 22, 10, 0, 0)
    a, b, c = (store.add(jpeg, taken_at=t + i) for i in range(3))
    day = root / "2026-11-22"
    (day / f".{a.id}.jpg.k3j4h5.tmp").write_bytes(jpeg[:1000])  # a write cut short
    (day / "20261122_110000_000.jpg").write_bytes(jpeg)  # JPEG and thumbnail written, no sidecar yet
    (day / "20261122_110000_000.thumb.jpg").write_bytes(jpeg)
    store.jpeg_path(c.id).unlink()  # a sidecar whose JPEG is gone
    (day / "20261122_120000_000.json").write_text("{")  # an unreadable sidecar
    (day / "20261122_120000_000.jpg").write_bytes(jpeg)
    (day / "notes.txt").write_text("mine")  # not ours: left alone
    (root / "2026-11-23").mkdir()  # an empty day: removed
    (root / "2026-11-24").mkdir()
    (root / "2026-11-24" / ".20261124_000000_000.json.abc.tmp").write_text("{")

    reopened = StillStore(root, 80)
    summary = reopened.open()
    assert summary == {"stills": 2, "removed": 8}
    assert [r for r in reopened] == [a, b]
    assert files_under(root) == sorted([
        f"2026-11-22/{a.id}.jpg", f"2026-11-22/{a.id}.json", f"2026-11-22/{a.id}.thumb.jpg",
        f"2026-11-22/{b.id}.jpg", f"2026-11-22/{b.id}.json", f"2026-11-22/{b.id}.thumb.jpg",
        "2026-11-22/notes.txt",
    ])
    assert not (root / "2026-11-23").exists() and not (root / "2026-11-24").exists()

    again = StillStore(root, 80)
    again.open()
    assert list(again) == [a, b] and again.total_bytes == a.disk_bytes + b.disk_bytes == reopened.total_bytes
    assert again.page(limit=1)[0] == [b] and again.days() == reopened.days()
    assert StillStore(tmp_path / "never-created").open() == {"stills": 0, "removed": 0}
    assert not (tmp_path / "never-created").exists()


# ----------------------------------------------------------------------------------- retention
def test_retention_by_age_deletes_only_the_too_old(jpeg, tmp_path):
    store = StillStore(tmp_path / "stills", 80)
    now = time.time()
    old, older_than_limit, young, fresh = (
        store.add(jpeg, taken_at=now - d * 86_400) for d in (40, 30.01, 29.9, 0.01)
    )
    result_ = enforce(store, RetentionPolicy(30, 10**12, 0), now=now)
    assert result_.deleted == [old.id, older_than_limit.id] and result_.by_rule["age"] == 2
    assert list(store) == [young, fresh]
    for gone in (old, older_than_limit):
        assert not store.jpeg_path(gone.id).exists() and not store.sidecar_path(gone.id).exists()
        assert not store.thumbnail_path(gone.id).exists()
    assert result_.freed_bytes == old.disk_bytes + older_than_limit.disk_bytes


def test_retention_by_total_size_deletes_the_oldest_first(jpeg, tmp_path):
    store = StillStore(tmp_path / "stills", 80)
    now = time.time()
    records = [store.add(jpeg, taken_at=now - 3600 + i) for i in range(10)]
    limit = sum(r.disk_bytes for r in records[4:])
    result_ = enforce(store, RetentionPolicy(30, limit, 0), now=now)
    assert result_.deleted == [r.id for r in records[:4]] and result_.by_rule == {"age": 0, "size": 4, "free_disk": 0}
    assert list(store) == records[4:] and store.total_bytes == limit
    # room for the next still: one more goes
    assert enforce(store, RetentionPolicy(30, limit, 0), now=now, reserve_bytes=1).deleted == [records[4].id]
    # the still just taken is never deleted, even if it alone is over the limit
    assert enforce(store, RetentionPolicy(30, 1, 0), now=now, keep=records[-1].id).by_rule["size"] == 4
    assert list(store) == [records[-1]]


def test_free_disk_floor_on_a_real_small_filesystem(camera, services, small_fs):
    fs = small_fs("2m")
    floor = 1_000_000
    svc = services(camera, fs / "stills", min_free_bytes=floor, thumbnail_width=160)
    svc.start()
    t = time.time() - 3600
    old = [svc.store.add(camera.snapshot_jpeg(None, 90), taken_at=t + i, trigger="schedule") for i in range(16)]
    # something else fills the disk: 60 KB below the floor
    fill(fs, leave_free=(floor - 60_000) // PAGE * PAGE)
    new = svc.capture("manual")
    kept = list(svc.store)
    deleted = [r for r in old if r not in kept]
    assert 1 <= len(deleted) < len(old) and deleted == old[: len(deleted)], "the oldest go first"
    assert kept == old[len(deleted):] + [new]
    assert shutil.disk_usage(fs).free >= floor
    assert svc.status()["deleted_by_retention"]["free_disk"] == len(deleted)

    # the disk fills up further: even deleting every still cannot keep the floor -> skipped
    fill(fs, leave_free=300 * 1024)
    with pytest.raises(StillsDiskFull, match="CAMERA_STILLS_MIN_FREE_MB=1"):
        svc.capture("schedule")
    status = svc.status()
    assert status["captures"]["skipped"] == 1 and "disk full" in status["last_skip"]["reason"]
    assert status["last_skip"]["trigger"] == "schedule" and status["captures"]["failed"] == 0
    assert len(svc.store) == 0 and files_under(fs / "stills") == []
    assert [p for p in fs.rglob("*.tmp")] == []
    assert svc.running and svc.next_run() is not None  # the scheduler goes on

    (fs / "filler").unlink()  # space again: stills again
    back = svc.capture("schedule")
    assert list(svc.store) == [back] and svc.status()["captures"]["taken"] == 2


def test_enospc_mid_write_never_leaves_a_corrupt_still(jpeg, small_fs):
    fs = small_fs("2m")
    store = StillStore(fs / "stills", 160)
    first = store.add(jpeg, taken_at=time.time() - 10)  # creates the day directory (no pages on tmpfs)
    pages = sum(-(-p.stat().st_size // PAGE) for p in (store.jpeg_path(first.id), store.thumbnail_path(first.id),
                                                      store.sidecar_path(first.id)))
    expected_files = files_under(fs / "stills")
    t = time.time()
    failures = 0
    for free_pages in range(pages):  # fails while writing the JPEG, then the thumbnail, then the sidecar
        fill(fs, leave_free=free_pages * PAGE)
        with pytest.raises(OSError) as err:
            store.add(jpeg, taken_at=t)
        assert err.value.errno == errno.ENOSPC
        assert files_under(fs / "stills") == expected_files, f"leftovers with {free_pages} free pages"
        assert list(store) == [first] and store.total_bytes == first.disk_bytes
        failures += 1
    fill(fs, leave_free=pages * PAGE)
    done = store.add(jpeg, taken_at=t)  # exactly enough room
    assert failures == pages and list(store) == [first, done]
    reopened = StillStore(fs / "stills", 160)
    assert reopened.open() == {"stills": 2, "removed": 0}


def test_running_out_of_inodes_is_counted_and_the_schedule_goes_on(camera, services, small_fs):
    # root, stills/, the day directory, JPEG and thumbnail fit; the sidecar gets ENOSPC
    fs = small_fs("2m", nr_inodes=5)
    (fs / "stills").mkdir()
    svc = services(camera, fs / "stills", interval=0.3)
    svc.start()
    wait_until(lambda: svc.status()["captures"]["failed"] >= 3, 10, message="three failed scheduled stills")
    status = svc.status()
    assert status["captures"]["taken"] == 0 and status["running"]
    assert "No space left on device" in status["last_error"]["message"]
    assert status["free_disk_bytes"] > 1_500_000  # bytes were never the problem
    svc.stop()
    assert files_under(fs) == [] and list(os.scandir(fs / "stills")) == []
    with pytest.raises(OSError) as err:  # a manual still is refused the same way
        svc.capture("manual")
    assert err.value.errno == errno.ENOSPC and files_under(fs) == []


def test_periodic_retention_runs_on_the_scheduler(jpeg, camera, services, tmp_path):
    svc = services(camera, tmp_path / "stills", max_age_days=1, retention_period=0.2)
    svc.start()
    stale = svc.store.add(jpeg, taken_at=time.time() - 2 * 86_400)
    wait_until(lambda: svc.status()["deleted_by_retention"]["age"] == 1, 5, message="the periodic retention pass")
    assert svc.store.get(stale.id) is None and not svc.store.jpeg_path(stale.id).exists()


def test_start_applies_retention_and_stop_is_idempotent(jpeg, camera, services, tmp_path):
    store = StillStore(tmp_path / "stills", 80)
    stale = store.add(jpeg, taken_at=time.time() - 40 * 86_400)
    keep = store.add(jpeg, taken_at=time.time() - 60)
    svc = services(camera, tmp_path / "stills")
    svc.start()
    assert [r.id for r in svc.store] == [keep.id] and svc.store.get(stale.id) is None
    svc.stop()
    svc.stop()
    assert not svc.running and svc.next_run() is None


def test_concurrent_manual_and_scheduled_captures_do_not_collide(camera, services, tmp_path):
    svc = services(camera, tmp_path / "stills", interval=0.3)
    svc.start()
    threads = [threading.Thread(target=svc.capture) for _ in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    wait_until(lambda: svc.status()["captures"]["by_trigger"]["schedule"] >= 1, 5, message="a scheduled still")
    svc.stop()
    ids = [r.id for r in svc.store]
    assert len(ids) == len(set(ids)) == svc.status()["captures"]["taken"] >= 5
    reopened = StillStore(tmp_path / "stills")
    assert reopened.open()["removed"] == 0 and [r.id for r in reopened] == ids
