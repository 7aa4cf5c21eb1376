"""The layers hold: imports only go down, Ray/Optuna/MLflow only under search/, and the engine imports light."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("search", "experiments", "models", "data_pipes")
ENGINE_ONLY = ("ray", "optuna", "mlflow")


def imported_modules(path: Path) -> set[str]:
    """Every module a file imports, at any depth (function-level imports count too)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def files_of(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


@pytest.mark.parametrize("package", PACKAGES)
def test_imports_only_go_down(package):
    forbidden = {
        "models": ("experiments", "search", "data_pipes"),
        "data_pipes": ("experiments", "search", "models"),
        "experiments": ("search",),
        "search": (),
    }[package]
    for path in files_of(package):
        for module in imported_modules(path):
            top = module.split(".")[0]
            assert top not in forbidden, f"{path.relative_to(ROOT)} imports {module}"
            if package != "search":
                assert top not in ENGINE_ONLY, f"{path.relative_to(ROOT)} imports {module}: only search/ may"


def test_importing_the_engine_loads_no_torch_or_transformers():
    code = "import sys, search.engine, search.imdb, search.cifar; print(sorted({m.split('.')[0] for m in sys.modules}))"
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    loaded = set(ast.literal_eval(done.stdout.strip()))
    assert not loaded & {"torch", "transformers", "ray", "optuna", "mlflow", "pandas"}, loaded


def test_experiments_subpackages_keep_to_their_job():
    """The core imports no workload and no export code; a workload imports the core and its own folder only (the
    generic code reaches it through the registry, `experiments.tasks`); the export side names no workload."""
    for path in files_of("experiments"):
        parts = path.relative_to(ROOT / "experiments").parts
        inside = [m for m in imported_modules(path) if m.startswith("experiments.")]
        if parts[0] == "core":
            assert all(m.startswith("experiments.core") for m in inside), (path, inside)
        elif parts[0] == "tasks" and len(parts) > 2:
            own = f"experiments.tasks.{parts[1]}"
            assert all(m.startswith(("experiments.core", own)) for m in inside), (path, inside)
        elif parts[0] == "reporting":
            workloads = [m for m in inside if m.startswith("experiments.tasks.")]
            assert not workloads, (path, workloads)
