"""Refit: the search's K best configurations trained again at full budget, then tested once each.

A search ranks configurations on (a subset of) the training split, often cut short by ASHA; its best trial's
validation score is optimistic (the winner's curse: it was picked *because* it scored high). The refit trains
each of the K best again on the full training split, with a fresh seed, for `--refit-epochs`, through Ray on the
same cluster, as child runs of the same MLflow parent tagged `tunelab.phase=refit`; each is evaluated once on the
test split. The summarizer exports the refit winner. A search killed during its refit resumes the refit.

The warm-start configurations are refit beside the K best. A search ranks on a cheap fidelity (a subset, few
epochs), which favours configurations that learn fast over those that end best: the IMDB preset a search was
warm-started from ranked 9th there, yet beat the refit of the search's best on the full data. Refitting the
warm starts too means the search ships a model at least as good, by validation, as the one it started from.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

from experiments.core.task import Task
from search.grid import train_and_test
from search.warm_start import is_warm_start

REFIT_SEED = 1000  # refits train with seed + this: a fresh draw, not a replay of the search trial


def refit_winners(
    task: Task, args: argparse.Namespace, name: str, experiment_path: str, rows: list[dict[str, Any]],
    tracking_uri: str, search_data: Any, warm_points: Sequence[dict[str, Any]] = (),
    done: Sequence[dict[str, Any]] = (),
) -> tuple[list[dict[str, Any]], bool]:
    """Train and test the `args.refit` best rows and the warm-start rows (`warm_points`, sampler values) that `done`
    (the records of an earlier, finished refit of this search) lacks; returns one record per refit, `done`'s
    included (best val first), and whether every refit ended (False after Ctrl-C, so the search stays resumable;
    then `done` alone, so the resumed grid is asked for the same configurations)."""
    from search.tracking import MlflowSearchTracker

    metric = task.metric
    val, searched, best_key = metric.name, f"search_{metric.name}", metric.best_key
    ranked = [r for r in rows if r[best_key] is not None]
    warm = [r for r in ranked if is_warm_start(r, list(warm_points))]
    refit_already = {r["search_trial"] for r in done}
    best = [r for r in ranked[: args.refit] if r["trial_id"] not in refit_already]
    scored = best + [r for r in warm if r not in best and r["trial_id"] not in refit_already]
    if not scored:
        return sorted(done, key=lambda r: metric.sort_key(r[val])), True
    configs = [{**r["params"], "epochs": args.refit_epochs, "seed": args.seed + REFIT_SEED} for r in scored]
    refit_subset = args.refit_subset or None  # None: the whole training split
    data = search_data if refit_subset == args.subset else task.load_data(args.data_dir, refit_subset, 0)
    tracker = MlflowSearchTracker(tracking_uri, args.experiment, name, search_params={},
                                  trial_params=task.fixed_params(data), max_epochs=args.refit_epochs, phase="refit",
                                  metric=metric)
    extra = f" and {len(scored) - len(best)} warm start(s)" if len(scored) > len(best) else ""
    which = (f"{len(best)} more of the {args.refit} best configuration(s){extra} ({len(done)} refit before, kept)"
             if done else f"the {len(best)} best configuration(s){extra}")
    print(f"refitting {which} on {len(data.train):,} training {task.example_noun}s, {args.refit_epochs} epochs each",
          flush=True)
    grid = "refit" if not done else f"refit-top{args.refit}"  # a grown refit is a grid of its own, resumable too
    records, finished = train_and_test(task, args, configs, data, experiment_path, grid, tracker, f"{name}-{grid}")
    refits = []
    for record in records:
        rank, metrics = record["index"], record["metrics"]
        tracker.log_trial_metrics(record["trial_id"], {searched: scored[rank][best_key]})
        refits.append({
            "rank": ranked.index(scored[rank]) + 1, "warm_start": scored[rank] in warm,
            "search_trial": scored[rank]["trial_id"], searched: scored[rank][best_key],
            "refit_trial": record["trial_id"], val: metrics[val], "epoch": metrics["epoch"],
            "epochs": args.refit_epochs, metric.test_name: record[metric.test_name], "test_loss": record["test_loss"],
            "train_seconds": metrics["train_seconds"], "checkpoint": record["checkpoint"], "params": configs[rank],
            "train_size": len(data.train),
        })
    kept = [*done, *refits] if finished or not done else list(done)  # a grown grid counts once it has ended
    return sorted(kept, key=lambda r: metric.sort_key(r[val])), finished
