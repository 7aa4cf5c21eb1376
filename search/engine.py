"""The one search engine: Ray Tune + (Optuna | random) + (ASHA | FIFO), tracked in MLflow, resumable.

A `Task` says how to load its data, which trial function to run and which space to search; everything else —
resources, scheduling, checkpoints, tracking, resume, the final table — is here, the same for every task.
Every task is selected on its own metric (`Task.metric`: validation accuracy, maximised, unless the task says
otherwise): the searcher, ASHA, the checkpoints kept, the tracker and the ranking all read that one metric.

Importing this module loads neither torch nor Ray: `--help` and bad flags answer at once.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import math
import os
import random
import shlex
import shutil
import signal
import socket
import sys
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from experiments.core.cli import UsageError, machine_info
from experiments.core.space import SearchSpace
from experiments.core.task import ACCURACY, Metric, Task, TrialFn
from experiments.core.units import as_epoch, report_grid
from experiments.tasks import TASKS
from search.errors import check_store

SEARCH_SETTINGS = ("trials", "max_epochs", "grace_period", "reduction_factor", "report_every", "searcher",
                   "startup_trials", "scheduler", "seed", "subset", "cpus_per_trial", "gpus_per_trial", "refit",
                   "refit_epochs", "refit_subset", "warm_start")
EPSILON = 1e-6


def search_settings(task: Task) -> tuple[str, ...]:
    """The flags a search is started with and keeps when resumed: the engine's, then the task's own."""
    return SEARCH_SETTINGS + task.search_settings


def search_command(task: Task) -> str:
    return f"python -m search.{task.key}" if task.key in TASKS else f"python -m search --task {task.key}"


class TuneReporter:
    """The trial's reporter inside Tune: metrics + checkpoint folder → `tune.report`; resume via Tune."""

    def __init__(self, report_every: float = 1.0, metric: Metric = ACCURACY) -> None:
        self.report_every = report_every
        self.metric = metric
        self.restored_dirs: list[str] = []

    def report(self, metrics: dict[str, float], checkpoint_dir: str) -> None:
        from ray import tune

        tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(checkpoint_dir))

    def resume_from(self) -> str | None:
        from ray import tune

        checkpoint = tune.get_checkpoint()
        if checkpoint is None:
            return None
        self.restored_dirs.append(checkpoint.to_directory())  # a fresh copy under /tmp: remove it in `close`
        return self.restored_dirs[-1]

    def close(self) -> None:
        """Delete the restored checkpoint copies (one per resumed trial, they piled up in /tmp)."""
        for restored in self.restored_dirs:
            shutil.rmtree(restored, ignore_errors=True)
        self.restored_dirs.clear()


def quiet_shutdown_hook(default: Callable[[Any], None]) -> Callable[[Any], None]:
    """A `sys.unraisablehook` for trial workers. Ray stops a worker whose trial ended with SIGTERM, and its handler
    raises SystemExit wherever the worker happens to be; inside a garbage-collection callback Python cannot raise
    it and prints "Exception ignored in … SystemExit: 1" with a traceback — a normal shutdown that reads like a
    failure. Only that one is dropped; every other unraisable error still goes to `default`."""
    def hook(unraisable: Any) -> None:
        if unraisable.exc_type is not SystemExit:
            default(unraisable)
    hook.quiets_shutdown = True  # type: ignore[attr-defined]
    return hook


def run_trial(
    config: dict[str, Any],
    data: Any = None,
    trial_fn: TrialFn | None = None,
    to_config: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
    threads: int = 1,
    search_name: str = "search",
    report_every: float = 1.0,
    metric: Metric = ACCURACY,
) -> None:
    """The Tune trainable: a plain trial function behind a Tune reporter, one torch thread per CPU."""
    import torch
    from ray import tune

    for noisy in ("ray.train", "ray.tune"):  # one "Checkpoint successfully created" line per epoch and trial
        logging.getLogger(noisy).setLevel(logging.WARNING)
    torch.set_num_threads(max(1, threads))
    if not getattr(sys.unraisablehook, "quiets_shutdown", False):  # once per worker process
        sys.unraisablehook = quiet_shutdown_hook(sys.unraisablehook)
    trial_config = to_config(config)
    trial_config["config_name"] = f"{search_name}-{tune.get_context().get_trial_id()}"
    reporter = TuneReporter(report_every, metric)
    try:
        trial_fn(trial_config, data, reporter)
    finally:
        reporter.close()


def build_parser(task: Task) -> argparse.ArgumentParser:
    d = {"trials": 40, "max_epochs": 4, "grace_period": 1, "reduction_factor": 2, "report_every": 1.0,
         **task.search_defaults}
    parser = argparse.ArgumentParser(
        prog=search_command(task),
        description=f"Hyperparameter search for {task.name} (Ray Tune + Optuna + ASHA, tracked in MLflow).",
    )
    add = parser.add_argument
    add("--trials", type=int, default=d["trials"], help="number of trials to sample")
    add("--max-epochs", type=int, default=d["max_epochs"], help="epochs of a trial that is never stopped")
    add("--grace-period", type=float, default=None,
        help=f"epochs every trial gets before ASHA may stop it (default {d['grace_period']:g}, at most --max-epochs;"
             " fractions of an epoch with --report-every)")
    add("--report-every", type=float, default=d["report_every"],
        help=f"evaluate, checkpoint and report every this fraction of an epoch: 1, 0.5, 0.25, 0.75… (default "
             f"{d['report_every']:g}); ASHA's rungs can then fall inside an epoch")
    budget = d.get("time_budget")
    add("--time-budget", type=float, default=budget, metavar="MIN",
        help="end the search phase after MIN minutes of search wall time (counted across resumes, like the "
             "summary's): running trials stop where they are, and the refit follows; also given to a resumed search; "
             + (f"default {budget:g}, 0: none" if budget else "default: none"))
    add("--refit", type=int, default=d.get("refit", 1),
        help="after the search, train the K best configurations again on the full training split with a fresh "
             "seed and test each once, with the warm starts named as a preset or config JSON; the best refit (by "
             "validation) is what the summarizer exports (0: no refit: it exports the best trial's best "
             f"checkpoint; default {d.get('refit', 1)})")
    add("--refit-epochs", type=int, default=d.get("refit_epochs"),
        help="epochs of each refit (default: " + (f"{d['refit_epochs']}" if "refit_epochs" in d else "--max-epochs")
             + ")")
    add("--refit-subset", type=int, default=0, metavar="N",
        help="refit on N training examples (default 0: the whole training split); a smoke search keeps its refit "
             "small with --refit-subset equal to its --subset")
    add("--warm-start", nargs="+", default=None, metavar="SOURCE",
        help="evaluate these first: a preset name, a config JSON (both also refit), or search:NAME (the best 5 of "
             "an earlier search)")
    add("--reduction-factor", type=int, default=d["reduction_factor"], help="ASHA keeps 1/this at each rung")
    add("--data-dir", default=None, help="local dataset copy in the hub layout (default: download from the hub)")
    add("--subset", type=int, default=d.get("subset"),
        help="search on N training examples (default: " + (f"{d['subset']:,}" if d.get("subset") else "all")
             + "; 0: all); the refit trains on the whole training split unless --refit-subset")
    add("--cpus-per-trial", type=float, default=1.0, help="CPUs reserved per trial (also its torch threads)")
    add("--gpus-per-trial", type=float, default=0.0, help="GPUs per trial; fractions pack trials (0.25 → 4/GPU)")
    add("--concurrency", type=int, default=None, help="max trials at once (default: what the resources allow)")
    add("--address", default=None, help="join an existing Ray cluster: 'auto' or 'ray://host:port'")
    add("--storage-path", default=None, help="Tune results (default ./ray_results; shared FS or s3:// on clusters)")
    add("--tracking-uri", default=None, help="MLflow tracking URI (default sqlite:///<abs>/mlruns/mlflow.db)")
    add("--experiment", default=f"tunelab-{task.name}", help="MLflow experiment name")
    add("--name", default=None, help="search name; an existing name is resumed")
    add("--seed", type=int, default=0, help="seed of the sampler and of every trial")
    add("--resume", action="store_true", help="continue an interrupted search (--name, or the latest one)")
    add("--searcher", choices=("optuna", "random"), default="optuna", help="Optuna TPE or Tune's random sampler")
    add("--startup-trials", type=int, default=None,
        help="random trials before Optuna's TPE starts modelling (default: trials/4, clipped to 4..10)")
    add("--scheduler", choices=("asha", "fifo"), default="asha", help="ASHA early stopping or run every trial out")
    add("--verbose", type=int, default=1, choices=(0, 1, 2), help="Tune's console output (0 quiet, 1 table)")
    add("--dry-run", action="store_true", help="print space, scheduler, resources and sample configs; train nothing")
    add("--dry-run-samples", type=int, default=5, help="configurations drawn from the space by --dry-run")
    add("--ablate", default=None, metavar="BASE",
        help="instead of a search, an ablation around BASE (a preset or config JSON): see --vary and --seeds")
    add("--vary", action="append", default=[], metavar="KEY=V1,V2",
        help="with --ablate: a field and its levels, each tried with everything else at BASE (repeatable)")
    add("--seeds", type=int, default=3, help="with --ablate: seeds per configuration (default 3)")
    task.add_search_arguments(parser)
    parser.set_defaults(default_grace_period=d["grace_period"])
    return parser


def check_args(args: argparse.Namespace) -> None:
    """Bad input is refused here, before anything is started or written."""
    if report_grid(args.report_every) is None:
        raise UsageError(f"--report-every must be a fraction of an epoch in (0, 1] (1, 0.5, 0.25, 0.75…), "
                         f"got {args.report_every:g}")
    if args.grace_period is None:
        args.grace_period = min(max(args.default_grace_period, args.report_every), max(args.max_epochs, 1))
    if args.time_budget is not None and args.time_budget < 0:
        raise UsageError(f"--time-budget must be a positive number of minutes (0: none), got {args.time_budget:g}")
    if args.time_budget == 0:
        args.time_budget = None
    if args.refit < 0:
        raise UsageError(f"--refit must be 0 (no refit) or more, got {args.refit}")
    if args.subset == 0:  # the whole training split, where the task's default is a subset
        args.subset = None
    if args.refit_epochs is None:
        args.refit_epochs = args.max_epochs
    if args.refit_epochs < 1:
        raise UsageError(f"--refit-epochs must be at least 1, got {args.refit_epochs}")
    if args.refit_subset < 0:
        raise UsageError(f"--refit-subset must be 0 (the whole training split) or more, got {args.refit_subset}")
    if args.dry_run_samples < 0:
        raise UsageError(f"--dry-run-samples must be 0 or more, got {args.dry_run_samples}")
    if args.trials < 1:
        raise UsageError(f"--trials must be at least 1, got {args.trials}")
    if args.startup_trials is None:  # Optuna's own 10 would leave a 16-trial search only 6 guided trials
        args.startup_trials = min(10, max(4, args.trials // 4))
    if args.startup_trials < 1:
        raise UsageError(f"--startup-trials must be at least 1, got {args.startup_trials}")
    if args.max_epochs < 1:
        raise UsageError(f"--max-epochs must be at least 1, got {args.max_epochs}")
    if not args.report_every - EPSILON <= args.grace_period <= args.max_epochs:
        raise UsageError(f"--grace-period must be in [--report-every={args.report_every:g}, "
                         f"--max-epochs={args.max_epochs}], got {args.grace_period:g}")
    if args.reduction_factor < 2:
        raise UsageError(f"--reduction-factor must be at least 2, got {args.reduction_factor}")
    if args.cpus_per_trial <= 0 or args.gpus_per_trial < 0:
        raise UsageError("--cpus-per-trial must be > 0 and --gpus-per-trial >= 0")
    if args.concurrency is not None and args.concurrency < 1:
        raise UsageError(f"--concurrency must be at least 1, got {args.concurrency}")
    if args.address is None and args.gpus_per_trial > 0:
        import torch

        if args.gpus_per_trial > torch.cuda.device_count():
            raise UsageError(
                f"--gpus-per-trial {args.gpus_per_trial:g} but this machine has {torch.cuda.device_count()} GPU(s)"
            )
    if args.address not in (None, "auto"):
        host_port = args.address.removeprefix("ray://")
        host, _, port = host_port.rpartition(":")
        try:
            socket.create_connection((host or "127.0.0.1", int(port)), timeout=3).close()
        except (OSError, ValueError):
            raise UsageError(f"cannot reach the Ray cluster at {args.address}") from None
    if args.tracking_uri is not None:
        check_store(args.tracking_uri)


class StagingRaceFilter(logging.Filter):
    """Drops one known Ray Tune race, not its errors: Tune uploads its experiment state from a staging folder in
    the background while the next save writes its atomic-save temp files (`.<uuid>-tmp-…`) into that folder; a temp
    file renamed mid-upload fails that upload with FileNotFoundError and a traceback. Nothing is lost: the next
    upload copies the state again, and the last one (at the end of `fit`) runs after the last save and is waited
    for."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        return not (isinstance(error, FileNotFoundError) and "-tmp-" in str(error))


STAGING_RACE = StagingRaceFilter()  # one instance: `addFilter` skips it when a search in the same process (the
                                    # efficiency benchmark runs several) starts Ray again


def start_ray(args: argparse.Namespace) -> dict[str, float]:
    """Local Ray by default, or join a cluster; returns its resources. Silences known start-up noise."""
    import ray

    os.environ.setdefault("RAY_DEDUP_LOGS", "1")
    os.environ["TUNE_DISABLE_STRICT_METRIC_CHECKING"] = "1"  # search.schedulers.MetricCheck replaces it
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "100000")
    logging.getLogger("ray.tune.execution.experiment_state").addFilter(STAGING_RACE)
    explicit = args.address not in (None, "auto") or bool(os.environ.get("RAY_ADDRESS"))
    has_token = os.environ.get("RAY_AUTH_MODE", "").lower() == "token"  # see send_cluster_token
    if not ray.is_initialized():
        try:
            ray.init(address=args.address, log_to_driver=True, include_dashboard=False, logging_level="ERROR")
        except ConnectionError as error:
            fix = ("" if not explicit or has_token else " (a cluster with token authentication needs its token: set "
                   "RAY_AUTH_TOKEN or RAY_AUTH_TOKEN_PATH, or copy the head node's ~/.ray/auth_token here)")
            raise UsageError(f"cannot join the Ray cluster at {args.address}: {error}{fix}") from None
    resources = ray.cluster_resources()
    for kind, asked in (("GPU", args.gpus_per_trial), ("CPU", args.cpus_per_trial)):
        if asked > resources.get(kind, 0):
            flag = f"--{kind.lower()}s-per-trial"
            raise UsageError(f"{flag} {asked:g} but the cluster has {resources.get(kind, 0):g} {kind}(s)")
    return resources


def send_cluster_token() -> bool:
    """Ray (2.59+) turns token authentication on by itself only for a local cluster found with 'auto'; joining an
    explicit HOST:PORT (also `auto` with RAY_ADDRESS set) it sends no token unless RAY_AUTH_MODE=token, and a
    cluster started with a token answers "Authentication token is missing or incorrect". Send the token where one
    is at hand (RAY_AUTH_TOKEN, RAY_AUTH_TOKEN_PATH, or ~/.ray/auth_token where `ray start` keeps it); an explicit
    RAY_AUTH_MODE is respected."""
    if "RAY_AUTH_MODE" in os.environ:
        return os.environ["RAY_AUTH_MODE"].lower() == "token"
    token_file = Path(os.environ.get("RAY_AUTH_TOKEN_PATH") or Path.home() / ".ray" / "auth_token")
    if os.environ.get("RAY_AUTH_TOKEN") or token_file.is_file():
        os.environ["RAY_AUTH_MODE"] = "token"
        return True
    return False


def plan_concurrency(args: argparse.Namespace, cpus: float, gpus: float) -> int:
    """Trials at once: --concurrency, or as many as the CPUs (and GPUs, if asked for) can hold."""
    parallel = args.concurrency or max(1, int(cpus // args.cpus_per_trial))
    if args.gpus_per_trial > 0:
        parallel = min(parallel, max(1, int(gpus // args.gpus_per_trial)))
    return parallel


def storage_root(args: argparse.Namespace) -> str:
    if args.storage_path is None:
        return str(Path("ray_results").resolve())
    return args.storage_path if "://" in args.storage_path else str(Path(args.storage_path).resolve())


def resolve_name(task: Task, args: argparse.Namespace, root: str) -> str:
    if args.name:
        return args.name
    if args.resume:
        if "://" in root or not Path(root).is_dir():
            raise UsageError("--resume without --name needs a local --storage-path holding earlier searches")
        earlier = sorted(
            (p for p in Path(root).iterdir() if p.is_dir() and p.name.startswith(f"{task.name}-")),
            key=lambda p: p.stat().st_mtime,
        )
        if not earlier:
            raise UsageError(f"--resume: no earlier {task.name} search under {root}")
        return earlier[-1].name
    return f"{task.name}-{datetime.now():%Y%m%d-%H%M%S}"


def random_param_space(space: SearchSpace, seed: int, points: list[dict[str, Any]]) -> dict[str, Any]:
    """For Tune's BasicVariantGenerator: the warm-start points first, then one seeded draw per trial, same
    distributions as Optuna's. (Its own points_to_evaluate cannot fill a `sample_from` value.)"""
    from ray import tune

    rng, queue = random.Random(seed), [dict(point) for point in points]

    def draw(_spec) -> dict[str, Any]:
        return queue.pop(0) if queue else space.draw(rng)

    return {"sampled": tune.sample_from(draw), **space.constants}


def make_searcher(space: SearchSpace, args: argparse.Namespace, points: list[dict[str, Any]], study=None,
                  metric: Metric = ACCURACY):
    """Optuna TPE (its study persisted in `study` = (storage, name), in the metric's direction) or Tune's seeded
    random sampler; either evaluates the warm-start `points` first."""
    if args.searcher == "optuna":
        import optuna
        from ray.tune.search.optuna import OptunaSearch

        optuna.logging.set_verbosity(optuna.logging.WARNING)  # no "A new study created" line
        sampler = optuna.samplers.TPESampler(seed=args.seed, n_startup_trials=args.startup_trials)
        storage, study_name = study if study else (None, None)
        searcher = OptunaSearch(space=space.define_by_run, metric=metric.name, mode=metric.mode, sampler=sampler,
                                storage=storage, study_name=study_name, points_to_evaluate=points or None)
        return searcher, None
    from ray.tune.search.basic_variant import BasicVariantGenerator

    return BasicVariantGenerator(random_state=args.seed), random_param_space(space, args.seed, points)


def reports_in(epochs: float, args: argparse.Namespace) -> int:
    """How many reports a trial has made after `epochs` (the training loop reports on a grid, see report_grid)."""
    return max(1, math.ceil(epochs / args.report_every - EPSILON))


def make_scheduler(args: argparse.Namespace, space: SearchSpace, points: list[dict[str, Any]]):
    """ASHA counts reports (Tune's training_iteration); epochs and fractions of one are converted here. The
    warm-start `points` are never stopped early (see search/schedulers.py)."""
    from ray.tune.schedulers import FIFOScheduler

    from search.schedulers import WarmStartASHA

    if args.scheduler == "fifo":
        return FIFOScheduler()
    return WarmStartASHA(
        protected=[space.fields_of(point) for point in points],
        to_config=space.to_config,
        time_attr="training_iteration",
        max_t=reports_in(args.max_epochs, args),
        grace_period=reports_in(args.grace_period, args),
        reduction_factor=args.reduction_factor,
    )


def trial_id_of(result) -> str:
    """Tune's trial id; a trial that failed before its first report has it only in its folder name."""
    reported = (result.metrics or {}).get("trial_id")
    if reported:
        return reported
    name = Path(result.path).name  # "<trainable>_<trial_id>_<index>_<params>_<date>"
    return name.removeprefix(f"{run_trial.__name__}_").split("_")[0]


def trial_states(experiment_path: str) -> dict[str, str]:
    """Each trial's state as Tune saved it (TERMINATED, ERROR, RUNNING...): after Ctrl-C the trials it cut short
    are saved as RUNNING, while the in-memory results call them terminated. Empty where it cannot be read."""
    saved = sorted(Path(experiment_path).glob("experiment_state-*.json")) if "://" not in experiment_path else []
    if not saved:
        return {}
    try:
        trials = json.loads(saved[-1].read_text())["trial_data"]
        trials = [t[0] if isinstance(t, list) else t for t in trials]
        trials = [json.loads(t) if isinstance(t, str) else t for t in trials]
        return {t["trial_id"]: t["status"] for t in trials}
    except (ValueError, KeyError, TypeError, IndexError):
        return {}


def rank_results(
    results, max_epochs: int, to_config: Callable[[dict[str, Any]], dict[str, Any]],
    states: dict[str, str] | None = None, metric: Metric = ACCURACY,
) -> list[dict[str, Any]]:
    """One row per trial: its searched params, best metric, epochs run and how it ended; best first."""
    rows, states = [], states or {}
    for result in results:
        frame = result.metrics_dataframe
        epochs = as_epoch(float(frame["epoch"].max())) if frame is not None and "epoch" in frame else 0
        scores = frame[metric.name].dropna() if frame is not None and metric.name in frame else []
        best = metric.best_of(map(float, scores), key=float)
        if result.error is not None:
            status = "ERROR"
        elif states.get(trial_id_of(result), "TERMINATED") != "TERMINATED":  # Ctrl-C caught it mid-trial
            status = "INTERRUPTED"
        else:
            status = "COMPLETED" if epochs >= max_epochs - EPSILON else "STOPPED_EARLY"
        config = to_config(dict(result.config or {}))  # the fields the trial trained with
        rows.append({
            "trial_id": trial_id_of(result),
            "status": status,
            metric.best_key: best,
            "epochs": epochs,
            "error": None if result.error is None else str(result.error).strip().splitlines()[-1][:200],
            "params": config,
            "metrics": {k: v for k, v in (result.metrics or {}).items() if isinstance(v, int | float)},
            "path": result.path,
        })
    rows.sort(key=lambda r: metric.sort_key(r[metric.best_key]))
    return rows


def missing_metric(results, metric: Metric) -> list[str] | None:
    """What a trial reported (Tune's own keys left out) when it reported no `metric` (see
    search.schedulers.MetricCheck); None when every trial's last report has it."""
    from ray.tune.result import AUTO_RESULT_KEYS, DEBUG_METRICS, DONE, EXPERIMENT_TAG, SHOULD_CHECKPOINT

    for result in results:
        reported = set(result.metrics or {}) - {*AUTO_RESULT_KEYS, *DEBUG_METRICS, DONE, EXPERIMENT_TAG,
                                                SHOULD_CHECKPOINT}
        if metric.name not in (result.metrics or {}) and reported:
            return sorted(reported)
    return None


def format_table(rows: list[dict[str, Any]], metric: Metric = ACCURACY) -> str:
    keys = sorted({k for r in rows for k in r["params"]} - {"epochs", "seed", "config_name"})
    header = ["rank", "trial", "status", metric.name, "epochs", *keys]
    lines = [header]
    for rank, row in enumerate(rows, 1):
        value = row[metric.best_key]
        params = [_short(row["params"].get(k, "")) for k in keys]
        lines.append([str(rank), row["trial_id"], row["status"], "-" if value is None else f"{value:.4f}",
                      f"{row['epochs']:g}", *params])
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)) for line in lines)


def _short(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def is_warm_start(row: dict[str, Any], points: list[dict[str, Any]]) -> bool:
    """Whether a search row trained one of the warm starts (`points`, sampler values) rather than a sample."""
    return any(all(row["params"].get(k) == v for k, v in point.items()) for point in points)


def named_warm_starts(args: argparse.Namespace) -> list[str]:
    """The warm starts the refit trains too: presets and config JSONs (a `search:NAME` was refit in its search)."""
    return [source for source in args.warm_start or [] if not source.startswith("search:")]


def settings_path(experiment_path: str) -> Path | None:
    """Where a search keeps the settings it was started with; None on remote storage."""
    return None if "://" in experiment_path else Path(experiment_path) / "search_args.json"


def saved_settings(experiment_path: str) -> dict[str, Any]:
    """The settings a search was started with; empty when remote or never saved."""
    settings_file = settings_path(experiment_path)
    return json.loads(settings_file.read_text()) if settings_file is not None and settings_file.is_file() else {}


def option_strings(parser: argparse.ArgumentParser, dest: str) -> list[str]:
    """The flags that set `dest` (`--refit` for refit)."""
    return [o for action in parser._actions if action.dest == dest for o in action.option_strings]


def refits_done(summary: dict[str, Any] | None, saved: dict[str, Any]) -> int:
    """The --refit whose refit ran to its end (0: none yet); summaries from before `refit_top` was kept say it
    by being finished."""
    if not summary:
        return 0
    if "refit_top" in summary:
        return int(summary["refit_top"])
    return int(saved.get("refit", 0)) if summary.get("finished") and summary.get("refit") else 0


def setting_conflicts(saved: dict[str, Any], wanted: dict[str, Any]) -> list[tuple[str, Any, Any]]:
    """(setting, value it was started with, value wanted now) for each wanted setting that differs."""
    return [(k, saved[k], wanted[k]) for k in sorted(wanted) if k in saved and saved[k] != wanted[k]]


class WallClock:
    """A search's wall time that survives a kill: the driver rewrites `wall.json` every few seconds, and a resumed
    search starts from what it says (and counts the resume)."""

    def __init__(self, experiment_path: str, resumed: bool, started: float, every: float = 2.0) -> None:
        self.path = None if "://" in experiment_path else Path(experiment_path) / "wall.json"
        saved = json.loads(self.path.read_text()) if self.path is not None and self.path.is_file() else {}
        self.before = float(saved.get("seconds", 0.0))
        # a wall.json from an earlier process is a resume too: an ablation restarted by its `--name` after a kill
        self.resumes = int(saved.get("resumes", 0)) + (1 if resumed or saved else 0)
        self.started, self.every = started, every  # from the command's start: data and Ray start-up count
        self._stop = None
        self._ticker = None

    @property
    def seconds(self) -> float:
        return self.before + time.perf_counter() - self.started

    def save(self) -> None:
        if self.path is not None and self.path.parent.is_dir():
            staging = self.path.with_suffix(".tmp")
            staging.write_text(json.dumps({"seconds": self.seconds, "resumes": self.resumes}) + "\n")
            staging.replace(self.path)

    def __enter__(self) -> WallClock:
        import threading

        self._stop = threading.Event()

        def tick() -> None:
            while not self._stop.wait(self.every):
                self.save()

        self._ticker = threading.Thread(target=tick, daemon=True, name="tunelab-wall-clock")
        self._ticker.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._ticker.join()  # a tick mid-save would move the staging file this last save writes
        self.save()


def main(task: Task, argv: list[str] | None = None) -> int:
    started = time.perf_counter()
    parser = build_parser(task)
    args = parser.parse_args(argv)
    settings = search_settings(task)
    typed = {word.split("=", 1)[0] for word in (sys.argv[1:] if argv is None else argv) if word.startswith("--")}
    given = {k for k in settings if getattr(args, k, None) != parser.get_default(k)  # typed by the user, a default
             or any(option in typed for option in option_strings(parser, k))}  # too (`--refit 1` after `--refit 0`)
    check_args(args)
    if args.address is not None:
        send_cluster_token()  # before anything imports Ray: Ray reads the mode into its config at import
    if args.ablate is not None:
        from search import ablation

        return ablation.main(task, args, sys.argv[1:] if argv is None else argv, started)
    if args.vary:
        raise UsageError("--vary needs --ablate BASE")
    root = storage_root(args)
    space = task.space(args)
    points = []
    if args.warm_start:
        from search.warm_start import warm_start_points

        points = warm_start_points(task, space, args.warm_start, root)
    if args.dry_run:
        return dry_run(task, space, args, points)
    from ray import tune

    from search.schedulers import MetricCheck
    from search.tracking import MlflowSearchTracker, default_tracking_uri, optuna_storage

    name = resolve_name(task, args, root)
    experiment_path = f"{root.rstrip('/')}/{name}"
    previous = read_summary(experiment_path)
    saved = saved_settings(experiment_path)
    refit_top = refits_done(previous, saved)
    # a larger --refit on a resumed search refits the next best too: the refits already made are kept
    more_refits = bool(previous) and "refit" in given and args.refit > max(refit_top, saved.get("refit", 0))
    if more_refits and previous.get("search_finished") and not previous.get("finished"):
        raise UsageError(f"search {name} was stopped during its refit: resume it without --refit to finish that "
                         f"refit, then resume with --refit {args.refit} to refit more")
    if previous and previous.get("finished") and not more_refits:
        print(f"search {name} has already finished (its summary: {experiment_path}/search_summary.json)")
        return 0
    search_done = bool(previous and previous.get("search_finished"))  # killed during the refit, or refit grown
    resuming = search_done or tune.Tuner.can_restore(experiment_path)
    if args.resume and not resuming:
        raise UsageError(f"--resume: no search to resume at {experiment_path}")
    settings_file = settings_path(experiment_path)
    if resuming:  # a resumed search keeps the settings it started with, but for a larger --refit
        kept = [k for k in given if not (k == "refit" and more_refits)]
        conflicts = setting_conflicts(saved, {k: getattr(args, k) for k in kept})
        if conflicts:
            raise UsageError(f"search {name} was started with {', '.join(f'{k}={was}' for k, was, _ in conflicts)} "
                             "and resumes with its own settings: drop those flags, or pick another --name"
                             + (" (--refit may only grow)" if any(k == "refit" for k, _, _ in conflicts) else ""))
        for key in settings:
            if key in saved and not (key == "refit" and more_refits):
                setattr(args, key, saved[key])
        if more_refits and settings_file is not None:  # a resume after a kill continues the larger refit
            write_summary(experiment_path, {**saved, "refit": args.refit}, file=settings_file.name)
        space = task.space(args)
    data = task.load_data(args.data_dir, args.subset, 0)  # once, in the driver; trials get it through the object store
    if not search_done:
        print(refit_cost(task, args, None if args.subset else len(data.train), len(points)), flush=True)
    resources = start_ray(args)
    tracking_uri = args.tracking_uri or default_tracking_uri()
    metric = task.metric
    study = None
    if args.searcher == "optuna":
        study_url, storage = optuna_storage(tracking_uri)
        study = (storage, name)
        if not resuming:
            drop_stale_study(storage, name)
    concurrency = plan_concurrency(args, resources.get("CPU", 1), resources.get("GPU", 0))
    tracker = MlflowSearchTracker(
        tracking_uri, args.experiment, name,
        search_params(task, space, args, concurrency, sys.argv[1:] if argv is None else argv),
        trial_params=task.fixed_params(data), max_epochs=args.max_epochs, resolve=space.to_config, metric=metric,
    )
    if not resuming and settings_file is not None:
        settings_file.parent.mkdir(parents=True, exist_ok=True)
        settings_file.write_text(json.dumps({k: getattr(args, k, None) for k in settings}, indent=1) + "\n")
    from search.warm_start import warm_start_points

    named = named_warm_starts(args)
    warm = warm_start_points(task, space, named, root) if named else []  # marked in the rows, refit beside the best
    with WallClock(experiment_path, resuming, started) as clock:
        if search_done:
            print(f"resuming search {name}: its search is done, continuing the refit", flush=True)
            summary = previous
        else:
            trainable = tune.with_resources(
                tune.with_parameters(
                    run_trial, data=data, trial_fn=task.trial, to_config=space.to_config,
                    threads=max(1, int(args.cpus_per_trial)), search_name=name, report_every=args.report_every,
                    metric=metric,
                ),
                {"cpu": args.cpus_per_trial, "gpu": args.gpus_per_trial},
            )
            if resuming:
                print(f"resuming search {name} from {experiment_path}", flush=True)
                tuner = tune.Tuner.restore(experiment_path, trainable=trainable, resume_errored=True)
            else:
                searcher, param_space = make_searcher(space, args, points, study, metric)
                tuner = tune.Tuner(
                    trainable,
                    param_space=param_space,
                    tune_config=tune.TuneConfig(
                        metric=metric.name, mode=metric.mode, search_alg=searcher,
                        scheduler=make_scheduler(args, space, points),
                        num_samples=args.trials, max_concurrent_trials=concurrency, reuse_actors=True,
                    ),
                    run_config=tune.RunConfig(
                        name=name,
                        storage_path=root,
                        callbacks=[tracker],
                        stop=MetricCheck(metric.name),
                        checkpoint_config=tune.CheckpointConfig(
                            num_to_keep=1, checkpoint_score_attribute=metric.name, checkpoint_score_order=metric.mode
                        ),
                        failure_config=tune.FailureConfig(max_failures=0),
                        verbose=args.verbose,
                    ),
                )
            budget_left = None if args.time_budget is None else args.time_budget * 60 - clock.seconds
            if budget_left is not None and budget_left <= 0 and resuming:
                results, out_of_time = tuner.get_results(), True  # nothing left to spend: rank what there is
            else:
                with interrupt_after(budget_left) as timer:
                    results = tuner.fit()
                out_of_time = timer.is_set()
            reported = missing_metric(results, metric)
            if reported is not None:
                tracker.end_search("FAILED")
                raise UsageError(metric.missing(task.key, reported))
            summary = summarize_search(task, args, results, name, experiment_path, tracker)
            summary["search_wall_seconds"] = clock.seconds  # the refit's time is the rest of wall_seconds
            for row in summary["rows"]:
                row["warm_start"] = is_warm_start(row, warm)
            if previous and previous.get("command") and previous["command"] != summary["command"]:
                summary.update(command=previous["command"], resumed_with=summary["command"])  # as first typed
            if out_of_time:  # the budget ends the search phase as surely as the last trial would
                summary.update(search_finished=True, stopped_by_time_budget=args.time_budget)
                print(f"search {name}: its {args.time_budget:g}-minute budget is spent after "
                      f"{summary['trials']} trials; on to the refit", flush=True)
            if study is not None:
                from search.importance import study_summary

                summary.update(study_summary(study_url, name, Path(experiment_path)))
        summary["refit"] = summary.get("refit") or []
        refit_finished = True
        if summary["search_finished"] and args.refit > 0 and summary["best_trial"]:
            if more_refits and search_done:
                summary["resumed_with"] = tracker.search_params["command"]
            write_summary(experiment_path, {**summary, "finished": False, "wall_seconds": clock.seconds})
            from search.refit import refit_winners

            summary["refit"], refit_finished = refit_winners(
                task, args, name, experiment_path, summary["rows"], tracking_uri, data, warm,
                done=summary["refit"] if refit_top else [],
            )
            if refit_finished:
                summary["refit_top"] = args.refit
        summary["finished"] = summary["search_finished"] and refit_finished
        summary["wall_seconds"], summary["resumes"] = clock.seconds, clock.resumes
        if "search_wall_seconds" in summary:
            summary["refit_wall_seconds"] = clock.seconds - summary["search_wall_seconds"]
    return finish(task, args, summary, name, experiment_path, tracker)


@contextlib.contextmanager
def interrupt_after(seconds: float | None):
    """Stop `tuner.fit()` the way Ctrl-C does (Tune saves its state and returns) once `seconds` have passed;
    yields an Event that says whether the time ran out."""
    import threading

    fired = threading.Event()
    if seconds is None:
        yield fired
        return

    def stop() -> None:
        fired.set()
        os.kill(os.getpid(), signal.SIGINT)

    timer = threading.Timer(max(0.0, seconds), stop)
    timer.daemon = True
    timer.start()
    try:
        yield fired
    finally:
        timer.cancel()


def read_summary(experiment_path: str, file: str = "search_summary.json") -> dict[str, Any] | None:
    path = Path(experiment_path) / file
    return json.loads(path.read_text()) if "://" not in experiment_path and path.is_file() else None


def write_summary(experiment_path: str, summary: dict[str, Any], file: str = "search_summary.json") -> None:
    """`search_summary.json` (or an ablation's), replaced atomically: the summarizer and a resumed run read it."""
    if "://" in experiment_path:
        return
    path = Path(experiment_path) / file
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.with_suffix(".tmp")
    staging.write_text(json.dumps(summary, indent=1, default=str) + "\n")
    staging.replace(path)


def drop_stale_study(storage, name: str) -> None:
    """A new search whose name an old, deleted search used would continue that search's Optuna study."""
    import optuna

    if any(s.study_name == name for s in optuna.study.get_all_study_summaries(storage)):
        optuna.delete_study(study_name=name, storage=storage)
        print(f"replaced an old Optuna study named {name} (no search folder of that name is left)", flush=True)


def dry_run(task: Task, space: SearchSpace, args: argparse.Namespace, points: list[dict[str, Any]]) -> int:
    """What a search would do, without starting Ray, loading data or creating any MLflow run."""
    import random

    import torch

    cpus = os.cpu_count() or 1
    gpus = torch.cuda.device_count()
    parallel = plan_concurrency(args, cpus, gpus)
    where = f"cluster at {args.address}" if args.address else f"this machine ({cpus} CPUs, {gpus} GPUs)"
    scheduler = (
        f"ASHA on {task.metric.name} ({task.metric.mode}): max_t={args.max_epochs} epochs, grace period "
        f"{args.grace_period:g}, reduction factor {args.reduction_factor}"
        if args.scheduler == "asha" else f"FIFO: every trial runs {args.max_epochs} epochs"
    )
    sampler = f"optuna TPE after {args.startup_trials} random trials" if args.searcher == "optuna" else "random"
    print(f"search space ({sampler}, seed {args.seed}):\n{space.describe()}\n")
    print(f"scheduler: {scheduler}")
    print(f"resources: {args.trials} trials, {parallel} in parallel on {where}; per trial "
          f"{args.cpus_per_trial:g} CPU(s) / {args.gpus_per_trial:g} GPU(s)")
    searched_on = f"{args.subset:,} {task.example_noun}s of" if args.subset else "all of"
    refit_on = f"{args.refit_subset:,} {task.example_noun}s of it" if args.refit_subset else "all of it"
    print(f"data: the search trains on {searched_on} the training split, the refit on {refit_on}")
    print(f"reports: every {args.report_every:g} epoch; refit: "
          + (f"the {args.refit} best{' and the warm starts named' if named_warm_starts(args) else ''}, "
             f"{args.refit_epochs} epochs each, fresh seed" if args.refit else "none"))
    print("time budget: " + (f"the search phase ends after {args.time_budget:g} min (--time-budget 0: none)"
                             if args.time_budget else "none (the search runs every trial)"))
    print(refit_cost(task, args, None, len(points)) + "\n")
    for index, point in enumerate(points, 1):
        print(f"  warm start {index}: {task.describe_sample(space.to_config({**space.constants, **point}), args)}")
    rng, reasons, valid = random.Random(args.seed), [], 0
    if args.dry_run_samples:
        print(f"{args.dry_run_samples} sampled configurations:")
    for index in range(args.dry_run_samples):
        config = space.sample_config(rng)
        try:
            print(f"  {index + 1}. {task.describe_sample(config, args)}")
            valid += 1
        except ValueError as error:
            reasons.append(str(error))
            print(f"  {index + 1}. invalid: {error}")
    if reasons and valid == 0:
        raise UsageError(f"every sampled configuration is invalid, e.g.: {reasons[0]}")
    return 0


def refit_cost(task: Task, args: argparse.Namespace, train_size: int | None, warm_starts: int) -> str:
    """The refit's work next to the search's, in examples trained: a 3-trial smoke search on 300 examples would
    otherwise refit on the whole training split for its full budget without saying so."""
    if not args.refit:
        return "refit cost: none (--refit 0)"
    runs = args.refit + warm_starts
    noun = f"{task.example_noun}s"
    if args.refit_subset:
        per_run = args.refit_subset if train_size is None else min(args.refit_subset, train_size)
    elif train_size is not None:
        per_run = train_size
    else:
        return (f"refit cost: up to {runs} run(s) × {args.refit_epochs} epochs on the whole training split "
                f"(--refit-subset N keeps it small)")
    refit_work = runs * args.refit_epochs * per_run
    line = f"refit cost: up to {runs} run(s) × {args.refit_epochs} epochs × {per_run:,} {noun} = {refit_work:,} {noun}"
    if args.subset:
        search_work = args.trials * args.max_epochs * args.subset
        line += f", {refit_work / search_work:.2f}× the search's most ({search_work:,}: every trial run out)"
    return line


def search_params(
    task: Task, space: SearchSpace, args: argparse.Namespace, concurrency: int, argv: list[str]
) -> dict[str, Any]:
    """What the parent MLflow run records about the search itself; `argv` is what `main` parsed (not always
    `sys.argv`: the efficiency benchmark calls `main` in-process)."""
    return {
        "workload": task.name, "trials": args.trials, "max_epochs": args.max_epochs,
        "searcher": args.searcher, "startup_trials": args.startup_trials if args.searcher == "optuna" else None,
        "scheduler": args.scheduler, "grace_period": args.grace_period,
        "reduction_factor": args.reduction_factor, "concurrency": concurrency,
        "cpus_per_trial": args.cpus_per_trial, "gpus_per_trial": args.gpus_per_trial,
        "seed": args.seed, "subset": args.subset, "space": space.describe(),
        "command": " ".join([search_command(task), shlex.join(argv)]).strip(),
    }


def summarize_search(task: Task, args, results, name, experiment_path, tracker) -> dict[str, Any]:
    """The search phase's summary: ranked rows, the best checkpoint, counts; whether every trial has ended."""
    metric = task.metric
    rows = rank_results(results, args.max_epochs, tracker.resolve, trial_states(experiment_path), metric)
    best_checkpoint = None
    scored = [r for r in rows if r[metric.best_key] is not None]  # ranked best first
    if scored:
        best = results.get_best_result(metric.name, metric.mode, scope="all")
        checkpoint = best.get_best_checkpoint(metric.name, metric.mode)
        best_checkpoint = checkpoint.path if checkpoint is not None else None
    counts = {s: sum(r["status"] == s for r in rows) for s in ("COMPLETED", "STOPPED_EARLY", "ERROR", "INTERRUPTED")}
    return {
        "search": name,
        "workload": task.name,
        "search_finished": counts["COMPLETED"] + counts["STOPPED_EARLY"] + counts["ERROR"] >= args.trials,
        "searcher": args.searcher,
        "scheduler": args.scheduler,
        "report_every": args.report_every,
        "subset": args.subset,  # the search's fidelity, against the refit's whole split and --refit-epochs
        "max_epochs": args.max_epochs,
        "trials": len(rows),
        "trial_epochs": as_epoch(sum(r["epochs"] for r in rows)),
        "completed": counts["COMPLETED"],
        "stopped_early": counts["STOPPED_EARLY"],
        "errored": counts["ERROR"],
        "interrupted": counts["INTERRUPTED"],
        metric.best_key: scored[0][metric.best_key] if scored else None,
        "best_trial": scored[0]["trial_id"] if scored else None,
        "best_checkpoint": best_checkpoint,
        "tracking_uri": tracker.tracking_uri,
        "command": tracker.search_params["command"],
        "machine": machine_info(),
        "rows": rows,
    }


def finish(task: Task, args, summary: dict[str, Any], name, experiment_path, tracker) -> int:
    """Summary file, MLflow parent update, the ranked table and refit results; tells the user what next."""
    rows, refits, metric = summary["rows"], summary["refit"], task.metric
    table = format_table(rows, metric)
    write_summary(experiment_path, summary)
    numbers = ("finished", "wall_seconds", "resumes", "trials", "trial_epochs", "completed", "stopped_early",
               "errored", metric.best_key, "best_trial", "best_checkpoint", "searcher", "scheduler", "command",
               "search")
    recorded = {k: summary.get(k) for k in numbers}
    if refits:
        winner, val, test = refits[0], metric.name, metric.test_name
        recorded.update({f"refit_{val}": winner[val], f"refit_{test}": winner[test],
                         "refit_winners_curse": metric.gain(winner[f"search_{val}"], winner[val])})
    finished = summary["finished"]
    trial_ids = {r["trial_id"] for r in rows}
    tracker.finish_search(recorded, table, trial_ids, "FINISHED" if finished else "KILLED")
    print("\n" + table)
    for row in rows:
        if row["status"] == "ERROR":
            print(f"errored: {row['trial_id']}: {row['error']}")
    resumed = f", resumed {summary['resumes']}×" if summary.get("resumes") else ""
    print(
        f"\nsearch {name}: {len(rows)} trials in {summary['wall_seconds'] / 60:.1f} min{resumed} "
        f"({summary['completed']} completed, {summary['stopped_early']} stopped early by {args.scheduler.upper()}, "
        f"{summary['errored']} errored)"
    )
    if summary["best_checkpoint"]:
        print(f"best {metric.name} {summary[metric.best_key]:.4f} — checkpoint: {summary['best_checkpoint']}")
    for refit in refits:
        print(f"refit {refit['rank']} (search trial {refit['search_trial']}, search val "
              f"{refit[f'search_{metric.name}']:.4f}): val {refit[metric.name]:.4f}, test "
              f"{refit[metric.test_name]:.4f} after {refit['epochs']:g} epochs — {refit['checkpoint']}")
    print(f"compare in MLflow: mlflow ui --backend-store-uri {tracker.tracking_uri}   (experiment {args.experiment})")
    if summary.get("optuna_storage"):
        print(f"the Optuna study: optuna-dashboard {summary['optuna_storage']}   (study {summary['optuna_study']})")
    if not finished:
        done = len(rows) - summary.get("interrupted", 0)
        phase = "its refit" if summary["search_finished"] else f"{done} of {args.trials} trials finished"
        print(f"\nsearch {name} was interrupted ({phase}); continue it with: "
              f"{search_command(task)} --resume --name {name}")
        return 130
    data_flag = f" --data-dir {task.key}={shlex.quote(args.data_dir)}" if args.data_dir else ""
    print(f"export the winner: python -m experiments.summarize --tasks {task.key}{data_flag}")
    return 0 if summary["best_trial"] else 1
