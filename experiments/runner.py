"""Train one configuration of any task alone (no Ray): `python -m experiments.train --task KEY --config …`
(`python -m experiments.imdb|cifar` for the built-in tasks).

Keeps the best-validation checkpoint in `<output-dir>/<config_name>/best/`, then evaluates it once on the
test split and writes `run.json` (config, history, val/test score, time, machine and its load, command) — the
same flags and the same steps for every task.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from experiments.core.cli import command_line, machine_info, with_overrides
from experiments.core.task import Task


def build_parser(task: Task, module: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=f"python -m {module}",
                                     description=f"Train one {task.name} configuration alone (no Ray).")
    add = parser.add_argument
    task.add_run_arguments(parser)
    add("--config", default=None, help=f"a preset (default {task.default_config}; see the README) or a JSON file")
    add("--data-dir", default=None, help="local copy in the hub layout (default: the HF hub)")
    add("--epochs", type=int, default=None, help="override the config's epochs")
    add("--seed", type=int, default=None, help="override the config's seed")
    add("--name", default=None, help="run name (default: the config's config_name)")
    add("--subset", type=int, default=None, help=f"train on N training {task.example_noun}s (quick runs)")
    add("--output-dir", type=Path, default=Path("outputs") / task.name, help="where runs are written")
    return parser


def main(task: Task, argv: list[str] | None = None, module: str | None = None) -> int:
    module = module or f"experiments.{task.name}"
    args = build_parser(task, module).parse_args(argv)
    config = with_overrides(task.resolve_config(args), args)
    cost, cost_line = task.model_cost(config) if task.model_cost else (None, "")
    data = task.load_data(args.data_dir, args.subset, 0)
    run_dir = args.output_dir / config.config_name
    run_dir.mkdir(parents=True, exist_ok=True)
    about = f" ({cost_line})" if cost_line else ""
    print(f"training {config.config_name}{about} on {len(data.train):,} {task.example_noun}s "
          f"(val {len(data.val):,})", flush=True)

    from experiments.core.records import RunRecord
    from experiments.core.reporters import LocalReporter, save_run_record
    from experiments.core.training import pick_device

    started = time.perf_counter()
    summary = task.trial(config.to_dict(), data, LocalReporter(run_dir, task.metric, task.key))
    wall = time.perf_counter() - started
    test = task.evaluate_checkpoint(run_dir / "best", data, pick_device())
    metric = task.metric
    record = RunRecord(
        task=task.key,
        config=config.to_dict(),
        best_epoch=summary["best_epoch"],
        epochs_run=summary["epochs_run"],
        train_seconds=summary["train_seconds"],
        wall_seconds=wall,
        params=summary["params"],
        model_cost=cost,
        fixed=summary["fixed"],
        data_fingerprint=data.fingerprint,
        history=summary["history"],
        class_names=test.get("class_names"),
        test_confusion_matrix=test["confusion"].tolist() if test.get("confusion") is not None else None,
        machine=machine_info(),
        load=summary.get("load"),  # during training: the report flags a throughput measured under load
        command=command_line(module),
        checkpoint=str(run_dir / "best"),
        by_task={metric.name: summary[metric.best_key], metric.test_name: test[metric.test_key],
                 "test_loss": test.get("loss"), f"train_{task.example_noun}s": len(data.train)},
    )
    save_run_record(run_dir, record, metric)
    return 0
