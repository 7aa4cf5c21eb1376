"""What does an IMDB model lose by reading only part of a long review?

A model reads its config's `max_len` tokens of a review (the head quarter and the tail, data_pipes/imdb.py). This
prints, for the validation split (`--split test` only on request: a default is chosen on validation), how many
reviews each reading length keeps whole and the mean tokens read per review (an epoch's cost grows with it); then,
for each export, its accuracy read at each length: on all reviews, on those longer than `--long` tokens, and on
the rest. Reading longer at evaluation than in training is a lower bound on what training at that length gives.
An export validated on another split (another tokenizer) is skipped on validation. `--record` writes the numbers.

    python -m experiments.benchmarks.imdb_reading_length \
        model_checkpoints/assignment2-1-2/search_imdb-40-blocks --data-dir ../shared/data/imdb \
        --record model_checkpoints/assignment2-1-2/reading_length.json
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import numpy as np

from experiments.core.cli import run_cli


def main(argv: list[str] | None = None) -> int:
    import torch

    from data_pipes import imdb
    from data_pipes.common import load_splits
    from experiments.core.errors import CheckpointError
    from experiments.tasks import require_task
    from experiments.tasks.imdb.trial import evaluate_split, load_checkpoint

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("exports", nargs="+", type=Path, help="exported IMDB model folders")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--max-len", type=int, nargs="+", default=[imdb.MAX_LEN, 800, imdb.STORED_LEN],
                        help="reading lengths to compare")
    parser.add_argument("--long", type=int, default=imdb.MAX_LEN, help="a review over this many tokens is long")
    parser.add_argument("--split", choices=("val", "test"), default="val",
                        help="validation (default: what informs a default) or test (a number to report)")
    parser.add_argument("--record", type=Path, default=None, help="also write the numbers to this JSON file")
    args = parser.parse_args(argv)
    for length in (*args.max_len, args.long):
        if not 1 <= length <= imdb.STORED_LEN:
            parser.error(f"--max-len and --long must be in [1, {imdb.STORED_LEN}], got {length}")
    require_task(args.exports, "imdb")

    data = imdb.load(args.data_dir)
    if args.split == "test":
        frames, _ = load_splits(data.data_dir, imdb.HUB_NAME, ("test",))
        tokenizer = imdb.load_tokenizer(data.tokenizer_json)
        tokens = np.array([len(e.ids) for e in tokenizer.encode_batch(frames["test"]["text"].tolist(),
                                                                     add_special_tokens=False)])
    else:
        tokens = data.val.lengths  # stored up to imdb.STORED_LEN tokens
    print(f"{args.split} reviews: {len(tokens):,}; longer than {args.long} tokens: {(tokens > args.long).mean():.1%}")
    record = {"split": args.split, "reviews": len(tokens), "long_over": args.long,
              "long_share": float((tokens > args.long).mean()), "lengths": {}, "exports": {}}
    for length in args.max_len:
        whole, mean = float((tokens <= length).mean()), float(np.minimum(tokens, length).mean())
        record["lengths"][length] = {"whole": whole, "mean_tokens": mean}
        print(f"  reading {length:>4}: {whole:6.1%} whole, {mean:6.1f} tokens per review")

    cpu = torch.device("cpu")
    print(f"{'export':<28}{'trained at':>11}{'reads':>7}{'all':>9}{'long':>9}{'rest':>9}")
    for folder in args.exports:
        try:
            model, config, tokenizer_json = load_checkpoint(folder)
        except CheckpointError as error:
            print(f"{folder.name:<28}skipped: {error}")
            continue
        if args.split == "val" and tokenizer_json != data.tokenizer_json:
            print(f"{folder.name:<28}skipped: validated on another split (its tokenizer differs)")
            continue
        reviews = imdb.encoded_test_split(data, tokenizer_json) if args.split == "test" else data.val
        long = reviews.lengths > args.long
        record["exports"][folder.name] = {"trained_reads": config.max_len, "accuracy": {}}
        for length in args.max_len:
            read = imdb.cut(reviews, length)
            scores = [evaluate_split(model, read.take(rows), cpu)["accuracy"] if rows.any() else float("nan")
                      for rows in (np.ones(len(long), dtype=bool), long, ~long)]
            record["exports"][folder.name]["accuracy"][length] = dict(zip(("all", "long", "rest"), scores,
                                                                           strict=True))
            print(f"{folder.name:<28}{config.max_len:>11}{length:>7}" + "".join(f"{s:>9.4f}" for s in scores),
                  flush=True)
    if args.record is not None:
        from experiments.core.cli import command_line, machine_info

        record.update(command=command_line("experiments.benchmarks.imdb_reading_length"), machine=machine_info())
        staging = args.record.with_name(f".{args.record.name}.tmp")
        staging.write_text(json.dumps(record, indent=1) + "\n")
        os.replace(staging, args.record)
        print(f"wrote {args.record}")
    return 0


if __name__ == "__main__":
    run_cli(main)
