"""CIFAR-10 with Hugging Face ViT / Swin trained from scratch (assignment 2-2-2): the task definition.

The pieces live beside it: data and augmentation in `data_pipes.cifar10`, model shapes in `models.vision`, the
config and presets in `experiments.tasks.cifar.config`, training and checkpoints in `experiments.tasks.cifar.trial`.
The search space is constraint-aware: every combination it can sample is a valid model (widths divisible by
the heads, windows dividing every Swin stage's map), so no trial is wasted on a crash.
"""

from __future__ import annotations

import argparse
import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from experiments.core.errors import ConfigError, UsageError
from experiments.core.space import Param, SearchSpace
from experiments.core.task import Task
from experiments.tasks.cifar.report import TEST_IMAGES, comparison, gmacs, plots

MODEL_TYPES = ("vit", "swin")
# data_pipes.cifar10.CLASS_NAMES (tests/test_cifar.py checks), here so that the task imports without torch
CLASS_NAMES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
DEFAULT_PRESET = {"vit": "vit_small_p4", "swin": "swin_small_p2"}
SWIN = ("swin",)
VIT = ("vit",)


def load_data(data_dir: str | None, subset: int | None, seed: int):
    from data_pipes import cifar10

    return cifar10.load(data_dir, subset=subset, seed=seed)


def fixed_params(data) -> dict[str, Any]:
    return {
        **{f"fixed.{k}": v for k, v in data.settings.items()},
        "data.train_size": len(data.train),
        "data.val_size": len(data.val),
    }


def presets():
    from experiments.tasks.cifar.config import VISION_PRESETS

    return VISION_PRESETS


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", choices=MODEL_TYPES, default=None,
                        help=f"model family; without --config its default preset ({DEFAULT_PRESET})")


def resolve(args: argparse.Namespace):
    """--config, or the default preset of --model; the two must agree."""
    from experiments.tasks.cifar.config import resolve_vision_config

    config = resolve_vision_config(args.config or DEFAULT_PRESET[args.model or "vit"])
    if args.model is not None and config.model_type != args.model:
        raise ConfigError(f"--model {args.model} but config {config.config_name!r} is a {config.model_type} config")
    return config


def model_cost(config) -> tuple[dict[str, Any], str]:
    from models.vision import describe, format_description

    cost = describe(config.model_params(), config.batch_size)
    return cost, format_description(cost)


class SizeReporter:
    """Adds the model's params and MACs to every report, so MLflow compares ViT and Swin on cost too."""

    def __init__(self, inner, size: dict[str, float]) -> None:
        self.inner, self.size = inner, size
        self.report_every = getattr(inner, "report_every", 1.0)  # the loop asks the reporter it is given
        self.metric = getattr(inner, "metric", TASK.metric)

    def report(self, metrics: dict[str, float], checkpoint_dir: str) -> None:
        self.inner.report({**metrics, **self.size}, checkpoint_dir)

    def resume_from(self) -> str | None:
        return self.inner.resume_from()


def trial(config: dict[str, Any], data, reporter) -> dict[str, Any]:
    from experiments.tasks.cifar.config import VisionConfig
    from experiments.tasks.cifar.trial import train_vision
    from models.vision import describe

    vision = VisionConfig.from_dict(config)  # takes "2-4-8" depth/head strings
    info = describe(vision.model_params())
    size = {"params": float(info["params"]), "macs_per_image": float(info["macs_per_image"])}
    return train_vision(vision, data, SizeReporter(reporter, size) if reporter is not None else None)


def evaluate_checkpoint(folder: Path, data, device) -> dict[str, Any]:
    from experiments.tasks.cifar.trial import confusion_matrix, evaluate_split, load_checkpoint

    model, config = load_checkpoint(folder, device)
    result = evaluate_split(model, data.test.images, data.test.labels, device, config.image_size)
    return {
        "accuracy": result["accuracy"],
        "loss": result["loss"],
        "params": sum(p.numel() for p in model.parameters()),
        "confusion": confusion_matrix(result["predictions"], data.test.labels, len(data.class_names)),
        "class_names": list(data.class_names),
    }


def split_probabilities(folder: Path, data, split: str, device) -> tuple[Any, Any]:
    """Class probabilities of every validation or test image, and the labels."""
    import numpy as np

    from experiments.tasks.cifar.trial import load_checkpoint, split_logits

    model, config = load_checkpoint(folder, device)
    part = data.test if split == "test" else data.val
    probabilities = split_logits(model, part.images, device, config.image_size).softmax(-1).numpy()
    return probabilities, part.labels.astype(np.int64)


def input_probabilities(folder: Path, files: Sequence[str | bytes]):
    """Image files, or encoded images (PNG/JPEG bytes: what the MLflow model is served) -> [n, 10]."""
    import numpy as np
    import torch

    from experiments.tasks.cifar.trial import load_checkpoint, split_logits

    missing = [f for f in files if isinstance(f, str) and not Path(f).is_file()]
    if missing:
        raise UsageError(f"image file(s) not found: {', '.join(missing)}")
    images = np.stack([read_image(f) for f in files])  # every input is read before the model is loaded
    model, config = load_checkpoint(folder)
    return split_logits(model, images, torch.device("cpu"), config.image_size).softmax(-1).numpy()


def read_image(file: str | bytes):
    """One image file (or encoded bytes) as 32×32 RGB pixels; a file that is no image is a UsageError."""
    import numpy as np
    from PIL import Image, UnidentifiedImageError

    try:
        image = Image.open(io.BytesIO(file) if isinstance(file, bytes) else file)
        return np.asarray(image.convert("RGB").resize((32, 32), Image.BILINEAR))
    except UnidentifiedImageError:
        raise UsageError(f"{name_of(file)} is not an image (PIL knows no format that reads it)") from None
    except (OSError, SyntaxError, ValueError) as error:  # a known format, damaged (truncated, bad header)
        raise UsageError(f"{name_of(file)} is a damaged image: {error}") from None


def name_of(file: str | bytes) -> str:
    return file if isinstance(file, str) else f"an encoded image ({len(file):,} bytes)"


def predict(folder: Path, files: Sequence[str | bytes]) -> list[tuple[str, float]]:
    return [(CLASS_NAMES[int(row.argmax())], float(row.max())) for row in input_probabilities(folder, files)]


def serving_example() -> tuple[str, list[bytes]]:
    """Encoded images (PNG or JPEG bytes, any size: resized to 32 px) are the served model's input."""
    import numpy as np
    from PIL import Image

    ramp = np.linspace(0, 255, 32, dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(np.stack([np.tile(ramp, (32, 1)), np.tile(ramp[:, None], (1, 32)), 255 - np.tile(ramp, (32, 1))],
                             axis=-1)).save(buffer, format="PNG")
    return "image", [buffer.getvalue()]


# The CPU space's ceiling on a model's cost: every shape in it costs at most this many GMACs per image (a test walks
# them all), so that whatever the search picks, its refit trains for --refit-epochs within the main job's hour.
CPU_MAX_GMACS = 0.065
SPACES = ("cpu", "full")


def space(args: argparse.Namespace) -> SearchSpace:
    """Shared training knobs, then each family's shape under its own names (Optuna needs fixed domains).
    `--space cpu` keeps the shapes at most CPU_MAX_GMACS per image: a ViT's width depends on its patch, a Swin's
    depths and MLP ratio on its embedding width; `--space full` searches every shape (for GPUs)."""
    families = ("vit", "swin") if args.model == "both" else (args.model,)
    shared = [
        Param("model_type", "choice", choices=families),
        Param("lr", "loguniform", 3e-4, 3e-3),
        Param("weight_decay", "loguniform", 0.01, 0.1),
        Param("batch_size", "choice", choices=(64, 128, 256)),
        Param("augment_strength", "int", 0, 2),
        Param("cutmix_prob", "uniform", 0.0, 0.5),
    ]
    vit_dropout = Param("vit_dropout", "uniform", 0.0, 0.1, field="hidden_dropout_prob", when=("model_type", VIT))
    swin_drop_path = Param("swin_drop_path", "uniform", 0.0, 0.2, field="drop_path_rate", when=("model_type", SWIN))
    # every ViT width below is a multiple of every head count (2, 3, 4, 6: the preset has 3 heads)
    vit_heads = Param("vit_heads", "choice", choices=(2, 3, 4, 6), field="num_attention_heads",
                      when=("model_type", VIT))
    vit_layers = Param("vit_layers", "int", 4, 8, field="num_hidden_layers", when=("model_type", VIT))
    swin_heads = Param("swin_heads", "choice", choices=("2-4-8", "4-8-16"), field="num_heads",
                       when=("model_type", SWIN))
    swin_window = Param("swin_window", "choice", choices=(2, 4), field="window_size", when=("model_type", SWIN))
    if args.space == "cpu":
        shapes = [
            Param("vit_patch", "choice", choices=(4, 8), field="patch_size", when=("model_type", VIT)),
            Param("vit_hidden_p4", "choice", choices=(96,), field="hidden_size", when=("vit_patch", (4,))),
            Param("vit_hidden_p8", "choice", choices=(96, 144, 192), field="hidden_size", when=("vit_patch", (8,))),
            vit_layers, vit_heads,
            Param("vit_mlp", "choice", choices=(2.0, 4.0), field="mlp_ratio", when=("model_type", VIT)),
            vit_dropout, swin_drop_path,
            Param("swin_embed", "choice", choices=(48, 64), field="embed_dim", when=("model_type", SWIN)),
            Param("swin_depths_e48", "choice", choices=("2-2-2", "2-2-4", "2-4-2"), field="depths",
                  when=("swin_embed", (48,))),
            Param("swin_depths_e64", "choice", choices=("2-2-2",), field="depths", when=("swin_embed", (64,))),
            Param("swin_mlp_e48", "choice", choices=(2.0, 4.0), field="mlp_ratio", when=("swin_embed", (48,))),
            Param("swin_mlp_e64", "choice", choices=(2.0,), field="mlp_ratio", when=("swin_embed", (64,))),
            swin_heads, swin_window,
        ]
    else:
        shapes = [
            Param("mlp_ratio", "choice", choices=(2.0, 4.0)),
            Param("vit_patch", "choice", choices=(4, 8), field="patch_size", when=("model_type", VIT)),
            Param("vit_hidden", "choice", choices=(96, 144, 192, 240), field="hidden_size", when=("model_type", VIT)),
            vit_layers, vit_heads, vit_dropout, swin_drop_path,
            Param("swin_embed", "choice", choices=(48, 64, 96), field="embed_dim", when=("model_type", SWIN)),
            Param("swin_depths", "choice", choices=("2-2-2", "2-2-4", "2-4-2"), field="depths",
                  when=("model_type", SWIN)),
            swin_heads, swin_window,
        ]
    return SearchSpace(
        params=shared + shapes,
        # Swin: 2-px patches give 16×16 → 8×8 → 4×4 maps, which windows of 2 and 4 divide; "auto" trains under bf16
        # where the CPU computes it (experiments.core.training.cpu_computes_bf16)
        constants={"epochs": args.max_epochs, "seed": args.seed, "patch_size": 2, "label_smoothing": 0.1,
                   "precision": "auto"},
    )


def describe_sample(config: dict[str, Any], args: argparse.Namespace) -> str:
    from experiments.tasks.cifar.config import VisionConfig
    from models.vision import describe, format_description

    vision = VisionConfig.from_dict(config)  # takes "2-4-8" depth/head strings
    info = describe(vision.model_params(), batch_size=vision.batch_size)
    line = f"{vision.model_type}: {format_description(info)}"
    if args.max_memory is not None and info["activation_bytes"] > args.max_memory * 1e9:
        line += f"  WARNING: activations exceed --max-memory {args.max_memory:g} GB"
    return line


def add_search_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", choices=("vit", "swin", "both"), default="both", help="model families searched")
    parser.add_argument("--max-memory", type=float, default=None, help="dry run: warn above this activation GB")
    parser.add_argument("--space", choices=SPACES, default="cpu",
                        help=f"cpu: shapes of at most {CPU_MAX_GMACS} GMACs per image, refit within the main job's "
                             "hour on 2 cores; full: every shape (a GPU search)")


def family(config: dict[str, Any]) -> str:
    return str(config.get("model_type", "vit"))


def _by_family(vit_key: str, swin_key: str):
    """A table column whose config field differs between ViT and Swin."""
    return lambda c: c.get(vit_key) if c.get("model_type") == "vit" else c.get(swin_key)


TASK = Task(
    name="cifar",
    title="CIFAR-10 — ViT vs Swin from scratch (assignment 2-2-2)",
    export_folder="assignment2-2-2",
    targets=(0.73, 0.80),
    unit="img",
    example_noun="image",
    test_examples=TEST_IMAGES,
    serving_example=serving_example,
    requirements=("torch", "safetensors", "transformers", "pillow"),
    registered_model="tunelab-cifar10",
    load_data=load_data,
    fixed_params=fixed_params,
    presets=presets,
    default_config=DEFAULT_PRESET["vit"],
    resolve_config=resolve,
    trial=trial,
    evaluate_checkpoint=evaluate_checkpoint,
    predict=predict,
    labels=CLASS_NAMES,
    split_probabilities=split_probabilities,
    input_probabilities=input_probabilities,
    space=space,
    describe_sample=describe_sample,
    # The main job is sized for 2 CPU cores, ~90 minutes a family: two trials at a time, one thread each, rank on
    # all 45,000 training images, their schedule over 6 epochs; ASHA's rung at 2 epochs lets the best third finish
    # the 6. The fidelity study (`python -m experiments.benchmarks.cifar_fidelity collect`, record
    # cifar_fidelity.json, 8 configurations) found full data after 2 epochs of a 6-epoch schedule ranks like the 6
    # (Spearman +0.90 [+0.62, +1.00]), after 1.5 epochs +0.81, while 10,000 images x 2 epochs ranks at +0.52
    # [-0.22, +0.98]. A full-data epoch there took 2.1-8.2 minutes per trial, so the 28-minute search phase
    # reaches the rung with about 6 trials, and TPE models once 4 have. The best is refit once, alone on both cores,
    # for 25 epochs under its own schedule (a warm start would take half the cores).
    search_defaults={"trials": 20, "max_epochs": 6, "report_every": 0.5, "grace_period": 2, "reduction_factor": 3,
                     "time_budget": 28, "startup_trials": 4, "refit": 1, "refit_epochs": 25},
    search_settings=("model", "space"),
    add_search_arguments=add_search_arguments,
    add_run_arguments=add_run_arguments,
    family=family,
    model_cost=model_cost,
    columns=(
        ("family", lambda c: c.get("model_type")), ("patch", lambda c: c.get("patch_size")),
        ("width", _by_family("hidden_size", "embed_dim")), ("depth", _by_family("num_hidden_layers", "depths")),
        ("heads", _by_family("num_attention_heads", "num_heads")),
        ("window", lambda c: "-" if c.get("model_type") == "vit" else c.get("window_size")),
        ("batch", lambda c: c.get("batch_size")), ("lr", lambda c: c.get("lr")),
        ("GMACs/img", lambda c: round(gmacs(c), 3)),
    ),
    comparison=comparison,
    plots=plots,
    attachments=("cifar_fidelity",),
)
