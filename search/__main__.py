"""`python -m search --task TASK …`: the same search for any task, built in or a module path defining TASK
(e.g. `--task my_package.my_task`); `python -m search.imdb` is `python -m search --task imdb`."""

from __future__ import annotations

import sys

from experiments.core.cli import UsageError, run_cli
from experiments.tasks import TASKS, get_task
from search import engine
from search.errors import library_error


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--task" not in argv or argv.index("--task") + 1 >= len(argv):
        raise UsageError(f"name the task: python -m search --task TASK … (TASK: {', '.join(TASKS)} or a module path)")
    at = argv.index("--task")
    key = argv[at + 1]
    return engine.main(get_task(key), argv[:at] + argv[at + 2:])


if __name__ == "__main__":
    run_cli(main, library_error)
