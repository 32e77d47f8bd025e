"""A real mosquitto broker and a real paho subscriber for the MQTT tests (central sightings, the
camera's Home Assistant device)."""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
import time
from pathlib import Path

import paho.mqtt.client as paho

from tests.support.net import free_port, port_listening, wait_until

PREFIX = "test-home"
MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"


class Broker:
    """A real mosquitto listening on 127.0.0.1:``port`` (anonymous allowed), stoppable and restartable
    on the same port."""

    def __init__(self, workdir: Path, port: int | None = None) -> None:
        self.port = port or free_port()
        self.conf = workdir / "mosquitto.conf"
        self.conf.write_text(f"listener {self.port} 127.0.0.1\nallow_anonymous true\npersistence false\n")
        self.log = workdir / "mosquitto.log"
        self.proc: subprocess.Popen | None = None

    def start(self) -> Broker:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen([MOSQUITTO, "-c", str(self.conf)], stdout=out, stderr=subprocess.STDOUT)
        wait_until(lambda: port_listening(self.port) or self.proc.poll() is not None, 10, 0.05, "mosquitto listening")
        assert self.proc.poll() is None, self.log.read_text()
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
        self.proc = None


class Subscriber:
    """A real paho client subscribed to ``topics`` (default ``<PREFIX>/#``), collecting ``(topic, payload,
    retain)``."""

    def __init__(self, port: int, topics: tuple[str, ...] = (f"{PREFIX}/#",)) -> None:
        self.messages: list[tuple[str, bytes, bool]] = []
        self.lock = threading.Lock()
        self.subscribed = threading.Event()
        self.client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=f"test-sub-{port}-{time.monotonic_ns()}")
        self.client.on_connect = lambda c, *_: c.subscribe([(t, 1) for t in topics])
        self.client.on_subscribe = lambda *_: self.subscribed.set()
        self.client.on_message = self._message
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        assert self.subscribed.wait(10), "subscription not acknowledged"

    def _message(self, _client, _userdata, msg) -> None:
        with self.lock:
            self.messages.append((msg.topic, msg.payload, bool(msg.retain)))

    def raw(self, topic: str) -> list[bytes]:
        """Payloads received on ``topic`` as bytes, in arrival order."""
        with self.lock:
            return [payload for t, payload, _ in self.messages if t == topic]

    def on(self, topic: str) -> list[dict | str]:
        """Payloads received on ``topic`` (JSON decoded when possible), in arrival order."""
        with self.lock:
            found = [payload for t, payload, _ in self.messages if t == topic]
        out = []
        for payload in found:
            try:
                out.append(json.loads(payload))
            except ValueError:
                out.append(payload.decode(errors="replace"))
        return out

    def wait(self, topic: str, count: int = 1, timeout: float = 15) -> list[dict | str]:
        """The payloads on ``topic`` once at least ``count`` arrived (AssertionError after ``timeout`` s)."""
        return wait_until(lambda: len(self.on(topic)) >= count and self.on(topic), timeout, 0.05,
                          f"{count} message(s) on {topic} (got {self.topics()})")

    def topics(self) -> list[str]:
        with self.lock:
            return [t for t, _, _ in self.messages]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
