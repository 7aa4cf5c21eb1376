"""Refit: the search's K best configurations trained again at full budget, then tested once each.

A search ranks configurations on (a subset of) the training split, often cut short by ASHA; its best trial's
validation score is optimistic (the winner's curse: it was picked *because* it scored high). The refit trains
each of the K best again on the full training split, with a fresh seed, for `--refit-epochs`, through Ray on the
same cluster, as child runs of the same MLflow parent tagged `tunelab.phase=refit`; each is evaluated once on the
test split. The summarizer exports the refit winner. A search killed during its refit resumes the refit.
"""

from __future__ import annotations

import argparse
import functools
import json
from pathlib import Path
from typing import Any

from experiments.task import Task
from search.engine import BEST, METRIC, MODE, reports_per_epoch, run_trial, trial_id_of, trial_states

REFIT_SEED = 1000  # refits train with seed + this: a fresh draw, not a replay of the search trial


def refit_config(configs: list[dict[str, Any]], sampled: dict[str, Any]) -> dict[str, Any]:
    return dict(configs[sampled["refit_rank"]])


def refit_winners(
    task: Task, args: argparse.Namespace, name: str, experiment_path: str, rows: list[dict[str, Any]],
    tracking_uri: str, search_data: Any,
) -> tuple[list[dict[str, Any]], bool]:
    """Train and test the `args.refit` best rows; returns one record per refit (best val first), and whether every
    refit ended (False after Ctrl-C, so the search stays resumable)."""
    import ray
    from ray import tune

    from experiments.training import pick_device
    from search.tracking import MlflowSearchTracker

    scored = [r for r in rows if r[BEST] is not None][: args.refit]
    configs = [{**r["params"], "epochs": args.refit_epochs, "seed": args.seed + REFIT_SEED} for r in scored]
    data = task.load_data(args.data_dir, None, 0) if args.subset else search_data  # the full training split
    cpus = max(args.cpus_per_trial, int(ray.cluster_resources().get("CPU", 1) // len(configs)))
    to_config = functools.partial(refit_config, configs)
    path = f"{experiment_path}/refit"
    tracker = MlflowSearchTracker(tracking_uri, args.experiment, name, search_params={},
                                  trial_params=task.fixed_params(data), max_epochs=args.refit_epochs,
                                  resolve=to_config, phase="refit")
    trainable = tune.with_resources(
        tune.with_parameters(run_trial, data=data, trial_fn=task.trial, to_config=to_config, threads=int(cpus),
                             search_name=f"{name}-refit", reports_per_epoch=reports_per_epoch(args)),
        {"cpu": cpus, "gpu": args.gpus_per_trial},
    )
    print(f"refitting the {len(configs)} best configuration(s) on {len(data.train):,} training "
          f"{task.example_noun}s, {args.refit_epochs} epochs each, {cpus:g} CPU(s) each", flush=True)
    if tune.Tuner.can_restore(path):
        tuner = tune.Tuner.restore(path, trainable=trainable, resume_errored=True)
    else:
        tuner = tune.Tuner(
            trainable,
            param_space={"refit_rank": tune.grid_search(list(range(len(configs))))},
            tune_config=tune.TuneConfig(metric=METRIC, mode=MODE, max_concurrent_trials=len(configs)),
            run_config=tune.RunConfig(
                name="refit", storage_path=experiment_path, callbacks=[tracker], verbose=args.verbose,
                checkpoint_config=tune.CheckpointConfig(num_to_keep=1, checkpoint_score_attribute=METRIC,
                                                        checkpoint_score_order=MODE),
                failure_config=tune.FailureConfig(max_failures=0),
            ),
        )
    results = tuner.fit()
    states = trial_states(path)
    refits, finished = [], True
    for result in results:
        trial_id = trial_id_of(result)
        if states.get(trial_id, "TERMINATED") != "TERMINATED" or result.error is not None:
            finished = finished and result.error is not None  # an error is final; Ctrl-C is not
            continue
        rank = result.config["refit_rank"]
        checkpoint = result.get_best_checkpoint(METRIC, MODE)
        folder = Path(checkpoint.path)
        metrics = json.loads((folder / "metrics.json").read_text())
        test = task.evaluate_checkpoint(folder, data, pick_device())
        tracker.log_trial_metrics(trial_id, {"test_accuracy": test["accuracy"], "test_loss": test["loss"],
                                             "search_val_accuracy": scored[rank][BEST]})
        refits.append({
            "rank": rank + 1, "search_trial": scored[rank]["trial_id"], "search_val_accuracy": scored[rank][BEST],
            "refit_trial": trial_id, "val_accuracy": metrics["val_accuracy"], "epoch": metrics["epoch"],
            "epochs": args.refit_epochs, "test_accuracy": test["accuracy"], "test_loss": test["loss"],
            "train_seconds": metrics["train_seconds"], "checkpoint": str(folder), "params": configs[rank],
            "train_size": len(data.train),
        })
    refits.sort(key=lambda r: -r["val_accuracy"])
    return refits, finished and len(results) == len(configs)  # every refit trained, or failed for good
