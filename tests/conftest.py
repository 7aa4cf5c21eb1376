"""Tiny generated datasets in the hub's parquet layout, and an isolated cache/store per test session."""

from __future__ import annotations

import contextlib
import functools
import io
import os
import random
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

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


COLORS = np.array(
    [[230, 25, 25], [25, 230, 25], [25, 25, 230], [230, 230, 25], [230, 25, 230],
     [25, 230, 230], [240, 240, 240], [128, 128, 128], [230, 128, 25], [15, 15, 15]],
    dtype=np.int16,
)


def png(label: int, rng: np.random.Generator) -> bytes:
    """A 32×32 image of the label's colour plus noise: a tiny model learns the classes in an epoch."""
    pixels = np.clip(COLORS[label] + rng.integers(-20, 21, size=(32, 32, 3)), 0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def write_cifar(root: Path, train_per_class: int = 40, test_per_class: int = 6) -> Path:
    """A tiny CIFAR-10 in the hub layout (`img` structs with PNG bytes, `label`)."""
    (root / "plain_text").mkdir(parents=True, exist_ok=True)
    for name, per_class, seed in (("train", train_per_class, 1), ("test", test_per_class, 2)):
        rng = np.random.default_rng(seed)
        labels = rng.permutation(np.repeat(np.arange(10), per_class))
        images = [{"bytes": png(int(y), rng), "path": None} for y in labels]
        frame = pd.DataFrame({"img": images, "label": labels})
        frame.to_parquet(root / "plain_text" / f"{name}-00000-of-00001.parquet")
    return root


@pytest.fixture(scope="session")
def cifar_dir(tmp_path_factory) -> Path:
    return write_cifar(tmp_path_factory.mktemp("cifar10"))


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path_factory, monkeypatch):
    """Every test session gets its own prepared-data cache; the user's ~/.cache is never touched."""
    monkeypatch.setenv("TUNELAB_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))


@pytest.fixture(scope="session")
def imdb_dir(tmp_path_factory) -> Path:
    return write_imdb(tmp_path_factory.mktemp("imdb"))


@functools.cache
def mlflow_client(db: Path):
    """A client on a search's store, opened under the engine's first-use lock: a test that polls a store the
    search is still creating would otherwise run the schema migration beside it, and one of them dies in alembic."""
    from search.tracking import open_store

    return open_store(f"sqlite:///{db}")


def descendants(pid: int) -> list[int]:
    """Every process below `pid`, read from /proc (Ray's workers leave the driver's process group)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        below = children.get(todo.pop(), [])
        found += below
        todo += below
    return found
