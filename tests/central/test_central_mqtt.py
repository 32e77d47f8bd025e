"""Central server: MQTT publishing of sightings, with a real mosquitto broker and a real paho subscriber,
on SQLite and PostgreSQL — topics and payloads, the retained last_seen, unknown faces, the rate of
updates, the broker down at start and going away (ingest unaffected, publishing resumes), and MQTT off.
Faces are real (the bundled carphone video, enrolled from a photo; scikit-image's astronaut unknown)."""

from __future__ import annotations

import datetime as dt
import threading
import time

import paho.mqtt.client as paho
import pytest
from sqlalchemy import func, select

from central.config import ConfigError, load_settings
from central.models import FaceObservation, Sighting
from pcs_common.mqtt import parse_mqtt_url, redact_url
from tests.support.central_api import T0, api, enrol_photo, event, paired_camera, post_events, start_ready_server
from tests.support.central_server import CentralServer
from tests.support.faces import astronaut, camera_encoding, carphone_frames, to_jpeg
from tests.support.mqtt_broker import Broker, Subscriber
from tests.support.net import wait_until

PREFIX = "test-home"


def start_server(database_url, tmp_path, broker: Broker, **overrides) -> CentralServer:
    return start_ready_server(database_url, data_dir=tmp_path / "data", sighting_gap_s=60,
                              mqtt_url=f"mqtt://127.0.0.1:{broker.port}", mqtt_topic_prefix=PREFIX, **overrides)


def driver(server: CentralServer) -> dict:
    """Enrol the carphone video's driver from a photo (frame 10); returns the person."""
    person = api(server, "POST", "/v1/people", 201, json={"name": "Driver"})
    enrol_photo(server, person["id"], to_jpeg(carphone_frames()[10]))
    return person


def send(server: CentralServer, encoding, at: dt.datetime, camera: dict | None = None):
    """Post one event with one face; asserts 200 "stored"; returns the response."""
    r = post_events(server, camera or server.camera, [event(encoding, at)])
    assert r.status_code == 200 and r.json()["results"][0]["status"] == "stored", r.text
    return r


def sightings_topics(sub: Subscriber) -> list[str]:
    return [t for t in sub.topics() if t.endswith("/sightings")]


def test_sightings_on_camera_and_person_topics_retained_last_seen_and_no_unknowns(
        database_url, tmp_path, broker, subscribers):
    broker.start()
    sub = subscribers(broker.port)
    server = start_server(database_url, tmp_path, broker, mqtt_update_interval_s=0)
    try:
        person = driver(server)
        cam = server.camera["device_id"]
        assert sub.wait(f"{PREFIX}/central/status") == ["online"]
        # a stranger first: stored, matched to nobody, nothing published (the worker is serial, so
        # anything it would have sent arrives before the driver's messages below)
        send(server, camera_encoding(astronaut()), T0)
        send(server, camera_encoding(carphone_frames()[110]), T0 + dt.timedelta(seconds=1))
        on_camera = sub.wait(f"{PREFIX}/cameras/{cam}/sightings")
        on_person = sub.wait(f"{PREFIX}/people/{person['id']}/sightings")
        with server.state.sessions() as db:
            row = db.scalars(select(Sighting)).one()
            assert db.scalar(select(func.count()).select_from(FaceObservation)
                             .where(FaceObservation.person_id.is_(None))) == 1  # the stranger was stored
        expected = {"event": "started", "sighting_id": row.id, "person_id": person["id"], "person_name": "Driver",
                    "camera_id": cam, "camera_name": "Porch", "started_at": "2026-11-22T10:00:01Z",
                    "ended_at": "2026-11-22T10:00:01Z", "detections": 1}
        assert on_camera == [expected] and on_person == [expected]
        assert sightings_topics(sub) == [f"{PREFIX}/cameras/{cam}/sightings",
                                         f"{PREFIX}/people/{person['id']}/sightings"]
        # a second detection 20 s later extends the sighting: "updated"
        send(server, camera_encoding(carphone_frames()[60]), T0 + dt.timedelta(seconds=21))
        updated = sub.wait(f"{PREFIX}/people/{person['id']}/sightings", 2)[1]
        assert updated == {**expected, "event": "updated", "ended_at": "2026-11-22T10:00:21Z", "detections": 2}
        # a client connecting now gets the retained state at once
        late = subscribers(broker.port)
        last = late.wait(f"{PREFIX}/people/{person['id']}/last_seen")
        assert last == [{"person_id": person["id"], "person_name": "Driver", "camera_id": cam,
                         "camera_name": "Porch", "at": "2026-11-22T10:00:21Z"}]
        with late.lock:
            assert all(retain for t, _, retain in late.messages if t.endswith(("/last_seen", "/status")))
        assert late.wait(f"{PREFIX}/central/status") == ["online"]
        assert not sightings_topics(late)  # sightings are events, not retained
        # a late upload of an older event on another camera does not move last_seen back
        garden = paired_camera(server, server.admin, "Garden")
        send(server, camera_encoding(carphone_frames()[110]), T0 - dt.timedelta(hours=1), camera=garden)
        older = sub.wait(f"{PREFIX}/cameras/{garden['device_id']}/sightings")
        assert older[0]["event"] == "started" and older[0]["camera_name"] == "Garden"
        assert [m["at"] for m in sub.on(f"{PREFIX}/people/{person['id']}/last_seen")] == [
            "2026-11-22T10:00:01Z", "2026-11-22T10:00:21Z"]
    finally:
        server.stop()
    # a clean shutdown says offline (retained)
    assert sub.wait(f"{PREFIX}/central/status", 2)[-1] == "offline"


def test_erasing_a_person_clears_their_retained_last_seen(database_url, tmp_path, broker, subscribers):
    broker.start()
    server = start_server(database_url, tmp_path, broker, mqtt_update_interval_s=0)
    try:
        person = driver(server)
        send(server, camera_encoding(carphone_frames()[110]), T0)
        topic = f"{PREFIX}/people/{person['id']}/last_seen"
        first = subscribers(broker.port)
        assert first.wait(topic)[0]["person_name"] == "Driver"
        api(server, "DELETE", f"/v1/people/{person['id']}", 200)
        # the clear is published after the answer: a subscribed client sees the empty message
        wait_until(lambda: first.raw(topic)[-1] == b"", 10, 0.05, "the retained last_seen cleared")
        # the broker now holds an empty retained message: a new client gets nothing for this person
        watcher = subscribers(broker.port)
        wait_until(lambda: watcher.on(f"{PREFIX}/central/status"), 10, 0.05, "retained status")
        time.sleep(0.5)
        assert watcher.on(topic) == []
    finally:
        server.stop()


def test_updates_are_rate_limited_and_the_last_state_is_sent(database_url, tmp_path, broker, subscribers):
    broker.start()
    sub = subscribers(broker.port)
    server = start_server(database_url, tmp_path, broker, mqtt_update_interval_s=2)
    try:
        person = driver(server)
        topic = f"{PREFIX}/people/{person['id']}/sightings"
        enc = camera_encoding(carphone_frames()[110])
        began = time.monotonic()
        for i in range(15):  # 5 events/s for 3 s, one sighting
            send(server, enc, T0 + dt.timedelta(seconds=i / 5))
            time.sleep(max(0.0, began + (i + 1) / 5 - time.monotonic()))
        elapsed = time.monotonic() - began
        final = wait_until(lambda: [m for m in sub.on(topic) if m["detections"] == 15], 10, 0.05, "the final state")
        time.sleep(2.5)  # anything still deferred would arrive by now
        messages = sub.on(topic)
        assert messages[0]["event"] == "started" and messages[0]["detections"] == 1
        assert all(m["event"] == "updated" for m in messages[1:]) and final[-1] == messages[-1]
        # one "started", then at most one "updated" per 2 s (plus the trailing one)
        assert 2 <= len(messages) <= 2 + int(elapsed / 2) + 1, (len(messages), elapsed)
        assert [m["detections"] for m in messages] == sorted(m["detections"] for m in messages)
        assert sub.wait(f"{PREFIX}/people/{person['id']}/last_seen")[-1]["at"] == "2026-11-22T10:00:02.800000Z"
    finally:
        server.stop()


def test_broker_down_at_start_and_going_away_never_blocks_ingest(database_url, tmp_path, broker, subscribers):
    server = start_server(database_url, tmp_path, broker, mqtt_update_interval_s=0)  # broker not running
    try:
        person = driver(server)
        enc = camera_encoding(carphone_frames()[110])
        began = time.monotonic()
        send(server, enc, T0)
        assert time.monotonic() - began < 5 and not server.state.mqtt.connected
        with server.state.sessions() as db:
            assert db.scalar(select(func.count()).select_from(Sighting)) == 1
        # the broker comes up: the server connects on its own, says online, republishes last_seen
        broker.start()
        sub = subscribers(broker.port)
        wait_until(lambda: server.state.mqtt.connected, 20, 0.1, "the server connected to the broker")
        assert sub.wait(f"{PREFIX}/central/status")[-1] == "online"
        assert sub.wait(f"{PREFIX}/people/{person['id']}/last_seen")[-1]["at"] == "2026-11-22T10:00:00Z"
        sub.close()
        # the broker goes away: ingest still answers at once and stores
        broker.stop()
        wait_until(lambda: not server.state.mqtt.connected, 10, 0.1, "the server noticed the broker is gone")
        began = time.monotonic()
        send(server, enc, T0 + dt.timedelta(minutes=5))  # a new sighting (past the 60 s gap)
        assert time.monotonic() - began < 5
        with server.state.sessions() as db:
            assert db.scalar(select(func.count()).select_from(Sighting)) == 2
        # back on the same port: the server reconnects and publishing resumes
        broker.start()
        sub = subscribers(broker.port)
        wait_until(lambda: server.state.mqtt.connected, 40, 0.1, "the server reconnected")
        send(server, enc, T0 + dt.timedelta(minutes=10))
        topic = f"{PREFIX}/people/{person['id']}/sightings"
        got = wait_until(lambda: [m for m in sub.on(topic) if m["started_at"] == "2026-11-22T10:10:00Z"], 15, 0.05,
                         "the sighting after reconnection")
        assert got[0]["event"] == "started" and got[0]["camera_name"] == "Porch" and got[0]["detections"] == 1
        assert sub.wait(f"{PREFIX}/people/{person['id']}/last_seen")[-1]["at"] == "2026-11-22T10:10:00Z"
    finally:
        server.stop()


def test_mqtt_off_starts_nothing(database_url, tmp_path):
    before = {t.name for t in threading.enumerate()}
    server = CentralServer(database_url, data_dir=tmp_path / "data").start()
    try:
        assert server.state.settings.mqtt_url is None and server.state.mqtt is None
        server.admin = server.create_first_admin()
        server.camera = paired_camera(server, server.admin, "Porch")
        person = driver(server)
        send(server, camera_encoding(carphone_frames()[110]), T0)
        assert api(server, "GET", f"/v1/people/{person['id']}/last-seen")["sighting"]["detections"] == 1
        started = {t.name for t in threading.enumerate()} - before
        assert not [n for n in started if "paho" in n or "mqtt" in n], started
    finally:
        server.stop()


def test_url_and_prefix_validation():
    target = parse_mqtt_url("mqtts://home%40lan:p%3Ass@broker.lan")
    assert (target.host, target.port, target.tls, target.username, target.password) == (
        "broker.lan", 8883, True, "home@lan", "p:ss")
    assert parse_mqtt_url("mqtt://broker.lan").port == 1883 and not parse_mqtt_url("mqtt://h:1884").tls
    assert target.redacted() == "mqtts://home@lan:***@broker.lan:8883"
    assert redact_url("mqtt://u:secret@h") == "mqtt://u:***@h"
    for url, message in (("http://u:secret@broker", "must start with mqtt:// or mqtts://"),
                         ("mqtt://", "has no host"),
                         ("mqtt://broker:99999", "port"),
                         ("mqtt://u:secret@broker/topic", "must not have a path")):
        with pytest.raises(ConfigError) as err:
            load_settings(mqtt_url=url)
        assert "CENTRAL_MQTT_URL" in str(err.value) and message in str(err.value), str(err.value)
        assert "secret" not in str(err.value)
    with pytest.raises(ConfigError, match="CENTRAL_MQTT_TOPIC_PREFIX.*wildcards"):
        load_settings(mqtt_topic_prefix="home/#")
    settings = load_settings(mqtt_url="mqtt://broker", mqtt_topic_prefix="/home/cams/")
    assert settings.mqtt_topic_prefix == "home/cams" and settings.mqtt_retain_last_seen is True
    assert load_settings().mqtt_url is None


def test_home_assistant_presence_device_per_person_follows_enrolment_rename_merge_and_erase(
        database_url, tmp_path, broker, subscribers):
    """One device-based discovery message per person (validated against the documented schema), whose
    sensors render the retained last_seen into the camera's name and a timestamp; republished on a
    rename and on Home Assistant's birth message; removed (empty retained config) on merge and erase."""
    from central.mqtt import person_object_id
    from pcs_common.ha_discovery import config_topic
    from tests.support import ha_schema

    broker.start()
    sub = subscribers(broker.port, "homeassistant/#", f"{PREFIX}/#")
    server = start_server(database_url, tmp_path, broker, mqtt_update_interval_s=0)
    try:
        person = driver(server)
        topic = config_topic("homeassistant", person_object_id(person["id"]))
        config = ha_schema.validate(sub.wait(topic)[0])
        assert config.dev.name == "Driver" and config.dev.identifiers == [f"pi_camera_person_{person['id']}"]
        assert config.avty[0].topic == f"{PREFIX}/central/status" and set(config.cmps) == {"camera", "last_seen"}
        assert config.state_topic == f"{PREFIX}/people/{person['id']}/last_seen"
        # a sighting: both sensors render from the retained last_seen
        send(server, camera_encoding(carphone_frames()[110]), T0)
        state = sub.wait(config.state_topic)[-1]
        assert ha_schema.render(config.cmps["camera"], state) == "Porch"
        assert ha_schema.render(config.cmps["last_seen"], state) == "2026-11-22T10:00:00Z"
        assert config.cmps["camera"].json_attributes_topic == config.state_topic
        # a rename re-announces the device under its new name
        api(server, "PATCH", f"/v1/people/{person['id']}", json={"name": "The driver"})
        renamed = wait_until(lambda: [c for c in sub.on(topic) if c and c["dev"]["name"] == "The driver"], 10, 0.05,
                             "the renamed device")
        ha_schema.validate(renamed[-1])
        wait_until(lambda: sub.on(config.state_topic)[-1]["person_name"] == "The driver", 10, 0.05,
                   "last_seen under the new name")
        # Home Assistant restarting (birth message) gets every presence device again
        before = len(sub.on(topic))
        ha = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=f"test-ha-{time.monotonic_ns()}")
        ha.connect("127.0.0.1", broker.port)
        ha.loop_start()
        ha.publish("homeassistant/status", "online", qos=1).wait_for_publish(5)
        ha.disconnect()
        ha.loop_stop()
        sub.wait(topic, before + 1)
        # a second person merged into the first: their device goes (empty retained config)
        other = api(server, "POST", "/v1/people", 201, json={"name": "Twin"})
        other_topic = config_topic("homeassistant", person_object_id(other["id"]))
        ha_schema.validate(sub.wait(other_topic)[0])
        api(server, "POST", f"/v1/people/{person['id']}/merge", json={"other_id": other["id"]})
        wait_until(lambda: sub.raw(other_topic)[-1] == b"", 10, 0.05, "the merged person's device removed")
        # erasing the person removes theirs
        api(server, "DELETE", f"/v1/people/{person['id']}", 200)
        wait_until(lambda: sub.raw(topic)[-1] == b"", 10, 0.05, "the erased person's device removed")
        late = subscribers(broker.port, "homeassistant/#", f"{PREFIX}/#")
        late.wait(f"{PREFIX}/central/status")
        time.sleep(0.5)  # retained messages arrive together right after the subscription
        assert not late.raw(topic) and not late.raw(other_topic)
    finally:
        server.stop()


def test_presence_devices_off_with_the_setting(database_url, tmp_path, broker, subscribers):
    broker.start()
    sub = subscribers(broker.port, "homeassistant/#", f"{PREFIX}/#")
    server = start_server(database_url, tmp_path, broker, mqtt_update_interval_s=0, mqtt_discovery=False)
    try:
        person = driver(server)
        send(server, camera_encoding(carphone_frames()[110]), T0)
        sub.wait(f"{PREFIX}/people/{person['id']}/last_seen")
        assert not [t for t in sub.topics() if t.startswith("homeassistant/")]
    finally:
        server.stop()
