"""Train a fixed list of configurations through Ray Tune (a grid: FIFO, no sampler), then test each once.

What a refit (the K best of a search, trained again) and an ablation (a one-factor-at-a-time design × seeds) have
in common: the configurations are known up front, every one trains its full budget, each is tracked as a child run
of one MLflow parent, an interrupted grid resumes with `Tuner.restore`, and each best checkpoint is evaluated once
on the test split.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import signal
import threading
from pathlib import Path
from typing import Any

from experiments.core.errors import UsageError
from experiments.core.task import Task
from search.results import missing_metric, trial_id_of, trial_states
from search.trainable import run_trial


def pick_config(configs: list[dict[str, Any]], sampled: dict[str, Any]) -> dict[str, Any]:
    """Tune's grid samples an index; the trial trains the configuration at that index."""
    return dict(configs[sampled["grid_index"]])


def train_and_test(
    task: Task, args: argparse.Namespace, configs: list[dict[str, Any]], data: Any, storage: str, run_name: str,
    tracker, config_prefix: str,
) -> tuple[list[dict[str, Any]], bool]:
    """One record per configuration that trained to its end ({index, trial_id, val metrics, the test score under
    the metric's `test_name`, test_loss}), and whether every configuration ended (False after Ctrl-C, so the grid
    stays resumable)."""
    import functools

    import ray
    from ray import tune

    from search.schedulers import MetricCheck

    metric = task.metric
    cpus = max(args.cpus_per_trial, int(ray.cluster_resources().get("CPU", 1) // len(configs)))  # spare cores
    to_config = functools.partial(pick_config, configs)
    tracker.resolve = to_config
    trainable = tune.with_resources(
        tune.with_parameters(run_trial, data=data, trial_fn=task.trial, to_config=to_config, threads=int(cpus),
                             search_name=config_prefix, report_every=args.report_every, metric=metric),
        {"cpu": cpus, "gpu": args.gpus_per_trial},
    )
    path = f"{storage.rstrip('/')}/{run_name}"
    if tune.Tuner.can_restore(path):
        tuner = tune.Tuner.restore(path, trainable=trainable, resume_errored=True)
    else:
        tuner = tune.Tuner(
            trainable,
            param_space={"grid_index": tune.grid_search(list(range(len(configs))))},
            tune_config=tune.TuneConfig(metric=metric.name, mode=metric.mode, max_concurrent_trials=len(configs)),
            run_config=tune.RunConfig(
                name=run_name, storage_path=storage, callbacks=[tracker], verbose=args.verbose,
                stop=MetricCheck(metric.name),
                checkpoint_config=tune.CheckpointConfig(num_to_keep=1, checkpoint_score_attribute=metric.name,
                                                        checkpoint_score_order=metric.mode),
                failure_config=tune.FailureConfig(max_failures=0),
            ),
        )
    results = tuner.fit()
    reported = missing_metric(results, metric)
    if reported is not None:
        tracker.end_search("FAILED")
        raise UsageError(metric.missing(task.key, reported))
    states = trial_states(path)
    records, finished = [], True
    with interruptible() as interrupted:
        for result in results:
            trial_id = trial_id_of(result)
            if states.get(trial_id, "TERMINATED") != "TERMINATED" or result.error is not None:
                finished = finished and result.error is not None  # an error is final; Ctrl-C is not
                continue
            folder = Path(result.get_best_checkpoint(metric.name, metric.mode).path)
            metrics = json.loads((folder / "metrics.json").read_text())
            test, fresh = evaluate_once(task, folder, Path(result.path), data)
            tested = {metric.test_name: test[metric.test_key], "test_loss": test.get("loss")}
            if fresh:
                tracker.log_trial_metrics(trial_id, {k: v for k, v in tested.items() if v is not None})
            records.append({"index": result.config["grid_index"], "trial_id": trial_id, "metrics": metrics,
                            **tested, "checkpoint": str(folder)})
    if interrupted.is_set():
        print(f"interrupted during the test passes: {len(records)} run(s) tested and kept; resume to test the rest",
              flush=True)
    return records, finished and not interrupted.is_set() and len(results) == len(configs)


TEST_RESULT = "test_result.json"  # in the trial's folder (never exported), for the checkpoint it names


def evaluate_once(task: Task, checkpoint: Path, trial_folder: Path, data: Any) -> tuple[dict[str, Any], bool]:
    """The checkpoint's one test pass, and whether it ran now: it is kept beside the trial, so a grid resumed
    after an interruption during its test passes (minutes each on a CPU) does not test a run again."""
    kept = trial_folder / TEST_RESULT
    if kept.is_file():
        recorded = json.loads(kept.read_text())
        if recorded.get("checkpoint") == checkpoint.name:
            return recorded, False
    from experiments.core.training import pick_device

    test = task.evaluate_checkpoint(checkpoint, data, pick_device())
    result = {"checkpoint": checkpoint.name, task.metric.test_key: test[task.metric.test_key], "loss": test.get("loss")}
    staging = kept.with_name(f".{TEST_RESULT}.tmp")
    staging.write_text(json.dumps(result) + "\n")
    staging.replace(kept)
    return result, True


@contextlib.contextmanager
def interruptible():
    """Ctrl-C during the test passes ends them (Tune's own SIGINT handler outlives `fit()` and swallows it);
    yields an Event set when that happened. The tests already run are kept."""
    interrupted = threading.Event()
    in_main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGINT, signal.default_int_handler) if in_main else None
    try:
        yield interrupted
    except KeyboardInterrupt:
        interrupted.set()
    finally:
        if in_main:
            signal.signal(signal.SIGINT, previous)
