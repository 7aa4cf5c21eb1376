"""Classify raw inputs with an exported model: `python -m experiments.predict PATH INPUT…`.

What an input is depends on the folder's task (its `experiment_config.json` says which): review strings for
IMDB, image files for CIFAR-10. The folder carries everything needed.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from experiments import ensemble
from experiments.cli import run_cli
from experiments.tasks import task_of_checkpoint


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m experiments.predict", description=__doc__.split("\n")[0])
    parser.add_argument("path", type=Path, help="an exported model folder")
    parser.add_argument("inputs", nargs="+", help="review texts (IMDB) or image files (CIFAR-10)")
    args = parser.parse_args(argv)
    task = task_of_checkpoint(args.path)
    predictions = ensemble.predict(task, args.path, args.inputs)
    for text, (label, probability) in zip(args.inputs, predictions, strict=True):
        shown = text if len(text) <= 60 else text[:57] + "..."
        print(f"{label}\t{probability:.3f}\t{shown}")
    return 0


if __name__ == "__main__":
    run_cli(main)
