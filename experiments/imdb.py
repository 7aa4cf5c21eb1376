"""Train one IMDB configuration alone (no Ray): `python -m experiments.imdb --config NAME|path.json`.

Keeps the best-validation checkpoint in `<output-dir>/<config_name>/best/`, then evaluates it once on the
test split and writes `run.json` (config, history, val/test accuracy, time, machine, command).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from data_pipes import imdb as imdb_data
from experiments.cli import command_line, machine_info, run_cli, with_overrides
from experiments.config import IMDB_PRESETS, resolve_imdb_config
from experiments.imdb_trial import CheckpointError, evaluate_split, load_checkpoint, train_imdb
from experiments.reporting import LocalReporter, save_run_record
from experiments.training import pick_device

DEFAULT_OUTPUT = Path("outputs/imdb")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m experiments.imdb", description=__doc__.split("\n")[0])
    parser.add_argument("--config", default="gru2_maxmean", help=f"preset ({', '.join(IMDB_PRESETS)}) or a JSON file")
    parser.add_argument("--data-dir", default=None, help="local copy in the hub layout (default: the HF hub)")
    parser.add_argument("--epochs", type=int, default=None, help="override the config's epochs")
    parser.add_argument("--seed", type=int, default=None, help="override the config's seed")
    parser.add_argument("--name", default=None, help="run name (default: the config's config_name)")
    parser.add_argument("--subset", type=int, default=None, help="train on N training reviews (quick runs)")
    parser.add_argument("--output-dir", type=Path, default=DEFAULT_OUTPUT, help="where runs are written")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    config = resolve_imdb_config(args.config)
    config = with_overrides(config, args)
    data = imdb_data.load(args.data_dir, subset=args.subset)
    run_dir = args.output_dir / config.config_name
    run_dir.mkdir(parents=True, exist_ok=True)
    print(f"training {config.config_name} on {len(data.train):,} reviews (val {len(data.val):,})", flush=True)
    started = time.perf_counter()
    summary = train_imdb(config, data, LocalReporter(run_dir))
    wall = time.perf_counter() - started
    model, _, _ = load_checkpoint(run_dir / "best", pick_device())
    test = evaluate_split(model, data.test, pick_device())
    record = {
        "task": "imdb",
        "config": config.to_dict(),
        "val_accuracy": summary["best_val_accuracy"],
        "test_accuracy": test["accuracy"],
        "best_epoch": summary["best_epoch"],
        "epochs_run": summary["epochs_run"],
        "train_seconds": summary["train_seconds"],
        "wall_seconds": wall,
        "params": summary["params"],
        "train_reviews": len(data.train),
        "fixed": summary["fixed"],
        "history": summary["history"],
        "machine": machine_info(),
        "command": command_line("experiments.imdb"),
        "checkpoint": str(run_dir / "best"),
    }
    save_run_record(run_dir, record)
    return 0


if __name__ == "__main__":
    run_cli(main, extra_errors=(CheckpointError,))
