"""The models up for export, found from what was recorded: one-config runs, searches' winners, their ensembles,
and earlier exports that nothing on this machine re-creates; ranked by validation score.

Runs are read from `outputs/<task>/*/run.json`, searches from `ray_results/*/search_summary.json` and the copies
an earlier report kept in its export folder (`searches/`, `ablations/`), so a fresh clone regenerates its reports
from the exports alone.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from experiments.core.checkpoints import CONFIG_FILE, METRICS_FILE, read_config, read_metrics, validation_of
from experiments.core.records import (
    ABLATION_FILE,
    RUN_FILE,
    SEARCH_FILE,
    AblationRecord,
    RunRecord,
    SearchRecord,
    read_json,
    read_record,
)
from experiments.core.task import ACCURACY, Metric, Task
from experiments.reporting import ensemble
from experiments.reporting.storage_paths import resolved_summary

SEARCHES_KEPT = "searches"  # <export folder>/searches/<name>.json: the summaries a report was written from
ABLATIONS_KEPT = "ablations"  # <export folder>/ablations/<name>.json, likewise for ablations


@dataclass
class Candidate:
    """One trained model up for export, from a one-config run or a search's best trial."""

    task: str
    family: str  # ViT / Swin for vision, the GRU for IMDB: the reports compare within and across families
    name: str
    source: str
    config: dict[str, Any]
    val_score: float  # the task's metric on validation (accuracy, RMSE…), recorded under metric.name
    test_score: float | None  # the same on the test split, recorded under metric.test_name
    epochs: float  # fractional where the best report fell inside an epoch
    train_seconds: float
    params: int | None
    throughput: float | None
    history: list[dict[str, Any]]
    checkpoint: Path
    machine: dict[str, Any] = field(default_factory=dict)
    command: str = ""
    test_score_at_training: float | None = None  # as measured where it was trained, when that was elsewhere
    confusion: list[list[int]] | None = None  # test confusion matrix (rows: true class), where the task gives one
    class_names: list[str] | None = None
    validation: str = "random"  # how its validation split was drawn (see Task.validation)
    members: list[Path] = field(default_factory=list)  # an ensemble's checkpoints (experiments/reporting/ensemble.py)
    load: dict[str, Any] | None = None  # the machine's load during its training (experiments.core.training.fit)
    data_fingerprint: str | None = None  # the data it trained on, where its record names it

    def member_configs(self) -> list[dict[str, Any]]:
        """Each member's config (an ensemble's), else the model's own."""
        return [read_config(member) for member in self.members] or [self.config]


def rank(entries: list[Candidate], validation: str, metric: Metric = ACCURACY) -> list[Candidate]:
    """Best validation score first (in the metric's direction) among those validated like the data now
    (`validation`), then the others."""
    return sorted(entries, key=lambda e: (e.validation != validation, metric.sort_key(e.val_score)))


def _throughput(history: list[dict[str, Any]]) -> float | None:
    rates = [v for h in history for k, v in h.items() if k.endswith("_per_s")]
    return sum(rates) / len(rates) if rates else None


def candidates_from_runs(runs_dir: Path, task: Task) -> list[Candidate]:
    candidates, metric = [], task.metric
    for path in sorted(runs_dir.glob(f"*/{RUN_FILE}")):
        run = read_record(path, RunRecord)
        candidates.append(Candidate(
            task=task.key, family=task.family(run.config), name=run.config["config_name"], config=run.config,
            source="one-config run" + (f" on {run.machine['gpu']}" if run.machine.get("gpu") else ""),
            val_score=run.by_task[metric.name], test_score=run.by_task[metric.test_name], epochs=run.epochs_run,
            train_seconds=run.train_seconds, params=run.params, throughput=_throughput(run.history),
            history=run.history, checkpoint=Path(run.checkpoint), machine=run.machine, command=run.command,
            confusion=run.test_confusion_matrix, class_names=run.class_names,
            validation=validation_of(run.to_dict()), load=run.load, data_fingerprint=run.data_fingerprint,
        ))
    return candidates


def candidates_from_exports(folder: Path, task: Task, known: set[str]) -> list[Candidate]:
    """Models exported earlier (their recorded metrics.json) that no run or search on this machine re-creates:
    a report regenerated elsewhere still compares against them, with the numbers they were exported with."""
    candidates, metric = [], task.metric
    for path in sorted(folder.glob(f"*/{METRICS_FILE}")) if folder.is_dir() else []:
        recorded = read_json(path)
        config_file = path.parent / CONFIG_FILE
        if recorded.get("name") in known or not config_file.is_file():
            continue
        config = read_config(path.parent)
        candidates.append(Candidate(
            task=task.key, family=task.family(config), name=recorded["name"], source=recorded["source"],
            config=config, val_score=recorded[metric.name], test_score=recorded[metric.test_name],
            epochs=recorded["epochs"], train_seconds=recorded["train_seconds"], params=recorded.get("params"),
            throughput=recorded.get("throughput_per_s"), history=recorded["history"], checkpoint=path.parent,
            machine=recorded.get("machine", {}), command=recorded.get("command", ""),
            test_score_at_training=recorded.get(f"{metric.test_name}_at_training"),
            confusion=recorded.get("test_confusion_matrix"), class_names=recorded.get("class_names"),
            validation=validation_of(recorded), load=recorded.get("load"),
            data_fingerprint=recorded.get("data_fingerprint"),
            # an ensemble is exported again whole, from its own member folders
            members=ensemble.member_folders(path.parent) if ensemble.is_ensemble(path.parent) else [],
        ))
    return candidates


def load_searches(ray_results: Path, task_name: str, export_folder: Path | None = None) -> list[SearchRecord]:
    """The `search_summary.json` of every finished search of this task, and those an earlier report kept in
    the export folder (a fresh clone has the exports, not the ray_results/ they came from); a kept summary's
    paths, stored relative to the storage root, are resolved under `ray_results`."""
    found: dict[str, SearchRecord] = {}
    kept = sorted((export_folder / SEARCHES_KEPT).glob("*.json")) if export_folder is not None else []
    for path in [*kept, *sorted(ray_results.glob(f"*/{SEARCH_FILE}"))]:  # this machine's own win
        summary = read_record(path, SearchRecord)
        summary = resolved_summary(summary, ray_results) if path in kept else summary
        settings = path.with_name("search_args.json")  # its budget (equal budgets are compared) and fidelity
        if settings.is_file():
            summary.settings = read_json(settings)
        if summary.workload == task_name and summary.best_checkpoint and summary.finished:
            found[summary.search] = summary
    return list(found.values())


def load_ablations(ray_results: Path, task_name: str, export_folder: Path) -> list[AblationRecord]:
    """Every finished ablation of this task (`ablation_summary.json`), and those an earlier report kept, except
    one whose runs are all part of a larger ablation (which reused them)."""
    found: dict[str, AblationRecord] = {}
    for path in [*sorted((export_folder / ABLATIONS_KEPT).glob("*.json")),
                 *sorted(ray_results.glob(f"*/{ABLATION_FILE}"))]:
        summary = read_record(path, AblationRecord)
        if summary.workload == task_name and summary.finished and summary.cells:
            found[summary.search] = summary
    runs_of = {name: {r["trial_id"] for r in summary.rows} for name, summary in found.items()}
    return [summary for name, summary in found.items()  # one extended by a larger ablation is shown in that one
            if not any(other != name and runs_of[name] < runs_of[other] for other in runs_of)]


def candidates_from_searches(searches: list[SearchRecord], task: Task) -> list[Candidate]:
    """Each search contributes, per model family it searched, its refit winner (trained again at full budget
    and tested once, see search/refit.py) or, for a search run with `--refit 0`, its best trial's best checkpoint."""
    candidates, metric = [], task.metric
    for search in searches:
        refits = search.refit
        ranked = refits or [r for r in search.rows if r[metric.best_key] is not None]
        families = sorted({task.family(r["params"]) for r in ranked})
        for family in families:
            row = next(r for r in ranked if task.family(r["params"]) == family)  # best first
            checkpoint = Path(row["checkpoint"]) if refits else _best_checkpoint_of(row, search, metric)
            if checkpoint is None or not (checkpoint / METRICS_FILE).is_file():
                continue  # trained on another machine or cleaned up: its export (if any) stands in for it
            metrics = read_metrics(checkpoint)
            suffix = "" if len(families) == 1 else f"_{family}"
            candidates.append(Candidate(
                task=task.key, family=family, name=f"search_{search.search}{suffix}",
                source=f"search {search.search}" + (" (refit)" if refits else ""),
                config=read_config(checkpoint, with_task=True),
                val_score=metrics[metric.name], test_score=row.get(metric.test_name) if refits else None,
                epochs=metrics["epoch"], train_seconds=metrics["train_seconds"],
                params=ensemble.stored_params(checkpoint),
                throughput=_throughput(metrics["history"]), history=metrics["history"], checkpoint=checkpoint,
                machine=search.machine, command=search.command,
                validation=validation_of(metrics), load=metrics.get("load"),
            ))
    return candidates


def _best_checkpoint_of(row: dict[str, Any], search: SearchRecord, metric: Metric = ACCURACY) -> Path | None:
    """A trial keeps its best-validation checkpoint (Tune's CheckpointConfig scores by the task's metric); None
    when its trial folder is not on this machine."""
    if search.best_trial == row["trial_id"]:
        return Path(search.best_checkpoint)
    candidates = sorted(Path(row["path"]).glob(f"checkpoint_*/{METRICS_FILE}"))  # ties: the earliest
    best = metric.best_of(candidates, key=lambda p: read_metrics(p.parent)[metric.name])
    return best.parent if best else None


def ensemble_candidates(searches: list[SearchRecord], task: Task, data_dir: str | None,
                        export_folder: Path) -> list[Candidate]:
    """Each search whose refits (two or more, still on this machine) average to a better validation score than
    its refit winner alone: that ensemble (experiments/reporting/ensemble.py), chosen on validation, tested once.
    Only for a task whose models give class probabilities (see `ensemble.supports_ensembles`)."""
    if not task.has_test_data(data_dir) or not ensemble.supports_ensembles(task):
        return []
    from experiments import evaluate
    from experiments.core.training import pick_device

    candidates, metric = [], task.metric
    for search in searches:
        members = [Path(r["checkpoint"]) for r in search.refit  # best validation first
                   if (Path(r["checkpoint"]) / METRICS_FILE).is_file()]
        if len(members) < 2:
            continue
        data, device = evaluate.load_test_data(task.key, data_dir), pick_device()
        val = [task.split_probabilities(member, data, "val", device) for member in members]
        labels = val[0][1]
        chosen = ensemble.select_members([probabilities for probabilities, _ in val], labels, metric)
        if len(chosen) < 2:
            print(f"{task.key}: no ensemble of search {search.search}'s {len(members)} refits scores higher on "
                  "validation than its refit winner")
            continue
        val_scores = ensemble.scores(np.mean([val[i][0] for i in chosen], axis=0), labels)
        members = [members[i] for i in chosen]
        name = ensemble.export_name(search.search)
        test = _recorded_test(export_folder / name, members, metric)
        if test is None:
            test = ensemble.scores(*ensemble.mean_probabilities(task, members, data, "test", device))[metric.test_key]
        metrics = [read_metrics(member) for member in members]
        configs = [read_config(member) for member in members]
        families = sorted({task.family(config) for config in configs})
        candidates.append(Candidate(
            task=task.key, family="+".join(families), name=name, members=members,
            source=f"search {search.search} (ensemble of {len(members)} refits)",
            config=configs[0], val_score=val_scores[metric.test_key],
            test_score=test, epochs=metrics[0]["epoch"], train_seconds=sum(m["train_seconds"] for m in metrics),
            params=sum(ensemble.stored_params(member) or 0 for member in members) or None, throughput=None,
            history=[], checkpoint=members[0], machine=search.machine,  # its members' curves are theirs
            command=search.command, validation=validation_of(metrics[0]),
        ))
    return candidates


def _recorded_test(exported: Path, members: list[Path], metric: Metric = ACCURACY) -> float | None:
    """The test score an earlier export of the same ensemble (same member checkpoints) recorded."""
    if not (exported / ensemble.ENSEMBLE_FILE).is_file() or not (exported / METRICS_FILE).is_file():
        return None
    sources = json.loads((exported / ensemble.ENSEMBLE_FILE).read_text()).get("sources") or []
    same = len(sources) == len(members) and all(map(ensemble.same_path, sources, members))
    return read_metrics(exported).get(metric.test_name) if same else None
