"""Central server under a hostile LAN: the first-admin race, token types and audiences, persistent
logout, atomic rate limits, forwarded headers, private file modes and anchored patterns — over real
HTTP, on SQLite and PostgreSQL, with real parallel requests."""

from __future__ import annotations

import os
import stat
import threading
from concurrent.futures import ThreadPoolExecutor

import httpx
import jwt
import pytest
from sqlalchemy import func, select

from central.models import Admin
from tests.conftest import CentralServer, bearer

PASSWORD = "correct horse battery"


def _parallel(n: int, call):
    """Run ``call(i)`` for i in range(n) on n threads released together; the results in order."""
    barrier = threading.Barrier(n)

    def run(i: int):
        barrier.wait()
        return call(i)

    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(run, range(n)))


# ----------------------------------------------------------------------------- first admin
def test_concurrent_first_admin_creates_exactly_one(central_server: CentralServer):
    c = central_server.client
    setup = c.post("/v1/setup", json={"password": central_server.bootstrap_password()}).json()["setup_token"]

    def create(i: int) -> int:
        with httpx.Client(base_url=central_server.base, timeout=60) as client:
            return client.post("/v1/setup/admin", json={"username": f"admin{i}", "password": PASSWORD},
                               headers=bearer(setup)).status_code

    codes = _parallel(8, create)
    assert sorted(codes) == [201] + [409] * 7, codes
    with central_server.state.sessions() as db:
        assert db.scalar(select(func.count()).select_from(Admin)) == 1
    # The setup token is spent: neither it nor a new bootstrap attempt can make a second admin.
    again = c.post("/v1/setup/admin", json={"username": "late", "password": PASSWORD}, headers=bearer(setup))
    assert again.status_code == 409
