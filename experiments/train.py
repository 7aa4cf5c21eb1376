"""`python -m experiments.train --task KEY [--config NAME|path.json] …`: train one configuration of any task alone
(no Ray), the task named as the search names it (`imdb`, `cifar`, or a module path defining `TASK`).

The rest of the flags are the runner's and the task's own (`--help` after `--task KEY` lists them);
`python -m experiments.imdb` and `python -m experiments.cifar` are the same command with the task filled in.
"""

from __future__ import annotations

import argparse

from experiments import runner
from experiments.core.cli import run_cli
from experiments.tasks import get_task


def main(argv: list[str] | None = None) -> int:
    chooser = argparse.ArgumentParser(prog="python -m experiments.train", add_help=False,
                                      description="Train one configuration of any task alone (no Ray).")
    chooser.add_argument("--task", help="imdb, cifar, or a module path defining TASK")
    chosen, rest = chooser.parse_known_args(argv)
    if chosen.task is None:
        if {"-h", "--help"} & set(rest):
            print(chooser.format_help() + "\nThe flags of one task: python -m experiments.train --task KEY --help")
            return 0
        chooser.error("the following arguments are required: --task")
    return runner.main(get_task(chosen.task), rest, module="experiments.train")


if __name__ == "__main__":
    run_cli(main)
