"""Ensembles of a search's refits: their class probabilities averaged, members chosen on validation.

A refit trains the search's best configurations (and its warm starts) again at full budget; each is a complete
model. Averaging the probabilities of several such models is the cheapest accuracy there is once they exist
(`python -m experiments.benchmarks.ensembles` measures it on a task's exported models). Which refits join is
decided on the validation split only, by greedy forward selection (Caruana et al., ICML 2004): start from the
refit winner, add the member that improves the task's metric on validation most (ties: lower loss), stop when
none improves it. The test split scores the chosen ensemble once, like any export.

Only a task that declares class probabilities (`Task.labels`, `split_probabilities`, `input_probabilities`) and
is selected on a score they give (accuracy or loss) has ensembles; for any other (a regression) the summarizer
exports single models only.

An ensemble folder holds `ensemble.json` (its members, in order), one complete checkpoint folder per member
(`member_1/`, …) and, at the top, the first member's `experiment_config.json` (which names the task).
`evaluate`, `predict`, the MLflow pyfunc and the registry take it wherever they take one checkpoint.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from experiments.core.checkpoints import CONFIG_FILE, MEMBER_PREFIX
from experiments.core.cli import relative_to_root
from experiments.core.errors import CheckpointError
from experiments.core.task import ACCURACY, Metric, Task

ENSEMBLE_FILE = "ensemble.json"


def is_ensemble(folder: Path) -> bool:
    return (Path(folder) / ENSEMBLE_FILE).is_file()


SCORES = ("accuracy", "loss")  # what `scores` computes from probabilities: the metrics an ensemble is chosen on


def supports_ensembles(task: Task) -> bool:
    return (bool(task.labels) and task.split_probabilities is not None and task.input_probabilities is not None
            and task.metric.test_key in SCORES)


def member_folders(folder: Path) -> list[Path]:
    """The members' checkpoint folders, in the order `ensemble.json` lists them."""
    folder = Path(folder)
    try:
        names = json.loads((folder / ENSEMBLE_FILE).read_text())["members"]
    except (OSError, ValueError, KeyError, TypeError):
        raise CheckpointError(f"{folder / ENSEMBLE_FILE} does not list the ensemble's members") from None
    members = [folder / name for name in names]
    missing = [m.name for m in members if not (m / CONFIG_FILE).is_file()]
    if not members or missing:
        raise CheckpointError(f"ensemble {folder}: member folder(s) missing or incomplete: {', '.join(missing)}")
    return members


def scores(probabilities: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """Accuracy and mean negative log-likelihood of class probabilities [n, classes]."""
    labels = np.asarray(labels, dtype=np.int64)
    picked = probabilities[np.arange(len(labels)), labels]
    return {"accuracy": float((probabilities.argmax(-1) == labels).mean()),
            "loss": float(-np.log(np.clip(picked, 1e-12, 1.0)).mean())}


def select_members(probabilities: Sequence[np.ndarray], labels: np.ndarray, metric: Metric = ACCURACY) -> list[int]:
    """Greedy forward selection on validation by `metric` (one of SCORES), without replacement, from the first
    model (the refit winner): indices of the members, in the order they joined."""
    def score(chosen: list[int]) -> tuple[float, float]:
        result = scores(np.mean([probabilities[i] for i in chosen], axis=0), labels)
        return metric.oriented(result[metric.test_key]), -result["loss"]

    chosen = [0]
    best = score(chosen)
    while len(chosen) < len(probabilities):
        top, index = max((score([*chosen, i]), i) for i in range(len(probabilities)) if i not in chosen)
        if top <= best:
            break
        chosen.append(index)
        best = top
    return chosen


def mean_probabilities(task: Task, members: Sequence[Path], data: Any, split: str, device: Any
                       ) -> tuple[np.ndarray, np.ndarray]:
    """The members' class probabilities on a split, averaged; and its labels."""
    outputs = [task.split_probabilities(Path(m), data, split, device) for m in members]
    return np.mean([p for p, _ in outputs], axis=0), outputs[0][1]


def evaluate(task: Task, folder: Path, data: Any, device: Any) -> dict[str, Any]:
    """Test accuracy and loss of one checkpoint or an ensemble folder, in the shape `Task.evaluate_checkpoint`
    returns."""
    if not is_ensemble(folder):
        return task.evaluate_checkpoint(folder, data, device)
    if not supports_ensembles(task):
        raise CheckpointError(f"{folder} is an ensemble, and task {task.key} cannot combine checkpoints")
    members = member_folders(folder)
    probabilities, labels = mean_probabilities(task, members, data, "test", device)
    result = {**scores(probabilities, labels), "params": sum(stored_params(m) or 0 for m in members)}
    if len(task.labels) > 2:  # where the task reports a confusion matrix
        flat = np.asarray(labels, dtype=np.int64) * len(task.labels) + probabilities.argmax(-1)
        n = len(task.labels)
        result.update(confusion=np.bincount(flat, minlength=n * n).reshape(n, n), class_names=list(task.labels))
    return result


def stored_params(member: Path) -> int | None:
    """Parameters in a checkpoint's safetensors files (headers only, nothing loaded); None without weights."""
    from safetensors import safe_open

    files = sorted(Path(member).glob("*.safetensors"))
    if not files:
        return None
    total = 0
    for weights in files:
        with safe_open(weights, framework="pt") as f:
            total += sum(int(np.prod(f.get_slice(key).get_shape())) for key in f.keys())
    return total


def predict(task: Task, folder: Path, inputs: Sequence[Any]) -> list[tuple[str, float]] | list[float]:
    """What the task predicts per raw input — (label, probability) for a classifier, a value for a regression —
    from one checkpoint or an ensemble folder."""
    if not is_ensemble(folder):
        return task.predict(folder, inputs)
    if not supports_ensembles(task):
        raise CheckpointError(f"{folder} is an ensemble, and task {task.key} cannot combine checkpoints")
    probabilities = np.mean([task.input_probabilities(m, inputs) for m in member_folders(folder)], axis=0)
    return [(task.labels[int(i)], float(row[i])) for row, i in zip(probabilities, probabilities.argmax(-1),
                                                                     strict=True)]


def prediction_record(prediction: tuple[str, float] | float) -> dict[str, Any]:
    """One prediction as a row: {label, probability} for a classifier's, {prediction} for a regression's."""
    if isinstance(prediction, tuple):
        label, probability = prediction
        return {"label": label, "probability": probability}
    return {"prediction": float(prediction)}


def export_name(search: str) -> str:
    """What the summarizer exports a search's ensemble as (and the report looks it up by)."""
    return f"search_{search}_ensemble"


def member_sources(members: Sequence[Path]) -> list[str]:
    """Where each member was trained: what the ensemble they belong to recorded (an export exported again), else
    their paths, relative to the working directory (the repository root) so an export names no folder of the
    machine that wrote it."""
    parent = Path(members[0]).parent
    if is_ensemble(parent) and all(Path(m).parent == parent for m in members):
        return json.loads((parent / ENSEMBLE_FILE).read_text()).get("sources", [])
    return [relative_to_root(str(m), Path.cwd()) for m in members]


def same_path(a: Path | str, b: Path | str) -> bool:
    return Path(a).resolve() == Path(b).resolve()


def write_members(members: Sequence[Path], staging: Path, skip: set[str], selected_on: str = "accuracy") -> None:
    """Copy each member checkpoint (files only, none named in `skip`) into `staging/member_<i>/`, the first
    member's config to the top, and `ensemble.json` naming them (with where each came from)."""
    sources, names = member_sources(members), []
    for i, member in enumerate(members, start=1):
        target = staging / f"{MEMBER_PREFIX}{i}"
        target.mkdir(parents=True)
        for item in Path(member).iterdir():
            if item.is_file() and item.name not in skip:
                shutil.copy2(item, target / item.name)
        names.append(target.name)
    shutil.copy2(Path(members[0]) / CONFIG_FILE, staging / CONFIG_FILE)
    (staging / ENSEMBLE_FILE).write_text(json.dumps(
        {"members": names, "combine": "mean of the members' class probabilities",
         "selected_on": f"validation {selected_on}, greedy forward selection from the refit winner",
         "sources": sources}, indent=1) + "\n")
