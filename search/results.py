"""What a finished (or interrupted) `fit()` says, read in the driver: each trial's id and saved state, the
trials ranked on the task's metric, a trial that reported no such metric, and the ranked table.

Ray is imported only where Tune's result keys are needed (`missing_metric`).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from experiments.core.task import ACCURACY, Metric
from experiments.core.units import as_epoch
from search.cli import EPSILON
from search.trainable import run_trial


def trial_id_of(result) -> str:
    """Tune's trial id; a trial that failed before its first report has it only in its folder name."""
    reported = (result.metrics or {}).get("trial_id")
    if reported:
        return reported
    name = Path(result.path).name  # "<trainable>_<trial_id>_<index>_<params>_<date>"
    return name.removeprefix(f"{run_trial.__name__}_").split("_")[0]


def trial_states(experiment_path: str) -> dict[str, str]:
    """Each trial's state as Tune saved it (TERMINATED, ERROR, RUNNING...): after Ctrl-C the trials it cut short
    are saved as RUNNING, while the in-memory results call them terminated. Empty where it cannot be read."""
    saved = sorted(Path(experiment_path).glob("experiment_state-*.json")) if "://" not in experiment_path else []
    if not saved:
        return {}
    try:
        trials = json.loads(saved[-1].read_text())["trial_data"]
        trials = [t[0] if isinstance(t, list) else t for t in trials]
        trials = [json.loads(t) if isinstance(t, str) else t for t in trials]
        return {t["trial_id"]: t["status"] for t in trials}
    except (ValueError, KeyError, TypeError, IndexError):
        return {}


def rank_results(
    results, max_epochs: int, to_config: Callable[[dict[str, Any]], dict[str, Any]],
    states: dict[str, str] | None = None, metric: Metric = ACCURACY,
) -> list[dict[str, Any]]:
    """One row per trial: its searched params, best metric, epochs run and how it ended; best first."""
    rows, states = [], states or {}
    for result in results:
        frame = result.metrics_dataframe
        epochs = as_epoch(float(frame["epoch"].max())) if frame is not None and "epoch" in frame else 0
        scores = frame[metric.name].dropna() if frame is not None and metric.name in frame else []
        best = metric.best_of(map(float, scores), key=float)
        if result.error is not None:
            status = "ERROR"
        elif states.get(trial_id_of(result), "TERMINATED") != "TERMINATED":  # Ctrl-C caught it mid-trial
            status = "INTERRUPTED"
        else:
            status = "COMPLETED" if epochs >= max_epochs - EPSILON else "STOPPED_EARLY"
        config = to_config(dict(result.config or {}))  # the fields the trial trained with
        rows.append({
            "trial_id": trial_id_of(result),
            "status": status,
            metric.best_key: best,
            "epochs": epochs,
            "error": None if result.error is None else str(result.error).strip().splitlines()[-1][:200],
            "params": config,
            "metrics": {k: v for k, v in (result.metrics or {}).items() if isinstance(v, int | float)},
            "path": result.path,
        })
    rows.sort(key=lambda r: metric.sort_key(r[metric.best_key]))
    return rows


def missing_metric(results, metric: Metric) -> list[str] | None:
    """What a trial reported (Tune's own keys left out) when it reported no `metric` (see
    search.schedulers.MetricCheck); None when every trial's last report has it."""
    from ray.tune.result import AUTO_RESULT_KEYS, DEBUG_METRICS, DONE, EXPERIMENT_TAG, SHOULD_CHECKPOINT

    for result in results:
        reported = set(result.metrics or {}) - {*AUTO_RESULT_KEYS, *DEBUG_METRICS, DONE, EXPERIMENT_TAG,
                                                SHOULD_CHECKPOINT}
        if metric.name not in (result.metrics or {}) and reported:
            return sorted(reported)
    return None


def format_table(rows: list[dict[str, Any]], metric: Metric = ACCURACY) -> str:
    """The ranked rows in columns: rank, trial, status, best score, epochs, then each field the trials differ in
    (the epochs, seed and name every trial has are left out)."""
    keys = sorted({k for r in rows for k in r["params"]} - {"epochs", "seed", "config_name"})
    header = ["rank", "trial", "status", metric.name, "epochs", *keys]
    lines = [header]
    for rank, row in enumerate(rows, 1):
        value = row[metric.best_key]
        params = [_short(row["params"].get(k, "")) for k in keys]
        lines.append([str(rank), row["trial_id"], row["status"], "-" if value is None else f"{value:.4f}",
                      f"{row['epochs']:g}", *params])
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)) for line in lines)


def _short(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)
