"""Does bf16 autocast (or torch.compile) pay for the IMDB GRU on this CPU? Training steps (forward, backward,
AdamW) of one configuration on the same real batches, fp32 against each variant, interleaved in rounds so that a
change of load hits every variant alike; prints reviews per second and each variant's ratio to fp32.

    python -m experiments.benchmarks.imdb_precision --data-dir ../shared/data/imdb --record

Speed only: a variant that pays is adopted after one full-data training shows it reaches fp32's validation
accuracy. `--record` writes `model_checkpoints/assignment2-1-2/imdb_precision.json` with the machine and load.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from experiments.benchmarks.precision import medians, time_variants, write_record
from experiments.core.cli import command_line, run_cli
from experiments.core.errors import UsageError
from experiments.core.machine_load import load_average

RECORD = Path("model_checkpoints/assignment2-1-2/imdb_precision.json")
VARIANTS = ("fp32", "bf16", "compile")


def batches(data_dir: str, reviews: int, batch_size: int, max_len: int, seed: int) -> list[tuple]:
    """`reviews` training reviews in the trial's length-bucketed batches, as tensors."""
    import torch

    from data_pipes import imdb

    train = imdb.cut(imdb.load(data_dir, subset=reviews, seed=seed).train, max_len)
    order = imdb.length_bucketed_batches(train.lengths, batch_size, shuffle=True, rng=np.random.default_rng(seed))
    return [tuple(torch.from_numpy(a) for a in imdb.collate(train, index)) for index in order]


def make_step(config, variant: str):
    """One training step (forward under the variant, backward, AdamW) of a fresh model; returns reviews trained."""
    import torch
    from torch import nn

    from experiments.tasks.imdb.trial import build_model

    torch.manual_seed(config.seed)
    model = build_model(config)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr)
    forward = torch.compile(model) if variant == "compile" else model

    def step(batch) -> int:
        ids, lengths, labels = batch
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=variant == "bf16"):
            logits = forward(ids, lengths).squeeze(-1)
        loss = nn.functional.binary_cross_entropy_with_logits(logits.float(), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return len(labels)

    return step


def main(argv: list[str] | None = None) -> int:
    import torch

    from experiments.tasks.imdb.config import resolve_imdb_config

    parser = argparse.ArgumentParser(prog="python -m experiments.benchmarks.imdb_precision",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", required=True, help="IMDB laid out like the hub repository")
    parser.add_argument("--config", default="bigru1_wide_dropout", help="a preset or a config JSON")
    parser.add_argument("--reviews", type=int, default=1024, help="training reviews timed per variant and round")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of every variant, interleaved")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads(), help="torch threads")
    parser.add_argument("--variants", nargs="+", choices=VARIANTS, default=list(VARIANTS))
    parser.add_argument("--record", action="store_true", help=f"write {RECORD}")
    args = parser.parse_args(argv)
    if args.reviews < 2 or args.rounds < 1 or args.threads < 1:
        raise UsageError("--reviews must be >= 2, --rounds and --threads >= 1")
    if not Path(args.data_dir).is_dir():
        raise UsageError(f"--data-dir {args.data_dir} is not a folder")
    config = resolve_imdb_config(args.config)
    torch.set_num_threads(args.threads)
    work = batches(args.data_dir, args.reviews, config.batch_size, config.max_len, config.seed)
    load_start = load_average()
    speeds = time_variants(lambda variant: make_step(config, variant), work, args.variants, args.rounds)
    median = medians(speeds, "reviews")
    if args.record:
        write_record(RECORD, command_line("experiments.benchmarks.imdb_precision"), config.to_dict(), speeds,
                     median, args.threads, load_start, reviews_per_round=args.reviews, rounds=args.rounds)
    return 0


if __name__ == "__main__":
    run_cli(main)
