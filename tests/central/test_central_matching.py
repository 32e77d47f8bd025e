"""The face-encoding index (central.matching.EncodingIndex) and the registry's unknown-face bounds:
exact search against brute force, the approximate (faiss IVF-Flat) mode's recall on clustered
encodings, incremental changes against a rebuild, readers running while a writer changes the
index, the newest-K representatives of unknown groups, retention pruning on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import threading

import numpy as np
import pytest
from sqlalchemy import func, select

from central.matching import EncodingIndex
from central.models import FaceObservation, Person, PersonEncoding, UnknownGroup
from central.people import FaceRegistry, UnknownFaces
from tests.support.central_api import api, event, post_events

SIGMA_CENTRE, SIGMA_SAMPLE = 0.046, 0.025  # dlib-like: same person ~0.4 apart, different people ~0.85


@pytest.fixture()
def server(make_central_server):
    """A central server with its first admin (``server.admin``) and a paired camera (``server.camera``)."""
    return make_central_server(sighting_gap_s=60)


def clustered(rng: np.random.Generator, identities: int, per: int) -> tuple[np.ndarray, np.ndarray, list[str]]:
    centres = rng.normal(0, SIGMA_CENTRE, (identities, 128))
    idx = np.repeat(np.arange(identities), per)
    return centres[idx] + rng.normal(0, SIGMA_SAMPLE, (len(idx), 128)), centres, [f"p{i}" for i in idx]


def brute(matrix: np.ndarray, labels: list[str], query: np.ndarray) -> tuple[str, float, float]:
    """(label, distance, gap to the runner-up) by float64 brute force."""
    d = np.sqrt(((matrix - query) ** 2).sum(axis=1))
    order = np.argsort(d)
    return labels[order[0]], float(d[order[0]]), float(d[order[1]] - d[order[0]]) if len(d) > 1 else 1.0


def test_exact_search_equals_brute_force_on_random_data():
    rng = np.random.default_rng(3)
    matrix = rng.normal(0, 0.09, (3000, 128))
    labels = [f"l{i % 300}" for i in range(3000)]
    index = EncodingIndex(0.6, ann_threshold=0)
    index.replace(matrix, labels)
    for _ in range(100):
        query = rng.normal(0, 0.09, 128) if rng.random() < 0.5 else matrix[rng.integers(3000)] + rng.normal(0, 0.03, 128)
        label, distance, gap = brute(matrix, labels, query)
        found = index.nearest(query)
        assert found.distance == pytest.approx(distance, abs=1e-5)
        if gap > 1e-5:  # float32 storage: only near-ties may pick the other row
            assert found.nearest == label
        assert found.label == (label if distance <= 0.6 else None)
    assert not index.approximate


def test_approximate_mode_recall_on_clustered_encodings():
    rng = np.random.default_rng(4)
    matrix, centres, labels = clustered(rng, 1500, 4)  # 6,000 rows
    index = EncodingIndex(0.6, ann_threshold=2000)
    index.replace(matrix, labels)
    assert index.approximate and len(index) == 6000
    known = centres[rng.integers(0, 1500, 300)] + rng.normal(0, SIGMA_SAMPLE, (300, 128))
    strangers = rng.normal(0, SIGMA_CENTRE, (100, 128)) + rng.normal(0, SIGMA_SAMPLE, (100, 128))
    hits = agree = matched = 0
    for query in np.concatenate([known, strangers]):
        label, distance, _ = brute(matrix, labels, query)
        found = index.nearest(query)
        agree += (found.label is None) == (distance > 0.6) and (found.label is None or found.label == label)
        if distance <= 0.6:
            matched += 1
            hits += found.nearest == label
            assert found.distance >= distance - 1e-5  # an approximate answer is never nearer than the truth
    assert matched >= 290
    assert hits / matched >= 0.99, (hits, matched)
    assert agree / 400 >= 0.98, agree


@pytest.mark.parametrize("ann_threshold", [0, 500])
def test_incremental_changes_equal_a_rebuild(ann_threshold):
    rng = np.random.default_rng(5)
    rows: dict[int, tuple[str, np.ndarray]] = {}
    index = EncodingIndex(0.6, ann_threshold=ann_threshold)
    matrix, _, labels = clustered(rng, 300, 3)
    for key, enc, label in zip(index.add(matrix, labels).tolist(), matrix, labels):
        rows[key] = (label, enc)
    for step in range(600):  # growth past the capacity, compactions, merges
        op = rng.random()
        if op < 0.5:
            enc = rng.normal(0, SIGMA_CENTRE, 128)
            label = f"n{step}"
            (key,) = index.add(enc[None], [label]).tolist()
            rows[key] = (label, enc)
        elif op < 0.8:
            key = list(rows)[rng.integers(len(rows))]
            index.remove_keys([key])
            del rows[key]
        elif op < 0.9:
            victim = rows[list(rows)[rng.integers(len(rows))]][0]
            index.remove([victim])
            rows = {k: v for k, v in rows.items() if v[0] != victim}
        else:
            a, b = (rows[list(rows)[rng.integers(len(rows))]][0] for _ in range(2))
            index.relabel(a, b)
            rows = {k: (b if v[0] == a else v[0], v[1]) for k, v in rows.items()}
    labels = [v[0] for v in rows.values()]
    matrix = np.array([v[1] for v in rows.values()])
    rebuilt = EncodingIndex(0.6, ann_threshold=0)
    rebuilt.replace(matrix, labels)
    assert len(index) == len(rebuilt) == len(rows)
    assert index.labels() == rebuilt.labels() == set(labels)
    for label in set(labels):
        assert index.count(label) == rebuilt.count(label) == labels.count(label)
    for enc in matrix[:: max(1, len(matrix) // 150)]:
        query = enc + rng.normal(0, 0.01, 128)
        got, want = index.nearest(query), rebuilt.nearest(query)
        assert got.nearest == want.nearest and got.distance == pytest.approx(want.distance, abs=1e-6)


@pytest.mark.parametrize("ann_threshold", [0, 1000])
def test_readers_never_see_a_wrong_label_while_a_writer_changes_the_index(ann_threshold):
    rng = np.random.default_rng(6)
    fixed = rng.normal(0, 0.3, (400, 128))  # far apart (~4.8): each query has one right answer
    index = EncodingIndex(0.6, ann_threshold=ann_threshold)
    index.replace(fixed, [f"fixed{i}" for i in range(400)])
    done = threading.Event()
    errors: list[BaseException] = []
    wrong: list[tuple[str, str | None]] = []
    queries = [0]

    def reader(seed: int) -> None:
        r = np.random.default_rng(seed)
        try:
            while not done.is_set():
                i = int(r.integers(400))
                found = index.nearest(fixed[i] + r.normal(0, 0.005, 128))
                if found.label != f"fixed{i}":
                    wrong.append((f"fixed{i}", found.label))
                queries[0] += 1
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    def writer() -> None:
        r = np.random.default_rng(99)
        keys: list[int] = []
        try:
            for step in range(3000):  # grows past 1024 rows, compacts, crosses the ANN threshold both ways
                if r.random() < 0.6 or not keys:
                    keys += index.add(r.normal(0, 0.3, (3, 128)) + 10.0, [f"tmp{step}"] * 3).tolist()
                elif r.random() < 0.5:
                    index.remove_keys([keys.pop(int(r.integers(len(keys))))])
                else:
                    index.relabel(f"tmp{step - 1}", f"tmp{step - 2}")
                if step % 500 == 499:
                    index.remove([f"tmp{s}" for s in range(step)])
                    keys.clear()
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)
        finally:
            done.set()

    threads = [threading.Thread(target=reader, args=(s,)) for s in range(3)] + [threading.Thread(target=writer)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not errors, errors
    assert not wrong, wrong[:5]
    assert queries[0] > 100


def test_unknown_groups_keep_their_newest_faces():
    rng = np.random.default_rng(8)
    faces = UnknownFaces(0.6, per_group=3)
    a = rng.normal(0, 0.1, (5, 128))
    faces.add(a, ["g1"] * 5)
    faces.add(a[:2] + 5.0, ["g2"] * 2)
    assert faces.count("g1") == 3 and faces.count("g2") == 2 and len(faces) == 5
    assert faces.nearest(a[0]).distance > 0.5  # the two oldest of g1 were dropped
    assert faces.nearest(a[4]).label == "g1" and faces.nearest(a[4]).distance == pytest.approx(0, abs=1e-6)
    faces.remove(["g1"])
    assert len(faces) == 2 and faces.count("g1") == 0


def test_pruning_erases_old_unknown_faces_only(server):  # noqa: F811 - SQLite and PostgreSQL
    rng = np.random.default_rng(9)
    faces: FaceRegistry = server.state.faces
    faces.unknown_retention_days = 30
    now = dt.datetime.now(dt.timezone.utc)
    old, recent = now - dt.timedelta(days=40), now - dt.timedelta(days=1)
    known, stranger_old, stranger_new = (rng.normal(0, 0.09, 128) + shift for shift in (0.0, 1.0, -1.0))
    person = api(server, "POST", "/v1/people", 201, json={"name": "Ann"})
    with server.state.sessions() as db:
        db.add(PersonEncoding(person_id=person["id"], encoding=known.tobytes(), source="photo"))
        db.commit()
        faces.reload(db)
    items = [event(known + 0.001, old), event(stranger_old, old), event(stranger_old + 0.001, old),
             event(stranger_new, recent)]
    assert all(r["status"] == "stored" for r in post_events(server, server.camera, items).json()["results"])
    with server.state.sessions() as db:
        assert db.scalar(select(func.count()).select_from(UnknownGroup)) == 2
        assert faces.unknown.nearest(stranger_old).label is not None
        counts = faces.prune_unknown(db)
        assert counts == {"observations": 2, "frames": 0, "groups": 1}
        left = db.execute(select(FaceObservation.person_id, FaceObservation.unknown_group_id,
                                 FaceObservation.captured_at)).all()
        assert len(left) == 2
        assert {p for p, _, _ in left} == {person["id"], None}  # the matched old face stays
        assert db.scalar(select(func.count()).select_from(PersonEncoding)) == 1
        assert db.scalar(select(func.count()).select_from(Person)) == 1
        assert db.scalar(select(func.count()).select_from(UnknownGroup)) == 1
        # the index forgot the pruned group; the recent one is still matched
        assert faces.unknown.nearest(stranger_old).label is None
        assert faces.unknown.nearest(stranger_new).label is not None
        assert faces.people.nearest(known).label == person["id"]
        assert faces.prune_unknown(db) == {"observations": 0, "frames": 0, "groups": 0}


def test_registry_changes_equal_a_reload(server):  # noqa: F811 - SQLite and PostgreSQL
    rng = np.random.default_rng(10)
    faces: FaceRegistry = server.state.faces
    base = [rng.normal(0, 0.09, 128) + shift for shift in (0.0, 1.0, -1.0, 2.0)]
    a = api(server, "POST", "/v1/people", 201, json={"name": "A"})
    b = api(server, "POST", "/v1/people", 201, json={"name": "B"})
    items = [event(e + rng.normal(0, 0.005, 128), dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=i))
             for i, e in enumerate(base * 2)]
    post_events(server, server.camera, items)
    groups = api(server, "GET", "/v1/unknown-groups")
    assert len(groups) == 4
    with server.state.sessions() as db:
        gid = {g: faces.unknown.nearest(e).label for g, e in enumerate(base)}
        obs = db.scalars(select(FaceObservation.id).where(FaceObservation.unknown_group_id == gid[2])).all()
    api(server, "POST", f"/v1/unknown-groups/{gid[0]}/assign", json={"person_id": a["id"]})
    api(server, "POST", f"/v1/unknown-groups/{gid[1]}/assign", json={"person_id": b["id"]})
    api(server, "POST", f"/v1/people/{a['id']}/faces/from-observations", json={"observation_ids": obs[:1]})
    api(server, "POST", f"/v1/people/{a['id']}/merge", json={"other_id": b["id"]})
    c = api(server, "POST", "/v1/people", 201, json={"name": "C"})
    api(server, "POST", f"/v1/unknown-groups/{gid[3]}/assign", json={"person_id": c["id"]})
    api(server, "DELETE", f"/v1/people/{c['id']}")
    fresh = FaceRegistry(faces.media, faces.tolerance)
    with server.state.sessions() as db:
        fresh.reload(db)
    assert len(fresh.people) == len(faces.people) == 5 and len(fresh.unknown) == len(faces.unknown) == 1
    for e in base:
        for live, rebuilt in ((faces.people, fresh.people), (faces.unknown, fresh.unknown)):
            got, want = live.nearest(e), rebuilt.nearest(e)
            assert got.label == want.label and got.distance == pytest.approx(want.distance, abs=1e-6)
    assert faces.people.nearest(base[1]).label == a["id"]  # B merged into A
    assert faces.people.nearest(base[3]).label is None  # C erased
