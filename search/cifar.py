"""`python -m search.cifar --model vit|swin|both --trials N`: ViT / Swin on CIFAR-10, same engine as IMDB."""

from __future__ import annotations

from experiments.core.cli import run_cli
from experiments.tasks import get_task
from search import engine
from search.errors import library_error


def main(argv: list[str] | None = None) -> int:
    return engine.main(get_task("cifar"), argv)


if __name__ == "__main__":
    run_cli(main, library_error)
