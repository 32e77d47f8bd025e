"""How the HTTP layers are built: route modules do not import each other, camera routes raise domain
errors (never HTTPException), and the one error boundary answers them with the documented bodies."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from pcs_common.service_errors import (
    MAX_DETAIL, Conflict, InsufficientStorage, InvalidRequest, NotFound, OperationFailed, ServiceError,
    TooManyRequests, Unavailable, install_error_boundary, status_of,
)

ROOT = Path(__file__).resolve().parents[1]
ROUTE_MODULES = sorted([*ROOT.glob("pi_camera_service/api/*_routes.py"), ROOT / "pi_camera_service/api/routes.py",
                        *ROOT.glob("central/api/*_routes.py")])


def _imports(path: Path) -> set[str]:
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module)
            out.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
    return out


@pytest.mark.parametrize("path", ROUTE_MODULES, ids=lambda p: str(p.relative_to(ROOT)))
def test_route_modules_do_not_import_each_other(path: Path):
    assert len(ROUTE_MODULES) >= 12
    others = {".".join(p.relative_to(ROOT).with_suffix("").parts) for p in ROUTE_MODULES if p != path}
    assert not _imports(path) & others, f"{path.name} imports a route module; move shared code to a service module"


@pytest.mark.parametrize("path", [p for p in ROUTE_MODULES if p.parts[-3] == "pi_camera_service"
                                  and p.name != "auth_routes.py"], ids=lambda p: p.name)
def test_camera_routes_raise_domain_errors_not_http_exceptions(path: Path):
    # 401/403 come from the auth module's helpers; everything else is a pcs_common.service_errors class
    assert not {m for m in _imports(path) if m.endswith(".HTTPException")}, f"{path.name} imports HTTPException"


class Legacy(ValueError):
    def __init__(self, errors: list[dict]) -> None:
        self.errors = errors
        super().__init__("; ".join(e["message"] for e in errors))


@pytest.fixture()
def client():
    app = FastAPI()
    install_error_boundary(app, {Legacy: InvalidRequest, KeyError: NotFound})
    raised: dict[str, Exception] = {
        "invalid": InvalidRequest("width=640 is larger than the main stream; allowed 16..320"),
        "not-found": NotFound("no still 'x'"),
        "conflict": Conflict("stills are disabled"),
        "too-many": TooManyRequests("too many wrong passwords; retry in 7 s", 7),
        "unavailable": Unavailable("no frame yet"),
        "disk": InsufficientStorage("the disk is full"),
        "failed": OperationFailed("x" * (MAX_DETAIL + 10)),
        "legacy": Legacy([{"control": "brightness", "value": float("nan"), "message": "brightness is NaN"}] * 60),
        "keyerror": KeyError("k"),
    }

    @app.get("/{name}")
    def fail(name: str) -> None:
        raise raised[name]

    return TestClient(app)


@pytest.mark.parametrize(("name", "status", "retry_after"), [
    ("invalid", 422, None), ("not-found", 404, None), ("conflict", 409, None), ("too-many", 429, "7"),
    ("unavailable", 503, "1"), ("disk", 507, None), ("failed", 500, None), ("keyerror", 404, None),
])
def test_the_boundary_maps_each_class_to_its_status(client, name, status, retry_after):
    r = client.get(f"/{name}")
    assert r.status_code == status and r.headers.get("Retry-After") == retry_after
    assert set(r.json()) == {"detail"} and r.json()["detail"]


def test_long_details_are_cut_and_foreign_errors_keep_their_list(client):
    assert len(client.get("/failed").json()["detail"]) == MAX_DETAIL + 1  # the cut is marked with "…"
    body = client.get("/legacy").json()
    assert len(body["errors"]) == 50 and body["errors"][0] == {
        "control": "brightness", "value": "NaN", "message": "brightness is NaN"}


def test_a_subclass_takes_the_status_of_its_nearest_class():
    class StillMissing(NotFound):
        pass

    assert status_of(StillMissing("x")) == 404 and status_of(ServiceError("x")) == 500
