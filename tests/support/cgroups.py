"""cgroup v1 CPU quota and memory limit around a process, for tests and benchmarks (root only).

``with Cgroup(cpu_cores=0.45, memory_bytes=300 << 20) as cg: cg.add(pid)`` gives ``pid`` and every
process and thread it starts afterwards 0.45 of one core (CFS bandwidth control: ``cpu.cfs_quota_us``
per ``cpu.cfs_period_us``, ``Documentation/scheduler/sched-bwc.rst``) and kills it past the memory
limit (``memory.limit_in_bytes``). Each group has a unique name; on exit the processes still in it
are moved back to the root group and the directories are removed.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")
#: CFS period used for the quota, µs (the kernel default)
PERIOD_US = 100_000


def available() -> str | None:
    """None if cgroup v1 ``cpu`` and ``memory`` groups can be made here, else why not."""
    if os.geteuid() != 0:
        return "cgroup limits need root"
    for controller in ("cpu", "memory"):
        base = CGROUP_ROOT / controller
        if not (base / "cgroup.procs").exists():
            return f"no cgroup v1 {controller} controller at {base}"
        if not os.access(base, os.W_OK):
            return f"{base} is not writable"
    return None


class Cgroup:
    """A CPU quota of ``cpu_cores`` cores and/or a memory limit of ``memory_bytes`` bytes.

    Args:
        cpu_cores: quota as a fraction of one core (0.45: 45 ms of CPU per 100 ms), None: no quota.
        memory_bytes: hard memory limit (RSS + page cache), None: no limit.
        prefix: start of the group's name (a random suffix makes it unique).
        period_us: CFS bandwidth period, µs (kernel default 100 ms). The group runs ``cpu_cores *
            period_us`` µs per period and is then stopped until the period ends: with 100 ms, a
            0.45-core group halts for up to 55 ms at a time, which no slow CPU does; a 10 ms period
            spreads the same share more like a slower core.

    Raises:
        OSError: the group cannot be created (not root, no cgroup v1).
    """

    def __init__(self, cpu_cores: float | None = None, memory_bytes: int | None = None, prefix: str = "pcs",
                 period_us: int = PERIOD_US) -> None:
        self.name = f"{prefix}-{uuid.uuid4().hex[:10]}"
        self.period_us = period_us
        self.cpu_cores = cpu_cores
        self.memory_bytes = memory_bytes
        self.dirs: list[Path] = []

    def __enter__(self) -> "Cgroup":
        try:
            if self.cpu_cores is not None:
                cpu = self._make("cpu")
                (cpu / "cpu.cfs_period_us").write_text(str(self.period_us))
                (cpu / "cpu.cfs_quota_us").write_text(str(max(1000, round(self.cpu_cores * self.period_us))))
            if self.memory_bytes is not None:
                mem = self._make("memory")
                (mem / "memory.limit_in_bytes").write_text(str(self.memory_bytes))
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _make(self, controller: str) -> Path:
        path = CGROUP_ROOT / controller / self.name
        path.mkdir()
        self.dirs.append(path)
        return path

    def add(self, pid: int) -> None:
        """Move process ``pid`` (all its threads) into the group; its future children follow."""
        for path in self.dirs:
            (path / "cgroup.procs").write_text(str(pid))

    def pids(self) -> list[int]:
        """Processes in the group now."""
        found: set[int] = set()
        for path in self.dirs:
            try:
                found.update(int(p) for p in (path / "cgroup.procs").read_text().split())
            except OSError:
                pass
        return sorted(found)

    def throttled(self) -> tuple[int, float]:
        """(periods in which the group was throttled, total throttled time s) from ``cpu.stat``."""
        for path in self.dirs:
            if path.parent.name == "cpu":
                stat = dict(line.split() for line in (path / "cpu.stat").read_text().splitlines())
                return int(stat.get("nr_throttled", 0)), int(stat.get("throttled_time", 0)) / 1e9
        return 0, 0.0

    def memory_peak(self) -> int | None:
        """Largest memory use of the group so far, bytes (``memory.max_usage_in_bytes``)."""
        for path in self.dirs:
            if path.parent.name == "memory":
                return int((path / "memory.max_usage_in_bytes").read_text())
        return None

    def close(self) -> None:
        """Move remaining processes to the root group and remove the directories (idempotent)."""
        for path in reversed(self.dirs):
            root_procs = path.parent / "cgroup.procs"
            try:
                for pid in (path / "cgroup.procs").read_text().split():
                    try:
                        root_procs.write_text(pid)
                    except OSError:
                        pass  # exited meanwhile
                path.rmdir()
            except FileNotFoundError:
                pass
        self.dirs = []
