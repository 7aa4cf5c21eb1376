"""The checkpoint format (experiments/core/checkpoints.py), and a task's own weight file: a task that saves `weights.pt`
(`tests/torch_weights_task.py`) is exported with its weights and registered, not taken for one without weights."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from experiments import predict, runner
from experiments.core.checkpoints import CONFIG_FILE, has_weights, read_config, weight_files
from search import summarize as search_summarize
from search.registry import WEIGHTS_TAG, registered_name
from tests.conftest import mlflow_client
from tests.torch_weights_task import TASK, WEIGHT_FILE


def test_weights_are_the_declared_file_in_the_folder_or_in_its_members(tmp_path):
    single = tmp_path / "single"
    single.mkdir()
    (single / WEIGHT_FILE).write_bytes(b"weights")
    assert has_weights(single, WEIGHT_FILE) and not has_weights(single), "model.safetensors is only the default"
    for i in (2, 1):
        (tmp_path / "ensemble" / f"member_{i}").mkdir(parents=True)
        (tmp_path / "ensemble" / f"member_{i}" / WEIGHT_FILE).write_bytes(b"weights")
    assert [p.parent.name for p in weight_files(tmp_path / "ensemble", WEIGHT_FILE)] == ["member_1", "member_2"]


def test_a_config_is_read_without_its_task_key_unless_asked(tmp_path):
    (tmp_path / CONFIG_FILE).write_text(json.dumps({"task": "imdb", "lr": 0.01}))
    assert read_config(tmp_path) == {"lr": 0.01}
    assert read_config(tmp_path, with_task=True) == {"task": "imdb", "lr": 0.01}


@pytest.fixture(scope="module")
def summarized(tmp_path_factory) -> dict:
    """Two one-config runs of the weights.pt task, summarized by `python -m search.summarize` into a fresh store."""
    root = tmp_path_factory.mktemp("torch_weights")
    runs = root / "outputs" / TASK.name
    for preset in ("curve_mlp", "curve_tiny"):
        assert runner.main(TASK, ["--config", preset, "--epochs", "2", "--output-dir", str(runs)],
                           module="experiments.runner") == 0
    uri = f"sqlite:///{root / 'mlruns' / 'mlflow.db'}"
    assert search_summarize.main(["--outputs", str(root / "outputs"), "--ray-results", str(root / "none"),
                                  "--out", str(root / "out"), "--tasks", TASK.key, "--tracking-uri", uri]) == 0
    folder = root / "out" / TASK.export_folder
    return {"uri": uri, "folder": folder, "best": json.loads((folder / "best.json").read_text())["name"]}


def test_the_winner_is_exported_with_the_weight_file_its_task_declares(summarized, capsys):
    folder, best = summarized["folder"], summarized["best"]
    for name in ("curve_mlp", "curve_tiny"):
        recorded = json.loads((folder / name / "metrics.json").read_text())
        assert (folder / name / WEIGHT_FILE).is_file() == recorded["weights_included"] == (name == best), name
    capsys.readouterr()
    assert predict.main([str(folder / best), "0.5"]) == 0  # loads the exported weights.pt
    assert len(capsys.readouterr().out.splitlines()) == 1


def test_the_registry_registers_the_winner_by_the_hash_of_its_declared_weight_file(summarized):
    folder, best = summarized["folder"], summarized["best"]
    client = mlflow_client(Path(summarized["uri"].removeprefix("sqlite:///")))
    [version] = client.search_model_versions(f"name = '{registered_name(TASK)}'")
    assert version.tags["tunelab.export"] == best
    assert version.tags[WEIGHTS_TAG] == hashlib.sha256((folder / best / WEIGHT_FILE).read_bytes()).hexdigest()
    assert client.get_model_version_by_alias(registered_name(TASK), "champion").version == version.version


def test_where_an_ensemble_leads_a_family_its_best_single_model_and_best_search_find_keep_their_weights_too(tmp_path):
    """The ensemble, the best single model of the family and its best model a search sampled (here behind
    hand-written ones) are exported loadable; the next single model and the next search find are not."""
    import json

    from experiments.reporting.candidates import Candidate
    from experiments.reporting.export import export_task

    def checkpoint(name: str) -> Path:
        folder = tmp_path / "checkpoints" / name
        folder.mkdir(parents=True)
        (folder / CONFIG_FILE).write_text(json.dumps({"config_name": name}))
        (folder / WEIGHT_FILE).write_bytes(b"weights")
        return folder

    def candidate(name: str, val: float, members: list[Path] = ()) -> Candidate:
        folder = members[0] if members else checkpoint(name)
        return Candidate(task="t", family="gru", name=name, source="test", config={}, val_score=val,
                         test_score=0.5, epochs=1, train_seconds=1.0, params=None, throughput=None, history=[],
                         checkpoint=folder, members=list(members))

    members = [checkpoint("m1"), checkpoint("m2")]
    entries = [candidate("second", 0.80), candidate("ensemble", 0.90, members), candidate("single", 0.85),
               candidate("found", 0.75), candidate("found_later", 0.70)]
    export_task(entries, tmp_path / "export", force=False, all_weights=False, weight_file=WEIGHT_FILE,
                searched=frozenset({"found", "found_later"}))
    export = tmp_path / "export"
    assert has_weights(export / "ensemble", WEIGHT_FILE) and has_weights(export / "single", WEIGHT_FILE)
    assert has_weights(export / "found", WEIGHT_FILE)
    assert not has_weights(export / "second", WEIGHT_FILE) and not has_weights(export / "found_later", WEIGHT_FILE)
