"""The reporter seam: a trial calls `report` after each evaluation and asks `resume_from` where to start.

Trials know nothing about Ray or MLflow: the one-config CLIs use `LocalReporter` (prints, keeps the best
checkpoint on disk), and `search/` supplies a Tune-backed reporter with the same two methods.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Protocol

from experiments.core.checkpoints import replace_dir_atomically
from experiments.core.errors import UsageError
from experiments.core.records import RUN_FILE, RunRecord, write_record
from experiments.core.task import ACCURACY, Metric


class Reporter(Protocol):
    report_every: float  # epochs between evaluations and reports: 0.25 is every quarter epoch, 0.75 crosses epochs
    metric: Metric  # the task's: the training loop keeps its best report by it

    def report(self, metrics: dict[str, float], checkpoint_dir: str) -> None:
        """Called after every evaluation with its metrics and a folder holding the checkpoint at that point."""

    def resume_from(self) -> str | None:
        """A checkpoint folder to continue from, or None for a fresh start."""


def format_metrics(metrics: dict[str, float]) -> str:
    parts = []
    for key, value in metrics.items():
        if isinstance(value, float):
            parts.append(f"{key}={value:.4f}" if abs(value) < 100 else f"{key}={value:.0f}")
        else:
            parts.append(f"{key}={value}")
    return " ".join(parts)


class LocalReporter:
    """Prints one line per epoch and keeps `<output_dir>/best` = the best-validation checkpoint so far."""

    report_every = 1.0

    def __init__(self, output_dir: str | os.PathLike, metric: Metric = ACCURACY, task: str = "this task",
                 stream=sys.stdout) -> None:
        self.output_dir = Path(output_dir)
        self.metric = metric
        self.task = task  # named when a report lacks the metric
        self.stream = stream
        self.best: float | None = None
        self.history: list[dict[str, float]] = []

    @property
    def best_dir(self) -> Path:
        return self.output_dir / "best"

    def report(self, metrics: dict[str, float], checkpoint_dir: str) -> None:
        self.history.append(dict(metrics))
        if self.metric.name not in metrics:
            raise UsageError(self.metric.missing(self.task, metrics))
        print(format_metrics(metrics), file=self.stream, flush=True)
        value = metrics[self.metric.name]
        if self.metric.better(value, self.best):
            self.best = value
            replace_dir_atomically(checkpoint_dir, self.best_dir)
        (self.output_dir / "history.json").write_text(json.dumps(self.history, indent=1) + "\n")

    def resume_from(self) -> str | None:
        return None


def save_run_record(run_dir: Path, record: RunRecord, metric: Metric = ACCURACY) -> None:
    """`run.json` beside the run's best checkpoint (what the summarizer reads), and the one-line result."""
    write_record(run_dir / RUN_FILE, record)
    name, minutes = record.config["config_name"], record.wall_seconds / 60
    print(
        f"{name}: {metric.name}={record.by_task[metric.name]:.4f} (epoch {record.best_epoch}) "
        f"{metric.test_name}={record.by_task[metric.test_name]:.4f} in {minutes:.1f} min -> {record.checkpoint}"
    )
