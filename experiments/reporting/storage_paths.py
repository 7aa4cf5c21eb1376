"""Paths in the search summaries a report keeps (`<export folder>/searches/`): stored relative to the storage root
(`ray_results/`), so a committed record names no folder of the machine that ran the search, and resolved against
this machine's storage root when read back.

A search keeps everything it wrote under `<storage root>/<search name>/`, so a path stored from the search's
folder on reads the same wherever the storage root was: `<search>/refit/run_trial_…/checkpoint_000005`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path, PurePath
from typing import Any, TypeVar

from experiments.core.records import AblationRecord, SearchRecord

R = TypeVar("R", SearchRecord, AblationRecord)

# where a summary names a file or folder: (list field, key in each item); best_checkpoint is a top-level field
PATH_LISTS = (("rows", "path"), ("refit", "checkpoint"), ("plots", "path"))
SQLITE = "sqlite:///"  # an absolute store is sqlite:////abs/mlflow.db; relative to the working directory without
STORES = ("tracking_uri", "optuna_storage")  # the MLflow and Optuna stores the search wrote to
DEFAULT_STORE = "mlruns"  # the searches' default store folder, under the repository root (search.tracking)


def from_folder(path: str | Path, name: str) -> str | None:
    """The part of a path from its folder called `name` on (`<name>/…`; the last such folder where several
    are), None where the path passes through none."""
    parts = PurePath(path).parts
    if name not in parts:
        return None
    last = len(parts) - 1 - parts[::-1].index(name)
    return PurePath(*parts[last:]).as_posix()


def same_search_path(a: str | Path, b: str | Path, search: str) -> bool:
    """Whether two paths name the same file of a search: the same from the search's folder on, wherever each
    machine kept its storage root, or the same path here."""
    left = from_folder(a, search)
    return (left is not None and left == from_folder(b, search)) or Path(a).resolve() == Path(b).resolve()


def relative_path(path: str, storage_root: Path, search: str) -> str:
    """A path as a kept summary stores it: relative to the storage root. An absolute path inside this storage
    root, or one of another machine that passes through the search's folder, becomes `<search>/…`; so does a
    relative one through it (kept summaries once stored `ray_results/<search>/…`, from the working directory);
    any other path is kept (a search writes none)."""
    if PurePath(path).is_absolute() and Path(path).resolve().is_relative_to(storage_root.resolve()):
        path = Path(path).resolve().relative_to(storage_root.resolve()).as_posix()
    return from_folder(path, search) or path


def resolved_path(path: str, storage_root: Path) -> str:
    """A kept path as this machine finds it: relative ones under the storage root, absolute ones as they are."""
    return path if PurePath(path).is_absolute() else str(storage_root.resolve() / path)


def portable_store(uri: str, repository: Path) -> str:
    """`sqlite:////<repository>/mlruns/mlflow.db` → `sqlite:///mlruns/mlflow.db`, relative to the repository
    root (the working directory the commands run from), also for another checkout's default store (its
    `mlruns/` folder); other stores are kept as they are."""
    path = uri.removeprefix(SQLITE)
    if not uri.startswith(SQLITE) or not PurePath(path).is_absolute():
        return uri
    resolved, root = Path(path).resolve(), repository.resolve()
    if resolved.is_relative_to(root):
        return f"{SQLITE}{resolved.relative_to(root).as_posix()}"
    inside = from_folder(path, DEFAULT_STORE)
    return f"{SQLITE}{inside}" if inside else uri


def _with_paths(summary: dict[str, Any], change: Callable[[str], str]) -> dict[str, Any]:
    """A copy of the summary with every path it names passed through `change`."""
    changed = dict(summary)
    if changed.get("best_checkpoint"):
        changed["best_checkpoint"] = change(changed["best_checkpoint"])
    for field, key in PATH_LISTS:
        if changed.get(field):
            changed[field] = [{**item, key: change(item[key])} if isinstance(item, dict) and item.get(key) else item
                              for item in changed[field]]
    return changed


def portable_summary(summary: R, storage_root: Path, repository: Path) -> R:
    """The summary as a report keeps it: paths relative to the storage root, stores relative to the repository."""
    kept = _with_paths(summary.to_dict(), lambda path: relative_path(str(path), storage_root, summary.search))
    for store in STORES:
        if isinstance(kept.get(store), str):
            kept[store] = portable_store(kept[store], repository)
    return type(summary).from_dict(kept)


def resolved_summary(summary: R, storage_root: Path) -> R:
    """A kept summary with its paths under this machine's storage root, as the report's readers use them."""
    return type(summary).from_dict(_with_paths(summary.to_dict(), lambda path: resolved_path(str(path), storage_root)))
