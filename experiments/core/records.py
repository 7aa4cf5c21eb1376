"""The JSON records of runs, searches and ablations, in one place: their shape (a dataclass each), their schema
version, the one upgrade path for files written by older versions, and the only code that reads or writes them.

- `run.json`, beside a one-config run's best checkpoint (`experiments.runner`): `RunRecord`.
- `search_summary.json`, in a search's folder (`search.engine`), and the copies a report keeps in its export folder
  (`searches/<name>.json`): `SearchRecord`.
- `ablation_summary.json`, in an ablation's folder (`search.ablation`), and the kept copies (`ablations/`):
  `AblationRecord`.

Each file stores `schema` (its version). The keys of a file are the dataclass's fields, as they are, plus the
values whose keys the task names (its metric's: `val_accuracy`, `best_val_rmse`…; its example noun's:
`train_reviews`): those are kept in `by_task` and written back at the top level, so a file reads the same to
anything that reads its JSON. The trial rows, refits and ablation cells inside stay dicts keyed by the task's
metric (what Tune reported). A damaged file is a UsageError that names it.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from experiments.core.checkpoints import write_text_atomically
from experiments.core.cli import command_flag
from experiments.core.errors import UsageError

SCHEMA_VERSION = 2  # 1: the files written before records carried a version (read through `upgrade`)
RUN_FILE = "run.json"
SEARCH_FILE = "search_summary.json"
ABLATION_FILE = "ablation_summary.json"


@dataclass
class Record:
    """What every record shares: its version, and the values under keys the task names."""

    by_task: dict[str, Any] = field(default_factory=dict, kw_only=True)
    schema: int = field(default=SCHEMA_VERSION, kw_only=True)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]):
        """A record from a file's JSON, upgraded to this version first; unknown keys are the task's."""
        raw = upgrade(cls, dict(raw))
        names = {f.name for f in dataclasses.fields(cls)} - {"by_task"}
        return cls(**{k: v for k, v in raw.items() if k in names},
                   by_task={k: v for k, v in raw.items() if k not in names})

    def to_dict(self) -> dict[str, Any]:
        values = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "by_task"}
        return {**values, **self.by_task}


@dataclass
class RunRecord(Record):
    """One configuration trained alone and tested once (`python -m experiments.train`). Its scores are in
    `by_task` under the metric's names (`val_accuracy`, `test_accuracy`, `test_loss`), with `train_<noun>s`."""

    task: str
    config: dict[str, Any]
    best_epoch: float
    epochs_run: float
    train_seconds: float
    wall_seconds: float
    history: list[dict[str, Any]]
    checkpoint: str
    params: int | None = None
    model_cost: dict[str, Any] | None = None
    fixed: dict[str, Any] = field(default_factory=dict)  # the data settings (validation protocol among them)
    data_fingerprint: str | None = None
    class_names: list[str] | None = None
    test_confusion_matrix: list[list[int]] | None = None
    machine: dict[str, Any] = field(default_factory=dict)
    load: dict[str, Any] | None = None  # the machine's load while it trained (experiments.core.machine_load)
    command: str = ""


@dataclass
class SearchRecord(Record):
    """A search: its trials ranked best first, what ended it, its best checkpoint and its refits. Its best score
    is in `by_task` under the metric's best key (`best_val_accuracy`)."""

    search: str
    workload: str
    rows: list[dict[str, Any]] = field(default_factory=list)  # Tune's trials, ranked (search.results)
    finished: bool = True  # the search and its refit have ended
    search_finished: bool = True  # the search phase has ended; the refit may not have
    searcher: str | None = None
    scheduler: str | None = None
    report_every: float | None = None
    subset: int | None = None  # the training examples each trial saw (None: all)
    subset_known: bool = True  # False: an old summary recorded no subset, and the task's default may have been one
    max_epochs: float | None = None
    trials: int = 0
    trial_epochs: float = 0.0
    completed: int = 0
    stopped_early: int = 0
    errored: int = 0
    interrupted: int = 0
    best_trial: str | None = None
    best_checkpoint: str | None = None
    tracking_uri: str | None = None
    command: str = ""  # as first typed; a resume's own command is `resumed_with`
    resumed_with: str | None = None
    machine: dict[str, Any] = field(default_factory=dict)
    load: dict[str, Any] | None = None  # the 1-minute load average when the trials started and when they ended
    wall_seconds: float | None = None
    search_wall_seconds: float | None = None
    refit_wall_seconds: float | None = None
    resumes: int = 0
    time_budget: float | None = None  # minutes the search phase may take (--time-budget or the task's default);
    # None: no limit, or a record older than this field
    stopped_by_time_budget: float | None = None  # minutes, where the budget ended the search phase
    stopped_by_epoch_budget: float | None = None  # trial-epochs, where --epoch-budget ended the search phase
    refit: list[dict[str, Any]] = field(default_factory=list)  # best validation first (search.refit)
    refit_top: int | None = None  # the --refit whose refit has ended
    optuna_storage: str | None = None
    optuna_study: str | None = None
    optuna_trials: int | None = None
    optuna_finished_trials: int | None = None
    importance: dict[str, float] | None = None
    plots: list[dict[str, Any]] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)  # search_args.json, where a reader attached it

    def best_score(self, best_key: str) -> float | None:
        return self.by_task.get(best_key)


@dataclass
class AblationRecord(Record):
    """An ablation: one factor at a time around a base, each level over seeds, every run tested once."""

    search: str
    workload: str
    base: str
    seeds: int
    epochs: float
    runs: int
    rows: list[dict[str, Any]] = field(default_factory=list)  # one per run, its scores under the metric's names
    cells: list[dict[str, Any]] = field(default_factory=list)  # one per level (search.ablation.aggregate)
    kind: str = "ablation"
    reused: int = 0  # runs taken from earlier ablations with the same data
    subset: int | None = None
    train_size: int | None = None
    data_fingerprint: str | None = None
    finished: bool = False
    wall_seconds: float | None = None
    resumes: int = 0
    command: str = ""
    machine: dict[str, Any] = field(default_factory=dict)
    load: dict[str, Any] | None = None


def upgrade(kind: type[Record], raw: dict[str, Any]) -> dict[str, Any]:
    """A file's JSON brought to SCHEMA_VERSION, one version at a time; a file of a newer version is refused."""
    version = raw.get("schema", 1)
    if not isinstance(version, int) or version > SCHEMA_VERSION:
        raise UsageError(f"a {kind.__name__} of schema {version!r}: this version of tunelab reads up to "
                         f"{SCHEMA_VERSION}; update it")
    if version < 2 and kind is SearchRecord:
        # version 1 summaries may lack what the command line they record says: the trials' fidelity
        raw.setdefault("finished", True)
        command = raw.get("command", "")
        if "subset" not in raw:  # a subset left to the task's default is not in the command: then it is unknown
            flag = command_flag(command, "--subset")
            raw["subset"], raw["subset_known"] = (int(flag), True) if flag else (None, False)
        if raw.get("max_epochs") is None:
            flag = command_flag(command, "--max-epochs")
            epochs = [r.get("params", {}).get("epochs", 0) for r in raw.get("rows", [])]
            raw["max_epochs"] = float(flag) if flag else (max(epochs, default=0) or None)
    raw["schema"] = SCHEMA_VERSION
    return raw


def read_json(path: Path) -> Any:
    """A JSON file the runs, searches or exports wrote; a damaged one is a UsageError that names it."""
    try:
        return json.loads(Path(path).read_text())
    except ValueError as error:  # not JSON, or not text at all
        raise UsageError(f"{path} is not valid JSON ({error}): restore it or remove its folder") from None


def read_record(path: Path, kind: type[Record]):
    """The record a file holds, upgraded to this version."""
    raw = read_json(path)
    try:
        return kind.from_dict(raw)
    except TypeError as error:  # a required field missing, or not a record at all
        raise UsageError(f"{path} is not a {kind.__name__} ({error})") from None


def write_record(path: Path, record: Record) -> None:
    """The record as JSON, replaced atomically: a reader finds the old file or the new one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomically(path, json.dumps(record.to_dict(), indent=1, default=str) + "\n")
