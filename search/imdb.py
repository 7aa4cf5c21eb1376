"""`python -m search.imdb --trials 40`: tune the IMDB GRU classifier with the shared search engine."""

from __future__ import annotations

import argparse
from typing import Any

from data_pipes import imdb as imdb_data
from experiments.cli import run_cli
from experiments.config import ExperimentConfig
from experiments.imdb_trial import build_model, train_imdb
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


def describe_config(config: dict[str, Any], args: argparse.Namespace) -> str:
    """One line for the dry run: the sampled knobs and the model's size."""
    experiment = ExperimentConfig.from_dict(config)
    params = sum(p.numel() for p in build_model(experiment).parameters())
    knobs = ", ".join(
        f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in sorted(config.items())
        if k not in ("epochs", "seed")
    )
    return f"{params / 1e6:.2f} M params — {knobs}"


WORKLOAD = engine.SearchWorkload(
    name="imdb",
    load_data=load_data,
    trial_fn=train_imdb,
    space=lambda args: imdb_space(args.max_epochs, args.seed),
    fixed_params=fixed_params,
    describe_config=describe_config,
)


def main(argv: list[str] | None = None) -> int:
    return engine.main(WORKLOAD, argv)


if __name__ == "__main__":
    run_cli(main)
