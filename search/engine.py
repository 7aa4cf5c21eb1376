"""The one search engine: Ray Tune + (Optuna | random) + (ASHA | FIFO), tracked in MLflow, resumable.

A `Task` says how to load its data, which trial function to run and which space to search; everything else —
resources, scheduling, checkpoints, tracking, resume, the final table — is here, the same for every task.
Every task is selected on its own metric (`Task.metric`: validation accuracy, maximised, unless the task says
otherwise): the searcher, ASHA, the checkpoints kept, the tracker and the ranking all read that one metric.

`main` runs a search in three phases: the search (Tune runs the sampled trials, ASHA stops the weak ones early),
the refit (the K best configurations trained again at full budget and tested once, `search.refit`) and the
summary (`search_summary.json`, the MLflow parent run and the ranked table, `search.outcome`). The pieces live
beside this module: the command line in `search.cli`; Ray, the wall clock and the time budget in `search.runtime`;
the search folder in `search.storage`; the searcher and scheduler in `search.strategy`; the trainable in
`search.trainable`; the reading of Tune's results in `search.results`. `--dry-run` is `search.dry_run`, `--ablate`
`search.ablation`.

A search lives in its folder (`search.storage`), and each run of `main` on that folder reads where the search
stands and goes on from there:

- fresh (no Tune state in the folder): search, refit, summary.
- interrupted during its search (Tune's state is there; the summary, if any, says `search_finished: false`): the
  Tuner is restored (trials cut short, or errored, go on from their last checkpoint; those not yet sampled are
  sampled), then the refit and the summary.
- search over, refit not ended (`search_finished: true`, `finished: false`: the run that ended the search, by its
  trials or its time budget, stopped before its refit ended or began): no trial is run again; the refit's grid
  goes on where it stopped (the refits that ended are kept), then the summary.
- finished (`finished: true`): the run says so and exits 0, unless it asks for a larger `--refit` (below).

`--resume` resumes the task's latest search where no `--name` is given (a `--name` that exists is resumed with or
without it) and is refused on a fresh folder. A resumed search keeps the settings it was started with
(`search_args.json`): a flag that contradicts them is refused, except `--refit K` larger than any before, which
grows the refit: a finished search refits those of its K best configurations that have no refit yet (the refits
made are kept); a search interrupted during its search (by Ctrl-C, so its summary was written) refits K after it;
a search stopped during its refit refuses it until that refit has ended (resume without `--refit`, then with it).

`--time-budget` counts the search phase's wall time across resumes: a resumed search whose budget is spent ranks
the trials it has and goes on to the refit. A run stopped by Ctrl-C (Tune saves its state and returns) still ranks
and summarizes what it has, exits 130 and prints the command that resumes it.

Importing this module loads neither torch nor Ray: `--help` and bad flags answer at once.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from experiments.core.cli import UsageError
from experiments.core.machine_load import load_average
from experiments.core.records import SEARCH_FILE, SearchRecord
from experiments.core.space import SearchSpace
from experiments.core.task import Task
from search import ablation
from search.cli import EPSILON, build_parser, check_args, given_settings, search_settings, typed_argv
from search.dry_run import dry_run, refit_cost
from search.importance import study_summary
from search.outcome import finish, search_params, summarize_search
from search.refit import refit_winners
from search.results import missing_metric
from search.runtime import WallClock, interrupt_after, plan_concurrency, send_cluster_token, start_ray
from search.storage import (
    read_summary,
    refits_done,
    resolve_name,
    save_settings,
    saved_settings,
    setting_conflicts,
    storage_root,
    write_summary,
)
from search.strategy import check_space, drop_stale_study, make_scheduler, make_searcher
from search.trainable import run_trial
from search.warm_start import is_warm_start, named_warm_starts, warm_start_points


@dataclass(frozen=True)
class SearchState:
    """Where a search stands when a run of `main` starts, read from its folder (the module docstring's states)."""

    root: str  # the storage root that holds the search folder
    name: str
    experiment_path: str  # the search folder
    previous: SearchRecord | None  # the summary the last run left; None when there is none
    saved: dict[str, Any]  # the settings it was started with (`search_args.json`); empty for a fresh search
    refit_top: int  # the --refit whose refit has ended (0: none yet)
    more_refits: bool  # this run asks for a larger --refit than any before: refit the next best too
    search_done: bool  # the search phase has ended: this run only refits
    resuming: bool  # this run goes on with the folder's search instead of starting one

    @property
    def finished(self) -> bool:
        """Nothing left to do: the search and its refit have ended, and no larger --refit is asked for."""
        return bool(self.previous and self.previous.finished) and not self.more_refits


def read_state(task: Task, args: argparse.Namespace, root: str, given: set[str]) -> SearchState:
    """Where the named (or, with --resume, the latest) search stands; a run its state cannot take is refused:
    --resume of nothing, and a larger --refit while a refit is unfinished."""
    from ray import tune

    name = resolve_name(task, args, root)
    experiment_path = f"{root.rstrip('/')}/{name}"
    previous = read_summary(experiment_path)
    saved = saved_settings(experiment_path)
    refit_top = refits_done(previous, saved)
    # a larger --refit on a resumed search refits the next best too: the refits already made are kept
    more_refits = bool(previous) and "refit" in given and args.refit > max(refit_top, saved.get("refit", 0))
    if more_refits and previous.search_finished and not previous.finished:
        raise UsageError(f"search {name} was stopped during its refit: resume it without --refit to finish that "
                         f"refit, then resume with --refit {args.refit} to refit more")
    search_done = bool(previous and previous.search_finished)  # killed during the refit, or refit grown
    resuming = search_done or tune.Tuner.can_restore(experiment_path)
    state = SearchState(root, name, experiment_path, previous, saved, refit_top, more_refits, search_done, resuming)
    if args.resume and not resuming and not state.finished:
        raise UsageError(f"--resume: no search to resume at {experiment_path}")
    return state


def keep_started_settings(task: Task, args: argparse.Namespace, state: SearchState, given: set[str]) -> None:
    """A resumed search runs with the settings it was started with: a flag that contradicts them is refused; a
    larger --refit is taken, and saved so that a resume after a kill goes on with it. A task setting its saved
    settings lack (kept only since a later version) is not guessed from today's default: it must be given, and is
    then saved."""
    unsaved = [k for k in task.search_settings if state.saved and k not in state.saved]
    if any(k not in given for k in unsaved):
        flags = ", ".join("--" + k.replace("_", "-") for k in unsaved)
        raise UsageError(f"search {state.name} did not save its {flags}: resume it giving the value it was started "
                         "with")
    if unsaved:
        state.saved.update({k: getattr(args, k) for k in unsaved})
        save_settings(state.experiment_path, state.saved)
    kept = [k for k in given if not (k == "refit" and state.more_refits)]
    conflicts = setting_conflicts(state.saved, {k: getattr(args, k) for k in kept})
    if conflicts:
        raise UsageError(f"search {state.name} was started with {', '.join(f'{k}={was}' for k, was, _ in conflicts)}"
                         " and resumes with its own settings: drop those flags, or pick another --name"
                         + (" (--refit may only grow)" if any(k == "refit" for k, _, _ in conflicts) else ""))
    for key in search_settings(task):
        if key in state.saved and not (key == "refit" and state.more_refits):
            setattr(args, key, state.saved[key])
    if state.more_refits:
        save_settings(state.experiment_path, {**state.saved, "refit": args.refit})


def open_study(args: argparse.Namespace, tracking_uri: str, state: SearchState) -> tuple[str | None, Any]:
    """An Optuna search's study store, beside the MLflow store: (its URL, the storage); (None, None) for a random
    search. A new search first drops an old study of its name."""
    if args.searcher != "optuna":
        return None, None
    from search.tracking import optuna_storage

    study_url, storage = optuna_storage(tracking_uri)
    if not state.resuming:
        drop_stale_study(storage, state.name)
    return study_url, storage


def make_tuner(task: Task, args: argparse.Namespace, space: SearchSpace, state: SearchState, data: Any,
               points: list[dict[str, Any]], storage: Any, tracker, concurrency: int):
    """Tune's Tuner for the search phase: restored from the folder when resuming, else a new one that samples
    `args.trials` trials (the warm-start `points` first) and stops them by the scheduler."""
    from ray import tune
    from ray.tune.stopper import CombinedStopper

    from search.schedulers import EpochBudget, MetricCheck

    metric = task.metric
    trainable = tune.with_resources(
        tune.with_parameters(
            run_trial, data=data, trial_fn=task.trial, to_config=space.to_config,
            threads=max(1, int(args.cpus_per_trial)), search_name=state.name, report_every=args.report_every,
            metric=metric,
        ),
        {"cpu": args.cpus_per_trial, "gpu": args.gpus_per_trial},
    )
    if state.resuming:
        print(f"resuming search {state.name} from {state.experiment_path}", flush=True)
        return tune.Tuner.restore(state.experiment_path, trainable=trainable, resume_errored=True)
    study = (storage, state.name) if storage is not None else None
    searcher, param_space = make_searcher(space, args, points, study, metric)
    return tune.Tuner(
        trainable,
        param_space=param_space,
        tune_config=tune.TuneConfig(
            metric=metric.name, mode=metric.mode, search_alg=searcher,
            scheduler=make_scheduler(args, space, points),
            num_samples=args.trials, max_concurrent_trials=concurrency, reuse_actors=True,
        ),
        run_config=tune.RunConfig(
            name=state.name,
            storage_path=state.root,
            callbacks=[tracker],
            stop=(MetricCheck(metric.name) if args.epoch_budget is None
                  else CombinedStopper(MetricCheck(metric.name), EpochBudget(args.epoch_budget))),
            checkpoint_config=tune.CheckpointConfig(
                num_to_keep=1, checkpoint_score_attribute=metric.name, checkpoint_score_order=metric.mode
            ),
            failure_config=tune.FailureConfig(max_failures=0),
            verbose=args.verbose,
        ),
    )


def fit_within_budget(tuner, args: argparse.Namespace, clock: WallClock, resuming: bool) -> tuple[Any, bool]:
    """Tune's results, and whether the time budget (what earlier runs of the search left of it) ended the fit."""
    budget_left = None if args.time_budget is None else args.time_budget * 60 - clock.seconds
    if budget_left is not None and budget_left <= 0 and resuming:
        return tuner.get_results(), True  # nothing left to spend: rank what there is
    with interrupt_after(budget_left) as timer:
        results = tuner.fit()
    return results, timer.is_set()


def search_phase(task: Task, args: argparse.Namespace, state: SearchState, tuner, tracker,
                 warm: list[dict[str, Any]], study_url: str | None, clock: WallClock) -> SearchRecord:
    """Run the trials, then the search phase's summary: ranked rows (the warm starts marked), the command as first
    typed, whether the budget ended it, and what the Optuna study learned."""
    metric = task.metric
    load_at_start = load_average()  # other work on the machine shows here, before the trials add their own
    results, out_of_time = fit_within_budget(tuner, args, clock, state.resuming)
    reported = missing_metric(results, metric)
    if reported is not None:
        tracker.end_search("FAILED")
        raise UsageError(metric.missing(task.key, reported))
    summary = summarize_search(task, args, results, state.name, state.experiment_path, tracker)
    summary.search_wall_seconds = clock.seconds  # the refit's time is the rest of wall_seconds
    summary.time_budget = args.time_budget
    summary.load = {"start": load_at_start, "end": load_average()}
    for row in summary.rows:
        row["warm_start"] = is_warm_start(row, warm)
    previous = state.previous
    if previous and previous.command and previous.command != summary.command:
        summary.command, summary.resumed_with = previous.command, summary.command  # as first typed
    if args.epoch_budget is not None and summary.trial_epochs >= args.epoch_budget - EPSILON:
        summary.search_finished, summary.stopped_by_epoch_budget = True, args.epoch_budget
        print(f"search {state.name}: its budget of {args.epoch_budget:g} trial-epochs is spent after "
              f"{summary.trials} trials", flush=True)
    if out_of_time:  # the budget ends the search phase as surely as the last trial would
        summary.search_finished, summary.stopped_by_time_budget = True, args.time_budget
        print(f"search {state.name}: its {args.time_budget:g}-minute budget is spent after "
              f"{summary.trials} trials; on to the refit", flush=True)
    if study_url is not None:
        summary = replace(summary, **study_summary(study_url, state.name, Path(state.experiment_path)))
    return summary


def refit_phase(task: Task, args: argparse.Namespace, state: SearchState, summary: SearchRecord, data: Any,
                warm: list[dict[str, Any]], tracker, clock: WallClock) -> bool:
    """Refit the best configurations of an ended search phase into `summary.refit` (nothing with --refit 0 or
    without a scored trial); whether the refit has ended. The summary is saved unfinished first, so a run killed
    during the refit resumes it."""
    if not (summary.search_finished and args.refit > 0 and summary.best_trial):
        return True
    if state.more_refits and state.search_done:
        summary.resumed_with = tracker.search_params["command"]
    write_summary(state.experiment_path, replace(summary, finished=False, wall_seconds=clock.seconds))
    summary.refit, refit_finished = refit_winners(
        task, args, state.name, state.experiment_path, summary.rows, tracker.tracking_uri, data, warm,
        done=summary.refit if state.refit_top else [],
    )
    if refit_finished:
        summary.refit_top = args.refit
    return refit_finished


def main(task: Task, argv: list[str] | None = None) -> int:
    """Start, resume or grow one search of `task` from its command line (`argv`, else `sys.argv`), or run its dry
    run or ablation. Returns the exit code: 0 finished (or nothing left to do), 1 finished without a scored trial,
    130 stopped before the end (resumable)."""
    started = time.perf_counter()  # the wall clock counts from here: loading data and starting Ray count too
    argv = typed_argv(argv)
    parser = build_parser(task)
    args = parser.parse_args(argv)
    given = given_settings(parser, args, argv, search_settings(task))  # before check_args fills in derived values
    check_args(args)
    if args.address is not None:
        send_cluster_token()  # before anything imports Ray: Ray reads the mode into its config at import
    if args.ablate is not None:
        return ablation.main(task, args, argv, started)
    if args.vary:
        raise UsageError("--vary needs --ablate BASE")
    root = storage_root(args)
    space = task.space(args)
    check_space(space, args)
    points = warm_start_points(task, space, args.warm_start, root) if args.warm_start else []
    if args.dry_run:
        return dry_run(task, space, args, points)

    state = read_state(task, args, root, given)
    if state.finished:
        print(f"search {state.name} has already finished (its summary: {state.experiment_path}/{SEARCH_FILE})")
        return 0
    if state.resuming:
        keep_started_settings(task, args, state, given)
        space = task.space(args)
    data = task.load_data(args.data_dir, args.subset, 0)  # once, in the driver; trials get it through the object store
    if not state.search_done:
        print(refit_cost(task, args, None if args.subset else len(data.train), len(points)), flush=True)

    from search.tracking import MlflowSearchTracker, default_tracking_uri

    resources = start_ray(args)
    tracking_uri = args.tracking_uri or default_tracking_uri()
    study_url, storage = open_study(args, tracking_uri, state)
    concurrency = plan_concurrency(args, resources.get("CPU", 1), resources.get("GPU", 0))
    tracker = MlflowSearchTracker(
        tracking_uri, args.experiment, state.name, search_params(task, space, args, concurrency, argv),
        trial_params=task.fixed_params(data), max_epochs=args.max_epochs, resolve=space.to_config, metric=task.metric,
    )
    if not state.resuming:
        save_settings(state.experiment_path, {k: getattr(args, k, None) for k in search_settings(task)})
    named = named_warm_starts(args)
    warm = warm_start_points(task, space, named, root) if named else []  # marked in the rows, refit beside the best

    with WallClock(state.experiment_path, state.resuming, started) as clock:
        if state.search_done:
            print(f"resuming search {state.name}: its search is done, continuing the refit", flush=True)
            summary = state.previous
        else:
            tuner = make_tuner(task, args, space, state, data, points, storage, tracker, concurrency)
            summary = search_phase(task, args, state, tuner, tracker, warm, study_url, clock)
        refit_finished = refit_phase(task, args, state, summary, data, warm, tracker, clock)
        summary.finished = summary.search_finished and refit_finished
        summary.wall_seconds, summary.resumes = clock.seconds, clock.resumes
        if summary.search_wall_seconds is not None:
            summary.refit_wall_seconds = clock.seconds - summary.search_wall_seconds
    return finish(task, args, summary, state.name, state.experiment_path, tracker)
