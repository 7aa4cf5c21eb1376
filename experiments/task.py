"""The one interface between a workload and everything generic: engine, runner, summarizer, evaluate, predict,
report. A task module (see `experiments/tasks/`) builds one `Task`; nothing outside it names a workload.

A Task is light to import: its callables import torch, transformers and the data pipes only when called, so
`python -m search.imdb --help` answers at once.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from experiments.config import BaseConfig
from experiments.space import SearchSpace

TrialFn = Callable[[dict[str, Any], Any, Any], dict[str, Any]]  # (config dict, data, reporter) -> summary
Column = tuple[str, Callable[[dict[str, Any]], Any]]  # report header, value from a config dict


def _no_arguments(parser: argparse.ArgumentParser) -> None:
    """Most tasks add no flags of their own."""


def _nothing(*_: Any) -> list:
    return []


@dataclass(frozen=True)
class Task:
    """What differs between workloads, and nothing else."""

    # --- identity: MLflow experiment `tunelab-<name>`, one-config runs under outputs/<name>/, search names
    name: str
    title: str  # the report's heading
    export_folder: str  # model_checkpoints/<export_folder>/
    targets: tuple[float, float]  # (floor, aim) on test accuracy, as the report states them
    unit: str  # throughput unit: "seq" → seq/s, "img" → img/s
    example_noun: str  # "review", "image": what --subset counts
    # --- data
    load_data: Callable[[str | None, int | None, int], Any]  # (data_dir, subset, seed) -> data with .train/.val/.test
    fixed_params: Callable[[Any], dict[str, Any]]  # settings recorded on every run and trial, never searched
    # --- configs and training
    presets: Callable[[], Mapping[str, BaseConfig]]
    default_config: str
    resolve_config: Callable[[argparse.Namespace], BaseConfig]  # the runner's --config (and task flags)
    trial: TrialFn  # plain function: trains one config, reports through the reporter, never sees the test split
    # --- checkpoints: a folder holding experiment_config.json (with "task") and whatever the task saves
    evaluate_checkpoint: Callable[[Path, Any, Any], dict[str, Any]]  # (folder, data, device) -> accuracy, loss...
    predict: Callable[[Path, Sequence[str]], list[tuple[str, float]]]  # raw inputs -> (label, probability)
    # --- search
    space: Callable[[argparse.Namespace], SearchSpace]
    describe_sample: Callable[[dict[str, Any], argparse.Namespace], str]  # dry run: one line, raises if invalid
    search_defaults: dict[str, Any] = field(default_factory=dict)  # trials, max_epochs, grace_period…
    search_settings: tuple[str, ...] = ()  # task flags a resumed search keeps (e.g. CIFAR's --model)
    add_search_arguments: Callable[[argparse.ArgumentParser], None] = _no_arguments
    add_run_arguments: Callable[[argparse.ArgumentParser], None] = _no_arguments
    # --- reports
    family: Callable[[dict[str, Any]], str] = lambda config: "model"  # compared within and across families
    model_cost: Callable[[BaseConfig], tuple[dict[str, Any], str]] | None = None  # (cost, one line) for runs
    columns: tuple[Column, ...] = ()
    comparison: Callable[[list], list[str]] = _nothing  # task-specific sentences computed from the ranked models
    plots: Callable[[list, Path], list[tuple[str, str]]] = _nothing  # extra plots: (title, file name) written
    # how the data's validation split is drawn now: a model validated another way (recorded in its "fixed"
    # settings; "random" where none is) has a validation score that is not comparable, so it cannot be the best
    validation: str = "random"
    test_examples: int = 0  # size of the test split: the report gives each test accuracy ± its standard error
    attachments: tuple[str, ...] = ()  # benchmark write-ups (outputs/benchmarks/<stem>.md + .png) to include
    # --- serving: (input column, example inputs) for the MLflow model's signature, and its registry name
    serving_example: Callable[[], tuple[str, list[Any]]] | None = None
    registered_model: str = ""  # default tunelab-<name>
    module_key: str | None = None  # a task outside the registry: its module path, as its configs record it
    # --- ensembles of checkpoints (experiments/ensemble.py); a task without them exports single models only
    labels: tuple[str, ...] = ()  # class names, in the order of the probability columns below
    split_probabilities: Callable[[Path, Any, str, Any], tuple[Any, Any]] | None = None  # (folder, data, "val" |
    # "test", device) -> (class probabilities [n, classes], labels [n]) of that split, as the checkpoint reads it
    input_probabilities: Callable[[Path, Sequence[Any]], Any] | None = None  # raw inputs -> [n, classes]

    @property
    def key(self) -> str:
        """What `get_task`, `--tasks` and a checkpoint's config call this task."""
        return self.module_key or self.name
