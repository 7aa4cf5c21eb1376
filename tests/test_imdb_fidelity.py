"""The fidelity study's arithmetic on made-up curves: rank correlation, proxy costs, the choice, the resume."""

from __future__ import annotations

import json

import pytest

from experiments.benchmarks import imdb_fidelity as fidelity
from experiments.benchmarks.fidelity import difference_interval, seed_from_record, spearman, write_json_atomically


def record(name: str, kind: str, scores: list[float], reviews: int, tokens: float) -> dict:
    return {"config_name": name, "run": {"kind": kind}, "train_reviews": reviews, "mean_tokens_read": tokens,
            "curve": [{"epoch": (i + 1) * 0.25, "val_accuracy": s} for i, s in enumerate(scores)],
            "train_seconds": 1.0, "load_average_start": 0.5, "load_average_end": 1.5,
            "machine": {"cpu": "test", "torch_threads": 1}, "precision": "fp32"}


def study(truths: list[float], early: list[float]) -> dict:
    """Full curves whose last point is the truth; a sub5k run whose 0.75-epoch score is `early`."""
    records = {}
    for index, (truth, first) in enumerate(zip(truths, early, strict=True)):
        name = f"c{index}"
        records[name] = {
            "full": record(name, "full", [0.6] * 15 + [truth], 20_000, 200.0),
            "sub5k": record(name, "sub5k", [0.5, 0.55, first, 0.7, 0.7, 0.7, 0.7, 0.7], 5_000, 200.0),
        }
    return records


def test_spearman_ranks_with_ties():
    assert spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    assert spearman([1, 1, 2, 3], [5, 6, 7, 8]) == pytest.approx(0.9486832981)  # scipy's value
    assert spearman([1, 1, 1], [1, 2, 3]) != spearman([1, 1, 1], [1, 2, 3])  # nan: no ranking


def test_each_report_is_a_proxy_with_its_cost_and_the_cheapest_good_one_is_chosen():
    truths = [0.80, 0.85, 0.88, 0.86, 0.83, 0.81, 0.84, 0.87]
    early = [0.700, 0.720, 0.740, 0.730, 0.710, 0.705, 0.715, 0.735]  # in the truth's order
    rows = fidelity.proxies(study(truths, early))
    sub = next(r for r in rows if r["proxy"] == "sub5k" and r["epoch"] == 0.75)
    assert sub["spearman"] == pytest.approx(1.0) and sub["best_by_proxy"] == "c2"
    assert sub["cost_full_epochs"] == pytest.approx(5_000 * 0.75 / 20_000)
    assert not any(r["proxy"] == "full" and r["epoch"] == 4 for r in rows), "the truth is not its own proxy"
    assert fidelity.cheapest_good(rows) is sub  # the full curve is flat until the end: it ranks nothing
    assert fidelity.cheapest_good(fidelity.proxies(study(truths[:5], early[:5]))) is None, "5 configs are too few"

    backwards = [1.5 - e for e in early]
    reversed_rows = fidelity.proxies(study(truths, backwards))
    assert fidelity.cheapest_good(reversed_rows) is None
    assert "the study names no default yet" in fidelity.section(
        {"command": "x", "truth": "t", "proxies": reversed_rows,
         "configs": {n: {"full_val_accuracy": r["full"]["curve"][-1]["val_accuracy"], "runs": r}
                     for n, r in study(truths, backwards).items()}})


def test_collect_writes_the_record_and_a_resumed_study_trains_only_what_it_lacks(tmp_path):
    runs, out = tmp_path / "runs", tmp_path / "out"
    truths = [0.80, 0.85, 0.88, 0.86, 0.83, 0.81, 0.84, 0.87]
    early = [0.70, 0.72, 0.74, 0.73, 0.71, 0.705, 0.715, 0.735]
    for name, kinds in study(truths, early).items():
        for kind, run in kinds.items():
            write_json_atomically(runs / name / kind / "record.json", run)
    args = type("Args", (), {"runs_dir": runs, "record_dir": out})()
    assert fidelity.collect(args) == 0
    written = json.loads((out / "imdb_fidelity.json").read_text())
    assert written["configs"]["c2"]["full_val_accuracy"] == 0.88
    assert "**sub5k at 0.75 epoch(s)**" in (out / "imdb_fidelity.md").read_text()
    fresh = tmp_path / "fresh"
    assert seed_from_record(out / "imdb_fidelity.json", fresh) == 16
    assert seed_from_record(out / "imdb_fidelity.json", fresh) == 0
    assert json.loads((fresh / "c0" / "full" / "record.json").read_text()) == written["configs"]["c0"]["runs"]["full"]


def test_a_configuration_the_record_holds_keeps_its_fields_when_the_search_space_changes(tmp_path):
    drawn = {"batch_size": 128, "embed_dim": 64, "hidden_dim": 64, "num_layers": 3, "is_bidirectional": False,
             "dropout": 0.1, "embed_dropout": 0.0, "pooling": "last", "optimizer": "Adam",
             "optimizer_params": {"lr": 0.001}, "grad_clip": 1.0}
    trained = {**drawn, "config_name": "random_0", "epochs": 4, "seed": 1000, "lr_schedule": "onecycle"}
    path = tmp_path / "imdb_fidelity.json"
    path.write_text(json.dumps({"configs": {"random_0": {"runs": {"full": {"config": trained}}}}}))
    assert fidelity.study_configs()["random_0"] != drawn
    configs = fidelity.study_configs(path)
    assert configs["random_0"] == drawn and "bigru1_wide_dropout" in configs and "random_1" in configs


def test_the_schedules_are_compared_paired_at_each_early_point():
    truths = [0.80, 0.85, 0.88, 0.86, 0.83, 0.81, 0.84, 0.87]
    configs = {}
    for index, truth in enumerate(truths):
        name = f"c{index}"
        cycle = [0.6] * 3 + [1.7 - truth] + [0.6] * 11 + [truth]  # at 1 epoch it ranks against the truth
        const = [0.6] * 3 + [truth - 0.1] + [0.6] * 4  # at 1 epoch it ranks like the truth
        configs[name] = {"full_val_accuracy": truth,
                         "runs": {"full": record(name, "full", cycle, 22_600, 270.0),
                                  "full_const": record(name, "full_const", const, 22_600, 270.0)}}
    table = "\n".join(fidelity.schedule_lines({"configs": configs}))
    row = next(line for line in table.splitlines() if line.startswith("| 1 |"))
    assert row.startswith("| 1 | -1.00 | +1.00 | +2.00 [+2.00, +2.00] |")
    assert fidelity.schedule_lines({"configs": {"c0": configs["c0"]}}) == [], "too few configurations to rank"


def test_the_paired_difference_interval_holds_the_difference():
    truth = [1, 2, 3, 4, 5, 6, 7, 8]
    low, high = difference_interval([8, 7, 6, 5, 4, 3, 2, 1], truth, truth)
    assert low == pytest.approx(2.0) and high == pytest.approx(2.0)
    noisy = [1, 3, 2, 4, 6, 5, 8, 7]
    low, high = difference_interval(noisy, truth, truth)
    assert 0 <= low < high <= 1
