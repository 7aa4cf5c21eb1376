"""How a search picks its trials and stops them early: the searcher (Optuna TPE, its study persisted, or Tune's
seeded random sampler) and the scheduler (ASHA that spares the warm starts, or FIFO).

Both take the warm-start points: the searcher evaluates them first, ASHA never stops them early. Optuna and Ray
are imported inside the functions that use them: importing this module is light.
"""

from __future__ import annotations

import argparse
import math
import random
from typing import Any

from experiments.core.space import SearchSpace
from experiments.core.task import ACCURACY, Metric
from search.cli import EPSILON


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


def drop_stale_study(storage, name: str) -> None:
    """A new search whose name an old, deleted search used would continue that search's Optuna study."""
    import optuna

    if any(s.study_name == name for s in optuna.study.get_all_study_summaries(storage)):
        optuna.delete_study(study_name=name, storage=storage)
        print(f"replaced an old Optuna study named {name} (no search folder of that name is left)", flush=True)
