"""Behavioural test sets in the spirit of CheckList (Ribeiro et al., ACL 2020): small labelled sets of raw inputs,
one per capability a model should have (plain sentiment, negation, short texts…).

A task that has such sets declares `Task.behaviour`; the report gives every exported model's accuracy on each.
Held-out test accuracy says how often a model is right on inputs like its training data; these sets say which
kinds of input it gets wrong. They never choose a model: validation does that.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class BehaviourSet:
    """One capability's inputs and the label each should get."""

    name: str
    capability: str  # what the set tests, one sentence for the report
    inputs: tuple[Any, ...]
    labels: tuple[str, ...]

    def __post_init__(self) -> None:
        if len(self.inputs) != len(self.labels) or not self.inputs:
            raise ValueError(f"behaviour set {self.name!r}: needs inputs, one label each")


def read_behaviour_sets(path: Path, labels: Sequence[str]) -> list[BehaviourSet]:
    """The sets of a JSON file `{"sets": [{"name", "capability", "cases": [{"text", "label"}, …]}, …]}`; a label
    that is not one of the task's `labels` is refused with the case that has it."""
    sets = []
    for entry in json.loads(Path(path).read_text())["sets"]:
        unknown = [case["text"] for case in entry["cases"] if case["label"] not in labels]
        if unknown:
            raise ValueError(f"{path}: set {entry['name']!r} labels {unknown[0]!r} with none of {', '.join(labels)}")
        sets.append(BehaviourSet(entry["name"], entry["capability"], tuple(case["text"] for case in entry["cases"]),
                                 tuple(case["label"] for case in entry["cases"])))
    return sets
