"""The small helpers both services share (``pcs_common``): the UTC time format, box geometry, URL
redaction and the secret/state files with their modes."""

from __future__ import annotations

import datetime as dt
import os
import stat
from pathlib import Path

import pytest

from pcs_common.fileio import read_or_create_secret
from pcs_common.geometry import iou, overlap
from pcs_common.timefmt import utc_iso, utc_iso_ms
from pcs_common.urls import redact_url

EPOCH = 1764631610.789  # 2025-12-01T23:26:50.789Z


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_one_utc_format_at_every_precision():
    assert utc_iso(EPOCH) == "2025-12-01T23:26:50Z"  # truncated, not rounded
    assert utc_iso_ms(EPOCH) == "2025-12-01T23:26:50.789Z"
    aware = dt.datetime(2025, 12, 2, 1, 26, 50, 5, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    assert utc_iso(aware, "auto") == "2025-12-01T23:26:50.000005Z"
    assert utc_iso(dt.datetime(2025, 12, 1, 23, 26, 50), "auto") == "2025-12-01T23:26:50Z"  # naive: UTC
    assert dt.datetime.fromisoformat(utc_iso()) <= dt.datetime.now(dt.UTC)
    with pytest.raises(ValueError):
        utc_iso(EPOCH, "fortnights")


def test_the_old_names_give_the_old_formats():
    from pi_camera_service.central_link import utc_iso as link_iso
    from pi_camera_service.onvif.events import iso as onvif_iso
    from pi_camera_service.outbox import iso_utc as outbox_iso

    assert link_iso(EPOCH) == onvif_iso(EPOCH) == "2025-12-01T23:26:50Z"
    assert outbox_iso(EPOCH) == "2025-12-01T23:26:50.789Z"


def test_iou_and_overlap():
    assert iou((0, 0, 10, 10), (5, 0, 10, 10)) == pytest.approx(50 / 150)
    assert iou((0, 0, 10, 10), (10, 0, 10, 10)) == 0.0  # touching edges share nothing
    assert iou((0, 0, 0, 0), (0, 0, 0, 0)) == 0.0
    assert overlap((0, 0, 10, 10), (2, 2, 4, 4)) == 1.0


@pytest.mark.parametrize(("url", "expected"), [
    ("rtsp://pub:secret@127.0.0.1:8554/cam", "rtsp://pub:***@127.0.0.1:8554/cam"),
    ("rtsp://127.0.0.1:8554/cam", "rtsp://127.0.0.1:8554/cam"),
    ("mqtt://u:secret@h", "mqtt://u:***@h"),
    ("mqtts://u@h:8883", "mqtts://u@h:8883"),  # no password: nothing to hide
    ("rtsp://a:p@ss@host/x@y?q=1@2", "rtsp://a:***@host/x@y?q=1@2"),  # last @ of the authority only
    ("rtsp://host/path@x:y", "rtsp://host/path@x:y"),  # an @ in the path is no userinfo
    ("not a url", "not a url"),
    (None, None),
])
def test_redact_url(url, expected):
    assert redact_url(url) == expected


def test_redact_url_is_one_function_for_rtsp_and_mqtt():
    from pcs_common.mqtt import redact_url as mqtt_redact
    from pi_camera_service.sources.base import redact_url as source_redact

    assert mqtt_redact is source_redact is redact_url


def test_secret_file_created_private_whatever_the_umask(tmp_path):
    old = os.umask(0)
    try:
        value, created = read_or_create_secret(tmp_path / "state" / "key", lambda: "k" * 43)
    finally:
        os.umask(old)
    assert (value, created) == ("k" * 43, True)
    assert mode(tmp_path / "state") == 0o700 and mode(tmp_path / "state" / "key") == 0o600
    assert (tmp_path / "state" / "key").read_text() == "k" * 43 + "\n"
    assert read_or_create_secret(tmp_path / "state" / "key", lambda: "other") == ("k" * 43, False)


def test_secret_file_kept_tightened_or_replaced(tmp_path, caplog):
    state = tmp_path / "state"
    state.mkdir(mode=0o755)
    os.chmod(state, 0o755)
    key = state / "key"
    key.write_text("  stored \n")
    os.chmod(key, 0o644)
    assert read_or_create_secret(key, lambda: "new") == ("stored", False)
    assert mode(key) == 0o600 and mode(state) == 0o700
    assert read_or_create_secret(key, lambda: "new", lambda v: len(v) > 10) == ("new", True)
    assert "no usable value" in caplog.text
    key.write_bytes(b"\xff\xfe")
    assert read_or_create_secret(key, lambda: "fresh") == ("fresh", True)
    key.write_text("\n")
    assert read_or_create_secret(key, lambda: "again") == ("again", True)  # empty is not a secret
    assert key.read_text() == "again\n" and mode(key) == 0o600


def test_every_state_file_writer_makes_the_directory_0700(tmp_path):
    """The hardware id, the pairing key, the central credentials and the stored controls each create
    the state directory mode 0700 (it holds every secret), whatever the umask."""
    from pi_camera_service.central_link import DeviceCredentials, pairing_key, store_credentials
    from pi_camera_service.controls.store import ControlStore
    from pi_camera_service.identity import hardware_id

    writers = {
        "id": lambda d: hardware_id(d),
        "pairing": lambda d: pairing_key(d),
        "credentials": lambda d: store_credentials(d, DeviceCredentials("http://c", "dev", "secret", "cam", utc_iso())),
        "controls": lambda d: ControlStore(d / "camera-controls.json").save({"brightness": 0.1}),
    }
    old = os.umask(0o022)
    try:
        for name, write in writers.items():
            state = tmp_path / name / "state"
            write(state)
            assert mode(state) == 0o700, name
            assert all(mode(f) == 0o600 for f in state.iterdir()), name
    finally:
        os.umask(old)


def test_stored_credentials_readable_by_others_are_tightened(tmp_path, caplog):
    from pi_camera_service.central_link import DeviceCredentials, load_credentials, store_credentials

    creds = DeviceCredentials("http://c", "dev", "secret", "cam", utc_iso())
    path = store_credentials(tmp_path / "state", creds)
    os.chmod(path, 0o644)
    assert load_credentials(tmp_path / "state") == creds
    assert mode(path) == 0o600 and "tightened to 0600" in caplog.text
