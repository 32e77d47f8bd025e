"""The stills service: takes stills from the live pipeline on a schedule, on detections and on request.

One APScheduler 3 :class:`~apscheduler.schedulers.background.BackgroundScheduler` with a single
worker thread runs everything that writes: the scheduled still (an ``IntervalTrigger`` or a
``CronTrigger.from_crontab`` in local time; ``coalesce=True``, ``max_instances=1`` and a misfire grace
time, so a late or busy scheduler takes one still, never a burst), detection-triggered stills and the
periodic retention pass. Stills come from ``camera.snapshot_jpeg(width=None, quality=Q)``: the newest
full-size frame of the running pipeline; the camera is never opened a second time.

The detection listener (:meth:`StillsService.on_detection`) runs on the detection thread: it only
decides (at least one face or profile, and at most one still per ``detection_min_interval`` s) and
hands the capture to the scheduler's worker.

A capture (:meth:`StillsService.capture`): snapshot -> retention with room reserved for the new
still -> skip (counted, with the reason) when even then the free-disk floor would be broken ->
atomic write (:meth:`StillStore.add`) -> retention again. Errors never leave the worker: a full disk
or any ``OSError`` while writing is counted and logged, the partial files are gone, and the next
capture runs as usual.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import datetime
from typing import TYPE_CHECKING, Any

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from pi_camera_service.sources.base import CameraUnavailable
from pi_camera_service.stills.retention import (
    MB,
    RetentionPolicy,
    capture_reserve,
    disk_free,
    enforce,
)
from pi_camera_service.stills.store import StillRecord, StillStore, Trigger

if TYPE_CHECKING:
    from pi_camera_service.config import Settings
    from pcs_common.faces.results import DetectionResult

log = logging.getLogger(__name__)

#: a scheduled run may start this many seconds late (e.g. after the clock or the machine was suspended)
MISFIRE_GRACE_TIME = 60
#: the newest detection result is stored with a still when its frame is at most this much older, s
DETECTION_MAX_AGE = 2.0
#: seconds between retention passes besides those after each capture (the age rule needs them)
RETENTION_PERIOD = 600.0
SCHEDULE_JOB_ID = "stills-schedule"
RETENTION_JOB_ID = "stills-retention"


class StillsDiskFull(OSError):
    """A capture was skipped: even after deleting every older still the free-disk floor would be broken."""


class StillsService:
    """Scheduler + detection listener + retention around a :class:`StillStore`. Thread-safe.

    Args:
        camera: the running camera (``snapshot_jpeg``, ``metadata``, ``source``).
        store: the history.
        policy: retention limits.
        interval: seconds between scheduled stills (used when ``cron`` is None), > 0 (the settings
            require >= 1).
        cron: 5-field crontab expression in the scheduler's time zone (local), or None.
        on_detection: take stills on detections (the caller registers :meth:`on_detection`).
        detection_min_interval: at most one detection-triggered still per this many seconds.
        quality: JPEG quality 1..100.
        detection: the detection service (``latest()``) whose newest result goes with stills, or None.
        controls: the camera controls (``status()``) stored with each still, or None.
        retention_period: seconds between periodic retention passes.

    Raises:
        ValueError: ``cron`` is not a valid crontab expression, or ``interval`` <= 0.
    """

    def __init__(
        self,
        camera: Any,
        store: StillStore,
        policy: RetentionPolicy,
        *,
        interval: float = 3600.0,
        cron: str | None = None,
        on_detection: bool = False,
        detection_min_interval: float = 60.0,
        quality: int = 90,
        detection: Any = None,
        controls: Any = None,
        retention_period: float = RETENTION_PERIOD,
    ) -> None:
        if cron is None and not interval > 0:
            raise ValueError("interval must be > 0 s")
        self.camera = camera
        self.store = store
        self.policy = policy
        self.interval = float(interval)
        self.cron = cron
        self.on_detection_enabled = on_detection
        self.detection_min_interval = float(detection_min_interval)
        self.quality = int(quality)
        self.detection = detection
        self.controls = controls
        self.retention_period = float(retention_period)
        if logging.getLogger("apscheduler").level == logging.NOTSET:
            logging.getLogger("apscheduler").setLevel(logging.WARNING)  # no INFO line per job run
        self._scheduler = BackgroundScheduler(
            executors={"default": ThreadPoolExecutor(max_workers=1)},
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": MISFIRE_GRACE_TIME},
        )
        # validate now (the settings did already; direct users get the error here, not at start)
        self._trigger = (
            CronTrigger.from_crontab(cron, timezone=self._scheduler.timezone)
            if cron is not None else IntervalTrigger(seconds=self.interval, timezone=self._scheduler.timezone)
        )
        self._capture_lock = threading.Lock()  # one capture or retention pass at a time
        self._state_lock = threading.Lock()
        self._running = False
        self._last_detection_still: float | None = None  # monotonic
        self._taken = {"schedule": 0, "detection": 0, "manual": 0}
        self._skipped = 0
        self._failed = 0
        self._detections_ignored = 0
        self._deleted = {"age": 0, "size": 0, "free_disk": 0}
        self._last_capture: StillRecord | None = None
        self._last_skip: dict[str, Any] | None = None
        self._last_error: dict[str, Any] | None = None

    @classmethod
    def from_settings(
        cls, settings: Settings, camera: Any, detection: Any = None, controls: Any = None
    ) -> StillsService:
        """Build the store and the service from ``CAMERA_STILLS_*`` settings (nothing starts yet)."""
        return cls(
            camera,
            StillStore(settings.stills_dir, settings.stills_thumbnail_width),
            RetentionPolicy(
                max_age_days=settings.stills_max_age_days,
                max_total_bytes=int(settings.stills_max_total_mb * MB),
                min_free_bytes=int(settings.stills_min_free_mb * MB),
            ),
            interval=settings.stills_interval,
            cron=settings.stills_cron,
            on_detection=settings.stills_on_detection,
            detection_min_interval=settings.stills_detection_min_interval,
            quality=settings.stills_quality,
            detection=detection,
            controls=controls,
        )

    # --- lifecycle --------------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        """True between :meth:`start` and :meth:`stop`."""
        return self._running

    def start(self) -> None:
        """Index the history (cleaning up interrupted writes), apply retention, start the scheduler.

        Blocks while the stills directory is scanned (one sidecar read per still). A directory that
        cannot be read or a retention failure is logged and reported in :meth:`status`; the
        scheduler starts anyway (each capture tries again).
        """
        if self._running:
            return
        try:
            self.store.open()
            self._retention()
        except OSError as exc:
            self._record_error(f"cannot open the stills directory {self.store.root}: {exc}")
        self._scheduler.add_job(self._scheduled, self._trigger, id=SCHEDULE_JOB_ID, name="scheduled still",
                                replace_existing=True)
        self._scheduler.add_job(self._periodic_retention, IntervalTrigger(seconds=self.retention_period),
                                id=RETENTION_JOB_ID, name="stills retention", replace_existing=True)
        self._scheduler.start()
        self._running = True
        log.info("stills: %s under %s%s", self._schedule_text(), self.store.root,
                 "; also on detections" if self.on_detection_enabled else "")

    def stop(self) -> None:
        """Stop taking stills (idempotent): unregister from detection, wait for a running capture."""
        if not self._running:
            return
        self._running = False
        if self.detection is not None:
            self.detection.remove_listener(self.on_detection)
        try:
            self._scheduler.shutdown(wait=True)
        except Exception:  # noqa: BLE001 - already stopped
            log.debug("stills scheduler already stopped", exc_info=True)
        log.info("stills: stopped")

    # --- capturing --------------------------------------------------------------------------------
    def capture(self, trigger: Trigger = "manual", result: DetectionResult | None = None) -> StillRecord:
        """Take a still now from the live pipeline and store it (blocks ~ one JPEG encode + writes).

        Args:
            trigger: ``schedule`` | ``detection`` | ``manual``.
            result: the detection result that triggered it (stored with the still); otherwise the
                newest result is stored when its frame is at most 2 s older than the still.

        Returns:
            the new still's record.

        Raises:
            CameraUnavailable: the camera has no frame yet (counted as skipped).
            StillsDiskFull: the free-disk floor cannot be kept even after deleting every older still
                (counted as skipped; nothing written).
            OSError: writing failed, e.g. ENOSPC (counted as failed; nothing of it kept).
        """
        with self._capture_lock:
            taken_at = time.time()
            try:
                jpeg = self.camera.snapshot_jpeg(None, self.quality)
            except CameraUnavailable as exc:
                self._record_skip(trigger, f"no frame from the camera yet: {exc}")
                raise
            detection = self._detection_for(taken_at, result)
            try:
                check = enforce(self.store, self.policy, now=taken_at, reserve_bytes=capture_reserve(len(jpeg)))
                self._count_deleted(check.by_rule)
                if not check.floor_ok:
                    self._record_skip(trigger, check.reason or "disk full")
                    raise StillsDiskFull(check.reason)
                record = self.store.add(
                    jpeg, taken_at=taken_at, trigger=trigger, detection=detection, camera=self._camera_meta(),
                )
            except StillsDiskFull:
                raise
            except OSError as exc:
                self._record_error(f"could not write a {trigger} still: {exc}", failed=True)
                raise
            with self._state_lock:
                self._taken[trigger] += 1
                self._last_capture = record
            try:
                self._count_deleted(enforce(self.store, self.policy, now=taken_at, keep=record.id).by_rule)
            except OSError as exc:
                self._record_error(f"retention after a still failed: {exc}")
            return record

    def on_detection(self, result: DetectionResult) -> None:
        """Detection listener: queue a still when ``result`` has a face or a profile, at most one per
        ``detection_min_interval`` s. Returns at once (the capture runs on the scheduler's worker)."""
        if not (self._running and self.on_detection_enabled) or not (result.faces or result.profiles):
            return
        now = time.monotonic()
        with self._state_lock:
            last = self._last_detection_still
            if last is not None and now - last < self.detection_min_interval:
                self._detections_ignored += 1
                return
            self._last_detection_still = now
        try:
            self._scheduler.add_job(self._scheduled, args=("detection", result), name="detection still")
        except Exception as exc:  # noqa: BLE001 - stopping; never break the detection thread
            log.debug("stills: detection still not queued: %s", exc)

    def _scheduled(self, trigger: Trigger = "schedule", result: DetectionResult | None = None) -> None:
        """A capture on the scheduler's worker: every error is counted and logged, none escapes."""
        try:
            self.capture(trigger, result)
        except (CameraUnavailable, OSError):
            pass  # counted (skipped / failed) and logged by capture()
        except Exception as exc:  # noqa: BLE001 - keep the scheduler going whatever happens
            log.exception("stills: %s still failed", trigger)
            self._record_error(f"{trigger} still failed: {type(exc).__name__}: {exc}", failed=True)

    def _periodic_retention(self) -> None:
        try:
            with self._capture_lock:
                self._retention()
        except OSError as exc:
            self._record_error(f"retention failed: {exc}")

    def _retention(self) -> None:
        result = enforce(self.store, self.policy)
        self._count_deleted(result.by_rule)
        if result.deleted:
            log.info("stills: retention deleted %d still(s) (%s)", len(result.deleted),
                     ", ".join(f"{k}: {v}" for k, v in result.by_rule.items() if v))

    # --- helpers ----------------------------------------------------------------------------------
    def _detection_for(self, taken_at: float, result: DetectionResult | None) -> dict[str, Any] | None:
        if result is None and self.detection is not None:
            latest = self.detection.latest()
            if latest is not None and taken_at - latest.frame_timestamp <= DETECTION_MAX_AGE:
                result = latest
        return result.to_dict() if result is not None else None

    def _camera_meta(self) -> dict[str, Any]:
        meta: dict[str, Any] = {"source": getattr(self.camera, "source", None)}
        try:
            meta.update(self.camera.metadata())
        except Exception as exc:  # noqa: BLE001 - metadata is a bonus, the still matters
            meta["metadata_error"] = str(exc)
        if self.controls is not None:
            try:
                meta["controls"] = self.controls.status()
            except Exception as exc:  # noqa: BLE001
                meta["controls_error"] = str(exc)
        return meta

    def _count_deleted(self, by_rule: dict[str, int]) -> None:
        with self._state_lock:
            for rule, n in by_rule.items():
                self._deleted[rule] += n

    def _record_skip(self, trigger: str, reason: str) -> None:
        with self._state_lock:
            self._skipped += 1
            repeated = self._last_skip is not None and self._last_skip["reason"] == reason
            self._last_skip = {"at": time.time(), "trigger": trigger, "reason": reason}
        (log.debug if repeated else log.warning)("stills: %s still skipped: %s", trigger, reason)

    def _record_error(self, message: str, failed: bool = False) -> None:
        with self._state_lock:
            if failed:
                self._failed += 1
            self._last_error = {"at": time.time(), "message": message}
        log.error("stills: %s", message)

    def _schedule_text(self) -> str:
        return f"cron '{self.cron}' (local time)" if self.cron else f"every {self.interval:g} s"

    # --- reporting --------------------------------------------------------------------------------
    def next_run(self) -> datetime | None:
        """When the next scheduled still is due (time-zone aware, local), or None when not running."""
        if not self._running:
            return None
        job = self._scheduler.get_job(SCHEDULE_JOB_ID)
        return job.next_run_time if job is not None else None

    def settings(self) -> dict[str, Any]:
        """The settings in force: directory, schedule, detection stills, retention limits, thumbnail, quality."""
        return {
            "dir": str(self.store.root),
            "interval_s": None if self.cron else self.interval,
            "cron": self.cron,
            "on_detection": self.on_detection_enabled,
            "detection_min_interval_s": self.detection_min_interval,
            **self.policy.to_dict(),
            "thumbnail_width": self.store.thumbnail_width,
            "quality": self.quality,
        }

    def status(self) -> dict[str, Any]:
        """``GET /v1/stills/status``.

        Returns:
            ``{running, count, total_bytes, free_disk_bytes, settings, next_run, next_run_at,
            last_capture, captures: {taken, by_trigger, skipped, failed}, detection_events_ignored,
            deleted_by_retention: {age, size, free_disk}, last_skip: {at, trigger, reason},
            last_error: {at, message}}``; times in s since the epoch, ``next_run`` in local ISO 8601.
        """
        try:
            free: int | None = disk_free(self.store.root)
        except OSError:
            free = None
        nxt = self.next_run()
        with self._state_lock:
            return {
                "running": self._running,
                "count": len(self.store),
                "total_bytes": self.store.total_bytes,
                "free_disk_bytes": free,
                "settings": self.settings(),
                "next_run": nxt.isoformat() if nxt is not None else None,
                "next_run_at": nxt.timestamp() if nxt is not None else None,
                "last_capture": self._last_capture.to_dict() if self._last_capture is not None else None,
                "captures": {
                    "taken": sum(self._taken.values()),
                    "by_trigger": dict(self._taken),
                    "skipped": self._skipped,
                    "failed": self._failed,
                },
                "detection_events_ignored": self._detections_ignored,
                "deleted_by_retention": dict(self._deleted),
                "last_skip": dict(self._last_skip) if self._last_skip else None,
                "last_error": dict(self._last_error) if self._last_error else None,
            }
