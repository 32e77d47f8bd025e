"""Sockets and waiting: free ports, LISTEN checks without connecting, polling with a deadline."""

from __future__ import annotations

import random
import signal
import socket
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path


def _ephemeral_low() -> int:
    """The first port of the kernel's ephemeral range (``net.ipv4.ip_local_port_range``, 32768 by default)."""
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing uses right now, *below* the kernel's ephemeral range.

    A port the kernel hands out for ``bind(0)`` is also one it hands out as the local port of outgoing
    connections; between this call and the test's server binding it, any process's connection could
    take it ("Address already in use": seen with an ffmpeg RTSP receiver). Ports below the range are
    never chosen that way.
    """
    low = _ephemeral_low()
    rng = random.SystemRandom()
    for _ in range(500):
        port = rng.randrange(max(1024, low - 12000), low)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    with socket.socket() as s:  # the range below is full: any free port
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(predicate, timeout: float, interval: float = 0.1, message: str = "condition"):
    """Poll ``predicate()`` until it returns a truthy value (returned) or ``timeout`` s pass (AssertionError)."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {message} (last: {last!r})")


def _local_port_states(port: int) -> set[str]:
    """TCP states (``/proc/net/tcp{,6}`` hex codes: ``0A`` LISTEN, ``01`` ESTABLISHED, ...) of the
    sockets whose *local* port is ``port``; no connection is made."""
    states = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if int(fields[1].rsplit(":", 1)[1], 16) == port:
                states.add(fields[3])
    return states


def port_listening(port: int) -> bool:
    """True if a TCP socket is in LISTEN state on ``port`` (read from /proc/net/tcp{,6}, no connection made)."""
    return "0A" in _local_port_states(port)


def port_listening_or_accepted(port: int) -> bool:
    """True if a socket listens on ``port`` or an ESTABLISHED one has it as its local port: a server on
    ``port`` that closes its listening socket once it accepts a connection (ffmpeg's RTSP listen mode)
    counts as started after the accept too. Only meaningful for ports below the ephemeral range
    (:func:`free_port`), which no outgoing connection uses as its local port."""
    return bool({"0A", "01"} & _local_port_states(port))


def stop_process(proc: subprocess.Popen | None, sig: int = signal.SIGTERM, timeout: float = 15) -> None:
    """Send ``sig`` to ``proc`` if it still runs and wait up to ``timeout`` s for it to exit; SIGKILL after."""
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(sig)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def parallel(n: int, call):
    """Run ``call(i)`` for i in range(n) on n threads released together (a barrier); the results in order."""
    barrier = threading.Barrier(n)

    def run(i: int):
        barrier.wait()
        return call(i)

    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(run, range(n)))
