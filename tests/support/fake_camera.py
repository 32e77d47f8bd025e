"""Helpers around the fake ``picamera2`` package (``tests/fakes/picamera2``, the hardware boundary)."""

from __future__ import annotations

import sys

from pi_camera_service.config import Settings

def forget_picamera2() -> None:
    """Remove every ``picamera2`` module from ``sys.modules`` (the next import starts clean)."""
    for name in list(sys.modules):
        if name == "picamera2" or name.startswith("picamera2."):
            del sys.modules[name]


def pi_settings(tmp_path, **overrides) -> Settings:
    """Settings of a Picamera2Camera on the fake: 640x480 px at 30 fps, analysis 320 px wide, state in
    ``tmp_path``, no .env file read; ``overrides`` are Settings fields and win."""
    values = dict(width=640, height=480, framerate=30.0, detection_width=320, state_dir=tmp_path,
                  rtsp_url="rtsp://127.0.0.1:8554/cam")
    values.update(overrides)
    return Settings(_env_file=None, **values)


def sent_controls(fake) -> list[dict]:
    """Every dict given to ``set_controls`` on the newest fake Picamera2, in order."""
    return [args[0] for args, _ in fake.Picamera2.instances[-1].calls_named("set_controls")]
