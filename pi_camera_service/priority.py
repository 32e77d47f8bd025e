"""CPU priority of background analysis, so capture and encoding always win the CPU.

On a Pi Zero 2 W the capture thread, the H.264 encoder and face analysis share four slow cores. The
stream must not stutter for analysis, so the analysis thread and the encoder worker process are
moved to a lower CPU priority than the rest of the service:

* ``idle`` (default): the Linux ``SCHED_IDLE`` policy (``sched(7)``): the thread runs only on CPU
  time that no normal thread of the same cgroup wants (its CFS weight is 3 against 1024 for a
  nice-0 thread), so a CPU quota is spent on capture and encoding first.
* ``nice``: nice 19 (``setpriority(2)``), CFS weight 15: analysis still gets ~1.5% of a contended core.
* ``normal``: unchanged (for comparing, and for machines where analysis must keep its rate).

On Linux both ``sched_setscheduler(2)`` and ``setpriority(2)`` act on one *thread* when given a
thread id (``threading.get_native_id()``; 0 is the calling thread), and a process started by a
thread inherits that thread's policy and nice value (``fork(2)``), so a worker started from the
analysis thread is lowered too; :func:`lower` is also applied to the worker's pid explicitly.
Lowering a priority needs no privilege; raising it back does (so there is no "restore").
"""

from __future__ import annotations

import logging
import os
from typing import Literal

log = logging.getLogger(__name__)

Priority = Literal["idle", "nice", "normal"]

#: the nice value of ``nice`` priority (the lowest Linux allows)
NICE_LOWEST = 19

_configured: Priority = "idle"


def configure(priority: Priority) -> None:
    """Set the priority :func:`lower` applies when given none (``CAMERA_DETECTION_PRIORITY``).

    Raises:
        ValueError: ``priority`` is not ``idle``, ``nice`` or ``normal``.
    """
    global _configured
    if priority not in ("idle", "nice", "normal"):
        raise ValueError(f"priority must be idle, nice or normal, not {priority!r}")
    _configured = priority


def configured() -> Priority:
    """The priority :func:`lower` applies by default."""
    return _configured


def lower(tid: int = 0, priority: Priority | None = None) -> str:
    """Lower the CPU priority of thread or process ``tid`` (0: the calling thread) to ``priority``.

    Returns what is now in force: ``"SCHED_IDLE"``, ``"nice 19"`` or ``"normal"``. Never raises:
    where the OS refuses (not Linux, a sandbox), it logs once at debug level and falls back from
    ``idle`` to ``nice``, then to nothing.
    """
    priority = _configured if priority is None else priority
    if priority == "normal":
        return "normal"
    if priority == "idle" and hasattr(os, "SCHED_IDLE"):
        try:
            os.sched_setscheduler(tid, os.SCHED_IDLE, os.sched_param(0))
            return "SCHED_IDLE"
        except OSError as exc:
            log.debug("SCHED_IDLE refused for %d (%s); using nice %d", tid, exc, NICE_LOWEST)
    try:
        os.setpriority(os.PRIO_PROCESS, tid, NICE_LOWEST)
        return f"nice {NICE_LOWEST}"
    except (OSError, AttributeError) as exc:
        log.debug("cannot lower the priority of %d: %s", tid, exc)
        return "normal"


def describe(tid: int) -> str:
    """``"SCHED_IDLE"``, ``"nice N"`` or ``"normal"`` for thread or process ``tid`` (for logs and tests).

    Raises:
        OSError: no such thread or process.
    """
    if hasattr(os, "SCHED_IDLE") and os.sched_getscheduler(tid) == os.SCHED_IDLE:
        return "SCHED_IDLE"
    nice = os.getpriority(os.PRIO_PROCESS, tid)
    return f"nice {nice}" if nice else "normal"
