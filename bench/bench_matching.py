"""Face matching at 10k–1M enrolled encodings, and ingest throughput with many stored unknown faces.

1. **Matching** (``--sizes``, default 10,000, 100,000 and 1,000,000 rows), one BLAS/OpenMP thread,
   three indexes built on the same data and queried with the same queries, interleaved per query:

   - ``float64 exact (before)``: the index as it was, an ``(N, 128)`` float64 matrix, one
     matrix-vector product per query, ``add`` = ``np.vstack`` (a copy of the matrix);
   - ``float32 exact``: :class:`central.matching.EncodingIndex` with the approximate search off;
   - ``IVF-Flat``: the same class forced to its faiss ``IndexIVFFlat`` mode (``ann_threshold=1``),
     scanning one cell in ``PROBE_DIVISOR`` (the default); with ``--probe-divisors 12,8,6`` the same
     trained index is also queried at those shares of its cells (``IVF-Flat 1/8`` ...), interleaved
     with the others, so the recall/time trade-off is measured on one index and one set of queries.

   For each: query p50/p95 (ms), memory of the index (MB), time to build it from an ``(N, 128)``
   matrix (the start-up rebuild after the database read), and one change: add one row, remove one
   row (p50/p95 over ``--changes`` changes). IVF-Flat's recall@1 against float64 exact search (the
   same nearest row, or one at the same distance within 1e-6) and the agreement of the tolerance
   decision (match / no match at 0.6, and the same label when matched).

   Data: a Gaussian mixture with the spread of real dlib encodings. Each identity is a centre
   ``N(μ, σc²·I)``, each encoding of it the centre plus ``N(0, σs²·I)``; ``σs = 0.025`` makes two
   encodings of one person ``√(2·128)·σs ≈ 0.40`` apart and ``σc = 0.046`` makes two people's
   ``√(2·128·(σc²+σs²)) ≈ 0.85`` apart, dlib's published behaviour (same person 0.3–0.5, different
   people 0.7–1.0, threshold 0.6; dlib's face_recognition.py example and the LFW figures behind it).
   Every identity has 4 enrolled encodings (photos from several angles). Queries: 70 % new samples
   of enrolled identities, 30 % strangers (new centres). Isotropic noise is harder for an
   approximate index than real encodings, whose variance sits in fewer directions.

2. **Ingest** (``--unknown``, default 0, 100,000 and 300,000 stored unknown faces): events/s
   through real HTTP (``POST /v1/ingest/events``) into the tests' in-thread server on SQLite, 50
   events per request, one face + crop each, half matching one of 1,000 enrolled people, half new
   strangers. The unknown faces are seeded in the database first (groups of 10, captured in the last
   hour) and loaded by the registry. With ``--before PATH`` (a checkout of the code before, e.g.
   ``git worktree add /tmp/before main``) each size runs the old and the new code, each in its own
   process, interleaved ``--rounds`` times (old new old new ...).

The load average is printed before and after.

Usage: ``python bench/bench_matching.py [--sizes 10000,100000,1000000] [--queries 200]
[--unknown 0,100000,300000] [--before /tmp/before] [--rounds 2] [--parts matching,ingest]``
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import datetime as dt  # noqa: E402
import platform  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

ROOT = Path(os.environ.get("BENCH_TREE", Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(ROOT))
sys.path.insert(1, str(Path(__file__).resolve().parent))

from benchlib import load_line, spread  # noqa: E402

#: spread of real dlib encodings (module doc): per-component std of identity centres and of one
#: identity's encodings
SIGMA_CENTRE, SIGMA_SAMPLE = 0.046, 0.025
ENCODINGS_PER_IDENTITY = 4
STRANGER_SHARE = 0.3
TOLERANCE = 0.6


class Mixture:
    """Identities of the Gaussian mixture of the module doc; ``(·, 128)`` float32 draws."""

    def __init__(self, seed: int = 0) -> None:
        self.rng = np.random.default_rng(seed)
        self.mean = self.rng.normal(0.0, 0.05, 128).astype(np.float32)

    def centres(self, n: int) -> np.ndarray:
        """``(n, 128)`` float32 new identity centres."""
        return self.mean + self.rng.normal(0.0, SIGMA_CENTRE, (n, 128)).astype(np.float32)

    def samples(self, centres: np.ndarray) -> np.ndarray:
        """One new encoding per centre, ``(len(centres), 128)`` float32."""
        return centres + self.rng.normal(0.0, SIGMA_SAMPLE, centres.shape).astype(np.float32)

    def enrolled(self, n: int) -> tuple[np.ndarray, np.ndarray, list[str]]:
        """``n`` enrolled encodings, ``ENCODINGS_PER_IDENTITY`` per identity: (encodings, centres,
        labels)."""
        centres = self.centres(-(-n // ENCODINGS_PER_IDENTITY))
        idx = np.arange(n) // ENCODINGS_PER_IDENTITY
        out = np.empty((n, 128), np.float32)
        for start in range(0, n, 100_000):  # bounded temporaries
            out[start:start + 100_000] = self.samples(centres[idx[start:start + 100_000]])
        return out, centres, [f"p{i}" for i in idx]

    def queries(self, centres: np.ndarray, n: int) -> np.ndarray:
        """``n`` queries: new samples of enrolled identities and ``STRANGER_SHARE`` strangers."""
        strangers = int(n * STRANGER_SHARE)
        known = self.samples(centres[self.rng.integers(0, len(centres), n - strangers)])
        return np.concatenate([known, self.samples(self.centres(strangers))])[self.rng.permutation(n)]


class Float64Exact:
    """The index as it was before float32 storage (kept here as the baseline): an ``(N, 128)``
    float64 matrix, squared norms, labels; ``add`` and ``remove`` rebuild the arrays."""

    def __init__(self) -> None:
        self.matrix = np.empty((0, 128))
        self.sq = np.empty(0)
        self.labels = np.empty(0, dtype=object)

    def replace(self, encodings: np.ndarray, labels: list[str]) -> None:
        self._publish(np.ascontiguousarray(encodings, dtype=np.float64), np.array(labels, dtype=object))

    def _publish(self, matrix: np.ndarray, labels: np.ndarray) -> None:
        self.matrix, self.sq, self.labels = matrix, np.einsum("ij,ij->i", matrix, matrix), labels

    def add(self, encodings: np.ndarray, labels: list[str]) -> None:
        self._publish(np.vstack([self.matrix, encodings]), np.concatenate([self.labels, np.array(labels, dtype=object)]))

    def remove_row(self, row: int) -> None:
        keep = np.ones(len(self.labels), bool)
        keep[row] = False
        self._publish(self.matrix[keep], self.labels[keep])

    def nearest(self, query: np.ndarray) -> tuple[int, float]:
        q = np.asarray(query, np.float64)
        best = int(np.argmin(self.sq - 2.0 * (self.matrix @ q)))
        return best, float(np.linalg.norm(self.matrix[best] - q))

    def memory_bytes(self) -> int:
        return self.matrix.nbytes + self.sq.nbytes + self.labels.nbytes


def _ms(values: list[float]) -> tuple[float, float]:
    return float(np.median(values)) * 1000, float(np.percentile(values, 95)) * 1000


def bench_size(n: int, queries: int, changes: int, divisors: tuple[int, ...] = ()) -> list[str]:
    """Markdown rows of the three indexes at ``n`` enrolled encodings (plus one row per extra IVF
    probe divisor in ``divisors``: query time and recall only, the index is the same)."""
    from central.matching import EncodingIndex

    mix = Mixture(n)
    data, centres, labels = mix.enrolled(n)
    probes = mix.queries(centres, queries).astype(np.float64)
    rows = []
    indexes: dict[str, object] = {}
    build: dict[str, float] = {}
    for name, make in (("float64 exact (before)", Float64Exact),
                       ("float32 exact", lambda: EncodingIndex(TOLERANCE, ann_threshold=0)),
                       ("IVF-Flat", lambda: EncodingIndex(TOLERANCE, ann_threshold=1))):
        index = make()
        start = time.perf_counter()
        index.replace(data, labels)
        build[name] = time.perf_counter() - start
        indexes[name] = index
    f64: Float64Exact = indexes["float64 exact (before)"]  # type: ignore[assignment]
    ivf = indexes["IVF-Flat"]
    ann = ivf._view.ann  # type: ignore[attr-defined]
    default_probe = ann.nprobe
    # (name, index, nprobe or None): the extra divisors query the same trained faiss index
    runs = [(name, index, default_probe if index is ivf else None) for name, index in indexes.items()]
    for d in divisors:
        runs.append((f"IVF-Flat 1/{d}", ivf, min(ann.nlist, max(8, ann.nlist // d))))
    times: dict[str, list[float]] = {name: [] for name, _, _ in runs}
    truth, found = [], {name: [] for name, _, _ in runs if name != "float64 exact (before)"}
    for q in probes[:5]:
        for _, index, nprobe in runs:
            if nprobe:
                ann.nprobe = nprobe
            index.nearest(q)  # warm-up
    for q in probes:
        for name, index, nprobe in runs:
            if nprobe:
                ann.nprobe = nprobe
            start = time.perf_counter()
            result = index.nearest(q)
            times[name].append(time.perf_counter() - start)
            if name == "float64 exact (before)":
                truth.append((labels[result[0]], result[1]))
            else:
                found[name].append((result.nearest, result.distance))
    agreement = {}
    for name, got in found.items():
        hits = [gl == tl or abs(gd - td) <= 1e-6 for (tl, td), (gl, gd) in zip(truth, got)]
        within = [h for h, (_, td) in zip(hits, truth) if td <= TOLERANCE]
        same = f"{sum(hits) / len(hits):.3f} / {sum(within) / max(1, len(within)):.3f}"
        decided = sum(1 for (tl, td), (gl, gd) in zip(truth, got)
                      if (td <= TOLERANCE) == (gd <= TOLERANCE) and (td > TOLERANCE or gl == tl))
        agreement[name] = (same, decided / len(truth))
    matched = sum(1 for _, d in truth if d <= TOLERANCE) / len(truth)
    ann.nprobe = default_probe
    # one change: add one row, remove one row (the old index: a copy each time)
    extra = mix.samples(centres[:changes]).astype(np.float32)
    change: dict[str, tuple[list[float], list[float]]] = {}
    for name, index in indexes.items():
        adds, removes = [], []
        count = changes if name != "float64 exact (before)" or n < 500_000 else min(changes, 20)
        for i in range(count):
            start = time.perf_counter()
            keys = index.add(extra[i:i + 1], [f"new{i}"])
            adds.append(time.perf_counter() - start)
            start = time.perf_counter()
            if name == "float64 exact (before)":
                index.remove_row(len(index.labels) - 1)
            else:
                index.remove_keys(keys)
            removes.append(time.perf_counter() - start)
        change[name] = (adds, removes)
    for name, index in indexes.items():
        p50, p95 = _ms(times[name])
        a50, a95 = _ms(change[name][0])
        r50, r95 = _ms(change[name][1])
        recall, decision = agreement.get(name, ("1 / 1", 1.0))
        label = f"{name} 1/{ivf.probe_divisor} (nprobe {default_probe} of {ann.nlist})" if index is ivf else name
        rows.append(f"| {n:,} | {label} | {p50:.3f} | {p95:.3f} | {index.memory_bytes() / 2**20:.0f} | "
                    f"{build[name]:.2f} | {a50:.3f} / {a95:.3f} | {r50:.3f} / {r95:.3f} | "
                    f"{recall} | {decision:.3f} |")
    for name, _, nprobe in runs[len(indexes):]:
        p50, p95 = _ms(times[name])
        recall, decision = agreement[name]
        rows.append(f"| {n:,} | {name} (nprobe {nprobe}) | {p50:.3f} | {p95:.3f} | (same) | (same) | | | "
                    f"{recall} | {decision:.3f} |")
    rows.append(f"| {n:,} | (queries: {len(probes)}, {matched:.0%} within {TOLERANCE} by exact search) | | | | | | | | |")
    del indexes, f64, data
    return rows


# --- ingest with stored unknown faces ----------------------------------------------------------------


def seed_unknown(server, count: int, mix: Mixture) -> None:
    """Insert ``count`` unknown faces (groups of 10, captured in the last hour) straight into the
    database, then reload the registry's indexes."""
    from sqlalchemy import insert, select

    from central.models import Camera, FaceObservation, UnknownGroup, new_id

    now = dt.datetime.now(dt.timezone.utc)
    with server.state.sessions() as db:
        camera_id = db.scalars(select(Camera.id)).first()
        for start in range(0, count, 20_000):
            k = min(20_000, count - start)
            groups = [new_id() for _ in range(-(-k // 10))]
            centres = mix.centres(len(groups))
            encs = mix.samples(np.repeat(centres, 10, axis=0)[:k]).astype(np.float64)
            db.execute(insert(UnknownGroup), [{"id": g, "created_at": now} for g in groups])
            db.execute(insert(FaceObservation), [
                {"id": new_id(), "camera_id": camera_id, "item_id": new_id(), "track_id": "seed",
                 "captured_at": now - dt.timedelta(seconds=(start + i) % 3600), "box": [0, 0, 10, 10],
                 "encoding": encs[i].tobytes(), "unknown_group_id": groups[i // 10]} for i in range(k)])
            db.commit()
        server.state.faces.reload(db)


def ingest_rate(unknown: int, events: int, batch: int) -> float:
    """Events/s through ``POST /v1/ingest/events`` on a fresh SQLite database with ``unknown`` stored
    unknown faces (the code under ``ROOT``)."""
    import cv2

    from central.matching import encoding_to_bytes
    from central.models import Person, PersonEncoding
    from tests.support.central_api import event, paired_camera, post_events
    from tests.support.central_server import CentralServer

    mix = Mixture(1)
    with tempfile.TemporaryDirectory() as tmp:
        server = CentralServer(f"sqlite:///{tmp}/bench.db", data_dir=Path(tmp)).start()
        try:
            admin = server.create_first_admin()
            camera = paired_camera(server, admin)
            enrolled, centres, _ = mix.enrolled(1000)
            with server.state.sessions() as db:
                for i, enc in enumerate(enrolled):
                    person = Person(name=f"person {i}")
                    db.add(person)
                    db.flush()
                    db.add(PersonEncoding(person_id=person.id, encoding=encoding_to_bytes(enc), source="photo"))
                db.commit()
            seed_unknown(server, unknown, mix)
            crop = cv2.imencode(".jpg", mix.rng.integers(0, 255, (64, 64, 3), dtype=np.uint8))[1].tobytes()
            t0 = dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=30)
            items = []
            for i in range(events):
                enc = mix.samples(centres[i % len(centres)][None])[0] if i % 2 else mix.samples(mix.centres(1))[0]
                items.append(event(enc.astype(np.float64), t0 + dt.timedelta(seconds=i * 0.1), crop=crop))
            post_events(server, camera, items[:batch])  # warm-up (stored, not timed)
            start = time.perf_counter()
            for i in range(batch, events, batch):
                r = post_events(server, camera, items[i:i + batch])
                assert r.status_code == 200 and all(x["status"] == "stored" for x in r.json()["results"]), r.text
            return (events - batch) / (time.perf_counter() - start)
        finally:
            server.stop()


def ingest_in_process(tree: Path, unknown: int, events: int, batch: int) -> float:
    """:func:`ingest_rate` of the code in ``tree``, in a new process."""
    env = dict(os.environ, BENCH_TREE=str(tree), PYTHONPATH=str(tree))
    out = subprocess.run([sys.executable, __file__, "--ingest-one", str(unknown), "--events", str(events),
                          "--batch", str(batch)], env=env, cwd=tree, capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def reload_time(n: int) -> tuple[float, float]:
    """``(s, MB)``: :meth:`FaceRegistry.reload` of ``n`` enrolled encodings from a fresh SQLite
    database (the start-up build: database read in chunks + vectorised conversion + index), and the
    size of the database file."""
    from sqlalchemy import insert

    from central.db import make_engine, session_factory, upgrade
    from central.ingest import MediaStore
    from central.models import Person, PersonEncoding
    from central.people import FaceRegistry

    mix = Mixture(2)
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/reload.db"
        upgrade(url)
        engine = make_engine(url)
        sessions = session_factory(engine)
        data, _, labels = mix.enrolled(n)
        with sessions() as db:
            people = sorted(set(labels))
            db.execute(insert(Person), [{"id": f"{p:0>32}", "name": p} for p in people])
            for start in range(0, n, 50_000):
                db.execute(insert(PersonEncoding), [
                    {"person_id": f"{labels[i]:0>32}", "encoding": data[i].astype(np.float64).tobytes(), "source": "photo"}
                    for i in range(start, min(n, start + 50_000))])
            db.commit()
        del data
        registry = FaceRegistry(MediaStore(Path(tmp) / "media"))
        with sessions() as db:
            start = time.perf_counter()
            registry.reload(db)
            took = time.perf_counter() - start
        assert len(registry.people) == n
        engine.dispose()
        return took, Path(f"{tmp}/reload.db").stat().st_size / 2**20


def main() -> int:
    """Run the benchmarks and print Markdown tables."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10000,100000,1000000", help="enrolled encodings, comma-separated")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--changes", type=int, default=100, help="single-row adds and removes timed")
    parser.add_argument("--probe-divisors", default="",
                        help="extra IVF probe divisors queried on the same index, comma-separated (e.g. 12,8,6)")
    parser.add_argument("--unknown", default="0,100000,300000", help="stored unknown faces, comma-separated")
    parser.add_argument("--before", type=Path, help="checkout of the code before, for the ingest comparison")
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=2, help="interleaved ingest rounds (before, after, ...)")
    parser.add_argument("--parts", default="matching,reload,ingest")
    parser.add_argument("--reload-sizes", default="100000,1000000", help="enrolled encodings for the start-up reload")
    parser.add_argument("--ingest-one", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.ingest_one is not None:
        print(ingest_rate(args.ingest_one, args.events, args.batch))
        return 0
    import faiss

    print(f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"numpy {np.__version__}, faiss {faiss.__version__}; {dt.date.today()}")
    print(f"before: {load_line()}\n")
    parts = args.parts.split(",")
    if "matching" in parts:
        print("| N | index | query p50 ms | p95 ms | memory MB | build s | add one p50 / p95 ms | "
              "remove one p50 / p95 ms | recall@1 all / matched queries | tolerance decision agrees |")
        print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
        for n in (int(s) for s in args.sizes.split(",")):
            divisors = tuple(int(d) for d in args.probe_divisors.split(",") if d)
            for row in bench_size(n, args.queries, args.changes, divisors):
                print(row, flush=True)
        print("\nExact float32 search is memory-bound, linear in N: 10 ms p95 is reached near "
              "N = 10 ms / (p95 / N) of the largest size above.")
        print(f"\nafter matching: {load_line()}\n")
    if "reload" in parts:
        print("| enrolled encodings | start-up rebuild from SQLite (FaceRegistry.reload) | database file |\n| --- | --- | --- |")
        for n in (int(s) for s in args.reload_sizes.split(",")):
            took, size = reload_time(n)
            print(f"| {n:,} | {took:.1f} s | {size:.0f} MB |", flush=True)
        print(f"\nafter reload: {load_line()}\n")
    if "ingest" in parts:
        trees = {"before": args.before, "after": ROOT} if args.before else {"after": ROOT}
        print("| stored unknown faces | code | ingest events/s, median (min–max) |\n| --- | --- | --- |")
        for unknown in (int(s) for s in args.unknown.split(",")):
            rates: dict[str, list[float]] = {name: [] for name in trees}
            for _ in range(args.rounds):
                for name, tree in trees.items():
                    rates[name].append(ingest_in_process(tree, unknown, args.events, args.batch))
            for name, values in rates.items():
                print(f"| {unknown:,} | {name} | {spread(values, '{:.0f}')} |", flush=True)
    print(f"\nafter: {load_line()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
