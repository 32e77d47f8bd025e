"""The app's lifespan: a start-up that fails half-way stops what had started; the typed state is app.state."""

from __future__ import annotations

import os
import threading

import pytest
from fastapi.testclient import TestClient

from pi_camera_service.api.app import create_app
from pi_camera_service.api.state import AppServices
from pi_camera_service.config import load_settings
from pi_camera_service.detection.detector import DetectionResult
from pi_camera_service.detection.service import DetectionService
from pi_camera_service.frames import AnalysisFrame
from pi_camera_service.onvif import OnvifDevice
from pi_camera_service.outbox import OutboxError
from pi_camera_service.sources import create_camera
from tests.support.net import free_port
from tests.support.paths import SAMPLE

KEY = "lifespan-test-key-0123456789abcdef"


class NoFaces:
    """A detector that finds nothing (the detection thread is what this test watches, not the analysis)."""

    def __init__(self) -> None:
        self.closed = threading.Event()

    def analyse(self, af: AnalysisFrame) -> DetectionResult:
        return DetectionResult(af.frame.index, af.frame.timestamp, af.frame.timestamp, 0.0, af.main_width,
                               af.main_height)

    def close(self) -> None:
        self.closed.set()


@pytest.fixture()
def settings(tmp_path, monkeypatch):
    for key in list(os.environ):
        if key.startswith("CAMERA_"):
            monkeypatch.delenv(key)
    return load_settings(
        source=str(SAMPLE), width=320, height=240, api_key=KEY, state_dir=tmp_path / "state",
        stills_dir=tmp_path / "stills", stream_on_start=False, detection_enabled=True, stills_enabled=True,
        outbox_enabled=True, central_url=f"http://127.0.0.1:{free_port()}", mdns_enabled=False,
        onvif_enabled=True, onvif_discovery_enabled=False,
    )


def test_a_failed_start_stops_every_component_started_before(settings, monkeypatch):
    camera = create_camera(settings)
    detector = NoFaces()
    made: list[DetectionService] = []

    def detection(cam, s):  # noqa: ANN001, ANN202
        made.append(DetectionService(cam, lambda: detector, 5.0))
        return made[-1]

    async def broken_start(self) -> None:  # noqa: ANN001 - ONVIF starts after camera, detection, stills, link, outbox
        raise OSError("ONVIF could not start")

    monkeypatch.setattr(OnvifDevice, "start", broken_start)
    app = create_app(settings, camera=camera, detection_factory=detection)
    services: AppServices = app.state.services
    with pytest.raises(OSError, match="ONVIF could not start"):
        with TestClient(app):
            pass
    # everything had started before ONVIF failed...
    assert services.camera is camera and services.stills is not None and services.outbox_sender is not None
    assert made and services.detection is made[0]
    # ...and has been stopped since
    assert not camera.is_open, "the camera's capture thread still runs after a failed start"
    assert not made[0].active and detector.closed.is_set(), "face detection still runs"
    assert not services.stills.running, "the stills scheduler still runs"
    assert services.central_link is not None and not services.central_link.running
    with pytest.raises(OutboxError, match="not open"):
        services.outbox.stats()  # the outbox database was closed


def test_app_state_and_services_are_one(settings):
    app = create_app(settings.model_copy(update={"detection_enabled": False, "onvif_enabled": False,
                                                 "outbox_enabled": False, "stills_enabled": False}))
    services: AppServices = app.state.services
    assert app.state.settings is services.settings and app.state.auth is services.auth
    with TestClient(app, headers={"X-API-Key": KEY}) as client:
        assert app.state.camera is services.camera and services.camera.is_open
        assert services.hardware_id and client.get("/health").json()["hardware_id"] == services.hardware_id
        replacement = object()
        app.state.controls, original = replacement, services.controls
        assert services.controls is replacement  # setting app.state.<field> sets the typed field
        app.state.controls = original
        app.state.something_else = 1  # other names stay plain state
        assert app.state.something_else == 1 and not hasattr(services, "something_else")
    assert not services.camera.is_open
