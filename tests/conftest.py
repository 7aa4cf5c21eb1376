"""Tiny generated datasets in the hub's parquet layout, and an isolated cache/store per test session."""

from __future__ import annotations

import os
import random
from pathlib import Path

import pandas as pd
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

POSITIVE = ["great", "wonderful", "loved", "brilliant", "superb"]
NEGATIVE = ["awful", "boring", "hated", "terrible", "dull"]
FILLER = ["the", "movie", "plot", "actor", "scene", "film", "story", "was", "and", "a", "it", "this"]


def tiny_reviews(n: int, seed: int) -> pd.DataFrame:
    """Reviews whose label is given by a few sentiment words among filler; lengths vary a lot."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        label = i % 2
        words = [rng.choice(FILLER) for _ in range(rng.randint(3, 40))]
        for _ in range(rng.randint(1, 3)):
            words.insert(rng.randrange(len(words) + 1), rng.choice(POSITIVE if label else NEGATIVE))
        rows.append({"text": " ".join(words) + (" <br /><br />end" if rng.random() < 0.3 else ""), "label": label})
    return pd.DataFrame(rows).sort_values("label", kind="stable").reset_index(drop=True)


def write_imdb(root: Path, n_train: int = 400, n_test: int = 200) -> Path:
    folder = root / "plain_text"
    folder.mkdir(parents=True, exist_ok=True)
    tiny_reviews(n_train, 1).to_parquet(folder / "train-00000-of-00001.parquet")
    tiny_reviews(n_test, 2).to_parquet(folder / "test-00000-of-00001.parquet")
    return root


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path_factory, monkeypatch):
    """Every test session gets its own prepared-data cache; the user's ~/.cache is never touched."""
    monkeypatch.setenv("TUNELAB_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))


@pytest.fixture(scope="session")
def imdb_dir(tmp_path_factory) -> Path:
    return write_imdb(tmp_path_factory.mktemp("imdb"))
