"""A task declares its own metric and direction: a regression selected on validation RMSE (lower is better), from
`tests/synthetic_regression.py`, through search → refit → summarize → evaluate → predict → registry.

Every check compares the platform's pick with the lowest RMSE *and* makes sure the highest would be another pick,
so a step that ignored the direction fails here.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from experiments import evaluate, predict, runner
from experiments.core.errors import UsageError
from experiments.tasks import get_task
from tests.conftest import mlflow_client
from tests.synthetic_regression import RMSE

ROOT = Path(__file__).resolve().parents[1]
TASK_KEY = "tests.synthetic_regression"


def search_cmd(workdir: Path, task: str, *extra: str) -> list[str]:
    return [sys.executable, "-m", "search", "--task", task, "--storage-path", str(workdir / "ray_results"),
            "--tracking-uri", f"sqlite:///{workdir / 'mlflow.db'}", "--verbose", "0", *extra]


def history(row: dict) -> list[float]:
    """A trial's validation RMSE at each report, from Tune's own result file."""
    lines = (Path(row["path"]) / "result.json").read_text().splitlines()
    return [json.loads(line)["val_rmse"] for line in lines if line.strip()]


def trial_index(row: dict) -> int:
    return int(Path(row["path"]).name.removeprefix("run_trial_").split("_")[1])


def asha_statuses(rows: list[dict], mode: str) -> list[str]:
    """What ASHA (grace 1 epoch, reduction factor 2, max 3 epochs: rungs at 1 and 2) decides for trials run one
    at a time in this order, with `mode` as the direction: a trial stops at a rung when its score there is worse
    than the median of the scores the earlier trials recorded at that rung."""
    sign = 1 if mode == "max" else -1
    recorded: dict[int, list[float]] = {1: [], 2: []}
    statuses = []
    for row in rows:
        status = "COMPLETED"
        for rung, value in zip((1, 2), history(row)[:2], strict=False):
            earlier = list(recorded[rung])
            recorded[rung].append(sign * value)  # recorded also when it stops the trial
            if earlier and sign * value < np.nanpercentile(earlier, 50):
                status = "STOPPED_EARLY"
                break
        statuses.append(status)
    return statuses


@pytest.fixture(scope="module")
def regression(tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    """One 6-trial Optuna + ASHA search on the regression, one trial at a time, then a refit of its 2 best."""
    workdir = tmp_path_factory.mktemp("regression")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TUNELAB_CACHE": str(workdir / "cache")}
    cmd = search_cmd(workdir, TASK_KEY, "--trials", "6", "--max-epochs", "3", "--concurrency", "1", "--name", "reg",
                     "--seed", "2", "--report-every", "1", "--grace-period", "1", "--refit", "2")
    return workdir, subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=400)


@pytest.mark.ray
def test_the_search_ranks_stops_and_refits_by_the_lowest_rmse(regression):
    workdir, done = regression
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads((workdir / "ray_results" / "reg" / "search_summary.json").read_text())
    rows = summary["rows"]
    assert summary["errored"] == 0 and len(rows) == 6
    scores = [r["best_val_rmse"] for r in rows]
    assert scores == sorted(scores) and len(set(scores)) > 1, "rows are ranked lowest RMSE first"
    assert summary["best_val_rmse"] == min(scores) and summary["best_trial"] == rows[0]["trial_id"]
    for row in rows:  # each trial's best report is its lowest, not its highest
        curve = history(row)
        assert row["best_val_rmse"] == pytest.approx(min(curve))
        last = json.loads((Path(row["path"]) / "result.json").read_text().splitlines()[-1])
        assert last["best_val_rmse"] == pytest.approx(min(curve))
    best_kept = json.loads((Path(summary["best_checkpoint"]) / "metrics.json").read_text())
    assert best_kept["val_rmse"] == pytest.approx(min(scores)), "the kept checkpoint is the lowest RMSE"

    in_order = sorted(rows, key=trial_index)  # ASHA stopped the trials with the higher RMSE at each rung
    expected = asha_statuses(in_order, "min")
    assert [r["status"] for r in in_order] == expected and "STOPPED_EARLY" in expected
    assert asha_statuses(in_order, "max") != expected, "the seed must make the direction matter"

    import optuna

    study = optuna.load_study(study_name=summary["optuna_study"], storage=summary["optuna_storage"])
    assert study.direction == optuna.study.StudyDirection.MINIMIZE

    refits = summary["refit"]  # the two lowest, trained again; the lowest refit first
    assert {r["search_trial"] for r in refits} == {rows[0]["trial_id"], rows[1]["trial_id"]}
    assert [r["val_rmse"] for r in refits] == sorted(r["val_rmse"] for r in refits)
    assert all(r["test_rmse"] > 0 for r in refits)

    client = mlflow_client(workdir / "mlflow.db")
    experiment = client.get_experiment_by_name("tunelab-synreg")
    runs = client.search_runs([experiment.experiment_id])
    assert {r.info.status for r in runs} == {"FINISHED"}
    parent = next(r for r in runs if r.data.tags.get("tunelab.kind") == "search")
    assert parent.data.metrics["best_val_rmse"] == pytest.approx(min(scores))
    for child in (r for r in runs if r.data.tags.get("tunelab.phase") == "search"):
        curve = [m.value for m in client.get_metric_history(child.info.run_id, "val_rmse")]
        assert child.data.metrics["best_val_rmse"] == pytest.approx(min(curve))

    from search.warm_start import source_configs  # a warm start from this search begins with its lowest

    assert source_configs(get_task(TASK_KEY), "search:reg", str(workdir / "ray_results"))[0] == rows[0]["params"]


@pytest.mark.ray
def test_summarize_evaluate_predict_and_register_pick_the_lowest_rmse(regression, tmp_path, capsys):
    """A poor one-config run is exported and registered first; the search's refit, with a lower RMSE, must then
    replace it as best.json and take the champion alias."""
    import mlflow

    from search import summarize as search_summarize

    workdir, done = regression
    assert done.returncode == 0, done.stderr[-3000:]
    task = get_task(TASK_KEY)
    outputs = tmp_path / "outputs"
    assert runner.main(task, ["--config", "curve_tiny", "--epochs", "1", "--output-dir", str(outputs / "synreg")],
                       module="experiments.runner") == 0
    poor = json.loads((outputs / "synreg" / "curve_tiny" / "run.json").read_text())
    uri = f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}"

    def summarize(ray_results: Path) -> dict:
        assert search_summarize.main(["--outputs", str(outputs), "--ray-results", str(ray_results), "--out",
                                      str(tmp_path / "out"), "--tasks", TASK_KEY, "--data-dir", f"{TASK_KEY}=gen",
                                      "--tracking-uri", uri]) == 0
        return json.loads((tmp_path / "out" / "synthetic-curve" / "best.json").read_text())

    assert summarize(tmp_path / "none")["name"] == "curve_tiny"
    best = summarize(workdir / "ray_results")
    refit = json.loads((workdir / "ray_results" / "reg" / "search_summary.json").read_text())["refit"][0]
    assert best["name"] == "search_reg" and best["val_rmse"] == pytest.approx(refit["val_rmse"])
    assert refit["val_rmse"] < poor["val_rmse"], "the search's refit is the lower RMSE, the poor run the higher"
    assert "alias @champion -> version 2" in capsys.readouterr().out

    folder = tmp_path / "out" / "synthetic-curve"
    report = (folder / "report.md").read_text()
    assert "| val RMSE | test RMSE |" in report and "Best by validation RMSE: `search_reg`" in report
    comparison = next(line for line in report.splitlines() if line.startswith("- Best by validation"))
    assert "the ≤ 0.5 RMSE floor" in comparison and "≤ 0.15 RMSE aim" in comparison and "%" not in comparison
    assert not (folder / "search_reg_ensemble").exists(), "a regression declares no probabilities: no ensembles"

    assert evaluate.main([str(folder / "search_reg")]) == 0
    recorded = json.loads((folder / "search_reg" / "metrics.json").read_text())["test_rmse"]
    assert f"test_rmse={recorded:.4f}" in capsys.readouterr().out
    assert predict.main([str(folder / "search_reg"), "-1.5", "2.0"]) == 0  # a leading "-" is an input, no "--"
    lines = [line.split("\t") for line in capsys.readouterr().out.splitlines()]
    expected = task.predict(folder / "search_reg", ["-1.5", "2.0"])
    assert [(float(value), shown) for value, shown in lines] == [
        (pytest.approx(y, rel=1e-3, abs=1e-4), x) for y, x in zip(expected, ["-1.5", "2.0"], strict=True)]

    client = mlflow_client(Path(uri.removeprefix("sqlite:///")))
    versions = client.search_model_versions("name = 'tunelab-synreg'")
    exports = {str(v.version): v.tags["tunelab.export"] for v in versions}
    assert exports == {"1": "curve_tiny", "2": "search_reg"}  # the lower RMSE took the alias from the higher
    assert str(client.get_model_version_by_alias("tunelab-synreg", "champion").version) == "2"
    mlflow.set_tracking_uri(uri)
    import pandas as pd

    served = mlflow.pyfunc.load_model("models:/tunelab-synreg@champion").predict(pd.DataFrame({"x": ["-1.5", "2.0"]}))
    assert served["prediction"].tolist() == pytest.approx(expected, abs=1e-5)


@pytest.mark.ray
def test_a_metric_the_trials_never_report_is_one_line_and_leaves_no_run_open(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TUNELAB_CACHE": str(tmp_path / "cache")}
    done = subprocess.run(search_cmd(tmp_path, "tests.misreported_task", "--trials", "2", "--max-epochs", "2",
                                     "--name", "mis"), cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines() == [
        "error: task tests.misreported_task is selected on val_mae, but its trials report no val_mae (they report: "
        "epoch, epoch_seconds, ex_per_s, train_loss, val_loss, val_rmse): report it from the trial's evaluation, "
        "or declare a reported one as the task's metric"]
    client = mlflow_client(tmp_path / "mlflow.db")
    runs = client.search_runs([client.get_experiment_by_name("tunelab-misreported").experiment_id])
    assert runs and "RUNNING" not in {r.info.status for r in runs}


def test_the_one_config_runner_names_the_missing_metric_and_the_task(tmp_path):
    with pytest.raises(UsageError, match=r"^task tests\.misreported_task is selected on val_mae, but its trials "
                                         r"report no val_mae \(they report: epoch, .*val_rmse\)"):
        runner.main(get_task("tests.misreported_task"), ["--output-dir", str(tmp_path)], module="experiments.runner")


def test_the_metric_orders_formats_and_judges_in_its_direction():
    from experiments.core.task import ACCURACY

    assert RMSE.better(0.3, 0.4) and not RMSE.better(0.4, 0.3) and RMSE.better(0.4, None)
    assert ACCURACY.better(0.9, 0.8) and not ACCURACY.better(0.8, 0.9)
    rows = [{"v": 0.5}, {"v": None}, {"v": 0.2}, {"v": 0.9}]
    assert [r["v"] for r in sorted(rows, key=lambda r: RMSE.sort_key(r["v"]))] == [0.2, 0.5, 0.9, None]
    assert [r["v"] for r in sorted(rows, key=lambda r: ACCURACY.sort_key(r["v"]))] == [0.9, 0.5, 0.2, None]
    assert RMSE.best_of(rows, key=lambda r: r["v"]) == {"v": 0.2}
    assert ACCURACY.best_of(rows, key=lambda r: r["v"]) == {"v": 0.9}
    assert RMSE.target(0.5) == "≤ 0.5 RMSE" and ACCURACY.target(0.85) == "85%"
    assert RMSE.show(0.4561) == "0.4561 RMSE" and ACCURACY.show(0.8917) == "89.17%"
    assert RMSE.reaches(0.5, 0.5) and not RMSE.reaches(0.51, 0.5) and RMSE.gain(0.3, 0.4) == pytest.approx(0.1)


def test_an_ablation_level_with_a_lower_rmse_is_the_better_one():
    from experiments.core.records import AblationRecord
    from experiments.reporting.tables import ablation_section

    def cell(factor: str, test: float, base: bool = False) -> dict:
        return {"factor": factor, "level": 1, "base": base, "seeds": 3, "val_mean": test, "val_std": 0.01,
                "test_mean": test, "test_std": 0.01}

    ablation = AblationRecord(
        search="a", workload="curve", base="curve_mlp", seeds=3, epochs=2, runs=9, train_size=400, wall_seconds=60,
        command="python -m search --task tests.synthetic_regression",
        cells=[cell("base", 0.40, base=True), cell("hidden", 0.30), cell("lr", 0.50)])
    lines = ablation_section(ablation, metric=RMSE)
    assert "| val RMSE (mean ± std) | test RMSE (mean ± std) |" in lines[4]
    assert lines[-3].startswith("| hidden |") and lines[-3].endswith("| better |")
    assert lines[-2].startswith("| lr |") and lines[-2].endswith("| worse |")


def test_a_task_that_is_not_a_proportion_has_no_binomial_errors():
    from dataclasses import replace

    with pytest.raises(ValueError, match="only a proportion metric has"):
        replace(get_task(TASK_KEY), test_examples=300)
