"""ASHA that never stops the warm-start trials, the stopper that ends a search whose trials miss its metric, and
the one that ends a search when its budget of trial-epochs is spent.

A warm start says "this configuration is known to be good"; at ASHA's first rungs (a quarter epoch in) a good
configuration with a long warm-up can still look weak, and plain ASHA drops it — measured on IMDB: the preset
`bigru1_wide_dropout` (89.88 % test after 4 epochs) ranked last of three at 0.25 epoch and was stopped. Running
the warm starts to their full budget is what makes a search warm-started from the best preset unable to end
worse than it; every other trial is scheduled exactly as by ASHA, and the warm starts' results still count at
each rung.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ray.tune import Stopper
from ray.tune.result import DEBUG_METRICS, DONE
from ray.tune.schedulers import ASHAScheduler, TrialScheduler


class WarmStartASHA(ASHAScheduler):
    def __init__(self, protected: list[dict[str, Any]], to_config: Callable[[dict[str, Any]], dict[str, Any]],
                 **asha: Any) -> None:
        super().__init__(**asha)
        self.protected = protected  # the warm starts' searched fields
        self.to_config = to_config

    def is_protected(self, trial) -> bool:
        config = self.to_config(dict(trial.config))
        return any(all(config.get(k) == v for k, v in fields.items()) for fields in self.protected)

    def on_trial_result(self, tune_controller, trial, result: dict) -> str:
        decision = super().on_trial_result(tune_controller, trial, result)
        unfinished = result.get(self._time_attr, 0) < self._max_t
        if decision == TrialScheduler.STOP and unfinished and self.is_protected(trial):
            return TrialScheduler.CONTINUE
        return decision


class MetricCheck(Stopper):
    """Stops every trial at the first result without the task's metric. Tune's own check (switched off by the
    engine) raises inside `fit()` instead: a traceback, and the MLflow runs left RUNNING. Here `fit()` returns, the
    stopped trial's last result is the one without the metric, and the engine says so in one line
    (`search.results.missing_metric`)."""

    def __init__(self, metric: str) -> None:
        self.metric = metric
        self.missing = False

    def __call__(self, trial_id: str, result: dict) -> bool:
        reported = set(result) - {*DEBUG_METRICS, DONE}
        self.missing = self.missing or (self.metric not in result and len(reported) > 1)
        return self.missing

    def stop_all(self) -> bool:
        return self.missing


class EpochBudget(Stopper):
    """Ends the search once its trials have trained `budget` trial-epochs in all: the trial whose report reaches it
    stops there, and no other starts. It counts each trial's `epoch` as reported (a trial paused and resumed by
    Hyperband goes on from its checkpoint, so nothing is counted twice). Tune saves the stopper with the
    experiment, so a resumed search goes on counting from its last saved state."""

    def __init__(self, budget: float) -> None:
        self.budget = budget
        self.epochs: dict[str, float] = {}  # trial id -> the last epoch it reported

    @property
    def spent(self) -> float:
        return sum(self.epochs.values())

    def __call__(self, trial_id: str, result: dict) -> bool:
        if "epoch" in result:
            self.epochs[trial_id] = max(self.epochs.get(trial_id, 0.0), float(result["epoch"]))
        return self.stop_all()

    def stop_all(self) -> bool:
        return self.spent >= self.budget - 1e-6  # epochs add up with rounding errors (search.cli.EPSILON)
