"""The export folder (`model_checkpoints/<task.export_folder>/`): one folder per model, `best.json`, the search
and ablation summaries a report was written from, and the archive of them all.

Each model's folder holds its config, its metrics record and what the task saves beside its weights (tokenizer,
image processor); the weights themselves (`Task.weight_file`) only for the best of each family, the best of each
family that a search sampled (the search's own find stays loadable when a hand-written model leads), and for any
export that had them before. Every folder and record is staged and renamed into place, so an interrupted export
leaves the previous one intact.
"""

from __future__ import annotations

import json
import shutil
import tarfile
from pathlib import Path
from typing import Any

from experiments.core.checkpoints import (
    CONFIG_FILE,
    METRICS_FILE,
    TRAINER_STATE,
    WEIGHT_FILE,
    has_weights,
    read_config,
    read_metrics,
    recorded_validation,
    replace_dir_atomically,
    write_text_atomically,
)
from experiments.core.cli import UsageError
from experiments.core.records import AblationRecord, SearchRecord, read_json, write_record
from experiments.core.task import ACCURACY, Metric
from experiments.reporting import ensemble
from experiments.reporting.candidates import SEARCHES_KEPT, Candidate, rank
from experiments.reporting.storage_paths import portable_summary

NEVER_EXPORTED = {TRAINER_STATE}


def reuse_export(entry: Candidate, folder: Path, metric: Metric = ACCURACY) -> None:
    """The test numbers an earlier export of this very model recorded (same config, epochs and validation score):
    a search trial is not tested again each time the report is regenerated (minutes per model on a CPU)."""
    exported = folder / entry.name
    if not (exported / METRICS_FILE).is_file() or not (exported / CONFIG_FILE).is_file():
        return
    recorded = read_metrics(exported)
    same = (read_config(exported, with_task=True) == entry.config
            and recorded.get(metric.name) == entry.val_score and recorded.get("epochs") == entry.epochs)
    if same and recorded.get(metric.test_name) is not None:
        entry.test_score, entry.params = recorded[metric.test_name], entry.params or recorded.get("params")
        entry.confusion, entry.class_names = recorded.get("test_confusion_matrix"), recorded.get("class_names")


def export_candidate(entry: Candidate, target: Path, with_weights: bool, metric: Metric = ACCURACY,
                     weight_file: str = WEIGHT_FILE) -> None:
    """Stage the folder (config, tokenizer/processor, metrics, weights if asked), then swap it in."""
    staging = target.parent / f".{target.name}.export"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    skipped = NEVER_EXPORTED | (set() if with_weights else {weight_file})
    if entry.members:
        ensemble.write_members(entry.members, staging, skipped, metric.label)
    else:
        for item in entry.checkpoint.iterdir():
            if item.name not in skipped and item.is_file():
                shutil.copy2(item, staging / item.name)
    metrics = {
        "name": entry.name, "task": entry.task, "source": entry.source, metric.name: entry.val_score,
        "validation": entry.validation,
        metric.test_name: entry.test_score, f"{metric.test_name}_at_training": entry.test_score_at_training,
        "epochs": entry.epochs, "train_seconds": entry.train_seconds,
        "params": entry.params, "throughput_per_s": entry.throughput, "machine": entry.machine, "load": entry.load,
        "data_fingerprint": entry.data_fingerprint,
        "command": entry.command, "weights_included": has_weights(staging, weight_file),
        "history": entry.history,
        **({"test_confusion_matrix": entry.confusion, "class_names": entry.class_names} if entry.confusion else {}),
    }
    (staging / METRICS_FILE).write_text(json.dumps(metrics, indent=1) + "\n")
    replace_dir_atomically(staging, target)
    shutil.rmtree(staging, ignore_errors=True)


def read_best(folder: Path) -> dict[str, Any] | None:
    path = folder / "best.json"
    return read_json(path) if path.is_file() else None


def export_task(entries: list[Candidate], folder: Path, force: bool, all_weights: bool,
                validation: str = "random", metric: Metric = ACCURACY,
                weight_file: str = WEIGHT_FILE, searched: frozenset[str] = frozenset()) -> list[Candidate]:
    """Export every entry; the best (by val, among those validated like the data now) of each family, its best
    single model and its best among `searched` (the exports whose configurations a search sampled) get weights,
    and exports that had weights keep them; keeps a better existing best validated the same way."""
    folder.mkdir(parents=True, exist_ok=True)
    ranked = rank(entries, validation, metric)
    previous = read_best(folder)
    best = ranked[0]
    keep_previous = (
        previous is not None and not force and metric.better(previous[metric.name], best.val_score)
        and (folder / previous["name"]).is_dir() and validation == best.validation
        and recorded_validation(folder / previous["name"]) == validation
    )
    # each family's leaders get weights: its best; its best single model, where an ensemble leads; its best that a
    # search sampled, where a hand-written model leads
    family_best, single_best, found_best = {}, {}, {}
    for entry in ranked:
        family_best.setdefault(entry.family, entry)
        if not entry.members:
            single_best.setdefault(entry.family, entry)
        if entry.name in searched:
            found_best.setdefault(entry.family, entry)
    for entry in ranked:
        if keep_previous and entry.name == previous["name"]:
            continue
        # an export that has weights keeps them: a replaced champion stays loadable
        kept = has_weights(folder / entry.name, weight_file)
        leads = any(entry is lead for lead in (family_best[entry.family], single_best.get(entry.family),
                                               found_best.get(entry.family)))
        with_weights = all_weights or leads or kept
        export_candidate(entry, folder / entry.name, with_weights, metric, weight_file)
    if keep_previous:
        print(f"kept the existing best {previous['name']} (val {previous[metric.name]:.4f} {metric.beats} "
              f"{best.val_score:.4f}); pass --force to replace it")
    else:
        marker = {"name": best.name, metric.name: best.val_score, metric.test_name: best.test_score,
                  "family": best.family, "path": best.name}
        write_text_atomically(folder / "best.json", json.dumps(marker, indent=1) + "\n")
    return ranked


def keep_searches(searches: list[SearchRecord] | list[AblationRecord], folder: Path, storage_root: Path,
                  kept: str = SEARCHES_KEPT) -> None:
    """Store each summary the report is written from beside it, staged and renamed like every export, its paths
    relative to the storage root (`storage_paths`): a committed record names no folder of this machine."""
    (folder / kept).mkdir(parents=True, exist_ok=True)
    for summary in searches:
        write_record(folder / kept / f"{summary.search}.json", portable_summary(summary, storage_root, Path.cwd()))


def write_archive(checkpoints: Path, name: str, force: bool) -> Path:
    """`<ID>.tar.gz` of model_checkpoints/ only (reports, plots, configs, metrics, exported weights)."""
    if not checkpoints.is_dir():
        raise UsageError(f"nothing to archive: {checkpoints} does not exist (run the summarizer first)")
    archive = Path(f"{name}.tar.gz")
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
