"""The one interface between a workload and everything generic: engine, runner, summarizer, evaluate, predict,
report. A task module (see `experiments/tasks/`) builds one `Task`; nothing outside it names a workload.

A Task is light to import: its callables import torch, transformers and the data pipes only when called, so
`python -m search.imdb --help` answers at once.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from experiments.core.behaviour import BehaviourSet
from experiments.core.checkpoints import WEIGHT_FILE
from experiments.core.config import BaseConfig
from experiments.core.space import SearchSpace

TrialFn = Callable[[dict[str, Any], Any, Any], dict[str, Any]]  # (config dict, data, reporter) -> summary
Column = tuple[str, Callable[[dict[str, Any]], Any]]  # report header, value from a config dict
T = TypeVar("T")


@dataclass(frozen=True)
class Metric:
    """The score a task's models are selected on, and which way is better. The trial loop, the engine (searcher,
    ASHA, ranking), the refit, the summarizer, the report and the registry all read it from the task, so a task
    that minimises (a validation RMSE) is selected the same way a classifier is on its accuracy.

    Records name their numbers after it: a trial reports `name`, a search row keeps `best_key`, a tested model
    `test_name` (for accuracy: val_accuracy, best_val_accuracy, test_accuracy, the keys every record has)."""

    name: str  # what each evaluation reports on the validation split, e.g. "val_rmse"
    mode: str  # "max": higher is better; "min": lower is better
    test_key: str  # the same score in `Task.evaluate_checkpoint`'s result on the test split, e.g. "rmse"
    label: str  # in sentences, after "validation" / "test": "accuracy", "RMSE"
    short: str  # in table headers, after "val" / "test": "acc", "RMSE"
    proportion: bool = False  # a share of examples (accuracy): shown in %, with binomial standard errors
    unit: str = ""  # after a value that is not a proportion, e.g. "RMSE"

    def __post_init__(self) -> None:
        if self.mode not in ("max", "min"):
            raise ValueError(f"Metric {self.name}: mode must be 'max' or 'min', got {self.mode!r}")

    @property
    def best_key(self) -> str:
        return f"best_{self.name}"

    @property
    def test_name(self) -> str:
        return f"test_{self.test_key}"

    def oriented(self, value: float) -> float:
        """The value turned so that larger is better (negated where lower is)."""
        return value if self.mode == "max" else -value

    def better(self, a: float | None, b: float | None) -> bool:
        """Whether `a` is strictly better than `b`; a score beats no score."""
        if a is None:
            return False
        return b is None or self.oriented(a) > self.oriented(b)

    def gain(self, a: float, b: float) -> float:
        """How much better `a` is than `b` (negative: worse), in the metric's own units."""
        return self.oriented(a) - self.oriented(b)

    @property
    def beats(self) -> str:
        """How "better than" reads between two values: `>` or `<`."""
        return ">" if self.mode == "max" else "<"

    def sort_key(self, value: float | None) -> tuple[bool, float]:
        """Sorts best first, the unscored last."""
        return value is None, 0.0 if value is None else -self.oriented(value)

    def best_of(self, items: Iterable[T], key: Callable[[T], float | None]) -> T | None:
        """The item with the best score (the first of equals); None when there is none."""
        return min(items, key=lambda item: self.sort_key(key(item)), default=None)

    def reaches(self, value: float, target: float) -> bool:
        """Whether `value` is at least as good as `target`."""
        return not self.better(target, value)

    def show(self, value: float) -> str:
        """A value in a sentence: `89.17%` for a proportion, `0.512 RMSE` otherwise."""
        return f"{value:.2%}" if self.proportion else f"{value:.4g}" + (f" {self.unit}" if self.unit else "")

    def target(self, value: float) -> str:
        """A target with its direction: `85%` (a proportion reads as "at least"), `≤ 55 RMSE`."""
        if self.proportion:
            return f"{value:.0%}"
        return f"{'≥' if self.beats == '>' else '≤'} {value:g}" + (f" {self.unit}" if self.unit else "")

    def missing(self, task: str, reported: Iterable[str]) -> str:
        """The one line that stops a run whose trial reports no such score."""
        shown = ", ".join(sorted(reported)) or "nothing"
        return (f"task {task} is selected on {self.name}, but its trials report no {self.name} (they report: "
                f"{shown}): report it from the trial's evaluation, or declare a reported one as the task's metric")

    def difference(self, delta: float, signed: bool = True) -> str:
        """A difference of two values: `+1.25 points` for a proportion, `+0.031 RMSE` otherwise."""
        if self.proportion:
            return f"{delta * 100:{'+' if signed else ''}.2f} points"
        return f"{delta:{'+' if signed else ''}.3g}" + (f" {self.unit}" if self.unit else "")


# what a classifier is selected on unless its task says otherwise: validation accuracy, maximised
ACCURACY = Metric(name="val_accuracy", mode="max", test_key="accuracy", label="accuracy", short="acc",
                  proportion=True)


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
    targets: tuple[float, float]  # (floor, aim) on the test score, as the report states them (metric.target)
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
    # --- checkpoints (experiments/core/checkpoints.py): a folder holding experiment_config.json (with "task") and
    # whatever the task saves, its weights in `weight_file` (declared below)
    # (folder, data, device) -> the test split's metric.test_key (accuracy, rmse…), loss, params…
    evaluate_checkpoint: Callable[[Path, Any, Any], dict[str, Any]]
    # raw inputs -> per input (label, probability) for a classifier, the predicted value for a regression
    predict: Callable[[Path, Sequence[str]], list[tuple[str, float]] | list[float]]
    # --- search
    space: Callable[[argparse.Namespace], SearchSpace]
    describe_sample: Callable[[dict[str, Any], argparse.Namespace], str]  # dry run: one line, raises if invalid
    metric: Metric = ACCURACY  # the score trials, refits and exports are selected on, and which way is better
    weight_file: str = WEIGHT_FILE  # the checkpoint's weights: what an export carries for its winners and the
    # registry hashes; a task that saves another file (e.g. weights.pt) names it here
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
    test_examples: int = 0  # size of the test split: the report gives each test score ± its binomial standard
    # error (a proportion metric's only, e.g. accuracy)
    attachments: tuple[str, ...] = ()  # benchmark write-ups (outputs/benchmarks/<stem>.md + .png) to include
    # --- serving: (input column, example inputs) for the MLflow model's signature, and its registry name
    serving_example: Callable[[], tuple[str, list[Any]]] | None = None
    registered_model: str = ""  # default tunelab-<name>
    requirements: tuple[str, ...] = ("torch", "safetensors")  # what a served model installs beside numpy and pandas
    bundled_data: bool = False  # load_data needs no --data-dir (generated or shipped with the task): the summarizer
                                # tests and ensembles its models without one
    module_key: str | None = None  # a task outside the registry: its module path, as its configs record it
    # --- ensembles of checkpoints (experiments/reporting/ensemble.py); a task without them exports single models only
    labels: tuple[str, ...] = ()  # class names, in the order of the probability columns below
    split_probabilities: Callable[[Path, Any, str, Any], tuple[Any, Any]] | None = None  # (folder, data, "val" |
    # "test", device) -> (class probabilities [n, classes], labels [n]) of that split, as the checkpoint reads it
    input_probabilities: Callable[[Path, Sequence[Any]], Any] | None = None  # raw inputs -> [n, classes]
    # --- behavioural test sets (experiments/core/behaviour.py, CheckList): small labelled sets of raw inputs per
    # capability; the report gives each exported model's accuracy on each. Never used to choose a model
    behaviour: Callable[[], Sequence[BehaviourSet]] | None = None

    def __post_init__(self) -> None:
        if self.test_examples and not self.metric.proportion:
            raise ValueError(f"task {self.name}: test_examples gives binomial standard errors, which only a "
                             f"proportion metric has ({self.metric.name} is not one)")

    def has_test_data(self, data_dir: str | None) -> bool:
        """Whether the test split is at hand: a data dir was given, or the task brings its own data."""
        return data_dir is not None or self.bundled_data

    @property
    def key(self) -> str:
        """What `get_task`, `--tasks` and a checkpoint's config call this task."""
        return self.module_key or self.name
