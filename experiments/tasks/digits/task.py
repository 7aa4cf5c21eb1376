"""Handwritten digits (scikit-learn's bundled 8×8 `load_digits`) with a small MLP: the task definition.

Why it exists: a trial-epoch costs a fraction of a second on one CPU thread, so a search benchmark can repeat
every strategy over many seeds (`search/benchmarks/search_efficiency.py --task digits`), which the IMDB task, at
minutes per trial, cannot. The data ships with scikit-learn (no `--data-dir`), split once, stratified 60/20/20 with
a fixed seed; the split is recorded on every run. The pieces live in `experiments.tasks.digits.trial`.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from experiments.core.space import Param, SearchSpace
from experiments.core.task import Task

TEST_IMAGES = 360  # 20 % of 1,797, stratified


def load_data(data_dir: str | None, subset: int | None, seed: int):
    """The same split for every seed of a search (the data is not a hyperparameter); `data_dir` is not used."""
    from experiments.tasks.digits.trial import load

    return load(subset)


def fixed_params(data) -> dict[str, Any]:
    return {**{f"fixed.{k}": v for k, v in data.settings.items()}, "data.fingerprint": data.fingerprint,
            "data.train_size": len(data.train), "data.val_size": len(data.val)}


def presets():
    from experiments.tasks.digits.trial import PRESETS

    return PRESETS


def resolve(args: argparse.Namespace):
    from experiments.core.config import resolve_config
    from experiments.tasks.digits.trial import PRESETS, DigitsConfig

    return resolve_config(args.config or "mlp_64", DigitsConfig, PRESETS)


def trial(config: dict[str, Any], data, reporter) -> dict[str, Any]:
    from experiments.tasks.digits.trial import train_digits

    return train_digits(config, data, reporter)


def evaluate_checkpoint(folder: Path, data, device) -> dict[str, Any]:
    from experiments.tasks.digits.trial import load_checkpoint, scores

    model, _ = load_checkpoint(folder)
    return {**scores(model, data.test), "params": sum(p.numel() for p in model.parameters())}


def split_probabilities(folder: Path, data, split: str, device) -> tuple[np.ndarray, np.ndarray]:
    import torch

    from experiments.tasks.digits.trial import load_checkpoint

    model, _ = load_checkpoint(folder)
    part = data.val if split == "val" else data.test
    with torch.no_grad():
        return model(torch.from_numpy(np.array(part.x))).softmax(-1).numpy(), np.array(part.y)


def input_probabilities(folder: Path, inputs: Sequence[str]) -> np.ndarray:
    """Each input is 64 comma-separated pixel values, 0..16, row by row (the layout of `load_digits`)."""
    import torch

    from experiments.core.errors import UsageError
    from experiments.tasks.digits.trial import FEATURES, load_checkpoint

    rows = [[float(v) / 16.0 for v in line.split(",")] for line in inputs]
    if any(len(row) != FEATURES for row in rows):
        raise UsageError(f"a digits input is {FEATURES} comma-separated pixel values (0..16)")
    model, _ = load_checkpoint(folder)
    with torch.no_grad():
        return model(torch.tensor(rows)).softmax(-1).numpy()


def predict(folder: Path, inputs: Sequence[str]) -> list[tuple[str, float]]:
    from experiments.tasks.digits.trial import LABELS

    probabilities = input_probabilities(folder, inputs)
    return [(LABELS[int(i)], float(row[i])) for row, i in zip(probabilities, probabilities.argmax(-1), strict=True)]


def space(args: argparse.Namespace) -> SearchSpace:
    """Wide on purpose (the learning rate over three decades, one to three layers): a searcher has bad regions to
    avoid, so strategies can differ. No conditional parameters, so every searcher (BOHB's ConfigSpace too) reads it."""
    return SearchSpace(
        params=[Param("lr", "loguniform", 1e-4, 0.3), Param("hidden", "choice", choices=(16, 32, 64, 128, 256)),
                Param("layers", "int", 1, 3), Param("dropout", "uniform", 0.0, 0.5),
                Param("weight_decay", "loguniform", 1e-6, 0.1),
                Param("batch_size", "choice", choices=(16, 32, 64, 128))],
        constants={"epochs": args.max_epochs, "seed": args.seed},
    )


def describe_sample(config: dict[str, Any], args: argparse.Namespace) -> str:
    from experiments.tasks.digits.trial import DigitsConfig

    c = DigitsConfig.from_dict(config)
    return (f"MLP {c.layers}×{c.hidden} dropout {c.dropout:.2f} lr {c.lr:.3g} wd {c.weight_decay:.2g} "
            f"batch {c.batch_size}")


TASK = Task(
    name="digits",
    title="Handwritten digits (scikit-learn 8×8) — a small MLP for search benchmarks",
    export_folder="digits-mlp",
    targets=(0.95, 0.97),
    unit="img",
    example_noun="image",
    test_examples=TEST_IMAGES,
    load_data=load_data,
    fixed_params=fixed_params,
    presets=presets,
    default_config="mlp_64",
    resolve_config=resolve,
    trial=trial,
    evaluate_checkpoint=evaluate_checkpoint,
    predict=predict,
    labels=tuple(str(d) for d in range(10)),
    split_probabilities=split_probabilities,
    input_probabilities=input_probabilities,
    space=space,
    describe_sample=describe_sample,
    # rungs at 1, 3, 9 and 27 epochs: the same ladder for ASHA, Optuna's Hyperband pruner and BOHB's Hyperband
    search_defaults={"trials": 40, "max_epochs": 27, "grace_period": 1, "reduction_factor": 3, "refit": 0},
    columns=(("layers", lambda c: c.get("layers")), ("hidden", lambda c: c.get("hidden")),
             ("dropout", lambda c: c.get("dropout")), ("batch", lambda c: c.get("batch_size")),
             ("lr", lambda c: c.get("lr"))),
    bundled_data=True,
)
