"""Stream health reported honestly, timestamps a receiver accepts, and the stream winning over detection.

* :class:`StreamStats` windowed fps, frame gaps, largest gap and drops; the back-off signal.
* PTS: strictly increasing with a minimum step (software and Picamera2 paths).
* Detection runs at ``SCHED_IDLE`` and backs off while the stream falls behind.
* ``/metrics`` in the Prometheus text format, behind ``/v1``'s authentication by default.
* Real processes: the service in a cgroup with a CPU quota keeps its RTSP frames with detection on
  (compared with detection off in the same test), and a real ffmpeg receiver and ffprobe print no
  timestamp warnings on a recording.
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient

from pi_camera_service import priority
from pi_camera_service.detection.service import DetectionService
from pi_camera_service.frames import AnalysisFrame, Frame
from pi_camera_service.sources.base import StreamStats
from pi_camera_service.sources.picamera2_backend import sensor_pts
from pi_camera_service.streaming import RTP_VIDEO_CLOCK, next_pts
from tests.support import cgroups
from tests.support.camera_app import make_camera_app
from tests.support.net import free_port, wait_until
from tests.support.paths import SAMPLE
from tests.support.processes import ServiceProcess
from tests.support.rtsp import WarningReceiver, gaps, probe

API_KEY = "stream-health-key-0123456789abcdef"
TIMESTAMP_WARNINGS = ("Timestamps are unset", "non monotonically increasing dts", "Non-monotonous DTS",
                      "non-monotonic", "Invalid timestamps")


# ----------------------------------------------------------------------------------- StreamStats
def _streaming_stats() -> StreamStats:
    stats = StreamStats()
    stats.state = "streaming"
    return stats


def test_health_counts_gaps_and_the_largest_gap_of_the_last_minute():
    stats = _streaming_stats()
    t = 1000.0
    times = []
    for i in range(300):  # 10 s at 30 fps with two stalls: 150 ms and 400 ms
        t += 1 / 30
        if i == 100:
            t += 0.15
        if i == 200:
            t += 0.40
        times.append(t)
        stats.record(1000, now=t)
    h = stats.health(now=t)
    assert h["frame_gaps_60s"] == 2 and h["frame_gaps"] == 2
    assert abs(h["max_gap_ms_60s"] - (400 + 1000 / 30)) < 1
    # 300 frames over ~10.55 s streamed
    assert 27 < h["fps_10s"] < 30.5 and 27 < h["fps_60s"] < 30.5
    # a minute later the gaps have left the window, the totals stay
    later = t + 61
    for i in range(60):
        stats.record(1000, now=later + i / 30)
    h = stats.health(now=later + 2)
    assert h["frame_gaps_60s"] == 1  # the 61 s pause itself
    assert h["frame_gaps"] == 3


def test_a_stall_shows_at_once_and_fps_is_not_inflated():
    stats = _streaming_stats()
    for i in range(60):
        stats.record(1000, now=100 + i / 30)
    last = 100 + 59 / 30
    h = stats.health(now=last + 3.0)  # nothing published for 3 s
    assert h["max_gap_ms_60s"] >= 3000
    assert h["fps_10s"] < 15, "a stalled stream must not report its old rate"
    assert stats.falling_behind(30, now=last + 3.0)


def test_reconnect_is_not_a_frame_gap_and_drops_are_counted():
    stats = _streaming_stats()
    for i in range(30):
        stats.record(1000, now=10 + i / 30)
    stats.state = "reconnecting"
    stats.state = "streaming"
    for i in range(30):
        stats.record(1000, now=20 + i / 30)
    stats.drop(3, now=20.5)
    h = stats.health(now=21)
    assert h["frame_gaps_60s"] == 0
    assert h["frames_dropped"] == 3 and h["frames_dropped_60s"] == 3
    stopped = StreamStats()
    assert stopped.health()["fps_10s"] == 0.0 and not stopped.falling_behind(30)


def test_falling_behind_on_low_rate_gap_or_drop_only():
    steady = _streaming_stats()
    for i in range(150):
        steady.record(1000, now=50 + i / 30)
    now = 50 + 149 / 30
    assert not steady.falling_behind(30, now=now)
    steady.drop(1, now=now)
    assert steady.falling_behind(30, now=now)
    slow = _streaming_stats()
    for i in range(100):
        slow.record(1000, now=50 + i / 20)  # 20 fps of a nominal 30
    assert slow.falling_behind(30, now=50 + 99 / 20)
    assert not slow.falling_behind(20, now=50 + 99 / 20)


# ----------------------------------------------------------------------------------- timestamps
def test_pts_strictly_increase_by_at_least_half_a_frame():
    step = RTP_VIDEO_CLOCK // 60
    assert next_pts(0, None, 30) == 0
    assert next_pts(3000, 0, 30) == 3000  # on time: capture time kept
    assert next_pts(10, 3000, 30) == 3000 + step  # burst / clock step back: pushed forward
    assert next_pts(3001, 3000, 30) == 3000 + step
    pts, last = [], None
    for t in (0.0, 0.033, 0.0331, 0.0332, 0.1, 0.1001, 0.2):
        last = next_pts(round(t * RTP_VIDEO_CLOCK), last, 30)
        pts.append(last)
    assert all(b - a >= 90 for a, b in zip(pts, pts[1:])), pts  # >= 1 ms: distinct in any ms-based muxer


def test_sensor_timestamps_become_increasing_and_jumps_count_as_drops():
    assert sensor_pts(0, None, 30) == (0, 0)
    assert sensor_pts(33_333, 0, 30) == (33_333, 0)
    assert sensor_pts(133_333, 33_333, 30) == (133_333, 2)  # 100 ms: two frames never encoded
    assert sensor_pts(33_000, 33_333, 30)[0] == 33_333 + 16_666  # repeated/backwards stamp


# ----------------------------------------------------------------------------------- detection
class _Camera:
    """Produces a new analysis frame whenever asked (a camera that always has a fresh frame)."""

    def __init__(self) -> None:
        self.n = 0

    def analysis_frame(self) -> AnalysisFrame:
        self.n += 1
        return AnalysisFrame(Frame(np.zeros((36, 32), np.uint8), 32, 24, self.n), 32, 24)


class _Detector:
    def __init__(self) -> None:
        self.threads: list[int] = []

    def analyse(self, af):
        from pi_camera_service.detection.detector import DetectionResult

        self.threads.append(threading.get_native_id())
        now = time.time()
        return DetectionResult(af.frame.index, af.frame.timestamp, now, 0.1, af.main_width, af.main_height)


def test_detection_thread_runs_at_sched_idle_and_backs_off_while_the_stream_falls_behind():
    behind = threading.Event()
    behind.set()
    detector = _Detector()
    service = DetectionService(_Camera(), lambda: detector, fps=20, backpressure=behind.is_set, min_fps=2.5,
                               priority="idle")
    service.BACKOFF_INTERVAL = 0.2
    service.RECOVER_AFTER = 0.3
    service.start()
    try:
        wait_until(lambda: service.stats()["target_fps"] <= 2.5, 10, 0.02, "back-off to min_fps")
        stats = service.stats()
        assert stats["backoffs"] == 3 and stats["priority"] == "SCHED_IDLE"
        tid = detector.threads[-1]
        assert priority.describe(tid) == "SCHED_IDLE"
        assert priority.describe(threading.get_native_id()) != "SCHED_IDLE", "only the analysis thread"
        behind.clear()
        wait_until(lambda: service.stats()["target_fps"] == 20, 10, 0.02, "recovery to fps")
    finally:
        service.stop()


def test_without_backpressure_the_rate_stays_and_priority_can_stay_normal():
    detector = _Detector()
    service = DetectionService(_Camera(), lambda: detector, fps=20, priority="normal")
    service.start()
    try:
        wait_until(lambda: service.stats()["frames_analysed"] >= 5, 10, 0.02, "analyses")
        assert service.stats()["target_fps"] == 20 and service.stats()["priority"] == "normal"
        assert priority.describe(detector.threads[-1]) == "normal"
    finally:
        service.stop()
    with pytest.raises(ValueError):
        DetectionService(_Camera(), lambda: detector, fps=5, min_fps=6)


# ----------------------------------------------------------------------------------- /metrics
def _app(tmp_path: Path, **overrides):
    return make_camera_app(tmp_path / "state", api_key=API_KEY, stills_enabled=False,
                           rtsp_url=f"rtsp://127.0.0.1:{free_port()}/cam", **overrides)


def test_metrics_need_credentials_by_default_and_speak_prometheus(tmp_path):
    from prometheus_client.parser import text_string_to_metric_families

    with TestClient(_app(tmp_path)) as client:
        r = client.get("/metrics")
        assert r.status_code == 401 and "www-authenticate" in r.headers
        r = client.get("/metrics", headers={"X-API-Key": API_KEY})
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain; version=")
        families = {f.name: f for f in text_string_to_metric_families(r.text)}
        for name in ("pi_camera_stream_up", "pi_camera_stream_fps", "pi_camera_stream_frame_gaps",
                     "pi_camera_stream_max_frame_gap_seconds", "pi_camera_stream_frames_dropped"):
            assert name in families, sorted(families)
        windows = {s.labels["window"] for s in families["pi_camera_stream_fps"].samples}
        assert windows == {"2s", "10s", "60s"}
        assert families["pi_camera_stream_up"].samples[0].value == 0.0  # not streaming


def test_metrics_can_be_opened_to_the_network(tmp_path):
    with TestClient(_app(tmp_path, metrics_auth=False)) as client:
        r = client.get("/metrics")
        assert r.status_code == 200 and "pi_camera_stream_frames_sent_total" in r.text
        assert client.get("/v1/streaming/status").status_code == 401, "only /metrics is opened"


# ----------------------------------------------------------------------------------- real processes
def _service_env(workdir: Path, rtsp_port: int, **overrides: str) -> dict[str, str]:
    return {
        "CAMERA_SOURCE": str(SAMPLE), "CAMERA_WIDTH": "640", "CAMERA_HEIGHT": "480", "CAMERA_FRAMERATE": "30",
        "CAMERA_BITRATE": "800000", "CAMERA_RTSP_URL": f"rtsp://127.0.0.1:{rtsp_port}/cam",
        "CAMERA_HOST": "127.0.0.1", "CAMERA_PORT": str(free_port()), "CAMERA_API_KEY": API_KEY,
        "CAMERA_STATE_DIR": str(workdir / "state"), "CAMERA_STILLS_ENABLED": "false",
        "CAMERA_MDNS_ENABLED": "false", **overrides,
    }


def _record(svc: ServiceProcess, rx: WarningReceiver, seconds: float) -> dict:
    """Wait for streaming, record ``seconds`` s, return the service's own /v1/streaming/status."""
    with httpx.Client(base_url=svc.base, headers={"X-API-Key": API_KEY}, timeout=20) as c:
        wait_until(lambda: c.get("/v1/streaming/status").json()["state"] == "streaming", 60, 0.2, "streaming")
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            rx.proc.wait(timeout=max(0.1, end - time.monotonic())) if rx.proc.poll() is not None else time.sleep(0.5)
        return c.get("/v1/streaming/status").json()


#: what ffmpeg 5.1's RTSP demuxer says of the first access unit of *any* publisher: its H.264 parser
#: gives the first frame no timestamp (``ffprobe -v debug``: "first_dts ... not matching first dts
#: NOPTS ... in the queue"); the reference run below shows ffmpeg's own publisher gets it too
FIRST_AU_WARNING = "Timestamps are unset in a packet"


def _reference_publisher_warnings(tmp_path: Path) -> list[str]:
    """Receiver warnings for 2 s published by the ffmpeg CLI itself (libx264, same x264 options)."""
    port = free_port()
    with WarningReceiver(port, tmp_path / "reference.mkv") as rx:
        subprocess.run(
            ["ffmpeg", "-nostdin", "-v", "error", "-re", "-f", "lavfi", "-i", "testsrc=size=320x240:rate=30",
             "-t", "2", "-c:v", "libx264", "-preset", "superfast", "-tune", "zerolatency", "-bf", "0",
             "-f", "rtsp", "-rtsp_transport", "tcp", f"rtsp://127.0.0.1:{port}/cam"],
            check=True, timeout=60, capture_output=True,
        )
        rx.proc.wait(15)
    return rx.warnings()


def _timestamp_warnings(lines: list[str]) -> list[str]:
    return [w for w in lines if any(k.lower() in w.lower() for k in TIMESTAMP_WARNINGS)]


@pytest.mark.e2e
def test_receiver_and_ffprobe_print_no_timestamp_warnings_on_a_recording(tmp_path, ffmpeg_available):
    """~20 s of the software path (PyAV libx264 -> RTSP/TCP -> ffmpeg listen -> Matroska), detection on.

    The receiver may print only what it prints for ffmpeg's own publisher (its first-access-unit
    warning, once); ffprobe on the recording must print nothing, and the PTS must strictly increase.
    """
    reference = _timestamp_warnings(_reference_publisher_warnings(tmp_path))
    assert all(FIRST_AU_WARNING in w for w in reference), reference
    port = free_port()
    out = tmp_path / "rec.mkv"
    with WarningReceiver(port, out) as rx:
        svc = ServiceProcess(_service_env(tmp_path, port, CAMERA_DETECTION_ENABLED="true"), tmp_path / "svc.log").start()
        try:
            status = _record(svc, rx, 20)
        finally:
            svc.stop()
    pts, probe_warnings = probe(out)
    ours = _timestamp_warnings(rx.warnings())
    bad = [w for w in ours if FIRST_AU_WARNING not in w]
    assert not bad, f"receiver warnings: {bad[:5]}"
    assert len(ours) <= len(reference), f"more first-packet warnings than ffmpeg's own publisher: {ours}"
    assert not probe_warnings, probe_warnings[:5]
    assert len(pts) >= 20 * 20, len(pts)
    # the first packet is the receiver's untimed first access unit (stamped like the second one)
    later = pts[1:]
    assert all(b > a for a, b in zip(later, later[1:])), "PTS must strictly increase"
    assert len(pts) >= status["frames_sent"], "every frame the service counted as sent reached the receiver"


#: CFS period of the test's cgroups, µs (override with PCS_TEST_CFS_PERIOD_US). 10 ms rather than the
#: kernel's 100 ms default: with 100 ms a 0.45-core group runs 45 ms and then halts for 55 ms, so any
#: background work that uses the group's spare time pushes the next frames ~90 ms late -- a property
#: of the quota, not of a slow CPU (see docs/performance.md for both periods)
CFS_PERIOD_US = int(os.environ.get("PCS_TEST_CFS_PERIOD_US", "10000"))


def _quota_run(tmp_path: Path, name: str, cores: float, detection: bool, seconds: float) -> dict:
    port = free_port()
    workdir = tmp_path / name
    workdir.mkdir()
    out = workdir / "rec.mkv"
    extra = {k: v for k, v in os.environ.items() if k.startswith("PCS_TEST_SERVICE_CAMERA_")}
    env = _service_env(workdir, port, CAMERA_DETECTION_ENABLED=str(detection).lower(), CAMERA_DETECTION_FPS="5",
                       **{k.removeprefix("PCS_TEST_SERVICE_"): v for k, v in extra.items()})
    with cgroups.Cgroup(cpu_cores=cores, prefix="pcs-test", period_us=CFS_PERIOD_US) as cg, WarningReceiver(port, out) as rx:
        svc = ServiceProcess(env, workdir / "svc.log")
        svc.start(wait=False)
        cg.add(svc.proc.pid)  # before the app is imported: every thread and the encoder worker follow
        try:
            wait_until(svc._healthy, 120, 0.2, f"service in the cgroup ({workdir / 'svc.log'})")
            status = _record(svc, rx, seconds)
            detection_stats = None
            if detection:
                with httpx.Client(base_url=svc.base, headers={"X-API-Key": API_KEY}, timeout=20) as c:
                    detection_stats = c.get("/v1/detection/status").json()
            throttled = cg.throttled()
        finally:
            svc.stop()
    pts, _ = probe(out)
    n_gaps, largest = gaps(pts)
    span = (max(pts) - min(pts)) if len(pts) > 1 else 0.0
    return {"frames": len(pts), "fps": len(pts) / span if span else 0.0, "gaps": n_gaps, "largest": largest,
            "status": status, "detection": detection_stats, "throttled": throttled}


@pytest.mark.e2e
@pytest.mark.alone  # the other test worker's load fell on the two runs unevenly (89-95 % of frames)
def test_stream_keeps_its_frames_with_detection_on_under_a_cpu_quota(tmp_path, ffmpeg_available):
    """The service in a cgroup with 0.45 of a core (cgroup v1 CFS quota) at 640x480@30.

    Detection off and detection on run in separate groups *at the same time*, so the machine's own
    load hits both alike. The received stream (ffprobe on the receiver's recording) with detection
    on must keep >= 90% of the frames the detection-off run keeps, and at most about twice its
    gaps over 100 ms (this shared machine's own load causes some in both); detection must still
    analyse frames (lowered, not starved). Before analysis moved to a SCHED_IDLE process, the
    detection-on stream kept 87% of the frames with 4x the gaps (30 against 7): the frame share
    is the criterion that tells the two apart under any load, the gap bound catches a regression
    beyond this machine's own noise.
    """
    why = cgroups.available()
    if why:
        pytest.skip(why)
    seconds = 30
    results: dict[str, dict] = {}

    def run(name: str, detection: bool) -> None:
        results[name] = _quota_run(tmp_path, name, 0.45, detection, seconds)

    threads = [threading.Thread(target=run, args=(n, d)) for n, d in (("off", False), ("on", True))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    off, on = results["off"], results["on"]
    summary = (f"load {os.getloadavg()}; off: {off['frames']} frames {off['fps']:.1f} fps {off['gaps']} gaps "
               f"max {off['largest'] * 1000:.0f} ms; on: {on['frames']} frames {on['fps']:.1f} fps {on['gaps']} gaps "
               f"max {on['largest'] * 1000:.0f} ms; detection {on['detection']}")
    print(summary)
    assert off["frames"] >= seconds * 15, "the detection-off baseline itself did not stream: " + summary
    # before: 87.5 % at load 10-26; now 91-99 % with the other test worker busy on this 2-core machine
    assert on["frames"] >= 0.90 * off["frames"], summary
    # gaps over 100 ms: before analysis moved to a SCHED_IDLE process, 30 against 7; now 7 against 1
    # at load 3.8 and 13 against 1 at load 6.1 (the other test worker and its services share the cores)
    assert on["gaps"] <= 2 * off["gaps"] + 15, summary
    assert on["detection"]["frames_analysed"] > 0 and on["detection"]["priority"] == "SCHED_IDLE", summary
    # the service's own health report sees the stutters the recording shows. The two measure
    # different clocks: the service times frames when they are muxed (wall clock), the receiver's
    # recording keeps their capture PTS. Under a 0.45-core quota a frame can be muxed late with a
    # correct PTS, or two late frames can be muxed together, so the counts differ both ways (17
    # against 7 at load 3.8, 18 against 22 at load 4.6); the bounds catch a counter gone wrong.
    reported = on["status"]["frame_gaps"]
    assert on["gaps"] // 2 - 3 <= reported <= 3 * on["gaps"] + 30, summary
