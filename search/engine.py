"""The one search engine: Ray Tune + (Optuna | random) + (ASHA | FIFO), tracked in MLflow, resumable.

A workload (IMDB, CIFAR-10) says how to load its data, which trial function to run and which space to
search; everything else — resources, scheduling, checkpoints, tracking, resume, the final table — is here.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from experiments.cli import UsageError, machine_info
from search.spaces import SearchSpace

TrialFn = Callable[[dict[str, Any], Any, Any], dict[str, Any]]
SEARCH_SETTINGS = ("trials", "max_epochs", "grace_period", "reduction_factor", "searcher", "startup_trials",
                   "scheduler", "seed", "subset", "model", "cpus_per_trial", "gpus_per_trial")


@dataclass
class SearchWorkload:
    """What the engine needs from a task; the engine knows nothing else about it."""

    name: str
    load_data: Callable[[argparse.Namespace], Any]
    trial_fn: TrialFn
    space: Callable[[argparse.Namespace], SearchSpace]
    fixed_params: Callable[[Any, argparse.Namespace], dict[str, Any]]
    add_arguments: Callable[[argparse.ArgumentParser], None] = lambda parser: None
    describe_config: Callable[[dict[str, Any], argparse.Namespace], str] | None = None  # dry run; raises if invalid
    export_command: str = "python -m experiments.summarize"
    metric: str = "val_accuracy"
    mode: str = "max"
    defaults: dict[str, Any] = field(default_factory=dict)


class TuneReporter:
    """The trial's reporter inside Tune: metrics + checkpoint folder → `tune.report`; resume via Tune."""

    def __init__(self) -> None:
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


def run_trial(
    config: dict[str, Any],
    data: Any = None,
    trial_fn: TrialFn | None = None,
    to_config: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
    threads: int = 1,
    search_name: str = "search",
) -> None:
    """The Tune trainable: a plain trial function behind a Tune reporter, one torch thread per CPU."""
    import logging

    import torch
    from ray import tune

    for noisy in ("ray.train", "ray.tune"):  # one "Checkpoint successfully created" line per epoch and trial
        logging.getLogger(noisy).setLevel(logging.WARNING)
    torch.set_num_threads(max(1, threads))
    trial_config = to_config(config)
    trial_config["config_name"] = f"{search_name}-{tune.get_context().get_trial_id()}"
    reporter = TuneReporter()
    try:
        trial_fn(trial_config, data, reporter)
    finally:
        reporter.close()


def build_parser(workload: SearchWorkload) -> argparse.ArgumentParser:
    d = {"trials": 40, "max_epochs": 4, "grace_period": 1, "reduction_factor": 2, **workload.defaults}
    parser = argparse.ArgumentParser(
        prog=f"python -m search.{workload.name}",
        description=f"Hyperparameter search for {workload.name} (Ray Tune + Optuna + ASHA, tracked in MLflow).",
    )
    add = parser.add_argument
    add("--trials", type=int, default=d["trials"], help="number of trials to sample")
    add("--max-epochs", type=int, default=d["max_epochs"], help="epochs of a trial that is never stopped")
    add("--grace-period", type=int, default=None,
        help=f"epochs every trial gets before ASHA may stop it (default {d['grace_period']}, at most --max-epochs)")
    add("--reduction-factor", type=int, default=d["reduction_factor"], help="ASHA keeps 1/this at each rung")
    add("--data-dir", default=None, help="local dataset copy in the hub layout (default: download from the hub)")
    add("--subset", type=int, default=d.get("subset"), help="use N training examples (quick runs)")
    add("--cpus-per-trial", type=float, default=1.0, help="CPUs reserved per trial (also its torch threads)")
    add("--gpus-per-trial", type=float, default=0.0, help="GPUs per trial; fractions pack trials (0.25 → 4/GPU)")
    add("--concurrency", type=int, default=None, help="max trials at once (default: what the resources allow)")
    add("--address", default=None, help="join an existing Ray cluster: 'auto' or 'ray://host:port'")
    add("--storage-path", default=None, help="Tune results (default ./ray_results; shared FS or s3:// on clusters)")
    add("--tracking-uri", default=None, help="MLflow tracking URI (default sqlite:///<abs>/mlruns/mlflow.db)")
    add("--experiment", default=f"tunelab-{workload.name}", help="MLflow experiment name")
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
    workload.add_arguments(parser)
    parser.set_defaults(default_grace_period=d["grace_period"])
    return parser


def check_args(args: argparse.Namespace) -> None:
    """Bad input is refused here, before anything is started or written."""
    if args.grace_period is None:
        args.grace_period = min(args.default_grace_period, max(args.max_epochs, 1))
    if args.trials < 1:
        raise UsageError(f"--trials must be at least 1, got {args.trials}")
    if args.startup_trials is None:  # Optuna's own 10 would leave a 16-trial search only 6 guided trials
        args.startup_trials = min(10, max(4, args.trials // 4))
    if args.startup_trials < 1:
        raise UsageError(f"--startup-trials must be at least 1, got {args.startup_trials}")
    if args.max_epochs < 1:
        raise UsageError(f"--max-epochs must be at least 1, got {args.max_epochs}")
    if not 1 <= args.grace_period <= args.max_epochs:
        raise UsageError(f"--grace-period must be in [1, --max-epochs={args.max_epochs}], got {args.grace_period}")
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


def start_ray(args: argparse.Namespace) -> dict[str, float]:
    """Local Ray by default, or join a cluster; returns its resources. Silences known start-up noise."""
    import ray

    os.environ.setdefault("RAY_DEDUP_LOGS", "1")
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "100000")
    if not ray.is_initialized():
        try:
            ray.init(address=args.address, log_to_driver=True, include_dashboard=False, logging_level="ERROR")
        except ConnectionError as error:
            raise UsageError(f"cannot join the Ray cluster at {args.address}: {error}") from None
    resources = ray.cluster_resources()
    for kind, asked in (("GPU", args.gpus_per_trial), ("CPU", args.cpus_per_trial)):
        if asked > resources.get(kind, 0):
            flag = f"--{kind.lower()}s-per-trial"
            raise UsageError(f"{flag} {asked:g} but the cluster has {resources.get(kind, 0):g} {kind}(s)")
    return resources


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


def resolve_name(workload: SearchWorkload, args: argparse.Namespace, root: str) -> str:
    if args.name:
        return args.name
    if args.resume:
        if "://" in root or not Path(root).is_dir():
            raise UsageError("--resume without --name needs a local --storage-path holding earlier searches")
        earlier = sorted(
            (p for p in Path(root).iterdir() if p.is_dir() and p.name.startswith(f"{workload.name}-")),
            key=lambda p: p.stat().st_mtime,
        )
        if not earlier:
            raise UsageError(f"--resume: no earlier {workload.name} search under {root}")
        return earlier[-1].name
    return f"{workload.name}-{datetime.now():%Y%m%d-%H%M%S}"


def make_searcher(workload: SearchWorkload, space: SearchSpace, args: argparse.Namespace):
    if args.searcher == "optuna":
        import optuna
        from ray.tune.search.optuna import OptunaSearch

        optuna.logging.set_verbosity(optuna.logging.WARNING)  # no "A new study created in memory" line

        sampler = optuna.samplers.TPESampler(seed=args.seed, n_startup_trials=args.startup_trials)
        searcher = OptunaSearch(space=space.define_by_run, metric=workload.metric, mode=workload.mode, sampler=sampler)
        return searcher, None
    from ray.tune.search.basic_variant import BasicVariantGenerator

    return BasicVariantGenerator(random_state=args.seed), space.random_param_space(args.seed)


def make_scheduler(args: argparse.Namespace):
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler

    if args.scheduler == "fifo":
        return FIFOScheduler()
    return ASHAScheduler(
        time_attr="training_iteration",
        max_t=args.max_epochs,
        grace_period=args.grace_period,
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
    results, workload: SearchWorkload, max_epochs: int, to_config: Callable[[dict[str, Any]], dict[str, Any]],
    states: dict[str, str] | None = None,
) -> list[dict[str, Any]]:
    """One row per trial: its searched params, best metric, epochs run and how it ended."""
    rows, states = [], states or {}
    for result in results:
        frame = result.metrics_dataframe
        epochs = int(frame["training_iteration"].max()) if frame is not None and len(frame) else 0
        best = float(frame[workload.metric].max()) if frame is not None and workload.metric in frame else None
        if result.error is not None:
            status = "ERROR"
        elif states.get(trial_id_of(result), "TERMINATED") != "TERMINATED":  # Ctrl-C caught it mid-trial
            status = "INTERRUPTED"
        else:
            status = "COMPLETED" if epochs >= max_epochs else "STOPPED_EARLY"
        config = to_config(dict(result.config or {}))  # the fields the trial trained with
        rows.append({
            "trial_id": trial_id_of(result),
            "status": status,
            f"best_{workload.metric}": best,
            "epochs": epochs,
            "error": None if result.error is None else str(result.error).strip().splitlines()[-1][:200],
            "params": config,
            "metrics": {k: v for k, v in (result.metrics or {}).items() if isinstance(v, int | float)},
            "path": result.path,
        })
    key = f"best_{workload.metric}"
    sign = -1 if workload.mode == "max" else 1
    rows.sort(key=lambda r: (r[key] is None, sign * (r[key] or 0)))
    return rows


def format_table(rows: list[dict[str, Any]], metric: str) -> str:
    keys = sorted({k for r in rows for k in r["params"]} - {"epochs", "seed", "config_name"})
    header = ["rank", "trial", "status", metric, "epochs", *keys]
    lines = [header]
    for rank, row in enumerate(rows, 1):
        value = row[f"best_{metric}"]
        params = [_short(row["params"].get(k, "")) for k in keys]
        lines.append([str(rank), row["trial_id"], row["status"], "-" if value is None else f"{value:.4f}",
                      str(row["epochs"]), *params])
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)) for line in lines)


def _short(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def settings_path(experiment_path: str) -> Path | None:
    """Where a search keeps the settings it was started with; None on remote storage."""
    return None if "://" in experiment_path else Path(experiment_path) / "search_args.json"


def saved_settings(experiment_path: str) -> dict[str, Any]:
    """The settings a search was started with; empty when remote or never saved."""
    settings_file = settings_path(experiment_path)
    return json.loads(settings_file.read_text()) if settings_file is not None and settings_file.is_file() else {}


def setting_conflicts(saved: dict[str, Any], wanted: dict[str, Any]) -> list[tuple[str, Any, Any]]:
    """(setting, value it was started with, value wanted now) for each wanted setting that differs."""
    return [(k, saved[k], wanted[k]) for k in sorted(wanted) if k in saved and saved[k] != wanted[k]]


def main(workload: SearchWorkload, argv: list[str] | None = None) -> int:
    parser = build_parser(workload)
    args = parser.parse_args(argv)
    given = {k for k in SEARCH_SETTINGS if getattr(args, k, None) != parser.get_default(k)}  # typed by the user
    check_args(args)
    if args.dry_run:
        return dry_run(workload, workload.space(args), args)
    from ray import tune

    from search.tracking import MlflowSearchTracker, default_tracking_uri

    root = storage_root(args)
    name = resolve_name(workload, args, root)
    experiment_path = f"{root.rstrip('/')}/{name}"
    resuming = tune.Tuner.can_restore(experiment_path)
    if args.resume and not resuming:
        raise UsageError(f"--resume: no search to resume at {experiment_path}")
    settings_file = settings_path(experiment_path)
    if resuming:  # a resumed search keeps the settings it started with
        saved = saved_settings(experiment_path)
        conflicts = setting_conflicts(saved, {k: getattr(args, k) for k in given})
        if conflicts:
            raise UsageError(f"search {name} was started with {', '.join(f'{k}={was}' for k, was, _ in conflicts)} "
                             "and resumes with its own settings: drop those flags, or pick another --name")
        for key in SEARCH_SETTINGS:
            if key in saved:
                setattr(args, key, saved[key])
    space = workload.space(args)
    data = workload.load_data(args)  # once, in the driver; trials get it through the object store
    resources = start_ray(args)
    tracking_uri = args.tracking_uri or default_tracking_uri()
    concurrency = plan_concurrency(args, resources.get("CPU", 1), resources.get("GPU", 0))
    trainable = tune.with_resources(
        tune.with_parameters(
            run_trial, data=data, trial_fn=workload.trial_fn, to_config=space.to_config,
            threads=max(1, int(args.cpus_per_trial)), search_name=name,
        ),
        {"cpu": args.cpus_per_trial, "gpu": args.gpus_per_trial},
    )
    tracker = MlflowSearchTracker(
        tracking_uri, args.experiment, name,
        search_params(workload, space, args, concurrency, sys.argv[1:] if argv is None else argv),
        trial_params=workload.fixed_params(data, args), max_epochs=args.max_epochs, metric=workload.metric,
        resolve=space.to_config,
    )
    started = time.perf_counter()
    if not resuming and settings_file is not None:
        settings_file.parent.mkdir(parents=True, exist_ok=True)
        settings_file.write_text(json.dumps({k: getattr(args, k, None) for k in SEARCH_SETTINGS}, indent=1) + "\n")
    if resuming:
        print(f"resuming search {name} from {experiment_path}", flush=True)
        tuner = tune.Tuner.restore(experiment_path, trainable=trainable, resume_errored=True)
    else:
        searcher, param_space = make_searcher(workload, space, args)
        tuner = tune.Tuner(
            trainable,
            param_space=param_space,
            tune_config=tune.TuneConfig(
                metric=workload.metric, mode=workload.mode, search_alg=searcher, scheduler=make_scheduler(args),
                num_samples=args.trials, max_concurrent_trials=concurrency, reuse_actors=True,
            ),
            run_config=tune.RunConfig(
                name=name,
                storage_path=root,
                callbacks=[tracker],
                checkpoint_config=tune.CheckpointConfig(
                    num_to_keep=1, checkpoint_score_attribute=workload.metric, checkpoint_score_order=workload.mode
                ),
                failure_config=tune.FailureConfig(max_failures=0),
                verbose=args.verbose,
            ),
        )
    results = tuner.fit()
    wall = time.perf_counter() - started
    return finish(workload, args, results, name, experiment_path, tracker, wall)


def dry_run(workload: SearchWorkload, space: SearchSpace, args: argparse.Namespace) -> int:
    """What a search would do, without starting Ray, loading data or creating any MLflow run."""
    import random

    import torch

    cpus = os.cpu_count() or 1
    gpus = torch.cuda.device_count()
    parallel = plan_concurrency(args, cpus, gpus)
    where = f"cluster at {args.address}" if args.address else f"this machine ({cpus} CPUs, {gpus} GPUs)"
    scheduler = (
        f"ASHA on {workload.metric} ({workload.mode}): max_t={args.max_epochs} epochs, grace period "
        f"{args.grace_period}, reduction factor {args.reduction_factor}"
        if args.scheduler == "asha" else f"FIFO: every trial runs {args.max_epochs} epochs"
    )
    sampler = f"optuna TPE after {args.startup_trials} random trials" if args.searcher == "optuna" else "random"
    print(f"search space ({sampler}, seed {args.seed}):\n{space.describe()}\n")
    print(f"scheduler: {scheduler}")
    print(f"resources: {args.trials} trials, {parallel} in parallel on {where}; per trial "
          f"{args.cpus_per_trial:g} CPU(s) / {args.gpus_per_trial:g} GPU(s)\n")
    if workload.describe_config is None:
        return 0
    rng, reasons, valid = random.Random(args.seed), [], 0
    print(f"{args.dry_run_samples} sampled configurations:")
    for index in range(args.dry_run_samples):
        config = space.sample_config(rng)
        try:
            print(f"  {index + 1}. {workload.describe_config(config, args)}")
            valid += 1
        except ValueError as error:
            reasons.append(str(error))
            print(f"  {index + 1}. invalid: {error}")
    if valid == 0:
        raise UsageError(f"every sampled configuration is invalid, e.g.: {reasons[0]}")
    return 0


def search_params(
    workload: SearchWorkload, space: SearchSpace, args: argparse.Namespace, concurrency: int, argv: list[str]
) -> dict[str, Any]:
    """What the parent MLflow run records about the search itself; `argv` is what `main` parsed (not always
    `sys.argv`: the efficiency benchmark calls `main` in-process)."""
    return {
        "workload": workload.name, "trials": args.trials, "max_epochs": args.max_epochs,
        "searcher": args.searcher, "startup_trials": args.startup_trials if args.searcher == "optuna" else None,
        "scheduler": args.scheduler, "grace_period": args.grace_period,
        "reduction_factor": args.reduction_factor, "concurrency": concurrency,
        "cpus_per_trial": args.cpus_per_trial, "gpus_per_trial": args.gpus_per_trial,
        "seed": args.seed, "subset": args.subset, "space": space.describe(),
        "command": shlex.join(["python", "-m", f"search.{workload.name}", *argv]),
    }


def finish(workload, args, results, name, experiment_path, tracker, wall) -> int:
    """Ranked table, best checkpoint, summary file and MLflow parent update; tells the user what next."""
    rows = rank_results(results, workload, args.max_epochs, tracker.resolve, trial_states(experiment_path))
    table = format_table(rows, workload.metric)
    best_checkpoint = None
    scored = [r for r in rows if r[f"best_{workload.metric}"] is not None]  # ranked best first
    if scored:
        best = results.get_best_result(workload.metric, workload.mode, scope="all")
        checkpoint = best.get_best_checkpoint(workload.metric, workload.mode)
        best_checkpoint = checkpoint.path if checkpoint is not None else None
    counts = {s: sum(r["status"] == s for r in rows) for s in ("COMPLETED", "STOPPED_EARLY", "ERROR", "INTERRUPTED")}
    finished_all = counts["COMPLETED"] + counts["STOPPED_EARLY"] + counts["ERROR"] >= args.trials
    previous = Path(experiment_path) / "search_summary.json"
    if "://" not in experiment_path and previous.is_file():  # finished before: count its time too
        wall += json.loads(previous.read_text())["wall_seconds"]
    summary = {
        "search": name,
        "workload": workload.name,
        "finished": finished_all,  # False after Ctrl-C: the summarizer skips it until it is resumed
        "searcher": args.searcher,
        "scheduler": args.scheduler,
        "wall_seconds": wall,
        "trials": len(rows),
        "trial_epochs": sum(r["epochs"] for r in rows),
        "completed": counts["COMPLETED"],
        "stopped_early": counts["STOPPED_EARLY"],
        "errored": counts["ERROR"],
        f"best_{workload.metric}": scored[0][f"best_{workload.metric}"] if scored else None,
        "best_trial": scored[0]["trial_id"] if scored else None,
        "best_checkpoint": best_checkpoint,
        "tracking_uri": tracker.tracking_uri,
        "command": tracker.search_params["command"],
        "machine": machine_info(),
    }
    if "://" not in experiment_path:
        path = Path(experiment_path) / "search_summary.json"
        path.write_text(json.dumps({**summary, "rows": rows}, indent=1, default=str) + "\n")
    recorded = {k: v for k, v in summary.items() if k not in ("tracking_uri", "machine")}
    tracker.finish_search(recorded, table, {r["trial_id"] for r in rows}, "FINISHED" if finished_all else "KILLED")
    print("\n" + table)
    for row in rows:
        if row["status"] == "ERROR":
            print(f"errored: {row['trial_id']}: {row['error']}")
    print(
        f"\nsearch {name}: {len(rows)} trials in {wall / 60:.1f} min "
        f"({counts['COMPLETED']} completed, {counts['STOPPED_EARLY']} stopped early by {args.scheduler.upper()}, "
        f"{counts['ERROR']} errored)"
    )
    if best_checkpoint:
        print(f"best {workload.metric} {summary[f'best_{workload.metric}']:.4f} — checkpoint: {best_checkpoint}")
    print(f"compare in MLflow: mlflow ui --backend-store-uri {tracker.tracking_uri}   (experiment {args.experiment})")
    if not finished_all:
        print(f"\nsearch {name} was interrupted with {len(rows) - counts['INTERRUPTED']} of {args.trials} trials "
              f"finished; continue it with: python -m search.{workload.name} --resume --name {name}")
        return 130
    data_flag = f" --{workload.name}-data-dir {shlex.quote(args.data_dir)}" if args.data_dir else ""
    print(f"export the winner: {workload.export_command}{data_flag}")
    return 0 if scored else 1
