"""The digits task's data, config, network, training and checkpoints: a small MLP on scikit-learn's bundled 8×8
digits, cheap enough (a trial-epoch well under a second on one CPU thread) for search benchmarks with many seeds.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from experiments.core.config import BaseConfig
from experiments.core.errors import CheckpointError

LABELS = tuple(str(d) for d in range(10))
FEATURES = 64  # 8×8 pixels, each 0..16
SPLIT_SEED = 0  # the split is fixed: the data is not a hyperparameter, and every run records it
SPLIT = {"train": 0.6, "val": 0.2, "test": 0.2}  # of the 1,797 images, stratified by digit


@dataclass
class Split:
    x: np.ndarray  # float32 [n, 64], pixels scaled to 0..1
    y: np.ndarray  # int64 [n]

    def __len__(self) -> int:
        return len(self.y)


@dataclass
class DigitsData:
    train: Split
    val: Split
    test: Split
    settings: dict[str, Any]  # how the split was drawn, recorded on every run and trial

    @property
    def fingerprint(self) -> str:
        return f"sklearn-digits-split{SPLIT_SEED}-{len(self.train)}/{len(self.val)}/{len(self.test)}"


def load(subset: int | None = None) -> DigitsData:
    """The fixed stratified 60/20/20 split of `sklearn.datasets.load_digits` (shipped with scikit-learn: no
    download); `subset` keeps the first N training images."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    x, y = (digits.data / 16.0).astype(np.float32), digits.target.astype(np.int64)
    index = np.arange(len(y))
    rest, test = train_test_split(index, test_size=SPLIT["test"], stratify=y, random_state=SPLIT_SEED)
    train, val = train_test_split(rest, test_size=SPLIT["val"] / (1 - SPLIT["test"]), stratify=y[rest],
                                  random_state=SPLIT_SEED)
    if subset is not None:
        train = train[:subset]
    settings = {"source": "sklearn.datasets.load_digits", "split": "stratified 60/20/20", "split_seed": SPLIT_SEED,
                "train": len(train), "val": len(val), "test": len(test)}
    return DigitsData(*(Split(x[i], y[i]) for i in (train, val, test)), settings=settings)


@dataclass
class DigitsConfig(BaseConfig):
    TASK = "digits"

    config_name: str = "mlp_64"
    seed: int = 0
    epochs: int = 27
    hidden: int = 64
    layers: int = 1
    dropout: float = 0.1
    lr: float = 3e-3
    weight_decay: float = 1e-4
    batch_size: int = 32
    lr_schedule: str = "cosine"  # warm-up then cosine over all `epochs`, as the shared loop builds it

    def checks(self) -> list[tuple[bool, str]]:
        return [(self.hidden >= 1, "hidden must be >= 1"), (self.layers >= 1, "layers must be >= 1"),
                (0 <= self.dropout < 1, "dropout must be in [0, 1)"), (self.lr > 0, "lr must be > 0"),
                (self.weight_decay >= 0, "weight_decay must be >= 0"), (self.epochs >= 1, "epochs must be >= 1"),
                (self.batch_size >= 1, "batch_size must be >= 1")]


PRESETS = {"mlp_64": DigitsConfig(), "mlp_256x2": DigitsConfig(config_name="mlp_256x2", hidden=256, layers=2)}


def build_model(config: DigitsConfig):
    from torch import nn

    blocks, width = [], FEATURES
    for _ in range(config.layers):
        blocks += [nn.Linear(width, config.hidden), nn.ReLU(), nn.Dropout(config.dropout)]
        width = config.hidden
    return nn.Sequential(*blocks, nn.Linear(width, len(LABELS)))


def save_checkpoint(model, config: DigitsConfig, folder: Path) -> None:
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    save_file({k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}, folder / "model.safetensors")
    config.to_json(folder / "experiment_config.json")


def load_checkpoint(folder: Path):
    from safetensors.torch import load_file

    if not (folder / "model.safetensors").is_file():
        raise CheckpointError(f"{folder} is not a digits checkpoint: missing model.safetensors")
    config = DigitsConfig.from_json(folder / "experiment_config.json")
    model = build_model(config)
    model.load_state_dict(load_file(folder / "model.safetensors"))
    return model.eval(), config


def scores(model, split: Split) -> dict[str, float]:
    """Accuracy and loss of a model on a split, in eval mode."""
    import torch
    import torch.nn.functional as F

    with torch.no_grad():
        logits = model(torch.from_numpy(np.array(split.x)))  # Ray's object store hands out read-only arrays
        labels = torch.from_numpy(np.array(split.y))
        return {"loss": F.cross_entropy(logits, labels).item(),
                "accuracy": (logits.argmax(-1) == labels).float().mean().item()}


def train_digits(config: dict[str, Any], data: DigitsData, reporter) -> dict[str, Any]:
    """One configuration, trained through the shared epoch loop; the validation split is its only score."""
    import torch
    import torch.nn.functional as F

    from experiments.core.training import TrainingJob, fit, seed_everything

    digits = DigitsConfig.from_dict(config)
    seed_everything(digits.seed)
    model = build_model(digits)
    steps = max(1, len(data.train) // digits.batch_size)
    x, y = torch.from_numpy(np.array(data.train.x)), torch.from_numpy(np.array(data.train.y))

    def batches(epoch: int, start: int):
        order = torch.from_numpy(np.random.default_rng([digits.seed, epoch]).permutation(len(y)))
        for step in range(start, steps):
            index = order[step * digits.batch_size:(step + 1) * digits.batch_size]
            yield x[index], y[index]

    def evaluate(model) -> dict[str, float]:
        result = scores(model, data.val)
        return {"val_loss": result["loss"], "val_accuracy": result["accuracy"]}

    return fit(TrainingJob(
        model=model, epochs=digits.epochs, steps_per_epoch=steps, train_batches=batches,
        loss_on_batch=lambda m, batch: (F.cross_entropy(m(batch[0]), batch[1]), len(batch[1])),
        evaluate=evaluate, save_checkpoint=lambda m, folder: save_checkpoint(m, digits, folder),
        optimizer="AdamW", optimizer_params={"lr": digits.lr, "weight_decay": digits.weight_decay},
        lr_schedule=digits.lr_schedule, grad_clip=0.0, unit="img", fixed=dict(data.settings),
    ), reporter, torch.device("cpu"))
