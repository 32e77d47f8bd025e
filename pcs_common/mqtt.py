"""The MQTT side shared by the camera and the central server: broker URLs, topic prefixes and
:class:`MqttLink`, a paho-mqtt 2 client with a retained status topic and last will.

Both services speak MQTT 3.1.1 at QoS 1 (:data:`QOS`) to one broker given as
``mqtt://[user:pass@]host[:port]`` (default port 1883) or ``mqtts://`` (TLS checked against the system
CA store, default port 8883), see :func:`parse_mqtt_url`. Each publisher has a retained status topic
carrying :data:`STATUS_ONLINE` at each connect and :data:`STATUS_OFFLINE` at a clean stop or, as the
MQTT last will, when the broker loses the connection (after 1.5 × :data:`KEEPALIVE_S`). paho-mqtt's own
thread does the network I/O and reconnects (1 s back-off doubling up to 30 s) for as long as the
service runs; while disconnected it keeps at most :data:`MAX_QUEUED_MESSAGES` messages.

paho-mqtt is imported only when a client is made, so importing this module costs nothing when MQTT is
off. Part of :mod:`pcs_common`: imports neither service.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

from pcs_common.urls import redact_url  # noqa: F401 - the old place, still imported from here

log = logging.getLogger(__name__)

#: most messages paho keeps while the broker is unreachable (older ones are kept, newer ones dropped)
MAX_QUEUED_MESSAGES = 1000
#: MQTT keep-alive, s: the broker sends the last will this long (× 1.5) after the client vanishes
KEEPALIVE_S = 30
QOS = 1
STATUS_ONLINE = "online"
STATUS_OFFLINE = "offline"
DEFAULT_PORTS = {"mqtt": 1883, "mqtts": 8883}


@dataclass(frozen=True)
class MqttTarget:
    """A parsed broker URL (``CENTRAL_MQTT_URL``, ``CAMERA_MQTT_URL``): broker ``host``/``port``, ``tls`` for ``mqtts://``, optional login."""

    host: str
    port: int
    tls: bool
    username: str | None = None
    password: str | None = None

    def redacted(self) -> str:
        """The URL without the password (for logs): ``mqtts://user:***@host:port``."""
        login = f"{self.username}:***@" if self.username and self.password else (
            f"{self.username}@" if self.username else "")
        return f"{'mqtts' if self.tls else 'mqtt'}://{login}{self.host}:{self.port}"


def parse_mqtt_url(url: str) -> MqttTarget:
    """Parse ``mqtt://[user[:pass]@]host[:port]`` (default port 1883) or ``mqtts://…`` (TLS, 8883).
    User and password may be percent-encoded (``%40`` for ``@``).

    Raises:
        ValueError: another scheme, no host, a port outside 1–65535, or a path, query or fragment;
            the message says what is allowed (and never contains the password).
    """
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"is not a valid URL ({exc}); use mqtt://[user:pass@]host[:port] or mqtts://…") from None
    if parts.scheme not in DEFAULT_PORTS:
        raise ValueError("must start with mqtt:// or mqtts:// (TLS), e.g. mqtt://user:pass@broker.lan:1883")
    if not parts.hostname:
        raise ValueError("has no host; use mqtt://[user:pass@]host[:port]")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError("must not have a path, query or fragment; the topic prefix is set by "
                         "CAMERA_MQTT_TOPIC_PREFIX / CENTRAL_MQTT_TOPIC_PREFIX")
    if port is not None and not 1 <= port <= 65535:
        raise ValueError("port must be 1-65535")
    return MqttTarget(host=parts.hostname, port=port or DEFAULT_PORTS[parts.scheme], tls=parts.scheme == "mqtts",
                      username=unquote(parts.username) if parts.username else None,
                      password=unquote(parts.password) if parts.password is not None else None)


def check_topic_prefix(prefix: str) -> str:
    """The prefix without leading/trailing ``/``.

    Raises:
        ValueError: empty, or contains the wildcards ``+`` / ``#`` or a NUL character.
    """
    cleaned = prefix.strip().strip("/")
    if not cleaned:
        raise ValueError("must not be empty, e.g. pi-camera or home/cameras")
    if any(c in cleaned for c in "+#\0"):
        raise ValueError("must not contain the MQTT wildcards + or # (or NUL)")
    return cleaned


def new_client(target: MqttTarget, client_id: str, will_topic: str, will_payload: str,
               reconnect_max_delay_s: int = 30) -> Any:
    """A paho-mqtt 2 client for ``target`` (MQTT 3.1.1, clean session) with a retained QoS 1 last will,
    login and TLS (system CA store, host name checked) as the target says, at most
    :data:`MAX_QUEUED_MESSAGES` kept while disconnected, and reconnection backing off from 1 s to
    ``reconnect_max_delay_s``. Not connected yet: call ``connect_async`` and ``loop_start``.

    Raises:
        ssl.SSLError: ``mqtts://`` and the system CA store cannot be loaded.
    """
    import paho.mqtt.client as paho

    client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=True)
    if target.username:
        client.username_pw_set(target.username, target.password)
    if target.tls:
        client.tls_set()  # the system CA store, hostname checked
    client.will_set(will_topic, will_payload, qos=QOS, retain=True)
    client.max_queued_messages_set(MAX_QUEUED_MESSAGES)
    client.reconnect_delay_set(1, reconnect_max_delay_s)
    return client


class MqttLink:
    """The paho-mqtt side shared by the central server's sighting publisher
    (``central.mqtt.SightingPublisher``) and the camera's Home Assistant device
    (``pi_camera_service.ha_mqtt.CameraMqtt``): one client (:func:`new_client`) whose retained
    status topic says ``online`` at each connect and ``offline`` at a clean stop or, as the last will,
    when the connection is lost; non-blocking publishing; logging that never shows the password.

    Subclasses override :meth:`_on_connected` (paho's thread, after each successful connect) and
    :meth:`_on_message`.
    """

    def __init__(self, target: MqttTarget, client_id: str, status_topic: str, reconnect_max_delay_s: int = 30) -> None:
        self.target = target
        self.client_id = client_id
        self.status_topic = status_topic
        self.reconnect_max_delay_s = reconnect_max_delay_s
        self._client: Any = None
        self._connected = threading.Event()
        self._stopping = False
        self.published = 0  # messages handed to paho, for monitoring and tests

    @property
    def connected(self) -> bool:
        """True while the MQTT connection to the broker is up."""
        return self._connected.is_set()

    def _start_client(self) -> None:
        """Create the client and start paho's network thread (connecting in the background; an
        unreachable broker is retried forever). Returns at once.

        Raises:
            ssl.SSLError: ``mqtts://`` and the system CA store cannot be loaded.
        """
        client = new_client(self.target, self.client_id, self.status_topic, STATUS_OFFLINE, self.reconnect_max_delay_s)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_connect_fail = self._on_connect_fail
        client.on_message = self._on_message
        self._client = client
        client.connect_async(self.target.host, self.target.port, keepalive=KEEPALIVE_S)
        client.loop_start()

    def _close(self, timeout: float) -> None:
        """Publish a retained ``offline`` (when connected; waits at most ``timeout`` s for the broker's
        acknowledgement), disconnect and stop paho's thread."""
        client = self._client
        if client is None:
            return
        self._stopping = True
        if self.connected:
            info = client.publish(self.status_topic, STATUS_OFFLINE, qos=QOS, retain=True)
            try:
                info.wait_for_publish(timeout)
            except (RuntimeError, ValueError):
                pass
        client.disconnect()
        client.loop_stop()
        self._client = None

    def _on_connect(self, client: Any, _userdata: Any, _flags: Any, reason_code: Any, _properties: Any) -> None:
        if reason_code.is_failure:
            log.warning("MQTT broker %s refused the connection: %s", self.target.redacted(), reason_code)
            return
        self._connected.set()
        log.info("MQTT connected to %s", self.target.redacted())
        client.publish(self.status_topic, STATUS_ONLINE, qos=QOS, retain=True)
        self._on_connected(client)

    def _on_connected(self, client: Any) -> None:
        """Called on paho's thread after each successful connect (subscribe here)."""

    def _on_message(self, _client: Any, _userdata: Any, message: Any) -> None:
        """A message on a subscribed topic (paho's thread; keep it quick)."""

    def _on_disconnect(self, _client: Any, _userdata: Any, _flags: Any, reason_code: Any, _properties: Any) -> None:
        if self._connected.is_set() and not self._stopping:
            log.warning("MQTT connection to %s lost (%s); reconnecting in the background",
                        self.target.redacted(), reason_code)
        self._connected.clear()

    def _on_connect_fail(self, _client: Any, _userdata: Any) -> None:
        log.debug("MQTT broker %s unreachable; retrying", self.target.redacted())

    def _publish(self, topic: str, payload: str | bytes, retain: bool = False) -> None:
        """Hand one QoS 1 message to paho (never blocks; kept by paho while disconnected)."""
        client = self._client
        if client is None:
            return
        info = client.publish(topic, payload, qos=QOS, retain=retain)
        if info.rc not in (0, 4):  # 0 sent, 4 (MQTT_ERR_NO_CONN) kept by paho until reconnection
            log.warning("MQTT message to %s dropped (paho rc %s)", topic, info.rc)
        else:
            self.published += 1
