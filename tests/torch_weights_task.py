"""The synthetic regression saving its weights as PyTorch's `weights.pt`, and declaring that file its weights
(`Task.weight_file`): the summarizer must export it with the winner and the registry register it, as they do a
`model.safetensors` (tests/test_checkpoints.py)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import cloudpickle
import numpy as np

from experiments.core.checkpoints import CONFIG_FILE
from experiments.core.errors import CheckpointError
from tests import synthetic_regression as regression

cloudpickle.register_pickle_by_value(sys.modules[__name__])  # Ray workers need not import the tests package

WEIGHT_FILE = "weights.pt"


@dataclass
class TorchCurveConfig(regression.CurveConfig):
    TASK = "tests.torch_weights_task"


PRESETS = {name: TorchCurveConfig(**preset.to_dict()) for name, preset in regression.PRESETS.items()}


def save_checkpoint(model, config: TorchCurveConfig, folder: Path) -> None:
    import torch

    folder.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), folder / WEIGHT_FILE)
    config.to_json(folder / CONFIG_FILE)


def load_checkpoint(folder: Path):
    import torch

    if not (folder / WEIGHT_FILE).is_file():
        raise CheckpointError(f"{folder} is not a torch-weights checkpoint: missing {WEIGHT_FILE}")
    config = TorchCurveConfig.from_json(folder / CONFIG_FILE)
    model = regression.build_model(config)
    model.load_state_dict(torch.load(folder / WEIGHT_FILE, weights_only=True))
    return model.eval(), config


def trial(config: dict[str, Any], data: regression.CurveData, reporter) -> dict[str, Any]:
    return regression.fit_curve(TorchCurveConfig.from_dict(config), data, reporter, save_checkpoint)


def evaluate_checkpoint(folder: Path, data: regression.CurveData, device) -> dict[str, Any]:
    model, _ = load_checkpoint(folder)
    return {**regression.errors(model, data.test), "params": sum(p.numel() for p in model.parameters())}


def predict(folder: Path, inputs: Sequence[str]) -> list[float]:
    model, _ = load_checkpoint(folder)
    return [float(v) for v in regression.predict_values(model, np.array([[float(x)] for x in inputs]))]


def resolve(args: argparse.Namespace) -> TorchCurveConfig:
    from experiments.core.config import resolve_config

    return resolve_config(args.config or "curve_mlp", TorchCurveConfig, PRESETS)


TASK = replace(
    regression.TASK, name="torchcurve", title="Synthetic curve, weights saved as weights.pt",
    export_folder="synthetic-curve-torch", presets=lambda: PRESETS, resolve_config=resolve, trial=trial,
    evaluate_checkpoint=evaluate_checkpoint, predict=predict, weight_file=WEIGHT_FILE,
    module_key="tests.torch_weights_task",
)
