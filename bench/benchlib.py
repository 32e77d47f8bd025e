"""What every benchmark shares: the load line, loopback-only service settings, interleaved rounds and
median-with-spread formatting.

A figure is only comparable with the load it was measured under, so every bench prints
:func:`load_line` before and after its runs. Comparisons are measured interleaved (A B A B ...) in one
process, so machine noise hits both sides alike (:func:`interleave`).
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable

LOOPBACK_ENV = {"CAMERA_MDNS_INTERFACES": "127.0.0.1", "CAMERA_HOST": "127.0.0.1"}
"""CAMERA_* settings that keep a benchmarked service's traffic on loopback (the API on 127.0.0.1, the
mDNS advertisement on 127.0.0.1 only); everything else stays at its default."""


def load_line() -> str:
    """``load average 1/5/15 min: a / b / c on N cores, <UTC time>`` (``os.getloadavg``)."""
    one, five, fifteen = os.getloadavg()
    return (f"load average 1/5/15 min: {one:.2f} / {five:.2f} / {fifteen:.2f} on {os.cpu_count()} cores, "
            f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")


def interleave(runs: dict[str, Callable[[], float]], rounds: int) -> dict[str, list[float]]:
    """Call each of ``runs`` once per round, in turn (A B A B ...); the values each returned, by name."""
    out: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(rounds):
        for name, run in runs.items():
            out[name].append(run())
    return out


def spread(values: list[float], fmt: str = "{:.1f}", unit: str = "") -> str:
    """``median (min–max, n=N)`` of ``values`` with ``fmt``; just the value when there is one."""
    med = fmt.format(statistics.median(values)) + unit
    if len(values) == 1:
        return med
    return f"{med} ({fmt.format(min(values))}–{fmt.format(max(values))}{unit}, n={len(values)})"
