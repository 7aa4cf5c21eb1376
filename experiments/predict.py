"""Predict raw inputs with an exported model: `python -m experiments.predict PATH INPUT…`.

What an input is, and what is predicted, depends on the folder's task (its `experiment_config.json` says which):
review strings for IMDB and image files for CIFAR-10 (a label and its probability), numbers for a regression (a
value). Everything after PATH is an input, also one starting with "-". The folder carries everything needed.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from experiments.core.cli import run_cli
from experiments.reporting import ensemble
from experiments.tasks import task_of_checkpoint


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m experiments.predict", description=__doc__.split("\n")[0])
    parser.add_argument("path", type=Path, help="an exported model folder")
    parser.add_argument("inputs", nargs=argparse.REMAINDER,
                        help="review texts (IMDB), image files (CIFAR-10), the task's numbers (a regression)")
    args = parser.parse_args(argv)
    if not args.inputs:
        parser.error("give at least one INPUT after PATH")
    task = task_of_checkpoint(args.path)
    predictions = ensemble.predict(task, args.path, args.inputs)
    for text, prediction in zip(args.inputs, predictions, strict=True):
        shown = text if len(text) <= 60 else text[:57] + "..."
        said = (f"{prediction[0]}\t{prediction[1]:.3f}" if isinstance(prediction, tuple)  # label, probability
                else f"{prediction:.4g}")  # a regression's value
        print(f"{said}\t{shown}")
    return 0


if __name__ == "__main__":
    run_cli(main)
