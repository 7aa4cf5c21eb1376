"""Side by side, in one run: the IMDB trial function's training seq/s vs a bare `nn.GRU` loop on the
same batches, and the preparation time of the 50k reviews cold (tokenizer + encode) vs from the cache.

    python -m experiments.benchmarks.imdb_throughput --data-dir ../shared/data/imdb
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import tempfile
import time

import numpy as np
import torch
from torch import nn

from data_pipes import imdb as imdb_data
from experiments.core.cli import UsageError, run_cli
from experiments.tasks.imdb.config import IMDB_PRESETS
from experiments.tasks.imdb.trial import train_imdb


def bare_loop(data: imdb_data.ImdbData, config, vocab_size: int) -> float:
    """The loop a user writes by hand: embedding, multi-layer nn.GRU, max+mean pooling, AdamW."""
    torch.manual_seed(config.seed)
    embedding = nn.Embedding(vocab_size, config.embed_dim, padding_idx=0)
    gru = nn.GRU(config.embed_dim, config.hidden_dim, config.num_layers, batch_first=True, dropout=config.dropout)
    head = nn.Linear(2 * config.hidden_dim, 1)
    params = [*embedding.parameters(), *gru.parameters(), *head.parameters()]
    optimizer = torch.optim.AdamW(params, lr=config.lr)
    rng = np.random.default_rng(config.seed)  # the trial draws its batches from the same seeded generator
    train = imdb_data.cut(data.train, config.max_len)  # the reviews as the trial reads them
    seen, started = 0, time.perf_counter()
    for index in imdb_data.length_bucketed_batches(train.lengths, config.batch_size, shuffle=True, rng=rng):
        ids, lengths, labels = (torch.from_numpy(a) for a in imdb_data.collate(train, index))
        out, _ = gru(embedding(ids))
        mask = (torch.arange(ids.size(1)) < lengths.unsqueeze(1)).unsqueeze(-1)
        pooled = torch.cat([out.masked_fill(~mask, -1e9).amax(1), (out * mask).sum(1) / lengths.unsqueeze(1)], -1)
        loss = nn.functional.binary_cross_entropy_with_logits(head(pooled).squeeze(-1), labels)
        optimizer.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        seen += len(index)
    return seen / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--reviews", type=int, default=2560, help="training reviews timed (one epoch)")
    parser.add_argument("--config", default="gru2_maxmean")
    args = parser.parse_args()
    if args.config not in IMDB_PRESETS:
        raise UsageError(f"--config {args.config!r} is not a preset; presets: {', '.join(IMDB_PRESETS)}")
    if args.reviews < 1:
        raise UsageError(f"--reviews must be at least 1, got {args.reviews}")

    with tempfile.TemporaryDirectory() as cold_cache:
        os.environ["TUNELAB_CACHE"], saved = cold_cache, os.environ.get("TUNELAB_CACHE")
        started = time.perf_counter()
        imdb_data.load(args.data_dir)
        cold = time.perf_counter() - started
        started = time.perf_counter()
        data = imdb_data.load(args.data_dir, subset=args.reviews)
        cached = time.perf_counter() - started
        if saved is not None:
            os.environ["TUNELAB_CACHE"] = saved

    config = dataclasses.replace(IMDB_PRESETS[args.config], epochs=1, lr_schedule="constant", dropout=0.0)
    bare = bare_loop(data, config, data.vocab_size)
    trial = train_imdb(config, data)["history"][0]["seq_per_s"]
    print(f"threads={torch.get_num_threads()} config={args.config} reviews={len(data.train)} batch={config.batch_size}")
    print(f"prepare 50k reviews: cold {cold:.1f}s (tokenizer training + encoding), cached {cached:.2f}s, "
          f"ratio {cold / cached:.0f}x")
    print(f"train seq/s: trial function {trial:.1f}, bare nn.GRU loop {bare:.1f}, ratio {trial / bare:.3f}")


if __name__ == "__main__":
    run_cli(main)
