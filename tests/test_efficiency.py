"""The search-efficiency benchmark and what it added: the digits task, plain Optuna in-process with its reporter,
the engine's epoch budget and BOHB, the budget accounting, the anytime curves and the conclusion's rule."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from argparse import Namespace
from pathlib import Path

import pytest

from experiments.core.task import ACCURACY

ROOT = Path(__file__).resolve().parents[1]
SYNTHETIC = "tests.synthetic_task"


def bench(out: Path, *extra: str, timeout: int = 600) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "search.benchmarks.search_efficiency", "--out", str(out), *extra],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)


def test_digits_task_has_a_fixed_recorded_split_and_trains_evaluates_and_predicts(tmp_path):
    from experiments.core.reporters import LocalReporter
    from experiments.tasks import get_task

    task = get_task("digits")
    data, again = task.load_data(None, None, 0), task.load_data(None, None, 7)
    assert (len(data.train), len(data.val), len(data.test)) == (1077, 360, 360) == (
        data.settings["train"], data.settings["val"], data.settings["test"])
    assert (data.test.y == again.test.y).all() and data.fingerprint == again.fingerprint  # no seed moves the split
    assert task.fixed_params(data)["fixed.split_seed"] == 0 and task.has_test_data(None)
    reporter = LocalReporter(tmp_path, task.metric)
    summary = task.trial({"epochs": 2, "hidden": 32, "lr": 0.01}, data, reporter)
    assert summary["fixed"]["split"] == "stratified 60/20/20" and summary["best_val_accuracy"] > 0.5
    tested = task.evaluate_checkpoint(reporter.best_dir, data, None)
    assert 0.5 < tested["accuracy"] <= 1 and tested["params"] > 0
    pixels = ",".join(str(int(v * 16)) for v in data.test.x[0])
    label, probability = task.predict(reporter.best_dir, [pixels])[0]
    assert label in task.labels and 0 < probability <= 1


def test_the_digits_search_dry_run_answers_through_the_engine():
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-m", "search", "--task", "digits", "--dry-run"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "batch_size" in done.stdout and "MLP" in done.stdout


def test_the_epoch_budget_stopper_counts_each_trials_progress_once():
    from search.schedulers import EpochBudget

    budget = EpochBudget(5)
    assert not budget("a", {"epoch": 1.0}) and not budget("a", {"epoch": 2.0}) and not budget("b", {"epoch": 1.0})
    assert not budget("b", {"epoch": 1.0})  # the same epoch reported again (a resumed trial) is not spent twice
    assert not budget("a", {"epoch": 3.0}) and budget.spent == 4
    assert budget("b", {"epoch": 2.0}) and budget.stop_all()


def test_random_search_and_bohb_hold_to_the_concurrency_asked_for():
    """Tune applies max_concurrent_trials to a Searcher only: the random sampler must carry its own limit (without
    it, random search ran two trials at once under --concurrency 1 on 2 CPUs)."""
    from experiments.tasks import get_task
    from search.cli import build_parser, check_args
    from search.strategy import make_searcher

    task = get_task(SYNTHETIC)
    args = build_parser(task).parse_args(["--searcher", "random", "--scheduler", "fifo", "--concurrency", "1"])
    check_args(args)
    searcher, _ = make_searcher(task.space(args), args, [])
    assert searcher.max_concurrent == 1


def test_plain_optuna_reporter_reports_keeps_the_best_and_stops_the_study_at_the_budget(tmp_path):
    import optuna

    from search.local_optuna import Budget, OptunaReporter

    checkpoint = tmp_path / "ckpt"
    checkpoint.mkdir()
    (checkpoint / "w").write_text("1")
    study = optuna.create_study(direction="maximize", pruner=optuna.pruners.HyperbandPruner(1, 9, 3))
    budget = Budget(epochs=2, seconds=None, started=0.0)

    def objective(trial) -> float:
        reporter = OptunaReporter(trial, study, ACCURACY, 1.0, tmp_path / str(trial.number), budget)
        for epoch, value in ((1.0, 0.5), (2.0, 0.6), (3.0, 0.7)):
            reporter.report({"epoch": epoch, "val_accuracy": value}, str(checkpoint))
        return 0.7

    study.optimize(objective, n_trials=5)
    assert len(study.trials) == 1 and study.trials[0].state == optuna.trial.TrialState.PRUNED  # cut at 2 epochs
    assert study.trials[0].intermediate_values == {1: 0.5, 2: 0.6} and budget.ended_by == "epochs"
    assert (tmp_path / "0" / "best" / "w").is_file()
    lines = [json.loads(line) for line in (tmp_path / "0" / "result.json").read_text().splitlines()]
    assert [line["training_iteration"] for line in lines] == [1, 2]


def test_plain_optuna_strategy_spends_exactly_its_epoch_budget(tmp_path):
    from experiments.core.records import SEARCH_FILE, SearchRecord, read_record
    from experiments.tasks import get_task
    from search import local_optuna

    code = local_optuna.main(get_task(SYNTHETIC), ["--trials", "50", "--max-epochs", "3", "--epoch-budget", "7",
                                                   "--storage-path", str(tmp_path), "--name", "local", "--seed", "1"])
    record = read_record(tmp_path / "local" / SEARCH_FILE, SearchRecord)
    assert code == 0 and record.trial_epochs == 7 and record.stopped_by_epoch_budget == 7
    assert record.searcher == "optuna-local" and record.best_checkpoint and Path(record.best_checkpoint).is_dir()
    assert record.best_score("best_val_accuracy") == max(r["best_val_accuracy"] for r in record.rows)


def run_of(strategy: str, seed: int, curve: list[tuple[float, float, float]], test: float = 0.9):
    from search.benchmarks.efficiency_runs import Run

    return Run(strategy=strategy, seed=seed, search="s", trials=3, trial_epochs=curve[-1][0], reports=len(curve),
               wall_s=curve[-1][1] + 1, startup_s=1.0, train_s=curve[-1][1] / 2, stopped_by="epoch budget",
               ended_s=curve[-1][1], best_val=curve[-1][2], test_of_pick=test, test_error=0.01, curve=curve)


def test_anytime_curves_count_trial_epochs_in_report_order_and_are_read_at_equal_budgets():
    from search.benchmarks.efficiency_report import best_at
    from search.benchmarks.efficiency_runs import anytime_curve

    reports = [{"trial": "a", "epoch": 1.0, "val_accuracy": 0.5, "reported_at": 101.0},
               {"trial": "b", "epoch": 1.0, "val_accuracy": 0.7, "reported_at": 102.0},
               {"trial": "a", "epoch": 2.0, "val_accuracy": 0.6, "reported_at": 103.5}]
    curve = anytime_curve(reports, ACCURACY, started_at=100.0)
    assert curve == [(1.0, 1.0, 0.5), (2.0, 2.0, 0.7), (3.0, 3.5, 0.7)]
    assert best_at(curve, 0.5, 0) is None and best_at(curve, 2, 0) == 0.7 and best_at(curve, 1.9, 1) == 0.5
    assert best_at(curve, 99, 1) == 0.7  # after its end a search keeps its pick


def test_the_report_compares_with_ours_by_welch_intervals_and_writes_its_record(tmp_path):
    from search.benchmarks.efficiency_report import write_report

    runs = []
    for seed in range(4):  # random+asha is behind in every seed; optuna+hyperband, within the noise at equal
        # trial-epochs, is done (ahead) by the time the first search ends, 6 s in; the picks all test at 0.9
        runs.append(run_of("optuna+asha", seed, [(1, 1, 0.80 + seed * 0.002), (10, 20, 0.95 + seed * 0.001)]))
        runs.append(run_of("random+asha", seed, [(1, 1, 0.50 + seed * 0.002), (10, 20, 0.80 + seed * 0.001)]))
        runs.append(run_of("optuna+hyperband", seed, [(1, 0.5, 0.70), (10, 6, 0.95 + (seed % 2) * 0.02 - 0.01)]))
    machine = {"cpu": "test cpu", "cpu_count": 2}
    settings = {"task": SYNTHETIC, "subset": 0, "trials": 9, "max_epochs": 3, "grace_period": 1, "reduction_factor": 3,
                "epoch_budget": 10, "time_budget": 0, "data_dir": None, "seeds": [0, 1, 2, 3], "threads": 1,
                "command": "python -m search.benchmarks.search_efficiency", "machine": machine,
                "load": {"start": 0.1, "end": 0.2}, "notes": ["bohb: unavailable here"]}
    lines = write_report(runs, settings, tmp_path, "search_efficiency_x", "title", ACCURACY)
    text = "\n".join(lines)
    assert "- random+asha: val at 10 trial-epochs -15.00 ± " in text and "points: worse" in text
    assert "- optuna+hyperband: val at 10 trial-epochs -0.15 ± " in text
    assert "- Note: bohb: unavailable here" in text
    assert "Overhead (a verdict here is plain Optuna's): per-trial overhead" in text
    assert ("3 of 6 comparisons with ours found a difference the 95% Welch interval carries: random+asha val at 10 "
            "trial-epochs: worse; random+asha val at 6 s: worse; optuna+hyperband val at 6 s: better.") in text
    record = json.loads((tmp_path / "search_efficiency_x.json").read_text())
    assert record["budget_trial_epochs"] == 10 and len(record["runs"]) == 12 and record["runs"][0]["curve"]
    assert (tmp_path / "search_efficiency_x.png").stat().st_size > 0
    assert len((tmp_path / "search_efficiency_x.csv").read_text().splitlines()) == 13


def test_the_benchmarks_own_flags_are_checked_before_anything_runs(tmp_path):
    from search.benchmarks.search_efficiency import parse

    args = parse(["--task", "digits", "--seeds", "3", "4"])
    assert args.max_epochs == 27 and args.time_budget == 0.6 and args.strategies[0] == "optuna+asha"
    assert isinstance(args, Namespace) and args.epoch_budget == 0
    done = bench(tmp_path / "out", "--task", "digits", "--strategies", "optuna+asha", "bohb", "random+x")
    assert done.returncode == 2 and "unknown random+x" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
@pytest.mark.ray
def test_every_strategy_runs_on_the_same_budget_and_a_resume_reuses_them(tmp_path):
    """All five strategies on the synthetic task with a budget of 6 trial-epochs each: every search spends
    exactly that, the record holds one row per run, and a resume reads the searches back without running them."""
    from search.benchmarks.search_efficiency import bohb_available

    strategies = ["optuna+asha", "random+asha", "random+fifo", "optuna+hyperband"] + (
        ["bohb"] if bohb_available() else [])
    out = tmp_path / "bench"
    args = ["--task", SYNTHETIC, "--data-dir", "generated", "--seeds", "0", "--trials", "30", "--max-epochs", "3",
            "--epoch-budget", "6",
            "--time-budget", "0", "--strategies", *strategies]
    done = bench(out, *args)
    assert done.returncode == 0, done.stderr[-3000:]
    rows = (out / "search_efficiency_synthetic.csv").read_text().splitlines()
    assert len(rows) == 1 + len(strategies)
    record = json.loads((out / "search_efficiency_synthetic.json").read_text())
    assert {r["strategy"]: r["trial_epochs"] for r in record["runs"]} == dict.fromkeys(strategies, 6)
    assert all(r["stopped_by"] == "epoch budget" for r in record["runs"])
    again = bench(out, *args)
    assert again.returncode == 2 and "pass --resume" in again.stderr
    other = bench(out, *[a if a != "6" else "9" for a in args], "--resume")
    assert other.returncode == 2 and "epoch_budget=6.0, not 9.0" in other.stderr
    resumed = bench(out, *args, "--resume", timeout=120)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert (out / "search_efficiency_synthetic.csv").read_text().splitlines()[1:] == rows[1:]
