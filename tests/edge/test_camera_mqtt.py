"""The camera as a Home Assistant MQTT device, with a real mosquitto broker and real paho clients: the
device discovery message and every state message checked against the documented schema
(tests/ha_schema.py), the switch and the button driving the real service process over MQTT (the REST
API shows the effect), bad commands ignored, rate-limited state, Home Assistant's birth message, and
the last will when the camera process is killed."""

from __future__ import annotations

import json
import signal
import time

import cv2
import httpx
import numpy as np
import paho.mqtt.client as paho
import pytest

from pi_camera_service.config import ConfigError, load_settings
from tests.support import ha_schema
from tests.support.mqtt_broker import Subscriber
from tests.support.net import wait_until
from tests.support.paths import SAMPLE
from tests.support.processes import ServiceProcess, sample_camera_env

DISCOVERY = "ha-test"
TOPICS = "cams-test"
API_KEY = "mqtt-test-key"
ALL_COMPONENTS = {"face", "faces", "lux", "sensor_temperature", "analysed_fps", "stream_state", "snapshot",
                  "streaming", "still"}


def publisher(port: int) -> paho.Client:
    """A plain paho client (what Home Assistant's MQTT integration is to the broker), connected."""
    client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=f"test-pub-{time.monotonic_ns()}")
    client.connect("127.0.0.1", port)
    client.loop_start()
    return client


def send(client: paho.Client, topic: str, payload: bytes | str) -> None:
    client.publish(topic, payload, qos=1).wait_for_publish(5)


def camera(tmp_path, broker_port: int, **env: str) -> ServiceProcess:
    env = {"CAMERA_MQTT_URL": f"mqtt://127.0.0.1:{broker_port}", "CAMERA_MQTT_DISCOVERY_PREFIX": DISCOVERY,
           "CAMERA_MQTT_TOPIC_PREFIX": TOPICS, "CAMERA_STREAM_ON_START": "true", "CAMERA_MQTT_STATE_INTERVAL": "0.2",
           "CAMERA_MQTT_IMAGE_INTERVAL": "2", **env}
    return ServiceProcess(sample_camera_env(tmp_path, API_KEY, **env), tmp_path / "camera.log")


def rest(svc: ServiceProcess, method: str, path: str) -> dict:
    r = httpx.request(method, svc.base + path, headers={"X-API-Key": API_KEY}, timeout=10)
    assert r.status_code == 200, r.text
    return r.json()


def states(sub: Subscriber, topic: str) -> list[dict]:
    return [m for m in sub.on(topic) if isinstance(m, dict)]


@pytest.mark.e2e
def test_camera_device_discovery_state_commands_and_last_will(tmp_path, broker, subscribers):
    broker.start()
    sub = subscribers(broker.port, f"{DISCOVERY}/#", f"{TOPICS}/#")
    svc = camera(tmp_path, broker.port).start()
    try:
        object_id = "pi_camera_" + httpx.get(svc.base + "/health").json()["hardware_id"]
        base = f"{TOPICS}/{object_id}"
        config_topic = f"{DISCOVERY}/device/{object_id}/config"
        raw_config = sub.wait(config_topic)[0]
        config = ha_schema.validate(raw_config)
        assert set(config.cmps) == ALL_COMPONENTS
        assert config.state_topic == f"{base}/state" and config.avty[0].topic == f"{base}/availability"
        assert config.o.name == "pi-camera-service" and config.dev.identifiers == [object_id]
        assert config.dev.configuration_url is None  # no CAMERA_API_URL / CAMERA_ADVERTISED_HOST given
        assert config.cmps["streaming"].command_topic == f"{base}/streaming/set"
        assert config.cmps["still"].command_topic == f"{base}/still/press"
        assert config.cmps["snapshot"].image_topic == f"{base}/snapshot"
        assert sub.wait(f"{base}/availability")[-1] == "online"

        # state: every message renders through every component's template; a face shows up (carphone)
        def seen_face():
            for state in states(sub, f"{base}/state"):
                for cid, comp in config.cmps.items():
                    if getattr(comp, "value_template", None):
                        ha_schema.render(comp, state)
            return [s for s in states(sub, f"{base}/state") if s["face_detected"] == "ON" and s["faces"] >= 1]

        face = wait_until(seen_face, 60, 0.2, "a state with a face detected")[0]
        assert face["stream_state"] in ("connecting", "reconnecting") and face["streaming"] == "ON"
        assert face["lux"] is None and face["sensor_temperature"] is None  # a video file has no sensor
        assert ha_schema.render(config.cmps["lux"], face) == "None"  # Home Assistant shows "unknown"
        # the image entity: a decodable JPEG of the (320 px) main stream
        jpeg = wait_until(lambda: sub.raw(f"{base}/snapshot"), 20, 0.1, "a snapshot")[0]
        image = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
        assert image is not None and image.shape[:2] == (240, 320)

        ha = publisher(broker.port)
        try:
            # the switch: OFF stops publishing (REST says stopped, the state says OFF), ON starts it
            send(ha, f"{base}/streaming/set", "OFF")
            wait_until(lambda: rest(svc, "GET", "/v1/streaming/status")["state"] == "stopped", 10, 0.1, "stopped")
            wait_until(lambda: states(sub, f"{base}/state")[-1]["streaming"] == "OFF", 10, 0.1, "switch OFF")
            assert states(sub, f"{base}/state")[-1]["stream_state"] == "stopped"
            # bad commands change nothing
            for topic, payload in ((f"{base}/streaming/set", "on"), (f"{base}/streaming/set", "ON" * 100),
                                   (f"{base}/streaming/set", b"\xff\x00"), (f"{base}/still/press", "press")):
                send(ha, topic, payload)
            taken = rest(svc, "GET", "/v1/stills/status")["captures"]["taken"]
            send(ha, f"{base}/streaming/set", "ON")  # the worker is serial: the bad ones were handled first
            wait_until(lambda: rest(svc, "GET", "/v1/streaming/status")["state"] != "stopped", 10, 0.1, "started")
            assert rest(svc, "GET", "/v1/stills/status")["captures"]["taken"] == taken
            assert "payload b'on'; allowed ON or OFF" in svc.log()
            # the button: one still in the history, as a manual one
            send(ha, f"{base}/still/press", "PRESS")
            wait_until(lambda: rest(svc, "GET", "/v1/stills/status")["captures"]["taken"] == taken + 1, 15, 0.1,
                       "a still taken")
            assert rest(svc, "GET", "/v1/stills/status")["captures"]["by_trigger"]["manual"] >= 1
            # Home Assistant restarting (its birth message) gets the discovery again
            before = len(sub.on(config_topic))
            send(ha, f"{DISCOVERY}/status", "online")
            sub.wait(config_topic, before + 1)
        finally:
            ha.disconnect()
            ha.loop_stop()

        # a Home Assistant connecting later gets everything retained at once
        late = subscribers(broker.port, f"{DISCOVERY}/#", f"{TOPICS}/#")
        assert late.wait(config_topic)[0] == raw_config
        assert late.wait(f"{base}/availability") == ["online"]
        assert late.wait(f"{base}/state")
        assert wait_until(lambda: late.raw(f"{base}/snapshot"), 10, 0.05, "the retained snapshot")[0][:3] == b"\xff\xd8\xff"
        with late.lock:  # the first message on each topic came from the broker's store
            first = {}
            for topic, _, retain in late.messages:
                first.setdefault(topic, retain)
        assert all(first.values()), first

        # the camera process dies: the broker publishes its last will
        announced = len(sub.on(f"{base}/availability"))
        svc.proc.send_signal(signal.SIGKILL)
        svc.proc.wait(10)
        assert sub.wait(f"{base}/availability", announced + 1, timeout=10)[-1] == "offline"
        fresh = subscribers(broker.port, f"{TOPICS}/#")
        assert fresh.wait(f"{base}/availability") == ["offline"]  # retained
    finally:
        svc.stop()


@pytest.mark.e2e
def test_components_follow_the_settings_and_a_clean_stop_says_offline(tmp_path, broker, subscribers):
    broker.start()
    sub = subscribers(broker.port, f"{DISCOVERY}/#", f"{TOPICS}/#")
    svc = camera(tmp_path, broker.port, CAMERA_DETECTION_ENABLED="false", CAMERA_STILLS_ENABLED="false",
                 CAMERA_MQTT_IMAGE_INTERVAL="0", CAMERA_API_URL="http://camera.lan:8000").start()
    try:
        object_id = "pi_camera_" + httpx.get(svc.base + "/health").json()["hardware_id"]
        config = ha_schema.validate(sub.wait(f"{DISCOVERY}/device/{object_id}/config")[0])
        assert set(config.cmps) == {"lux", "sensor_temperature", "stream_state", "streaming"}
        assert config.dev.configuration_url == "http://camera.lan:8000"
        state = sub.wait(f"{TOPICS}/{object_id}/state")[-1]
        for comp in config.cmps.values():
            if getattr(comp, "value_template", None):
                ha_schema.render(comp, state)
        ha = publisher(broker.port)
        send(ha, f"{TOPICS}/{object_id}/still/press", "PRESS")  # no stills history: ignored, logged
        ha.disconnect()
        wait_until(lambda: "stills history is off" in svc.log(), 10, 0.1, "the ignored still command logged")
    finally:
        svc.stop()  # SIGTERM: a clean stop (MQTT DISCONNECT, so no last will: the offline below is ours)
    assert sub.wait(f"{TOPICS}/{object_id}/availability", 2)[-1] == "offline"
    assert not sub.raw(f"{TOPICS}/{object_id}/snapshot")


def test_state_changes_are_rate_limited_and_the_last_one_is_sent(tmp_path, broker, subscribers):
    """In-process: 60 detection results in 1.5 s alternating 1 and 2 faces reach the broker as a few
    coalesced messages, the last one carrying the newest count; then face_detected goes OFF."""
    from pcs_common.mqtt import parse_mqtt_url
    from pi_camera_service.detection.detector import DetectionResult, Face
    from pi_camera_service.ha_mqtt import FACE_OFF_DELAY_S, CameraMqtt
    from pi_camera_service.sources import create_camera

    broker.start()
    sub = subscribers(broker.port, f"{TOPICS}/#")
    settings = load_settings(source=str(SAMPLE), width=320,
                             height=240, rtsp_url="rtsp://127.0.0.1:9/cam", stream_on_start=False)
    cam = create_camera(settings)
    cam.open()
    mqtt = CameraMqtt(parse_mqtt_url(f"mqtt://127.0.0.1:{broker.port}"), cam, "ab" * 16, "Test camera",
                      detection=None, topic_prefix=TOPICS, discovery_prefix=DISCOVERY, state_interval_s=0.5,
                      sensor_interval_s=3600, image_interval_s=0)
    mqtt.start()
    topic = mqtt.state_topic
    try:
        wait_until(lambda: mqtt.connected and states(sub, topic), 10, 0.05, "the first state")
        face = Face(10, 10, 40, 40)
        began = time.monotonic()
        for i in range(60):
            faces = (face,) if i % 2 else (face, face)
            mqtt.on_detection(DetectionResult(i, time.time(), time.time(), 1.0, 320, 240, faces=faces))
            time.sleep(max(0.0, began + (i + 1) * 0.025 - time.monotonic()))
        elapsed = time.monotonic() - began
        last = wait_until(lambda: [s for s in states(sub, topic) if s["faces"] == 1], 5, 0.05, "the final count")
        time.sleep(0.7)  # anything still coalesced would arrive by now
        during = [s for s in states(sub, topic) if s["face_detected"] == "ON"]
        assert last[-1] == during[-1] and during[-1]["faces"] == 1  # i = 59: one face
        assert 1 <= len(during) <= int(elapsed / 0.5) + 2, (len(during), elapsed)
        off = wait_until(lambda: states(sub, topic)[-1]["face_detected"] == "OFF" and states(sub, topic)[-1],
                         FACE_OFF_DELAY_S + 3, 0.05, "face_detected OFF after the delay")
        assert off["faces"] == 1 or off["faces"] == 0
    finally:
        mqtt.stop()
        cam.close()


def test_command_flood_is_bounded_and_never_blocks(tmp_path, broker):
    """In-process: 500 commands published at once (valid and not) leave at most MAX_PENDING_COMMANDS
    queued, the rejects counted, and the camera in a valid streaming state."""
    from pcs_common.mqtt import parse_mqtt_url
    from pi_camera_service.ha_mqtt import MAX_PENDING_COMMANDS, CameraMqtt
    from pi_camera_service.sources import create_camera

    broker.start()
    settings = load_settings(source=str(SAMPLE), width=320, height=240, rtsp_url="rtsp://127.0.0.1:9/cam",
                             stream_on_start=False)
    cam = create_camera(settings)
    cam.open()
    mqtt = CameraMqtt(parse_mqtt_url(f"mqtt://127.0.0.1:{broker.port}"), cam, "cd" * 16, "Flooded",
                      topic_prefix=TOPICS, discovery_prefix=DISCOVERY, image_interval_s=0)
    mqtt.start()
    try:
        wait_until(lambda: mqtt.connected, 10, 0.05, "connected")
        time.sleep(0.3)  # the subscription is acknowledged after CONNACK
        ha = publisher(broker.port)
        infos = [ha.publish(mqtt.streaming_command_topic, "ON" if i % 3 == 0 else ("OFF" if i % 3 == 1 else "X"), qos=1)
                 for i in range(500)]
        for info in infos:
            info.wait_for_publish(10)
        wait_until(lambda: mqtt.commands_done + mqtt.commands_rejected >= 500, 20, 0.05, "every command handled")
        assert mqtt._commands.qsize() <= MAX_PENDING_COMMANDS
        assert mqtt.commands_rejected >= 166  # the "X" ones at least
        assert cam.streaming_status().state in ("stopped", "connecting", "reconnecting")
        send(ha, mqtt.streaming_command_topic, "OFF")
        wait_until(lambda: cam.streaming_status().state == "stopped", 10, 0.05, "stopped at the end")
        ha.disconnect()
        ha.loop_stop()
    finally:
        mqtt.stop()
        cam.close()


def test_mqtt_settings_are_validated_without_leaking_the_password():
    with pytest.raises(ConfigError) as err:
        load_settings(mqtt_url="http://u:secret@broker")
    assert "CAMERA_MQTT_URL" in str(err.value) and "mqtt://" in str(err.value) and "secret" not in str(err.value)
    with pytest.raises(ConfigError, match="CAMERA_MQTT_DISCOVERY_PREFIX.*wildcards"):
        load_settings(mqtt_discovery_prefix="home/+")
    settings = load_settings(mqtt_url="mqtts://broker.lan", mqtt_topic_prefix="/home/cams/")
    assert settings.mqtt_topic_prefix == "home/cams" and settings.mqtt_discovery_prefix == "homeassistant"
    assert load_settings().mqtt_url is None


def test_the_schema_rejects_what_home_assistant_documents_as_wrong():
    """The schema is not a rubber stamp: documented mistakes fail it."""
    good = {"dev": {"identifiers": ["x"]}, "o": {"name": "n"}, "state_topic": "s",
            "cmps": {"a": {"p": "sensor", "unique_id": "u1", "value_template": "{{ value_json.v }}"}}}
    ha_schema.validate(good)
    bad = [
        {**good, "o": {}},  # origin without name
        {**good, "dev": {"name": "no ids"}},
        {**good, "cmps": {"a": {"p": "sensor"}}},  # no unique_id
        {**good, "cmps": {"a": {"p": "button", "unique_id": "u"}}},  # button without command_topic
        {**good, "cmps": {"a": {"p": "image", "unique_id": "u", "image_topic": "i", "url_topic": "j"}}},
        {**good, "cmps": {"a": {"p": "sensor", "unique_id": "u", "device_class": "illuminance",
                                "unit_of_measurement": "lux"}}},
        {**good, "cmps": {"a": {"p": "sensor", "unique_id": "u", "device_class": "enum"}}},
        {**good, "cmps": {"a": {"p": "sensor", "unique_id": "u", "valu_template": "{{ 1 }}"}}},  # typo
        {**good, "cmps": {"a b": {"p": "sensor", "unique_id": "u"}}},
    ]
    for payload in bad:
        with pytest.raises(ValueError):
            ha_schema.validate(json.loads(json.dumps(payload)))


def test_broker_down_at_start_and_restarted_the_camera_reconnects_and_republishes(tmp_path, broker, subscribers):
    """In-process: with no broker the camera's calls return at once; when the broker comes up (and
    again after it restarts without persistence, losing every retained message) the camera connects
    by itself and republishes its discovery, availability and state."""
    from pcs_common.mqtt import parse_mqtt_url
    from pi_camera_service.detection.detector import DetectionResult, Face
    from pi_camera_service.ha_mqtt import CameraMqtt
    from pi_camera_service.sources import create_camera

    settings = load_settings(source=str(SAMPLE), width=320, height=240, rtsp_url="rtsp://127.0.0.1:9/cam",
                             stream_on_start=False)
    cam = create_camera(settings)
    cam.open()
    mqtt = CameraMqtt(parse_mqtt_url(f"mqtt://127.0.0.1:{broker.port}"), cam, "ef" * 16, "Reconnecting",
                      topic_prefix=TOPICS, discovery_prefix=DISCOVERY, image_interval_s=0)
    mqtt.start()
    try:
        began = time.monotonic()
        for i in range(100):  # the detection thread's calls while the broker is unreachable
            mqtt.on_detection(DetectionResult(i, time.time(), time.time(), 1.0, 320, 240, faces=(Face(1, 1, 9, 9),)))
        assert time.monotonic() - began < 0.5 and not mqtt.connected
        for _ in range(2):  # first start, then a restart that lost the retained messages
            broker.start()
            sub = subscribers(broker.port, f"{DISCOVERY}/#", f"{TOPICS}/#")
            ha_schema.validate(sub.wait(mqtt.config_topic, timeout=40)[0])
            assert sub.wait(mqtt.availability_topic)[-1] == "online"
            assert states(sub, mqtt.state_topic) or sub.wait(mqtt.state_topic)
            broker.stop()
            wait_until(lambda: not mqtt.connected, 10, 0.05, "the camera noticed the broker is gone")
    finally:
        mqtt.stop()
        cam.close()
