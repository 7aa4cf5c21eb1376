"""Export the winners and write the reports: `python -m experiments.summarize`.

Reads what the one-config runs (`outputs/<task>/*/run.json`) and the searches (`ray_results/*/search_summary.json`)
recorded, ranks models by **validation** accuracy (never test), evaluates search winners once on the test split,
and writes `model_checkpoints/assignment2-1-2/` (IMDB) and `model_checkpoints/assignment2-2-2/` (CIFAR-10):
one folder per model (config, metrics, tokenizer / image processor; weights for the winners), `best.json`,
`report.md` and its plots. Every export is staged and renamed into place, so an interrupted export leaves
the previous one intact.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tarfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from experiments.cli import UsageError, command_line, machine_info, run_cli
from experiments.imdb_trial import CheckpointError
from experiments.reporting import replace_dir_atomically

TASKS = {"imdb": "assignment2-1-2", "cifar": "assignment2-2-2"}
NEVER_EXPORTED = {"trainer_state.pt"}
WEIGHT_FILES = {"model.safetensors"}


@dataclass
class Entry:
    """One trained model, from a preset run or a search's best trial."""

    task: str
    name: str
    source: str
    config: dict[str, Any]
    val_accuracy: float
    test_accuracy: float | None
    epochs: int
    train_seconds: float
    params: int | None
    throughput: float | None
    history: list[dict[str, Any]]
    checkpoint: Path
    machine: dict[str, Any] = field(default_factory=dict)
    command: str = ""
    test_accuracy_at_training: float | None = None  # as measured where it was trained, when that was elsewhere

    @property
    def family(self) -> str:
        """ViT / Swin for vision, the GRU otherwise: the reports compare within and across families."""
        return str(self.config.get("model_type", "gru"))


def _throughput(history: list[dict[str, Any]]) -> float | None:
    rates = [v for h in history for k, v in h.items() if k.endswith("_per_s")]
    return sum(rates) / len(rates) if rates else None


def entries_from_runs(runs_dir: Path, task: str) -> list[Entry]:
    entries = []
    for path in sorted(runs_dir.glob("*/run.json")):
        run = json.loads(path.read_text())
        entries.append(Entry(
            task=task, name=run["config"]["config_name"], config=run["config"],
            source="one-config run" + (f" on {run['machine']['gpu']}" if run.get("machine", {}).get("gpu") else ""),
            val_accuracy=run["val_accuracy"], test_accuracy=run["test_accuracy"], epochs=run["epochs_run"],
            train_seconds=run["train_seconds"], params=run.get("params"), throughput=_throughput(run["history"]),
            history=run["history"], checkpoint=Path(run["checkpoint"]), machine=run.get("machine", {}),
            command=run.get("command", ""),
        ))
    return entries


def load_searches(ray_results: Path, task: str) -> list[dict[str, Any]]:
    """The `search_summary.json` of every finished search of this task."""
    found = []
    for path in sorted(ray_results.glob("*/search_summary.json")):
        summary = json.loads(path.read_text())
        if summary.get("workload") == task and summary.get("best_checkpoint") and summary.get("finished", True):
            found.append(summary)
    return found


def entries_from_searches(searches: list[dict[str, Any]], task: str) -> list[Entry]:
    """Each search contributes its best trial (best epoch's checkpoint); the family's best for vision."""
    entries = []
    for search in searches:
        ranked = [r for r in search["rows"] if r["best_val_accuracy"] is not None]
        families = sorted({str(r["params"].get("model_type", "gru")) for r in ranked})
        for family in families:
            row = next(r for r in ranked if str(r["params"].get("model_type", "gru")) == family)
            checkpoint = _best_checkpoint_of(row, search)
            metrics = json.loads((checkpoint / "metrics.json").read_text())
            suffix = "" if len(families) == 1 else f"_{family}"
            entries.append(Entry(
                task=task, name=f"search_{search['search']}{suffix}", source=f"search {search['search']}",
                config=json.loads((checkpoint / "experiment_config.json").read_text()),
                val_accuracy=metrics["val_accuracy"], test_accuracy=None, epochs=metrics["epoch"],
                train_seconds=metrics["train_seconds"], params=None, throughput=_throughput(metrics["history"]),
                history=metrics["history"], checkpoint=checkpoint, machine=search.get("machine", {}),
                command=search.get("command", ""),
            ))
    return entries


def _best_checkpoint_of(row: dict[str, Any], search: dict[str, Any]) -> Path:
    """A trial keeps its best-validation checkpoint (Tune's CheckpointConfig scores by val accuracy)."""
    if search.get("best_trial") == row["trial_id"]:
        return Path(search["best_checkpoint"])
    candidates = sorted(Path(row["path"]).glob("checkpoint_*/metrics.json"))
    best = max(candidates, key=lambda p: json.loads(p.read_text())["val_accuracy"])
    return best.parent


def evaluate_entry(entry: Entry, data_dir: str | None) -> tuple[float, int]:
    """Test accuracy and parameter count of an entry, computed from its checkpoint."""
    from experiments import evaluate

    result = evaluate.evaluate_checkpoint(entry.checkpoint, data_dir)
    return result["test_accuracy"], result["params"]


def export_entry(entry: Entry, target: Path, with_weights: bool) -> None:
    """Stage the folder (config, tokenizer/processor, metrics, weights if asked), then swap it in."""
    staging = target.parent / f".{target.name}.export"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    for item in entry.checkpoint.iterdir():
        if item.name in NEVER_EXPORTED or (item.name in WEIGHT_FILES and not with_weights) or item.is_dir():
            continue
        shutil.copy2(item, staging / item.name)
    metrics = {
        "name": entry.name, "task": entry.task, "source": entry.source, "val_accuracy": entry.val_accuracy,
        "test_accuracy": entry.test_accuracy, "test_accuracy_at_training": entry.test_accuracy_at_training,
        "epochs": entry.epochs, "train_seconds": entry.train_seconds,
        "params": entry.params, "throughput_per_s": entry.throughput, "machine": entry.machine,
        "command": entry.command, "weights_included": with_weights, "history": entry.history,
    }
    (staging / "metrics.json").write_text(json.dumps(metrics, indent=1) + "\n")
    replace_dir_atomically(staging, target)
    shutil.rmtree(staging, ignore_errors=True)


def read_best(folder: Path) -> dict[str, Any] | None:
    path = folder / "best.json"
    return json.loads(path.read_text()) if path.is_file() else None


def export_task(entries: list[Entry], folder: Path, force: bool, all_weights: bool) -> list[Entry]:
    """Export every entry; the best (by val) of each family gets weights; keeps a better existing best."""
    folder.mkdir(parents=True, exist_ok=True)
    ranked = sorted(entries, key=lambda e: -e.val_accuracy)
    previous = read_best(folder)
    best = ranked[0]
    keep_previous = (
        previous is not None and not force and previous["val_accuracy"] > best.val_accuracy
        and (folder / previous["name"]).is_dir()
    )
    family_best = {}
    for entry in ranked:
        family_best.setdefault(entry.family, entry)
    for entry in ranked:
        if keep_previous and entry.name == previous["name"]:
            continue
        with_weights = all_weights or family_best[entry.family] is entry
        export_entry(entry, folder / entry.name, with_weights)
    if keep_previous:
        print(f"kept the existing best {previous['name']} (val {previous['val_accuracy']:.4f} > "
              f"{best.val_accuracy:.4f}); pass --force to replace it")
    else:
        marker = {"name": best.name, "val_accuracy": best.val_accuracy, "test_accuracy": best.test_accuracy,
                  "family": best.family, "path": best.name}
        staging = folder / ".best.json.tmp"
        staging.write_text(json.dumps(marker, indent=1) + "\n")
        staging.replace(folder / "best.json")
    return ranked


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m experiments.summarize", description=__doc__.split("\n")[0])
    parser.add_argument("--outputs", type=Path, default=Path("outputs"), help="one-config runs (<task>/*/run.json)")
    parser.add_argument("--ray-results", type=Path, default=Path("ray_results"), help="searches' storage path")
    parser.add_argument("--out", type=Path, default=Path("model_checkpoints"), help="where exports go")
    parser.add_argument("--imdb-data-dir", default=None, help="IMDB copy, to test-evaluate search winners")
    parser.add_argument("--cifar-data-dir", default=None, help="CIFAR-10 copy, to test-evaluate search winners")
    parser.add_argument("--tasks", nargs="+", choices=sorted(TASKS), default=sorted(TASKS))
    parser.add_argument("--all-weights", action="store_true", help="export weights of every model, not the winners")
    parser.add_argument("--force", action="store_true", help="replace a better existing best / an existing archive")
    parser.add_argument("--archive", metavar="ID", default=None, help="also pack model_checkpoints/ into ID.tar.gz")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    from experiments import report

    args = parse_args(argv)
    started = time.perf_counter()
    here = machine_info()
    wrote_any = False
    for task in args.tasks:
        searches = load_searches(args.ray_results, task)
        entries = entries_from_runs(args.outputs / task, task) + entries_from_searches(searches, task)
        if not entries:
            print(f"{task}: nothing to summarize (no {args.outputs / task}/*/run.json, no {task} search)")
            continue
        data_dir = args.imdb_data_dir if task == "imdb" else args.cifar_data_dir
        for entry in entries:
            # a model trained on another device (bf16 there) is re-measured here, so evaluate reproduces it
            elsewhere = entry.machine.get("gpu") != here.get("gpu") and entry.test_accuracy is not None
            if entry.test_accuracy is None or (elsewhere and data_dir is not None):
                if data_dir is None:
                    raise UsageError(f"{entry.name} has no test accuracy yet: pass --{task}-data-dir to evaluate it")
                measured, params = evaluate_entry(entry, data_dir)
                if elsewhere:
                    entry.test_accuracy_at_training = entry.test_accuracy
                entry.test_accuracy, entry.params = measured, entry.params or params
        folder = args.out / TASKS[task]
        ranked = export_task(entries, folder, args.force, args.all_weights)
        report.write_report(task, ranked, searches, folder, command_line("experiments.summarize"), here,
                            time.perf_counter() - started, benchmarks=args.outputs / "benchmarks")
        print(f"{task}: exported {len(ranked)} models to {folder}, best {ranked[0].name} "
              f"(val {ranked[0].val_accuracy:.4f}, test {ranked[0].test_accuracy:.4f}); report {folder / 'report.md'}")
        wrote_any = True
    if args.archive:
        write_archive(args.out, args.archive, args.force)
    return 0 if wrote_any or args.archive else 1


def write_archive(checkpoints: Path, student_id: str, force: bool) -> Path:
    """`<ID>.tar.gz` of model_checkpoints/ only (reports, plots, configs, metrics, exported weights)."""
    if not checkpoints.is_dir():
        raise UsageError(f"nothing to archive: {checkpoints} does not exist (run the summarizer first)")
    archive = Path(f"{student_id}.tar.gz")
    if archive.exists() and not force:
        raise UsageError(f"{archive} already exists; pass --force to overwrite it")
    files = sorted(
        p for p in checkpoints.rglob("*") if p.is_file() and not any(part.startswith(".") for part in p.parts)
    )
    staging = archive.with_name(f".{archive.name}.tmp")
    with tarfile.open(staging, "w:gz") as tar:
        for path in files:
            tar.add(path, arcname=str(Path(checkpoints.name) / path.relative_to(checkpoints)))
    staging.replace(archive)
    for path in files:
        print(f"  {path}")
    print(f"packed {len(files)} files into {archive} ({archive.stat().st_size / 1e6:.1f} MB)")
    return archive


if __name__ == "__main__":
    run_cli(main, extra_errors=(CheckpointError,))
