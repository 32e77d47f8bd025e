"""A fleet of cameras written straight to central's database (pairing each through the API would test
pairing, not the list)."""

from __future__ import annotations

import datetime as dt
import random

from central.models import Camera, utcnow
from tests.support.central_server import CentralServer

#: the fleet size of the list and dashboard tests
N_CAMERAS = 500


def add_fleet(server: CentralServer, n: int = N_CAMERAS, seed: int = 7) -> list[Camera]:
    """``n`` cameras with mixed-case names (some with ``%`` and ``_``), in every state."""
    rng = random.Random(seed)
    now = utcnow()
    offline_after = server.state.settings.offline_after_s()
    rows = []
    for i in range(n):
        kind = i % 5
        name = f"{rng.choice(['Porch', 'garage', 'Hall', 'shop_floor', '50%-door'])} {i:03d}"
        cam = Camera(name=name, hardware_id=f"{i:032x}", paired_at=now - dt.timedelta(minutes=i))
        if kind == 0:
            cam.disabled = True
        if kind != 1:  # kind 1: paired, credentials never used (awaiting_camera)
            cam.claimed_at = now - dt.timedelta(hours=1)
        if kind in (2, 3):  # online: a fresh heartbeat
            cam.last_seen_at = now - dt.timedelta(seconds=rng.uniform(0, offline_after / 2))
        elif kind == 4 and i % 10 == 4:  # offline with an old heartbeat (the others never sent one)
            cam.last_seen_at = now - dt.timedelta(seconds=offline_after * 3 + i)
        rows.append(cam)
    with server.state.sessions() as db:
        db.add_all(rows)
        db.commit()
        for cam in rows:
            db.refresh(cam)
        db.expunge_all()
    return rows
