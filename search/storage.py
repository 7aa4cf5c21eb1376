"""Where a search lives and what it keeps there: the storage root, the search's name, its summary and the
settings it was started with — what a resumed search reads back to know where it stopped.

A search folder (`<storage root>/<name>/`) holds Tune's experiment state and trials, `search_args.json` (the
settings, written once when the search starts), `search_summary.json` (rewritten at each phase's end),
`wall.json` (`search.runtime.WallClock`) and, once a refit starts, the refit's own grid (`refit/`). On remote
storage (`s3://…`) none of these files is kept but Tune's: a resume there starts from Tune's state alone.
"""

from __future__ import annotations

import argparse
import json
from datetime import datetime
from pathlib import Path
from typing import Any

from experiments.core.checkpoints import write_text_atomically
from experiments.core.cli import UsageError
from experiments.core.records import SEARCH_FILE, Record, SearchRecord, read_record, write_record
from experiments.core.task import Task


def storage_root(args: argparse.Namespace) -> str:
    """The folder (or remote URI) that holds every search: --storage-path, else ./ray_results, made absolute."""
    if args.storage_path is None:
        return str(Path("ray_results").resolve())
    return args.storage_path if "://" in args.storage_path else str(Path(args.storage_path).resolve())


def resolve_name(task: Task, args: argparse.Namespace, root: str) -> str:
    """--name; with --resume alone, the task's latest search under `root`; else a new name stamped with the time."""
    if args.name:
        return args.name
    if args.resume:
        if "://" in root or not Path(root).is_dir():
            raise UsageError("--resume without --name needs a local --storage-path holding earlier searches")
        earlier = sorted(
            (p for p in Path(root).iterdir() if p.is_dir() and p.name.startswith(f"{task.name}-")),
            key=lambda p: p.stat().st_mtime,
        )
        if not earlier:
            raise UsageError(f"--resume: no earlier {task.name} search under {root}")
        return earlier[-1].name
    return f"{task.name}-{datetime.now():%Y%m%d-%H%M%S}"


def read_summary(experiment_path: str, kind: type[Record] = SearchRecord, file: str = SEARCH_FILE) -> Any:
    """The record an earlier run of this search (or ablation) left; None for a new one or on remote storage."""
    path = Path(experiment_path) / file
    return read_record(path, kind) if "://" not in experiment_path and path.is_file() else None


def write_summary(experiment_path: str, record: Record, file: str = SEARCH_FILE) -> None:
    """The search's (or ablation's) record, replaced atomically: the summarizer and a resumed run read it."""
    if "://" not in experiment_path:
        write_record(Path(experiment_path) / file, record)


def settings_path(experiment_path: str) -> Path | None:
    """Where a search keeps the settings it was started with; None on remote storage."""
    return None if "://" in experiment_path else Path(experiment_path) / "search_args.json"


def saved_settings(experiment_path: str) -> dict[str, Any]:
    """The settings a search was started with; empty when remote or never saved."""
    settings_file = settings_path(experiment_path)
    return json.loads(settings_file.read_text()) if settings_file is not None and settings_file.is_file() else {}


def save_settings(experiment_path: str, settings: dict[str, Any]) -> None:
    """Keep the settings a search is started with (and a grown --refit), for its resumes."""
    settings_file = settings_path(experiment_path)
    if settings_file is not None:
        settings_file.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomically(settings_file, json.dumps(settings, indent=1, default=str) + "\n")


def refits_done(summary: SearchRecord | None, saved: dict[str, Any]) -> int:
    """The --refit whose refit ran to its end (0: none yet); summaries from before `refit_top` was kept say it
    by being finished."""
    if not summary:
        return 0
    if summary.refit_top is not None:
        return int(summary.refit_top)
    return int(saved.get("refit", 0)) if summary.finished and summary.refit else 0


def setting_conflicts(saved: dict[str, Any], wanted: dict[str, Any]) -> list[tuple[str, Any, Any]]:
    """(setting, value it was started with, value wanted now) for each wanted setting that differs."""
    return [(k, saved[k], wanted[k]) for k in sorted(wanted) if k in saved and saved[k] != wanted[k]]

