"""Test score of any exported checkpoint: `python -m experiments.evaluate PATH [--data-dir …]`.

The task is read from the folder's own `experiment_config.json`, and with it the score (`Task.metric`: test
accuracy, test RMSE…); a task that has class names (CIFAR-10) also prints the confusion matrix. It reproduces the
number the export recorded.
"""

from __future__ import annotations

import argparse
import functools
from pathlib import Path
from typing import Any

from experiments.core.cli import run_cli
from experiments.core.task import Task
from experiments.reporting import ensemble
from experiments.tasks import get_task, task_of_checkpoint


@functools.lru_cache(maxsize=2)
def load_test_data(task_key: str, data_dir: str | None):
    """Each dataset once per process, however many checkpoints the summarizer evaluates."""
    return get_task(task_key).load_data(data_dir, None, 0)


def evaluate_checkpoint(folder: str | Path, data_dir: str | None, task: Task | None = None) -> dict[str, Any]:
    """{'task', the metric's test_name ('test_accuracy', 'test_rmse'…), 'test_loss', 'params', 'confusion',
    'class_names'} for a checkpoint folder or an ensemble of them (experiments/reporting/ensemble.py)."""
    from experiments.core.training import pick_device

    folder = Path(folder)
    task = task or task_of_checkpoint(folder)
    result = ensemble.evaluate(task, folder, load_test_data(task.key, data_dir), pick_device())
    return {
        "task": task.key,
        task.metric.test_name: result[task.metric.test_key],
        "test_loss": result.get("loss"),
        "params": result["params"],
        "confusion": result.get("confusion"),
        "class_names": result.get("class_names"),
    }


def format_confusion(confusion, names: list[str]) -> str:
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
    test_name = get_task(result["task"]).metric.test_name
    print(f"{args.path}: task={result['task']} params={result['params']:,} {test_name}={result[test_name]:.4f}")
    if result["confusion"] is not None and result["class_names"]:
        print(format_confusion(result["confusion"], result["class_names"]))
    return 0


if __name__ == "__main__":
    run_cli(main)
