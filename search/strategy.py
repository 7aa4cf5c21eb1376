"""How a search picks its trials and stops them early: the searcher (Optuna TPE, its study persisted, Tune's
seeded random sampler, or BOHB) and the scheduler (ASHA that spares the warm starts, FIFO, or BOHB's Hyperband).

Both take the warm-start points: the searcher evaluates them first, ASHA never stops them early (BOHB takes none:
`search.cli.check_bohb`). Optuna and Ray are imported inside the functions that use them: importing this module is
light.
"""

from __future__ import annotations

import argparse
import math
import random
from typing import Any

from experiments.core.errors import UsageError
from experiments.core.space import Param, SearchSpace
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


def check_space(space: SearchSpace, args: argparse.Namespace) -> None:
    """BOHB samples from a ConfigSpace converted from Tune's domains, which cannot say "only when another
    parameter has this value": a space with conditional parameters is refused before anything starts."""
    conditional = [p.name for p in space.params if p.when is not None]
    if args.searcher == "bohb" and conditional:
        raise UsageError(f"--searcher bohb cannot search this space: {', '.join(conditional)} "
                         "depend on other parameters (use --searcher optuna or random)")


def tune_domain(param: Param):
    """A parameter as Tune's domain, the same distribution as `Param.draw` and `Param.suggest`."""
    from ray import tune

    if param.kind == "loguniform":
        return tune.loguniform(param.low, param.high)
    if param.kind == "uniform":
        return tune.uniform(param.low, param.high)
    if param.kind == "int":
        return tune.randint(int(param.low), int(param.high) + 1)  # Tune's upper bound is exclusive
    return tune.choice(list(param.choices))


def make_bohb(space: SearchSpace, args: argparse.Namespace, metric: Metric):
    """TuneBOHB over the space's parameters (under "sampled", as the random sampler's are) and the constants.
    ConfigSpace hands back numpy scalars (np.int64 for a choice of ints), which a config's JSON cannot hold: they
    are turned into Python values before a trial sees them."""
    from ray.tune.search.bohb import TuneBOHB

    class PlainBOHB(TuneBOHB):
        def suggest(self, trial_id: str):
            config = super().suggest(trial_id)
            if isinstance(config, dict) and isinstance(config.get("sampled"), dict):
                config["sampled"] = {k: v.item() if hasattr(v, "item") else v for k, v in config["sampled"].items()}
            return config

    param_space = {"sampled": {p.name: tune_domain(p) for p in space.params}, **space.constants}
    return PlainBOHB(metric=metric.name, mode=metric.mode, seed=args.seed), param_space


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
    if args.searcher == "bohb":
        return make_bohb(space, args, metric)
    from ray.tune.search.basic_variant import BasicVariantGenerator

    # Tune applies --concurrency (max_concurrent_trials) to a Searcher, not to a BasicVariantGenerator it is handed:
    # without its own max_concurrent, random search ran as many trials at once as the CPUs allowed
    return (BasicVariantGenerator(random_state=args.seed, max_concurrent=args.concurrency or 0),
            random_param_space(space, args.seed, points))


def reports_in(epochs: float, args: argparse.Namespace) -> int:
    """How many reports a trial has made after `epochs` (the training loop reports on a grid, see report_grid)."""
    return max(1, math.ceil(epochs / args.report_every - EPSILON))


def make_scheduler(args: argparse.Namespace, space: SearchSpace, points: list[dict[str, Any]]):
    """ASHA counts reports (Tune's training_iteration); epochs and fractions of one are converted here. The
    warm-start `points` are never stopped early (see search/schedulers.py). BOHB's Hyperband has no grace period:
    its smallest rung is --max-epochs divided by a power of --reduction-factor."""
    from ray.tune.schedulers import FIFOScheduler, HyperBandForBOHB

    from search.schedulers import WarmStartASHA

    if args.scheduler == "fifo":
        return FIFOScheduler()
    if args.scheduler == "bohb":
        return HyperBandForBOHB(time_attr="training_iteration", max_t=reports_in(args.max_epochs, args),
                                reduction_factor=args.reduction_factor)
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
