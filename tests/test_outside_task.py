"""A task written outside the repository, as a user would: one module on their PYTHONPATH, named by its module
path, saving its weights under a name of its own and generating its data (no --data-dir). Search, the export the
search prints, evaluate, predict and the registry all run on it with no edit to the repository, and the commands
the search prints and records run as written."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import mlflow_client

ROOT = Path(__file__).resolve().parents[1]
MODULE = "outside_lab.blobs"


def write_outside_task(folder: Path) -> None:
    """The repository's own three-blob MLP task, rewritten into a package of the user's: another name, another
    export folder, weights in `weights.npz`, data it generates itself, an example input for serving."""
    source = (ROOT / "tests" / "synthetic_task.py").read_text()
    for old, new in [
        ('TASK = "tests.synthetic_task"', f'TASK = "{MODULE}"'),
        ('module_key="tests.synthetic_task"', f'module_key="{MODULE}", weight_file=WEIGHTS, bundled_data=True, '
                                              'serving_example=lambda: ("features", ["0,0,0,0,0,0,0,0"])'),
        ('WEIGHTS = "model.npz"', 'WEIGHTS = "weights.npz"'),
        ('name="synthetic"', 'name="outside"'),
        ('export_folder="synthetic-blobs"', 'export_folder="outside-blobs"'),
    ]:
        assert old in source, old
        source = source.replace(old, new)
    (folder / "outside_lab").mkdir()
    (folder / "outside_lab" / "__init__.py").write_text("")
    (folder / "outside_lab" / "blobs.py").write_text(source)


@pytest.mark.ray
def test_a_task_from_outside_the_repository_runs_end_to_end(tmp_path):
    write_outside_task(tmp_path)
    env = {**os.environ, "PYTHONPATH": f"{tmp_path}{os.pathsep}{ROOT}", "TUNELAB_CACHE": str(tmp_path / "cache")}

    def run(command: str) -> subprocess.CompletedProcess:
        done = subprocess.run(shlex.split(command), cwd=tmp_path, env=env, capture_output=True, text=True,
                              timeout=300)
        assert done.returncode == 0, f"{command}\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
        return done

    searched = run(f"python -m search --task {MODULE} --trials 3 --max-epochs 2 --refit 1 --name outside")
    printed = next(line for line in searched.stdout.splitlines() if line.startswith("export the winner: "))
    export = printed.removeprefix("export the winner: ")
    assert export == f"python -m experiments.summarize --tasks {MODULE}", export  # no data dir to name

    summary = json.loads((tmp_path / "ray_results" / "outside" / "search_summary.json").read_text())
    assert summary["command"].startswith(f"python -m search --task {MODULE} ")
    run(summary["command"] + " --dry-run")  # the recorded command, as written, is one the engine takes

    run(export)  # tests the winner on the data the task generates
    folder = tmp_path / "model_checkpoints" / "outside-blobs"
    best = json.loads((folder / "best.json").read_text())
    winner = folder / best["path"]
    assert (winner / "weights.npz").is_file() and best["test_accuracy"] is not None
    report = (folder / "report.md").read_text()
    assert f"python -m search --task {MODULE}" in report

    evaluated = run(f"{sys.executable} -m experiments.evaluate {winner}")
    assert f"{best['test_accuracy']:.4f}" in evaluated.stdout
    predicted = run(f"{sys.executable} -m experiments.predict {winner} 0,0,0,0,0,0,0,0")
    assert predicted.stdout.split()[0] in ("left", "middle", "right")

    run(f"{sys.executable} -m search.summarize --tasks {MODULE}")
    client = mlflow_client(tmp_path / "mlruns" / "mlflow.db")
    versions = client.search_model_versions("name = 'tunelab-outside'")
    assert len(versions) == 1 and versions[0].tags["tunelab.weights_sha256"]
