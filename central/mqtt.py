"""Optional MQTT publishing of sightings for home automation ("person X was seen on camera Y").

Enabled by ``CENTRAL_MQTT_URL`` (``mqtt://[user:pass@]host[:port]``, or ``mqtts://`` for TLS checked
against the system CA store). With ``<prefix>`` = ``CENTRAL_MQTT_TOPIC_PREFIX`` (default ``pi-camera``)
the server publishes, all at QoS 1:

* ``<prefix>/cameras/<camera_id>/sightings`` and ``<prefix>/people/<person_id>/sightings``: one
  message per sighting start or update, JSON ``{"event": "started" | "updated", "sighting_id",
  "person_id", "person_name", "camera_id", "camera_name", "started_at", "ended_at", "detections"}``
  (times ISO-8601 UTC, ``…Z``). Not retained.
* ``<prefix>/people/<person_id>/last_seen``: JSON ``{"person_id", "person_name", "camera_id",
  "camera_name", "at"}`` (``at``: the end of the person's newest sighting), retained when ``CENTRAL_MQTT_RETAIN_LAST_SEEN`` (default), so
  a client that subscribes later gets each person's state at once. Only moves forward in time (a late
  upload of an older event does not overwrite it); republished for everyone seen at each (re)connect.
* ``<prefix>/central/status``: ``online`` (retained, at each connect) / ``offline`` (retained; sent at
  a clean shutdown and, as the MQTT last will, by the broker when the connection is lost).
* Home Assistant presence, unless ``CENTRAL_MQTT_DISCOVERY=false``: one device per person on
  ``<discovery_prefix>/device/pi_camera_person_<person_id>/config`` (retained; device-based discovery,
  :mod:`pcs_common.ha_discovery`) with two sensors read from the retained ``last_seen`` above: "Last seen
  camera" (the camera's name; the whole ``last_seen`` JSON as attributes) and "Last seen" (a
  ``timestamp``). Available while ``<prefix>/central/status`` is ``online``. Published when a person is
  created or renamed, for everyone at each (re)connect and when Home Assistant sends ``online`` on
  ``<discovery_prefix>/status``; an empty retained config removes the device when the person is erased
  or merged into another.

At most one ``updated`` per sighting per ``CENTRAL_MQTT_UPDATE_INTERVAL_S`` (default 10 s) is sent;
updates in between are coalesced and the newest state goes out when the interval ends, so a camera
sending 5 events/s yields one message per 10 s per sighting, and the last state is never lost.

Ingest never waits for MQTT: the request only puts the ids of the faces it stored on a bounded
in-memory queue (:meth:`SightingPublisher.notify`); a worker thread reads the sightings from the
database after the commit and hands the messages to paho-mqtt, whose own thread does the network
I/O and reconnects (1 s to 30 s back-off) for as long as the server runs.

What is guaranteed: while connected, each message reaches the broker at least once (QoS 1). While
disconnected, paho keeps up to :data:`pcs_common.mqtt.MAX_QUEUED_MESSAGES` messages and sends them after reconnecting;
beyond that, and everything queued when the server process stops, is dropped (the database keeps the
sightings; the retained ``last_seen`` is republished from it at every connect). Not guaranteed:
delivery of every ``updated`` (they are coalesced), ordering between the camera and person topics,
and anything the broker does not persist across its own restarts.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import queue
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from pcs_common.mqtt import QOS, MqttLink, MqttTarget, check_topic_prefix, parse_mqtt_url
from pcs_common.timefmt import utc_iso

log = logging.getLogger(__name__)

#: most ingest notifications waiting for the worker; beyond, notifications are dropped (and logged)
MAX_PENDING_NOTIFICATIONS = 10_000


def person_object_id(person_id: str) -> str:
    """The discovery object id (and device identifier) of a person: ``pi_camera_person_<person_id>``."""
    return f"pi_camera_person_{person_id}"


def presence_config(topics: "Topics", person_id: str, person_name: str, sw_version: str) -> dict[str, Any]:
    """The Home Assistant device discovery payload of one person's presence (module docstring)."""
    from pcs_common.ha_discovery import device_payload

    oid = person_object_id(person_id)
    state = topics.last_seen(person_id)
    return device_payload(
        {"identifiers": [oid], "name": person_name, "manufacturer": "Pi Camera Service",
         "model": "Person (central face matching)"},
        sw_version, topics.status,
        {"camera": {"p": "sensor", "name": "Last seen camera", "unique_id": f"{oid}_camera", "icon": "mdi:cctv",
                    "value_template": "{{ value_json.camera_name }}", "json_attributes_topic": state},
         "last_seen": {"p": "sensor", "name": "Last seen", "unique_id": f"{oid}_last_seen",
                       "device_class": "timestamp", "value_template": "{{ value_json.at }}"}},
        state_topic=state, qos=QOS)


class Topics:
    """The topic names under one prefix (see the module docstring)."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    def camera_sightings(self, camera_id: str) -> str:
        """``<prefix>/cameras/<camera_id>/sightings``."""
        return f"{self.prefix}/cameras/{camera_id}/sightings"

    def person_sightings(self, person_id: str) -> str:
        """``<prefix>/people/<person_id>/sightings``."""
        return f"{self.prefix}/people/{person_id}/sightings"

    def last_seen(self, person_id: str) -> str:
        """``<prefix>/people/<person_id>/last_seen`` (retained)."""
        return f"{self.prefix}/people/{person_id}/last_seen"

    @property
    def status(self) -> str:
        """``<prefix>/central/status`` (retained ``online`` / ``offline``)."""
        return f"{self.prefix}/central/status"


def sighting_payload(event: str, row: Any, camera_name: str | None, person_name: str | None) -> dict[str, Any]:
    """The JSON of a ``…/sightings`` message for a :class:`central.models.Sighting` row."""
    return {"event": event, "sighting_id": row.id, "person_id": row.person_id, "person_name": person_name,
            "camera_id": row.camera_id, "camera_name": camera_name, "started_at": utc_iso(row.started_at, "auto"),
            "ended_at": utc_iso(row.ended_at, "auto"), "detections": row.detections}


def changed_sightings(db: Any, camera_id: str, observation_ids: list[str], high_water: int) -> list[dict[str, Any]]:
    """The sightings that the given (committed) face observations of ``camera_id`` started or extended,
    as :func:`sighting_payload` dicts, oldest first.

    ``event`` is ``started`` when the sighting's id is above ``high_water`` (the largest id announced
    before) or when all its detections are among these observations; else ``updated``.
    """
    from sqlalchemy import select

    from central.models import Camera, FaceObservation, Person, Sighting

    if not observation_ids:
        return []
    matched = db.execute(select(FaceObservation.person_id, FaceObservation.captured_at).where(
        FaceObservation.id.in_(observation_ids), FaceObservation.camera_id == camera_id,
        FaceObservation.person_id.is_not(None))).all()
    times: dict[str, list[dt.datetime]] = defaultdict(list)
    for person_id, at in matched:
        times[person_id].append(at)
    out = []
    for person_id, ats in times.items():
        rows = db.execute(
            select(Sighting, Camera.name, Person.name)
            .join(Camera, Camera.id == Sighting.camera_id).join(Person, Person.id == Sighting.person_id)
            .where(Sighting.person_id == person_id, Sighting.camera_id == camera_id,
                   Sighting.started_at <= max(ats), Sighting.ended_at >= min(ats))
        ).all()
        for row, camera_name, person_name in rows:
            count = sum(row.started_at <= at <= row.ended_at for at in ats)
            if count:
                new = row.id > high_water or row.detections <= count
                out.append(sighting_payload("started" if new else "updated", row, camera_name, person_name))
    return sorted(out, key=lambda p: (dt.datetime.fromisoformat(p["ended_at"]), p["sighting_id"]))


class SightingPublisher(MqttLink):
    """Publishes sightings to an MQTT broker without ever blocking or failing ingest.

    Args:
        target: the broker (:func:`parse_mqtt_url`).
        sessions: a SQLAlchemy session factory (the worker reads sightings and people with it).
        prefix: topic prefix (:func:`check_topic_prefix`).
        retain_last_seen: publish ``…/last_seen`` retained (and republish them at each connect).
        update_interval_s: least time between two ``updated`` messages of one sighting, s (0 = no limit).
        reconnect_max_delay_s: longest wait between reconnection attempts, s (paho doubles from 1 s).
        discovery_prefix: Home Assistant discovery prefix of the presence devices; None = none published.

    :meth:`start` and :meth:`stop` are called once each (the app's lifespan); :meth:`notify`,
    :meth:`announce_person` and :meth:`forget_person` from any thread.
    """

    def __init__(self, target: MqttTarget, sessions: Callable[[], Any], prefix: str = "pi-camera",
                 retain_last_seen: bool = True, update_interval_s: float = 10.0,
                 reconnect_max_delay_s: int = 30, discovery_prefix: str | None = "homeassistant") -> None:
        self.topics = Topics(check_topic_prefix(prefix))
        super().__init__(target, f"pi-camera-central-{uuid.uuid4().hex[:10]}", self.topics.status,
                         reconnect_max_delay_s)
        self.discovery_prefix = check_topic_prefix(discovery_prefix) if discovery_prefix else None
        self.sessions = sessions
        self.retain_last_seen = retain_last_seen
        self.update_interval_s = update_interval_s
        self._queue: queue.Queue[tuple[Any, ...]] = queue.Queue(MAX_PENDING_NOTIFICATIONS)
        self._worker: threading.Thread | None = None
        self._high_water = 0
        self._last_sent: dict[int, float] = {}  # sighting id -> monotonic time of its last message
        self._deferred: dict[int, dict[str, Any]] = {}  # sighting id -> newest coalesced "updated" payload
        self._last_seen_at: dict[str, dt.datetime] = {}  # person id -> "at" of the last_seen published
        self._dropped = 0

    # --- life cycle ---------------------------------------------------------------------------------

    def start(self) -> None:
        """Start paho's network thread (connecting in the background; an unreachable broker is retried
        forever) and the worker thread. Returns at once.

        Raises:
            ssl.SSLError: ``mqtts://`` and the system CA store cannot be loaded.
        """
        with self.sessions() as db:
            self._high_water = self._max_sighting_id(db)
        self._start_client()
        self._worker = threading.Thread(target=self._run, name="mqtt-sightings", daemon=True)
        self._worker.start()
        log.info("MQTT publishing to %s under %s/", self.target.redacted(), self.topics.prefix)

    def stop(self, timeout: float = 5.0) -> None:
        """Send the coalesced updates and a retained ``offline`` (when connected), disconnect and join
        the threads; waits at most about ``timeout`` s for the broker to acknowledge."""
        if self._worker is not None:
            self._queue_put(("stop",), block=True)
            self._worker.join(timeout)
        self._close(timeout)

    # --- called by the server -----------------------------------------------------------------------

    def notify(self, camera_id: str, observation_ids: list[str]) -> None:
        """Tell the publisher that these face observations of ``camera_id`` were committed; returns at
        once (the worker publishes the sightings they started or extended). Never raises: when the
        queue is full the notification is dropped and counted in the log."""
        if observation_ids:
            self._queue_put(("observations", camera_id, list(observation_ids)))

    def forget_person(self, person_id: str) -> None:
        """Clear the person's retained ``last_seen`` and remove their Home Assistant presence device
        (empty retained messages), e.g. after erasing the person or merging them into another.
        Returns at once; never raises."""
        self._queue_put(("forget", person_id))

    def announce_person(self, person_id: str) -> None:
        """(Re)publish the person's Home Assistant presence device and ``last_seen`` (after creating,
        renaming or merging another person into them). Returns at once; never raises."""
        if self.discovery_prefix:
            self._queue_put(("announce", person_id))

    def _queue_put(self, item: tuple[Any, ...], block: bool = False) -> None:
        try:
            self._queue.put(item, block=block, timeout=5 if block else None)
        except queue.Full:
            self._dropped += 1
            if self._dropped in (1, 10, 100) or self._dropped % 1000 == 0:
                log.warning("MQTT publisher is behind: %d notification(s) dropped so far", self._dropped)

    # --- paho callbacks (paho's network thread) -----------------------------------------------------

    def _on_connected(self, client: Any) -> None:
        if self.discovery_prefix:
            from pcs_common.ha_discovery import status_topic

            client.subscribe(status_topic(self.discovery_prefix), qos=QOS)
        self._queue_put(("connected",))

    def _on_message(self, _client: Any, _userdata: Any, message: Any) -> None:
        """Home Assistant's birth message: republish every presence device (it may have lost them)."""
        from pcs_common.ha_discovery import BIRTH_PAYLOAD

        if message.payload == BIRTH_PAYLOAD.encode():
            self._queue_put(("announce_all",))

    # --- worker thread ------------------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            wait = self._next_deferred_in()
            try:
                item = self._queue.get(timeout=wait)
            except queue.Empty:
                item = None
            try:
                if item is None:
                    pass
                elif item[0] == "stop":
                    self._flush_deferred(force=True)
                    return
                elif item[0] == "observations":
                    self._on_observations(item[1], item[2])
                elif item[0] == "connected":
                    self._announce_people()
                    self._republish_last_seen()
                elif item[0] == "announce_all":
                    self._announce_people()
                elif item[0] == "announce":
                    self._announce_people(item[1])
                elif item[0] == "forget":
                    self._last_seen_at.pop(item[1], None)
                    self._publish(self.topics.last_seen(item[1]), b"", retain=True)
                    if self.discovery_prefix:
                        from pcs_common.ha_discovery import config_topic

                        self._publish(config_topic(self.discovery_prefix, person_object_id(item[1])), b"",
                                      retain=True)
                self._flush_deferred()
            except Exception:
                log.exception("MQTT publishing failed; continuing")

    def _next_deferred_in(self) -> float:
        if not self._deferred:
            return 5.0
        now = time.monotonic()
        due = min(self._last_sent.get(sid, 0.0) + self.update_interval_s for sid in self._deferred)
        return max(0.0, min(5.0, due - now))

    @staticmethod
    def _max_sighting_id(db: Any) -> int:
        from sqlalchemy import func, select

        from central.models import Sighting

        return db.scalar(select(func.max(Sighting.id))) or 0

    def _on_observations(self, camera_id: str, observation_ids: list[str]) -> None:
        with self.sessions() as db:
            changes = changed_sightings(db, camera_id, observation_ids, self._high_water)
        now = time.monotonic()
        for payload in changes:
            sid = payload["sighting_id"]
            self._high_water = max(self._high_water, sid)
            if payload["event"] == "updated" and now - self._last_sent.get(sid, -1e18) < self.update_interval_s:
                self._deferred[sid] = payload  # the newest state wins; sent when the interval ends
                continue
            self._deferred.pop(sid, None)
            self._send_sighting(payload, now)

    def _flush_deferred(self, force: bool = False) -> None:
        now = time.monotonic()
        for sid, payload in list(self._deferred.items()):
            if force or now - self._last_sent.get(sid, -1e18) >= self.update_interval_s:
                del self._deferred[sid]
                self._send_sighting(payload, now)
        horizon = now - self.update_interval_s  # older entries no longer throttle anything
        self._last_sent = {sid: t for sid, t in self._last_sent.items() if t > horizon or sid in self._deferred}

    def _send_sighting(self, payload: dict[str, Any], now: float) -> None:
        body = json.dumps(payload)
        self._publish(self.topics.camera_sightings(payload["camera_id"]), body)
        self._publish(self.topics.person_sightings(payload["person_id"]), body)
        self._last_sent[payload["sighting_id"]] = now
        self._publish_last_seen(payload["person_id"], payload["person_name"], payload["camera_id"],
                                payload["camera_name"], dt.datetime.fromisoformat(payload["ended_at"]))

    def _publish_last_seen(self, person_id: str, person_name: str | None, camera_id: str,
                           camera_name: str | None, at: dt.datetime) -> None:
        """Publish ``last_seen`` unless an equal or newer one was published already."""
        previous = self._last_seen_at.get(person_id)
        if previous is not None and at < previous:
            return
        self._last_seen_at[person_id] = at
        self._publish(self.topics.last_seen(person_id), json.dumps(
            {"person_id": person_id, "person_name": person_name, "camera_id": camera_id,
             "camera_name": camera_name, "at": utc_iso(at, "auto")}), retain=self.retain_last_seen)

    def _republish_last_seen(self) -> None:
        """At each connect: every person's newest sighting as retained ``last_seen`` (the broker may have
        restarted without persistence)."""
        if not self.retain_last_seen:
            return
        from sqlalchemy import select

        from central import sightings
        from central.models import Person

        with self.sessions() as db:
            seen = sightings.last_seen_all(db)
            names = dict(db.execute(select(Person.id, Person.name).where(Person.id.in_(list(seen))))) if seen else {}
        for person_id, last in seen.items():
            self._last_seen_at.pop(person_id, None)  # republish even when unchanged
            self._publish_last_seen(person_id, names.get(person_id), last["camera_id"], last["camera_name"],
                                    last["at"])

    def _announce_people(self, person_id: str | None = None) -> None:
        """Publish the presence device of ``person_id`` (or of everyone), retained."""
        if not self.discovery_prefix:
            return
        from sqlalchemy import select

        from central import __version__, sightings
        from pcs_common.ha_discovery import config_topic
        from central.models import Person

        query = select(Person.id, Person.name)
        if person_id is not None:
            query = query.where(Person.id == person_id)
        with self.sessions() as db:
            rows = db.execute(query).all()
            seen = sightings.last_seen_all(db).get(person_id) if person_id is not None and rows else None
        for pid, name in rows:
            self._publish(config_topic(self.discovery_prefix, person_object_id(pid)),
                          json.dumps(presence_config(self.topics, pid, name, __version__)), retain=True)
        if seen is not None:  # a rename or a merge: the state carries the new name / merged sightings
            self._last_seen_at.pop(person_id, None)
            self._publish_last_seen(person_id, rows[0][1], seen["camera_id"], seen["camera_name"], seen["at"])


def from_settings(settings: Any, sessions: Callable[[], Any]) -> SightingPublisher | None:
    """The publisher configured by ``settings`` (not started), or None when ``mqtt_url`` is unset."""
    if not settings.mqtt_url:
        return None
    return SightingPublisher(parse_mqtt_url(settings.mqtt_url), sessions, settings.mqtt_topic_prefix,
                             settings.mqtt_retain_last_seen, settings.mqtt_update_interval_s,
                             discovery_prefix=settings.mqtt_discovery_prefix if settings.mqtt_discovery else None)
