"""The IMDB trial: one `ExperimentConfig` trained on prepared data. Plain Python, no Ray, no MLflow."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from data_pipes.imdb import (
    PAD_ID,
    VOCAB_SIZE,
    ImdbData,
    TokenizedSplit,
    collate,
    cut,
    length_bucketed_batches,
    vocab_size,
)
from experiments.core.checkpoints import CONFIG_FILE, WEIGHT_FILE
from experiments.core.errors import CheckpointError
from experiments.core.reporters import Reporter
from experiments.core.training import TrainingJob, fit, pick_device, seed_everything
from experiments.tasks.imdb.config import ExperimentConfig
from models.gru_classifier import GRUClassifier

TOKENIZER_FILE = "tokenizer.json"
EVAL_BATCH = 256


def build_model(config: ExperimentConfig, vocab_size: int = VOCAB_SIZE) -> GRUClassifier:
    return GRUClassifier(
        vocab_size=vocab_size,
        embed_dim=config.embed_dim,
        hidden_dim=config.hidden_dim,
        num_layers=config.num_layers,
        is_bidirectional=config.is_bidirectional,
        dropout=config.dropout,
        embed_dropout=config.embed_dropout,
        pooling=config.pooling,
        output_dim=config.output_dim,
        pad_id=PAD_ID,
        use_hand_gru=config.use_hand_gru,
    )


def _to_device(batch: tuple[np.ndarray, ...], device: torch.device) -> tuple[torch.Tensor, ...]:
    return tuple(torch.from_numpy(a).to(device, non_blocking=True) for a in batch)


def split_logits(model: nn.Module, split: TokenizedSplit, device: torch.device) -> torch.Tensor:
    """One logit per review of a split, in the split's order, on the CPU; the batches run length-sorted (fast)."""
    model.eval()
    logits = torch.zeros(len(split))
    with torch.no_grad():
        for index in length_bucketed_batches(split.lengths, EVAL_BATCH, shuffle=False, chunk=10**9):
            ids, lengths, _ = _to_device(collate(split, index), device)
            logits[torch.from_numpy(index)] = model(ids, lengths).squeeze(-1).float().cpu()
    return logits


def evaluate_split(model: nn.Module, split: TokenizedSplit, device: torch.device) -> dict[str, float]:
    """Mean BCE loss and accuracy on a split."""
    logits, labels = split_logits(model, split, device), torch.from_numpy(split.labels.astype(np.float32))
    loss = nn.functional.binary_cross_entropy_with_logits(logits.double(), labels.double(), reduction="sum").item()
    correct = ((logits > 0).float() == labels).sum().item()
    return {"loss": loss / len(split), "accuracy": correct / len(split)}


def save_checkpoint(model: nn.Module, config: ExperimentConfig, tokenizer_json: str, folder: Path) -> None:
    """Self-describing folder: weights (safetensors), experiment config, tokenizer."""
    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    save_file(state, str(folder / WEIGHT_FILE), metadata={"task": "imdb"})
    config.to_json(folder / CONFIG_FILE)
    (folder / TOKENIZER_FILE).write_text(tokenizer_json)


def load_checkpoint(
    folder: str | Path, device: torch.device | None = None
) -> tuple[GRUClassifier, ExperimentConfig, str]:
    """Model (eval mode), config and tokenizer JSON from a checkpoint folder; never unpickles."""
    folder = Path(folder)
    missing = [name for name in (WEIGHT_FILE, CONFIG_FILE, TOKENIZER_FILE) if not (folder / name).is_file()]
    if missing:
        raise CheckpointError(f"{folder} is not an IMDB checkpoint: missing {', '.join(missing)}")
    try:
        config = ExperimentConfig.from_json(folder / CONFIG_FILE)
        tokenizer_json = (folder / TOKENIZER_FILE).read_text()
        model = build_model(config, vocab_size(tokenizer_json))
        model.load_state_dict(load_file(str(folder / WEIGHT_FILE)))
    except Exception as error:  # corrupt or foreign files: one clear line, not a tensor traceback
        raise CheckpointError(f"cannot load checkpoint {folder}: {type(error).__name__}: {error}") from None
    return model.to(device or torch.device("cpu")).eval(), config, tokenizer_json


def train_imdb(
    config: ExperimentConfig | dict[str, Any], data: ImdbData, reporter: Reporter | None = None
) -> dict[str, Any]:
    """Train one configuration; reports val loss/accuracy as the reporter asks. Never touches the test split."""
    if isinstance(config, dict):
        config = ExperimentConfig.from_dict(config)
    train, val = cut(data.train, config.max_len), cut(data.val, config.max_len)
    seed_everything(config.seed)
    device = pick_device()
    model = build_model(config, data.vocab_size)
    loss_fn = nn.BCEWithLogitsLoss()
    steps = len(length_bucketed_batches(train.lengths, config.batch_size, shuffle=False))

    def train_batches(epoch: int, start: int):
        rng = np.random.default_rng([config.seed, epoch])  # the same order after a resume in mid-epoch
        for index in length_bucketed_batches(train.lengths, config.batch_size, shuffle=True, rng=rng)[start:]:
            yield _to_device(collate(train, index), device)

    def loss_on_batch(model: nn.Module, batch) -> tuple[torch.Tensor, int]:
        ids, lengths, labels = batch
        return loss_fn(model(ids, lengths).squeeze(-1).float(), labels), len(labels)

    def evaluate(model: nn.Module) -> dict[str, float]:
        result = evaluate_split(model, val, device)
        return {"val_loss": result["loss"], "val_accuracy": result["accuracy"]}

    work = TrainingJob(
        model=model,
        epochs=config.epochs,
        steps_per_epoch=steps,
        train_batches=train_batches,
        loss_on_batch=loss_on_batch,
        evaluate=evaluate,
        save_checkpoint=lambda m, folder: save_checkpoint(m, config, data.tokenizer_json, folder),
        optimizer=config.optimizer,
        optimizer_params=config.optimizer_params,
        lr_schedule=config.lr_schedule,
        grad_clip=config.grad_clip,
        unit="seq",
        fixed=dict(data.settings),
        precision=config.precision,
    )
    return fit(work, reporter, device)
