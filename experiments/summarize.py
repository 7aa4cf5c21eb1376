"""Export the winners and write the reports: `python -m experiments.summarize`.

Reads what the one-config runs (`outputs/<task>/*/run.json`) and the searches (`ray_results/*/search_summary.json`)
recorded, ranks models by their **validation** score (the task's metric, never test), evaluates search winners
once on the test split,
and writes each task's export folder (`model_checkpoints/<task.export_folder>/`, e.g. `assignment2-1-2` for IMDB):
one folder per model (config, metrics, tokenizer / image processor; weights for the winners), `best.json`,
`report.md` and its plots. Every export is staged and renamed into place, so an interrupted export leaves
the previous one intact.

This module is the command line and its flow; the models are found in `experiments.reporting.candidates`, exported by
`experiments.reporting.export`, and reported by `experiments.reporting.markdown`.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from experiments.core.cli import UsageError, command_line, machine_info, run_cli
from experiments.core.task import Task
from experiments.reporting.candidates import (
    ABLATIONS_KEPT,
    Candidate,
    candidates_from_exports,
    candidates_from_runs,
    candidates_from_searches,
    ensemble_candidates,
    load_ablations,
    load_searches,
    rank,
)
from experiments.reporting.export import export_task, keep_searches, reuse_export, write_archive
from experiments.reporting.provenance import origins, search_found
from experiments.tasks import TASKS, get_task


def evaluate_candidate(entry: Candidate, task: Task, data_dir: str | None) -> None:
    """Test score (and confusion matrix, where the task gives one) of a candidate, from its checkpoint."""
    from experiments import evaluate

    result = evaluate.evaluate_checkpoint(entry.checkpoint, data_dir, task)
    entry.test_score, entry.params = result[task.metric.test_name], entry.params or result["params"]
    if result["confusion"] is not None:
        entry.confusion, entry.class_names = result["confusion"].tolist(), result["class_names"]


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
    from experiments.reporting import markdown as markdown_report

    started = time.perf_counter()
    here = machine_info()
    wrote_any = False
    for task in [get_task(key) for key in args.tasks]:
        searches = load_searches(args.ray_results, task.name, args.out / task.export_folder)
        data_dir = args.data_dirs.get(task.key)
        testable = task.has_test_data(data_dir)
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
            no_confusion = entry is best and confusions and entry.confusion is None and testable
            if entry.test_score is None:
                reuse_export(entry, args.out / task.export_folder, task.metric)
            if entry.test_score is None or (elsewhere and testable) or no_confusion:
                if not testable:
                    raise UsageError(f"{entry.name} has no test {task.metric.label} yet: pass {data_flag(task)} to "
                                     "evaluate it")
                if elsewhere:
                    entry.test_score_at_training = entry.test_score
                evaluate_candidate(entry, task, data_dir)
        folder = args.out / task.export_folder
        searched = frozenset(e.name for e in candidates if search_found(origins(e, searches, task)))
        ranked = export_task(candidates, folder, args.force, args.all_weights, task.validation, task.metric,
                             task.weight_file, searched)
        keep_searches(searches, folder, args.ray_results)
        ablations = load_ablations(args.ray_results, task.name, folder)
        if ablations:
            keep_searches(ablations, folder, args.ray_results, ABLATIONS_KEPT)
        markdown_report.write_report(task, ranked, searches, folder, command_line(args.prog), here,
                                     time.perf_counter() - started, benchmarks=args.outputs / "benchmarks",
                                     ablations=ablations, data_dir=data_dir)
        print(f"{task.key}: exported {len(ranked)} models to {folder}, best {ranked[0].name} "
              f"(val {ranked[0].val_score:.4f}, test {ranked[0].test_score:.4f}); report {folder / 'report.md'}")
        wrote_any = True
    if args.archive:
        write_archive(args.out, args.archive, args.force)
    return 0 if wrote_any or args.archive else 1


if __name__ == "__main__":
    run_cli(main)
