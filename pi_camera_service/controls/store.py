"""Atomic JSON persistence of the camera's control state under ``CAMERA_STATE_DIR``.

A power cut while saving must leave either the old or the new file, never a truncated one: the state
is written to a temporary file in the same directory, flushed and fsynced, renamed over the old file
(``os.replace`` is atomic on POSIX) and the directory is fsynced so the rename itself survives.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

from pcs_common.fileio import fsync_dir, make_private_dir, write_atomic

log = logging.getLogger(__name__)

#: bumped when the stored layout changes incompatibly
FORMAT_VERSION = 1


class ControlStore:
    """Load and save ``{"version": 1, "controls": {api name: value}}`` at ``path``.

    Args:
        path: the JSON file (its directory is created on first save).
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def load(self) -> dict[str, Any]:
        """The stored controls, or ``{}`` when there is no file.

        A file that cannot be parsed (or has another format version) is moved aside to
        ``<name>.bad`` with a warning and ``{}`` is returned, so a damaged file never stops the
        camera from starting.
        """
        try:
            raw = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return {}
        except OSError as exc:
            log.warning("cannot read %s (%s); starting with default controls", self.path, exc)
            return {}
        try:
            data = json.loads(raw)
            if not isinstance(data, dict) or data.get("version") != FORMAT_VERSION:
                raise ValueError(f"expected {{'version': {FORMAT_VERSION}, 'controls': {{...}}}}")
            controls = data.get("controls")
            if not isinstance(controls, dict):
                raise ValueError("'controls' is not an object")
            return controls
        except ValueError as exc:
            bad = self.path.with_name(self.path.name + ".bad")
            log.warning("%s is damaged (%s); moved to %s, starting with default controls", self.path, exc, bad)
            try:
                os.replace(self.path, bad)
            except OSError:
                pass
            return {}

    def save(self, controls: dict[str, Any]) -> None:
        """Write ``controls`` atomically (temp file + fsync + rename + directory fsync).

        Raises:
            OSError: the directory cannot be created or written (disk full, read-only); the previous
                file is left intact.
        """
        make_private_dir(self.path.parent)
        payload = json.dumps({"version": FORMAT_VERSION, "controls": controls}, indent=2, sort_keys=True)
        write_atomic(self.path, (payload + "\n").encode("utf-8"))
        fsync_dir(self.path.parent)
