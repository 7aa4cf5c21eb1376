"""`python -m search.digits --trials 40`: tune the digits MLP (scikit-learn 8×8) with the shared search engine."""

from __future__ import annotations

from experiments.core.cli import run_cli
from experiments.tasks import get_task
from search import engine
from search.errors import library_error


def main(argv: list[str] | None = None) -> int:
    return engine.main(get_task("digits"), argv)


if __name__ == "__main__":
    run_cli(main, library_error)
