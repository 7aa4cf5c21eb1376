"""The records module owns run, search and ablation records: what it writes reads back the same, files of an older
schema are upgraded on read, a newer or damaged one is refused by name, and no other module names their files."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from experiments.core.errors import UsageError
from experiments.core.records import (
    SCHEMA_VERSION,
    AblationRecord,
    RunRecord,
    SearchRecord,
    read_record,
    write_record,
)

ROOT = Path(__file__).resolve().parents[1]


def test_a_record_reads_back_as_written_with_the_tasks_own_keys_at_the_top(tmp_path):
    record = SearchRecord(search="s", workload="imdb", trials=3, rows=[{"trial_id": "a", "best_val_accuracy": 0.8}],
                          by_task={"best_val_accuracy": 0.8})
    write_record(tmp_path / "s.json", record)
    raw = json.loads((tmp_path / "s.json").read_text())
    assert raw["schema"] == SCHEMA_VERSION and raw["best_val_accuracy"] == 0.8 and "by_task" not in raw
    assert read_record(tmp_path / "s.json", SearchRecord) == record
    assert not list(tmp_path.glob(".*.tmp")), "the staging file is renamed into place"


def test_an_older_search_summary_is_upgraded_from_its_command_and_rows(tmp_path):
    older = {"search": "old", "workload": "imdb", "command": "python -m search.imdb --subset 5000",
             "rows": [{"params": {"epochs": 2}}], "best_val_accuracy": 0.7}  # schema 1: no version, no fidelity
    (tmp_path / "old.json").write_text(json.dumps(older))
    record = read_record(tmp_path / "old.json", SearchRecord)
    assert (record.subset, record.subset_known, record.max_epochs, record.finished) == (5000, True, 2, True)
    assert record.schema == SCHEMA_VERSION and record.best_score("best_val_accuracy") == 0.7
    default = SearchRecord.from_dict({**older, "command": "python -m search.imdb"})
    assert (default.subset, default.subset_known) == (None, False), "a task's default subset is not in the command"


def test_a_newer_damaged_or_foreign_file_is_refused_by_name(tmp_path):
    (tmp_path / "new.json").write_text(json.dumps({"schema": SCHEMA_VERSION + 1, "search": "s", "workload": "w"}))
    with pytest.raises(UsageError, match="schema"):
        read_record(tmp_path / "new.json", SearchRecord)
    (tmp_path / "bad.json").write_text("{ not json")
    with pytest.raises(UsageError, match="bad.json is not valid JSON"):
        read_record(tmp_path / "bad.json", AblationRecord)
    (tmp_path / "run.json").write_text(json.dumps({"task": "imdb"}))
    with pytest.raises(UsageError, match="run.json is not a RunRecord"):
        read_record(tmp_path / "run.json", RunRecord)


def test_every_kept_record_in_the_repository_reads_and_writes_back_unchanged(tmp_path):
    """The searches and ablations the reports keep: the upgrade path adds fields, it changes no recorded value."""
    kept = [(path, SearchRecord) for path in ROOT.glob("model_checkpoints/*/searches/*.json")]
    kept += [(path, AblationRecord) for path in ROOT.glob("model_checkpoints/*/ablations/*.json")]
    assert kept
    for path, kind in kept:
        raw = json.loads(path.read_text())
        write_record(tmp_path / "back.json", read_record(path, kind))
        back = json.loads((tmp_path / "back.json").read_text())
        assert {k: back[k] for k in raw if k != "schema"} == {k: v for k, v in raw.items() if k != "schema"}, path


def test_no_other_module_names_a_record_file():
    """Files are found through the records module's names (RUN_FILE, SEARCH_FILE, ABLATION_FILE)."""
    literal = re.compile(r"""["'](?:run|search_summary|ablation_summary)\.json["']""")
    named = [f"{path.relative_to(ROOT)}:{n}" for folder in ("search", "experiments")
             for path in sorted((ROOT / folder).rglob("*.py")) if path.name != "records.py"
             for n, line in enumerate(path.read_text().splitlines(), 1) if literal.search(line)]
    assert not named, named


def test_a_recorded_flag_is_read_whole_in_either_spelling():
    from experiments.core.cli import command_flag

    command = "python -m search.imdb --refit-subset 300 --subset=2000 --max-epochs 4 --name 'a b'"
    assert command_flag(command, "--subset") == "2000", "--refit-subset is another flag"
    assert command_flag(command, "--refit-subset") == "300" and command_flag(command, "--name") == "a b"
    assert command_flag(command, "--seed") is None and command_flag("", "--subset") is None
