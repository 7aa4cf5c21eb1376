"""Hyperparameter importance of a finished search, with Optuna's fANOVA evaluator."""

from __future__ import annotations

import math
from typing import Any

MIN_TRIALS = 8


def param_importance(rows: list[dict[str, Any]], metric: str = "best_val_accuracy") -> dict[str, float] | None:
    """Importance of every param present in all finished trials; None when too few trials to say anything.

    Distributions are read off the trials themselves (numbers → float range, log when they span > 20×,
    anything else → categorical), so any workload's space works without being imported here.
    """
    import optuna

    finished = [r for r in rows if r.get(metric) is not None]
    if len(finished) < MIN_TRIALS:
        return None
    names = set.intersection(*(set(r["params"]) for r in finished))
    distributions = {}
    for name in sorted(names):
        values = [r["params"][name] for r in finished]
        if len({str(v) for v in values}) < 2:
            continue  # constants (epochs, seed…) explain nothing
        if all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
            low, high = float(min(values)), float(max(values))
            log = low > 0 and high / low > 20
            distributions[name] = optuna.distributions.FloatDistribution(low, high, log=log)
        else:
            choices = tuple(sorted({str(v) for v in values}))
            distributions[name] = optuna.distributions.CategoricalDistribution(choices)
    if not distributions:
        return None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize")
    for row in finished:
        params = {
            name: float(row["params"][name]) if isinstance(dist, optuna.distributions.FloatDistribution)
            else str(row["params"][name])
            for name, dist in distributions.items()
        }
        study.add_trial(optuna.trial.create_trial(params=params, distributions=distributions, value=row[metric]))
    importance = optuna.importance.get_param_importances(
        study, evaluator=optuna.importance.FanovaImportanceEvaluator(seed=0)
    )
    return {k: v for k, v in importance.items() if not math.isnan(v)}
