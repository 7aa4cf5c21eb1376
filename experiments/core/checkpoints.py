"""The checkpoint format, in one place: the files a checkpoint or export folder holds, and how folders are swapped in.

A checkpoint folder holds `experiment_config.json` (the config, with the "task" it belongs to, see
`experiments.core.config`), `metrics.json` (the training loop's record of it: scores, epoch, history; in an export, the
summarizer's record), the task's weights (`Task.weight_file`: `model.safetensors` unless the task declares its
own) and whatever else the task saves (a tokenizer, an image processor); a training checkpoint also holds the
trainer's state, for resuming. An ensemble folder holds one such folder per member (`member_<i>/`, see
`experiments.reporting.ensemble`). Folders and records are staged beside their target and renamed into place, so a
reader never finds one half-written.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

from experiments.core.config import TASK_KEY

CONFIG_FILE = "experiment_config.json"
METRICS_FILE = "metrics.json"
WEIGHT_FILE = "model.safetensors"  # a task's weight file unless it declares another (Task.weight_file)
TRAINER_STATE = "trainer_state.pt"  # optimizer, schedule and RNG, for resuming: never exported
MEMBER_PREFIX = "member_"  # an ensemble's member folders: member_1/, member_2/, …


def read_config(folder: Path, with_task: bool = False) -> dict[str, Any]:
    """A checkpoint's config; without the "task" key it records unless asked for (as a run records its config)."""
    config = json.loads((folder / CONFIG_FILE).read_text())
    return config if with_task else {k: v for k, v in config.items() if k != TASK_KEY}


def read_metrics(folder: Path) -> dict[str, Any]:
    return json.loads((folder / METRICS_FILE).read_text())


def weight_files(folder: Path, weight_file: str = WEIGHT_FILE) -> list[Path]:
    """The weight files in the folder, or in an ensemble's member folders, in path order."""
    return sorted(path for path in [folder / weight_file, *folder.glob(f"{MEMBER_PREFIX}*/{weight_file}")]
                  if path.is_file())


def has_weights(folder: Path, weight_file: str = WEIGHT_FILE) -> bool:
    """Weights in the folder, or in an ensemble's member folders."""
    return bool(weight_files(folder, weight_file))


def validation_of(record: dict[str, Any]) -> str:
    """The validation protocol a record names: an export beside its scores, a run or checkpoint among its data
    settings ("fixed"); "random" for those made before any was recorded."""
    return record.get("validation") or (record.get("fixed") or {}).get("validation", "random")


def recorded_validation(folder: Path) -> str:
    """`validation_of` the metrics.json of an export or checkpoint folder ("random" when it has none)."""
    return validation_of(read_metrics(folder) if (folder / METRICS_FILE).is_file() else {})


def write_text_atomically(path: Path, text: str) -> None:
    """Write a hidden sibling, then rename it over `path`: a reader sees the old file or the new, never half."""
    staging = path.with_name(f".{path.name}.tmp")
    staging.write_text(text)
    staging.replace(path)


def replace_dir_atomically(source: str | os.PathLike, target: str | os.PathLike) -> None:
    """Copy `source` to a temp sibling of `target`, then swap it in, so `target` is never half-written."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.with_name(f".{target.name}.staging")
    retired = target.with_name(f".{target.name}.old")
    shutil.rmtree(staging, ignore_errors=True)
    shutil.copytree(source, staging)
    shutil.rmtree(retired, ignore_errors=True)
    if target.exists():
        os.replace(target, retired)
    os.replace(staging, target)
    shutil.rmtree(retired, ignore_errors=True)
