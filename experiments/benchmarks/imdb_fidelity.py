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
import json
import random
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from experiments.benchmarks.fidelity import (
    ENOUGH_CONFIGS,
    GOOD_RANKING,
    cheapest_good,
    collect_study,
    difference_interval,
    plot_study,
    rank_proxies,
    run_share,
    spearman,
    study_main,
    train_and_record,
)
from experiments.core.cli import run_cli
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
REPORT_EVERY = 0.25  # validated every quarter epoch


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


def train_one(name: str, fields: dict[str, Any], run: Run, data_dir: str, runs_dir: Path) -> None:
    """One run to its end, resuming from its last report; writes `record.json` when done."""
    from data_pipes import imdb
    from experiments.tasks.imdb.config import ExperimentConfig
    from experiments.tasks.imdb.trial import train_imdb

    if (runs_dir / name / run.kind / "record.json").is_file():
        return
    data = imdb.load(data_dir, subset=run.subset, seed=SEARCH_SEED)
    config = ExperimentConfig.from_dict({**fields, "config_name": name, "epochs": run.epochs, "seed": run.seed,
                                         "lr_schedule": run.schedule, "max_len": run.max_len})
    train_and_record(runs_dir / name / run.kind, REPORT_EVERY, lambda reporter: train_imdb(config, data, reporter), {
        "config_name": name, "run": asdict(run), "config": config.to_dict(), "train_reviews": len(data.train),
        "mean_tokens_read": float(np.minimum(data.train.lengths, run.max_len).mean()), "precision": "fp32"})


def run_study(args: argparse.Namespace) -> int:
    return run_share(args, STEM, study_configs, lambda configs, worker, workers: list(configs)[worker::workers],
                     RUNS, train_one)


# ---------------------------------------------------------------------------------------------------- collect

def proxies(records: dict[str, dict[str, dict[str, Any]]]) -> list[dict[str, Any]]:
    """This study's proxies: every run kind's report points, against the full run's score at the refit budget."""
    return rank_proxies(records, [run.kind for run in RUNS], "full", REFIT_EPOCHS)


def collect(args: argparse.Namespace) -> int:
    return collect_study(args, STEM, [run.kind for run in RUNS], REFIT_EPOCHS,
                         "validation accuracy after the refit budget (all training reviews, 4 epochs, one-cycle, "
                         "seed 1000)", section, plot)


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
    lines += schedule_lines(study)
    lines += ["", f"Best configuration at full budget: `{best}`." if best else "",
              (f"The cheapest proxy ranking with Spearman ≥ {GOOD_RANKING}: **{chosen['proxy']} at {chosen['epoch']:g} "
               f"epoch(s)**, {chosen['spearman']:+.2f} over {chosen['configs']} configurations, at "
               f"{chosen['cost_full_epochs']:.2f} full-data epochs. " + main_job_rung() if chosen else
               f"No proxy measured here ranks with Spearman ≥ {GOOD_RANKING} over at least {ENOUGH_CONFIGS} "
               "configurations with its interval above zero: the study names no default yet."), "",
              f"![Search fidelity]({STEM}.png)", ""]
    return "\n".join(lines)


def schedule_lines(study: dict[str, Any]) -> list[str]:
    """Item 2 of the study: at each early point, does a score taken at the working rate (`full_const`: short
    warm-up, then constant) rank better than one taken under the one-cycle schedule that spans 4 epochs (`full`)?
    Both train all reviews with the refit's seed; only the schedule differs, so the two are compared paired."""
    runs = {n: c["runs"] for n, c in study["configs"].items() if "full" in c["runs"] and "full_const" in c["runs"]}
    if len(runs) < 3:
        return []
    curve = {(n, kind): {p["epoch"]: p["val_accuracy"] for p in r[kind]["curve"]} for n, r in runs.items()
             for kind in ("full", "full_const")}
    truth = [curve[n, "full"][REFIT_EPOCHS] for n in runs]
    points = sorted(set.intersection(*(set(curve[n, "full_const"]) for n in runs)))
    lines = ["", f"Schedules at the same work ({len(runs)} configurations, all training reviews, the refit's seed; "
             f"Spearman with the {REFIT_EPOCHS}-epoch truth; the difference's interval draws the same "
             "configurations for both):", "",
             f"| at epoch | one-cycle over {REFIT_EPOCHS} epochs (`full`) | warm-up then constant (`full_const`) | "
             "constant − one-cycle [90 %] |", "|---|---|---|---|"]
    rung = main_job_defaults()["grace_period"]
    verdict = ""
    for epoch in points:
        cycle, const = [curve[n, "full"][epoch] for n in runs], [curve[n, "full_const"][epoch] for n in runs]
        low, high = difference_interval(cycle, const, truth)
        difference = spearman(const, truth) - spearman(cycle, truth)
        lines.append(f"| {epoch:g} | {spearman(cycle, truth):+.2f} | {spearman(const, truth):+.2f} | "
                     f"{difference:+.2f} [{low:+.2f}, {high:+.2f}] |")
        if epoch == rung:
            better = "warm-up then constant" if low > 0 else "one-cycle" if high < 0 else None
            verdict = (f"At the main job's rung ({rung:g} epochs) the difference is {difference:+.2f}, 90 % interval "
                       f"[{low:+.2f}, {high:+.2f}]: "
                       + (f"{better} ranks measurably better there." if better else
                          "neither schedule ranks measurably better, so trials keep the one-cycle schedule, the one "
                          "a trial that finishes is trained under to the end."))
    return lines + (["", verdict] if verdict else [])


def main_job_defaults() -> dict[str, Any]:
    from experiments.tasks.imdb.task import TASK

    return TASK.search_defaults


def main_job_rung() -> str:
    """Where the main job's search ranks today, read from the task's defaults (not restated here)."""
    defaults = main_job_defaults()
    data = f"{defaults['subset']:,} reviews" if defaults.get("subset") else "all training reviews"
    return (f"The main job ranks on {data} at ASHA's first rung, {defaults['grace_period']:g} epoch(s) of a "
            f"{defaults['max_epochs']}-epoch schedule (`search_defaults` in `experiments/tasks/imdb/task.py`).")


def plot(study: dict[str, Any], path: Path) -> None:
    plot_study(study, path, [run.kind for run in RUNS],
               {"xlabel": "epoch (all 22,600 training reviews)", "title": "Full-budget learning curves",
                "ylim": (0.5, 0.92)},
               "proxy cost (full-data epochs at 800 tokens)", "the full-budget val")


def main(argv: list[str] | None = None) -> int:
    return study_main(argv, "python -m experiments.benchmarks.imdb_fidelity", __doc__.split("\n\n")[0],
                      "IMDB laid out like the hub repository", RUNS_DIR, RECORD_DIR, run_study, collect)


if __name__ == "__main__":
    run_cli(main)
