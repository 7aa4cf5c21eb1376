"""Does a cheap score rank CIFAR-10 configurations, ViT and Swin, the way longer training does on this CPU?

A CIFAR search on 2 cores cannot train each trial for a refit's budget, so it ranks trials on a score taken after
less work. This measures, for the two CPU presets and random draws from the search space (three per family, no
costlier per image than the costlier preset: what a 2-core search can train), the longer score and every
candidate proxy:

- `full`: all 45,000 training images for 6 epochs, warm-up then cosine over the 6, validated every half epoch.
  Its score at 6 epochs is the truth; its score after f epochs is the proxy "f epochs on all images, under a
  schedule that spans more" (what ASHA sees at a rung).
- `sub10k`: 10,000 training images for 2 epochs, the schedule over the 2 (a short search trial on a subset).
- `full_fp32`: the Swin preset's `full` run in fp32, last, on worker 0: accuracy parity of the fast path on one
  real training, same configuration, seed and batches.

Every other run trains under bf16 autocast, the CPU fast path (`cifar_precision.json`), with the search's seed and
validation split. Each proxy's cost is its training work in full-data epochs (images seen / 45,000), so costs
compare across machines and loads; wall seconds and the load average are recorded beside them. Only the validation
split is read: the test split decides nothing here.

    python -m experiments.benchmarks.cifar_fidelity run --data-dir ../shared/data/cifar10 --worker 0 --workers 2 &
    python -m experiments.benchmarks.cifar_fidelity run --data-dir ../shared/data/cifar10 --worker 1 --workers 2 &
    python -m experiments.benchmarks.cifar_fidelity collect

`run` is resumable (a killed run goes on from its last report; runs the committed record holds count as done);
`collect` writes `model_checkpoints/assignment2-2-2/cifar_fidelity.{json,csv,md,png}` from the runs that have
finished (the .md and .png are a section of the CIFAR report).
"""

from __future__ import annotations

import argparse
import json
import random
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from experiments.benchmarks.fidelity import (
    ENOUGH_CONFIGS,
    GOOD_RANKING,
    cheapest_good,
    collect_study,
    plot_study,
    run_share,
    study_main,
    train_and_record,
)
from experiments.core.cli import run_cli
from experiments.tasks.cifar.report import gmacs

RUNS_DIR = Path("outputs/benchmarks/cifar_fidelity")
RECORD_DIR = Path("model_checkpoints/assignment2-2-2")
STEM = "cifar_fidelity"
SEED = 0  # the search's --seed: its trials' seed and the seed of its validation split and subsets
TRUTH_EPOCHS = 6
REPORT_EVERY = 0.5
VAL_IMAGES = 5_000  # data_pipes.cifar10 holds out a tenth of the 50,000 training images
PRESETS = ("swin_small_p2", "vit_small_p4")  # the CPU presets (the _gpu ones train 80 epochs at batch 512)
DRAWS_PER_FAMILY = 3
PRECISION = "bf16"
# the config fields a run sets itself; the rest is the configuration under study
RUN_FIELDS = ("config_name", "epochs", "seed", "precision")


@dataclass(frozen=True)
class Run:
    """One training run of the study: a configuration under one budget."""

    kind: str
    subset: int | None
    epochs: int
    precision: str = PRECISION


RUNS = (Run("full", None, TRUTH_EPOCHS), Run("sub10k", 10_000, 2))
PARITY = ("swin_small_p2", Run("full_fp32", None, TRUTH_EPOCHS, "fp32"))


def study_configs(record: Path | None = None) -> dict[str, dict[str, Any]]:
    """name → config fields (without the run's own fields). Draws costlier per image than the costlier preset are
    skipped. A configuration the committed `record` holds keeps its recorded fields, so a study resumed after the
    space changed never trains a new draw under an old draw's name."""
    from experiments.tasks.cifar.config import VISION_PRESETS
    from experiments.tasks.cifar.task import space

    configs = {name: {k: v for k, v in VISION_PRESETS[name].to_dict().items() if k not in RUN_FIELDS}
               for name in PRESETS}
    ceiling = max(gmacs(fields) for fields in configs.values())
    for family in ("swin", "vit"):
        # the whole space, which the study's draws came from (the ceiling below keeps them CPU-sized)
        searched = space(argparse.Namespace(model=family, max_epochs=TRUTH_EPOCHS, seed=SEED, space="full"))
        rng, drawn = random.Random(f"{SEED}-{family}"), 0  # one stream per family
        while drawn < DRAWS_PER_FAMILY:
            fields = {k: v for k, v in searched.sample_config(rng).items() if k not in RUN_FIELDS}
            if gmacs(fields) <= ceiling:
                configs[f"random_{family}_{drawn}"] = fields
                drawn += 1
    if record is not None and record.is_file():
        for name, entry in json.loads(record.read_text())["configs"].items():
            configs[name] = {k: v for k, v in entry["runs"]["full"]["config"].items() if k not in RUN_FIELDS}
    return configs


def worker_share(configs: dict[str, dict[str, Any]], worker: int, workers: int) -> list[str]:
    """This worker's configurations: dealt costliest first in snake order (0, 1, 1, 0, …), so the workers' shares
    cost about the same."""
    ordered = sorted(configs, key=lambda name: -gmacs(configs[name]))
    snake = [index % (2 * workers) for index in range(len(ordered))]
    return [name for name, slot in zip(ordered, snake, strict=True) if min(slot, 2 * workers - 1 - slot) == worker]


def train_one(name: str, fields: dict[str, Any], run: Run, data_dir: str, runs_dir: Path) -> None:
    """One run to its end, resuming from its last report; writes `record.json` when done."""
    from data_pipes import cifar10
    from experiments.tasks.cifar.config import VisionConfig
    from experiments.tasks.cifar.trial import train_vision

    if (runs_dir / name / run.kind / "record.json").is_file():
        return
    data = cifar10.load(data_dir, subset=run.subset, seed=SEED)
    config = VisionConfig.from_dict({**fields, "config_name": name, "epochs": run.epochs, "seed": SEED,
                                     "precision": run.precision})
    train_and_record(runs_dir / name / run.kind, REPORT_EVERY, lambda reporter: train_vision(config, data, reporter), {
        "config_name": name, "run": asdict(run), "config": config.to_dict(), "gmacs_per_image": gmacs(fields),
        "train_examples": len(data.train), "precision": run.precision})


def run_study(args: argparse.Namespace) -> int:
    run_share(args, STEM, study_configs, worker_share, RUNS, train_one)
    if args.worker == 0:
        name, run = PARITY
        train_one(name, study_configs(args.record_dir / f"{STEM}.json")[name], run, args.data_dir, args.runs_dir)
    return 0


# ---------------------------------------------------------------------------------------------------- collect

def collect(args: argparse.Namespace) -> int:
    return collect_study(args, STEM, [run.kind for run in RUNS], TRUTH_EPOCHS,
                         f"validation accuracy after all 45,000 training images × {TRUTH_EPOCHS} epochs, warm-up "
                         f"then cosine, seed {SEED}, {PRECISION}", section, plot)


def section(study: dict[str, Any]) -> str:
    """The CIFAR report's section: the proxies' table, the curves' table and what the study concludes."""
    rows, configs = study["proxies"], study["configs"]
    complete = {n: c for n, c in configs.items() if c["full_val_accuracy"] is not None}
    runs = [r for c in configs.values() for r in c["runs"].values()]
    machines = {f"{r['machine']['cpu']}, {r['machine']['torch_threads']} thread(s)" for r in runs}
    loads = [r[k] for r in runs for k in ("load_average_start", "load_average_end")]
    seconds = [r["train_seconds"] / r["run"]["epochs"] for r in runs if r["run"]["kind"] == "full"]
    lines = [
        "## Search fidelity on the CPU: which cheap score ranks ViT and Swin configurations like longer training",
        "",
        f"`{study['command']}` (record `{STEM}.json`, `.csv`): {len(complete)} configurations (the CPU presets and "
        "random draws from the search space no costlier per image than the costlier preset) trained for the "
        f"study's longer budget ({study['truth']}); each proxy is a score the search could rank on, its cost in "
        "full-data epochs, its Spearman rank correlation with the longer budget's validation accuracy over the "
        "configurations, a 90 % bootstrap interval over configurations, and the configuration it would pick. "
        f"Validation only; the test split is not read. Machine: {', '.join(sorted(machines))}, {PRECISION}; load "
        f"average {min(loads):.1f}–{max(loads):.1f} (two runs at once, one thread each). A full-data epoch took "
        f"{min(seconds) / 60:.1f}–{max(seconds) / 60:.1f} min of training per run.", "",
        "| proxy | at epoch | cost (full epochs) | configs | Spearman [90 %] | picks | its val @truth |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in sorted(rows, key=lambda r: r["cost_full_epochs"]):
        lines.append(f"| {r['proxy']} | {r['epoch']:g} | {r['cost_full_epochs']:.2f} | {r['configs']} | "
                     f"{r['spearman']:+.2f} [{r['interval_90'][0]:+.2f}, {r['interval_90'][1]:+.2f}] | "
                     f"`{r['best_by_proxy']}` | {r['its_full_val']:.4f} |")
    points = (1, 2, 4, TRUTH_EPOCHS)
    lines += ["", "| configuration | family | GMACs/img | min per epoch | "
              + " | ".join(f"val @{e}" for e in points) + " | sub10k @2 |",
              "|---|---|---|---|" + "---|" * (len(points) + 1)]
    for name, entry in sorted(complete.items(), key=lambda item: -item[1]["full_val_accuracy"]):
        full = entry["runs"]["full"]
        at = {p["epoch"]: p["val_accuracy"] for p in full["curve"]}
        sub = {p["epoch"]: p["val_accuracy"] for p in entry["runs"].get("sub10k", {}).get("curve", [])}
        cells = [at.get(e) for e in points] + [sub.get(2)]
        lines.append(f"| `{name}` | {full['config']['model_type']} | {full['gmacs_per_image']:.3f} | "
                     f"{full['train_seconds'] / full['run']['epochs'] / 60:.1f} | "
                     + " | ".join("-" if v is None else f"{v:.4f}" for v in cells) + " |")
    lines += parity_lines(configs)
    chosen = cheapest_good(rows)
    best = max(complete, key=lambda n: complete[n]["full_val_accuracy"]) if complete else None
    lines += ["", f"Best configuration at the longer budget: `{best}`." if best else "",
              (f"The cheapest proxy ranking with Spearman ≥ {GOOD_RANKING}: **{chosen['proxy']} at "
               f"{chosen['epoch']:g} epoch(s)**, {chosen['spearman']:+.2f} over {chosen['configs']} "
               f"configurations, at {chosen['cost_full_epochs']:.2f} full-data epochs." if chosen else
               f"No proxy measured here ranks with Spearman ≥ {GOOD_RANKING} over at least {ENOUGH_CONFIGS} "
               "configurations with its interval above zero: the study names no default yet."), "",
              f"![Search fidelity on the CPU]({STEM}.png)", ""]
    return "\n".join(lines)


def parity_lines(configs: dict[str, Any]) -> list[str]:
    """The fast path against fp32 on one real training, when both runs have finished."""
    name, run = PARITY
    runs = configs.get(name, {}).get("runs", {})
    if "full" not in runs or run.kind not in runs:
        return []
    fast, slow = runs["full"], runs[run.kind]
    fast_val, slow_val = fast["curve"][-1]["val_accuracy"], slow["curve"][-1]["val_accuracy"]
    error = (fast_val * (1 - fast_val) / VAL_IMAGES) ** 0.5

    def took(r: dict[str, Any]) -> str:
        return (f"{r['train_seconds'] / 60:.1f} min of training, load average {r['load_average_start']:.1f} → "
                f"{r['load_average_end']:.1f}")

    return ["", f"Accuracy parity of the fast path on one real training (`{name}`, all training images × "
            f"{TRUTH_EPOCHS} epochs, seed {SEED}, the same batches, one thread each): val {fast_val:.4f} under "
            f"{fast['precision']} ({took(fast)}) against {slow_val:.4f} under {slow['precision']} ({took(slow)}; "
            "the load at the start and end of the process that finished each run). One seed each; a validation "
            f"accuracy's standard error here is {error * 100:.2f} points (binomial, {VAL_IMAGES:,} images). The "
            "two ran under different loads, so their times are no speed comparison: `cifar_precision.json` "
            "measures speed side by side."]


def plot(study: dict[str, Any], path: Path) -> None:
    plot_study(study, path, [run.kind for run in RUNS],
               {"xlabel": "epoch (all 45,000 training images)",
                "title": f"{TRUTH_EPOCHS}-epoch learning curves (Swin solid, ViT dashed)"},
               "proxy cost (full-data epochs)", f"the val at {TRUTH_EPOCHS} epochs",
               style=lambda run: "-" if run["config"]["model_type"] == "swin" else "--")


def main(argv: list[str] | None = None) -> int:
    return study_main(argv, "python -m experiments.benchmarks.cifar_fidelity", __doc__.split("\n\n")[0],
                      "CIFAR-10 laid out like the hub repository", RUNS_DIR, RECORD_DIR, run_study, collect)


if __name__ == "__main__":
    run_cli(main)
