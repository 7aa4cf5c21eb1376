"""Every claim a report makes carries its record: few seeds are judged by Welch's t, identical runs are one row, a
timing taken under load says so, kept summaries name no machine's folders, and the behavioural sets are reported
per model without choosing one."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import pytest

from experiments.core.behaviour import BehaviourSet
from experiments.reporting.candidates import Candidate

ROOT = Path(__file__).resolve().parents[1]


# --- few seeds: Welch's t, not "twice the standard error" -------------------------------------------------------

@pytest.mark.parametrize("df, quantile", [(1, 12.706), (2, 4.303), (4, 2.776), (10, 2.228), (30, 2.042),
                                          (1e9, 1.960)])
def test_the_t_quantile_matches_the_tables(df, quantile):
    from experiments.core.uncertainty import t_quantile

    assert t_quantile(0.975, df) == pytest.approx(quantile, abs=1e-3)


def test_welch_degrees_of_freedom_and_interval():
    from experiments.core.uncertainty import welch_gap

    equal = welch_gap((0.71, 0.012, 3), (0.68, 0.012, 3))  # equal spreads: df = 2(n − 1)
    assert equal.degrees_of_freedom == pytest.approx(4.0) and equal.error == pytest.approx((2 * 0.012 ** 2 / 3) ** 0.5)
    assert equal.half_width == pytest.approx(2.776 * equal.error, rel=1e-3)
    lopsided = welch_gap((0.71, 0.03, 3), (0.68, 0.001, 3))  # one spread dominates: df near its own n − 1
    assert lopsided.degrees_of_freedom == pytest.approx(2.0, abs=0.01)
    single = welch_gap((0.71, 0.0, 1), (0.68, 0.01, 3))  # one seed estimates no spread: no verdict
    assert single.degrees_of_freedom is None and single.half_width is None


def test_three_seeds_a_side_with_a_gap_of_two_standard_errors_is_no_measurable_difference():
    """The committed depth ablation's `num_layers=3` level: +2.74 ± 1.37 points (t ≈ 2.0) on ~3.4 degrees of
    freedom was called better under the normal rule; Welch's t needs about 2.8 standard errors."""
    from experiments.core.uncertainty import seed_verdict, verdict, welch_gap

    gap = welch_gap((0.7113, 0.0198, 3), (0.6839, 0.0129, 3))
    assert gap.t == pytest.approx(2.0, abs=0.02) and 3 < gap.degrees_of_freedom < 4
    assert verdict(gap.gap, gap.error) == "better"  # the normal rule's verdict
    assert seed_verdict(gap) == "no measurable difference"
    assert seed_verdict(welch_gap((0.7113, 0.0020, 3), (0.6839, 0.0020, 3))) == "better"  # a gap of ~17 s.e.
    assert seed_verdict(welch_gap((0.6539, 0.0020, 3), (0.6839, 0.0020, 3))) == "worse"


def test_the_ablation_section_judges_by_welch_and_counts_its_comparisons():
    from experiments.core.records import AblationRecord
    from experiments.reporting.tables import ablation_section

    def cell(factor, level, mean, std, base=False):
        return {"factor": factor, "level": level, "base": base, "seeds": 3, "val_mean": mean, "val_std": std,
                "test_mean": mean, "test_std": std}

    ablation = AblationRecord(
        search="abl", workload="imdb", base="bigru", seeds=3, epochs=2, runs=9, train_size=3000, subset=3000,
        wall_seconds=600, command="python -m search.imdb --ablate bigru",
        cells=[cell("base", None, 0.6839, 0.0129, base=True), cell("num_layers", 3, 0.7113, 0.0198),
               cell("dropout", 0.2, 0.7500, 0.0020)])
    lines = ablation_section(ablation)
    rows = {line.split(" | ")[0]: line for line in lines if line.startswith("| ")}
    assert rows["| num_layers"].endswith("| no measurable difference |") and "| 2.01 (3.4) |" in rows["| num_layers"]
    assert rows["| dropout"].endswith("| better |")
    assert "2 levels compared with the base, each by Welch's t test" in lines[2]
    assert "not corrected for the 2 comparisons" in lines[2] and "10% of the time" in lines[2]
    assert "They hold for these runs' budget, 2 epoch(s) on 3,000 training examples" in lines[2]


def test_the_ablation_console_table_gives_the_same_verdict():
    from search.ablation import aggregate, format_cells

    rows = [{"factor": f, "level": level, "val_accuracy": v, "test_accuracy": v}
            for f, level, values in (("base", None, (0.670, 0.684, 0.697)), ("num_layers", 3, (0.690, 0.712, 0.731)))
            for v in values]
    cells = aggregate(rows)
    assert "test_verdict" not in cells[0] and cells[1]["test_verdict"] == "no measurable difference"
    assert format_cells(cells).splitlines()[2].endswith("no measurable difference")


# --- identical runs are one row ----------------------------------------------------------------------------------

def candidate(name: str, seconds: float = 60.0, throughput: float | None = 80.0, load: dict | None = None,
              seed: int = 1000, test: float = 0.89628, history: list | None = None, **fields) -> Candidate:
    curve = [{"epoch": 1, "val_accuracy": 0.88, "val_loss": 0.3, "seq_per_s": throughput or 1.0,
              "epoch_seconds": seconds}] if history is None else history
    return Candidate("imdb", "gru", name, f"search {name} (refit)", {"config_name": name, "seed": seed, "lr": 0.002},
                     0.8879, test, 4, seconds, 4_211_713, throughput, curve, Path(name),
                     machine={"cpu": "Xeon", "torch_threads": 2}, load=load, **fields)


CLEAN = {"start": 0.4, "end": 2.1, "highest": 2.1, "threads": 2}
BUSY = {"start": 3.6, "end": 3.9, "highest": 4.2, "threads": 2}


def test_identical_runs_merge_into_one_row_that_says_reproduced():
    """Same config and seed, same curve, same val and test scores: one result, reached twice (the committed
    `search_imdb-40-read800` and `search_imdb-40-ship`); a different seed, curve or test score stays apart."""
    from experiments.reporting.tables import model_table, reproductions
    from experiments.tasks import get_task

    task = dataclasses.replace(get_task("imdb"), columns=())
    read800 = candidate("search_imdb-40-read800", seconds=1654, throughput=57, load=BUSY)
    ship = candidate("search_imdb-40-ship", seconds=1140, throughput=84, load=CLEAN)
    other_seed = candidate("other_seed", seed=1001)
    other_curve = candidate("other_curve", history=[{"epoch": 1, "val_accuracy": 0.87, "val_loss": 0.3}])
    other_test = candidate("other_test", test=0.8950)
    ensemble = dataclasses.replace(candidate("ensemble"), members=[Path("a"), Path("b")])
    ranked = [read800, ship, other_seed, other_curve, other_test, ensemble]
    assert [[e.name for e in group] for group in reproductions(ranked)] == [
        ["search_imdb-40-ship", "search_imdb-40-read800"],  # the one timed without load first
        ["other_seed"], ["other_curve"], ["other_test"], ["ensemble"]]
    table = model_table(task, ranked)
    rows = [line for line in table.splitlines() if line.startswith("| ") and "`" in line]
    assert len(rows) == 5 and rows[0].startswith(
        "| ★ | `search_imdb-40-ship` = `search_imdb-40-read800` (reproduced ×2) | search search_imdb-40-ship (refit); "
        "search search_imdb-40-read800 (refit) |")
    assert rows[0].endswith("| 19.0 / 27.6 min | 84 / 57‡ |")
    assert "reproduced ×N: N runs of the same configuration and seed" in table
    assert "reproduced" not in model_table(task, [read800, other_seed])  # nothing to merge: no such note


# --- timings under load are flagged ------------------------------------------------------------------------------

def test_a_throughput_measured_under_load_is_flagged_and_an_unrecorded_load_says_so():
    from experiments.core.machine_load import measured_under_load
    from experiments.reporting.tables import model_table
    from experiments.tasks import get_task

    assert measured_under_load(BUSY) is True and measured_under_load(CLEAN) is False
    assert measured_under_load(None) is None and measured_under_load({"threads": 2}) is None
    assert measured_under_load({"start": 1.4, "end": None, "highest": 1.4, "threads": 1}) is False  # ≤ threads + ½
    task = dataclasses.replace(get_task("imdb"), columns=())
    table = model_table(task, [candidate("busy", load=BUSY, seed=1), candidate("clean", load=CLEAN, seed=2),
                               candidate("old", seed=3)])
    rows = {line.split("`")[1]: line for line in table.splitlines() if line.startswith("| ") and "`" in line}
    assert rows["busy"].endswith("| 80‡ |") and rows["clean"].endswith("| 80 |") and rows["old"].endswith("| 80° |")
    assert "‡ measured under load: the machine's 1-minute load average" in table
    assert "(`busy` 4.2 on 2 threads)" in table
    assert "° load not recorded" in table
    assert not {"‡", "°"} & set(model_table(task, [candidate("clean", load=CLEAN)]))


def test_a_run_records_the_load_during_its_training(tmp_path):
    """The training loop samples the 1-minute load average at its start and at every evaluation; the runner's
    record and every checkpoint carry it, and the summarizer's candidate reads it."""
    from experiments import runner
    from experiments.reporting.candidates import candidates_from_runs
    from tests.synthetic_task import TASK

    assert runner.main(TASK, ["--config", "blob_mlp", "--epochs", "2", "--output-dir", str(tmp_path / "synthetic")],
                       module="experiments.runner") == 0
    record = json.loads((tmp_path / "synthetic" / "blob_mlp" / "run.json").read_text())
    load = record["load"]
    assert set(load) == {"start", "end", "highest", "threads"} and load["threads"] >= 1
    assert load["highest"] >= max(load["start"], load["end"]) >= 0 and "load_average" in record["machine"]
    checkpoint = json.loads((tmp_path / "synthetic" / "blob_mlp" / "best" / "metrics.json").read_text())
    assert checkpoint["load"]["threads"] == load["threads"]
    [found] = candidates_from_runs(tmp_path / "synthetic", TASK)
    assert found.load == load and found.data_fingerprint == "blobs-v1"


# --- kept summaries name no machine's folders --------------------------------------------------------------------

ABSOLUTE = re.compile(r'"(?:[a-z]+:///)?/(?:work|home|root|tmp)/')


def search_summary(root: Path, name: str = "s"):
    from experiments.core.records import SearchRecord

    trial = root / name / "run_trial_1"
    return SearchRecord.from_dict({"search": name, "workload": "imdb", "finished": True, "best_trial": "t1",
            "best_checkpoint": str(trial / "checkpoint_000002"),
            "tracking_uri": f"sqlite:///{Path.cwd()}/mlruns/mlflow.db",
            "rows": [{"trial_id": "t1", "path": str(trial)}],
            "refit": [{"checkpoint": str(root / name / "refit" / "run_trial_r" / "checkpoint_000004")}],
            "plots": [{"title": "history", "path": str(root / name / "optuna_history.png")}]})


def test_kept_summaries_store_paths_relative_to_the_storage_root_and_read_back_under_it(tmp_path):
    from experiments.core.records import SearchRecord
    from experiments.reporting.candidates import load_searches
    from experiments.reporting.export import keep_searches
    from experiments.reporting.storage_paths import portable_summary

    storage = tmp_path / "ray_results"
    here = search_summary(storage)
    elsewhere = search_summary(Path("/home/someone/ray_results"), "t")  # another machine's, kept by a report
    folder = tmp_path / "export"
    keep_searches([here, elsewhere], folder, storage)
    for name in ("s", "t"):
        text = (folder / "searches" / f"{name}.json").read_text()
        assert not ABSOLUTE.search(text) and str(tmp_path) not in text, text
    kept = json.loads((folder / "searches" / "s.json").read_text())
    assert kept["best_checkpoint"] == "s/run_trial_1/checkpoint_000002" and kept["rows"][0]["path"] == "s/run_trial_1"
    assert kept["refit"][0]["checkpoint"] == "s/refit/run_trial_r/checkpoint_000004"
    assert kept["tracking_uri"] == "sqlite:///mlruns/mlflow.db"
    other = json.loads((folder / "searches" / "t.json").read_text())
    assert other["best_checkpoint"] == "t/run_trial_1/checkpoint_000002"
    moved = portable_summary(SearchRecord(search="u", workload="imdb", tracking_uri="http://tracking:5000",
                                          optuna_storage="sqlite:////home/x/repo/mlruns/optuna.db"), storage, tmp_path)
    assert moved.optuna_storage == "sqlite:///mlruns/optuna.db"  # another checkout's default store
    assert moved.tracking_uri == "http://tracking:5000"  # a server is no machine's folder
    clone = tmp_path / "clone" / "ray_results"  # a fresh clone: the summaries kept, no ray_results/
    read = {s.search: s for s in load_searches(clone, "imdb", folder)}
    assert read["s"].best_checkpoint == str(clone / "s" / "run_trial_1" / "checkpoint_000002")
    assert read["t"].refit[0]["checkpoint"] == str(clone / "t" / "refit" / "run_trial_r" / "checkpoint_000004")
    assert read["s"].plots[0]["path"] == str(clone / "s" / "optuna_history.png")


def test_keeping_a_kept_summary_again_changes_none_of_its_paths(tmp_path, monkeypatch):
    """Each report rewrites the summaries it keeps from the kept copies: the paths must come back as they were,
    under the relative storage root the summarizer is given, and the older `ray_results/<search>/…` form becomes
    `<search>/…`."""
    from experiments.core.records import SearchRecord
    from experiments.reporting.candidates import load_searches
    from experiments.reporting.export import keep_searches

    monkeypatch.chdir(tmp_path)
    folder, storage = Path("export"), Path("ray_results")
    older = SearchRecord(search="s", workload="imdb", finished=True, best_trial="t1",
                         best_checkpoint="ray_results/s/run_trial_1/checkpoint_000002",
                         rows=[{"trial_id": "t1", "path": "ray_results/s/run_trial_1"}])
    (folder / "searches").mkdir(parents=True)
    (folder / "searches" / "s.json").write_text(json.dumps(older.to_dict()))  # as an older report kept it
    keep_searches(load_searches(storage, "imdb", folder), folder, storage)
    first = (folder / "searches" / "s.json").read_text()
    assert '"ray_results/' not in first and '"s/run_trial_1"' in first
    for _ in range(2):
        keep_searches(load_searches(storage, "imdb", folder), folder, storage)
        assert (folder / "searches" / "s.json").read_text() == first


def test_provenance_finds_an_ensembles_members_in_a_kept_summary():
    """An ensemble's `ensemble.json` names its members from the repository root; the summary, from its storage
    root: both name the same refit."""
    from experiments.reporting.storage_paths import same_search_path

    source = "ray_results/s/refit/run_trial_r/checkpoint_000004"
    assert same_search_path("/elsewhere/store/s/refit/run_trial_r/checkpoint_000004", source, "s")
    assert not same_search_path("/elsewhere/store/s/refit/run_trial_q/checkpoint_000004", source, "s")


def committed_records() -> list[Path]:
    return sorted((ROOT / "model_checkpoints").rglob("*.json"))


def test_no_committed_record_holds_an_absolute_machine_path():
    holding = [str(path.relative_to(ROOT)) for path in committed_records() if ABSOLUTE.search(path.read_text())]
    assert not holding, f"absolute paths in {holding}"


# --- behavioural sets --------------------------------------------------------------------------------------------

def test_the_imdb_behaviour_sets_are_balanced_labelled_and_distinct():
    from data_pipes.imdb import LABELS
    from experiments.tasks import get_task

    sets = get_task("imdb").behaviour()
    assert [s.name for s in sets] == ["plain", "negation", "short", "contrast"]
    for s in sets:
        assert 15 <= len(s.inputs) <= 25 and set(s.labels) == set(LABELS)
        assert s.labels.count("pos") == s.labels.count("neg")  # a constant answer scores 50 %
    texts = [x for s in sets for x in s.inputs]
    assert len(set(texts)) == len(texts) and "Not bad at all, actually quite good." in sets[1].inputs
    assert all(len(x.split()) <= 4 for x in sets[2].inputs)


def test_a_behaviour_file_with_an_unknown_label_is_refused(tmp_path):
    from experiments.core.behaviour import read_behaviour_sets

    path = tmp_path / "sets.json"
    path.write_text(json.dumps({"sets": [{"name": "x", "capability": "c", "cases": [{"text": "t", "label": "meh"}]}]}))
    with pytest.raises(ValueError, match="'t' with none of neg, pos"):
        read_behaviour_sets(path, ("neg", "pos"))


def test_the_behaviour_section_runs_every_export_with_weights_and_names_the_others(tmp_path):
    """A fake model answers with each input's first word; one export holds no weights and is not run."""
    from experiments.reporting.behaviour import behaviour_section
    from tests.synthetic_task import TASK

    sets = [BehaviourSet("plain", "Said directly.", ("left a", "right b", "middle c", "left d"),
                         ("left", "right", "middle", "middle")),
            BehaviourSet("short", "One word.", ("right", "left"), ("right", "left"))]
    calls = []

    def predict(folder, inputs):
        calls.append(folder.name)
        return [(x.split()[0], 0.9) for x in inputs]

    task = dataclasses.replace(TASK, behaviour=lambda: sets, predict=predict)
    for name in ("best", "other", "bare"):
        (tmp_path / name).mkdir()
    (tmp_path / "best" / task.weight_file).write_bytes(b"")
    (tmp_path / "other" / task.weight_file).write_bytes(b"")
    ranked = [candidate(name) for name in ("best", "other", "bare")]
    lines = behaviour_section(task, ranked, tmp_path)
    text = "\n".join(lines)
    assert calls == ["best", "other"] and "**They are not used to choose models** (validation does that)" in text
    assert "| `best` | 3/4 (75%) | 2/2 (100%) | 5/6 (83%) |" in lines
    assert "What `best` (the shipped model) gets wrong:" in text and "- plain: “left d”" in lines
    assert "Not run (their exports hold no weights" in text and "`bare`" in text.split("Not run")[1]
    assert "- **plain** (4): Said directly. E.g. “left a” → left." in lines
