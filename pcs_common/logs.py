"""Log format shared by the camera service and the central server: timestamps unless journald adds its own.

systemd's journal records a time for every line it receives, so a service run under systemd logs
``LEVEL logger: message``; run from a terminal (``./run.sh``, ``central-server``) the same lines start
with the local time, ``2026-12-01 20:45:12.345 LEVEL logger: message``.

Detection follows systemd.exec(5), "$JOURNAL_STREAM": systemd sets ``JOURNAL_STREAM=<device>:<inode>``
for a service whose stdout/stderr is connected to the journal, and a program should compare it with
``fstat()`` of its stderr, because the variable is inherited by child processes whose stderr may
have been redirected elsewhere.
"""

from __future__ import annotations

import logging
import os

#: Without journald: local time with milliseconds, level, logger name, message.
TERMINAL_FORMAT = "%(asctime)s.%(msecs)03d %(levelname)s %(name)s: %(message)s"
TERMINAL_DATEFMT = "%Y-%m-%d %H:%M:%S"
#: Under journald, which stamps every line itself.
JOURNAL_FORMAT = "%(levelname)s %(name)s: %(message)s"


def stderr_is_journal(environ: dict[str, str] | os._Environ[str] | None = None, fd: int = 2) -> bool:
    """True when file descriptor ``fd`` (stderr) is the journal stream named by ``$JOURNAL_STREAM``.

    ``JOURNAL_STREAM`` is ``"<st_dev>:<st_ino>"`` in decimal (systemd.exec(5)); a malformed value, a
    closed ``fd`` or a different stream gives False.
    """
    value = (os.environ if environ is None else environ).get("JOURNAL_STREAM", "")
    device, sep, inode = value.partition(":")
    if not sep:
        return False
    try:
        info = os.fstat(fd)
        return (info.st_dev, info.st_ino) == (int(device), int(inode))
    except (OSError, ValueError):
        return False


def configure_logging(level: str) -> None:
    """Set up root logging: :data:`JOURNAL_FORMAT` under journald, :data:`TERMINAL_FORMAT` otherwise.

    ``level`` is a :mod:`logging` level name (``INFO``...; unknown names mean INFO). Uvicorn's own
    loggers propagate here when it is started with ``log_config=None``, so its lines get the same format.
    """
    journal = stderr_is_journal()
    logging.basicConfig(
        level=getattr(logging, level, logging.INFO),
        format=JOURNAL_FORMAT if journal else TERMINAL_FORMAT,
        datefmt=None if journal else TERMINAL_DATEFMT,
        force=True,
    )
