"""What a user sees: dry runs that train nothing, warnings before memory runs out, quiet logs off a terminal."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from data_pipes import imdb as imdb_data
from experiments.core.cli import UsageError
from experiments.core.space import Param, SearchSpace
from experiments.tasks import get_task
from experiments.tasks.imdb.config import ExperimentConfig
from search import engine

ROOT = Path(__file__).resolve().parents[1]


def test_imdb_dry_run_prints_the_plan_and_creates_nothing(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "search.imdb", "--dry-run", "--trials", "7", "--concurrency", "2",
         "--tracking-uri", f"sqlite:///{tmp_path / 'mlflow.db'}", "--storage-path", str(tmp_path / "ray")],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "weight_decay" in out and "optimizer          = AdamW" in out
    assert "optuna TPE after 4 random trials" in out  # not Optuna's 10, which would leave 7 trials unguided
    assert "ASHA on val_accuracy (max): max_t=4 epochs, grace period 2, reduction factor 3" in out  # IMDB's
    assert "data: the search trains on all of the training split" in out
    assert "reports: every 0.5 epoch; refit: none" in out
    assert "time budget: the search phase ends after 57 min (--time-budget 0: none)" in out
    assert "7 trials, 2 in parallel" in out and "M params" in out
    assert not (tmp_path / "mlflow.db").exists() and not (tmp_path / "ray").exists()
    assert not (tmp_path / "mlruns").exists()


def test_cifar_dry_run_estimates_cost_and_warns_over_budget(capsys):
    argv = ["--dry-run", "--model", "both", "--max-memory", "0.001", "--dry-run-samples", "3"]
    assert engine.main(get_task("cifar"), argv) == 0
    out = capsys.readouterr().out
    assert "GMACs/img" in out and "WARNING: activations exceed --max-memory 0.001 GB" in out


def test_an_all_invalid_space_is_rejected_with_the_reason():
    impossible = SearchSpace(
        params=[Param("lr", "loguniform", 1e-4, 1e-3)],
        constants={"model_type": "swin", "patch_size": 2, "window_size": 5, "epochs": 1},
    )
    with pytest.raises(UsageError, match="every sampled configuration is invalid.*window_size"):
        engine.main(replace(get_task("cifar"), space=lambda args: impossible), ["--dry-run", "--dry-run-samples", "2"])


def test_progress_is_quiet_off_a_terminal_and_data_prep_says_what_it_does(imdb_dir, tmp_path, capfd):
    imdb_data.load(str(imdb_dir))
    capfd.readouterr()
    imdb_data.load(str(imdb_dir))
    assert "from cache" in capfd.readouterr().err
    config = tmp_path / "c.json"
    ExperimentConfig(config_name="quiet", batch_size=16, embed_dim=8, hidden_dim=8, num_layers=1, epochs=1).to_json(
        config
    )
    done = subprocess.run(
        [sys.executable, "-m", "experiments.imdb", "--config", str(config), "--data-dir", str(imdb_dir),
         "--output-dir", str(tmp_path / "out")],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert "\r" not in done.stderr and "batch/s" not in done.stderr
    assert "[data] IMDB: token ids from cache" in done.stderr
    assert done.stdout.count("epoch=1 ") == 1
