"""The platform's overhead, side by side in one run: training seq/s of one IMDB trial inside Ray Tune +
MLflow tracking vs the same trial function called directly with the same config and data.

    python -m search.benchmarks.search_overhead --data-dir ../shared/data/imdb
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import tempfile
import time
from pathlib import Path

import torch

from experiments.core.cli import UsageError, run_cli
from experiments.core.records import SEARCH_FILE, SearchRecord, read_record
from experiments.core.space import SearchSpace
from experiments.tasks import get_task
from search import engine
from search.errors import library_error


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--subset", type=int, default=2560)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--config", default="gru2_maxmean")
    args = parser.parse_args()

    task = get_task("imdb")
    if args.config not in task.presets():
        raise UsageError(f"--config {args.config!r} is not a preset; presets: {', '.join(task.presets())}")
    if args.subset < 1 or args.epochs < 1:
        raise UsageError(f"--subset and --epochs must be at least 1, got {args.subset} and {args.epochs}")
    config = dataclasses.replace(task.presets()[args.config], epochs=args.epochs).to_dict()
    data = task.load_data(args.data_dir, args.subset, 0)
    threads = torch.get_num_threads()

    def direct() -> float:
        history = task.trial(config, data, None)["history"]
        return statistics.mean(h["seq_per_s"] for h in history)

    fixed = dataclasses.replace(task, space=lambda _args: SearchSpace(params=[], constants=config))
    with tempfile.TemporaryDirectory() as work:
        before = direct()
        started = time.perf_counter()
        engine.main(fixed, [
            "--data-dir", args.data_dir, "--subset", str(args.subset), "--trials", "1", "--max-epochs",
            str(args.epochs), "--searcher", "random", "--scheduler", "fifo", "--cpus-per-trial", str(threads),
            "--storage-path", f"{work}/ray", "--tracking-uri", f"sqlite:///{work}/mlflow.db", "--name", "overhead",
            "--verbose", "0", "--refit", "0", "--report-every", "1",
        ])
        search_wall = time.perf_counter() - started
        summary = read_record(Path(work) / "ray" / "overhead" / SEARCH_FILE, SearchRecord)
        trial_dir = Path(summary.rows[0]["path"])
        results = [json.loads(line) for line in (trial_dir / "result.json").read_text().splitlines()]
        after = direct()
    in_tune = statistics.mean(r["seq_per_s"] for r in results)
    trial_time = results[-1]["time_total_s"]
    baseline = (before + after) / 2
    print(f"config={args.config} reviews={len(data.train)} epochs={args.epochs} threads={threads}")
    print(f"train seq/s: direct {before:.1f} / {after:.1f} (mean {baseline:.1f}), inside Tune+MLflow {in_tune:.1f}, "
          f"ratio {in_tune / baseline:.3f}")
    print(f"search wall {search_wall:.1f}s for a trial of {trial_time:.1f}s: start-up + tracking "
          f"{search_wall - trial_time:.1f}s per 1-trial search")


if __name__ == "__main__":
    run_cli(main, library_error)
