"""The one RTSP publisher (``pi_camera_service.streaming.publisher.Publisher``) and its fault path on both sources.

* the state machine with a scripted encoder: back-off schedule, reconnect counting, "not ready"
  without a failure, statistics that go on across sessions;
* the software source (PyAV libx264) against a real ``ffmpeg -rtsp_flags listen`` receiver that is
  killed and started again;
* the Raspberry Pi source through the same publisher class: on the fake picamera2's simulated RTSP
  server (VC4 and Pi 5), and on Pi 5's path (``LibavH264Encoder`` + ``PyavOutput`` on real PyAV,
  ``_sim.REAL_AV``) against a real ffmpeg receiver that is stopped and started again.
"""

from __future__ import annotations

import threading
import time

import pytest

from pi_camera_service.config import load_settings
from pi_camera_service.sources.base import StreamStats
from pi_camera_service.sources.software import SoftwareCamera, parse_av_source
from pi_camera_service.streaming import Publisher, SourceNotReady, steady_backoff
from tests.support.net import free_port, wait_until
from tests.support.paths import SAMPLE
from tests.support.rtsp import RtspReceiver


class ScriptedSource:
    """An encoder whose sessions follow a script: ``"fail"`` raises, ``"not_ready"`` raises
    :class:`SourceNotReady`, ``"ok"`` sends a frame every 10 ms until told to end (``end``)."""

    def __init__(self, script: list[str]) -> None:
        self.script = list(script)
        self.attempts: list[tuple[float, str]] = []
        self.end = threading.Event()

    def publish(self, publisher: Publisher) -> None:
        step = self.script.pop(0) if self.script else "ok"
        self.attempts.append((time.monotonic(), step))
        if step == "fail":
            raise ConnectionRefusedError(111, f"Connection refused: '{publisher.url}'")
        if step == "not_ready":
            raise SourceNotReady("camera re-opening")
        self.end.clear()
        while not publisher.stopping and not self.end.is_set():
            publisher.sent(1000)
            time.sleep(0.01)
        if not publisher.stopping:
            raise BrokenPipeError(32, "Broken pipe")


def test_steady_backoff_doubles_without_jitter_and_resets():
    backoff = steady_backoff(0.5, 2.0)
    assert [backoff.next_delay() for _ in range(4)] == [0.5, 1.0, 2.0, 2.0]
    backoff.reset()
    assert backoff.next_delay() == 0.5
    jittered = steady_backoff(1.0, 8.0, jitter=True)
    delays = [jittered.next_delay() for _ in range(3)]
    assert 0.5 <= delays[0] <= 1.0 and 1.0 <= delays[1] <= 2.0 and 2.0 <= delays[2] <= 4.0


def test_state_machine_backs_off_counts_reconnects_and_keeps_statistics():
    source = ScriptedSource(["fail", "fail", "ok", "fail", "not_ready", "ok"])
    stats = StreamStats()
    url = "rtsp://pub:s3cret@127.0.0.1:1/cam"
    pub = Publisher(url, source, stats, max_delay=1.0, initial_delay=0.1)
    pub.start()
    try:
        assert stats.state in ("connecting", "reconnecting")
        wait_until(lambda: stats.state == "streaming", 5, 0.01, "first session streaming")
        assert stats.reconnects == 0, "a first connection is not a re-connection"
        assert stats.last_error is None
        (t0, _), (t1, _), (t2, _) = source.attempts[:3]
        assert 0.1 <= t1 - t0 < 0.3 and 0.2 <= t2 - t1 < 0.4, "0.1 s then 0.2 s"
        wait_until(lambda: stats.frames_sent >= 10, 5, 0.01, "frames")
        sent_before = stats.frames_sent

        source.end.set()  # the server goes away mid-session
        wait_until(lambda: stats.state == "reconnecting", 5, 0.01, "reconnecting")
        assert stats.last_error.startswith("BrokenPipeError")
        assert "s3cret" not in pub.redact(ConnectionRefusedError(111, url))
        failed_at = time.monotonic()
        wait_until(lambda: len(source.attempts) >= 5, 5, 0.01, "retries after back-off")
        # the working session reset the back-off: the first retry waits 0.1 s again (not 0.4 s)
        assert 0.05 <= source.attempts[3][0] - failed_at < 0.3
        pub.wake()  # the "camera" is back: no back-off after SourceNotReady
        wait_until(lambda: stats.state == "streaming", 5, 0.01, "streaming again")
        assert stats.reconnects == 1
        assert [step for _, step in source.attempts] == ["fail", "fail", "ok", "fail", "not_ready", "ok"]
        wait_until(lambda: stats.frames_sent >= sent_before + 10, 5, 0.01, "statistics go on")
        assert pub.status().url == "rtsp://pub:***@127.0.0.1:1/cam"
    finally:
        pub.stop()
    assert stats.state == "stopped" and not pub.running


def _sample_camera(port: int) -> SoftwareCamera:
    settings = load_settings(
        _env_file=None, width=320, height=240, bitrate=400_000,
        rtsp_url=f"rtsp://127.0.0.1:{port}/cam", rtsp_reconnect_max_delay=1.0,
    )
    return SoftwareCamera(settings, parse_av_source(str(SAMPLE), 320, 240, 30))


def test_software_source_reconnects_to_a_restarted_ffmpeg_receiver(tmp_path, ffmpeg_available):
    port = free_port()
    cam = _sample_camera(port)
    cam.open()
    rx = RtspReceiver(port, tmp_path / "before.mkv").start()
    try:
        cam.start_streaming()
        publisher = cam._publisher
        assert isinstance(publisher, Publisher), "the software path runs the shared publisher"
        wait_until(lambda: cam.streaming_status().state == "streaming", 20, message="streaming")
        wait_until(lambda: cam.streaming_status().frames_sent >= 30, 20, message="frames before the kill")

        rx.kill()
        status = wait_until(lambda: (s := cam.streaming_status()).state == "reconnecting" and s, 15,
                            message="reconnecting after the receiver died")
        assert status.last_error and status.fps == 0.0
        wait_until(lambda: publisher.backoff.failures >= 2, 15, message="retries backing off while nobody listens")
        sent_while_down = cam.streaming_status().frames_sent

        rx = RtspReceiver(port, tmp_path / "after.mkv").start()
        status = wait_until(lambda: (s := cam.streaming_status()).state == "streaming" and s, 20,
                            message="streaming to the restarted receiver")
        assert status.reconnects >= 1 and status.last_error is None
        assert publisher.backoff.failures == 0, "a working connection resets the back-off"
        wait_until(lambda: cam.streaming_status().frames_sent >= sent_while_down + 45, 20, message="frames counted again")
    finally:
        cam.close()
        decoded = rx.stop()
    assert decoded.frames >= 30 and (decoded.width, decoded.height) == (320, 240), decoded


@pytest.mark.usefixtures("fake_never_leaks")
@pytest.mark.parametrize("fake", ["vc4", "pisp"], indirect=True)
def test_pi_source_runs_the_same_publisher_through_a_server_restart(fake):
    from pi_camera_service.sources.picamera2_backend import Picamera2Camera

    settings = load_settings(_env_file=None, width=640, height=480, detection_width=320,
                             rtsp_url="rtsp://127.0.0.1:8554/cam", rtsp_reconnect_max_delay=0.5)
    cam = Picamera2Camera(settings, 0)
    cam.open()
    try:
        cam.start_streaming()
        publisher = cam._publisher
        assert type(publisher) is Publisher, "the Pi path runs the shared publisher"
        wait_until(lambda: cam.streaming_status().frames_sent >= 10, 10, 0.02, "frames")

        fake.PyavOutput.server_up = False
        wait_until(lambda: cam.streaming_status().state == "reconnecting", 10, 0.02, "reconnecting")
        wait_until(lambda: publisher.backoff.failures >= 2, 10, 0.02, "retries backing off")
        sent_while_down = cam.streaming_status().frames_sent

        fake.PyavOutput.server_up = True
        status = wait_until(lambda: (s := cam.streaming_status()).state == "streaming" and s, 10, 0.02, "streaming")
        assert status.reconnects == 1 and publisher.backoff.failures == 0
        wait_until(lambda: cam.streaming_status().frames_sent >= sent_while_down + 10, 10, 0.02, "frames again")
        attempts = [o.created for o in fake.PyavOutput.instances]
        assert len(attempts) >= 3
        assert attempts[2] - attempts[1] >= 0.45, "retries are spaced by the back-off (0.5 s), not a busy loop"
    finally:
        cam.close()
    assert cam.streaming_status().state == "stopped"


@pytest.mark.usefixtures("fake_never_leaks")
@pytest.mark.parametrize("fake", ["pisp"], indirect=True)
def test_pi_source_reconnects_to_a_restarted_ffmpeg_receiver(fake, tmp_path, ffmpeg_available):
    """Pi 5 path (libx264 via picamera2's LibavH264Encoder + PyavOutput, both on real PyAV) to a real receiver."""
    import importlib

    from pi_camera_service.sources.picamera2_backend import Picamera2Camera

    importlib.import_module("picamera2._sim").REAL_AV = True
    port = free_port()
    settings = load_settings(_env_file=None, width=320, height=240, detection_width=160, framerate=15,
                             bitrate=300_000, rtsp_url=f"rtsp://127.0.0.1:{port}/cam", rtsp_reconnect_max_delay=1.0)
    cam = Picamera2Camera(settings, 0)
    cam.open()
    rx = RtspReceiver(port, tmp_path / "before.mkv").start()
    try:
        cam.start_streaming()
        publisher = cam._publisher
        wait_until(lambda: cam.streaming_status().state == "streaming", 20, message="streaming")
        wait_until(lambda: cam.streaming_status().frames_sent >= 45, 20, message="3 s of frames before the stop")
        before = rx.stop()
        assert before.frames >= 10 and (before.width, before.height) == (320, 240), before

        status = wait_until(lambda: (s := cam.streaming_status()).state == "reconnecting" and s, 15,
                            message="reconnecting after the receiver went away")
        assert status.last_error
        wait_until(lambda: publisher.backoff.failures >= 2, 15, message="retries backing off while nobody listens")
        sent_while_down = cam.streaming_status().frames_sent

        rx = RtspReceiver(port, tmp_path / "after.mkv").start()
        status = wait_until(lambda: (s := cam.streaming_status()).state == "streaming" and s, 20,
                            message="streaming to the restarted receiver")
        assert status.reconnects >= 1 and status.last_error is None and publisher.backoff.failures == 0
        wait_until(lambda: cam.streaming_status().frames_sent >= sent_while_down + 45, 20, message="frames counted again")
    finally:
        cam.close()
        after = rx.stop()
    assert after.frames >= 10 and (after.width, after.height) == (320, 240), after
