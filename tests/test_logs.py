"""Log lines: a time on each line from a terminal, none under journald (which stamps them itself).

The real service process is started with its stderr on a file, once as from a terminal and once with
``JOURNAL_STREAM`` naming that file's device and inode, which is what systemd sets for a unit whose
output goes to the journal (systemd.exec(5)).
"""

from __future__ import annotations

import os
import re

import pytest

from pi_camera_service.config import load_settings
from pi_camera_service.discovery import ServiceAdvertiser
from pcs_common.logs import stderr_is_journal
from tests.support.net import free_port
from tests.support.processes import CentralProcess, ServiceProcess, sample_camera_env

STAMPED = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} (DEBUG|INFO|WARNING|ERROR|CRITICAL) \S+: ")
BARE = re.compile(r"^(DEBUG|INFO|WARNING|ERROR|CRITICAL) \S+: ")
KEY = "log-format-test-key-0123456789abcdef"


def _log_lines(tmp_path, name: str, journal: bool) -> list[str]:
    log_path = tmp_path / name
    log_path.touch()
    env = sample_camera_env(tmp_path, KEY, CAMERA_DETECTION_ENABLED="false", CAMERA_STILLS_ENABLED="false",
                            CAMERA_MDNS_INTERFACES="127.0.0.1")
    info = os.stat(log_path)
    env["JOURNAL_STREAM"] = f"{info.st_dev}:{info.st_ino}" if journal else ""
    svc = ServiceProcess(env, log_path).start()
    code = svc.stop()
    assert code in (0, -15), svc.log()
    lines = [line for line in svc.log().splitlines() if line.strip()]
    assert any("Application startup complete" in line for line in lines), lines  # uvicorn's own line too
    assert any(line.endswith("mDNS: advertising _pi-camera._tcp.local. only on 127.0.0.1") for line in lines), lines
    return lines


@pytest.mark.e2e
def test_service_log_lines_have_a_time_from_a_terminal_and_none_under_journald(tmp_path):
    _check_format(_log_lines(tmp_path, "terminal.log", journal=False), journal=False)
    _check_format(_log_lines(tmp_path, "journal.log", journal=True), journal=True)


def _check_format(lines: list[str], journal: bool) -> None:
    """Every record has the expected form (continuation lines of multi-line messages aside)."""
    wanted, unwanted = (BARE, STAMPED) if journal else (STAMPED, BARE)
    assert not [line for line in lines if unwanted.match(line)], lines
    assert sum(bool(wanted.match(line)) for line in lines) >= 5, lines


@pytest.mark.e2e
def test_central_server_log_lines_have_a_time_from_a_terminal_and_none_under_journald(tmp_path):
    for name, journal in (("terminal.log", False), ("journal.log", True)):
        log_path = tmp_path / name
        log_path.touch()
        info = os.stat(log_path)
        env = {"CENTRAL_HOST": "127.0.0.1", "CENTRAL_PORT": str(free_port()), "CENTRAL_DATA_DIR": str(tmp_path / name[:-4]),
               "CENTRAL_MDNS_ENABLED": "false", "JOURNAL_STREAM": f"{info.st_dev}:{info.st_ino}" if journal else ""}
        proc = CentralProcess(env, log_path).start()
        proc.stop()
        lines = [line for line in proc.log().splitlines() if line.strip()]
        assert any("bootstrap password" in line for line in lines), lines
        _check_format(lines, journal)


def test_journal_stream_must_name_stderr_itself(tmp_path):
    """An inherited JOURNAL_STREAM whose stream is not our stderr any more means "not journald"."""
    with open(tmp_path / "a", "w") as a, open(tmp_path / "b", "w") as b:
        ia = os.fstat(a.fileno())
        env = {"JOURNAL_STREAM": f"{ia.st_dev}:{ia.st_ino}"}
        assert stderr_is_journal(env, a.fileno())
        assert not stderr_is_journal(env, b.fileno())
    for value in ("", "garbage", "1:", ":2", "x:y"):
        assert not stderr_is_journal({"JOURNAL_STREAM": value}, 2)
    assert not stderr_is_journal({}, 2)


def test_mdns_start_up_line_says_every_interface_and_how_to_limit(tmp_path, monkeypatch):
    for key in list(os.environ):
        if key.startswith("CAMERA_"):
            monkeypatch.delenv(key)
    every = ServiceAdvertiser(load_settings(state_dir=tmp_path), 8000).scope_message()
    assert "on every network interface" in every and "CAMERA_MDNS_INTERFACES=" in every
    assert "\n" not in every
    only = ServiceAdvertiser(load_settings(state_dir=tmp_path, mdns_interfaces="127.0.0.1"), 8000).scope_message()
    assert only == "mDNS: advertising _pi-camera._tcp.local. only on 127.0.0.1"
