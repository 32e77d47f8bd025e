"""The camera's secrets for the central link: the credentials pairing gave it and its pairing key.

Both live in ``CAMERA_STATE_DIR`` with mode 0600 and are written atomically
(:func:`pcs_common.fileio.write_atomic`).
"""

from __future__ import annotations

import contextlib
import json
import logging
import secrets
from dataclasses import asdict, dataclass, field
from pathlib import Path

from pcs_common.fileio import (
    fsync_dir,
    make_private_dir,
    make_private_file,
    read_or_create_secret,
    unlink_quietly,
    write_atomic,
)
from pcs_common.timefmt import utc_iso  # noqa: F401 - the link's time format, imported from here too

log = logging.getLogger("pi_camera_service.central_link")  # one logger for the link (journal lines unchanged)

CREDENTIALS_FILE = "central-credentials.json"
"""Name of the credentials file in ``CAMERA_STATE_DIR``."""

PAIRING_KEY_FILE = "pairing_key"
"""Name of the file in ``CAMERA_STATE_DIR`` holding the camera's secret pairing key (see :func:`pairing_key`)."""


@dataclass(frozen=True)
class DeviceCredentials:
    """What pairing gave the camera, as stored in ``<state_dir>/central-credentials.json``.

    Attributes:
        central_url: the central server they belong to (``CAMERA_CENTRAL_URL`` at pairing time).
        device_id: the camera's id on that server (HTTP Basic user name).
        device_secret: the camera's secret (HTTP Basic password); left out of ``repr()``.
        camera_name: the name the administrator gave the camera.
        paired_at: ISO-8601 UTC time of the pairing.
    """

    central_url: str
    device_id: str
    device_secret: str = field(repr=False)
    camera_name: str
    paired_at: str


def credentials_path(state_dir: Path) -> Path:
    """``<state_dir>/central-credentials.json``."""
    return Path(state_dir) / CREDENTIALS_FILE


def load_credentials(state_dir: Path) -> DeviceCredentials | None:
    """Read the stored credentials, or ``None`` when there are none or the file is unusable.

    A corrupt file (not JSON, fields missing or not strings) is logged at WARNING and treated as
    absent (the camera pairs again and overwrites it). A file readable by group or others is
    tightened to 0600 with a warning.
    """
    path = credentials_path(state_dir)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        log.warning("cannot read %s (%s): pairing again", path, exc)
        return None
    with contextlib.suppress(OSError):
        make_private_file(path)  # 0600, with a warning when it was wider
    try:
        data = json.loads(raw)
        creds = DeviceCredentials(**{k: data[k] for k in DeviceCredentials.__dataclass_fields__})
    except (ValueError, TypeError, KeyError) as exc:
        log.warning("%s is not a valid credentials file (%s): pairing again", path, exc)
        return None
    values = asdict(creds)
    if not all(isinstance(v, str) for v in values.values()) or not (
        creds.central_url and creds.device_id and creds.device_secret
    ):
        log.warning("%s has empty or non-text fields: pairing again", path)
        return None
    return creds


def store_credentials(state_dir: Path, creds: DeviceCredentials) -> Path:
    """Write ``creds`` to ``<state_dir>/central-credentials.json`` atomically with mode 0600.

    The state directory is created (mode 0700) when missing. Returns the file's path.

    Raises:
        OSError: the directory or the file cannot be written (the previous file, if any, is intact).
    """
    path = credentials_path(state_dir)
    make_private_dir(path.parent)
    write_atomic(path, (json.dumps(asdict(creds), indent=2) + "\n").encode("utf-8"))
    fsync_dir(path.parent)
    return path


def pairing_key(state_dir: Path) -> str:
    """This camera's pairing key: 43 base64url characters (256 random bits) kept in
    ``<state_dir>/pairing_key`` (mode 0600), created on first use.

    Sent with every pairing request: the central server binds the code to it, so nobody who only
    knows the (public) hardware id can expire, replace or claim the code this camera shows, nor pair
    another device under this camera's record (docs/security.md#pairing). Kept across unpairing; a
    corrupt or too short file is replaced.

    Raises:
        OSError: the state directory cannot be created or written.
    """
    return read_or_create_secret(Path(state_dir) / PAIRING_KEY_FILE, lambda: secrets.token_urlsafe(32),
                                 lambda v: len(v) >= 43 and all(c.isalnum() or c in "-_" for c in v))[0]


def forget_credentials(state_dir: Path) -> bool:
    """Delete the stored credentials; ``True`` when a file was there (errors are logged, not raised)."""
    path = credentials_path(state_dir)
    existed = path.exists()
    unlink_quietly(path)
    with contextlib.suppress(OSError):
        fsync_dir(path.parent)
    return existed
