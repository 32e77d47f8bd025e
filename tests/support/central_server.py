"""The central app served by uvicorn in a thread on a real socket, and the API calls its tests share."""

from __future__ import annotations

import logging
import re

import httpx

from tests.support.net import free_port, wait_until


class LogCapture(logging.Handler):
    """Keeps the message of every record of INFO and above (the bootstrap password, for one)."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        """Keep the record's message."""
        self.lines.append(record.getMessage())


class CentralServer:
    """The central app served by uvicorn in a thread on a real socket (127.0.0.1, free port).

    Faster to start than :class:`CentralProcess` for API tests; ``restart()`` keeps the database.
    """

    def __init__(self, database_url: str, **overrides: object) -> None:
        self.database_url = database_url
        self.overrides = {"mdns_enabled": False, "host": "127.0.0.1", **overrides}
        self.capture = LogCapture()
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self._server = None
        self._thread = None

    def start(self) -> "CentralServer":
        """Create the app (``create_app`` of the settings), serve it in a daemon thread, wait until it listens."""
        import threading

        import uvicorn

        from central.app import create_app
        from central.config import load_settings

        settings = load_settings(database_url=self.database_url, port=self.port, **self.overrides)
        self.app = create_app(settings)
        logging.getLogger("central").addHandler(self.capture)
        logging.getLogger("central").setLevel(logging.INFO)
        self._server = uvicorn.Server(uvicorn.Config(self.app, host="127.0.0.1", port=self.port, log_level="warning",
                                                     **settings.uvicorn_proxy_options()))
        self._thread = threading.Thread(target=self._server.run, daemon=True)
        self._thread.start()
        wait_until(lambda: self._server.started, 30, 0.05, "central server started")
        self.client = httpx.Client(base_url=self.base, timeout=30)
        return self

    def stop(self) -> None:
        """Close the client, stop uvicorn (lifespan shutdown) and detach the log capture."""
        self.client.close()
        self._server.should_exit = True
        self._thread.join(15)
        logging.getLogger("central").removeHandler(self.capture)

    def restart(self) -> "CentralServer":
        """Stop and start again on the same port and database (what a service restart keeps)."""
        self.stop()
        return self.start()

    @property
    def state(self):  # noqa: ANN201 - central.app.CentralState
        """The app's ``CentralState`` (database sessions, face registry, MQTT publisher...)."""
        return self.app.state.central

    def bootstrap_password(self) -> str:
        """The newest one-time bootstrap password the server logged."""
        found = [re.search(r"bootstrap password: (\S+)", line) for line in self.capture.lines]
        found = [m.group(1) for m in found if m]
        assert found, f"no bootstrap password logged: {self.capture.lines}"
        return found[-1]

    def create_first_admin(self, username: str = "alice", password: str = "correct horse battery") -> str:
        """Bootstrap through the API; returns a 24 h access token of the new admin."""
        setup = self.client.post("/v1/setup", json={"password": self.bootstrap_password()})
        assert setup.status_code == 200, setup.text
        created = self.client.post("/v1/setup/admin", json={"username": username, "password": password},
                                   headers={"Authorization": f"Bearer {setup.json()['setup_token']}"})
        assert created.status_code == 201, created.text
        return self.login(username, password)

    def login(self, username: str, password: str) -> str:
        """OAuth2 password grant; asserts 200 and returns the access token."""
        r = self.client.post("/v1/auth/token", data={"username": username, "password": password})
        assert r.status_code == 200, r.text
        return r.json()["access_token"]


def bearer(token: str) -> dict[str, str]:
    """``Authorization: Bearer <token>`` header dict."""
    return {"Authorization": f"Bearer {token}"}

