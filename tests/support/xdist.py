"""State shared by the pytest-xdist workers of one run, and loopback multicast probing (mDNS tests)."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket


def multicast_round_trip() -> bool:
    """True if a multicast datagram sent on 127.0.0.1 comes back to a socket joined on 127.0.0.1."""
    group = "239.255.71.73"
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        rx.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        rx.bind(("", 0))
        rx.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, socket.inet_aton(group) + socket.inet_aton("127.0.0.1"))
        rx.settimeout(1.0)
        tx.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton("127.0.0.1"))
        tx.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 1)
        token = os.urandom(8)
        tx.sendto(token, (group, rx.getsockname()[1]))
        while True:
            data, _ = rx.recvfrom(64)
            if data == token:
                return True
    except OSError:
        return False
    finally:
        rx.close()
        tx.close()


@contextlib.contextmanager
def shared_state(tmp_path_factory, name: str):
    """A JSON dict shared by the pytest-xdist workers of this run (one file in the run's common temp
    directory), locked (flock) while the ``with`` block reads and changes it."""
    base = tmp_path_factory.getbasetemp()
    root = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    path = root / f"{name}.json"
    with open(root / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        state = json.loads(path.read_text()) if path.exists() else {}
        yield state
        path.write_text(json.dumps(state))

