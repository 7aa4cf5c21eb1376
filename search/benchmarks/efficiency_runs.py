"""The efficiency benchmark's strategies, how one search of each runs, and what is read back from it: the anytime
curve (best validation so far against cumulative trial-epochs and wall time), the cost split into start-up,
training and overhead, and the test score of the search's pick (tested once, for the report only).

Every strategy gets the same command line: the same space and trial function (the task's), the same seed, one
trial at a time on one torch thread, and the same budget (`--epoch-budget` trial-epochs, `--time-budget`
minutes), so only the searcher, the scheduler and the machinery around them differ.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from experiments.core.checkpoints import write_text_atomically
from experiments.core.machine_load import load_average
from experiments.core.records import SEARCH_FILE, SearchRecord, read_record
from experiments.core.task import Task
from experiments.core.uncertainty import standard_error


@dataclass(frozen=True)
class Strategy:
    name: str
    searcher: str  # the engine's --searcher (the in-process one takes the same flags)
    scheduler: str
    on_ray: bool  # False: plain Optuna in this process (search.local_optuna)
    what: str  # one line for the record


STRATEGIES = {s.name: s for s in (
    Strategy("optuna+asha", "optuna", "asha", True, "ours: Optuna TPE + ASHA on Ray Tune, tracked in MLflow"),
    Strategy("random+asha", "random", "asha", True, "Tune's seeded random sampler + ASHA, on Ray, tracked"),
    Strategy("random+fifo", "random", "fifo", True, "random search, every trial run out, on Ray, tracked"),
    Strategy("optuna+fifo", "optuna", "fifo", True, "Optuna TPE, every trial run out, on Ray, tracked"),
    Strategy("bohb", "bohb", "bohb", True, "Ray Tune's TuneBOHB + HyperBandForBOHB, on Ray, tracked"),
    Strategy("optuna+hyperband", "optuna", "asha", False,
             "plain Optuna TPE + optuna.pruners.HyperbandPruner in-process: no Ray, no MLflow, in-memory study"),
)}
REFERENCE = "optuna+asha"
DEFAULT_STRATEGIES = ["optuna+asha", "random+asha", "random+fifo", "optuna+hyperband", "bohb"]


@dataclass
class Run:
    """One search of one strategy and seed, as the report reads it."""

    strategy: str
    seed: int
    search: str
    trials: int  # that reported at least once
    trial_epochs: float
    reports: int
    wall_s: float  # the search's own wall clock: data, Ray and tracking start-up included
    startup_s: float  # from its start to its first report, less that report's training
    train_s: float  # the trials' own time: training and validation (the training loop's epoch_seconds)
    stopped_by: str  # "epoch budget", "time budget" or "trials"
    ended_s: float  # seconds from its start to its last report
    best_val: float | None
    test_of_pick: float | None
    test_error: float | None  # binomial standard error of test_of_pick
    load: dict[str, float | None] = field(default_factory=dict)  # 1-minute load average at its start and end
    started_at: float = 0.0  # seconds since the epoch
    curve: list[tuple[float, float, float]] = field(default_factory=list)  # (trial-epochs, seconds, best so far)

    @property
    def overhead_per_trial_s(self) -> float:
        """What the machinery costs a trial beyond its training: sampling, scheduling, reporting, checkpoints,
        tracking and launching it (start-up excluded: it is paid once per search)."""
        return (self.wall_s - self.startup_s - self.train_s) / max(self.trials, 1)

    def row(self) -> dict[str, Any]:
        values = {k: v for k, v in asdict(self).items() if k not in ("curve", "load")}
        return {**values, "overhead_per_trial_s": self.overhead_per_trial_s, "load_start": self.load.get("start"),
                "load_end": self.load.get("end")}


class TimedReporter:
    """Passes each report on with the wall-clock time it was made (`reported_at`, seconds since the epoch): Tune
    stamps its results in whole seconds only, too coarse for trial-epochs that take a fraction of one."""

    def __init__(self, reporter) -> None:
        self.inner, self.report_every, self.metric = reporter, reporter.report_every, reporter.metric

    def report(self, metrics: dict[str, float], checkpoint_dir: str) -> None:
        self.inner.report({**metrics, "reported_at": time.time()}, checkpoint_dir)

    def resume_from(self) -> str | None:
        return self.inner.resume_from()


def timed_trial(config: dict[str, Any], data, reporter, trial_fn) -> dict[str, Any]:
    return trial_fn(config, data, TimedReporter(reporter))


def timed(task: Task) -> Task:
    """The task with its trial function unchanged but for the time stamp on every report."""
    return dataclasses.replace(task, trial=functools.partial(timed_trial, trial_fn=task.trial))


def search_name(strategy: str, seed: int) -> str:
    return f"eff-{strategy.replace('+', '-')}-s{seed}"


def reports_of(summary: SearchRecord, metric: str) -> list[dict[str, Any]]:
    """Every report of every trial, in the order they were made."""
    reports = []
    for row in summary.rows:
        path = Path(row["path"]) / "result.json"
        if path.is_file():
            for line in path.read_text().splitlines():
                result = json.loads(line)
                if metric in result:
                    reports.append({"trial": row["trial_id"], **result})
    return sorted(reports, key=lambda r: r["reported_at"])


def anytime_curve(reports: list[dict[str, Any]], metric, started_at: float) -> list[tuple[float, float, float]]:
    """(cumulative trial-epochs, seconds since the search started, best validation so far) after each report."""
    last: dict[str, float] = {}
    spent, best, curve = 0.0, None, []
    for r in reports:
        spent += max(0.0, r["epoch"] - last.get(r["trial"], 0.0))
        last[r["trial"]] = max(last.get(r["trial"], 0.0), r["epoch"])
        best = r[metric.name] if metric.better(r[metric.name], best) else best
        curve.append((round(spent, 6), round(max(0.0, r["reported_at"] - started_at), 3), best))
    return curve


def engine_argv(strategy: Strategy, seed: int, settings, out: Path) -> list[str]:
    """The search's command line: everything but the searcher and scheduler is the same for every strategy."""
    name = search_name(strategy.name, seed)
    argv = ["--trials", str(settings.trials), "--max-epochs", str(settings.max_epochs),
            "--grace-period", str(settings.grace_period), "--reduction-factor", str(settings.reduction_factor),
            "--report-every", "1", "--seed", str(seed), "--name", name, "--storage-path", str((out / "ray").resolve()),
            "--verbose", "0", "--refit", "0", "--concurrency", "1", "--cpus-per-trial", "1",
            "--epoch-budget", f"{settings.epoch_budget or 0:g}", "--time-budget", f"{settings.time_budget or 0:g}"]
    if strategy.on_ray:  # one store per seed: parallel workers never share a sqlite file
        argv += ["--searcher", strategy.searcher, "--scheduler", strategy.scheduler,
                 "--tracking-uri", f"sqlite:///{(out / 'stores' / f's{seed}' / 'mlflow.db').resolve()}"]
    if settings.data_dir:
        argv += ["--data-dir", settings.data_dir]
    if settings.subset:
        argv += ["--subset", str(settings.subset)]
    return argv


def run_search(task: Task, strategy: Strategy, seed: int, settings, out: Path) -> None:
    """One search from nothing (a folder left by an interrupted one is removed: every timing is of one whole run);
    its start time and the load around it go to `runs/<name>.json`."""
    from search import engine, local_optuna

    name = search_name(strategy.name, seed)
    shutil.rmtree(out / "ray" / name, ignore_errors=True)
    (out / "stores" / f"s{seed}").mkdir(parents=True, exist_ok=True)
    argv = engine_argv(strategy, seed, settings, out)
    load_at_start, started_at = load_average(), time.time()
    if strategy.on_ray:
        import ray

        try:
            code = engine.main(timed(task), argv)
        finally:
            ray.shutdown()  # the Ray this process started: each search starts its own, as a user's command does
    else:
        code = local_optuna.main(timed(task), argv)
    if code not in (0, 1):
        raise RuntimeError(f"search {name} ended with exit code {code}")
    (out / "runs").mkdir(parents=True, exist_ok=True)
    write_text_atomically(out / "runs" / f"{name}.json", json.dumps(
        {"started_at": started_at, "load": {"start": load_at_start, "end": load_average()}}) + "\n")


def read_run(task: Task, strategy: str, seed: int, out: Path, data, device) -> Run:
    """A finished search read back; its pick (the best validation report within its budget) tested once."""
    name = search_name(strategy, seed)
    summary = read_record(out / "ray" / name / SEARCH_FILE, SearchRecord)
    side = json.loads((out / "runs" / f"{name}.json").read_text())
    metric = task.metric
    reports = reports_of(summary, metric.name)
    curve = anytime_curve(reports, metric, side["started_at"])
    first = reports[0] if reports else None
    startup = (first["reported_at"] - side["started_at"] - first["epoch_seconds"]) if first else summary.wall_seconds
    test = error = None
    if summary.best_checkpoint:
        test = task.evaluate_checkpoint(Path(summary.best_checkpoint), data, device)[metric.test_key]
        error = standard_error(test, len(data.test)) if metric.proportion else None
    stopped = ("epoch budget" if summary.stopped_by_epoch_budget else
               "time budget" if summary.stopped_by_time_budget else "trials")
    started = len({r["trial"] for r in reports})  # Tune also lists trials it created but never ran
    return Run(strategy=strategy, seed=seed, search=name, trials=started, trial_epochs=summary.trial_epochs,
               reports=len(reports), wall_s=summary.wall_seconds, startup_s=max(0.0, startup),
               train_s=sum(r["epoch_seconds"] for r in reports), stopped_by=stopped,
               ended_s=curve[-1][1] if curve else 0.0,
               best_val=summary.best_score(metric.best_key), test_of_pick=test, test_error=error,
               load=side["load"], started_at=side["started_at"], curve=curve)


def finished(strategy: str, seed: int, out: Path) -> bool:
    name = search_name(strategy, seed)
    summary = out / "ray" / name / SEARCH_FILE
    return (out / "runs" / f"{name}.json").is_file() and summary.is_file() \
        and read_record(summary, SearchRecord).finished
