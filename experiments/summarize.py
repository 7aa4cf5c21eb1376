"""Export the winners and write the reports: `python -m experiments.summarize`.

Reads what the one-config runs (`outputs/<task>/*/run.json`) and the searches (`ray_results/*/search_summary.json`)
recorded, ranks models by their **validation** score (the task's metric, never test), evaluates search winners
once on the test split,
and writes each task's export folder (`model_checkpoints/<task.export_folder>/`, e.g. `assignment2-1-2` for IMDB):
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

import numpy as np

from experiments import ensemble
from experiments.cli import UsageError, command_line, machine_info, run_cli
from experiments.reporters import replace_dir_atomically
from experiments.task import ACCURACY, Metric, Task
from experiments.tasks import TASKS, get_task

NEVER_EXPORTED = {"trainer_state.pt"}
WEIGHT_FILES = {"model.safetensors"}


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
    members: list[Path] = field(default_factory=list)  # an ensemble's checkpoints (experiments/ensemble.py)

    def member_configs(self) -> list[dict[str, Any]]:
        """Each member's config (an ensemble's), else the model's own."""
        return [read_config(member) for member in self.members] or [self.config]


def read_json(path: Path) -> Any:
    """A record the runs, searches or exports wrote; a damaged one is a UsageError that names it."""
    try:
        return json.loads(path.read_text())
    except ValueError as error:  # not JSON, or not text at all
        raise UsageError(f"{path} is not valid JSON ({error}): restore it or remove its folder") from None


def read_config(folder: Path) -> dict[str, Any]:
    """A checkpoint's experiment_config.json, without the task key it records."""
    return {k: v for k, v in json.loads((folder / "experiment_config.json").read_text()).items() if k != "task"}


def validation_of(record: dict[str, Any]) -> str:
    """The validation protocol a record names: an export beside its scores, a run or checkpoint among its data
    settings ("fixed"); "random" for those made before any was recorded."""
    return record.get("validation") or (record.get("fixed") or {}).get("validation", "random")


def recorded_validation(folder: Path) -> str:
    """`validation_of` the metrics.json of an export or checkpoint folder ("random" when it has none)."""
    metrics = folder / "metrics.json"
    return validation_of(json.loads(metrics.read_text()) if metrics.is_file() else {})


def _throughput(history: list[dict[str, Any]]) -> float | None:
    rates = [v for h in history for k, v in h.items() if k.endswith("_per_s")]
    return sum(rates) / len(rates) if rates else None


def candidates_from_runs(runs_dir: Path, task: Task) -> list[Candidate]:
    candidates, metric = [], task.metric
    for path in sorted(runs_dir.glob("*/run.json")):
        run = read_json(path)
        candidates.append(Candidate(
            task=task.key, family=task.family(run["config"]), name=run["config"]["config_name"], config=run["config"],
            source="one-config run" + (f" on {run['machine']['gpu']}" if run.get("machine", {}).get("gpu") else ""),
            val_score=run[metric.name], test_score=run[metric.test_name], epochs=run["epochs_run"],
            train_seconds=run["train_seconds"], params=run.get("params"), throughput=_throughput(run["history"]),
            history=run["history"], checkpoint=Path(run["checkpoint"]), machine=run.get("machine", {}),
            command=run.get("command", ""), confusion=run.get("test_confusion_matrix"),
            class_names=run.get("class_names"), validation=validation_of(run),
        ))
    return candidates


def candidates_from_exports(folder: Path, task: Task, known: set[str]) -> list[Candidate]:
    """Models exported earlier (their recorded metrics.json) that no run or search on this machine re-creates:
    a report regenerated elsewhere still compares against them, with the numbers they were exported with."""
    candidates, metric = [], task.metric
    for path in sorted(folder.glob("*/metrics.json")) if folder.is_dir() else []:
        recorded = read_json(path)
        config_file = path.parent / "experiment_config.json"
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
            validation=validation_of(recorded),
            # an ensemble is exported again whole, from its own member folders
            members=ensemble.member_folders(path.parent) if ensemble.is_ensemble(path.parent) else [],
        ))
    return candidates


SEARCHES_KEPT = "searches"  # <export folder>/searches/<name>.json: the summaries a report was written from
ABLATIONS_KEPT = "ablations"  # <export folder>/ablations/<name>.json, likewise for ablations


def load_searches(ray_results: Path, task_name: str, export_folder: Path | None = None) -> list[dict[str, Any]]:
    """The `search_summary.json` of every finished search of this task, and those an earlier report kept in
    the export folder (a fresh clone has the exports, not the ray_results/ they came from)."""
    found: dict[str, dict[str, Any]] = {}
    kept = sorted((export_folder / SEARCHES_KEPT).glob("*.json")) if export_folder is not None else []
    for path in [*kept, *sorted(ray_results.glob("*/search_summary.json"))]:  # this machine's own win
        summary = read_json(path)
        settings = path.with_name("search_args.json")  # its budget (equal budgets are compared) and fidelity
        if settings.is_file():
            summary["settings"] = read_json(settings)
        if summary.get("workload") == task_name and summary.get("best_checkpoint") and summary.get("finished", True):
            found[summary["search"]] = summary
    return list(found.values())


def load_ablations(ray_results: Path, task_name: str, export_folder: Path) -> list[dict[str, Any]]:
    """Every finished ablation of this task (`ablation_summary.json`), and those an earlier report kept, except
    one whose runs are all part of a larger ablation (which reused them)."""
    found: dict[str, dict[str, Any]] = {}
    for path in [*sorted((export_folder / ABLATIONS_KEPT).glob("*.json")),
                 *sorted(ray_results.glob("*/ablation_summary.json"))]:
        summary = read_json(path)
        if summary.get("workload") == task_name and summary.get("finished") and summary.get("cells"):
            found[summary["search"]] = summary
    runs_of = {name: {r["trial_id"] for r in summary["rows"]} for name, summary in found.items()}
    return [summary for name, summary in found.items()  # one extended by a larger ablation is shown in that one
            if not any(other != name and runs_of[name] < runs_of[other] for other in runs_of)]


def keep_searches(searches: list[dict[str, Any]], folder: Path, kept: str = SEARCHES_KEPT) -> None:
    """Store each summary the report is written from beside it, staged and renamed like every export."""
    (folder / kept).mkdir(parents=True, exist_ok=True)
    for summary in searches:
        staging = folder / kept / f".{summary['search']}.json.tmp"
        staging.write_text(json.dumps(summary, indent=1, default=str) + "\n")
        staging.replace(folder / kept / f"{summary['search']}.json")


def candidates_from_searches(searches: list[dict[str, Any]], task: Task) -> list[Candidate]:
    """Each search contributes, per model family it searched, its refit winner (trained again at full budget
    and tested once, see search/refit.py) or, for a search run with `--refit 0`, its best trial's best checkpoint."""
    candidates, metric = [], task.metric
    for search in searches:
        refits = search.get("refit") or []
        ranked = refits or [r for r in search["rows"] if r[metric.best_key] is not None]
        families = sorted({task.family(r["params"]) for r in ranked})
        for family in families:
            row = next(r for r in ranked if task.family(r["params"]) == family)  # best first
            checkpoint = Path(row["checkpoint"]) if refits else _best_checkpoint_of(row, search, metric)
            if checkpoint is None or not (checkpoint / "metrics.json").is_file():
                continue  # trained on another machine or cleaned up: its export (if any) stands in for it
            metrics = json.loads((checkpoint / "metrics.json").read_text())
            suffix = "" if len(families) == 1 else f"_{family}"
            candidates.append(Candidate(
                task=task.key, family=family, name=f"search_{search['search']}{suffix}",
                source=f"search {search['search']}" + (" (refit)" if refits else ""),
                config=json.loads((checkpoint / "experiment_config.json").read_text()),
                val_score=metrics[metric.name], test_score=row.get(metric.test_name) if refits else None,
                epochs=metrics["epoch"], train_seconds=metrics["train_seconds"],
                params=ensemble.stored_params(checkpoint),
                throughput=_throughput(metrics["history"]), history=metrics["history"], checkpoint=checkpoint,
                machine=search.get("machine", {}), command=search.get("command", ""),
                validation=validation_of(metrics),
            ))
    return candidates


def ensemble_candidates(searches: list[dict[str, Any]], task: Task, data_dir: str | None,
                        export_folder: Path) -> list[Candidate]:
    """Each search whose refits (two or more, still on this machine) average to a better validation score than
    its refit winner alone: that ensemble (experiments/ensemble.py), chosen on validation, tested once. Only for
    a task whose models give class probabilities (see `ensemble.supports_ensembles`)."""
    if data_dir is None or not ensemble.supports_ensembles(task):
        return []
    from experiments import evaluate
    from experiments.training import pick_device

    candidates, metric = [], task.metric
    for search in searches:
        members = [Path(r["checkpoint"]) for r in search.get("refit") or []  # best validation first
                   if (Path(r["checkpoint"]) / "metrics.json").is_file()]
        if len(members) < 2:
            continue
        data, device = evaluate.load_test_data(task.key, data_dir), pick_device()
        val = [task.split_probabilities(member, data, "val", device) for member in members]
        labels = val[0][1]
        chosen = ensemble.select_members([probabilities for probabilities, _ in val], labels, metric)
        if len(chosen) < 2:
            print(f"{task.key}: no ensemble of search {search['search']}'s {len(members)} refits scores higher on "
                  "validation than its refit winner")
            continue
        val_scores = ensemble.scores(np.mean([val[i][0] for i in chosen], axis=0), labels)
        members = [members[i] for i in chosen]
        name = ensemble.export_name(search["search"])
        test = _recorded_test(export_folder / name, members, metric)
        if test is None:
            test = ensemble.scores(*ensemble.mean_probabilities(task, members, data, "test", device))[metric.test_key]
        metrics = [json.loads((member / "metrics.json").read_text()) for member in members]
        configs = [read_config(member) for member in members]
        families = sorted({task.family(config) for config in configs})
        candidates.append(Candidate(
            task=task.key, family="+".join(families), name=name, members=members,
            source=f"search {search['search']} (ensemble of {len(members)} refits)",
            config=configs[0], val_score=val_scores[metric.test_key],
            test_score=test, epochs=metrics[0]["epoch"], train_seconds=sum(m["train_seconds"] for m in metrics),
            params=sum(ensemble.stored_params(member) or 0 for member in members) or None, throughput=None,
            history=[], checkpoint=members[0], machine=search.get("machine", {}),  # its members' curves are theirs
            command=search.get("command", ""), validation=validation_of(metrics[0]),
        ))
    return candidates


def _recorded_test(exported: Path, members: list[Path], metric: Metric = ACCURACY) -> float | None:
    """The test score an earlier export of the same ensemble (same member checkpoints) recorded."""
    if not (exported / ensemble.ENSEMBLE_FILE).is_file() or not (exported / "metrics.json").is_file():
        return None
    sources = json.loads((exported / ensemble.ENSEMBLE_FILE).read_text()).get("sources") or []
    same = len(sources) == len(members) and all(map(ensemble.same_path, sources, members))
    return json.loads((exported / "metrics.json").read_text()).get(metric.test_name) if same else None


def has_weights(folder: Path) -> bool:
    """Weights in the folder, or in an ensemble's member folders."""
    return any(path.is_file() for name in WEIGHT_FILES for path in [folder / name, *folder.glob(f"member_*/{name}")])


def _best_checkpoint_of(row: dict[str, Any], search: dict[str, Any], metric: Metric = ACCURACY) -> Path | None:
    """A trial keeps its best-validation checkpoint (Tune's CheckpointConfig scores by the task's metric); None
    when its trial folder is not on this machine."""
    if search.get("best_trial") == row["trial_id"]:
        return Path(search["best_checkpoint"])
    candidates = sorted(Path(row["path"]).glob("checkpoint_*/metrics.json"))  # ties: the earliest
    best = metric.best_of(candidates, key=lambda p: json.loads(p.read_text())[metric.name])
    return best.parent if best else None


def evaluate_candidate(entry: Candidate, task: Task, data_dir: str | None) -> None:
    """Test score (and confusion matrix, where the task gives one) of a candidate, from its checkpoint."""
    from experiments import evaluate

    result = evaluate.evaluate_checkpoint(entry.checkpoint, data_dir, task)
    entry.test_score, entry.params = result[task.metric.test_name], entry.params or result["params"]
    if result["confusion"] is not None:
        entry.confusion, entry.class_names = result["confusion"].tolist(), result["class_names"]


def reuse_export(entry: Candidate, folder: Path, metric: Metric = ACCURACY) -> None:
    """The test numbers an earlier export of this very model recorded (same config, epochs and validation score):
    a search trial is not tested again each time the report is regenerated (minutes per model on a CPU)."""
    exported = folder / entry.name
    if not (exported / "metrics.json").is_file() or not (exported / "experiment_config.json").is_file():
        return
    recorded = json.loads((exported / "metrics.json").read_text())
    same = (json.loads((exported / "experiment_config.json").read_text()) == entry.config
            and recorded.get(metric.name) == entry.val_score and recorded.get("epochs") == entry.epochs)
    if same and recorded.get(metric.test_name) is not None:
        entry.test_score, entry.params = recorded[metric.test_name], entry.params or recorded.get("params")
        entry.confusion, entry.class_names = recorded.get("test_confusion_matrix"), recorded.get("class_names")


def export_candidate(entry: Candidate, target: Path, with_weights: bool, metric: Metric = ACCURACY) -> None:
    """Stage the folder (config, tokenizer/processor, metrics, weights if asked), then swap it in."""
    staging = target.parent / f".{target.name}.export"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    skipped = NEVER_EXPORTED | (set() if with_weights else WEIGHT_FILES)
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
        "params": entry.params, "throughput_per_s": entry.throughput, "machine": entry.machine,
        "command": entry.command, "weights_included": has_weights(staging),
        "history": entry.history,
        **({"test_confusion_matrix": entry.confusion, "class_names": entry.class_names} if entry.confusion else {}),
    }
    (staging / "metrics.json").write_text(json.dumps(metrics, indent=1) + "\n")
    replace_dir_atomically(staging, target)
    shutil.rmtree(staging, ignore_errors=True)


def read_best(folder: Path) -> dict[str, Any] | None:
    path = folder / "best.json"
    return read_json(path) if path.is_file() else None


def rank(entries: list[Candidate], validation: str, metric: Metric = ACCURACY) -> list[Candidate]:
    """Best validation score first (in the metric's direction) among those validated like the data now
    (`validation`), then the others."""
    return sorted(entries, key=lambda e: (e.validation != validation, metric.sort_key(e.val_score)))


def export_task(entries: list[Candidate], folder: Path, force: bool, all_weights: bool,
                validation: str = "random", metric: Metric = ACCURACY) -> list[Candidate]:
    """Export every entry; the best (by val, among those validated like the data now) of each family gets
    weights, and exports that had weights keep them; keeps a better existing best validated the same way."""
    folder.mkdir(parents=True, exist_ok=True)
    ranked = rank(entries, validation, metric)
    previous = read_best(folder)
    best = ranked[0]
    keep_previous = (
        previous is not None and not force and metric.better(previous[metric.name], best.val_score)
        and (folder / previous["name"]).is_dir() and validation == best.validation
        and recorded_validation(folder / previous["name"]) == validation
    )
    family_best = {}
    for entry in ranked:
        family_best.setdefault(entry.family, entry)
    for entry in ranked:
        if keep_previous and entry.name == previous["name"]:
            continue
        # an export that has weights keeps them: a replaced champion stays loadable
        kept = has_weights(folder / entry.name)
        with_weights = all_weights or family_best[entry.family] is entry or kept
        export_candidate(entry, folder / entry.name, with_weights, metric)
    if keep_previous:
        print(f"kept the existing best {previous['name']} (val {previous[metric.name]:.4f} {metric.beats} "
              f"{best.val_score:.4f}); pass --force to replace it")
    else:
        marker = {"name": best.name, metric.name: best.val_score, metric.test_name: best.test_score,
                  "family": best.family, "path": best.name}
        staging = folder / ".best.json.tmp"
        staging.write_text(json.dumps(marker, indent=1) + "\n")
        staging.replace(folder / "best.json")
    return ranked


def build_parser(prog: str = "python -m experiments.summarize") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n")[0])
    parser.add_argument("--outputs", type=Path, default=Path("outputs"), help="one-config runs (<task>/*/run.json)")
    parser.add_argument("--ray-results", type=Path, default=Path("ray_results"), help="searches' storage path")
    parser.add_argument("--out", type=Path, default=Path("model_checkpoints"), help="where exports go")
    parser.add_argument("--tasks", nargs="+", default=list(TASKS), metavar="TASK",
                        help=f"tasks to summarize: {', '.join(TASKS)}, or a module path defining TASK")
    parser.add_argument("--data-dir", action="append", default=[], metavar="TASK=PATH",
                        help="a task's dataset copy, to test-evaluate its search winners (repeatable)")
    for key in TASKS:
        parser.add_argument(f"--{key}-data-dir", default=None, help=f"the same as --data-dir {key}=PATH")
    parser.add_argument("--all-weights", action="store_true", help="export weights of every model, not the winners")
    parser.add_argument("--force", action="store_true", help="replace a better existing best / an existing archive")
    parser.add_argument("--archive", metavar="ID", default=None, help="also pack model_checkpoints/ into ID.tar.gz")
    return parser


def parse_args(argv: list[str] | None = None, parser: argparse.ArgumentParser | None = None) -> argparse.Namespace:
    parser = parser or build_parser()
    args = parser.parse_args(argv)
    for key in args.tasks:  # an unknown task is refused before anything (a store, an export) is opened
        get_task(key)
    args.prog = parser.prog.removeprefix("python -m ")  # the command the report says produced it
    args.data_dirs = {key: getattr(args, f"{key}_data_dir") for key in TASKS if getattr(args, f"{key}_data_dir")}
    for item in args.data_dir:
        key, sep, path = item.partition("=")
        if not sep or not key or not path:
            raise UsageError(f"--data-dir takes TASK=PATH, got {item!r}")
        args.data_dirs[key] = path
    return args


def data_flag(task: Task) -> str:
    return f"--{task.key}-data-dir" if task.key in TASKS else f"--data-dir {task.key}=PATH"


def main(argv: list[str] | None = None) -> int:
    return run(parse_args(argv))


def run(args: argparse.Namespace) -> int:
    """Export and report every task asked for; 1 when there was nothing to summarize."""
    from experiments import markdown_report

    started = time.perf_counter()
    here = machine_info()
    wrote_any = False
    for task in [get_task(key) for key in args.tasks]:
        searches = load_searches(args.ray_results, task.name, args.out / task.export_folder)
        data_dir = args.data_dirs.get(task.key)
        candidates = candidates_from_runs(args.outputs / task.name, task) + candidates_from_searches(searches, task)
        candidates += ensemble_candidates(searches, task, data_dir, args.out / task.export_folder)
        candidates += candidates_from_exports(args.out / task.export_folder, task, {c.name for c in candidates})
        if not candidates:
            print(f"{task.key}: nothing to summarize (no {args.outputs / task.name}/*/run.json, no {task.name} "
                  f"search, no export in {args.out / task.export_folder})")
            continue
        best = rank(candidates, task.validation, task.metric)[0]
        confusions = any(e.confusion for e in candidates)  # the task gives them: the report shows the best's
        for entry in candidates:
            # a model trained on another device (bf16 there) is re-measured here, so evaluate reproduces it
            elsewhere = (entry.machine.get("gpu") != here.get("gpu") and entry.test_score is not None
                         and entry.test_score_at_training is None)  # not re-measured yet
            no_confusion = entry is best and confusions and entry.confusion is None and data_dir is not None
            if entry.test_score is None:
                reuse_export(entry, args.out / task.export_folder, task.metric)
            if entry.test_score is None or (elsewhere and data_dir is not None) or no_confusion:
                if data_dir is None:
                    raise UsageError(f"{entry.name} has no test {task.metric.label} yet: pass {data_flag(task)} to "
                                     "evaluate it")
                if elsewhere:
                    entry.test_score_at_training = entry.test_score
                evaluate_candidate(entry, task, data_dir)
        folder = args.out / task.export_folder
        ranked = export_task(candidates, folder, args.force, args.all_weights, task.validation, task.metric)
        keep_searches(searches, folder)
        ablations = load_ablations(args.ray_results, task.name, folder)
        if ablations:
            keep_searches(ablations, folder, ABLATIONS_KEPT)
        markdown_report.write_report(task, ranked, searches, folder, command_line(args.prog), here,
                                     time.perf_counter() - started, benchmarks=args.outputs / "benchmarks",
                                     ablations=ablations, data_dir=data_dir)
        print(f"{task.key}: exported {len(ranked)} models to {folder}, best {ranked[0].name} "
              f"(val {ranked[0].val_score:.4f}, test {ranked[0].test_score:.4f}); report {folder / 'report.md'}")
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
    run_cli(main)
