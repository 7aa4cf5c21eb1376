"""`python -m experiments.imdb --config NAME|path.json`: train one IMDB configuration alone (see runner)."""

from __future__ import annotations

from experiments import runner
from experiments.core.cli import run_cli
from experiments.tasks import get_task


def main(argv: list[str] | None = None) -> int:
    return runner.main(get_task("imdb"), argv)


if __name__ == "__main__":
    run_cli(main)
