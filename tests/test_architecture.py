"""The dependency rule between the packages: neither service imports the other; code both need lives
in ``pcs_common``, which both import and which imports neither.

* ``pi_camera_service`` (the camera) must never import ``central``: on a Pi only the camera is used,
  and ``central`` pulls in SQLAlchemy, Alembic and the rest of the server.
* ``central`` imports nothing from ``pi_camera_service``.
* ``pcs_common`` (with its face library ``pcs_common.faces``) imports neither.

Sources are parsed with :mod:`ast`, so every ``import x``, ``from x import y``, import inside a
function (lazy imports), ``importlib.import_module("x")`` and ``__import__("x")`` with a literal name
counts, wherever it stands (``if TYPE_CHECKING:`` blocks too).
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("pi_camera_service", "central", "pcs_common")

#: which other top-level packages each package may not import
FORBIDDEN = {
    "pi_camera_service": {"central"},
    "central": {"pi_camera_service"},
    "pcs_common": {"pi_camera_service", "central"},
}

#: Imports of the camera package by the central server, as ``(source file, imported module)``: none.
#: Never add an entry: move what both services need into ``pcs_common`` instead.
KNOWN_CENTRAL_TO_CAMERA = frozenset({
})


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_modules(source: str, module: str, is_package: bool) -> set[str]:
    """The absolute names of every module that ``source`` (the module ``module``) imports.

    Relative imports are resolved against ``module`` (``is_package``: the source is an
    ``__init__.py``); ``from a import b`` yields ``a`` (``b`` may be a name, not a module, and either
    way it lies inside ``a``'s top-level package). String literals passed to
    ``importlib.import_module`` / ``__import__`` count as imports.
    """
    names: set[str] = set()
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                names.add(".".join(base + ([node.module] if node.module else [])))
            else:
                names.add(node.module or "")
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant) \
                and isinstance(node.args[0].value, str):
            func = node.func
            called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
            if called in ("import_module", "__import__"):
                names.add(node.args[0].value)
    return names


def cross_imports() -> set[tuple[str, str]]:
    """Every ``(source file relative to the checkout, imported module)`` that breaks :data:`FORBIDDEN`."""
    found = set()
    for package in PACKAGES:
        files = sorted((ROOT / package).rglob("*.py"))
        assert files, f"no sources found under {package}/"
        for path in files:
            module = _module_name(path)
            for name in imported_modules(path.read_text(encoding="utf-8"), module, path.name == "__init__.py"):
                if name.partition(".")[0] in FORBIDDEN[package]:
                    found.add((path.relative_to(ROOT).as_posix(), name))
    return found


def test_no_new_imports_between_the_services():
    """No cross import outside the known, shrinking list; the list has no stale entries either."""
    found = cross_imports()
    new = sorted(found - KNOWN_CENTRAL_TO_CAMERA)
    assert not new, ("imports across the services (move the shared code to pcs_common): "
                     + ", ".join(f"{path} imports {name}" for path, name in new))
    gone = sorted(KNOWN_CENTRAL_TO_CAMERA - found)
    assert not gone, f"no longer imported, remove from KNOWN_CENTRAL_TO_CAMERA: {gone}"


def test_central_imports_nothing_of_the_camera():
    """No module of ``central`` imports ``pi_camera_service``, in any form, anywhere in the file."""
    found = sorted((path, name) for path, name in cross_imports() if path.startswith("central/"))
    assert not found, found


def test_shared_package_imports_neither_service():
    """``pcs_common`` and its face library import neither service, statically and when loaded: a fresh
    interpreter importing every ``pcs_common`` module has no ``pi_camera_service`` or ``central``
    module afterwards."""
    assert not {(p, n) for p, n in cross_imports() if p.startswith("pcs_common/")}
    modules = sorted(_module_name(p) for p in (ROOT / "pcs_common").rglob("*.py"))
    assert "pcs_common.faces.detector" in modules and "pcs_common.faces.registry" in modules
    code = ("import importlib, sys\n"
            f"for m in {modules!r}:\n    importlib.import_module(m)\n"
            "print(sorted(m for m in sys.modules if m.partition('.')[0] in ('central', 'pi_camera_service')))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def test_old_import_paths_of_the_shared_code_still_work():
    """Code moved to ``pcs_common`` keeps its old import paths (the same objects)."""
    from pcs_common import errors, offline_docs
    from pcs_common.faces import detector, frames, haar, models, registry, results
    from pi_camera_service import frames as camera_frames
    from pi_camera_service.api import errors as old_errors, offline_docs as old_docs
    from pi_camera_service.detection import detector as old_detector, models as old_models, registry as old_registry

    assert (old_errors, old_docs, old_models, old_registry) == (errors, offline_docs, models, registry)
    assert old_detector.FaceDetector is detector.FaceDetector and old_detector.HaarFaceDetector is haar.HaarFaceDetector
    assert old_detector.DetectionResult is results.DetectionResult
    assert (camera_frames.Frame, camera_frames.AnalysisFrame) == (frames.Frame, frames.AnalysisFrame)
    assert offline_docs.ASSETS_DIR.joinpath("swagger-ui", "swagger-ui-bundle.js").is_file()
    assert offline_docs.FAVICON.is_file()


@pytest.mark.parametrize(("source", "module", "is_package", "expected"), [
    ("import central.mqtt", "pi_camera_service.x", False, {"central.mqtt"}),
    ("from central import mqtt", "pi_camera_service.x", False, {"central"}),
    ("def f():\n    if True:\n        from central.mqtt import QOS\n", "pi_camera_service.x", False, {"central.mqtt"}),
    ("import importlib\nimportlib.import_module('central.db')", "pcs_common.x", False, {"importlib", "central.db"}),
    ("__import__('pi_camera_service')", "central.x", False, {"pi_camera_service"}),
    ("from . import auth", "pi_camera_service.api.routes", False, {"pi_camera_service.api"}),
    ("from ..auth import hash_password", "pi_camera_service.api.routes", False, {"pi_camera_service.auth"}),
    ("from .mqtt import QOS", "pcs_common", True, {"pcs_common.mqtt"}),
])
def test_imported_modules_sees_every_form_of_import(source, module, is_package, expected):
    """The checker finds top-level, ``from``, lazy, dynamic and relative imports."""
    assert imported_modules(source, module, is_package) == expected


def test_camera_mqtt_loads_without_central(tmp_path):
    """Importing the camera's Home Assistant module and validating its MQTT settings (good and bad URL)
    loads no ``central`` module (a fresh interpreter; the camera installed alone on a Pi has no central
    server)."""
    code = (
        "import sys\n"
        "import pi_camera_service.ha_mqtt\n"
        "from pi_camera_service.config import ConfigError, load_settings\n"
        "load_settings(mqtt_url='mqtts://u:p@broker.lan', mqtt_topic_prefix='/home/cams/')\n"
        "try:\n    load_settings(mqtt_url='http://broker.lan')\nexcept ConfigError:\n    pass\n"
        "else:\n    raise SystemExit('http:// accepted')\n"
        "print(sorted(m for m in sys.modules if m == 'central' or m.startswith('central.')))")
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


#: the most lines a production module may have (the aim is ~600: a module a newcomer reads in one go)
MAX_MODULE_LINES = 650
#: Today's modules over :data:`MAX_MODULE_LINES`, being split by concern. This list must only shrink:
#: remove an entry once its module is split; never add one.
KNOWN_LONG_MODULES: frozenset[str] = frozenset()


def module_lengths() -> dict[str, int]:
    """Lines of every production module (``.py`` under :data:`PACKAGES`), by path relative to the checkout."""
    return {path.relative_to(ROOT).as_posix(): len(path.read_text(encoding="utf-8").splitlines())
            for package in PACKAGES for path in sorted((ROOT / package).rglob("*.py"))}


def test_no_production_module_is_over_the_line_limit():
    """No module over :data:`MAX_MODULE_LINES` lines outside the known, shrinking list, which has no
    stale entries (a module split, or back under the limit) either."""
    lengths = module_lengths()
    assert len(lengths) > 50, f"only {len(lengths)} modules found under {PACKAGES}"
    long = {path: n for path, n in lengths.items() if n > MAX_MODULE_LINES}
    new = sorted(f"{path} ({long[path]} lines)" for path in set(long) - KNOWN_LONG_MODULES)
    assert not new, f"over {MAX_MODULE_LINES} lines (split the module by concern): {', '.join(new)}"
    stale = sorted(KNOWN_LONG_MODULES - set(long))
    assert not stale, f"no longer over {MAX_MODULE_LINES} lines, remove from KNOWN_LONG_MODULES: {stale}"
