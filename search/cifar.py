"""`python -m search.cifar --model vit|swin|both --trials N`: ViT / Swin on CIFAR-10, same engine as IMDB.

The space is constraint-aware: every combination it can sample is a valid model (widths divisible by the
heads, windows dividing every Swin stage's map), so no trial is wasted on a crash.
"""

from __future__ import annotations

import argparse
from typing import Any

from data_pipes import cifar10
from experiments.cli import run_cli
from experiments.vision_config import VisionConfig
from experiments.vision_trial import train_vision
from models.vision import describe, format_description
from search import engine
from search.spaces import Param, SearchSpace

SWIN = ("swin",)
VIT = ("vit",)


def cifar_space(model: str, max_epochs: int, seed: int) -> SearchSpace:
    """Shared training knobs, then each family's shape under its own names (Optuna needs fixed domains)."""
    families = ("vit", "swin") if model == "both" else (model,)
    return SearchSpace(
        params=[
            Param("model_type", "choice", choices=families),
            Param("lr", "loguniform", 3e-4, 3e-3),
            Param("weight_decay", "loguniform", 0.01, 0.1),
            Param("batch_size", "choice", choices=(64, 128, 256)),
            Param("augment_strength", "int", 0, 2),
            Param("cutmix_prob", "uniform", 0.0, 0.5),
            Param("vit_patch", "choice", choices=(4, 8), field="patch_size", when=("model_type", VIT)),
            Param("vit_hidden", "choice", choices=(128, 192, 256), field="hidden_size", when=("model_type", VIT)),
            Param("vit_layers", "int", 4, 8, field="num_hidden_layers", when=("model_type", VIT)),
            Param("vit_heads", "choice", choices=(2, 4, 8), field="num_attention_heads", when=("model_type", VIT)),
            Param("vit_dropout", "uniform", 0.0, 0.1, field="hidden_dropout_prob", when=("model_type", VIT)),
            Param("swin_drop_path", "uniform", 0.0, 0.2, field="drop_path_rate", when=("model_type", SWIN)),
            Param("swin_embed", "choice", choices=(48, 64, 96), field="embed_dim", when=("model_type", SWIN)),
            Param("swin_depths", "choice", choices=("2-2-2", "2-2-4", "2-4-2"), field="depths",
                  when=("model_type", SWIN)),
            Param("swin_heads", "choice", choices=("2-4-8", "4-8-16"), field="num_heads", when=("model_type", SWIN)),
            Param("swin_window", "choice", choices=(2, 4), field="window_size", when=("model_type", SWIN)),
        ],
        # Swin: 2-px patches give 16×16 → 8×8 → 4×4 maps, which windows of 2 and 4 divide
        constants={"epochs": max_epochs, "seed": seed, "patch_size": 2, "mlp_ratio": 2.0, "label_smoothing": 0.1},
    )


class SizeReporter:
    """Adds the model's params and MACs to every report, so MLflow compares ViT and Swin on cost too."""

    def __init__(self, inner, size: dict[str, float]) -> None:
        self.inner, self.size = inner, size

    def report(self, metrics: dict[str, float], checkpoint_dir: str) -> None:
        self.inner.report({**metrics, **self.size}, checkpoint_dir)

    def resume_from(self) -> str | None:
        return self.inner.resume_from()


def trial(config: dict[str, Any], data: cifar10.CifarData, reporter) -> dict[str, Any]:
    vision = VisionConfig.from_dict(config)  # takes "2-4-8" depth/head strings
    info = describe(vision.model_params())
    size = {"params": float(info["params"]), "macs_per_image": float(info["macs_per_image"])}
    return train_vision(vision, data, SizeReporter(reporter, size) if reporter is not None else None)


def describe_config(config: dict[str, Any], args: argparse.Namespace) -> str:
    vision = VisionConfig.from_dict(config)  # takes "2-4-8" depth/head strings
    info = describe(vision.model_params(), batch_size=vision.batch_size)
    line = f"{vision.model_type}: {format_description(info)}"
    if args.max_memory is not None and info["activation_bytes"] > args.max_memory * 1e9:
        line += f"  WARNING: activations exceed --max-memory {args.max_memory:g} GB"
    return line


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", choices=("vit", "swin", "both"), default="both", help="model families searched")
    parser.add_argument("--max-memory", type=float, default=None, help="dry run: warn above this activation GB")


def fixed_params(data: cifar10.CifarData, args: argparse.Namespace) -> dict[str, Any]:
    return {
        **{f"fixed.{k}": v for k, v in cifar10.DATA_SETTINGS.items()},
        "data.train_size": len(data.train),
        "data.val_size": len(data.val),
    }


WORKLOAD = engine.SearchWorkload(
    name="cifar",
    load_data=lambda args: cifar10.load(args.data_dir, subset=args.subset, seed=0),
    trial_fn=trial,
    space=lambda args: cifar_space(args.model, args.max_epochs, args.seed),
    fixed_params=fixed_params,
    add_arguments=add_arguments,
    describe_config=describe_config,
    defaults={"trials": 20, "max_epochs": 10, "grace_period": 2},
)


def main(argv: list[str] | None = None) -> int:
    return engine.main(WORKLOAD, argv)


if __name__ == "__main__":
    run_cli(main)
