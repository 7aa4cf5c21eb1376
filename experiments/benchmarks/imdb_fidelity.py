"""Does the score a search ranks on rank IMDB configurations the way full training does?

A search on 2 cores cannot train each of its 40 trials for the refit's budget, so it ranks them on a proxy: a
score taken after less work. This measures, for a fixed set of configurations (the presets, the top of the
committed main-job search, random draws from the search space), the full-budget truth and every candidate proxy:

- `full`: all 22,600 training reviews for the refit's 4 epochs, one-cycle schedule over the 4 epochs, the refit's
  seed, validated every quarter epoch. Its score at 4 epochs is the truth; its score after a fraction f of the
  budget is the proxy "f epochs on all reviews, under the refit's schedule" (what ASHA sees on full data).
- `sub5k`: today's search trial: 5,000 reviews, 2 epochs, one-cycle over the 2, the search's seed.
- `sub5k_const`: the same with a short linear warm-up then a constant learning rate, so a score taken early is
  taken at the working rate, not in the middle of an anneal.
- `sub5k_read400`: today's trial reading 400 tokens of a review instead of 800 (half the work per review).
- `full_const`: all training reviews for the main job's rung (2 epochs) under a short warm-up then a constant
  learning rate: whether early scores rank better when they are taken at the working rate than under the one-cycle
  schedule that spans the 4 epochs (`full` at 1 to 2 epochs).

Each proxy's cost is its training work in full-data epochs at 800 tokens (training reviews × mean tokens read),
so costs compare across machines and loads; wall seconds and the load average are recorded beside them. Only the
validation split is read: the test split decides nothing here.

    python -m experiments.benchmarks.imdb_fidelity run --data-dir ../shared/data/imdb --worker 0 --workers 2 &
    python -m experiments.benchmarks.imdb_fidelity run --data-dir ../shared/data/imdb --worker 1 --workers 2 &
    python -m experiments.benchmarks.imdb_fidelity collect

`run` is resumable (a killed run goes on from its last quarter-epoch report); `collect` writes
`model_checkpoints/assignment2-1-2/imdb_fidelity.{json,csv,md,png}` from whatever runs have finished (the .md and
.png are a section of the IMDB report).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from experiments.benchmarks.fidelity import ENOUGH_CONFIGS, GOOD_RANKING, cheapest_good, rank_proxies
from experiments.core.checkpoints import write_text_atomically
from experiments.core.cli import run_cli
from experiments.core.errors import UsageError
from experiments.core.records import SearchRecord, read_record

RUNS_DIR = Path("outputs/benchmarks/imdb_fidelity")
RECORD_DIR = Path("model_checkpoints/assignment2-1-2")
STEM = "imdb_fidelity"
SEARCH_RECORD = Path("model_checkpoints/assignment2-1-2/searches/imdb-40-ship.json")
SEARCH_SEED = 0  # the main job's --seed: its trials' seed and the seed of its data subset and validation split
REFIT_SEED = 1000  # a refit trains with the search seed + 1000 (search.refit.REFIT_SEED)
REFIT_EPOCHS = 4
READS = 800  # tokens a searched model reads (experiments.tasks.imdb.task.SEARCH_MAX_LEN)
PRESETS = ("gru2_maxmean", "bigru1_maxmean", "bigru1_wide_dropout", "gru1_wide", "gru3_deep_dropout",
           "gru2_batch128_lr4e-3")  # every preset but seed_default, the course's 10-epoch constant-rate start
SEARCH_TOP = 2  # the best distinct configurations of the committed main-job search
RANDOM_DRAWS = 2


@dataclass(frozen=True)
class Run:
    """One training run of the study: a configuration under one budget."""

    kind: str
    subset: int | None
    epochs: int
    schedule: str
    max_len: int
    seed: int


RUNS = (
    Run("full", None, REFIT_EPOCHS, "onecycle", READS, SEARCH_SEED + REFIT_SEED),
    Run("sub5k", 5000, 2, "onecycle", READS, SEARCH_SEED),
    Run("sub5k_const", 5000, 2, "warmup_constant", READS, SEARCH_SEED),
    Run("sub5k_read400", 5000, 2, "onecycle", 400, SEARCH_SEED),
    Run("full_const", None, 2, "warmup_constant", READS, SEARCH_SEED + REFIT_SEED),
)


def study_configs(record: Path | None = None) -> dict[str, dict[str, Any]]:
    """name → config fields (without epochs, seed, schedule, max_len, which each run sets). A configuration the
    committed `record` holds keeps its recorded fields: the random draws come from today's search space, and a
    study resumed after the space changed must not train a new draw under an old draw's name."""
    from experiments.tasks.imdb.config import IMDB_PRESETS
    from experiments.tasks.imdb.task import space

    keep = ("batch_size", "embed_dim", "hidden_dim", "num_layers", "is_bidirectional", "dropout", "embed_dropout",
            "pooling", "optimizer", "optimizer_params", "grad_clip")
    configs = {name: {k: v for k, v in IMDB_PRESETS[name].to_dict().items() if k in keep} for name in PRESETS}
    rows = read_record(SEARCH_RECORD, SearchRecord).rows
    searched = space(argparse.Namespace(max_epochs=2, seed=SEARCH_SEED))
    seen = []
    for row in sorted(rows, key=lambda r: -(r["best_val_accuracy"] or 0)):
        fields = {k: v for k, v in row["params"].items() if k not in ("epochs", "seed", "lr_schedule", "max_len")}
        if fields not in seen and len(seen) < SEARCH_TOP:
            seen.append(fields)
            configs[f"search_{row['trial_id']}"] = _nested(fields)
    rng = random.Random(SEARCH_SEED)
    for index in range(RANDOM_DRAWS):
        drawn = searched.sample_config(rng)
        configs[f"random_{index}"] = _nested({k: v for k, v in drawn.items()
                                              if k not in ("epochs", "seed", "lr_schedule", "max_len")})
    if record is not None and record.is_file():
        for name, entry in json.loads(record.read_text())["configs"].items():
            trained = entry["runs"]["full"]["config"]
            configs[name] = {k: v for k, v in trained.items() if k in keep}
    return configs


def _nested(fields: dict[str, Any]) -> dict[str, Any]:
    """Flat lr / weight_decay (as the search samples them) → the config's optimizer_params."""
    from experiments.tasks.imdb.config import ExperimentConfig

    return {k: v for k, v in ExperimentConfig.normalize_values(dict(fields)).items()}


class CurveReporter:
    """Keeps the latest report's checkpoint (resume point) and prints one line per quarter epoch."""

    report_every = 0.25

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir

    def report(self, metrics: dict[str, float], checkpoint_dir: str) -> None:
        from experiments.core.checkpoints import replace_dir_atomically
        from experiments.core.reporters import format_metrics

        replace_dir_atomically(checkpoint_dir, self.run_dir / "state")
        print(f"{self.run_dir.name}: {format_metrics(metrics)}", flush=True)

    def resume_from(self) -> str | None:
        state = self.run_dir / "state"
        return str(state) if (state / "trainer_state.pt").is_file() else None


def write_json_atomically(path: Path, value: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomically(path, json.dumps(value, indent=1) + "\n")


def train_one(name: str, fields: dict[str, Any], run: Run, data_dir: str, runs_dir: Path) -> None:
    """One run to its end, resuming from its last report; writes `record.json` when done."""
    import shutil

    from data_pipes import imdb
    from experiments.core.cli import machine_info
    from experiments.tasks.imdb.config import ExperimentConfig
    from experiments.tasks.imdb.trial import train_imdb

    run_dir = runs_dir / name / run.kind
    if (run_dir / "record.json").is_file():
        return
    run_dir.mkdir(parents=True, exist_ok=True)
    data = imdb.load(data_dir, subset=run.subset, seed=SEARCH_SEED)
    config = ExperimentConfig.from_dict({**fields, "config_name": name, "epochs": run.epochs, "seed": run.seed,
                                         "lr_schedule": run.schedule, "max_len": run.max_len})
    tokens = float(np.minimum(data.train.lengths, run.max_len).mean())
    load_start, started = os.getloadavg()[0], time.perf_counter()
    result = train_imdb(config, data, CurveReporter(run_dir))
    record = {
        "config_name": name, "run": asdict(run), "config": config.to_dict(),
        "train_reviews": len(data.train), "mean_tokens_read": tokens,
        # reports come every quarter of an epoch's steps: the nominal epoch names the same point for every
        # batch size (the recorded one is rounded to whole steps)
        "curve": [{"epoch": (index + 1) * CurveReporter.report_every, "at_step_epoch": h["epoch"],
                   "val_accuracy": h["val_accuracy"], "val_loss": h["val_loss"]}
                  for index, h in enumerate(result["history"])],
        "train_seconds": result["train_seconds"],
        "wall_seconds_this_process": time.perf_counter() - started,
        "load_average_start": load_start, "load_average_end": os.getloadavg()[0],
        "machine": machine_info(), "precision": "fp32",
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


def run_study(args: argparse.Namespace) -> int:
    import torch

    torch.set_num_threads(args.threads)
    seeded = seed_from_record(args.record_dir / f"{STEM}.json", args.runs_dir)
    if seeded:
        print(f"{seeded} finished run(s) taken from {args.record_dir / f'{STEM}.json'}")
    configs = study_configs(args.record_dir / f"{STEM}.json")
    names = list(configs)[args.worker::args.workers]
    for name in names:
        for run in RUNS:
            train_one(name, configs[name], run, args.data_dir, args.runs_dir)
    return 0


# ---------------------------------------------------------------------------------------------------- collect

def load_records(runs_dir: Path) -> dict[str, dict[str, dict[str, Any]]]:
    """config name → run kind → record, for the finished runs."""
    records: dict[str, dict[str, dict[str, Any]]] = {}
    for path in sorted(runs_dir.glob("*/*/record.json")):
        record = json.loads(path.read_text())
        records.setdefault(record["config_name"], {})[record["run"]["kind"]] = record
    return records


def proxies(records: dict[str, dict[str, dict[str, Any]]]) -> list[dict[str, Any]]:
    """This study's proxies: every run kind's report points, against the full run's score at the refit budget."""
    return rank_proxies(records, [run.kind for run in RUNS], "full", REFIT_EPOCHS)


def collect(args: argparse.Namespace) -> int:
    records = load_records(args.runs_dir)
    if not records:
        raise UsageError(f"no finished runs under {args.runs_dir}: run `... imdb_fidelity run` first")
    rows = proxies(records)
    truth = {n: r["full"]["curve"][-1]["val_accuracy"] for n, r in records.items() if "full" in r}
    out = args.record_dir
    out.mkdir(parents=True, exist_ok=True)
    study = {
        "command": "python -m experiments.benchmarks.imdb_fidelity collect",
        "truth": "validation accuracy after the refit budget (all training reviews, 4 epochs, one-cycle, seed 1000)",
        "configs": {n: {"full_val_accuracy": truth.get(n), "runs": r} for n, r in records.items()},
        "proxies": rows,
    }
    write_json_atomically(out / f"{STEM}.json", study)
    with open(out / f".{STEM}.csv.tmp", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["proxy", "epoch", "cost_full_epochs", "configs", "spearman", "low_90", "high_90",
                         "best_by_proxy", "its_full_val"])
        for row in rows:
            writer.writerow([row["proxy"], row["epoch"], f"{row['cost_full_epochs']:.3f}", row["configs"],
                             f"{row['spearman']:.3f}", f"{row['interval_90'][0]:.3f}",
                             f"{row['interval_90'][1]:.3f}", row["best_by_proxy"], f"{row['its_full_val']:.4f}"])
    os.replace(out / f".{STEM}.csv.tmp", out / f"{STEM}.csv")
    plot(study, out / f"{STEM}.png")
    write_text_atomically(out / f"{STEM}.md", section(study) + "\n")
    for row in rows:
        print(f"{row['proxy']:>14} @ {row['epoch']:<5} cost {row['cost_full_epochs']:.2f} full epochs  "
              f"n={row['configs']}  spearman {row['spearman']:+.2f} [{row['interval_90'][0]:+.2f}, "
              f"{row['interval_90'][1]:+.2f}]")
    print(f"wrote {out / STEM}.json, .csv, .md, .png")
    return 0


def section(study: dict[str, Any]) -> str:
    """The IMDB report's section: the proxies' table, the full curves' table and what the study concludes."""
    rows, configs = study["proxies"], study["configs"]
    complete = {n: c for n, c in configs.items() if c["full_val_accuracy"] is not None}
    machines = {f"{r['machine']['cpu']}, {r['machine']['torch_threads']} thread(s)"
                for c in configs.values() for r in c["runs"].values()}
    loads = [r[k] for c in configs.values() for r in c["runs"].values()
             for k in ("load_average_start", "load_average_end")]
    lines = [
        "## Search fidelity: which cheap score ranks configurations like full training", "",
        f"`{study['command']}` (record `imdb_fidelity.json`, `.csv`): {len(complete)} configurations trained on the "
        f"refit budget ({study['truth']}); each proxy is a score the search could rank on, its cost in full-data "
        "epochs at 800 tokens (training reviews × mean tokens read), its Spearman rank correlation with the "
        "full-budget validation accuracy over the configurations, a 90 % bootstrap interval over configurations, "
        "and the configuration it would pick. Validation only; the test split is not read. "
        f"Machine: {', '.join(sorted(machines))}, fp32; load average {min(loads):.1f}–{max(loads):.1f} "
        "(two runs at once, one thread each; other work shared the cores at times), so costs are given as work, "
        "not seconds.", "",
        "| proxy | at epoch | cost (full epochs) | configs | Spearman [90 %] | picks | its full val |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in sorted(rows, key=lambda r: r["cost_full_epochs"]):
        lines.append(f"| {r['proxy']} | {r['epoch']:g} | {r['cost_full_epochs']:.2f} | {r['configs']} | "
                     f"{r['spearman']:+.2f} [{r['interval_90'][0]:+.2f}, {r['interval_90'][1]:+.2f}] | "
                     f"`{r['best_by_proxy']}` | {r['its_full_val']:.4f} |")
    best = max(complete, key=lambda n: complete[n]["full_val_accuracy"]) if complete else None
    lines += ["", "| configuration | val @1 | val @2 | val @3 | val @4 (truth) | sub5k @0.75 | sub5k @2 |",
              "|---|---|---|---|---|---|---|"]
    for name, entry in sorted(complete.items(), key=lambda item: -item[1]["full_val_accuracy"]):
        full = {p["epoch"]: p["val_accuracy"] for p in entry["runs"]["full"]["curve"]}
        sub = {p["epoch"]: p["val_accuracy"] for p in entry["runs"].get("sub5k", {}).get("curve", [])}
        cells = [full.get(e) for e in (1, 2, 3, 4)] + [sub.get(0.75), sub.get(2)]
        lines.append(f"| `{name}` | " + " | ".join("-" if v is None else f"{v:.4f}" for v in cells) + " |")
    chosen = cheapest_good(rows)
    today = [r for r in rows if r["proxy"] == "sub5k" and r["epoch"] in (0.75, 2)]
    lines += ["", "The proxy the main job ranked on before this study (`sub5k`: 5,000 reviews, one-cycle over 2 "
              "epochs) ranks with Spearman "
              + " and ".join(f"{r['spearman']:+.2f} at {r['epoch']:g} epoch(s)" for r in today)
              + f" over {today[0]['configs']} configurations." if today else ""]
    lines += ["", f"Best configuration at full budget: `{best}`." if best else "",
              (f"The cheapest proxy ranking with Spearman ≥ {GOOD_RANKING}: **{chosen['proxy']} at {chosen['epoch']:g} "
               f"epoch(s)**, {chosen['spearman']:+.2f} over {chosen['configs']} configurations, at "
               f"{chosen['cost_full_epochs']:.2f} full-data epochs. " + main_job_rung() if chosen else
               f"No proxy measured here ranks with Spearman ≥ {GOOD_RANKING} over at least {ENOUGH_CONFIGS} "
               "configurations with its interval above zero: the study names no default yet."), "",
              f"![Search fidelity]({STEM}.png)", ""]
    return "\n".join(lines)


def main_job_rung() -> str:
    """Where the main job's search ranks today, read from the task's defaults (not restated here)."""
    from experiments.tasks.imdb.task import TASK

    defaults = TASK.search_defaults
    data = f"{defaults['subset']:,} reviews" if defaults.get("subset") else "all training reviews"
    return (f"The main job ranks on {data} at ASHA's first rung, {defaults['grace_period']:g} epoch(s) of a "
            f"{defaults['max_epochs']}-epoch schedule (`search_defaults` in `experiments/tasks/imdb/task.py`).")


def plot(study: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (curves, ranks) = plt.subplots(1, 2, figsize=(13, 5))
    for name, entry in study["configs"].items():
        if "full" in entry["runs"]:
            curve = entry["runs"]["full"]["curve"]
            curves.plot([p["epoch"] for p in curve], [p["val_accuracy"] for p in curve], marker=".", label=name)
    curves.set(xlabel="epoch (all 22,600 training reviews)", ylabel="validation accuracy",
               title="Full-budget learning curves", ylim=(0.5, 0.92))
    curves.legend(fontsize=7)
    for kind in [run.kind for run in RUNS]:
        rows = [r for r in study["proxies"] if r["proxy"] == kind]
        if rows:
            ranks.plot([r["cost_full_epochs"] for r in rows], [r["spearman"] for r in rows], marker="o", label=kind)
    ranks.axhline(0, color="grey", lw=0.5)
    ranks.set(xlabel="proxy cost (full-data epochs at 800 tokens)", ylabel="Spearman with the full-budget val",
              title="What each proxy's ranking is worth", ylim=(-1, 1))
    ranks.legend(fontsize=8)
    figure.tight_layout()
    staging = path.with_name(f".{path.stem}.tmp.png")
    figure.savefig(staging, dpi=110)
    plt.close(figure)
    os.replace(staging, path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="train this worker's share of the study's runs (resumable)")
    run.add_argument("--data-dir", required=True, help="IMDB laid out like the hub repository")
    run.add_argument("--worker", type=int, default=0)
    run.add_argument("--workers", type=int, default=1, help="processes sharing the configurations")
    run.add_argument("--threads", type=int, default=1, help="torch threads of this process")
    run.add_argument("--runs-dir", type=Path, default=RUNS_DIR)
    run.add_argument("--record-dir", type=Path, default=RECORD_DIR, help="where the committed record is read from")
    gather = commands.add_parser("collect", help="the rank correlations and the committed record")
    gather.add_argument("--runs-dir", type=Path, default=RUNS_DIR)
    gather.add_argument("--record-dir", type=Path, default=RECORD_DIR)
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


if __name__ == "__main__":
    run_cli(main)
