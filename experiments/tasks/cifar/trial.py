"""The CIFAR-10 trial: one `VisionConfig` trained on prepared data. Plain Python, no Ray, no MLflow.

A checkpoint is a Hugging Face folder (config.json + model.safetensors + preprocessor_config.json) plus
our experiment_config.json, so `from_pretrained` and `pipeline("image-classification", model=folder)`
work on it as they are, with the same normalisation as training.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from data_pipes.cifar10 import (
    MEAN,
    STD,
    CifarData,
    color_jitter,
    crop_flip,
    mix,
    model_input,
    normalize,
    to_tensor,
)
from experiments.core.checkpoints import CONFIG_FILE
from experiments.core.errors import CheckpointError
from experiments.core.reporters import Reporter
from experiments.core.training import TrainingJob, fit, pick_device, seed_everything, trains_in_bf16
from experiments.tasks.cifar.config import VisionConfig
from models.vision import build_model, logits

HF_FILES = ("config.json", "model.safetensors", "preprocessor_config.json")
EVAL_BATCH = 512


def _quiet_transformers() -> None:
    """No per-epoch 'Writing model shards' bars in logs: one line per epoch is the project's rule."""
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()


def image_processor(image_size: int):
    """The processor `pipeline` uses: resize to the model's size, /255, CIFAR mean/std — as in training."""
    try:  # transformers 5: the default backend needs torchvision (not a dependency); the PIL one does not
        from transformers import ViTImageProcessorPil as Processor
    except ImportError:  # transformers 4
        from transformers import ViTImageProcessor as Processor

    return Processor(
        do_resize=True,
        size={"height": image_size, "width": image_size},
        do_rescale=True,
        do_normalize=True,
        image_mean=list(MEAN),
        image_std=list(STD),
    )


def save_checkpoint(model: nn.Module, config: VisionConfig, folder: Path) -> None:
    """Hugging Face folder (safetensors weights, model + processor configs) and our experiment config."""
    _quiet_transformers()
    folder.mkdir(parents=True, exist_ok=True)
    # contiguous copies: channels_last weights cannot go to safetensors as they are
    state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    model.save_pretrained(folder, state_dict=state, safe_serialization=True)
    image_processor(config.image_size).save_pretrained(folder)
    config.to_json(folder / CONFIG_FILE)


def load_checkpoint(folder: str | Path, device: torch.device | None = None) -> tuple[nn.Module, VisionConfig]:
    """Model (eval mode) and config from a checkpoint folder; safetensors only, never unpickles."""
    from transformers import AutoModelForImageClassification

    _quiet_transformers()
    folder = Path(folder)
    missing = [name for name in (*HF_FILES, CONFIG_FILE) if not (folder / name).is_file()]
    if missing:
        raise CheckpointError(f"{folder} is not a CIFAR-10 checkpoint: missing {', '.join(missing)}")
    try:
        config = VisionConfig.from_json(folder / CONFIG_FILE)
        model, info = AutoModelForImageClassification.from_pretrained(
            folder, local_files_only=True, use_safetensors=True, output_loading_info=True
        )
        problems = {k: v for k, v in info.items() if k != "error_msgs" and v} | (
            {"errors": info["error_msgs"]} if info.get("error_msgs") else {}
        )
        if problems:  # transformers would otherwise leave those weights random with a mere warning
            raise ValueError(f"weights do not match the model: {problems}")
        if model.config.model_type != config.model_type:
            found = model.config.model_type
            raise ValueError(f"{CONFIG_FILE} says {config.model_type}, config.json says {found}")
    except Exception as error:  # corrupt or foreign files: one clear line, not a tensor traceback
        message = str(error).splitlines()[0] if str(error) else ""
        raise CheckpointError(f"cannot load checkpoint {folder}: {type(error).__name__}: {message}") from None
    return model.to(device or torch.device("cpu")).eval(), config


def split_logits(model: nn.Module, images: np.ndarray, device: torch.device, image_size: int) -> torch.Tensor:
    """Class logits [n, classes] of every image, float32 on the CPU; in batches, bf16 on CUDA like fit."""
    model.eval()
    cuda, parts = device.type == "cuda", []
    with torch.no_grad(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=cuda):
        for start in range(0, len(images), EVAL_BATCH):
            x = model_input(images[start : start + EVAL_BATCH], device, image_size)
            if cuda:
                x = x.contiguous(memory_format=torch.channels_last)
            parts.append(logits(model, x).float().cpu())
    return torch.cat(parts) if parts else torch.zeros(0, model.config.num_labels)


def evaluate_split(
    model: nn.Module, images: np.ndarray, labels: np.ndarray, device: torch.device, image_size: int
) -> dict[str, Any]:
    """Mean cross-entropy (no smoothing), accuracy and the predictions."""
    out = split_logits(model, images, device, image_size)
    loss = F.cross_entropy(out.double(), torch.from_numpy(labels.astype(np.int64)), reduction="sum").item()
    predicted = out.argmax(-1).numpy()
    n = max(len(labels), 1)
    return {"loss": loss / n, "accuracy": float((predicted == labels).sum()) / n, "predictions": predicted}


def confusion_matrix(predictions: np.ndarray, labels: np.ndarray, num_classes: int) -> np.ndarray:
    """Counts[true, predicted] (rows sum to the class sizes)."""
    flat = np.asarray(labels, dtype=np.int64) * num_classes + np.asarray(predictions, dtype=np.int64)
    return np.bincount(flat, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def train_vision(
    config: VisionConfig | dict[str, Any], data: CifarData, reporter: Reporter | None = None
) -> dict[str, Any]:
    """Train one configuration; reports val loss/accuracy as the reporter asks. Never touches the test split."""
    if isinstance(config, dict):
        config = VisionConfig.from_dict(config)
    seed_everything(config.seed)
    device = pick_device()
    model = build_model(config.model_params(), data.class_names)
    # channels-last pays under bf16: 1.92x fp32 against bf16's 1.73x on the 2-core EPYC (cifar_precision.json)
    channels_last = trains_in_bf16(config.precision, device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    num_classes = len(data.class_names)
    batch_size = min(config.batch_size, len(data.train))
    steps = len(data.train) // batch_size  # full batches only: one shape for every step

    def train_batches(epoch: int, start: int):
        order = np.random.default_rng([config.seed, epoch]).permutation(len(data.train))  # same after resume
        for step in range(start, steps):
            index = order[step * batch_size : (step + 1) * batch_size]
            x = color_jitter(crop_flip(to_tensor(data.train.images[index], device)), config.augment_strength)
            y = torch.from_numpy(data.train.labels[index].astype(np.int64)).to(device, non_blocking=True)
            x, targets = mix(x, y, num_classes, config.mixup_prob, config.cutmix_prob)
            x = normalize(x, data.mean, data.std, config.image_size)
            yield (x.contiguous(memory_format=torch.channels_last) if channels_last else x), targets

    def loss_on_batch(model: nn.Module, batch) -> tuple[torch.Tensor, int]:
        x, targets = batch
        return F.cross_entropy(logits(model, x), targets, label_smoothing=config.label_smoothing), len(x)

    def evaluate(model: nn.Module) -> dict[str, float]:
        result = evaluate_split(model, data.val.images, data.val.labels, device, config.image_size)
        return {"val_loss": result["loss"], "val_accuracy": result["accuracy"]}

    work = TrainingJob(
        model=model,
        epochs=config.epochs,
        steps_per_epoch=steps,
        train_batches=train_batches,
        loss_on_batch=loss_on_batch,
        evaluate=evaluate,
        save_checkpoint=lambda m, folder: save_checkpoint(m, config, folder),
        optimizer="AdamW",
        optimizer_params={"lr": config.lr, "weight_decay": config.weight_decay},
        lr_schedule="cosine",
        grad_clip=config.grad_clip,
        unit="img",
        warmup_fraction=config.warmup_fraction,
        fixed={**data.settings, "memory_format": "channels_last" if channels_last else "contiguous"},
        precision=config.precision,
    )
    return fit(work, reporter, device)


__all__ = [
    "confusion_matrix",
    "evaluate_split",
    "image_processor",
    "load_checkpoint",
    "save_checkpoint",
    "train_vision",
]
