"""What does an IMDB model lose by reading only part of a long review?

A model reads its config's `max_len` tokens of a review (the head quarter and the tail, data_pipes/imdb.py). This
prints, for the test split under the project tokenizer, how many reviews each reading length keeps whole and the
mean tokens read per review (an epoch's cost grows with it); then, for each export, its test accuracy read at each
length: on all reviews, on those longer than `--long` tokens, and on the rest. Reading longer at test time than in
training is a lower bound on what training at that length gives.

    python -m experiments.benchmarks.imdb_reading_length \
        model_checkpoints/assignment2-1-2/search_imdb-40-blocks --data-dir ../shared/data/imdb
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from experiments.cli import run_cli


def main(argv: list[str] | None = None) -> int:
    import torch

    from data_pipes import imdb
    from data_pipes.common import load_splits
    from experiments.errors import CheckpointError
    from experiments.imdb_trial import evaluate_split, load_checkpoint
    from experiments.tasks import require_task

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("exports", nargs="+", type=Path, help="exported IMDB model folders")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--max-len", type=int, nargs="+", default=[imdb.MAX_LEN, 800, imdb.STORED_LEN],
                        help="reading lengths to compare")
    parser.add_argument("--long", type=int, default=imdb.MAX_LEN, help="a review over this many tokens is long")
    args = parser.parse_args(argv)
    for length in (*args.max_len, args.long):
        if not 1 <= length <= imdb.STORED_LEN:
            parser.error(f"--max-len and --long must be in [1, {imdb.STORED_LEN}], got {length}")
    require_task(args.exports, "imdb")

    data = imdb.load(args.data_dir)
    frames, _ = load_splits(data.data_dir, imdb.HUB_NAME, ("test",))
    tokenizer = imdb.load_tokenizer(data.tokenizer_json)
    tokens = np.array([len(e.ids) for e in tokenizer.encode_batch(frames["test"]["text"].tolist(),
                                                                 add_special_tokens=False)])
    print(f"test reviews: {len(tokens):,}; longer than {args.long} tokens: {(tokens > args.long).mean():.1%}")
    for length in args.max_len:
        print(f"  reading {length:>4}: {(tokens <= length).mean():6.1%} whole, "
              f"{np.minimum(tokens, length).mean():6.1f} tokens per review")

    cpu = torch.device("cpu")
    print(f"{'export':<28}{'trained at':>11}{'reads':>7}{'all':>9}{'long':>9}{'rest':>9}")
    for folder in args.exports:
        try:
            model, config, tokenizer_json = load_checkpoint(folder)
        except CheckpointError as error:
            print(f"{folder.name:<28}skipped: {error}")
            continue
        test = imdb.encoded_test_split(data, tokenizer_json)
        long = test.lengths > args.long
        for length in args.max_len:
            read = imdb.cut(test, length)
            scores = [evaluate_split(model, read.take(rows), cpu)["accuracy"] if rows.any() else float("nan")
                      for rows in (np.ones(len(long), dtype=bool), long, ~long)]
            print(f"{folder.name:<28}{config.max_len:>11}{length:>7}" + "".join(f"{s:>9.4f}" for s in scores),
                  flush=True)
    return 0


if __name__ == "__main__":
    run_cli(main)
