"""Does IMDB validation overrate a model on reviews of movies it trained on?

IMDB's test split holds other movies than its train split (Maas et al. 2011), and the hub parquet keeps the reviews
of one movie in adjacent rows. Runs before the block validation split (data_pipes/imdb.py) drew validation at
random from the train split, so many validation reviews had reviews of their own movie in training, and a model
that leans on movie-specific words (names, titles) scored higher on validation than on test — a winner's curse
that no refit removes. Each export is measured on the validation split it was trained with (its recorded
`validation` setting; "random" where none is recorded).

This script measures both halves of that: how often adjacent rows share a rare capitalised name (one that at most
`--rare` reviews use) against rows 500 apart, and, for each export given, its accuracy on the validation reviews
that have an adjacent training review sharing such a name (surely the same movie) and on the rest. The control:
the same grouping on test reviews (an adjacent *test* review shares a name; no test movie was trained on), which
shows how much easier such reviews are by themselves.

    python -m experiments.benchmarks.imdb_val_leak model_checkpoints/assignment2-1-2/search_imdb-40 \
        model_checkpoints/assignment2-1-2/bigru1_wide_dropout --data-dir ../shared/data/imdb
"""

from __future__ import annotations

import argparse
import collections
import re
from pathlib import Path

import numpy as np

from experiments.core.cli import run_cli

NAME = re.compile(r"\b[A-Z][a-z]{3,}\b")


def rare_names(texts: list[str], rare: int) -> list[set[str]]:
    names = [set(NAME.findall(text)) for text in texts]
    uses = collections.Counter(name for found in names for name in found)
    return [{name for name in found if uses[name] <= rare} for found in names]


def named_neighbour(names: list[set[str]], rows: np.ndarray, allowed: np.ndarray) -> np.ndarray:
    """For each row: does an adjacent row among `allowed` share a rare name with it (the same movie)?"""
    return np.array([any(0 <= j < len(names) and allowed[j] and names[i] & names[j] for j in (i - 1, i + 1))
                     for i in rows])


def correct(task, folder: Path, texts: list[str], labels: np.ndarray) -> np.ndarray:
    """Per review: did the export (with its own tokenizer, as served) get the label right?"""
    return np.array([label == "pos" for label, _ in task.predict(folder, texts)]) == (labels == 1)


def main(argv: list[str] | None = None) -> int:
    from data_pipes.common import load_splits
    from data_pipes.imdb import HUB_NAME, validation_split
    from experiments.core.checkpoints import recorded_validation
    from experiments.core.errors import CheckpointError, UsageError
    from experiments.tasks import get_task, require_task

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("exports", nargs="+", type=Path, help="exported IMDB model folders")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--test-sample", type=int, default=5000, help="test reviews in the control")
    parser.add_argument("--rare", type=int, default=30, help="a name used by at most this many reviews is rare")
    args = parser.parse_args(argv)
    if args.test_sample < 1 or args.rare < 1:
        raise UsageError(f"--test-sample and --rare must be at least 1, got {args.test_sample} and {args.rare}")
    require_task(args.exports, "imdb")

    frames, _ = load_splits(args.data_dir, HUB_NAME, ("train", "test"))
    texts, labels = frames["train"]["text"].tolist(), frames["train"]["label"].to_numpy()
    names = rare_names(texts, args.rare)
    n = len(texts)
    apart = {gap: np.mean([bool(names[i] & names[i + gap]) for i in range(n - gap)]) if n > gap else float("nan")
             for gap in (1, 500)}
    print(f"train rows sharing a rare name: adjacent {apart[1]:.3f}, 500 rows apart {apart[500]:.4f}")
    splits = {}  # validation protocol -> (validation rows, which of them have a trained-on neighbour)

    def split_of(validation: str) -> tuple[np.ndarray, np.ndarray]:
        if validation not in splits:
            train_idx, val_idx = validation_split(labels, validation, 0)  # the split runs train on (seed 0)
            in_train = np.zeros(n, dtype=bool)
            in_train[train_idx] = True
            seen = named_neighbour(names, val_idx, in_train)
            print(f"validation ({validation}): {len(val_idx):,} reviews; with an adjacent training review sharing a "
                  f"rare name (same movie, trained on): {seen.sum():,} ({seen.mean():.1%})")
            splits[validation] = val_idx, seen
        return splits[validation]

    test_texts, test_labels = frames["test"]["text"].tolist(), frames["test"]["label"].to_numpy()
    test_names = rare_names(test_texts, args.rare)
    if args.test_sample > len(test_texts):
        raise UsageError(f"--test-sample {args.test_sample}: the test split has {len(test_texts):,} reviews")
    test_idx = np.sort(np.random.default_rng(0).choice(len(test_texts), args.test_sample, replace=False))
    named = named_neighbour(test_names, test_idx, np.ones(len(test_texts), dtype=bool))
    print(f"control: {len(test_idx):,} test reviews, {named.sum():,} ({named.mean():.1%}) with an adjacent test review "
          f"sharing a rare name (same movie, never trained on)")

    task = get_task("imdb")
    for folder in args.exports:  # each export's validation split, said before the table
        split_of(recorded_validation(folder))
    print(f"{'export':<24}    val    seen  unseen     gap      test*   named   other     gap")
    for folder in args.exports:
        val_idx, seen = split_of(recorded_validation(folder))
        try:
            val_right = correct(task, folder, [texts[i] for i in val_idx], labels[val_idx])
        except CheckpointError as error:
            print(f"{folder.name:<24}skipped: {error}")
            continue
        test_right = correct(task, folder, [test_texts[i] for i in test_idx], test_labels[test_idx])
        cells = [val_right.mean()]
        for right, group in ((val_right, seen), (test_right, named)):
            inside, outside = (right[g].mean() if g.any() else float("nan") for g in (group, ~group))
            cells += [inside, outside, (inside - outside) * 100]
        v, vs, vu, vg, ts, tu, tg = cells
        print(f"{folder.name:<24}{v:>7.4f}{vs:>8.4f}{vu:>8.4f}{vg:>+8.2f}   {test_right.mean():>7.4f}{ts:>8.4f}"
              f"{tu:>8.4f}{tg:>+8.2f}", flush=True)
    print("gap: accuracy on the first group minus the second, in points; test*: the control's sample")
    return 0


if __name__ == "__main__":
    run_cli(main)
