"""The registry: one line per built-in task. A task elsewhere (a test's, a user's) is named by its module path.

`get_task("imdb")` imports `experiments.tasks.imdb.task` and returns its `TASK`; `get_task("my_pkg.my_task")` does
the same for any importable module defining `TASK`. Checkpoint configs record this key, so `evaluate` and
`predict` find the task from the folder alone.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path

from experiments.core.checkpoints import CONFIG_FILE
from experiments.core.errors import CheckpointError, UsageError
from experiments.core.task import Task

TASKS = {
    "imdb": "experiments.tasks.imdb.task",
    "cifar": "experiments.tasks.cifar.task",
    "digits": "experiments.tasks.digits.task",  # a cheap MLP workload for search benchmarks
}


def get_task(key: str) -> Task:
    """A built-in task by name, or any module defining `TASK` by its dotted path."""
    module_name = TASKS.get(key, key)
    if key not in TASKS and "." not in key:
        raise UsageError(f"unknown task {key!r}; tasks: {', '.join(TASKS)} (or a module path defining TASK)")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        raise UsageError(f"cannot import task module {module_name!r}: {error}") from None
    task = getattr(module, "TASK", None)
    if not isinstance(task, Task):
        raise UsageError(f"module {module_name!r} defines no TASK")
    return task


def task_of_checkpoint(folder: Path) -> Task:
    """The task named by the folder's own experiment_config.json."""
    if not folder.is_dir():
        raise CheckpointError(f"checkpoint folder not found: {folder}")
    config_file = folder / CONFIG_FILE
    if not config_file.is_file():
        raise CheckpointError(f"{folder} is not a tunelab checkpoint: no {CONFIG_FILE}")
    try:
        key = json.loads(config_file.read_text()).get("task")
    except (ValueError, AttributeError):
        raise CheckpointError(f"{config_file} is not a JSON object") from None
    if not key:
        raise CheckpointError(f"{config_file} names no task (written before tunelab recorded it): "
                              f"add \"task\": one of {', '.join(TASKS)}")
    try:
        return get_task(key)
    except UsageError as error:
        raise CheckpointError(f"{folder}: {error}") from None


def require_task(folders: list[Path], key: str) -> None:
    """Refuse, before any data is loaded, a folder that is not a checkpoint of task `key`."""
    for folder in folders:
        found = task_of_checkpoint(folder).key
        if found != key:
            raise CheckpointError(f"{folder} is a checkpoint of task {found}, not {key}")
