"""Plain Optuna, no Ray: TPE and Optuna's own HyperbandPruner driving a task's trial function in this process, as a
user who skips the platform would write it. The efficiency benchmark runs it beside the engine's strategies, so
the search and the trial are the same and only the machinery around them differs.

It takes the engine's command line (`search.cli`: the same flags, defaults and checks), trains one trial at a
time with `--cpus-per-trial` torch threads, keeps each trial's best checkpoint, and writes a `SearchRecord` like
the engine's (`search_summary.json`) with one `result.json` per trial (a line per report, as Tune writes them),
so a reader takes both kinds of search the same way. No MLflow and no study storage: the study lives in memory.
An interrupted run is not resumed; it starts again.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

from experiments.core.checkpoints import replace_dir_atomically
from experiments.core.cli import machine_info
from experiments.core.machine_load import load_average
from experiments.core.records import SEARCH_FILE, SearchRecord, write_record
from experiments.core.task import Metric, Task
from experiments.core.units import as_epoch
from search.cli import EPSILON, build_parser, check_args, search_command, typed_argv
from search.storage import storage_root
from search.strategy import reports_in

SEARCHER, SCHEDULER = "optuna-local", "hyperband"  # what the record says ran


class Budget:
    """The trial-epochs and the wall time a search may spend (None: no limit), counted over all its trials."""

    def __init__(self, epochs: float | None, seconds: float | None, started: float) -> None:
        self.epochs, self.seconds, self.started = epochs, seconds, started  # started: perf_counter at the start
        self.spent: dict[int, float] = {}  # trial number -> the last epoch it reported
        self.ended_by: str | None = None

    def record(self, trial: int, epoch: float) -> None:
        self.spent[trial] = max(self.spent.get(trial, 0.0), epoch)
        if self.epochs is not None and sum(self.spent.values()) >= self.epochs - EPSILON:
            self.ended_by = "epochs"
        elif self.seconds is not None and time.perf_counter() - self.started >= self.seconds:
            self.ended_by = "time"


class OptunaReporter:
    """The trial's reporter under plain Optuna: each report goes to `trial.report(value, step)` (step = the
    report's number, as Tune's training_iteration counts them, so the pruner's rungs match ASHA's) and to the
    trial's `result.json`; the best checkpoint is kept. It raises `optuna.TrialPruned` when the pruner says so, and
    when the budget is spent (the study then stops)."""

    def __init__(self, trial, study, metric: Metric, report_every: float, folder: Path, budget: Budget) -> None:
        self.trial, self.study, self.metric, self.report_every = trial, study, metric, report_every
        self.folder, self.budget = folder, budget
        self.step, self.best = 0, None
        folder.mkdir(parents=True, exist_ok=True)

    @property
    def best_dir(self) -> Path:
        return self.folder / "best"

    def report(self, metrics: dict[str, float], checkpoint_dir: str) -> None:
        import optuna

        self.step += 1
        value = metrics[self.metric.name]
        self.trial.report(value, self.step)
        if self.metric.better(value, self.best):
            self.best = value
            replace_dir_atomically(checkpoint_dir, self.best_dir)
        line = {**metrics, "training_iteration": self.step, "timestamp": int(time.time()),  # whole seconds, as Tune
                "trial_id": str(self.trial.number)}
        with open(self.folder / "result.json", "a") as handle:
            handle.write(json.dumps(line) + "\n")
        self.budget.record(self.trial.number, float(metrics["epoch"]))
        if self.budget.ended_by:
            self.study.stop()
            raise optuna.TrialPruned(f"the search's {self.budget.ended_by} budget is spent")
        if self.trial.should_prune():
            raise optuna.TrialPruned()

    def resume_from(self) -> str | None:
        return None


def run_study(task: Task, args, data, folder: Path, started: float) -> tuple[list[dict[str, Any]], Budget]:
    """Optimise with TPE (seeded, `--startup-trials` random first) and HyperbandPruner (rungs from
    `--grace-period` to `--max-epochs` by `--reduction-factor`); one row per trial, as the engine ranks them."""
    import optuna
    import torch

    metric = task.metric
    torch.set_num_threads(max(1, int(args.cpus_per_trial)))
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    space = task.space(args)
    budget = Budget(args.epoch_budget, None if args.time_budget is None else args.time_budget * 60, started)
    study = optuna.create_study(
        direction="maximize" if metric.mode == "max" else "minimize",
        sampler=optuna.samplers.TPESampler(seed=args.seed, n_startup_trials=args.startup_trials),
        pruner=optuna.pruners.HyperbandPruner(min_resource=reports_in(args.grace_period, args),
                                              max_resource=reports_in(args.max_epochs, args),
                                              reduction_factor=args.reduction_factor),
    )
    rows: list[dict[str, Any]] = []

    def objective(trial) -> float:
        constants = space.define_by_run(trial)
        config = space.to_config({**constants, "sampled": dict(trial.params)})
        config["config_name"] = f"{args.name}-{trial.number}"
        reporter = OptunaReporter(trial, study, metric, args.report_every, folder / "trials" / str(trial.number),
                                  budget)
        row = {"trial_id": str(trial.number), "params": config, "path": str(reporter.folder), "status": "COMPLETED"}
        rows.append(row)
        try:
            summary = task.trial(config, data, reporter)
        except optuna.TrialPruned:
            row["status"] = "STOPPED_EARLY"
            raise
        finally:
            row[metric.best_key], row["epochs"] = reporter.best, as_epoch(budget.spent.get(trial.number, 0.0))
        return summary[metric.best_key]

    timeout = None if budget.seconds is None else max(0.0, budget.seconds - (time.perf_counter() - started))
    study.optimize(objective, n_trials=args.trials, timeout=timeout)
    if budget.ended_by is None and timeout is not None and time.perf_counter() - started >= budget.seconds:
        budget.ended_by = "time"  # Optuna's timeout ended it between two trials
    rows.sort(key=lambda r: metric.sort_key(r[metric.best_key]))
    return rows, budget


def main(task: Task, argv: list[str] | None = None) -> int:
    """One plain-Optuna search of `task` from an engine command line; its record goes to
    `<storage path>/<name>/search_summary.json`. Returns 0, or 1 when no trial scored."""
    started = time.perf_counter()
    argv = typed_argv(argv)
    args = build_parser(task).parse_args(argv)
    check_args(args)
    args.name = args.name or f"{task.name}-optuna-local"
    folder = Path(storage_root(args)) / args.name
    shutil.rmtree(folder, ignore_errors=True)  # not resumable: a run starts from nothing
    load_at_start = load_average()
    data = task.load_data(args.data_dir, args.subset, 0)
    rows, budget = run_study(task, args, data, folder, started)
    metric = task.metric
    scored = [r for r in rows if r[metric.best_key] is not None]
    wall = time.perf_counter() - started
    record = SearchRecord(
        search=args.name, workload=task.name, rows=rows, searcher=SEARCHER, scheduler=SCHEDULER,
        report_every=args.report_every, subset=args.subset, max_epochs=args.max_epochs, trials=len(rows),
        trial_epochs=as_epoch(sum(r["epochs"] for r in rows)),
        completed=sum(r["status"] == "COMPLETED" for r in rows),
        stopped_early=sum(r["status"] == "STOPPED_EARLY" for r in rows),
        best_trial=scored[0]["trial_id"] if scored else None,
        best_checkpoint=str(Path(scored[0]["path"]) / "best") if scored else None,
        command=f"{search_command(task)} {' '.join(argv)} (in-process Optuna, search.local_optuna)",
        machine=machine_info(), load={"start": load_at_start, "end": load_average()},
        wall_seconds=wall, search_wall_seconds=wall, time_budget=args.time_budget,
        stopped_by_epoch_budget=args.epoch_budget if budget.ended_by == "epochs" else None,
        stopped_by_time_budget=args.time_budget if budget.ended_by == "time" else None,
        by_task={metric.best_key: scored[0][metric.best_key] if scored else None},
    )
    write_record(folder / SEARCH_FILE, record)
    return 0 if scored else 1
