"""IMDB sentiment with a multi-layer GRU trained from scratch (assignment 2-1-2): the task definition.

The pieces live beside it: data in `data_pipes.imdb`, the network in `models.gru_classifier`, the config and
presets in `experiments.tasks.imdb.config`, training and checkpoints in `experiments.tasks.imdb.trial`.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from data_pipes.imdb import LABELS, MAX_LEN, VALIDATION
from experiments.core.space import Param, SearchSpace
from experiments.core.task import Task
from experiments.tasks.imdb.report import EXPORT_FOLDER, TEST_REVIEWS, comparison


def load_data(data_dir: str | None, subset: int | None, seed: int):
    from data_pipes import imdb

    return imdb.load(data_dir, subset=subset, seed=seed)


def fixed_params(data) -> dict[str, Any]:
    """Not searched, but recorded on every trial: the project tokenizer, max length and the data used."""
    return {
        **{f"fixed.{k}": v for k, v in data.settings.items()},
        "data.fingerprint": data.fingerprint,
        "data.train_size": len(data.train),
        "data.val_size": len(data.val),
    }


def presets():
    from experiments.tasks.imdb.config import IMDB_PRESETS

    return IMDB_PRESETS


def resolve(args: argparse.Namespace):
    from experiments.tasks.imdb.config import resolve_imdb_config

    return resolve_imdb_config(args.config or "gru2_maxmean")


def trial(config: dict[str, Any], data, reporter) -> dict[str, Any]:
    from experiments.tasks.imdb.trial import train_imdb

    return train_imdb(config, data, reporter)


def evaluate_checkpoint(folder: Path, data, device) -> dict[str, Any]:
    from data_pipes.imdb import cut, encoded_test_split
    from experiments.tasks.imdb.trial import evaluate_split, load_checkpoint

    model, config, tokenizer_json = load_checkpoint(folder, device)
    result = evaluate_split(model, cut(encoded_test_split(data, tokenizer_json), config.max_len), device)
    return {**result, "params": sum(p.numel() for p in model.parameters())}


PREDICT_BATCH = 256  # reviews per forward pass: thousands at once would hold gigabytes of GRU activations


def split_probabilities(folder: Path, data, split: str, device) -> tuple[Any, Any]:
    """[P(neg), P(pos)] of every review of the validation or test split, and the labels. Validation needs the
    data's own tokenizer: a checkpoint trained on another split was validated on other reviews."""
    import numpy as np
    import torch

    from data_pipes.imdb import cut, encoded_test_split
    from experiments.core.errors import CheckpointError
    from experiments.tasks.imdb.trial import load_checkpoint, split_logits

    model, config, tokenizer_json = load_checkpoint(folder, device)
    if split == "test":
        reviews = encoded_test_split(data, tokenizer_json)
    elif tokenizer_json == data.tokenizer_json:
        reviews = data.val
    else:
        raise CheckpointError(f"{folder} was trained on another validation split (its tokenizer differs)")
    reviews = cut(reviews, config.max_len)
    positive = torch.sigmoid(split_logits(model, reviews, device)).double().numpy()
    return np.stack([1 - positive, positive], axis=1), reviews.labels.astype(np.int64)


def input_probabilities(folder: Path, texts: Sequence[str]):
    """[P(neg), P(pos)] per raw review."""
    import numpy as np
    import torch

    from data_pipes.imdb import texts_to_batch
    from experiments.tasks.imdb.trial import load_checkpoint

    model, config, tokenizer_json = load_checkpoint(folder)  # once; the texts go through in batches of PREDICT_BATCH
    texts, positive = list(texts), []
    for start in range(0, len(texts), PREDICT_BATCH):
        ids, lengths = texts_to_batch(tokenizer_json, texts[start:start + PREDICT_BATCH], config.max_len)
        with torch.no_grad():
            positive += torch.sigmoid(model(torch.from_numpy(ids), torch.from_numpy(lengths)).squeeze(-1)).tolist()
    positive = np.array(positive, dtype=np.float64)
    return np.stack([1 - positive, positive], axis=1)


def predict(folder: Path, texts: Sequence[str]) -> list[tuple[str, float]]:
    return [(LABELS[int(p[1] > 0.5)], float(max(p))) for p in input_probabilities(folder, texts)]


BEHAVIOUR_SETS = Path(__file__).with_name("behaviour.json")  # the report's CheckList section; never selects models


def behaviour():
    """Short reviews written for this project, per capability: plain, negation, short texts, a verdict after a
    contrast."""
    from experiments.core.behaviour import read_behaviour_sets

    return read_behaviour_sets(BEHAVIOUR_SETS, LABELS)


def serving_example() -> tuple[str, list[str]]:
    """Raw review text is the served model's input: tokenizer and head+tail truncation travel with it."""
    return "text", ["A moving, beautifully acted film; I loved every minute.", "Dull, predictable and far too long."]


# Searched models read 800 tokens, not the 400 of the presets: the 17 % of test reviews longer than 400 score 1.9
# points under the rest (88.0 against 89.9 % for search_imdb-40-blocks), and the same model reading them to 800
# tokens scores 89.2 % on them (89.75 % on all); 800 keep 96.8 % of reviews whole for 14 % more tokens per epoch.
SEARCH_MAX_LEN = 800


def space(args: argparse.Namespace) -> SearchSpace:
    """The GRU knobs users tune by hand, over the region where full training ends well.

    The bounds are read from the validation scores of full-budget trainings (`imdb_fidelity.json`: all training
    reviews, 4 epochs, 10 configurations): one layer with max+mean pooling ends highest, 88.3–88.8 %, one layer
    with mean pooling 86.8–87.1 %, two layers 87.5 %, three 86.9 %, and the fast learners of the old space (mean
    pooling, lr 4.7e-3, 2 layers) overfit after 1–2 epochs, 86.0 %. A second layer also doubles a trial's cost.
    So: one layer, max or max+mean pooling, AdamW (decoupled weight decay), and the regularisers a person rarely
    tunes together, dropout and word dropout. Depth is an ablation's question (`--ablate BASE --vary
    num_layers=1,2,3`). Search `imdb-20261206-073728` (9 full-data trials over dropout 0.2–0.6, word dropout
    0–0.3, lr 1e-3–4e-3) narrowed three bounds: its trials at dropout >= 0.45 or lr <= 1.0e-3 were still at
    78–80 % after 2 epochs and were stopped, its best three had dropout 0.24–0.31, and two trials that differ
    mainly in word dropout (0.06 against 0.29) ended at 87.3 against 86.4 %.
    """
    return SearchSpace(
        params=[
            Param("lr", "loguniform", 1.5e-3, 4e-3),
            # batch 32 trains at ~45 reviews/s on one thread, half the speed of 64 (measured), and no preset needs it
            Param("batch_size", "choice", choices=(64, 128)),
            Param("is_bidirectional", "choice", choices=(False, True)),
            Param("dropout", "uniform", 0.2, 0.45),
            Param("embed_dropout", "uniform", 0.0, 0.15),
            Param("embed_dim", "choice", choices=(128, 192, 256)),
            Param("hidden_dim", "choice", choices=(128, 192, 256)),
            Param("pooling", "choice", choices=("max", "maxmean")),
            Param("weight_decay", "loguniform", 1e-3, 1e-1),
        ],
        # "auto" trains under bf16 autocast where the CPU computes it (experiments.core.training.cpu_computes_bf16):
        # there it trains bigru1_wide_dropout 1.36x as fast as fp32 on a 2-core AMD EPYC (imdb_precision.json) and
        # ends at the same validation accuracy, 0.8875 at 4 full-data epochs (imdb_precision_parity.json against
        # the fidelity study's fp32 run); on other CPUs bf16 is not measured, so trials keep fp32
        constants={"epochs": args.max_epochs, "seed": args.seed, "num_layers": 1, "optimizer": "AdamW",
                   "lr_schedule": "onecycle", "grad_clip": 1.0, "max_len": SEARCH_MAX_LEN, "precision": "auto"},
    )


def describe_sample(config: dict[str, Any], args: argparse.Namespace) -> str:
    """One line for the dry run: the sampled knobs and the model's size."""
    from experiments.tasks.imdb.config import ExperimentConfig
    from experiments.tasks.imdb.trial import build_model

    params = sum(p.numel() for p in build_model(ExperimentConfig.from_dict(config)).parameters())
    knobs = ", ".join(
        f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in sorted(config.items())
        if k not in ("epochs", "seed")
    )
    return f"{params / 1e6:.2f} M params — {knobs}"


def _lr(config: dict[str, Any]) -> Any:
    return config.get("lr", (config.get("optimizer_params") or {}).get("lr"))


TASK = Task(
    name="imdb",
    title="IMDB sentiment — multi-layer GRU from scratch (assignment 2-1-2)",
    export_folder=EXPORT_FOLDER,
    targets=(0.88, 0.90),
    unit="seq",
    example_noun="review",
    load_data=load_data,
    fixed_params=fixed_params,
    presets=presets,
    default_config="gru2_maxmean",
    resolve_config=resolve,
    trial=trial,
    evaluate_checkpoint=evaluate_checkpoint,
    predict=predict,
    labels=LABELS,
    split_probabilities=split_probabilities,
    input_probabilities=input_probabilities,
    space=space,
    describe_sample=describe_sample,
    validation=VALIDATION,
    test_examples=TEST_REVIEWS,
    serving_example=serving_example,
    requirements=("torch", "safetensors", "tokenizers"),
    # The main job ranks on the refit's own budget, cut short: every trial trains on all 22,600 training reviews
    # under the 4-epoch one-cycle schedule, and ASHA's one rung, at 2 epochs, lets the best third finish. The
    # fidelity study (`python -m experiments.benchmarks.imdb_fidelity collect`, record imdb_fidelity.json, 10
    # configurations) found no cheaper score that ranks configurations like their 4-epoch validation: the old
    # proxy (5,000 reviews × 2 epochs) ranked them with Spearman -0.24 at its rung, full data after 1 epoch +0.31,
    # after 1.5 epochs +0.28; from 1.75 epochs on +0.67 to +0.92 (at 2: +0.67 [0.21, 0.92]). A trial that finishes
    # is a full-budget training, so nothing is refit (`--refit 1` still trains the winner again with a fresh
    # seed). The budget affords 7 to 9 trials on 2 cores (9 in 52 minutes in search `imdb-20261206-073728`, 7 in
    # 57 minutes in `imdb-20261206-101911`, whose bidirectional draws train slower), so TPE models once 4 trials
    # have finished: its default of 10 random trials would leave it none to guide.
    search_defaults={"max_epochs": 4, "report_every": 0.5, "grace_period": 2, "reduction_factor": 3,
                     "refit": 0, "refit_epochs": 4, "time_budget": 57, "startup_trials": 4},
    family=lambda config: "gru",
    columns=(
        ("layers", lambda c: c.get("num_layers")), ("hidden", lambda c: c.get("hidden_dim")),
        ("embed", lambda c: c.get("embed_dim")), ("bidir", lambda c: c.get("is_bidirectional")),
        ("dropout", lambda c: c.get("dropout")), ("pooling", lambda c: c.get("pooling")),
        ("batch", lambda c: c.get("batch_size")), ("lr", _lr),
        ("reads", lambda c: c.get("max_len", MAX_LEN)),  # tokens per review; configs before the field read 400
    ),
    comparison=comparison,
    behaviour=behaviour,
    attachments=("search_efficiency", "imdb_fidelity"),
)
