"""The Tune trainable: a plain trial function (`Task.trial`) run inside a Ray worker, with a reporter that turns
its metrics and checkpoint folders into `tune.report` calls and hands it Tune's checkpoint on a resume.

Runs in the trial's worker process; torch and Ray are imported there, not where this module is imported.
"""

from __future__ import annotations

import logging
import shutil
import sys
from collections.abc import Callable
from typing import Any

from experiments.core.task import ACCURACY, Metric, TrialFn


class TuneReporter:
    """The trial's reporter inside Tune: metrics + checkpoint folder → `tune.report`; resume via Tune."""

    def __init__(self, report_every: float = 1.0, metric: Metric = ACCURACY) -> None:
        self.report_every = report_every
        self.metric = metric
        self.restored_dirs: list[str] = []

    def report(self, metrics: dict[str, float], checkpoint_dir: str) -> None:
        from ray import tune

        tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(checkpoint_dir))

    def resume_from(self) -> str | None:
        from ray import tune

        checkpoint = tune.get_checkpoint()
        if checkpoint is None:
            return None
        self.restored_dirs.append(checkpoint.to_directory())  # a fresh copy under /tmp: remove it in `close`
        return self.restored_dirs[-1]

    def close(self) -> None:
        """Delete the restored checkpoint copies (one per resumed trial, they piled up in /tmp)."""
        for restored in self.restored_dirs:
            shutil.rmtree(restored, ignore_errors=True)
        self.restored_dirs.clear()


def quiet_shutdown_hook(default: Callable[[Any], None]) -> Callable[[Any], None]:
    """A `sys.unraisablehook` for trial workers. Ray stops a worker whose trial ended with SIGTERM, and its handler
    raises SystemExit wherever the worker happens to be; inside a garbage-collection callback Python cannot raise
    it and prints "Exception ignored in … SystemExit: 1" with a traceback — a normal shutdown that reads like a
    failure. Only that one is dropped; every other unraisable error still goes to `default`."""
    def hook(unraisable: Any) -> None:
        if unraisable.exc_type is not SystemExit:
            default(unraisable)
    hook.quiets_shutdown = True  # type: ignore[attr-defined]
    return hook


def run_trial(
    config: dict[str, Any],
    data: Any = None,
    trial_fn: TrialFn | None = None,
    to_config: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
    threads: int = 1,
    search_name: str = "search",
    report_every: float = 1.0,
    metric: Metric = ACCURACY,
) -> None:
    """The Tune trainable: a plain trial function behind a Tune reporter, one torch thread per CPU."""
    import torch
    from ray import tune

    for noisy in ("ray.train", "ray.tune"):  # one "Checkpoint successfully created" line per epoch and trial
        logging.getLogger(noisy).setLevel(logging.WARNING)
    torch.set_num_threads(max(1, threads))
    if not getattr(sys.unraisablehook, "quiets_shutdown", False):  # once per worker process
        sys.unraisablehook = quiet_shutdown_hook(sys.unraisablehook)
    trial_config = to_config(config)
    trial_config["config_name"] = f"{search_name}-{tune.get_context().get_trial_id()}"
    reporter = TuneReporter(report_every, metric)
    try:
        trial_fn(trial_config, data, reporter)
    finally:
        reporter.close()
