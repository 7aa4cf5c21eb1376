"""Summarizer, reports, evaluate/predict and the archive, on tiny runs trained by the real CLIs."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from experiments import evaluate, predict, summarize
from experiments import imdb as imdb_cli
from experiments.core.errors import CheckpointError
from experiments.tasks.imdb.config import ExperimentConfig

TINY = dict(batch_size=16, embed_dim=16, hidden_dim=16, num_layers=1, dropout=0.0, pooling="maxmean",
            optimizer="AdamW", optimizer_params={"lr": 5e-3}, lr_schedule="onecycle", epochs=2)
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def runs(tmp_path_factory, imdb_dir) -> Path:
    """Two tiny one-config runs under <root>/outputs/imdb, trained by `python -m experiments.imdb`."""
    root = tmp_path_factory.mktemp("runs")
    for name, bidirectional in (("tiny_uni", False), ("tiny_bi", True)):
        path = root / f"{name}.json"
        ExperimentConfig(config_name=name, is_bidirectional=bidirectional, **TINY).to_json(path)
        assert imdb_cli.main(["--config", str(path), "--data-dir", str(imdb_dir),
                              "--output-dir", str(root / "outputs" / "imdb")]) == 0
    return root

ROOT = Path(__file__).resolve().parents[1]


def run_summarize(root: Path, *extra: str) -> int:
    return summarize.main(["--outputs", str(root / "outputs"), "--ray-results", str(root / "ray_results"),
                           "--out", str(root / "model_checkpoints"), "--tasks", "imdb", *extra])


def test_export_report_and_evaluate(runs, imdb_dir, capsys):
    assert run_summarize(runs) == 0
    folder = runs / "model_checkpoints" / "assignment2-1-2"
    best = json.loads((folder / "best.json").read_text())
    records = {p.parent.name: json.loads(p.read_text()) for p in folder.glob("*/metrics.json")}
    assert set(records) == {"tiny_uni", "tiny_bi"}
    assert best["name"] == max(records, key=lambda n: records[n]["val_accuracy"])
    for name, record in records.items():
        files = {p.name for p in (folder / name).iterdir()}
        assert {"experiment_config.json", "tokenizer.json", "metrics.json"} <= files
        assert "trainer_state.pt" not in files
        assert ("model.safetensors" in files) == (name == best["name"])
        assert record["test_accuracy"] is not None and record["machine"]["cpu"]
    report = (folder / "report.md").read_text()
    assert "| ★ | `" + best["name"] in report and "test acc" in report and "\n- Direction" in report
    error = (best["test_accuracy"] * (1 - best["test_accuracy"]) / 25_000) ** 0.5  # binomial SE on the test split
    assert f"{best['test_accuracy']:.4f} ± {error:.4f}" in report and "sqrt(p(1-p)/n)" in report
    for png in ("learning_curves.png",):
        assert f"]({png})" in report and (folder / png).read_bytes().startswith(PNG)
    behaviour = report.split("## Behaviour")[1].split("\n## ")[0]  # the winner (with weights) run on the sets
    assert "**They are not used to choose models** (validation does that)" in behaviour
    assert f"| `{best['name']}` | " in behaviour and "| plain | negation | short | contrast | all |" in behaviour
    other = next(name for name in records if name != best["name"])  # exported without weights: not run
    assert f"`{other}`" in behaviour.split("Not run")[1]

    capsys.readouterr()
    assert evaluate.main([str(folder / best["name"]), "--data-dir", str(imdb_dir)]) == 0
    assert f"test_accuracy={best['test_accuracy']:.4f}" in capsys.readouterr().out
    assert predict.main([str(folder / best["name"]), "a wonderful superb film", "awful boring plot"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert [line.split("\t")[0] for line in out] == ["pos", "neg"]


def test_an_export_with_weights_keeps_them_when_it_is_no_longer_the_best(runs):
    assert run_summarize(runs) == 0
    folder = runs / "model_checkpoints" / "assignment2-1-2"
    best = json.loads((folder / "best.json").read_text())["name"]
    other = next(p for p in folder.iterdir() if p.is_dir() and p.name not in (best, "searches"))
    shutil.copy2(folder / best / "model.safetensors", other / "model.safetensors")  # it was a champion once
    assert run_summarize(runs) == 0
    assert (other / "model.safetensors").is_file() and (folder / best / "model.safetensors").is_file()


def test_interrupted_export_leaves_the_previous_one_intact(runs, monkeypatch):
    assert run_summarize(runs) == 0
    folder = runs / "model_checkpoints" / "assignment2-1-2" / "tiny_uni"
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    calls = {"n": 0}
    real_copy = shutil.copy2

    def copy_then_die(src, dst, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return real_copy(src, dst, *args, **kwargs)

    monkeypatch.setattr(shutil, "copy2", copy_then_die)
    with pytest.raises(KeyboardInterrupt):
        run_summarize(runs)
    monkeypatch.undo()
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before


def test_a_better_existing_best_is_kept_unless_forced(runs, capsys):
    assert run_summarize(runs) == 0
    folder = runs / "model_checkpoints" / "assignment2-1-2"
    marker = json.loads((folder / "best.json").read_text())
    shutil.copytree(folder / marker["name"], folder / "older_champion")
    (folder / "best.json").write_text(json.dumps({**marker, "name": "older_champion", "val_accuracy": 1.01}))
    assert run_summarize(runs) == 0
    assert json.loads((folder / "best.json").read_text())["name"] == "older_champion"
    assert "kept the existing best older_champion" in capsys.readouterr().out
    assert run_summarize(runs, "--force") == 0
    assert json.loads((folder / "best.json").read_text())["name"] == marker["name"]
    shutil.rmtree(folder / "older_champion")


def test_a_model_validated_on_another_split_is_ranked_after_and_never_the_best(runs):
    """IMDB's validation split changed (random → blocks): an older export's higher validation score is not
    comparable, so it neither becomes nor stays the best, and the report marks it."""
    assert run_summarize(runs) == 0
    folder = runs / "model_checkpoints" / "assignment2-1-2"
    marker = json.loads((folder / "best.json").read_text())
    shutil.copytree(folder / marker["name"], folder / "older_random")
    metrics = json.loads((folder / "older_random" / "metrics.json").read_text())
    assert metrics.pop("validation") == "blocks of 100 adjacent reviews"
    (folder / "older_random" / "metrics.json").write_text(json.dumps({**metrics, "name": "older_random",
                                                                      "val_accuracy": 0.999}))
    (folder / "best.json").write_text(json.dumps({**marker, "name": "older_random", "val_accuracy": 0.999}))
    assert run_summarize(runs) == 0
    assert json.loads((folder / "best.json").read_text())["name"] == marker["name"]
    report = (folder / "report.md").read_text()
    models = report.split("## Models")[1].split("\n## ")[0]
    rows = [line for line in models.splitlines() if line.startswith("| ") and "`" in line]
    assert "`older_random`" in rows[-1] and "0.9990 †" in rows[-1] and rows[0].startswith("| ★ |")
    assert "† validated on another split (random)" in report
    shutil.rmtree(folder / "older_random")


def test_archive_holds_exactly_the_checkpoints(runs, tmp_path, monkeypatch, capsys):
    assert run_summarize(runs) == 0
    monkeypatch.chdir(runs)
    assert run_summarize(runs, "--archive", "s123") == 0
    with tarfile.open(runs / "s123.tar.gz") as tar:
        names = sorted(tar.getnames())
    expected = sorted(str(p.relative_to(runs)) for p in (runs / "model_checkpoints").rglob("*")
                      if p.is_file() and not any(part.startswith(".") for part in p.parts))
    assert names == expected and "model_checkpoints/assignment2-1-2/report.md" in names
    assert "packed" in capsys.readouterr().out
    with pytest.raises(summarize.UsageError, match="already exists"):
        summarize.write_archive(Path("model_checkpoints"), "s123", force=False)


def test_corrupt_or_foreign_checkpoint_is_a_clear_error(tmp_path):
    with pytest.raises(CheckpointError, match="not a tunelab checkpoint"):
        evaluate.evaluate_checkpoint(tmp_path, None)
    done = subprocess.run([sys.executable, "-m", "experiments.evaluate", str(tmp_path / "nope")],
                          capture_output=True, text=True)
    assert done.returncode == 2 and "checkpoint folder not found" in done.stderr and "Traceback" not in done.stderr


def test_a_report_regenerated_elsewhere_keeps_the_earlier_exports(runs, tmp_path):
    """A fresh clone has the exports but not the outputs/ they came from: the report keeps them, numbers unchanged."""
    assert run_summarize(runs) == 0
    clone = tmp_path / "clone"
    shutil.copytree(runs / "model_checkpoints", clone / "model_checkpoints")
    shutil.copytree(runs / "outputs" / "imdb" / "tiny_bi", clone / "outputs" / "imdb" / "tiny_bi")
    assert run_summarize(clone) == 0
    folder = clone / "model_checkpoints" / "assignment2-1-2"
    before = json.loads((runs / "model_checkpoints" / "assignment2-1-2" / "tiny_uni" / "metrics.json").read_text())
    after = json.loads((folder / "tiny_uni" / "metrics.json").read_text())
    assert {k: after[k] for k in ("val_accuracy", "test_accuracy", "epochs", "source")} == {
        k: before[k] for k in ("val_accuracy", "test_accuracy", "epochs", "source")}
    report = (folder / "report.md").read_text()
    assert "`tiny_uni`" in report and "`tiny_bi`" in report


def test_a_kept_search_whose_checkpoints_are_gone_is_reported_from_its_export(runs, tmp_path):
    """A fresh clone keeps a search's summary and its export, not the ray_results/ its checkpoints were in."""
    assert run_summarize(runs) == 0
    clone = tmp_path / "clone"
    shutil.copytree(runs / "model_checkpoints", clone / "model_checkpoints")
    folder = clone / "model_checkpoints" / "assignment2-1-2"
    summary = json.loads((ROOT / "model_checkpoints/assignment2-1-2/searches/imdb-40-blocks.json").read_text())
    summary["best_checkpoint"] = str(tmp_path / "gone" / "best")
    for row in summary["refit"]:
        row["checkpoint"] = str(tmp_path / "gone" / row["refit_trial"])
    (folder / "searches" / "imdb-40-blocks.json").write_text(json.dumps(summary))
    shutil.copytree(folder / "tiny_uni", folder / "search_imdb-40-blocks")
    metrics = json.loads((folder / "search_imdb-40-blocks" / "metrics.json").read_text())
    metrics.update(name="search_imdb-40-blocks", source="search imdb-40-blocks (refit)")
    (folder / "search_imdb-40-blocks" / "metrics.json").write_text(json.dumps(metrics))
    config = json.loads((folder / "search_imdb-40-blocks" / "experiment_config.json").read_text())
    config["seed"] += 1000  # a refit's fresh seed: another run than tiny_uni, not a reproduction of it
    (folder / "search_imdb-40-blocks" / "experiment_config.json").write_text(json.dumps(config))
    assert run_summarize(clone) == 0
    report = (folder / "report.md").read_text()
    assert "`search_imdb-40-blocks` | search imdb-40-blocks (refit) |" in report
    assert "`imdb-40-blocks` (optuna + asha" in report


def test_report_commands_run_from_this_repository(tmp_path, monkeypatch):
    """A GPU box's /tmp data and /root output folders give way to this repository's; its paths become relative."""
    from experiments.reporting.commands import portable_command

    monkeypatch.chdir(tmp_path)
    config = tmp_path / "model_checkpoints" / "vit" / "experiment_config.json"
    recorded = ("python -m experiments.cifar --model vit --config /tmp/vit.json --data-dir /tmp/cifar "
                "--output-dir=/root/out --seed 3")
    assert portable_command(recorded, tmp_path, "../shared/data/cifar10", config) == (
        "python -m experiments.cifar --model vit --config model_checkpoints/vit/experiment_config.json "
        "--data-dir ../shared/data/cifar10 --seed 3")
    assert portable_command("python -m x --resume --data-dir /tmp/cifar --name 'a b'", tmp_path, None, None) == (
        "python -m x --resume --name 'a b'")  # no data dir here: the hub
    assert portable_command(f"python -m x --storage-path {tmp_path}/ray_results", tmp_path, None, None) == (
        "python -m x --storage-path ray_results")


@pytest.mark.parametrize("report", sorted((ROOT / "model_checkpoints").glob("*/report.md")),
                         ids=lambda path: path.parent.name)
def test_committed_reports_name_no_path_outside_the_repository(report):
    spans = re.findall(r"`([^`\n]+)`", report.read_text())
    foreign = [s for s in spans for word in s.split() if word.lstrip("'\"(").startswith("/") or "=/" in word]
    assert not foreign, f"{report}: absolute paths in {foreign[:3]}"


def test_a_refit_gap_is_called_the_winners_curse_only_at_the_searchs_own_fidelity():
    from experiments.core.records import SearchRecord
    from experiments.reporting.prose import search_fidelity, search_section

    refit = {"search_trial": "t1", "search_val_accuracy": 0.85, "val_accuracy": 0.84, "test_accuracy": 0.83,
             "train_size": 100, "epochs": 3}
    older = {"search": "s", "workload": "imdb", "searcher": "optuna", "scheduler": "asha", "trials": 2,
             "trial_epochs": 4, "wall_seconds": 60, "completed": 2, "stopped_early": 0, "errored": 0,
             "best_val_accuracy": 0.85, "command": "python -m search.imdb --subset 50",
             "rows": [{"params": {"epochs": 3}}], "refit": [refit]}  # schema 1: no subset, no max_epochs
    search = SearchRecord.from_dict(older)
    assert search_fidelity(search) == (50, 3, True)  # upgraded from its command and rows
    assert "not the winner's curse alone, the search trained on 50 examples" in search_section([search])[2]
    whole = SearchRecord.from_dict({**older, "subset": None})
    assert "(winner's curse +1.00 points)" in search_section([whole])[2]  # the whole split
    unknown = SearchRecord.from_dict({**older, "command": "python -m search.imdb"})
    assert search_fidelity(unknown) == (None, 3, False)
    assert "(search val − refit val +1.00 points)," in search_section([unknown])[2]


def test_a_search_states_what_its_trials_varied_and_what_they_shared():
    from experiments.core.records import SearchRecord
    from experiments.reporting.prose import search_section

    rows = [{"params": {"epochs": 2, "lr": 1e-3, "max_len": 800, "optimizer": "SGD"}},
            {"params": {"epochs": 2, "lr": 3e-3, "max_len": 800, "optimizer": "AdamW", "weight_decay": 0.01}}]
    search = SearchRecord(search="s", workload="imdb", searcher="optuna", scheduler="asha", trials=2, trial_epochs=4,
                          wall_seconds=60, completed=2, command="python -m search.imdb", rows=rows,
                          by_task={"best_val_accuracy": 0.85})
    assert search_section([search])[1] == ("  - Space: searched lr, optimizer, weight_decay; the same in every trial: "
                                           "epochs=2, max_len=800")


def test_searches_of_two_families_at_the_same_budget_are_compared_side_by_side():
    """Only searches with the same recorded settings (bar the family and warm start) share a table, and the
    verdict on their refits' test gap needs more than twice its standard error."""
    import dataclasses

    from experiments.core.records import SearchRecord
    from experiments.reporting.tables import budget_of, equal_budget_section
    from tests.synthetic_task import TASK

    task = dataclasses.replace(TASK, family=lambda c: c.get("kind"), search_settings=("kind",), test_examples=10_000)
    settings = {"trials": 4, "subset": 500, "max_epochs": 2, "report_every": 0.5, "searcher": "optuna",
                "scheduler": "asha", "grace_period": 0.5, "reduction_factor": 3, "seed": 0, "refit_epochs": 2}

    def search(name, kind, test, **changed):
        refit = {"val_accuracy": 0.7, "test_accuracy": test, "params": {"kind": kind, "hidden": 8, "lr": 0.01}}
        return SearchRecord(
            search=name, workload="synthetic", trials=4, trial_epochs=5, wall_seconds=120,
            command=f"python -m search --task synthetic --kind {kind} --time-budget 30",
            machine={"cpu": "x", "cpu_count": 2}, rows=[{"params": {"kind": kind}}], refit=[refit],
            settings={**settings, "kind": kind, "warm_start": [kind], **changed},
            importance={"lr": 0.7, "hidden": 0.3}, by_task={"best_val_accuracy": 0.65})

    a, b = search("a", "mlp", 0.80), search("b", "linear", 0.78)
    assert budget_of(a, task) == budget_of(b, task) != budget_of(search("c", "linear", 0.5, trials=8), task)
    lines = equal_budget_section(task, [a, b], ranked=[])
    assert "4 trials on 500 training examples" in lines[0] and "a 30-minute search budget" in lines[0]
    assert lines[4].startswith("| `a` | mlp | 4 | 5.0 | 2.0 min | 0.6500 | 0.7000 | 0.8000 ± 0.0040 |")
    assert lines[4].endswith("| 8 | 0.01 | - | lr 0.70, hidden 0.30 |")
    assert "MLP (`a`) beat LINEAR (`b`) on test by 2.00 ± 0.58 points" in lines[7]
    assert "one search and one refit each" in lines[7]
    close = equal_budget_section(task, [a, search("b", "linear", 0.795)], ranked=[])
    assert "no measurable difference" in close[7]
    # a task's default time budget is not in the command: the record keeps it, and an older record's budget is the
    # one that stopped it
    recorded, stopped = (dataclasses.replace(search(name, kind, 0.8), command="python -m search", **budget)
                         for name, kind, budget in (("d", "mlp", {"time_budget": 28.0}),
                                                    ("e", "linear", {"stopped_by_time_budget": 28.0})))
    assert "a 28-minute search budget" in equal_budget_section(task, [recorded, stopped], ranked=[])[0]
    assert budget_of(dataclasses.replace(recorded, time_budget=None), task) != budget_of(recorded, task)
    assert equal_budget_section(task, [a, search("c", "linear", 0.5, trials=8)], ranked=[]) == []


def test_a_search_trial_exported_before_is_not_tested_again_unless_it_changed(tmp_path):
    from experiments.reporting.candidates import Candidate
    from experiments.reporting.export import reuse_export

    def candidate(val):
        return Candidate(task="imdb", family="gru", name="search_s", source="search s", config={"lr": 0.01},
                         val_score=val, test_score=None, epochs=2, train_seconds=1.0, params=None,
                         throughput=None, history=[], checkpoint=tmp_path)

    (tmp_path / "search_s").mkdir()
    (tmp_path / "search_s" / "experiment_config.json").write_text(json.dumps({"lr": 0.01}))
    (tmp_path / "search_s" / "metrics.json").write_text(json.dumps(
        {"val_accuracy": 0.7, "epochs": 2, "test_accuracy": 0.69, "params": 123}))
    same, retrained = candidate(0.7), candidate(0.71)
    reuse_export(same, tmp_path)
    reuse_export(retrained, tmp_path)
    assert (same.test_score, same.params) == (0.69, 123) and retrained.test_score is None


def test_throughputs_measured_under_different_settings_carry_their_setting():
    """seq/s of a 1-thread run beside 2-thread runs and a GPU: each cell names its setting, a footnote says they
    compare only within one; a table measured alike stays plain."""
    from experiments.reporting.candidates import Candidate
    from experiments.reporting.tables import model_table
    from experiments.tasks import get_task

    task = get_task("imdb")

    def candidate(name: str, machine: dict) -> Candidate:
        return Candidate("imdb", "gru", name, "one-config run", {"num_layers": 1}, 0.89, 0.89, 4, 60.0, 1000, 80.0,
                         [], Path(name), machine=machine, validation=task.validation,
                         load={"start": 0.3, "end": 2.1, "highest": 2.1, "threads": 2})  # timed alone

    two, one, gpu = ({"cpu": "Xeon", "torch_threads": 2}, {"cpu": "Xeon", "torch_threads": 1},
                     {"cpu": "Xeon", "torch_threads": 16, "gpu": "NVIDIA H200"})
    table = model_table(task, [candidate("a", two), candidate("b", one), candidate("c", two), candidate("d", gpu)])
    rows = {line.split("`")[1]: line for line in table.splitlines() if line.startswith("| ") and "`" in line}
    assert [rows[name].endswith(cell) for name, cell in zip("abcd", ("80 (a) |", "80 (b) |", "80 (a) |", "80 (c) |"),
                                                             strict=True)] == [True] * 4
    assert table.endswith("seq/s compares only between rows of one setting (the letter after it): (a) Xeon, 2 torch "
                          "threads; (b) Xeon, 1 torch thread; (c) NVIDIA H200.")
    plain = model_table(task, [candidate("a", two), candidate("c", two)])
    assert "(a)" not in plain and "compares only" not in plain
