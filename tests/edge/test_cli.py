"""The console script: ``hash-password`` and ``--version``."""

from __future__ import annotations

import subprocess
import sys

from pi_camera_service import __version__
from pi_camera_service.auth import verify_password


def _run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pi_camera_service", *args], input=stdin,
                          capture_output=True, text=True, timeout=60)


def test_hash_password_prints_an_argon2_hash_that_verifies():
    proc = _run("hash-password", "--password", "correct horse battery staple")
    assert proc.returncode == 0, proc.stderr
    digest = proc.stdout.strip()
    assert digest.startswith("$argon2id$")
    assert verify_password("correct horse battery staple", digest)
    assert not verify_password("wrong", digest)


def test_hash_password_reads_stdin_when_not_a_terminal():
    proc = _run("hash-password", stdin="from-stdin\n")
    assert proc.returncode == 0, proc.stderr
    assert verify_password("from-stdin", proc.stdout.strip())


def test_empty_password_is_refused():
    proc = _run("hash-password", "--password", "")
    assert proc.returncode == 2 and "must not be empty" in proc.stderr and proc.stdout == ""


def test_version():
    proc = _run("--version")
    assert proc.returncode == 0 and __version__ in proc.stdout
