"""Train one CIFAR-10 ViT/Swin configuration alone (no Ray): `python -m experiments.cifar --model vit`.

Keeps the best-validation checkpoint in `<output-dir>/<config_name>/best/` (a Hugging Face folder that
`pipeline("image-classification", model=...)` loads), then evaluates it once on the test split and writes
`run.json` (config, model cost, history, val/test accuracy, test confusion matrix, time, machine, command).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from data_pipes import cifar10 as cifar_data
from experiments.cli import command_line, machine_info, run_cli, with_overrides
from experiments.config import ConfigError
from experiments.reporting import LocalReporter, save_run_record
from experiments.training import pick_device
from experiments.vision_config import DEFAULT_PRESET, REJECTED_PRESETS, VISION_PRESETS, resolve_vision_config
from experiments.vision_trial import (
    CheckpointError,
    confusion_matrix,
    evaluate_split,
    load_checkpoint,
    train_vision,
)
from models.vision import MODEL_TYPES, describe, format_description

DEFAULT_OUTPUT = Path("outputs/cifar")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m experiments.cifar", description=__doc__.split("\n")[0])
    presets = ", ".join([*VISION_PRESETS, *REJECTED_PRESETS])
    parser.add_argument("--model", choices=MODEL_TYPES, default=None,
                        help=f"model family; without --config its default preset ({DEFAULT_PRESET})")
    parser.add_argument("--config", default=None, help=f"preset ({presets}) or a JSON file")
    parser.add_argument("--data-dir", default=None, help="local copy in the hub layout (default: the HF hub)")
    parser.add_argument("--epochs", type=int, default=None, help="override the config's epochs")
    parser.add_argument("--seed", type=int, default=None, help="override the config's seed")
    parser.add_argument("--name", default=None, help="run name (default: the config's config_name)")
    parser.add_argument("--subset", type=int, default=None, help="train on N training images (quick runs)")
    parser.add_argument("--output-dir", type=Path, default=DEFAULT_OUTPUT, help="where runs are written")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    config = resolve_vision_config(args.config or DEFAULT_PRESET[args.model or "vit"])
    if args.model is not None and config.model_type != args.model:
        raise ConfigError(
            f"--model {args.model} but config {config.config_name!r} is a {config.model_type} config"
        )
    config = with_overrides(config, args)
    cost = describe(config.model_params(), config.batch_size)
    data = cifar_data.load(args.data_dir, subset=args.subset)
    run_dir = args.output_dir / config.config_name
    run_dir.mkdir(parents=True, exist_ok=True)
    print(f"training {config.config_name} ({format_description(cost)}) on {len(data.train):,} images "
          f"(val {len(data.val):,})", flush=True)
    started = time.perf_counter()
    summary = train_vision(config, data, LocalReporter(run_dir))
    wall = time.perf_counter() - started
    device = pick_device()
    model, _ = load_checkpoint(run_dir / "best", device)
    test = evaluate_split(model, data.test.images, data.test.labels, device, config.image_size)
    confusion = confusion_matrix(test["predictions"], data.test.labels, len(data.class_names))
    record = {
        "task": "cifar10",
        "config": config.to_dict(),
        "val_accuracy": summary["best_val_accuracy"],
        "test_accuracy": test["accuracy"],
        "test_loss": test["loss"],
        "best_epoch": summary["best_epoch"],
        "epochs_run": summary["epochs_run"],
        "train_seconds": summary["train_seconds"],
        "wall_seconds": wall,
        "params": summary["params"],
        "model_cost": cost,
        "train_images": len(data.train),
        "fixed": summary["fixed"],
        "data_fingerprint": data.fingerprint,
        "history": summary["history"],
        "class_names": list(data.class_names),
        "test_confusion_matrix": confusion.tolist(),  # rows: true class, columns: predicted
        "machine": machine_info(),
        "command": command_line("experiments.cifar"),
        "checkpoint": str(run_dir / "best"),
    }
    save_run_record(run_dir, record)
    return 0


if __name__ == "__main__":
    run_cli(main, extra_errors=(CheckpointError,))
