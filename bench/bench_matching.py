"""Face matching and ingest throughput of the central server.

1. Matching: one query against N random enrolled encodings (``central.matching.EncodingIndex``),
   N = 1,000 and 100,000, one BLAS thread (OMP/OPENBLAS/MKL_NUM_THREADS=1). Median and p95, ms.
2. Ingest: face events per second through real HTTP (``POST /v1/ingest/events``, device auth) into
   the in-thread server of the tests, on SQLite and on PostgreSQL (a scratch database created next to
   ``PCS_TEST_POSTGRES_URL``, dropped afterwards; skipped when unset). 1,000 people enrolled; each
   event has one face with a 4 KB crop; half the faces match a person (a sighting is updated), half
   are unknown (grouped). SQLite and PostgreSQL runs are interleaved (``--rounds``, each on a fresh
   database): median and spread. Traffic stays on loopback (127.0.0.1, no mDNS).

The load average is printed before and after.

Usage: ``python bench/bench_matching.py [--events 2000] [--batch 50] [--rounds 3]``
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import datetime as dt  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchlib import interleave, load_line, spread  # noqa: E402
from central.matching import EncodingIndex  # noqa: E402


def random_encodings(rng: np.random.Generator, n: int) -> np.ndarray:
    """``(n, 128)`` float64, N(0, 0.09) per component (norm ~1.0, distances between rows ~1.4)."""
    return rng.normal(0.0, 0.09, (n, 128))


def bench_matching(sizes: tuple[int, ...] = (1_000, 100_000), queries: int = 300) -> list[tuple[int, float, float]]:
    """``[(N, median ms, p95 ms)]`` of :meth:`EncodingIndex.nearest`."""
    rng = np.random.default_rng(0)
    out = []
    for n in sizes:
        index = EncodingIndex()
        index.replace(random_encodings(rng, n), [f"p{i}" for i in range(n)])
        probes = random_encodings(rng, queries)
        for q in probes[:10]:
            index.nearest(q)  # warm-up
        times = []
        for q in probes:
            start = time.perf_counter()
            index.nearest(q)
            times.append((time.perf_counter() - start) * 1000)
        out.append((n, float(np.median(times)), float(np.percentile(times, 95))))
    return out


def bench_ingest(database_url: str, events: int, batch: int) -> float:
    """Events per second through ``POST /v1/ingest/events`` on ``database_url``."""
    import cv2

    from central.matching import encoding_to_bytes
    from central.models import Person, PersonEncoding
    from tests.support.central_api import event, paired_camera, post_events
    from tests.support.central_server import CentralServer

    rng = np.random.default_rng(1)
    with tempfile.TemporaryDirectory() as tmp:
        server = CentralServer(database_url, data_dir=Path(tmp)).start()
        try:
            admin = server.create_first_admin()
            camera = paired_camera(server, admin)
            enrolled = random_encodings(rng, 1000)
            with server.state.sessions() as db:
                for i, enc in enumerate(enrolled):
                    person = Person(name=f"person {i}")
                    db.add(person)
                    db.flush()
                    db.add(PersonEncoding(person_id=person.id, encoding=encoding_to_bytes(enc), source="photo"))
                db.commit()
                server.state.faces.reload(db)
            crop = cv2.imencode(".jpg", rng.integers(0, 255, (64, 64, 3), dtype=np.uint8))[1].tobytes()
            t0 = dt.datetime(2026, 11, 22, tzinfo=dt.timezone.utc)
            items = []
            for i in range(events):
                enc = enrolled[i % 1000] + rng.normal(0, 0.005, 128) if i % 2 else random_encodings(rng, 1)[0] + 1.0
                items.append(event(enc, t0 + dt.timedelta(seconds=i), crop=crop))
            post_events(server, camera, items[:batch])  # warm-up (counted as stored, not timed)
            start = time.perf_counter()
            for i in range(batch, events, batch):
                r = post_events(server, camera, items[i:i + batch])
                assert r.status_code == 200 and all(x["status"] == "stored" for x in r.json()["results"]), r.text
            return (events - batch) / (time.perf_counter() - start)
        finally:
            server.stop()


def ingest_once(name: str, base: str | None, events: int, batch: int) -> float:
    """One ingest run on a fresh database (an SQLite file, or a scratch PostgreSQL database next to
    ``base``, dropped afterwards); events/s."""
    if base is None:
        tmp = tempfile.mkdtemp()
        return bench_ingest(f"sqlite:///{tmp}/bench.db", events, batch)
    import sqlalchemy

    scratch = f"pcs_bench_{uuid.uuid4().hex[:8]}"
    admin = sqlalchemy.create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sqlalchemy.text(f'CREATE DATABASE "{scratch}"'))
    try:
        return bench_ingest(base.rsplit("/", 1)[0] + "/" + scratch, events, batch)
    finally:
        with admin.connect() as conn:
            conn.execute(sqlalchemy.text(f'DROP DATABASE IF EXISTS "{scratch}" WITH (FORCE)'))
        admin.dispose()


def main() -> int:
    """Run the benchmarks and print a Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3, help="interleaved ingest rounds (SQLite, PostgreSQL, ...)")
    args = parser.parse_args()
    print(f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"numpy {np.__version__}; {dt.date.today()}")
    print(f"before: {load_line()}\n")
    print("| measure | median | p95 | target |\n| --- | --- | --- | --- |")
    for n, median, p95 in bench_matching():
        target = "≤ 5 ms" if n == 100_000 else ""
        print(f"| match one encoding against {n:,} enrolled (1 thread) | {median:.3f} ms | {p95:.3f} ms | {target} |")
    urls: dict[str, str | None] = {"SQLite": None}
    pg = os.environ.get("PCS_TEST_POSTGRES_URL")
    if pg:
        urls["PostgreSQL"] = pg
    rates = interleave({name: (lambda name=name, base=base: ingest_once(name, base, args.events, args.batch))
                        for name, base in urls.items()}, args.rounds)
    for name, values in rates.items():
        print(f"| ingest, {args.batch} events per request, 1 face + crop each, {name}, median (min–max) of "
              f"{args.rounds} interleaved rounds | {spread(values, '{:.0f}', ' events/s')} | | |")
    print(f"\nafter: {load_line()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
