"""The search platform end to end, as a user runs it: real Ray, real Optuna/ASHA, real MLflow sqlite."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from data_pipes import imdb as imdb_data
from experiments.tasks.imdb.trial import evaluate_split, load_checkpoint
from tests.conftest import mlflow_client

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
    client = mlflow_client(db)
    experiment = client.get_experiment_by_name("tunelab-imdb")
    runs = client.search_runs([experiment.experiment_id])
    parents = [r for r in runs if r.data.tags.get("tunelab.kind") == "search"]
    children = [r for r in runs if r.data.tags.get("tunelab.kind") == "trial"
                and r.data.tags.get("tunelab.phase") != "refit"]  # the search's trials; refits are asserted apart
    return parents, children


@pytest.fixture(scope="module")
def tiny_search(tmp_path_factory, imdb_dir) -> tuple[Path, subprocess.CompletedProcess, dict[str, str]]:
    """One real 5-trial IMDB search, shared by the tests that inspect its results, store and exports."""
    workdir = tmp_path_factory.mktemp("search")
    env = {**os.environ, "TUNELAB_CACHE": str(workdir / "cache"), "PYTHONPATH": str(ROOT)}
    # a rung every half epoch from the first, halving (not the task's one rung at 2 epochs keeping a third): on
    # tiny data every trial ends high, and only early scores tell them apart; one trial at a time makes the
    # rungs' order, and so ASHA's decisions, the same on every run
    cmd = search_cmd("search.imdb", workdir, imdb_dir, "--trials", "5", "--max-epochs", "3", "--name", "s1",
                     "--report-every", "0.5", "--grace-period", "0.5", "--reduction-factor", "2", "--refit", "1",
                     "--seed", "3", "--concurrency", "1")
    return workdir, run(cmd, workdir, env), env


def test_search_ranks_tracks_and_keeps_the_best_checkpoint(tiny_search, imdb_dir, monkeypatch):
    tmp_path, done, env = tiny_search
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads((tmp_path / "ray_results" / "s1" / "search_summary.json").read_text())
    assert summary["trials"] == 5 and summary["errored"] == 0
    assert summary["stopped_early"] >= 1, "ASHA stopped no trial early"
    assert "stopped early by ASHA" in done.stdout and "mlflow ui --backend-store-uri" in done.stdout

    parents, children = mlflow_runs(tmp_path / "mlflow.db")
    assert len(parents) == 1 and len(children) == 5
    client = mlflow_client(tmp_path / "mlflow.db")
    for child in children:
        assert child.data.tags["mlflow.parentRunId"] == parents[0].info.run_id
        assert child.data.tags["tunelab.status"] in ("COMPLETED", "STOPPED_EARLY")
        assert child.data.params["fixed.stored_len"] == str(imdb_data.STORED_LEN)
        assert child.data.params["max_len"] == "800"  # searched models read 800 tokens
        history = client.get_metric_history(child.info.run_id, "val_accuracy")
        assert [m.step for m in history] == list(range(1, len(history) + 1))
        assert [a.path for a in client.list_artifacts(child.info.run_id)] == ["best_checkpoint"]
    assert parents[0].data.metrics["best_val_accuracy"] == pytest.approx(summary["best_val_accuracy"])

    monkeypatch.setenv("TUNELAB_CACHE", env["TUNELAB_CACHE"])
    data = imdb_data.load(str(imdb_dir))
    model, _, _ = load_checkpoint(summary["best_checkpoint"])
    recorded = json.loads((Path(summary["best_checkpoint"]) / "metrics.json").read_text())
    assert recorded["val_accuracy"] == pytest.approx(summary["best_val_accuracy"])
    assert evaluate_split(model, data.val, model.head.weight.device)["accuracy"] == pytest.approx(
        recorded["val_accuracy"]
    )


@pytest.mark.mlflow_server
def test_mlflow_server_serves_the_search(tiny_search):
    """A real `mlflow server` on the store: parent, children and metric histories through the REST API."""
    import socket
    import urllib.request

    tmp_path, done, env = tiny_search
    assert done.returncode == 0
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server_env = {**env, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    server = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", f"sqlite:///{tmp_path / 'mlflow.db'}",
         "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
        env=server_env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}/api/2.0/mlflow"

    def call(path: str, body: dict | None = None) -> dict:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(base + path, data=data, headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())

    try:
        deadline = time.time() + 90
        while True:
            try:
                experiment = call("/experiments/get-by-name?experiment_name=tunelab-imdb")["experiment"]
                break
            except OSError:
                if time.time() > deadline or server.poll() is not None:
                    raise
                time.sleep(1)
        runs = call("/runs/search", {"experiment_ids": [experiment["experiment_id"]], "max_results": 100})["runs"]
        tags = [{t["key"]: t["value"] for t in r["data"].get("tags", [])} for r in runs]
        parents = [r for r, t in zip(runs, tags, strict=True) if t.get("tunelab.kind") == "search"]
        children = [r for r, t in zip(runs, tags, strict=True)
                    if t.get("mlflow.parentRunId") and t.get("tunelab.phase") != "refit"]
        refits = [r for r, t in zip(runs, tags, strict=True) if t.get("tunelab.phase") == "refit"]
        assert len(parents) == 1 and len(children) == 5 and len(refits) == 1  # the search's winner, trained again
        for child in children:
            run_id = child["info"]["run_id"]
            history = call(f"/metrics/get-history?run_id={run_id}&metric_key=val_accuracy")["metrics"]
            assert [m["step"] for m in history] == list(range(1, len(history) + 1))
    finally:
        os.killpg(server.pid, signal.SIGTERM)  # the whole group: gunicorn/uvicorn workers included
        server.wait(timeout=30)


def test_summarize_exports_the_search_winner(tiny_search, imdb_dir):
    from experiments import summarize

    tmp_path, done, env = tiny_search
    assert done.returncode == 0
    out = tmp_path / "model_checkpoints"
    os.environ["TUNELAB_CACHE"] = env["TUNELAB_CACHE"]
    assert summarize.main(["--outputs", str(tmp_path / "none"), "--ray-results", str(tmp_path / "ray_results"),
                           "--out", str(out), "--tasks", "imdb", "--imdb-data-dir", str(imdb_dir)]) == 0
    folder = out / "assignment2-1-2"
    best = json.loads((folder / "best.json").read_text())
    assert best["name"] == "search_s1" and (folder / "search_s1" / "model.safetensors").is_file()
    report = (folder / "report.md").read_text()
    assert "## Searches" in report and "s1_optuna_slice.png" in report  # Optuna's own plots of the study
    assert (folder / "s1_optuna_slice.png").read_bytes().startswith(b"\x89PNG")


def test_cifar_search_runs_on_the_same_engine(tmp_path, env, cifar_dir):
    cmd = [sys.executable, "-m", "search.cifar", "--data-dir", str(cifar_dir), "--storage-path",
           str(tmp_path / "ray_results"), "--tracking-uri", f"sqlite:///{tmp_path / 'mlflow.db'}", "--verbose", "0",
           "--trials", "3", "--max-epochs", "1", "--model", "both", "--refit", "0", "--name", "c1"]
    done = run(cmd, tmp_path, env)
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads((tmp_path / "ray_results" / "c1" / "search_summary.json").read_text())
    assert summary["trials"] == 3 and summary["errored"] == 0
    client = mlflow_client(tmp_path / "mlflow.db")
    experiment = client.get_experiment_by_name("tunelab-cifar")
    children = [r for r in client.search_runs([experiment.experiment_id])
                if r.data.tags.get("tunelab.kind") == "trial" and r.data.tags.get("tunelab.phase") == "search"]
    assert len(children) == 3
    for child in children:
        assert {"params", "macs_per_image", "img_per_s", "val_accuracy"} <= set(child.data.metrics)


def test_a_failing_trial_is_marked_errored_and_the_search_goes_on(tmp_path, env, imdb_dir):
    env["TUNELAB_FAIL_MARKER"] = str(tmp_path / "failed-once")
    cmd = search_cmd("tests.faulty_search", tmp_path, imdb_dir, "--trials", "3", "--max-epochs", "1",
                     "--name", "f1", "--report-every", "1")  # one report per trial: ASHA stops none of them
    done = run(cmd, tmp_path, env)
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads((tmp_path / "ray_results" / "f1" / "search_summary.json").read_text())
    assert summary["errored"] == 1 and summary["completed"] == 2
    assert "injected failure" in done.stdout
    _, children = mlflow_runs(tmp_path / "mlflow.db")
    assert sorted(c.data.tags["tunelab.status"] for c in children) == ["COMPLETED", "COMPLETED", "ERROR"]


@pytest.mark.slow
def test_ctrl_c_leaves_an_unfinished_search_that_resumes(tmp_path, env, imdb_dir):
    cmd = search_cmd("search.imdb", tmp_path, imdb_dir, "--trials", "3", "--max-epochs", "2", "--name", "c1",
                     "--concurrency", "1", "--scheduler", "fifo", "--refit", "0",
                     "--report-every", "1")  # the refit after a search: the synthetic task's (test_engine.py)
    driver = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              start_new_session=True)
    first_result = None
    deadline = time.time() + 300
    while time.time() < deadline and first_result is None:
        time.sleep(0.5)
        first_result = next((tmp_path / "ray_results" / "c1").glob("run_trial_*/result.json"), None)
    os.killpg(driver.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
    out, err = driver.communicate(timeout=120)
    assert first_result is not None, err[-3000:]
    assert driver.returncode == 130, err[-3000:]
    assert "was interrupted" in out and "--resume --name c1" in out
    summary = json.loads((tmp_path / "ray_results" / "c1" / "search_summary.json").read_text())
    assert summary["finished"] is False
    # FIFO stops nothing early: a trial that did not complete was cut short by Ctrl-C, and must say so
    assert {r["status"] for r in summary["rows"]} <= {"COMPLETED", "INTERRUPTED"}
    from experiments.reporting.candidates import load_searches

    assert load_searches(tmp_path / "ray_results", "imdb") == [], "an unfinished search must not be exported"
    parents, _ = mlflow_runs(tmp_path / "mlflow.db")
    assert [p.info.status for p in parents] == ["KILLED"]

    other = run(search_cmd("search.imdb", tmp_path, imdb_dir, "--name", "c1", "--resume", "--trials", "9"),
                tmp_path, env, timeout=60)  # a resumed search keeps its own settings: say so, don't ignore the flag
    assert other.returncode == 2 and "was started with trials=3" in other.stderr and "Traceback" not in other.stderr
    restored_copies = set(Path(tempfile.gettempdir()).glob("checkpoint_tmp_*"))  # Tune restores into these
    resumed = run(search_cmd("search.imdb", tmp_path, imdb_dir, "--name", "c1", "--resume"), tmp_path, env)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    summary = json.loads((tmp_path / "ray_results" / "c1" / "search_summary.json").read_text())
    assert summary["finished"] is True and summary["completed"] == 3
    assert "--trials 3" in summary["command"] and "--resume" in summary["resumed_with"]  # the command as first typed
    assert set(Path(tempfile.gettempdir()).glob("checkpoint_tmp_*")) <= restored_copies, "restored copies left"
    parents, children = mlflow_runs(tmp_path / "mlflow.db")
    assert [p.info.status for p in parents] == ["FINISHED"] and len(children) == 3


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--trials", "0"], "--trials must be at least 1"),
        (["--startup-trials", "0"], "--startup-trials must be at least 1"),
        (["--gpus-per-trial", "4"], "--gpus-per-trial 4"),
        (["--address", "ray://127.0.0.1:1"], "cannot reach the Ray cluster"),
        (["--data-dir", "/nonexistent/imdb"], "data dir not found"),
        (["--resume", "--name", "never-ran"], "no search to resume"),
    ],
)
def test_bad_input_is_one_line_and_non_zero(tmp_path, env, imdb_dir, extra, message):
    done = run(search_cmd("search.imdb", tmp_path, imdb_dir, *extra), tmp_path, env, timeout=60)
    assert done.returncode == 2
    assert message in done.stderr and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


@pytest.mark.slow
def test_search_efficiency_benchmark_runs_on_imdb_and_never_mixes_in_old_searches(tmp_path, env, imdb_dir):
    out = tmp_path / "bench"
    cmd = [sys.executable, "-m", "search.benchmarks.search_efficiency", "--data-dir", str(imdb_dir),
           "--subset", "120", "--trials", "2", "--max-epochs", "2", "--epoch-budget", "4", "--seeds", "0",
           "--strategies", "optuna+asha", "random+fifo", "--out", str(out)]
    done = run(cmd, tmp_path, env, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "- random+fifo: val at " in done.stdout and "### Conclusion" in done.stdout
    rows = (out / "search_efficiency.csv").read_text().splitlines()  # the IMDB record keeps its name
    assert len(rows) == 3 and rows[0].startswith("strategy,seed,search,trials,trial_epochs")
    assert (out / "search_efficiency.png").stat().st_size > 0 and (out / "search_efficiency.md").is_file()
    fifo = json.loads((out / "ray" / "eff-random-fifo-s0" / "search_summary.json").read_text())
    assert fifo["trial_epochs"] == 4 and fifo["completed"] == 2  # FIFO runs every trial to --max-epochs
    # the search's own command, not the benchmark's argv behind `python -m search.imdb`
    assert fifo["command"].startswith("python -m search.imdb --trials 2") and "--scheduler fifo" in fifo["command"]

    again = run(cmd, tmp_path, env, timeout=120)  # same folder, other settings would silently resume old searches
    assert again.returncode == 2 and "holds an earlier run" in again.stderr and "Traceback" not in again.stderr
    other = run([*cmd, "--resume", "--trials", "3"], tmp_path, env, timeout=120)
    assert other.returncode == 2 and "ran with trials=2, not 3" in other.stderr
    resumed = run([*cmd, "--resume"], tmp_path, env, timeout=300)  # finished searches are read back, not re-run
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert (out / "search_efficiency.csv").read_text().splitlines() == rows
