"""The search platform end to end, as a user runs it: real Ray, real Optuna/ASHA, real MLflow sqlite."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from data_pipes import imdb as imdb_data
from experiments.imdb_trial import evaluate_split, load_checkpoint

pytestmark = pytest.mark.ray
ROOT = Path(__file__).resolve().parents[1]


def search_cmd(module: str, workdir: Path, imdb_dir: Path, *extra: str) -> list[str]:
    return [
        sys.executable, "-m", module, "--data-dir", str(imdb_dir), "--storage-path", str(workdir / "ray_results"),
        "--tracking-uri", f"sqlite:///{workdir / 'mlflow.db'}", "--verbose", "0", *extra,
    ]


def run(cmd: list[str], workdir: Path, env: dict[str, str], timeout: int = 400) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def env(tmp_path) -> dict[str, str]:
    return {**os.environ, "TUNELAB_CACHE": str(tmp_path / "cache"), "PYTHONPATH": str(ROOT)}


def mlflow_runs(db: Path) -> tuple[list, list]:
    from mlflow import MlflowClient

    client = MlflowClient(f"sqlite:///{db}")
    experiment = client.get_experiment_by_name("tunelab-imdb")
    runs = client.search_runs([experiment.experiment_id])
    parents = [r for r in runs if r.data.tags.get("tunelab.kind") == "search"]
    children = [r for r in runs if r.data.tags.get("tunelab.kind") == "trial"]
    return parents, children


def test_search_ranks_tracks_and_keeps_the_best_checkpoint(tmp_path, env, imdb_dir):
    cmd = search_cmd("search.imdb", tmp_path, imdb_dir, "--trials", "5", "--max-epochs", "3", "--name", "s1",
                     "--seed", "3")
    done = run(cmd, tmp_path, env)
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads((tmp_path / "ray_results" / "s1" / "search_summary.json").read_text())
    assert summary["trials"] == 5 and summary["errored"] == 0
    assert summary["stopped_early"] >= 1, "ASHA stopped no trial early"
    assert "stopped early by ASHA" in done.stdout and "mlflow ui --backend-store-uri" in done.stdout

    from mlflow import MlflowClient

    parents, children = mlflow_runs(tmp_path / "mlflow.db")
    assert len(parents) == 1 and len(children) == 5
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    for child in children:
        assert child.data.tags["mlflow.parentRunId"] == parents[0].info.run_id
        assert child.data.tags["tunelab.status"] in ("COMPLETED", "STOPPED_EARLY")
        assert child.data.params["fixed.max_len"] == str(imdb_data.MAX_LEN)
        history = client.get_metric_history(child.info.run_id, "val_accuracy")
        assert [m.step for m in history] == list(range(1, len(history) + 1))
        assert [a.path for a in client.list_artifacts(child.info.run_id)] == ["best_checkpoint"]
    assert parents[0].data.metrics["best_val_accuracy"] == pytest.approx(summary["best_val_accuracy"])

    os.environ["TUNELAB_CACHE"] = env["TUNELAB_CACHE"]
    data = imdb_data.load(str(imdb_dir))
    model, _, _ = load_checkpoint(summary["best_checkpoint"])
    recorded = json.loads((Path(summary["best_checkpoint"]) / "metrics.json").read_text())
    assert recorded["val_accuracy"] == pytest.approx(summary["best_val_accuracy"])
    assert evaluate_split(model, data.val, model.head.weight.device)["accuracy"] == pytest.approx(
        recorded["val_accuracy"]
    )


def test_a_failing_trial_is_marked_errored_and_the_search_goes_on(tmp_path, env, imdb_dir):
    env["TUNELAB_FAIL_MARKER"] = str(tmp_path / "failed-once")
    cmd = search_cmd("tests.faulty_search", tmp_path, imdb_dir, "--trials", "3", "--max-epochs", "1",
                     "--name", "f1")
    done = run(cmd, tmp_path, env)
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads((tmp_path / "ray_results" / "f1" / "search_summary.json").read_text())
    assert summary["errored"] == 1 and summary["completed"] == 2
    assert "injected failure" in done.stdout
    _, children = mlflow_runs(tmp_path / "mlflow.db")
    assert sorted(c.data.tags["tunelab.status"] for c in children) == ["COMPLETED", "COMPLETED", "ERROR"]


def test_interrupted_search_resumes_without_rerunning_or_duplicating(tmp_path, env, imdb_dir):
    cmd = search_cmd("search.imdb", tmp_path, imdb_dir, "--trials", "4", "--max-epochs", "2", "--name", "r1",
                     "--concurrency", "1", "--scheduler", "fifo")
    driver = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              start_new_session=True)
    db = tmp_path / "mlflow.db"
    deadline = time.time() + 300
    finished = []
    while time.time() < deadline and not finished:
        time.sleep(1)
        if db.exists():
            try:
                finished = [c for c in mlflow_runs(db)[1] if "tunelab.status" in c.data.tags]
            except Exception:  # the store is still being created
                finished = []
    os.killpg(driver.pid, signal.SIGKILL)
    driver.wait()
    assert finished, "no trial finished before the deadline"
    done_ids = {c.data.tags["tunelab.trial_id"] for c in finished}
    subprocess.run(["ray", "stop", "--force"], capture_output=True)

    resumed = run(search_cmd("search.imdb", tmp_path, imdb_dir, "--name", "r1", "--resume", "--trials", "4",
                             "--max-epochs", "2"), tmp_path, env)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resuming search r1" in resumed.stdout
    summary = json.loads((tmp_path / "ray_results" / "r1" / "search_summary.json").read_text())
    assert summary["trials"] == 4 and summary["completed"] == 4
    parents, children = mlflow_runs(db)
    assert len(parents) == 1
    assert len(children) == 4 and len({c.data.tags["tunelab.trial_id"] for c in children}) == 4
    from mlflow import MlflowClient

    client = MlflowClient(f"sqlite:///{db}")
    for child in children:
        steps = [m.step for m in client.get_metric_history(child.info.run_id, "epoch")]
        if child.data.tags["tunelab.trial_id"] in done_ids:
            assert steps == [1, 2], "a finished trial was run again"


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--trials", "0"], "--trials must be at least 1"),
        (["--gpus-per-trial", "4"], "--gpus-per-trial 4"),
        (["--address", "ray://127.0.0.1:1"], "cannot reach the Ray cluster"),
        (["--data-dir", "/nonexistent/imdb"], "data dir not found"),
    ],
)
def test_bad_input_is_one_line_and_non_zero(tmp_path, env, imdb_dir, extra, message):
    done = run(search_cmd("search.imdb", tmp_path, imdb_dir, *extra), tmp_path, env, timeout=60)
    assert done.returncode == 2
    assert message in done.stderr and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
