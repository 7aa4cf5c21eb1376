"""Do a search's early reports rank trials the way their final scores do? The question behind ASHA's grace period.

ASHA drops trials by their score at each rung; that is only sound if the score there already ranks the trials
the way their best scores would. For each report point (in epochs) this prints how many trials reached it, how
many stood at chance (a validation score no better than `--chance`; the score is the metric of `--task`), and the
Spearman rank correlation between the score there and each trial's best score, over the trials that went on past
that point (the ones whose later score is known).

    python -m search.benchmarks.rung_fidelity imdb-40-blocks
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd

from experiments.core.cli import UsageError, run_cli
from experiments.core.task import ACCURACY, Metric


def trial_histories(search: Path) -> list[list[dict]]:
    """Every trial's reports, in order, from Tune's own result files."""
    histories = []
    for path in sorted(search.glob("run_trial_*/result.json")):
        reports = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        if reports:
            histories.append(reports)
    return histories


def rung_table(histories: list[list[dict]], chance: float, metric: Metric = ACCURACY) -> list[dict]:
    rows, name = [], metric.name
    for index in range(max((len(h) for h in histories), default=0)):
        reached = [h for h in histories if len(h) > index]
        went_on = [h for h in reached if len(h) > index + 1]
        score = pd.Series([metric.oriented(h[index][name]) for h in went_on], dtype=float)
        best = pd.Series([metric.oriented(metric.best_of(h, key=lambda r: r[name])[name]) for h in went_on],
                         dtype=float)
        rows.append({
            "epoch": reached[0][index]["epoch"], "reached": len(reached),
            "at_chance": sum(not metric.better(h[index][name], chance) for h in reached), "went_on": len(went_on),
            "spearman": score.corr(best, method="spearman") if len(went_on) >= 3 else None,
        })
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("search", help="the search's name (its folder under --storage-path)")
    parser.add_argument("--storage-path", type=Path, default=Path("ray_results"))
    parser.add_argument("--chance", type=float, default=0.56, help="a score no better than this counts as chance")
    parser.add_argument("--task", default="imdb", help="the task whose metric the trials report (default imdb)")
    args = parser.parse_args(argv)
    from experiments.tasks import get_task

    metric = get_task(args.task).metric
    if metric.proportion and not 0 <= args.chance <= 1:
        raise UsageError(f"--chance is a validation {metric.label} in [0, 1], got {args.chance:g}")
    folder = args.storage_path / args.search
    histories = trial_histories(folder)
    if not histories:
        raise UsageError(f"no trial results under {folder}")
    print(f"{args.search}: {len(histories)} trials")
    print(f"{'epoch':>7} {'reached':>8} {'at chance':>10} {'went on':>8} {'spearman vs best':>17}")
    for row in rung_table(histories, args.chance, metric):
        rho = f"{row['spearman']:.2f}" if row["spearman"] is not None else "-"
        print(f"{row['epoch']:>7.2f} {row['reached']:>8} {row['at_chance']:>10} {row['went_on']:>8} {rho:>17}")
    return 0


if __name__ == "__main__":
    run_cli(main)
