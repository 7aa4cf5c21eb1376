"""What every data pipe shares: where data comes from (hub or a local copy), cache keys, clear errors."""

from __future__ import annotations

import glob
import hashlib
import json
import os
import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from data_pipes.errors import DataSourceError


def progress(message: str) -> None:
    """Say what data preparation is doing; goes to stderr so piped results stay clean."""
    print(f"[data] {message}", file=sys.stderr, flush=True)


def cache_root() -> Path:
    """Disk cache for prepared arrays; `TUNELAB_CACHE` moves it (tests point it at a temp dir)."""
    root = Path(os.environ.get("TUNELAB_CACHE", Path.home() / ".cache" / "tunelab"))
    root.mkdir(parents=True, exist_ok=True)
    return root


def cache_key(*parts: object) -> str:
    """A short stable hash of everything that changes the prepared arrays."""
    blob = json.dumps(parts, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def set_offline() -> None:
    """A local copy is being used: never let `datasets`/`transformers` wait on the hub."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["HF_DATASETS_OFFLINE"] = "1"


def hub_reachable(host: str = "huggingface.co", timeout: float = 3.0) -> bool:
    """A fast probe, so a machine without network fails in seconds instead of a 23 s retry loop."""
    if os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false", "False"):
        return False
    try:
        with socket.create_connection((host, 443), timeout=timeout):
            return True
    except OSError:
        return False


def local_split_files(data_dir: str | os.PathLike, split: str) -> list[str]:
    """Parquet files of one split in a copy laid out like the hub repo (`plain_text/<split>-*.parquet`)."""
    root = Path(data_dir).expanduser()
    if not root.is_dir():
        raise DataSourceError(f"data dir not found: {root}")
    for pattern in (f"plain_text/{split}-*.parquet", f"*/{split}-*.parquet", f"{split}-*.parquet"):
        files = sorted(glob.glob(str(root / pattern)))
        if files:
            return files
    raise DataSourceError(f"no '{split}' parquet files under {root} (expected plain_text/{split}-*.parquet)")


def files_fingerprint(files: list[str]) -> str:
    """Identity of a local copy: names, sizes and modification times (cheap, changes when files do)."""
    stats = [(Path(f).name, os.stat(f).st_size, os.stat(f).st_mtime_ns) for f in files]
    return cache_key(stats)


def load_splits(
    data_dir: str | None, hub_name: str, splits: tuple[str, ...]
) -> tuple[dict[str, pd.DataFrame], str]:
    """Read the named splits from `data_dir` (hub layout) or from the hub; returns frames and a fingerprint."""
    if data_dir is not None:
        set_offline()
        files = {split: local_split_files(data_dir, split) for split in splits}
        frames = {split: pd.concat([pd.read_parquet(f) for f in fs], ignore_index=True) for split, fs in files.items()}
        fingerprint = files_fingerprint([f for fs in files.values() for f in fs])
    else:
        if not hub_reachable():
            raise DataSourceError(
                f"cannot reach the Hugging Face hub to download {hub_name}: pass --data-dir pointing at a local copy"
            )
        import datasets

        dataset = datasets.load_dataset(hub_name)
        frames = {split: dataset[split].to_pandas() for split in splits}
        fingerprint = cache_key([dataset[split]._fingerprint for split in splits])
    for split, frame in frames.items():
        if len(frame) == 0:
            raise DataSourceError(f"the '{split}' split of {data_dir or hub_name} is empty")
    return frames, fingerprint


def stratified_split(labels: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded stratified split of indices: (keep, held_out), with `fraction` of every class held out."""
    rng = np.random.default_rng(seed)
    keep, held = [], []
    for label in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == label))
        n_held = int(round(len(idx) * fraction))
        held.append(idx[:n_held])
        keep.append(idx[n_held:])
    return rng.permutation(np.concatenate(keep)), rng.permutation(np.concatenate(held))


def blocked_split(
    labels: np.ndarray, fraction: float, seed: int, block: int, min_blocks: int = 20
) -> tuple[np.ndarray, np.ndarray]:
    """Seeded split that holds out whole runs of adjacent rows: (keep, held_out), `fraction` of each class.

    For data whose rows come grouped (IMDB keeps a movie's reviews in adjacent rows): each class's rows, in file
    order, are cut into blocks of `block` rows (smaller where a class has fewer than `min_blocks` blocks, so tiny
    data still splits) and whole blocks are held out, so a group lands on one side but at a block edge.
    """
    rng = np.random.default_rng(seed)
    keep, held = [], []
    for label in np.unique(labels):
        rows = np.flatnonzero(labels == label)
        size = max(1, min(block, len(rows) // min_blocks))
        blocks = [rows[i:i + size] for i in range(0, len(rows), size)]
        n_held = min(max(1, int(round(len(blocks) * fraction))), len(blocks) - 1) if len(blocks) > 1 else 0
        chosen = set(rng.permutation(len(blocks))[:n_held].tolist())
        held += [b for i, b in enumerate(blocks) if i in chosen]
        keep += [b for i, b in enumerate(blocks) if i not in chosen]
    empty = [np.zeros(0, dtype=np.int64)]  # a class of one row holds nothing out
    return rng.permutation(np.concatenate(keep + empty)), rng.permutation(np.concatenate(held + empty))


def stratified_subset(labels: np.ndarray, n: int, seed: int) -> np.ndarray:
    """Seeded, class-balanced choice of `n` indices (for quick runs on part of the training split)."""
    if n >= len(labels):
        return np.arange(len(labels))
    _, chosen = stratified_split(labels, n / len(labels), seed)
    return np.sort(chosen)


def save_npz_atomic(path: Path, **arrays: np.ndarray) -> None:
    """Write a cache file through a temp name so a killed process never leaves a half-written cache. The name is
    the process's own: trials that start at once on a fresh machine each fill the cache, and the last rename wins
    (the files are identical)."""
    tmp = path.with_suffix(f".{os.getpid()}.tmp.npz")
    np.savez(tmp, **arrays)
    os.replace(tmp, path)


def check_load_args(data_dir: str | None, subset: int | None, unit: str) -> None:
    """What every `load` refuses before touching any file: a tiny subset, a missing data dir."""
    if subset is not None and subset < 2:
        raise DataSourceError(f"--subset must be at least 2 {unit}, got {subset}")
    if data_dir is not None and not Path(data_dir).expanduser().is_dir():
        raise DataSourceError(f"data dir not found: {data_dir}")


def prepared_arrays(
    name: str,
    label: str,
    data_dir: str | None,
    hub_name: str,
    splits: tuple[str, ...],
    key_of: Callable[[str], str],
    prepare: Callable[[dict[str, pd.DataFrame]], dict[str, np.ndarray]],
) -> tuple[dict[str, np.ndarray], str]:
    """The one load skeleton: prepared arrays from the disk cache, else read the splits, `prepare`, cache.

    `key_of(source fingerprint)` names the cache entry. A local copy is fingerprinted from file stats alone,
    so a cache hit never reads the parquet files; the hub's fingerprint needs the download first. `label`
    ("IMDB: token ids") says what is prepared in progress lines.
    Returns the arrays and their cache key.
    """
    local = files_fingerprint([f for s in splits for f in local_split_files(data_dir, s)]) if data_dir else None
    frames = None
    if local is None:
        frames, hub = load_splits(data_dir, hub_name, splits)
    key = key_of(local or hub)
    path = cache_root() / f"{name}-{key}.npz"
    if path.exists():
        progress(f"{label} from cache {path}")
        with np.load(path) as cached:
            return dict(cached), key
    if frames is None:
        frames, _ = load_splits(data_dir, hub_name, splits)
    start = time.perf_counter()
    arrays = prepare(frames)
    save_npz_atomic(path, **arrays)
    progress(f"{label} prepared in {time.perf_counter() - start:.1f}s, cached at {path}")
    return arrays, key
