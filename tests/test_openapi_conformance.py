"""Both apps answer as their OpenAPI documents say: a bounded, deterministic schemathesis run over a
real socket (authenticated), failing on any 5xx, undocumented status code, wrong content type,
missing documented header or response body that violates its schema.

Deterministic: hypothesis is derandomized (a fixed seed derived from each test) with a fixed number
of examples per operation (:data:`EXAMPLES`), no example database. The live streams are left out
(they never end). The "valid request rejected" heuristic (schemathesis ST202) is not applied: some
rules span several fields (``zoom`` and ``roi`` together, a pair's min <= max) and OpenAPI cannot
state them; such requests get a documented 422 saying which rule.
"""

from __future__ import annotations

import threading
from pathlib import Path

import httpx
import pytest

schemathesis = pytest.importorskip("schemathesis")
from hypothesis import HealthCheck, Phase, given, settings  # noqa: E402
from schemathesis.checks import (  # noqa: E402
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.support.central_server import CentralServer  # noqa: E402
from tests.support.net import free_port, wait_until  # noqa: E402

EXAMPLES = 12
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_headers_conformance,
          response_schema_conformance]
STREAMS = {"/v1/camera/mjpeg", "/v1/events/stream"}


def run_schemathesis(base: str, headers: dict[str, str]) -> dict[str, list[str]]:
    """Every operation of ``base``'s /openapi.json, :data:`EXAMPLES` cases each; failures by operation."""
    schema = schemathesis.openapi.from_url(base + "/openapi.json")
    failures: dict[str, list[str]] = {}
    operations = 0
    for result in schema.get_all_operations():
        op = result.ok()
        if op.path in STREAMS:
            continue
        operations += 1
        name = f"{op.method.upper()} {op.path}"

        @settings(max_examples=EXAMPLES, derandomize=True, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck), phases=[Phase.explicit, Phase.generate])
        @given(op.as_strategy())
        def check(case) -> None:  # noqa: ANN001 - a schemathesis Case
            case.call_and_validate(base_url=base, headers=headers, checks=CHECKS)

        try:
            check()
        except BaseException as exc:  # noqa: BLE001 - schemathesis raises a FailureGroup (an ExceptionGroup)
            if isinstance(exc, KeyboardInterrupt):
                raise
            failures[name] = [line for line in str(exc).splitlines() if line.strip()][:12]
    assert operations >= 20, f"only {operations} operations in the document"
    return failures


def report(failures: dict[str, list[str]]) -> str:
    return "\n\n".join(f"{name}:\n  " + "\n  ".join(lines) for name, lines in failures.items())


def test_camera_matches_its_openapi_document(tmp_path: Path):
    import uvicorn

    from tests.support.camera_app import API_KEY, camera_app

    port = free_port()
    app = camera_app(tmp_path, port=port)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        wait_until(lambda: server.started, 30, 0.05, "camera started")
        failures = run_schemathesis(f"http://127.0.0.1:{port}", {"X-API-Key": API_KEY})
    finally:
        server.should_exit = True
        thread.join(15)
    assert not failures, report(failures)


def test_central_matches_its_openapi_document(tmp_path: Path):
    server = CentralServer(f"sqlite:///{tmp_path / 'central.db'}", data_dir=tmp_path / "data").start()
    try:
        token = server.create_first_admin()
        failures = run_schemathesis(server.base, {"Authorization": f"Bearer {token}"})
    finally:
        server.stop()
    assert not failures, report(failures)


def test_time_ranges_are_checked():
    """``since`` must not be after ``until`` (schemathesis found since=1.9&until=-477 answered 200)."""
    import tempfile

    tmp = Path(tempfile.mkdtemp())
    server = CentralServer(f"sqlite:///{tmp / 'central.db'}", data_dir=tmp / "data").start()
    try:
        token = server.create_first_admin()
        for path in ("/v1/observations", "/v1/sightings"):
            r = httpx.get(server.base + path, params={"since": "1.9", "until": "-477"},
                          headers={"Authorization": f"Bearer {token}"})
            assert 400 <= r.status_code < 500, (path, r.status_code, r.text)
    finally:
        server.stop()


def test_405_allow_lists_every_method_of_the_path(tmp_path: Path):
    """RFC 9110 §15.5.6: ``Allow`` on a 405 lists the methods the path supports (it said only GET)."""
    server = CentralServer(f"sqlite:///{tmp_path / 'central.db'}", data_dir=tmp_path / "data").start()
    try:
        r = httpx.put(server.base + "/v1/cameras/some-id")
        assert r.status_code == 405
        assert {m.strip() for m in r.headers["allow"].split(",")} >= {"GET", "PATCH", "DELETE"}
    finally:
        server.stop()
