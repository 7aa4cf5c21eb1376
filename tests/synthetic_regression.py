"""A task that minimises: a small MLP fitting a noisy 1-D curve, selected on validation RMSE (lower is better).

Everything generic (search, ASHA, Optuna, refit, summarizer, report, evaluate, predict, registry) must read the
direction from `TASK.metric`; `tests/test_metric.py` runs it end to end and checks that the lowest RMSE wins
everywhere. An input is one number x (`python -m experiments.predict FOLDER -1.5 2.0`); the model predicts y.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cloudpickle
import numpy as np

from experiments.core.config import BaseConfig
from experiments.core.errors import CheckpointError
from experiments.core.space import Param, SearchSpace
from experiments.core.task import Metric, Task

cloudpickle.register_pickle_by_value(sys.modules[__name__])  # Ray workers need not import the tests package

RMSE = Metric(name="val_rmse", mode="min", test_key="rmse", label="RMSE", short="RMSE", unit="RMSE")
SIZES = {"train": 400, "val": 150, "test": 300}
WEIGHTS = "model.safetensors"  # the default Task.weight_file: what the summarizer exports, the registry hashes


@dataclass
class Split:
    x: np.ndarray  # [n, 1]
    y: np.ndarray  # [n]

    def __len__(self) -> int:
        return len(self.y)


@dataclass
class CurveData:
    train: Split
    val: Split
    test: Split
    fingerprint: str = "curve-v1"


def curve(x: np.ndarray) -> np.ndarray:
    return np.sin(2 * x) + 0.3 * x


def load_data(data_dir: str | None, subset: int | None, seed: int) -> CurveData:
    """y = sin(2x) + 0.3x + noise on x in [-2, 2], the same for every seed of a search."""
    rng = np.random.default_rng(2024)
    splits = {}
    for name, n in SIZES.items():
        x = rng.uniform(-2, 2, size=(n, 1)).astype(np.float32)
        splits[name] = Split(x, (curve(x[:, 0]) + rng.normal(0, 0.1, size=n)).astype(np.float32))
    if subset is not None:
        splits["train"] = Split(splits["train"].x[:subset], splits["train"].y[:subset])
    return CurveData(**splits)


@dataclass
class CurveConfig(BaseConfig):
    TASK = "tests.synthetic_regression"

    config_name: str = "curve_mlp"
    seed: int = 0
    epochs: int = 3
    hidden: int = 16
    lr: float = 0.01
    batch_size: int = 16

    def checks(self) -> list[tuple[bool, str]]:
        return [(self.hidden >= 1, "hidden must be >= 1"), (self.lr > 0, "lr must be > 0"),
                (self.epochs >= 1, "epochs must be >= 1"), (self.batch_size >= 1, "batch_size must be >= 1")]


PRESETS = {"curve_mlp": CurveConfig(), "curve_tiny": CurveConfig(config_name="curve_tiny", hidden=1, lr=1e-4)}


def build_model(config: CurveConfig):
    from torch import nn

    return nn.Sequential(nn.Linear(1, config.hidden), nn.Tanh(), nn.Linear(config.hidden, 1))


def save_checkpoint(model, config: CurveConfig, folder: Path) -> None:
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    save_file({k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}, folder / WEIGHTS)
    config.to_json(folder / "experiment_config.json")


def load_checkpoint(folder: Path):
    from safetensors.torch import load_file

    if not (folder / WEIGHTS).is_file():
        raise CheckpointError(f"{folder} is not a synthetic-regression checkpoint: missing {WEIGHTS}")
    config = CurveConfig.from_json(folder / "experiment_config.json")
    model = build_model(config)
    model.load_state_dict(load_file(folder / WEIGHTS))
    return model.eval(), config


def predict_values(model, x: np.ndarray) -> np.ndarray:
    import torch

    with torch.no_grad():
        return model(torch.from_numpy(np.array(x, dtype=np.float32))).squeeze(-1).numpy()


def errors(model, split: Split) -> dict[str, float]:
    mse = float(np.mean((predict_values(model, split.x) - split.y) ** 2))
    return {"loss": mse, "rmse": mse ** 0.5}


def trial(config: dict[str, Any], data: CurveData, reporter) -> dict[str, Any]:
    return fit_curve(CurveConfig.from_dict(config), data, reporter, save_checkpoint)


def fit_curve(curve_config: CurveConfig, data: CurveData, reporter,
              save: Callable[[Any, CurveConfig, Path], None]) -> dict[str, Any]:
    """Train one config, each checkpoint written by `save` (a variant of this task saves its weights its own way)."""
    import torch
    import torch.nn.functional as F

    from experiments.core.training import TrainingJob, fit, seed_everything

    seed_everything(curve_config.seed)
    model = build_model(curve_config)
    steps = max(1, len(data.train) // curve_config.batch_size)

    def batches(epoch: int, start: int):
        order = np.random.default_rng([curve_config.seed, epoch]).permutation(len(data.train))
        for step in range(start, steps):
            index = order[step * curve_config.batch_size:(step + 1) * curve_config.batch_size]
            yield torch.from_numpy(data.train.x[index]), torch.from_numpy(data.train.y[index])

    def evaluate(model) -> dict[str, float]:
        result = errors(model, data.val)
        return {"val_loss": result["loss"], "val_rmse": result["rmse"]}

    return fit(TrainingJob(
        model=model, epochs=curve_config.epochs, steps_per_epoch=steps, train_batches=batches,
        loss_on_batch=lambda m, batch: (F.mse_loss(m(batch[0]).squeeze(-1), batch[1]), len(batch[1])),
        evaluate=evaluate, save_checkpoint=lambda m, folder: save(m, curve_config, folder),
        optimizer="Adam", optimizer_params={"lr": curve_config.lr}, lr_schedule="constant", grad_clip=0.0,
        unit="ex",
    ), reporter, torch.device("cpu"))


def evaluate_checkpoint(folder: Path, data: CurveData, device) -> dict[str, Any]:
    model, _ = load_checkpoint(folder)
    return {**errors(model, data.test), "params": sum(p.numel() for p in model.parameters())}


def predict(folder: Path, inputs: Sequence[str]) -> list[float]:
    """Each input is one number x; the prediction is y."""
    model, _ = load_checkpoint(folder)
    return [float(v) for v in predict_values(model, np.array([[float(x)] for x in inputs]))]


def space(args: argparse.Namespace) -> SearchSpace:
    return SearchSpace(
        params=[Param("lr", "loguniform", 1e-4, 0.05), Param("hidden", "choice", choices=(1, 8, 32))],
        constants={"epochs": args.max_epochs, "seed": args.seed},
    )


def resolve(args: argparse.Namespace) -> CurveConfig:
    from experiments.core.config import resolve_config

    return resolve_config(args.config or "curve_mlp", CurveConfig, PRESETS)


TASK = Task(
    name="synreg",
    title="Synthetic curve — a small MLP regression, selected on validation RMSE",
    export_folder="synthetic-curve",
    targets=(0.5, 0.15),  # RMSE: at most 0.5 to pass, 0.15 aimed for (the noise alone is 0.1)
    unit="ex",
    example_noun="example",
    metric=RMSE,
    load_data=load_data,
    fixed_params=lambda data: {"data.train_size": len(data.train)},
    presets=lambda: PRESETS,
    default_config="curve_mlp",
    resolve_config=resolve,
    trial=trial,
    evaluate_checkpoint=evaluate_checkpoint,
    predict=predict,
    space=space,
    describe_sample=lambda config, args: f"MLP hidden={config['hidden']} lr={config['lr']:.3g}",
    search_defaults={"trials": 4, "max_epochs": 3},
    columns=(("hidden", lambda c: c.get("hidden")), ("lr", lambda c: c.get("lr"))),
    serving_example=lambda: ("x", ["-1.5", "0.5", "2.0"]),
    module_key="tests.synthetic_regression",
)
