"""Warm start: configurations a search evaluates before it samples (`--warm-start SOURCE …`).

A SOURCE is a preset name, a config JSON (e.g. an exported `experiment_config.json`) or `search:NAME`, the best
five trials of an earlier search under the same storage path. Each becomes the sampler's values for the first
trials (`points_to_evaluate`), so a search warm-started from the best preset ranks that preset among its trials.
The named ones (presets and config JSONs) are refit beside the search's best, and the search's rows mark the
trials that trained a warm start.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from experiments.core.errors import ConfigError, UsageError
from experiments.core.records import SEARCH_FILE, SearchRecord, read_record
from experiments.core.space import SearchSpace
from experiments.core.task import Task

FROM_SEARCH = 5


def source_configs(task: Task, source: str, root: str) -> list[dict[str, Any]]:
    """The config dict(s) one SOURCE names."""
    if source.startswith("search:"):
        name = source.removeprefix("search:")
        summary = Path(root) / name / SEARCH_FILE
        if "://" in root or not summary.is_file():
            raise UsageError(f"--warm-start {source}: no search {name!r} with a summary under {root}")
        rows = [r for r in read_record(summary, SearchRecord).rows  # ranked best first by the task's metric
                if r.get(task.metric.best_key) is not None]
        if not rows:
            raise UsageError(f"--warm-start {source}: search {name!r} has no scored trial")
        return [r["params"] for r in rows[:FROM_SEARCH]]
    from experiments import runner

    try:
        config = task.resolve_config(runner.build_parser(task, "warm-start").parse_args(["--config", source]))
    except ConfigError as error:
        raise UsageError(f"--warm-start {source}: {error}") from None
    return [config.to_dict()]


def warm_start_points(task: Task, space: SearchSpace, sources: list[str], root: str) -> list[dict[str, Any]]:
    """Sampler values for each warm-start configuration; a configuration outside the space is refused."""
    points = []
    for source in sources:
        for config in source_configs(task, source, root):
            try:
                points.append(space.point_from_config(config))
            except ValueError as error:
                raise UsageError(f"--warm-start {source} is not a point of the search space: {error}") from None
    return points


def is_warm_start(row: dict[str, Any], points: list[dict[str, Any]]) -> bool:
    """Whether a search row trained one of the warm starts (`points`, sampler values) rather than a sample."""
    return any(all(row["params"].get(k) == v for k, v in point.items()) for point in points)


def named_warm_starts(args: argparse.Namespace) -> list[str]:
    """The warm starts the refit trains too: presets and config JSONs (a `search:NAME` was refit in its search)."""
    return [source for source in args.warm_start or [] if not source.startswith("search:")]
