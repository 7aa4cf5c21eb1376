"""A third task, defined in this one module and nowhere else: a small MLP on generated Gaussian blobs.

It proves the Task interface (search, summarize, evaluate and predict run it without any other file naming
it) and gives the engine tests that need no IMDB data and finish in seconds:
`python -m search --task tests.synthetic_task --trials 4`.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cloudpickle
import numpy as np

from experiments.core.config import BaseConfig
from experiments.core.errors import CheckpointError
from experiments.core.space import Param, SearchSpace
from experiments.core.task import Task

cloudpickle.register_pickle_by_value(sys.modules[__name__])  # Ray workers need not import the tests package

LABELS = ("left", "middle", "right")
FEATURES = 8
SIZES = {"train": 600, "val": 150, "test": 300}
WEIGHTS = "model.npz"


@dataclass
class Split:
    x: np.ndarray
    y: np.ndarray

    def __len__(self) -> int:
        return len(self.y)


@dataclass
class BlobData:
    train: Split
    val: Split
    test: Split
    fingerprint: str = "blobs-v1"


def load_data(data_dir: str | None, subset: int | None, seed: int) -> BlobData:
    """Three overlapping blobs, the same for every seed of a search (the data is not a hyperparameter)."""
    rng = np.random.default_rng(12345)
    centres = rng.normal(0, 0.5, size=(len(LABELS), FEATURES))  # overlapping: val accuracy ~0.8, not 1.0
    splits = {}
    for name, n in SIZES.items():
        y = rng.integers(0, len(LABELS), size=n)
        splits[name] = Split((centres[y] + rng.normal(0, 1.0, size=(n, FEATURES))).astype(np.float32), y)
    if subset is not None:
        splits["train"] = Split(splits["train"].x[:subset], splits["train"].y[:subset])
    return BlobData(**splits)


@dataclass
class BlobConfig(BaseConfig):
    TASK = "tests.synthetic_task"

    config_name: str = "blob_mlp"
    seed: int = 0
    epochs: int = 3
    hidden: int = 16
    lr: float = 0.01
    batch_size: int = 32
    epoch_delay: float = 0.0  # seconds slept per epoch, so kill-and-resume tests can catch a trial mid-run

    def checks(self) -> list[tuple[bool, str]]:
        return [(self.hidden >= 1, "hidden must be >= 1"), (self.lr > 0, "lr must be > 0"),
                (self.epochs >= 1, "epochs must be >= 1"), (self.batch_size >= 1, "batch_size must be >= 1")]


PRESETS = {"blob_mlp": BlobConfig(), "blob_wide": BlobConfig(config_name="blob_wide", hidden=64)}


def build_model(config: BlobConfig):
    from torch import nn

    return nn.Sequential(nn.Linear(FEATURES, config.hidden), nn.ReLU(), nn.Linear(config.hidden, len(LABELS)))


def save_checkpoint(model, config: BlobConfig, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    np.savez(folder / WEIGHTS, **{k: v.detach().cpu().numpy() for k, v in model.state_dict().items()})
    config.to_json(folder / "experiment_config.json")


def load_checkpoint(folder: Path):
    import torch

    if not (folder / WEIGHTS).is_file():
        raise CheckpointError(f"{folder} is not a synthetic-task checkpoint: missing {WEIGHTS}")
    config = BlobConfig.from_json(folder / "experiment_config.json")
    model = build_model(config)
    with np.load(folder / WEIGHTS) as weights:
        model.load_state_dict({k: torch.from_numpy(weights[k]) for k in weights.files})
    return model.eval(), config


def accuracy_and_loss(model, split: Split) -> dict[str, float]:
    import torch
    import torch.nn.functional as F

    with torch.no_grad():
        logits = model(torch.from_numpy(np.array(split.x)))  # Ray's object store hands out read-only arrays
        labels = torch.from_numpy(split.y)
        return {"loss": F.cross_entropy(logits, labels).item(),
                "accuracy": (logits.argmax(-1) == labels).float().mean().item()}


def trial(config: dict[str, Any], data: BlobData, reporter) -> dict[str, Any]:
    import torch
    import torch.nn.functional as F

    from experiments.core.training import TrainingJob, fit, seed_everything

    blob = BlobConfig.from_dict(config)
    seed_everything(blob.seed)
    model = build_model(blob)
    steps = max(1, len(data.train) // blob.batch_size)

    def batches(epoch: int, start: int):
        time.sleep(blob.epoch_delay)
        order = np.random.default_rng([blob.seed, epoch]).permutation(len(data.train))
        for step in range(start, steps):
            index = order[step * blob.batch_size:(step + 1) * blob.batch_size]
            yield torch.from_numpy(data.train.x[index]), torch.from_numpy(data.train.y[index])

    def evaluate(model) -> dict[str, float]:
        result = accuracy_and_loss(model, data.val)
        return {"val_loss": result["loss"], "val_accuracy": result["accuracy"]}

    return fit(TrainingJob(
        model=model, epochs=blob.epochs, steps_per_epoch=steps, train_batches=batches,
        loss_on_batch=lambda m, batch: (F.cross_entropy(m(batch[0]), batch[1]), len(batch[1])),
        evaluate=evaluate, save_checkpoint=lambda m, folder: save_checkpoint(m, blob, folder),
        optimizer="Adam", optimizer_params={"lr": blob.lr}, lr_schedule="constant", grad_clip=0.0, unit="ex",
        fixed={"features": FEATURES},
    ), reporter, torch.device("cpu"))


def evaluate_checkpoint(folder: Path, data: BlobData, device) -> dict[str, Any]:
    model, _ = load_checkpoint(folder)
    return {**accuracy_and_loss(model, data.test), "params": sum(p.numel() for p in model.parameters())}


def input_probabilities(folder: Path, inputs: Sequence[str]) -> np.ndarray:
    """Each input is FEATURES comma-separated numbers."""
    import torch

    model, _ = load_checkpoint(folder)
    x = torch.tensor([[float(v) for v in line.split(",")] for line in inputs])
    with torch.no_grad():
        return model(x).softmax(-1).numpy()


def split_probabilities(folder: Path, data: BlobData, split: str, device) -> tuple[np.ndarray, np.ndarray]:
    import torch

    model, _ = load_checkpoint(folder)
    part = data.val if split == "val" else data.test
    with torch.no_grad():
        return model(torch.from_numpy(np.array(part.x))).softmax(-1).numpy(), part.y


def predict(folder: Path, inputs: Sequence[str]) -> list[tuple[str, float]]:
    probabilities = input_probabilities(folder, inputs)
    return [(LABELS[int(i)], float(row[i])) for row, i in zip(probabilities, probabilities.argmax(-1), strict=True)]


def space(args: argparse.Namespace) -> SearchSpace:
    return SearchSpace(
        params=[Param("lr", "loguniform", 1e-3, 0.1), Param("hidden", "choice", choices=(4, 16, 64))],
        constants={"epochs": args.max_epochs, "seed": args.seed, "epoch_delay": args.epoch_delay},
    )


def add_search_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--epoch-delay", type=float, default=0.0, help="seconds each trial sleeps per epoch")


def resolve(args: argparse.Namespace) -> BlobConfig:
    from experiments.core.config import resolve_config

    return resolve_config(args.config or "blob_mlp", BlobConfig, PRESETS)


TASK = Task(
    name="synthetic",
    title="Synthetic blobs — a small MLP (the Task interface's third task)",
    export_folder="synthetic-blobs",
    targets=(0.6, 0.8),
    unit="ex",
    example_noun="example",
    test_examples=SIZES["test"],
    load_data=load_data,
    fixed_params=lambda data: {"fixed.features": FEATURES, "data.train_size": len(data.train)},
    presets=lambda: PRESETS,
    default_config="blob_mlp",
    resolve_config=resolve,
    trial=trial,
    evaluate_checkpoint=evaluate_checkpoint,
    predict=predict,
    labels=LABELS,
    split_probabilities=split_probabilities,
    input_probabilities=input_probabilities,
    space=space,
    describe_sample=lambda config, args: f"MLP hidden={config['hidden']} lr={config['lr']:.3g}",
    search_defaults={"trials": 4, "max_epochs": 4},
    search_settings=("epoch_delay",),
    add_search_arguments=add_search_arguments,
    columns=(("hidden", lambda c: c.get("hidden")), ("lr", lambda c: c.get("lr"))),
    module_key="tests.synthetic_task",
)
