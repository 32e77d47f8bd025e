"""The camera's stable identity: one id per installation, shared by mDNS discovery and pairing.

The id is a random UUID4 (hex, 32 characters) generated on first start and kept in
``<state_dir>/hardware-id``. It is not derived from the Pi's serial number so that two services on the
same board (or tests on one machine) stay distinct, and so that wiping the state directory gives the
camera a fresh identity, as a factory reset should.
"""

from __future__ import annotations

import re
import uuid
from pathlib import Path

from pcs_common.fileio import read_or_create_secret

FILE_NAME = "hardware-id"
_VALID = re.compile(r"[0-9a-f]{32}")  # fullmatch: "$" would accept a trailing "\n"


def hardware_id(state_dir: Path) -> str:
    """Return this installation's id (32 lowercase hex characters), creating it on first use.

    A missing or corrupt file is replaced by a new id, written atomically (mode 0600, the state
    directory 0700: :func:`~pcs_common.fileio.read_or_create_secret`).

    Raises:
        OSError: the state directory cannot be created or written.
    """
    value, _ = read_or_create_secret(Path(state_dir) / FILE_NAME, lambda: uuid.uuid4().hex, _VALID.fullmatch)
    return value
