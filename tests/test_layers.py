"""The layers hold: imports only go down, no package's modules import each other in a circle, Ray/Optuna/MLflow
only under search/, and the engine imports light."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("search", "experiments", "models", "data_pipes")
ENGINE_ONLY = ("ray", "optuna", "mlflow")
ENTRY_POINTS = ("search.__main__", "search.imdb", "search.cifar")  # run as commands, imported by no module


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


def module_of(path: Path) -> str:
    """The dotted name a file is imported by: `search/engine.py` is `search.engine`, `search/__init__.py` `search`."""
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_names(path: Path) -> set[str]:
    """Every dotted name a file imports, at any depth: `from a import b` gives `a` and `a.b` (b may be a module)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found |= {node.module} | {f"{node.module}.{alias.name}" for alias in node.names}
    return found


def import_graph(package: str) -> dict[str, set[str]]:
    """Module → the package's modules it imports, top-level and function-level alike. Importing `a.b.c` runs
    `a/__init__.py` and `a/b/__init__.py` too, so each package on the way counts. The entry points are leaves:
    they import the engine, and no module imports them."""
    modules = {module_of(path): path for path in files_of(package)}
    graph = {}
    for module, path in modules.items():
        names = set() if module in ENTRY_POINTS else imported_names(path)
        prefixes = {".".join(name.split(".")[:i]) for name in names for i in range(1, name.count(".") + 2)}
        graph[module] = (prefixes & modules.keys()) - {module}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle as the modules along it, the first repeated at the end; None when there is none."""
    cleared: set[str] = set()  # modules whose imports, followed all the way, lead to no circle

    def walk(module: str, path: list[str]) -> list[str] | None:
        if module in path:
            return path[path.index(module):] + [module]
        if module in cleared:
            return None
        for imported in sorted(graph[module]):
            circle = walk(imported, [*path, module])
            if circle:
                return circle
        cleared.add(module)
        return None

    for module in sorted(graph):
        circle = walk(module, [])
        if circle:
            return circle
    return None


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


@pytest.mark.parametrize("package", ("search", "experiments"))
def test_no_modules_of_a_package_import_each_other_in_a_circle(package):
    """Each module reads on its own: what it imports is below it. A circle held together by imports inside
    functions counts too; imports of other packages (torch, Ray…) may stay inside functions, for speed."""
    circle = find_cycle(import_graph(package))
    assert circle is None, "import circle: " + " -> ".join(circle)


def test_the_circle_check_reads_function_level_imports_and_finds_a_circle(tmp_path):
    graph = {"search.engine": {"search.refit"}, "search.refit": {"search.grid"}, "search.grid": {"search.engine"},
             "search.cli": set()}
    assert find_cycle(graph) == ["search.engine", "search.refit", "search.grid", "search.engine"]
    module = tmp_path / "module.py"
    module.write_text("from search import engine\n\ndef f():\n    from search.grid import train_and_test\n")
    assert imported_names(module) == {"search", "search.engine", "search.grid", "search.grid.train_and_test"}


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
