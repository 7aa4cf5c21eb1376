"""What a search would do, said before it does it: the dry run (space, scheduler, resources, data, budget and
sample configurations, with nothing started or written) and the refit's cost next to the search's.

torch is imported inside `dry_run` (it counts the GPUs), not where this module is imported.
"""

from __future__ import annotations

import argparse
import os
import random
from typing import Any

from experiments.core.cli import UsageError
from experiments.core.space import SearchSpace
from experiments.core.task import Task
from search.runtime import plan_concurrency
from search.warm_start import named_warm_starts


def dry_run(task: Task, space: SearchSpace, args: argparse.Namespace, points: list[dict[str, Any]]) -> int:
    """What a search would do, without starting Ray, loading data or creating any MLflow run."""
    import torch

    cpus = os.cpu_count() or 1
    gpus = torch.cuda.device_count()
    parallel = plan_concurrency(args, cpus, gpus)
    where = f"cluster at {args.address}" if args.address else f"this machine ({cpus} CPUs, {gpus} GPUs)"
    scheduler = {
        "asha": f"ASHA on {task.metric.name} ({task.metric.mode}): max_t={args.max_epochs} epochs, grace period "
                f"{args.grace_period:g}, reduction factor {args.reduction_factor}",
        "bohb": f"HyperBandForBOHB on {task.metric.name} ({task.metric.mode}): max_t={args.max_epochs} epochs, "
                f"reduction factor {args.reduction_factor}",
        "fifo": f"FIFO: every trial runs {args.max_epochs} epochs",
    }[args.scheduler]
    sampler = {"optuna": f"optuna TPE after {args.startup_trials} random trials", "random": "random",
               "bohb": "BOHB (TuneBOHB)"}[args.searcher]
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
    if args.epoch_budget:
        print(f"trial-epoch budget: the search phase ends after {args.epoch_budget:g} trial-epochs in all")
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
