"""The camera service and the central server run as real processes on real sockets."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import httpx

from tests.support.net import free_port, stop_process, wait_until
from tests.support.paths import SAMPLE


class ServiceProcess:
    """The real service (``python -m pi_camera_service``) on a real socket, configured by CAMERA_* env."""

    module = "pi_camera_service"
    env_prefix = "CAMERA_"

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.env = env
        self.log_path = log_path
        self.port = int(env[self.env_prefix + "PORT"])
        self.base = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None

    def start(self, wait: bool = True) -> "ServiceProcess":
        """Start the process with this environment (the caller's own ``CAMERA_*``/``CENTRAL_*`` variables
        removed) and, with ``wait``, wait until ``/health`` answers 200 (60 s at most)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(self.env_prefix) and k != "DATABASE_URL"}
        env.update(self.env)
        if self.env_prefix == "CAMERA_":  # no WS-Discovery multicast on the machine's interfaces unless asked
            env.setdefault("CAMERA_ONVIF_DISCOVERY_ENABLED", "false")
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", self.module], env=env, cwd=str(self.log_path.parent),
            stdout=self._log, stderr=subprocess.STDOUT,
        )
        if wait:
            wait_until(self._healthy, 60, 0.2, f"service on {self.base} (log: {self.log_path})")
        return self

    def _healthy(self) -> bool:
        if self.proc and self.proc.poll() is not None:
            raise AssertionError(f"service exited with {self.proc.returncode}:\n{self.log()}")
        try:
            return httpx.get(self.base + "/health", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def log(self) -> str:
        """Everything the process wrote to stdout and stderr so far."""
        return self.log_path.read_text(errors="replace")

    def stop(self) -> int:
        """SIGTERM, SIGKILL after 15 s; returns the exit code."""
        stop_process(self.proc, signal.SIGTERM, 15)
        self._log.close()
        return self.proc.returncode if self.proc else 0


def sample_camera_env(workdir: Path, api_key: str, **overrides: str) -> dict[str, str]:
    """CAMERA_* env of a small camera process on the sample video: 320x240, not publishing at start,
    its own free API port and state directory under ``workdir``; ``overrides`` win."""
    return {
        "CAMERA_SOURCE": str(SAMPLE),
        "CAMERA_WIDTH": "320",
        "CAMERA_HEIGHT": "240",
        "CAMERA_RTSP_URL": f"rtsp://127.0.0.1:{free_port()}/cam",
        "CAMERA_STREAM_ON_START": "false",
        "CAMERA_HOST": "127.0.0.1",
        "CAMERA_PORT": str(free_port()),
        "CAMERA_API_KEY": api_key,
        "CAMERA_STATE_DIR": str(workdir / "state"),
        "CAMERA_STILLS_DIR": str(workdir / "stills"),
        **overrides,
    }


class CentralProcess(ServiceProcess):
    """The real central server (``python -m central``), configured by CENTRAL_* env and DATABASE_URL."""

    module = "central"
    env_prefix = "CENTRAL_"

    def bootstrap_password(self) -> str:
        """The one-time bootstrap password the server printed in its log (the newest one)."""
        found = re.findall(r"bootstrap password: (\S+)", self.log())
        assert found, f"no bootstrap password in the log:\n{self.log()}"
        return found[-1]

