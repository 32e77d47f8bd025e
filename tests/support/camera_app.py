"""The one factory for in-process camera apps (FastAPI TestClient or uvicorn in a thread).

Every in-process camera of the suite starts from the same small configuration: the sample video at
320x240, not publishing, detection off, state under the test's directory. A test module states only
what it changes (its API key, a password hash, stills, a camera backend).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from fastapi import FastAPI
from fastapi.testclient import TestClient

from pi_camera_service.config import Settings, load_settings
from tests.support.net import wait_until
from tests.support.paths import SAMPLE

#: the API key of :func:`camera_app` (40 characters: long enough for every key rule)
API_KEY = "k" * 40


def camera_settings(state_dir: Path | str, *, api_key: str, source: Path | str | None = SAMPLE,
                    **overrides: object) -> Settings:
    """Settings of a small in-process camera: ``source`` (default the sample video; ``None`` leaves the
    setting's default, the Pi camera) at 320x240 px, not publishing at start, detection off, state in
    ``state_dir``; ``overrides`` are Settings fields and win."""
    values: dict[str, object] = dict(width=320, height=240, api_key=api_key, state_dir=state_dir,
                                     stream_on_start=False, detection_enabled=False)
    if source is not None:
        values["source"] = str(source)
    values.update(overrides)
    return load_settings(**values)


def make_camera_app(state_dir: Path | str, *, api_key: str, source: Path | str | None = SAMPLE,
                    camera: object | None = None, **overrides: object) -> FastAPI:
    """The camera app of :func:`camera_settings` (``camera``: a ready Camera backend, e.g. a Picamera2Camera
    on the fake picamera2, instead of the one the settings choose)."""
    from pi_camera_service.api.app import create_app

    settings = camera_settings(state_dir, api_key=api_key, source=source, **overrides)
    return create_app(settings) if camera is None else create_app(settings, camera=camera)


def camera_app(tmp_path: Path, **overrides: object) -> FastAPI:
    """A camera app with :data:`API_KEY`, state and stills under ``tmp_path``, stills and outbox off."""
    return make_camera_app(tmp_path / "state", api_key=API_KEY, stills_dir=str(tmp_path / "stills"),
                           stills_enabled=False, outbox_enabled=False, **overrides)


def first_frame(client: TestClient, timeout: float = 10) -> None:
    """Wait until the app's camera has delivered its first frame (``/health`` camera_configured)."""
    wait_until(lambda: client.get("/health").json()["camera_configured"], timeout, message="first frame")


@contextlib.contextmanager
def connected(app: FastAPI, api_key: str | None = None, **client_kwargs: object) -> Iterator[TestClient]:
    """A started TestClient of ``app`` (lifespan run) sending ``X-API-Key: api_key``, once the first frame
    arrived; the app is shut down when the block ends."""
    headers = {"X-API-Key": api_key} if api_key else {}
    with TestClient(app, headers=headers, **client_kwargs) as client:
        first_frame(client)
        yield client
