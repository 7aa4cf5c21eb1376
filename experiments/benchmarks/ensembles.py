"""How much does averaging exported models' probabilities add to their accuracy?

For the exported models given (folders with weights, of one task), this prints each model's validation accuracy
(`--split test` only on request: what informs a default is read on validation) and that of every ensemble of two
or more of them (class probabilities averaged, experiments/reporting/ensemble.py), with its gain over its best
member. It measures what averaging can give; it selects nothing. The summarizer chooses an ensemble's members on
validation only. `--record` writes the numbers.

    python -m experiments.benchmarks.ensembles model_checkpoints/assignment2-1-2/search_imdb-40-blocks \
        model_checkpoints/assignment2-1-2/bigru1_wide_dropout --data-dir ../shared/data/imdb
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
from pathlib import Path

import numpy as np

from experiments.core.cli import UsageError, run_cli


def main(argv: list[str] | None = None) -> int:
    from experiments.core.training import pick_device
    from experiments.evaluate import load_test_data
    from experiments.reporting import ensemble
    from experiments.tasks import task_of_checkpoint

    parser = argparse.ArgumentParser(prog="python -m experiments.benchmarks.ensembles",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("exports", nargs="+", type=Path, help="exported model folders with weights, one task")
    parser.add_argument("--data-dir", default=None, help="local dataset copy in the hub layout")
    parser.add_argument("--split", choices=("val", "test"), default="val",
                        help="validation (default: what informs a default) or test (a number to report)")
    parser.add_argument("--record", type=Path, default=None, help="also write the numbers to this JSON file")
    args = parser.parse_args(argv)
    if len(args.exports) < 2:
        raise UsageError("give two or more exported models")
    tasks = {task_of_checkpoint(folder).key: task_of_checkpoint(folder) for folder in args.exports}
    if len(tasks) > 1:
        raise UsageError(f"the models belong to different tasks: {', '.join(tasks)}")
    task = next(iter(tasks.values()))
    if not ensemble.supports_ensembles(task):
        raise UsageError(f"task {task.key} cannot combine checkpoints")
    data, device = load_test_data(task.key, args.data_dir), pick_device()
    probabilities, labels = {}, None
    names = [f"{f.parent.name}/{f.name}" if f.name.startswith("member_") else f.name for f in args.exports]
    if len(set(names)) < len(names):  # folders of the same name: the paths as given
        names = [str(folder) for folder in args.exports]
    for name, folder in zip(names, args.exports, strict=True):
        probabilities[name], labels = task.split_probabilities(folder, data, args.split, device)
    single = {name: ensemble.scores(p, labels)["accuracy"] for name, p in probabilities.items()}
    print(f"{task.key}: {len(labels):,} {args.split} examples; ± is the binomial standard error of one accuracy")
    for name, accuracy in single.items():
        print(f"  {accuracy:.4f} ± {np.sqrt(accuracy * (1 - accuracy) / len(labels)):.4f}  {name}")
    gains, averages = [], []
    for size in range(2, len(probabilities) + 1):
        for combo in itertools.combinations(probabilities, size):
            accuracy = ensemble.scores(np.mean([probabilities[n] for n in combo], axis=0), labels)["accuracy"]
            gains.append(accuracy - max(single[n] for n in combo))
            averages.append({"members": list(combo), "accuracy": accuracy, "gain_over_best_member": gains[-1]})
            print(f"  {accuracy:.4f} ({gains[-1] * 100:+.2f} over its best member)  {' + '.join(combo)}")
    print(f"gain of an ensemble over its best member: min {min(gains) * 100:+.2f}, median "
          f"{np.median(gains) * 100:+.2f}, max {max(gains) * 100:+.2f} points over {len(gains)} ensembles")
    if args.record is not None:
        from experiments.core.cli import command_line, machine_info

        record = {"split": args.split, "examples": len(labels), "single": single, "averages": averages,
                  "command": command_line("experiments.benchmarks.ensembles"), "machine": machine_info()}
        staging = args.record.with_name(f".{args.record.name}.tmp")
        staging.write_text(json.dumps(record, indent=1) + "\n")
        os.replace(staging, args.record)
        print(f"wrote {args.record}")
    return 0


if __name__ == "__main__":
    run_cli(main)
