"""How well a cheap score ranks configurations the way full training does: the arithmetic of a fidelity study.

A study trains each configuration once at the full budget (its final validation score is the truth) and records
the learning curve of every cheaper run; each (run kind, report point) is a proxy a search could rank on. This
module scores the proxies (Spearman's rank correlation with the truth, a bootstrap interval over configurations,
the cost in full-budget epochs, the cheapest proxy that ranks well enough) and holds what every study shares: the
reporter a run resumes from, the run records, the study's JSON, CSV and plot, and its command line. No task is
named here; `imdb_fidelity.py` and `cifar_fidelity.py` are its users.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from experiments.core.checkpoints import write_text_atomically
from experiments.core.errors import UsageError

GOOD_RANKING = 0.8  # a proxy ranks well enough when its Spearman with the truth is at least this,
ENOUGH_CONFIGS = 8  # over at least this many configurations, its 90 % interval's low end above zero


def spearman(x: list[float], y: list[float]) -> float:
    """Rank correlation, ties given their mean rank."""
    def ranks(values: list[float]) -> np.ndarray:
        values = np.asarray(values, dtype=float)
        order = np.argsort(values, kind="stable")
        result = np.empty(len(values))
        result[order] = np.arange(len(values), dtype=float)
        for value in np.unique(values):
            tied = values == value
            result[tied] = result[tied].mean()
        return result

    rx, ry = ranks(x), ranks(y)
    if rx.std() == 0 or ry.std() == 0:
        return float("nan")
    return float(np.corrcoef(rx, ry)[0, 1])


def bootstrap_interval(x: list[float], y: list[float], draws: int = 2000, seed: int = 0) -> tuple[float, float]:
    """A 90 % percentile interval of Spearman's rho over configurations drawn with replacement."""
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(draws):
        pick = rng.integers(0, len(x), len(x))
        rho = spearman([x[i] for i in pick], [y[i] for i in pick])
        if not np.isnan(rho):
            values.append(rho)
    if not values:  # no draw ranks anything (a proxy that ties every configuration)
        return float("nan"), float("nan")
    return float(np.percentile(values, 5)), float(np.percentile(values, 95))


def difference_interval(a: list[float], b: list[float], truth: list[float], draws: int = 2000,
                        seed: int = 0) -> tuple[float, float]:
    """A 90 % interval of rho(b, truth) − rho(a, truth), the same configurations drawn for both: two proxies
    scored on one set of configurations are compared paired, not by their separate intervals."""
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(draws):
        pick = rng.integers(0, len(truth), len(truth))
        y = [truth[i] for i in pick]
        difference = spearman([b[i] for i in pick], y) - spearman([a[i] for i in pick], y)
        if not np.isnan(difference):
            values.append(difference)
    if not values:
        return float("nan"), float("nan")
    return float(np.percentile(values, 5)), float(np.percentile(values, 95))


def epoch_work(record: dict[str, Any]) -> float:
    """One epoch's training work: IMDB's reviews × mean tokens read; otherwise the training examples (an image
    costs the same as any other)."""
    if "train_reviews" in record:
        return float(record["train_reviews"] * record["mean_tokens_read"])
    return float(record["train_examples"])


def rank_proxies(records: dict[str, dict[str, dict[str, Any]]], kinds: list[str], truth_kind: str,
                 truth_epoch: float) -> list[dict[str, Any]]:
    """Every (run kind, report point) as a proxy: its cost in epochs of the truth's run (training examples × mean
    example size) and its rank correlation with the truth run's final validation accuracy, over the
    configurations with both. `records`: config name → run kind → record with `curve` and its epoch's work."""
    complete = {n: r for n, r in records.items() if truth_kind in r}
    if not complete:
        return []
    unit = next(iter(complete.values()))[truth_kind]
    unit_work = epoch_work(unit)  # one epoch of the truth's run
    truth = {n: r[truth_kind]["curve"][-1]["val_accuracy"] for n, r in complete.items()}
    rows = []
    for kind in kinds:
        with_kind = [n for n in complete if kind in complete[n]]
        if len(with_kind) < 3:
            continue
        points = sorted({p["epoch"] for n in with_kind for p in complete[n][kind]["curve"]})
        for epoch in points:
            names = [n for n in with_kind if any(p["epoch"] == epoch for p in complete[n][kind]["curve"])]
            if kind == truth_kind and epoch == truth_epoch:
                continue
            scores = [next(p["val_accuracy"] for p in complete[n][kind]["curve"] if p["epoch"] == epoch)
                      for n in names]
            work = [epoch_work(complete[n][kind]) * epoch for n in names]
            rho = spearman(scores, [truth[n] for n in names])
            low, high = bootstrap_interval(scores, [truth[n] for n in names])
            rows.append({"proxy": kind, "epoch": epoch, "cost_full_epochs": float(np.mean(work)) / unit_work,
                         "configs": len(names), "spearman": rho, "interval_90": [low, high],
                         "best_by_proxy": names[int(np.argmax(scores))],
                         "its_full_val": truth[names[int(np.argmax(scores))]]})
    return rows


def cheapest_good(rows: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The cheapest proxy that ranks like the truth, if any: Spearman >= GOOD_RANKING over ENOUGH_CONFIGS or more
    configurations, with its 90 % interval's low end above zero (on 5 configurations a single swap moves rho by
    0.1-0.3, so a point estimate alone says little)."""
    good = [r for r in rows if r["spearman"] >= GOOD_RANKING and r["configs"] >= ENOUGH_CONFIGS
            and r["interval_90"][0] > 0]
    return min(good, key=lambda r: r["cost_full_epochs"]) if good else None


# ------------------------------------------------------------------------------------- what every study shares

class CurveReporter:
    """Keeps the latest report's checkpoint (the run's resume point) and prints one line per report."""

    def __init__(self, run_dir: Path, report_every: float = 0.25) -> None:
        self.run_dir, self.report_every = run_dir, report_every

    def report(self, metrics: dict[str, float], checkpoint_dir: str) -> None:
        from experiments.core.checkpoints import replace_dir_atomically
        from experiments.core.reporters import format_metrics

        replace_dir_atomically(checkpoint_dir, self.run_dir / "state")
        print(f"{self.run_dir.parent.name}/{self.run_dir.name}: {format_metrics(metrics)}", flush=True)

    def resume_from(self) -> str | None:
        state = self.run_dir / "state"
        return str(state) if (state / "trainer_state.pt").is_file() else None


def write_json_atomically(path: Path, value: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomically(path, json.dumps(value, indent=1) + "\n")


def train_and_record(run_dir: Path, report_every: float, train: Callable[[CurveReporter], dict[str, Any]],
                     fields: dict[str, Any]) -> None:
    """One run to its end, resuming from its last report; writes `record.json` (`fields`, the curve, the time,
    the machine and its load) and drops the resume state. A run with a record is done and is skipped."""
    import shutil
    import time

    from experiments.core.cli import machine_info

    if (run_dir / "record.json").is_file():
        return
    run_dir.mkdir(parents=True, exist_ok=True)
    load_start, started = os.getloadavg()[0], time.perf_counter()
    result = train(CurveReporter(run_dir, report_every))
    record = {
        **fields,
        # a report comes every `report_every` of an epoch's steps: the nominal epoch names the same point for
        # every batch size (the recorded one is rounded to whole steps)
        "curve": [{"epoch": (index + 1) * report_every, "at_step_epoch": h["epoch"],
                   "val_accuracy": h["val_accuracy"], "val_loss": h["val_loss"]}
                  for index, h in enumerate(result["history"])],
        "train_seconds": result["train_seconds"],
        "wall_seconds_this_process": time.perf_counter() - started,
        "load_average_start": load_start, "load_average_end": os.getloadavg()[0],
        "machine": machine_info(),
    }
    write_json_atomically(run_dir / "record.json", record)
    shutil.rmtree(run_dir / "state", ignore_errors=True)


def seed_from_record(record: Path, runs_dir: Path) -> int:
    """The runs a committed record holds count as done: a study resumed on a fresh machine trains only the rest."""
    if not record.is_file():
        return 0
    seeded = 0
    for name, entry in json.loads(record.read_text())["configs"].items():
        for kind, run in entry["runs"].items():
            if not (runs_dir / name / kind / "record.json").is_file():
                write_json_atomically(runs_dir / name / kind / "record.json", run)
                seeded += 1
    return seeded


def run_share(args: argparse.Namespace, stem: str, study_configs: Callable[[Path], dict[str, dict[str, Any]]],
              share: Callable[[dict[str, dict[str, Any]], int, int], list[str]], runs: tuple[Any, ...],
              train_one: Callable[[str, dict[str, Any], Any, str, Path], None]) -> int:
    """`run`: this worker's configurations (`share`), every run of each, skipping what the committed record or an
    earlier process finished."""
    import torch

    torch.set_num_threads(args.threads)
    seeded = seed_from_record(args.record_dir / f"{stem}.json", args.runs_dir)
    if seeded:
        print(f"{seeded} finished run(s) taken from {args.record_dir / f'{stem}.json'}")
    configs = study_configs(args.record_dir / f"{stem}.json")
    for name in share(configs, args.worker, args.workers):
        for run in runs:
            train_one(name, configs[name], run, args.data_dir, args.runs_dir)
    return 0


def load_records(runs_dir: Path) -> dict[str, dict[str, dict[str, Any]]]:
    """config name → run kind → record, for the finished runs."""
    records: dict[str, dict[str, dict[str, Any]]] = {}
    for path in sorted(runs_dir.glob("*/*/record.json")):
        record = json.loads(path.read_text())
        records.setdefault(record["config_name"], {})[record["run"]["kind"]] = record
    return records


def collect_study(args: argparse.Namespace, stem: str, kinds: list[str], truth_epoch: float, truth: str,
                  section: Callable[[dict[str, Any]], str], plot: Callable[[dict[str, Any], Path], None]) -> int:
    """`collect`: the finished runs under `args.runs_dir` ranked against the `full` run's score at `truth_epoch`,
    written as the study's record in `args.record_dir`."""
    records = load_records(args.runs_dir)
    if not records:
        raise UsageError(f"no finished runs under {args.runs_dir}: run `... {stem} run` first")
    scores = {n: r["full"]["curve"][-1]["val_accuracy"] for n, r in records.items() if "full" in r}
    study = {
        "command": f"python -m experiments.benchmarks.{stem} collect",
        "truth": truth,
        "configs": {n: {"full_val_accuracy": scores.get(n), "runs": r} for n, r in records.items()},
        "proxies": rank_proxies(records, kinds, "full", truth_epoch),
    }
    write_study(args.record_dir, stem, study, section, plot)
    return 0


def write_study(out: Path, stem: str, study: dict[str, Any], section: Callable[[dict[str, Any]], str],
                plot: Callable[[dict[str, Any], Path], None]) -> None:
    """The study's record in `out`: its JSON (every run's record: what `seed_from_record` resumes from), its
    proxies as CSV, its plot and its report section; then its proxies, one line each."""
    out.mkdir(parents=True, exist_ok=True)
    write_json_atomically(out / f"{stem}.json", study)
    with open(out / f".{stem}.csv.tmp", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["proxy", "epoch", "cost_full_epochs", "configs", "spearman", "low_90", "high_90",
                         "best_by_proxy", "its_full_val"])
        for row in study["proxies"]:
            writer.writerow([row["proxy"], row["epoch"], f"{row['cost_full_epochs']:.3f}", row["configs"],
                             f"{row['spearman']:.3f}", f"{row['interval_90'][0]:.3f}",
                             f"{row['interval_90'][1]:.3f}", row["best_by_proxy"], f"{row['its_full_val']:.4f}"])
    os.replace(out / f".{stem}.csv.tmp", out / f"{stem}.csv")
    plot(study, out / f"{stem}.png")
    write_text_atomically(out / f"{stem}.md", section(study) + "\n")
    for row in study["proxies"]:
        print(f"{row['proxy']:>14} @ {row['epoch']:<5} cost {row['cost_full_epochs']:.2f} full epochs  "
              f"n={row['configs']}  spearman {row['spearman']:+.2f} [{row['interval_90'][0]:+.2f}, "
              f"{row['interval_90'][1]:+.2f}]")
    print(f"wrote {out / stem}.json, .csv, .md, .png")


def plot_study(study: dict[str, Any], path: Path, kinds: list[str], curves_axes: dict[str, Any],
               ranks_xlabel: str, truth_label: str, style: Callable[[dict[str, Any]], str] = lambda run: "-") -> None:
    """Two panels: every configuration's `full` learning curve (`curves_axes`: its xlabel, title, …), and each run
    kind's Spearman against its proxies' cost."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (curves, ranks) = plt.subplots(1, 2, figsize=(13, 5))
    for name, entry in study["configs"].items():
        if "full" in entry["runs"]:
            curve = entry["runs"]["full"]["curve"]
            curves.plot([p["epoch"] for p in curve], [p["val_accuracy"] for p in curve], style(entry["runs"]["full"]),
                        marker=".", label=name)
    curves.set(ylabel="validation accuracy", **curves_axes)
    curves.legend(fontsize=7)
    for kind in kinds:
        rows = [r for r in study["proxies"] if r["proxy"] == kind]
        if rows:
            ranks.plot([r["cost_full_epochs"] for r in rows], [r["spearman"] for r in rows], marker="o", label=kind)
    ranks.axhline(0, color="grey", lw=0.5)
    ranks.set(xlabel=ranks_xlabel, ylabel=f"Spearman with {truth_label}", title="What each proxy's ranking is worth",
              ylim=(-1, 1))
    ranks.legend(fontsize=8)
    figure.tight_layout()
    staging = path.with_name(f".{path.stem}.tmp.png")
    figure.savefig(staging, dpi=110)
    plt.close(figure)
    os.replace(staging, path)


def study_main(argv: list[str] | None, prog: str, description: str, data_help: str, runs_dir: Path,
               record_dir: Path, run_study: Callable[[argparse.Namespace], int],
               collect: Callable[[argparse.Namespace], int]) -> int:
    """A study's command line: `run` (this worker's share, resumable) and `collect` (the record)."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="train this worker's share of the study's runs (resumable)")
    run.add_argument("--data-dir", required=True, help=data_help)
    run.add_argument("--worker", type=int, default=0)
    run.add_argument("--workers", type=int, default=1, help="processes sharing the configurations")
    run.add_argument("--threads", type=int, default=1, help="torch threads of this process")
    run.add_argument("--runs-dir", type=Path, default=runs_dir)
    run.add_argument("--record-dir", type=Path, default=record_dir, help="where the committed record is read from")
    gather = commands.add_parser("collect", help="the rank correlations and the committed record")
    gather.add_argument("--runs-dir", type=Path, default=runs_dir)
    gather.add_argument("--record-dir", type=Path, default=record_dir)
    args = parser.parse_args(argv)
    try:
        if args.command == "run":
            if not 0 <= args.worker < args.workers:
                raise UsageError(f"--worker must be in [0, {args.workers}), got {args.worker}")
            if args.threads < 1:
                raise UsageError(f"--threads must be >= 1, got {args.threads}")
            if not Path(args.data_dir).is_dir():
                raise UsageError(f"--data-dir {args.data_dir} is not a folder")
            return run_study(args)
        return collect(args)
    except UsageError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
