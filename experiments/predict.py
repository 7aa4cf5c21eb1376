"""Classify raw inputs with an exported model: `python -m experiments.predict PATH INPUT…`.

IMDB exports take review strings; ViT/Swin exports take image files. The folder carries everything needed.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from experiments.cli import UsageError, run_cli
from experiments.evaluate import detect_task
from experiments.imdb_trial import CheckpointError


def predict_reviews(folder: Path, texts: list[str]) -> list[tuple[str, float]]:
    from data_pipes.imdb import LABELS, texts_to_batch
    from experiments.imdb_trial import load_checkpoint

    model, _, tokenizer_json = load_checkpoint(folder)
    ids, lengths = texts_to_batch(tokenizer_json, texts)
    with torch.no_grad():
        positive = torch.sigmoid(model(torch.from_numpy(ids), torch.from_numpy(lengths)).squeeze(-1)).tolist()
    return [(LABELS[int(p > 0.5)], p if p > 0.5 else 1 - p) for p in positive]


def predict_images(folder: Path, files: list[str]) -> list[tuple[str, float]]:
    import numpy as np
    from PIL import Image

    from data_pipes.cifar10 import model_input
    from experiments.vision_trial import load_checkpoint
    from models.vision import logits

    model, config = load_checkpoint(folder)
    missing = [f for f in files if not Path(f).is_file()]
    if missing:
        raise UsageError(f"image file(s) not found: {', '.join(missing)}")
    images = np.stack([np.asarray(Image.open(f).convert("RGB").resize((32, 32), Image.BILINEAR)) for f in files])
    with torch.no_grad():
        probabilities = logits(model, model_input(images, torch.device("cpu"), config.image_size)).softmax(-1)
    best = probabilities.max(-1)
    return [(model.config.id2label[int(i)], float(p)) for p, i in zip(best.values, best.indices, strict=True)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m experiments.predict", description=__doc__.split("\n")[0])
    parser.add_argument("path", type=Path, help="an exported model folder")
    parser.add_argument("inputs", nargs="+", help="review texts (IMDB) or image files (CIFAR-10)")
    args = parser.parse_args(argv)
    task = detect_task(args.path)
    predictions = (predict_reviews if task == "imdb" else predict_images)(args.path, args.inputs)
    for text, (label, probability) in zip(args.inputs, predictions, strict=True):
        shown = text if len(text) <= 60 else text[:57] + "..."
        print(f"{label}\t{probability:.3f}\t{shown}")
    return 0


if __name__ == "__main__":
    run_cli(main, extra_errors=(CheckpointError,))
