"""`python -m search.imdb --trials 40`: tune the IMDB GRU classifier with the shared search engine."""

from __future__ import annotations

import argparse
from typing import Any

from data_pipes import imdb as imdb_data
from experiments.cli import run_cli
from experiments.imdb_trial import train_imdb
from search import engine
from search.spaces import imdb_space


def load_data(args: argparse.Namespace) -> imdb_data.ImdbData:
    return imdb_data.load(args.data_dir, subset=args.subset, seed=0)


def fixed_params(data: imdb_data.ImdbData, args: argparse.Namespace) -> dict[str, Any]:
    """Not searched, but recorded on every trial: the project tokenizer, max length and the data used."""
    return {
        **{f"fixed.{k}": v for k, v in data.settings.items()},
        "data.fingerprint": data.fingerprint,
        "data.train_size": len(data.train),
        "data.val_size": len(data.val),
    }


WORKLOAD = engine.SearchWorkload(
    name="imdb",
    load_data=load_data,
    trial_fn=train_imdb,
    space=lambda args: imdb_space(args.max_epochs, args.seed),
    fixed_params=fixed_params,
)


def main(argv: list[str] | None = None) -> int:
    return engine.main(WORKLOAD, argv)


if __name__ == "__main__":
    run_cli(main)
