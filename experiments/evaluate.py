"""Test accuracy of any exported checkpoint: `python -m experiments.evaluate PATH [--data-dir …]`.

The task is read off the folder's files (`tokenizer.json` → IMDB GRU, `preprocessor_config.json` → ViT/Swin);
CIFAR-10 also prints the confusion matrix. It reproduces the number the export recorded.
"""

from __future__ import annotations

import argparse
import functools
from pathlib import Path
from typing import Any

import numpy as np

from experiments.cli import run_cli
from experiments.imdb_trial import CheckpointError
from experiments.training import pick_device


def detect_task(folder: Path) -> str:
    if not folder.is_dir():
        raise CheckpointError(f"checkpoint folder not found: {folder}")
    if (folder / "tokenizer.json").is_file():
        return "imdb"
    if (folder / "preprocessor_config.json").is_file():
        return "cifar"
    raise CheckpointError(f"{folder} is not a tunelab checkpoint (no tokenizer.json or preprocessor_config.json)")


@functools.lru_cache(maxsize=2)
def load_task_data(task: str, data_dir: str | None):
    """Each dataset once per process, however many checkpoints the summarizer evaluates."""
    if task == "imdb":
        from data_pipes import imdb as imdb_data

        return imdb_data.load(data_dir)
    from data_pipes import cifar10

    return cifar10.load(data_dir)


def evaluate_checkpoint(folder: str | Path, data_dir: str | None) -> dict[str, Any]:
    """{'task', 'test_accuracy', 'params', 'confusion' (CIFAR-10 only)} for a checkpoint folder."""
    folder = Path(folder)
    task = detect_task(folder)
    device = pick_device()
    if task == "imdb":
        from experiments.imdb_trial import evaluate_split, load_checkpoint

        model, _, _ = load_checkpoint(folder, device)
        result = evaluate_split(model, load_task_data(task, data_dir).test, device)
        confusion = None
    else:
        from experiments.vision_trial import confusion_matrix, evaluate_split, load_checkpoint

        model, config = load_checkpoint(folder, device)
        data = load_task_data(task, data_dir)
        result = evaluate_split(model, data.test.images, data.test.labels, device, config.image_size)
        confusion = confusion_matrix(result["predictions"], data.test.labels, len(data.class_names))
    return {
        "task": task,
        "test_accuracy": result["accuracy"],
        "params": sum(p.numel() for p in model.parameters()),
        "confusion": confusion,
    }


def format_confusion(confusion: np.ndarray, names: list[str]) -> str:
    short = [n[:5] for n in names]
    lines = ["true\\pred " + " ".join(f"{n:>5}" for n in short)]
    lines += [f"{short[i]:>9} " + " ".join(f"{c:>5}" for c in row) for i, row in enumerate(confusion)]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m experiments.evaluate", description=__doc__.split("\n")[0])
    parser.add_argument("path", type=Path, help="an exported or checkpoint folder")
    parser.add_argument("--data-dir", default=None, help="local dataset copy in the hub layout")
    args = parser.parse_args(argv)
    result = evaluate_checkpoint(args.path, args.data_dir)
    print(f"{args.path}: task={result['task']} params={result['params']:,} test_accuracy={result['test_accuracy']:.4f}")
    if result["confusion"] is not None:
        from models.vision import CIFAR10_CLASSES

        print(format_confusion(result["confusion"], list(CIFAR10_CLASSES)))
    return 0


if __name__ == "__main__":
    run_cli(main, extra_errors=(CheckpointError,))
