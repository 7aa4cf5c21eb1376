"""What a search records about itself and says at its end: the parameters of its MLflow parent run, the summary
of its search phase (ranked rows, counts, the best checkpoint), and `finish`, which writes `search_summary.json`,
closes the parent run and prints the ranked table, the refits and what to do next.
"""

from __future__ import annotations

import argparse
import shlex
from typing import Any

from experiments.core.cli import machine_info
from experiments.core.records import SearchRecord
from experiments.core.space import SearchSpace
from experiments.core.task import Task
from experiments.core.units import as_epoch
from search.cli import search_command
from search.results import format_table, rank_results, trial_states
from search.storage import write_summary


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


def kept_best_checkpoint(results, metric) -> str | None:
    """The best checkpoint of the best trial that kept one. A trial Hyperband (BOHB) had paused when a budget ended
    the search can hold none (Tune: "No checkpoint exists in the trial directory"); the next best is taken then."""
    ranked = sorted(results, key=lambda r: metric.sort_key(
        metric.best_of(map(float, r.metrics_dataframe[metric.name].dropna()), key=float)
        if r.metrics_dataframe is not None and metric.name in r.metrics_dataframe else None))
    for result in ranked:
        try:
            checkpoint = result.get_best_checkpoint(metric.name, metric.mode)
        except RuntimeError:
            continue
        if checkpoint is not None:
            return checkpoint.path
    return None


def summarize_search(task: Task, args, results, name, experiment_path, tracker) -> SearchRecord:
    """The search phase's summary: ranked rows, the best checkpoint, counts; whether every trial has ended."""
    metric = task.metric
    rows = rank_results(results, args.max_epochs, tracker.resolve, trial_states(experiment_path), metric)
    best_checkpoint = None
    scored = [r for r in rows if r[metric.best_key] is not None]  # ranked best first
    if scored:
        best_checkpoint = kept_best_checkpoint(results, metric)
    counts = {s: sum(r["status"] == s for r in rows) for s in ("COMPLETED", "STOPPED_EARLY", "ERROR", "INTERRUPTED")}
    return SearchRecord(
        search=name,
        workload=task.name,
        search_finished=counts["COMPLETED"] + counts["STOPPED_EARLY"] + counts["ERROR"] >= args.trials,
        finished=False,
        searcher=args.searcher,
        scheduler=args.scheduler,
        report_every=args.report_every,
        subset=args.subset,  # the search's fidelity, against the refit's whole split and --refit-epochs
        max_epochs=args.max_epochs,
        trials=len(rows),
        trial_epochs=as_epoch(sum(r["epochs"] for r in rows)),
        completed=counts["COMPLETED"],
        stopped_early=counts["STOPPED_EARLY"],
        errored=counts["ERROR"],
        interrupted=counts["INTERRUPTED"],
        best_trial=scored[0]["trial_id"] if scored else None,
        best_checkpoint=best_checkpoint,
        tracking_uri=tracker.tracking_uri,
        command=tracker.search_params["command"],
        machine=machine_info(),
        rows=rows,
        by_task={metric.best_key: scored[0][metric.best_key] if scored else None},
    )


def finish(task: Task, args, summary: SearchRecord, name, experiment_path, tracker) -> int:
    """Summary file, MLflow parent update, the ranked table and refit results; tells the user what next."""
    rows, refits, metric = summary.rows, summary.refit, task.metric
    table = format_table(rows, metric)
    write_summary(experiment_path, summary)
    numbers = ("finished", "wall_seconds", "resumes", "trials", "trial_epochs", "completed", "stopped_early",
               "errored", metric.best_key, "best_trial", "best_checkpoint", "searcher", "scheduler", "command",
               "search")
    recorded = {k: summary.to_dict().get(k) for k in numbers}
    if refits:
        winner, val, test = refits[0], metric.name, metric.test_name
        recorded.update({f"refit_{val}": winner[val], f"refit_{test}": winner[test],
                         "refit_winners_curse": metric.gain(winner[f"search_{val}"], winner[val])})
    finished = summary.finished
    trial_ids = {r["trial_id"] for r in rows}
    tracker.finish_search(recorded, table, trial_ids, "FINISHED" if finished else "KILLED")
    print("\n" + table)
    for row in rows:
        if row["status"] == "ERROR":
            print(f"errored: {row['trial_id']}: {row['error']}")
    resumed = f", resumed {summary.resumes}×" if summary.resumes else ""
    print(
        f"\nsearch {name}: {len(rows)} trials in {summary.wall_seconds / 60:.1f} min{resumed} "
        f"({summary.completed} completed, {summary.stopped_early} stopped early by {args.scheduler.upper()}, "
        f"{summary.errored} errored)"
    )
    if summary.best_checkpoint:
        print(f"best {metric.name} {summary.best_score(metric.best_key):.4f} — checkpoint: {summary.best_checkpoint}")
    for refit in refits:
        print(f"refit {refit['rank']} (search trial {refit['search_trial']}, search val "
              f"{refit[f'search_{metric.name}']:.4f}): val {refit[metric.name]:.4f}, test "
              f"{refit[metric.test_name]:.4f} after {refit['epochs']:g} epochs — {refit['checkpoint']}")
    print(f"compare in MLflow: mlflow ui --backend-store-uri {tracker.tracking_uri}   (experiment {args.experiment})")
    if summary.optuna_storage:
        print(f"the Optuna study: optuna-dashboard {summary.optuna_storage}   (study {summary.optuna_study})")
    if not finished:
        done = len(rows) - summary.interrupted
        phase = "its refit" if summary.search_finished else f"{done} of {args.trials} trials finished"
        print(f"\nsearch {name} was interrupted ({phase}); continue it with: "
              f"{search_command(task)} --resume --name {name}")
        return 130
    data_flag = f" --data-dir {task.key}={shlex.quote(args.data_dir)}" if args.data_dir else ""
    print(f"export the winner: python -m experiments.summarize --tasks {task.key}{data_flag}")
    return 0 if summary.best_trial else 1
