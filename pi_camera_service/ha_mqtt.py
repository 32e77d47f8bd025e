"""The camera as a Home Assistant device over MQTT (device-based discovery), optional.

Enabled by ``CAMERA_MQTT_URL`` (``mqtt://[user:pass@]host[:port]`` or ``mqtts://`` for TLS, parsed
as the central server does, :func:`pcs_common.mqtt.parse_mqtt_url`). With ``<id>`` =
``pi_camera_<hardware id>`` and ``<base>`` = ``<CAMERA_MQTT_TOPIC_PREFIX>/<id>`` the camera publishes
(QoS 1):

* ``<discovery_prefix>/device/<id>/config`` (retained; ``CAMERA_MQTT_DISCOVERY_PREFIX``, default
  ``homeassistant``): one device with the components ``face`` (``binary_sensor``, occupancy),
  ``faces`` (faces in view), ``lux`` (illuminance, lx), ``sensor_temperature`` (°C), ``analysed_fps``,
  ``stream_state`` (enum: stopped / connecting / streaming / reconnecting), ``snapshot`` (``image``),
  ``streaming`` (``switch``) and ``still`` (``button``). Components the service cannot serve are left
  out (no detection: no face, faces, fps; no stills history: no button; ``CAMERA_MQTT_IMAGE_INTERVAL=0``:
  no image). Resent at each connect and whenever Home Assistant sends ``online`` on
  ``<discovery_prefix>/status``.
* ``<base>/availability``: ``online`` (retained, at each connect) / ``offline`` (retained, at a clean
  stop and, as the MQTT last will, by the broker when the camera vanishes).
* ``<base>/state`` (retained): JSON ``{face_detected: "ON"|"OFF", faces, lux, sensor_temperature,
  analysed_fps, stream_state, streaming: "ON"|"OFF"}``; every component reads it with a
  ``value_template`` (JSON ``null`` renders ``None``, which Home Assistant shows as unknown).
* ``<base>/snapshot`` (retained): the latest snapshot as raw JPEG bytes, ``CAMERA_MQTT_IMAGE_WIDTH`` px
  wide, at most every ``CAMERA_MQTT_IMAGE_INTERVAL`` s, and at once (at most every 5 s) when a face
  appears. ``image_topic`` rather than ``url_topic``: Home Assistant downloads a ``url_topic`` URL
  without credentials, and every snapshot route of the camera needs them.

Commands (subscribed, QoS 1): ``<base>/streaming/set`` takes exactly ``ON`` or ``OFF``
(start/stop publishing H.264); ``<base>/still/press`` takes exactly ``PRESS`` (store a still in the
history). Anything else, or anything over :data:`MAX_COMMAND_BYTES`, is logged and ignored. Commands
run on this module's worker thread, at most :data:`MAX_PENDING_COMMANDS` waiting (more are dropped)
and of the waiting streaming commands only the newest, so a flood on the broker costs bounded memory
and CPU and never reaches the camera's threads.

State goes out when it changes: ``face_detected``, ``faces``, ``stream_state`` and ``streaming``
changes at most every ``CAMERA_MQTT_STATE_INTERVAL`` s (coalesced: the newest state is sent when the
interval ends), the measurements (lux, temperature, fps) at most every
``CAMERA_MQTT_SENSOR_INTERVAL`` s. ``face_detected`` turns ``OFF`` :data:`FACE_OFF_DELAY_S` s after the
last analysed frame with a face, so one missed frame does not flap it.

Nothing here blocks the camera: detection listeners only store a number and set an event; a worker
thread reads the camera's status and hands messages to paho-mqtt, whose own thread does the network
I/O and reconnects (1 s to 30 s back-off). While disconnected paho keeps at most
:data:`pcs_common.mqtt.MAX_QUEUED_MESSAGES` messages.
"""

from __future__ import annotations

import json
import logging
import queue
import socket
import threading
import time
import uuid
from typing import Any

from pcs_common.ha_discovery import BIRTH_PAYLOAD, config_topic, device_payload, status_topic
from pcs_common.mqtt import QOS, MqttLink, MqttTarget, check_topic_prefix, parse_mqtt_url

log = logging.getLogger(__name__)

#: longest command payload accepted, bytes
MAX_COMMAND_BYTES = 16
#: commands waiting for the worker; more are dropped (and logged)
MAX_PENDING_COMMANDS = 8
#: ``face_detected`` stays ``ON`` this long after the last analysed frame with a face, s
FACE_OFF_DELAY_S = 3.0
#: a face appearing sends a snapshot at once unless one was sent less than this long ago, s
FACE_IMAGE_MIN_INTERVAL_S = 5.0
STREAM_STATES = ["stopped", "connecting", "streaming", "reconnecting"]
#: the state fields that go out at CAMERA_MQTT_STATE_INTERVAL; the others at CAMERA_MQTT_SENSOR_INTERVAL
EVENT_FIELDS = ("face_detected", "faces", "stream_state", "streaming")


class CameraMqtt(MqttLink):
    """Publishes the camera's Home Assistant device and state, and runs its commands.

    Args:
        target: the broker (:func:`pcs_common.mqtt.parse_mqtt_url`).
        camera: the :class:`~pi_camera_service.sources.base.Camera`.
        hardware_id: 32 hex characters (:func:`pi_camera_service.identity.hardware_id`); the device
            identifier and part of every topic.
        name: the device name shown in Home Assistant.
        detection: the :class:`~pi_camera_service.detection.service.DetectionService`, or None.
        stills: the :class:`~pi_camera_service.stills.StillsService`, or None (no still button).
        discovery_prefix, topic_prefix: see the module docstring.
        state_interval_s, sensor_interval_s, image_interval_s: least s between two state messages
            with an event change, with only measurement changes, and between two snapshots (0 = no
            image entity).
        image_width: snapshot width, px (never wider than the main stream).
        configuration_url: the camera's web page, shown on the device in Home Assistant.

    :meth:`start` and :meth:`stop` are called once each (the app's lifespan); :meth:`on_detection`
    from the detection thread.
    """

    def __init__(self, target: MqttTarget, camera: Any, hardware_id: str, name: str, *, detection: Any = None,
                 stills: Any = None, discovery_prefix: str = "homeassistant", topic_prefix: str = "pi-camera",
                 state_interval_s: float = 1.0, sensor_interval_s: float = 30.0, image_interval_s: float = 60.0,
                 image_width: int = 640, configuration_url: str | None = None, sw_version: str = "") -> None:
        self.object_id = f"pi_camera_{hardware_id}"
        self.discovery_prefix = check_topic_prefix(discovery_prefix)
        self.base = f"{check_topic_prefix(topic_prefix)}/{self.object_id}"
        super().__init__(target, f"pi-camera-{hardware_id[:12]}-{uuid.uuid4().hex[:6]}", f"{self.base}/availability")
        self.camera = camera
        self.detection = detection
        self.stills = stills
        self.name = name
        self.state_interval_s = state_interval_s
        self.sensor_interval_s = sensor_interval_s
        self.image_interval_s = image_interval_s
        self.image_width = image_width
        self.configuration_url = configuration_url
        self.sw_version = sw_version
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._commands: queue.Queue[str] = queue.Queue(MAX_PENDING_COMMANDS)
        self._worker: threading.Thread | None = None
        self._faces = 0
        self._face_seen_at = -1e18  # monotonic time of the last analysed frame with a face
        self._face_onset = False
        self._announce = False
        self._events_pending = False
        self._published_state: dict[str, Any] | None = None
        self._state_sent_at = -1e18
        self._sensors_sent_at = -1e18
        self._image_sent_at = -1e18
        self.commands_done = 0
        self.commands_rejected = 0

    # --- topics ---------------------------------------------------------------------------------

    @property
    def config_topic(self) -> str:
        """``<discovery_prefix>/device/<id>/config``."""
        return config_topic(self.discovery_prefix, self.object_id)

    @property
    def availability_topic(self) -> str:
        """``<base>/availability`` (``online`` / ``offline``, retained; the last will)."""
        return self.status_topic

    @property
    def state_topic(self) -> str:
        """``<base>/state``."""
        return f"{self.base}/state"

    @property
    def image_topic(self) -> str:
        """``<base>/snapshot`` (raw JPEG)."""
        return f"{self.base}/snapshot"

    @property
    def streaming_command_topic(self) -> str:
        """``<base>/streaming/set`` (``ON`` / ``OFF``)."""
        return f"{self.base}/streaming/set"

    @property
    def still_command_topic(self) -> str:
        """``<base>/still/press`` (``PRESS``)."""
        return f"{self.base}/still/press"

    # --- payloads -------------------------------------------------------------------------------

    def discovery_payload(self) -> dict[str, Any]:
        """The device discovery payload (module docstring), built from what this service can do."""
        uid = self.object_id
        caps = self.camera.capabilities()
        device: dict[str, Any] = {"identifiers": [uid], "name": self.name, "manufacturer": "Raspberry Pi",
                                  "model": caps.model or f"Pi Camera Service ({caps.backend} source)",
                                  "sw_version": self.sw_version}
        if self.configuration_url:
            device["configuration_url"] = self.configuration_url
        cmps: dict[str, dict[str, Any]] = {}
        if self.detection is not None:
            cmps["face"] = {"p": "binary_sensor", "name": "Face detected", "unique_id": f"{uid}_face",
                            "device_class": "occupancy", "value_template": "{{ value_json.face_detected }}",
                            "payload_on": "ON", "payload_off": "OFF"}
            cmps["faces"] = {"p": "sensor", "name": "Faces in view", "unique_id": f"{uid}_faces",
                             "state_class": "measurement", "icon": "mdi:face-recognition",
                             "value_template": "{{ value_json.faces }}"}
        cmps["lux"] = {"p": "sensor", "name": "Illuminance", "unique_id": f"{uid}_lux",
                       "device_class": "illuminance", "unit_of_measurement": "lx", "state_class": "measurement",
                       "value_template": "{{ value_json.lux }}"}
        cmps["sensor_temperature"] = {"p": "sensor", "name": "Sensor temperature",
                                      "unique_id": f"{uid}_sensor_temperature", "device_class": "temperature",
                                      "unit_of_measurement": "°C", "state_class": "measurement",
                                      "entity_category": "diagnostic",
                                      "value_template": "{{ value_json.sensor_temperature }}"}
        if self.detection is not None:
            cmps["analysed_fps"] = {"p": "sensor", "name": "Analysed frame rate", "unique_id": f"{uid}_analysed_fps",
                                    "unit_of_measurement": "fps", "state_class": "measurement",
                                    "entity_category": "diagnostic", "value_template": "{{ value_json.analysed_fps }}"}
        cmps["stream_state"] = {"p": "sensor", "name": "Stream state", "unique_id": f"{uid}_stream_state",
                                "device_class": "enum", "options": STREAM_STATES,
                                "value_template": "{{ value_json.stream_state }}"}
        if self.image_interval_s > 0:
            cmps["snapshot"] = {"p": "image", "name": "Snapshot", "unique_id": f"{uid}_snapshot",
                                "image_topic": self.image_topic, "content_type": "image/jpeg"}
        cmps["streaming"] = {"p": "switch", "name": "Streaming", "unique_id": f"{uid}_streaming",
                             "command_topic": self.streaming_command_topic, "payload_on": "ON", "payload_off": "OFF",
                             "state_on": "ON", "state_off": "OFF", "value_template": "{{ value_json.streaming }}",
                             "icon": "mdi:video"}
        if self.stills is not None:
            cmps["still"] = {"p": "button", "name": "Take still", "unique_id": f"{uid}_still",
                             "command_topic": self.still_command_topic, "payload_press": "PRESS",
                             "icon": "mdi:camera"}
        return device_payload(device, self.sw_version, self.availability_topic, cmps,
                              state_topic=self.state_topic, qos=QOS)

    def current_state(self, now: float | None = None) -> dict[str, Any]:
        """The ``<base>/state`` JSON now (module docstring); reads only cached values (never blocks)."""
        now = time.monotonic() if now is None else now
        meta = self.camera.metadata()
        stream_state = self.camera.streaming_status().state
        fps = self.detection.stats()["analysed_fps"] if self.detection is not None else None
        lux, temp = meta.get("lux"), meta.get("sensor_temperature")
        face = now - self._face_seen_at <= FACE_OFF_DELAY_S
        return {"face_detected": "ON" if face else "OFF", "faces": self._faces,
                "lux": None if lux is None else round(float(lux), 1),
                "sensor_temperature": None if temp is None else round(float(temp), 1),
                "analysed_fps": None if fps is None else round(float(fps), 2),
                "stream_state": stream_state, "streaming": "OFF" if stream_state == "stopped" else "ON"}

    # --- life cycle -----------------------------------------------------------------------------

    def start(self) -> None:
        """Start paho's network thread (connecting in the background; an unreachable broker is retried
        forever) and the worker thread. Returns at once.

        Raises:
            ssl.SSLError: ``mqtts://`` and the system CA store cannot be loaded.
        """
        self._start_client()
        self._worker = threading.Thread(target=self._run, name="mqtt-camera", daemon=True)
        self._worker.start()
        log.info("MQTT: Home Assistant device %s on %s (discovery under %s/)", self.object_id,
                 self.target.redacted(), self.discovery_prefix)

    def stop(self, timeout: float = 5.0) -> None:
        """Send ``offline`` (retained, when connected), disconnect and join the threads; waits at most
        about ``timeout`` s for the broker to acknowledge."""
        self._stop.set()
        self._wake.set()
        if self._worker is not None:
            self._worker.join(timeout)
        self._close(timeout)

    # --- called by the service ------------------------------------------------------------------

    def on_detection(self, result: Any) -> None:
        """Detection listener: note the number of faces (frontal + profile) of the newest analysis.
        Returns at once."""
        count = len(getattr(result, "faces", ())) + len(getattr(result, "profiles", ()))
        if count:
            if time.monotonic() - self._face_seen_at > FACE_OFF_DELAY_S:
                self._face_onset = True
            self._face_seen_at = time.monotonic()
        if count != self._faces or self._face_onset:
            self._faces = count
            self._wake.set()

    # --- paho callbacks (paho's network thread) -------------------------------------------------

    def _on_connected(self, client: Any) -> None:
        client.subscribe([(self.streaming_command_topic, QOS), (self.still_command_topic, QOS),
                          (status_topic(self.discovery_prefix), QOS)])
        self._announce = True
        self._wake.set()

    def _on_message(self, _client: Any, _userdata: Any, message: Any) -> None:
        topic, payload = message.topic, bytes(message.payload[:MAX_COMMAND_BYTES + 1])
        if topic == status_topic(self.discovery_prefix):
            if payload == BIRTH_PAYLOAD.encode():
                self._announce = True
                self._wake.set()
            return
        command = self._validate(topic, payload)
        if command is None:
            self.commands_rejected += 1
            return
        try:
            self._commands.put_nowait(command)
        except queue.Full:
            self.commands_rejected += 1
            log.warning("MQTT command %s dropped: %d commands already waiting", command, MAX_PENDING_COMMANDS)
            return
        self._wake.set()

    def _validate(self, topic: str, payload: bytes) -> str | None:
        """``stream_on`` / ``stream_off`` / ``still`` for a valid command, else None (logged)."""
        allowed = {self.streaming_command_topic: {b"ON": "stream_on", b"OFF": "stream_off"},
                   self.still_command_topic: {b"PRESS": "still"}}.get(topic)
        if allowed is None:
            return None
        command = allowed.get(payload) if len(payload) <= MAX_COMMAND_BYTES else None
        if command is None:
            log.warning("MQTT command on %s ignored: payload %r; allowed %s", topic, payload[:MAX_COMMAND_BYTES],
                        " or ".join(p.decode() for p in allowed))
        elif command == "still" and self.stills is None:
            log.warning("MQTT still command ignored: the stills history is off (CAMERA_STILLS_ENABLED=false)")
            return None
        return command

    # --- worker thread --------------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self._next_due_in())
            self._wake.clear()
            if self._stop.is_set():
                return
            try:
                self._run_commands()
                if self.connected:
                    self._publish_due()
            except Exception:
                log.exception("MQTT publishing failed; continuing")

    def _next_due_in(self) -> float:
        now = time.monotonic()
        waits = [self._sensors_sent_at + self.sensor_interval_s - now, 1.0]
        if self.image_interval_s > 0:
            waits.append(self._image_sent_at + self.image_interval_s - now)
        if self._events_pending:
            waits.append(self._state_sent_at + self.state_interval_s - now)
        if self._face_seen_at + FACE_OFF_DELAY_S > now:
            waits.append(self._face_seen_at + FACE_OFF_DELAY_S - now + 0.05)
        return max(0.05, min(waits))

    def _run_commands(self) -> None:
        """Run the waiting commands: every still, and of the streaming commands only the newest (so a
        flood of ON/OFF toggles the encoder at most once per wake-up)."""
        waiting: list[str] = []
        while True:
            try:
                waiting.append(self._commands.get_nowait())
            except queue.Empty:
                break
        streaming = [c for c in waiting if c.startswith("stream_")]
        run = [c for c in waiting if c == "still"] + streaming[-1:]
        self.commands_done += len(streaming) - len(streaming[-1:])  # superseded by the newest one
        for command in run:
            try:
                if command == "stream_on":
                    self.camera.start_streaming()
                elif command == "stream_off":
                    self.camera.stop_streaming()
                else:
                    record = self.stills.capture("manual")
                    log.info("MQTT: still %s taken", getattr(record, "id", record))
            except Exception as exc:  # noqa: BLE001 - a failed command must not stop publishing
                log.warning("MQTT command %s failed: %s", command, exc)
            self.commands_done += 1

    def _publish_due(self) -> None:
        now = time.monotonic()
        if self._announce:
            self._announce = False
            self._publish(self.config_topic, json.dumps(self.discovery_payload()), retain=True)
            self._published_state = None  # resend everything after a (re)connect
            self._image_sent_at = -1e18
        state = self.current_state(now)
        previous = self._published_state
        events_changed = previous is None or any(state[k] != previous[k] for k in EVENT_FIELDS)
        sensors_changed = previous is None or state != previous
        if (events_changed and now - self._state_sent_at >= self.state_interval_s) or (
                sensors_changed and now - self._sensors_sent_at >= self.sensor_interval_s):
            self._publish(self.state_topic, json.dumps(state), retain=True)
            self._published_state = state
            self._state_sent_at = self._sensors_sent_at = now
        self._events_pending = events_changed and self._published_state is not state  # coalesced: sent when due
        onset, self._face_onset = self._face_onset, False
        if self.image_interval_s > 0 and (now - self._image_sent_at >= self.image_interval_s or (
                onset and now - self._image_sent_at >= FACE_IMAGE_MIN_INTERVAL_S)):
            try:
                jpeg = self.camera.snapshot_jpeg(min(self.image_width, self.camera.width), 80)
            except Exception as exc:  # noqa: BLE001 - no frame yet: try again at the next interval
                log.debug("MQTT snapshot skipped: %s", exc)
                self._image_sent_at = now - self.image_interval_s + 1.0
                return
            self._publish(self.image_topic, jpeg, retain=True)
            self._image_sent_at = now


def from_settings(settings: Any, camera: Any, hardware_id: str, detection: Any = None,
                  stills: Any = None) -> CameraMqtt | None:
    """The publisher configured by ``settings`` (not started), or None when ``mqtt_url`` is unset."""
    if not settings.mqtt_url:
        return None
    from pi_camera_service import __version__

    name = settings.mdns_name or f"{socket.gethostname()} camera"
    url = settings.api_url or (f"http://{settings.advertised_host}:{settings.port}" if settings.advertised_host else None)
    return CameraMqtt(parse_mqtt_url(settings.mqtt_url), camera, hardware_id, name, detection=detection, stills=stills,
                      discovery_prefix=settings.mqtt_discovery_prefix, topic_prefix=settings.mqtt_topic_prefix,
                      state_interval_s=settings.mqtt_state_interval, sensor_interval_s=settings.mqtt_sensor_interval,
                      image_interval_s=settings.mqtt_image_interval, image_width=settings.mqtt_image_width,
                      configuration_url=url, sw_version=__version__)
