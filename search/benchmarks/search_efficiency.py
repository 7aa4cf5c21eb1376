"""Does the platform find a good model with less compute? Optuna + ASHA against random search without early
stopping (and optionally the two mixed), same trials, epochs and seeds, on the real IMDB data.

    python -m search.benchmarks.search_efficiency --data-dir ../shared/data/imdb --seeds 0 1 2 --resume

One seed (both strategies, 16 trials of up to 4 epochs on 2,000 reviews) took 32 to 49 min on an idle 2-core Intel
Xeon (seeds 0-2); `--resume` reuses the seeds already run.

Prints one table and the ratios against random + FIFO; writes `search_efficiency.csv`, `.md` and `.png`
(best-so-far validation accuracy against cumulative trial-epochs) under `--out`.
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path
from statistics import mean

from experiments.core.cli import UsageError, command_line, machine_info, run_cli
from experiments.core.records import SEARCH_FILE, SearchRecord, read_record
from experiments.core.uncertainty import standard_error
from experiments.tasks import get_task
from search import engine
from search.errors import library_error
from search.storage import saved_settings, setting_conflicts

TASK = get_task("imdb")

BASELINE = "random+fifo"


def trajectory(summary: SearchRecord) -> list[float]:
    """Best-so-far validation accuracy after each trial-epoch, in the order the epochs finished."""
    epochs = []
    for row in summary.rows:
        path = Path(row["path"]) / "result.json"
        if path.is_file():
            epochs += [(r["timestamp"], r[TASK.metric.name]) for r in map(json.loads, path.read_text().splitlines())]
    best, curve = 0.0, []
    for _, accuracy in sorted(epochs):
        best = max(best, accuracy)
        curve.append(best)
    return curve


def search_name(strategy: str, seed: int) -> str:
    searcher, scheduler = strategy.split("+")
    return f"eff-{searcher}-{scheduler}-s{seed}"


def run_strategy(strategy: str, seed: int, args: argparse.Namespace, data) -> dict:
    """One search through the engine; with --resume a finished one is read back, an interrupted one resumed."""
    searcher, scheduler = strategy.split("+")
    name = search_name(strategy, seed)
    summary_file = args.out / "ray" / name / SEARCH_FILE
    if not summary_file.is_file() or not read_record(summary_file, SearchRecord).finished:
        engine.main(TASK, [
            "--data-dir", args.data_dir, "--subset", str(args.subset), "--trials", str(args.trials),
            "--max-epochs", str(args.max_epochs), "--searcher", searcher, "--scheduler", scheduler,
            "--seed", str(seed), "--name", name, "--storage-path", str(args.out / "ray"), "--tracking-uri",
            f"sqlite:///{(args.out / 'mlflow.db').resolve()}", "--verbose", "0", "--refit", "0", "--report-every", "1",
        ])
    summary = read_record(summary_file, SearchRecord)
    from experiments.core.training import pick_device

    test = TASK.evaluate_checkpoint(Path(summary.best_checkpoint), data, pick_device())
    error = standard_error(test["accuracy"], len(data.test))
    curve = trajectory(summary)
    reached = {t: next((i + 1 for i, best in enumerate(curve) if best >= t), None) for t in args.target}
    return {
        "strategy": strategy, "seed": seed, "trial_epochs": summary.trial_epochs,
        "wall_min": summary.wall_seconds / 60, "best_val": summary.best_score(TASK.metric.best_key),
        "test_of_best": test["accuracy"], "test_error": error,
        **{f"epochs_to_{t:g}": n for t, n in reached.items()}, "curve": curve,
    }


def compare(strategy: str, runs: list[dict], baseline: dict[int, dict], targets: list[float]) -> list[str]:
    """Ratios against the baseline of the same seed: total spend, and epochs until each target was reached."""
    spend = [r["trial_epochs"] / baseline[r["seed"]]["trial_epochs"] for r in runs]
    lines = [f"- {strategy} vs {BASELINE}: total trial-epochs ratio {mean(spend):.2f} "
             f"(per seed {', '.join(f'{x:.2f}' for x in spend)})"]
    for t in targets:
        key, parts = f"epochs_to_{t:g}", []
        for r in runs:
            ours, theirs = r[key], baseline[r["seed"]][key]
            if ours and theirs:
                parts.append(f"seed {r['seed']}: {ours / theirs:.2f}")
            elif ours:
                parts.append(f"seed {r['seed']}: < {ours / baseline[r['seed']]['trial_epochs']:.2f} "
                             f"(baseline never reached it in {baseline[r['seed']]['trial_epochs']})")
            elif not theirs:
                parts.append(f"seed {r['seed']}: neither reached it")
            else:
                parts.append(f"seed {r['seed']}: {strategy} never reached it")
        lines.append(f"  - epochs to {t:g}, ratio: " + "; ".join(parts))
    return lines


def conclusion(strategy: str, runs: list[dict], baseline: dict[int, dict], targets: list[float],
               budget: int) -> list[str]:
    """What the table says, computed from it: at equal compute who was ahead in how many seeds, how much
    compute each spent, who reached each target first; "consistent" only when every seed agrees."""
    gaps = [(r["best_at_budget"] - baseline[r["seed"]]["best_at_budget"]) * 100 for r in runs]
    spend = [r["trial_epochs"] / baseline[r["seed"]]["trial_epochs"] for r in runs]
    ahead, n = sum(g > 0 for g in gaps), len(runs)
    lines = [f"- Conclusion: at equal compute (the first {budget} trial-epochs of every run) {strategy} had the "
             f"higher best validation accuracy in {ahead} of {n} seeds (gap {mean(gaps):+.2f} points on average, "
             f"{min(gaps):+.2f} to {max(gaps):+.2f}); over its whole run it spent {mean(spend):.2f}× the trial-epochs "
             f"of {BASELINE} ({min(spend):.2f} to {max(spend):.2f})."]
    for t in targets:
        key = f"epochs_to_{t:g}"
        first = sum(bool(r[key]) and (not baseline[r["seed"]][key] or r[key] < baseline[r["seed"]][key])
                    for r in runs)
        later = sum(bool(baseline[r["seed"]][key]) and (not r[key] or r[key] > baseline[r["seed"]][key])
                    for r in runs)
        lines.append(f"  - val {t:g}: {strategy} reached it first in {first} of {n} seeds, {BASELINE} in {later}.")
    verdict = ("ahead in every seed: a consistent advantage at this budget" if ahead == n else
               "behind in every seed" if ahead == 0 else
               f"ahead in {ahead} of {n} seeds: no consistent advantage at this budget with {n} seeds")
    lines.append(f"  - So: {strategy} was {verdict}.")
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--subset", type=int, default=2000)
    parser.add_argument("--trials", type=int, default=16)
    parser.add_argument("--max-epochs", type=int, default=4)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0], help="each seed reruns every strategy")
    parser.add_argument("--target", type=float, nargs="+", default=[0.75, 0.78, 0.80],
                        help="validation accuracies to reach (one column each)")
    parser.add_argument("--strategies", nargs="+", default=["optuna+asha", BASELINE],
                        help="searcher+scheduler pairs; add optuna+fifo random+asha to separate the effects")
    parser.add_argument("--out", type=Path, default=Path("outputs/benchmarks"))
    parser.add_argument("--resume", action="store_true", help="reuse finished searches under --out, resume the rest")
    args = parser.parse_args()
    for flag in ("subset", "trials", "max_epochs"):
        if getattr(args, flag) < 1:
            raise UsageError(f"--{flag.replace('_', '-')} must be at least 1, got {getattr(args, flag)}")
    for strategy in args.strategies:
        if strategy.count("+") != 1 or strategy.split("+")[0] not in ("optuna", "random") \
                or strategy.split("+")[1] not in ("asha", "fifo"):
            raise UsageError(f"--strategies: {strategy!r} is not searcher+scheduler (optuna|random + asha|fifo)")
    if BASELINE not in args.strategies:
        raise UsageError(f"--strategies must include the baseline {BASELINE}: every ratio is against it")
    stale = [args.out / "ray" / search_name(s, seed) for seed in args.seeds for s in args.strategies]
    stale = [path for path in stale if path.exists()]
    if stale and not args.resume:  # the engine would resume them with their own (maybe different) settings
        raise UsageError(f"{stale[0]} exists from an earlier run: pass --resume, or another --out")
    for path in stale:  # finished ones are read back without the engine, so its own check never sees them
        sizes = {k: getattr(args, k) for k in ("subset", "trials", "max_epochs")}
        conflicts = setting_conflicts(saved_settings(str(path)), sizes)
        if conflicts:
            key, was, wanted = conflicts[0]
            raise UsageError(f"{path} ran with {key}={was}, not {wanted}: use another --out")
    data = TASK.load_data(args.data_dir, args.subset, 0)
    args.out.mkdir(parents=True, exist_ok=True)
    runs = [run_strategy(s, seed, args, data) for seed in args.seeds for s in args.strategies]

    budget = min(r["trial_epochs"] for r in runs)  # equal compute: the smallest spend among all runs
    targets = [f"epochs_to_{t:g}" for t in args.target]
    machine = machine_info()
    lines = [f"`{command_line('search.benchmarks.search_efficiency')}` — {machine['cpu']}, "
             f"{machine['cpu_count']} CPUs, one torch thread per trial", "",
             f"subset {args.subset} reviews, {args.trials} trials, max {args.max_epochs} epochs, seeds {args.seeds}, "
             f"targets val {', '.join(f'{t:g}' for t in args.target)}", "",
             "| strategy | seed | trial-epochs | wall (min) | best val | test of best | "
             + " | ".join(f"epochs to {t:g}" for t in args.target) + f" | best val at {budget} epochs |",
             "|---" * (7 + len(targets)) + "|"]
    for r in runs:
        r["best_at_budget"] = r["curve"][budget - 1] if len(r["curve"]) >= budget else r["best_val"]
        lines.append(f"| {r['strategy']} | {r['seed']} | {r['trial_epochs']} | {r['wall_min']:.1f} "
                     f"| {r['best_val']:.4f} | {r['test_of_best']:.4f} ± {r['test_error']:.4f} | "
                     + " | ".join(str(r[k] or "never") for k in targets) + f" | {r['best_at_budget']:.4f} |")
    lines.append("")
    for strategy in args.strategies:
        if strategy != BASELINE:
            ours, theirs = ([r for r in runs if r["strategy"] == strategy],
                            {r["seed"]: r for r in runs if r["strategy"] == BASELINE})
            lines += compare(strategy, ours, theirs, args.target)
            lines += conclusion(strategy, ours, theirs, args.target, budget)
    table = "\n".join(lines)
    print(table)
    (args.out / "search_efficiency.md").write_text(  # the report writer attaches it as it is, heading included
        "## Search efficiency (Optuna + ASHA vs random + FIFO)\n\n"
        f"{table}\n\n![search efficiency](search_efficiency.png)\n"
    )
    with open(args.out / "search_efficiency.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=[k for k in runs[0] if k != "curve"])
        writer.writeheader()
        writer.writerows({k: v for k, v in r.items() if k != "curve"} for r in runs)

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    strategies, seeds = list(dict.fromkeys(r["strategy"] for r in runs)), list(dict.fromkeys(r["seed"] for r in runs))
    styles = ("-", "--", ":", "-.")
    for r in runs:  # one colour per strategy, one line style per seed: the spread is what matters
        ax.plot(range(1, len(r["curve"]) + 1), r["curve"], label=f"{r['strategy']} seed {r['seed']}",
                color=f"C{strategies.index(r['strategy'])}", linestyle=styles[seeds.index(r["seed"]) % len(styles)])
    for t in args.target:
        ax.axhline(t, color="grey", linestyle=":", linewidth=0.8)
    ax.set(xlabel="cumulative trial-epochs", ylabel="best-so-far val accuracy", title="Search efficiency on IMDB")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(args.out / "search_efficiency.png", dpi=110)
    return 0


if __name__ == "__main__":
    run_cli(main, library_error)
