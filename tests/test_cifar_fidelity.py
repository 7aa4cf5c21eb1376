"""The CIFAR fidelity study's own parts on made-up curves: its configurations, the workers' shares, the write-up."""

from __future__ import annotations

import json

from experiments.benchmarks import cifar_fidelity as study
from experiments.benchmarks.fidelity import write_json_atomically


def record(name: str, family: str, kind: str, scores: list[float], images: int, epochs: int) -> dict:
    return {"config_name": name, "run": {"kind": kind, "subset": None, "epochs": epochs},
            "config": {"model_type": family, "lr": 1e-3}, "gmacs_per_image": 0.05, "train_examples": images,
            "curve": [{"epoch": (i + 1) * study.REPORT_EVERY, "val_accuracy": s} for i, s in enumerate(scores)],
            "train_seconds": 60.0 * epochs, "load_average_start": 1.0, "load_average_end": 2.0,
            "machine": {"cpu": "test", "torch_threads": 1}, "precision": "bf16"}


def test_the_study_draws_each_family_within_the_presets_cost_and_the_workers_split_it():
    configs = study.study_configs()
    assert set(study.PRESETS) <= set(configs)
    for family in ("swin", "vit"):
        drawn = [c for n, c in configs.items() if n.startswith(f"random_{family}_")]
        assert len(drawn) == study.DRAWS_PER_FAMILY and {c["model_type"] for c in drawn} == {family}
    ceiling = max(study.gmacs(configs[name]) for name in study.PRESETS)
    assert all(study.gmacs(c) <= ceiling for c in configs.values())
    assert study.study_configs() == configs, "the draws are the same on every machine"
    shares = [study.worker_share(configs, worker, 2) for worker in (0, 1)]
    assert sorted(shares[0] + shares[1]) == sorted(configs) and not set(shares[0]) & set(shares[1])
    assert abs(len(shares[0]) - len(shares[1])) <= 1


def test_a_configuration_the_record_holds_keeps_its_recorded_fields(tmp_path):
    trained = {**study.study_configs()["random_vit_0"], "lr": 0.0123, "config_name": "random_vit_0", "epochs": 6}
    path = tmp_path / "cifar_fidelity.json"
    path.write_text(json.dumps({"configs": {"random_vit_0": {"runs": {"full": {"config": trained}}}}}))
    assert study.study_configs(path)["random_vit_0"]["lr"] == 0.0123


def test_collect_ranks_the_proxies_and_writes_the_section(tmp_path):
    runs, out = tmp_path / "runs", tmp_path / "out"
    truths = [0.50, 0.55, 0.58, 0.56, 0.53, 0.51, 0.54, 0.57]
    for index, truth in enumerate(truths):
        name, family = f"c{index}", ("swin", "vit")[index % 2]
        full = [0.2 + truth / 4 * i for i in range(1, 12)] + [truth]  # ranks like the truth from the start
        write_json_atomically(runs / name / "full" / "record.json", record(name, family, "full", full, 45_000, 6))
        sub = [0.3, 0.35, 0.4, 0.9 - truth]  # ranks against it
        write_json_atomically(runs / name / "sub10k" / "record.json",
                              record(name, family, "sub10k", sub, 10_000, 2))
    args = type("Args", (), {"runs_dir": runs, "record_dir": out})()
    assert study.collect(args) == 0
    written = json.loads((out / "cifar_fidelity.json").read_text())
    sub = next(r for r in written["proxies"] if r["proxy"] == "sub10k" and r["epoch"] == 2)
    assert sub["spearman"] < -0.9 and abs(sub["cost_full_epochs"] - 10_000 * 2 / 45_000) < 1e-9
    section = (out / "cifar_fidelity.md").read_text()
    assert "**full at 0.5 epoch(s)**" in section and "Best configuration at the longer budget: `c2`" in section
    assert (out / "cifar_fidelity.csv").read_text().startswith("proxy,epoch")


def test_parity_compares_the_fast_path_with_fp32_once_both_runs_finished():
    name, run = study.PARITY
    fast = record(name, "swin", "full", [0.5] * 11 + [0.6], 45_000, 6)
    slow = {**record(name, "swin", run.kind, [0.5] * 11 + [0.61], 45_000, 6), "train_seconds": 540.0,
            "precision": "fp32"}
    assert study.parity_lines({name: {"runs": {"full": fast}}}) == []
    line = study.parity_lines({name: {"runs": {"full": fast, run.kind: slow}}})[-1]
    assert ("val 0.6000 under bf16 (6.0 min of training, load average 1.0 → 2.0) against 0.6100 under fp32 "
            "(9.0 min of training, load average 1.0 → 2.0;") in line and "no speed comparison" in line
    assert "standard error here is 0.69 points" in line
