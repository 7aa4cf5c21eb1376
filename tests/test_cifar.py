"""Tests for the CIFAR-10 pipe, trial, checkpoints and CLI on a tiny generated copy in the hub layout.

Every class is one colour plus noise, so a tiny model learns it in one epoch; nothing here touches the
network or the shared data, and the cache lives in a temp dir.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from data_pipes import cifar10
from data_pipes.common import DataSourceError
from experiments import cifar as cifar_cli
from experiments.core.cli import run_cli
from experiments.tasks.cifar.config import VisionConfig
from experiments.tasks.cifar.trial import (
    CheckpointError,
    confusion_matrix,
    evaluate_split,
    load_checkpoint,
    save_checkpoint,
    train_vision,
)
from models.vision import build_model
from tests.conftest import write_cifar

ROOT = Path(__file__).resolve().parents[1]
TRAIN_PER_CLASS, TEST_PER_CLASS = 40, 6
TINY = dict(
    config_name="tiny_vit", model_type="vit", patch_size=8, hidden_size=32, num_hidden_layers=1,
    num_attention_heads=2, mlp_ratio=2.0, batch_size=16, epochs=1, lr=3e-3, weight_decay=0.0,
    label_smoothing=0.0, seed=0,
)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny models gain nothing from threads, and on a busy 2-core box extra ones only wait for a core."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    return write_cifar(tmp_path_factory.mktemp("cifar10"), TRAIN_PER_CLASS, TEST_PER_CLASS)


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("cache")


def load(cache: Path, data_dir: Path, **kwargs) -> cifar10.CifarData:
    """`cifar10.load` with this module's own cache dir (whatever a conftest sets per test)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TUNELAB_CACHE", str(cache))
        return cifar10.load(str(data_dir), **kwargs)


@pytest.fixture(scope="module")
def data(data_dir, cache) -> cifar10.CifarData:
    return load(cache, data_dir)


@pytest.fixture(scope="module")
def trained(data, tmp_path_factory):
    """One epoch of the tiny ViT through the trial function, best checkpoint kept by a reporter."""

    class KeepLast:
        def __init__(self, folder: Path) -> None:
            self.folder, self.metrics = folder, []

        def report(self, metrics, checkpoint_dir):
            import shutil

            self.metrics.append(metrics)
            shutil.copytree(checkpoint_dir, self.folder, dirs_exist_ok=True)

        def resume_from(self):
            return None

    reporter = KeepLast(tmp_path_factory.mktemp("ckpt") / "best")
    summary = train_vision(dict(TINY), data, reporter)
    return summary, reporter


# ---- data pipe -------------------------------------------------------------------------------------


def test_load_shapes_and_cache_hit(data_dir, cache, data, capfd):
    assert data.train.images.shape[1:] == (32, 32, 3) and data.train.images.dtype == np.uint8
    assert len(data.train) + len(data.val) == 10 * TRAIN_PER_CLASS and len(data.test) == 10 * TEST_PER_CLASS
    assert len(list(cache.glob("cifar10-*.npz"))) == 1
    again = load(cache, data_dir)
    assert "from cache" in capfd.readouterr().err
    np.testing.assert_array_equal(again.train.images, data.train.images)
    np.testing.assert_array_equal(again.val.labels, data.val.labels)


def test_val_split_stratified_and_seeded(data_dir, cache, data):
    assert np.bincount(data.val.labels, minlength=10).tolist() == [TRAIN_PER_CLASS // 10] * 10
    other = load(cache, data_dir, seed=1)
    assert not np.array_equal(np.sort(other.val.images.reshape(len(other.val), -1).sum(1)),
                              np.sort(data.val.images.reshape(len(data.val), -1).sum(1)))
    subset = load(cache, data_dir, subset=100)
    assert len(subset.train) == 100 and np.bincount(subset.train.labels).tolist() == [10] * 10


def test_missing_data_dir_is_a_data_source_error(tmp_path):
    with pytest.raises(DataSourceError, match="data dir not found"):
        cifar10.load(str(tmp_path / "nowhere"))
    with pytest.raises(DataSourceError, match="no 'train' parquet"):
        cifar10.load(str(tmp_path))


def test_unreachable_hub_fails_fast_with_a_clear_line(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(DataSourceError, match="--data-dir"):
        cifar10.load(None)


def test_crop_flip_and_jitter_keep_shape_and_range():
    torch.manual_seed(0)
    x = torch.rand(8, 3, 32, 32)
    out = cifar10.crop_flip(x)
    assert out.shape == x.shape and 0 <= out.min() and out.max() <= 1
    same = cifar10.crop_flip(x, padding=0)  # no padding: each image is itself or its mirror
    assert all(torch.equal(s, i) or torch.equal(s, i.flip(-1)) for s, i in zip(same, x, strict=True))
    jittered = cifar10.color_jitter(x, 3)
    assert jittered.shape == x.shape and 0 <= jittered.min() and jittered.max() <= 1
    assert torch.equal(cifar10.color_jitter(x, 0), x)


def test_mix_gives_soft_targets_that_sum_to_one():
    torch.manual_seed(0)
    x, y = torch.rand(6, 3, 32, 32), torch.arange(6)
    for mixup, cutmix in ((1.0, 0.0), (0.0, 1.0)):
        mixed, targets = cifar10.mix(x, y, 10, mixup, cutmix)
        assert mixed.shape == x.shape and targets.shape == (6, 10)
        torch.testing.assert_close(targets.sum(1), torch.ones(6))
    unmixed, labels = cifar10.mix(x, y, 10, 0.0, 0.0)
    assert unmixed is x and labels is y


# ---- trial and checkpoints -------------------------------------------------------------------------


def test_one_epoch_beats_chance(trained):
    summary, reporter = trained
    assert summary["epochs_run"] == 1 and len(reporter.metrics) == 1
    metrics = reporter.metrics[0]
    assert {"train_loss", "val_loss", "val_accuracy", "img_per_s", "epoch_seconds"} <= set(metrics)
    assert metrics["val_accuracy"] > 2 * (1 / 10)  # chance is 1/10 with balanced classes


def test_checkpoint_round_trip_and_pipeline(trained, data):
    from transformers import pipeline

    _, reporter = trained
    model, config = load_checkpoint(reporter.folder)
    assert config.config_name == "tiny_vit"
    fresh, _ = load_checkpoint(reporter.folder)
    x = cifar10.model_input(data.test.images[:4], torch.device("cpu"), config.image_size)
    with torch.no_grad():
        torch.testing.assert_close(model(pixel_values=x).logits, fresh(pixel_values=x).logits)
    ours = evaluate_split(model, data.test.images[:4], data.test.labels[:4], torch.device("cpu"), 32)
    classify = pipeline("image-classification", model=str(reporter.folder), device="cpu")
    for image, predicted in zip(data.test.images[:4], ours["predictions"], strict=True):
        top = classify(Image.fromarray(image), top_k=1)[0]["label"]
        assert top == data.class_names[predicted]


def test_class_probabilities_agree_with_evaluation_and_predict(trained, data, tmp_path):
    """What an ensemble averages (experiments/reporting/ensemble.py): the softmax evaluation takes its argmax of, in the
    order of the task's class names, which are the data pipe's."""
    import io

    from experiments.tasks.cifar.task import TASK

    _, reporter = trained
    assert TASK.labels == cifar10.CLASS_NAMES == data.class_names
    probabilities, labels = TASK.split_probabilities(reporter.folder, data, "test", torch.device("cpu"))
    model, _ = load_checkpoint(reporter.folder)
    ours = evaluate_split(model, data.test.images, data.test.labels, torch.device("cpu"), 32)
    assert probabilities.shape == (len(data.test.labels), 10) and np.allclose(probabilities.sum(-1), 1, atol=1e-5)
    assert (probabilities.argmax(-1) == ours["predictions"]).all() and (labels == data.test.labels).all()
    encoded = []
    for image in data.test.images[:3]:
        buffer = io.BytesIO()
        Image.fromarray(image).save(buffer, format="PNG")
        encoded.append(buffer.getvalue())
    assert TASK.predict(reporter.folder, encoded) == [
        (TASK.labels[int(row.argmax())], pytest.approx(float(row.max()), abs=1e-5)) for row in probabilities[:3]]


def test_channels_last_model_saves_and_reloads(tmp_path):
    config = VisionConfig.from_dict(dict(TINY))
    model = build_model(config.model_params()).to(memory_format=torch.channels_last).eval()
    save_checkpoint(model, config, tmp_path)
    loaded, _ = load_checkpoint(tmp_path)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(model(pixel_values=x).logits, loaded(pixel_values=x).logits)


def test_corrupt_or_foreign_checkpoint_is_a_clear_error(trained, tmp_path):
    import shutil

    with pytest.raises(CheckpointError, match="missing"):
        load_checkpoint(tmp_path)
    broken = tmp_path / "broken"
    shutil.copytree(trained[1].folder, broken)
    (broken / "model.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(CheckpointError, match="cannot load"):
        load_checkpoint(broken)


def test_confusion_matrix_counts():
    matrix = confusion_matrix(np.array([0, 1, 1, 2]), np.array([0, 1, 2, 2]), 3)
    assert matrix.tolist() == [[1, 0, 0], [0, 1, 0], [0, 1, 1]]


# ---- command line ----------------------------------------------------------------------------------


def test_cli_writes_run_json(data_dir, cache, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("TUNELAB_CACHE", str(cache))
    config_path = tmp_path / "tiny.json"
    VisionConfig.from_dict(dict(TINY)).to_json(config_path)
    argv = ["--model", "vit", "--config", str(config_path), "--data-dir", str(data_dir), "--subset", "200",
            "--output-dir", str(tmp_path / "out"), "--name", "renamed"]
    assert cifar_cli.main(argv) == 0
    run = json.loads((tmp_path / "out" / "renamed" / "run.json").read_text())
    assert run["config"]["config_name"] == "renamed"
    assert run["task"] == "cifar" and run["train_images"] == 200 and run["epochs_run"] == 1
    assert 0 <= run["test_accuracy"] <= 1
    assert np.array(run["test_confusion_matrix"]).sum() == 10 * TEST_PER_CLASS
    assert (tmp_path / "out" / "renamed" / "best" / "model.safetensors").is_file()
    assert "test_accuracy=" in capsys.readouterr().out


def test_vision_report_shows_compute_errors_and_confusion(data_dir, cache, tmp_path, monkeypatch):
    """The report compares on MACs (device-independent), gives ± standard errors and the winner's confusion."""
    from experiments import summarize

    monkeypatch.setenv("TUNELAB_CACHE", str(cache))
    config_path = tmp_path / "tiny.json"
    VisionConfig.from_dict(dict(TINY)).to_json(config_path)
    assert cifar_cli.main(["--model", "vit", "--config", str(config_path), "--data-dir", str(data_dir),
                           "--subset", "200", "--output-dir", str(tmp_path / "outputs" / "cifar")]) == 0
    out = tmp_path / "model_checkpoints"
    assert summarize.main(["--outputs", str(tmp_path / "outputs"), "--ray-results", str(tmp_path / "none"),
                           "--out", str(out), "--tasks", "cifar"]) == 0
    folder = out / "assignment2-2-2"
    report = (folder / "report.md").read_text()
    test_accuracy = json.loads((folder / "tiny_vit" / "metrics.json").read_text())["test_accuracy"]
    error = (test_accuracy * (1 - test_accuracy) / 10_000) ** 0.5
    assert f"{test_accuracy:.4f} ± {error:.4f}" in report and "| GMACs/img |" in report
    assert "](confusion_matrix.png)" in report and (folder / "confusion_matrix.png").is_file()
    assert "](accuracy_vs_cost.png)" in report and "Per million" not in report
    assert "`swin_assignment`) is rejected at 32 px: " in report and "85.8 M params" in report


def test_vit_against_swin_states_the_accuracy_gap_with_its_error_and_memory():
    """One seed each and 0.41 points apart (the H200 pair): the report must say that is within noise."""
    from experiments.reporting.candidates import Candidate
    from experiments.tasks.cifar.config import resolve_vision_config
    from experiments.tasks.cifar.task import comparison

    def candidate(preset: str, family: str, test: float) -> Candidate:
        return Candidate("cifar", family, preset, "one-config run", resolve_vision_config(preset).to_dict(), test,
                         test, 80, 60.0, 1_000_000, 1000.0, [], Path(preset), machine={"gpu": "H200"})

    lines = comparison([candidate("swin_small_p2", "swin", 0.8196), candidate("vit_small_p4", "vit", 0.8155)])
    accuracy = next(line for line in lines if line.startswith("Accuracy:"))
    assert "SWIN `swin_small_p2` leads VIT `vit_small_p4` by 0.41 ± 0.55 points" in accuracy
    assert accuracy.endswith("no measurable difference.") and "one seed each" in accuracy
    wide = comparison([candidate("swin_small_p2", "swin", 0.8196), candidate("vit_small_p4", "vit", 0.7900)])
    assert next(line for line in wide if line.startswith("Accuracy:")).endswith("standard error of the gap.")
    cost = next(line for line in lines if line.startswith("Cost per image"))
    assert re.search(r"batch of 128 take \d+\.\d\d GB \(ViT\) and \d+\.\d\d GB \(Swin\)", cost)


def test_search_trial_reports_inside_the_epoch(data_dir, cache, monkeypatch):
    """The task's trial (what Tune runs) honours the engine's sub-epoch reports, with params and MACs on each."""
    from experiments.tasks import get_task

    class Recorder:
        report_every = 0.5

        def __init__(self) -> None:
            self.seen: list[dict] = []

        def report(self, metrics: dict, checkpoint_dir: str) -> None:
            self.seen.append(metrics)

        def resume_from(self) -> None:
            return None

    monkeypatch.setenv("TUNELAB_CACHE", str(cache))
    recorder = Recorder()
    get_task("cifar").trial(dict(TINY, epochs=2), cifar10.load(str(data_dir), subset=200, seed=0), recorder)
    assert [round(m["epoch"], 2) for m in recorder.seen] == [0.5, 1.0, 1.5, 2.0]
    assert all(m["params"] > 0 and m["macs_per_image"] > 0 for m in recorder.seen)


def test_cli_model_and_config_must_agree(capsys):
    with pytest.raises(SystemExit) as exit_info:
        run_cli(lambda: cifar_cli.main(["--model", "vit", "--config", "swin_small_p2"]))
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.strip() == "error: --model vit but config 'swin_small_p2' is a swin config"


def test_cli_bad_config_exits_2_with_one_line(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "experiments.cifar", "--model", "swin", "--config", "swin_assignment",
         "--data-dir", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "window_size 5" in lines[0]
    assert "Traceback" not in result.stderr


def test_the_cpu_fast_path_trains_bf16_channels_last_and_records_it(data):
    summary = train_vision({**TINY, "precision": "bf16"}, data)
    assert summary["fixed"]["precision"] == "bf16 autocast" and summary["fixed"]["memory_format"] == "channels_last"
    assert 0 <= summary["history"][-1]["val_accuracy"] <= 1
    assert train_vision(dict(TINY), data)["fixed"]["memory_format"] == "contiguous"


def test_vit_and_swin_accuracies_compare_only_under_one_recipe():
    """A GPU-trained Swin leads a CPU-trained ViT by far: the report compares the pair trained alike instead."""
    from experiments.reporting.candidates import Candidate
    from experiments.tasks.cifar.config import resolve_vision_config
    from experiments.tasks.cifar.task import comparison

    def candidate(name: str, preset: str, family: str, test: float, machine: dict) -> Candidate:
        return Candidate("cifar", family, name, "one-config run", resolve_vision_config(preset).to_dict(), test,
                         test, 80, 60.0, 1_000_000, 1000.0, [], Path(name), machine=machine)

    gpu, cpu = {"gpu": "H200"}, {"cpu": "AMD EPYC", "torch_threads": 2}
    ranked = [candidate("swin_gpu", "swin_small_p2", "swin", 0.82, gpu), candidate("vit_cpu", "vit_small_p4", "vit",
              0.55, cpu), candidate("swin_cpu", "swin_small_p2", "swin", 0.53, cpu)]
    lines = comparison(ranked)
    assert any("trained under different recipes" in line for line in lines)
    accuracy = next(line for line in lines if line.startswith("Accuracy:"))
    assert "VIT `vit_cpu` leads SWIN `swin_cpu`" in accuracy
    lonely = comparison(ranked[:2])
    assert any(line.startswith("No ViT and Swin trained") for line in lonely)
    assert not any(line.startswith("Accuracy:") for line in lonely)


def _fill_cache(path: str) -> None:
    from data_pipes.common import save_npz_atomic

    for _ in range(25):
        save_npz_atomic(Path(path), images=np.zeros((64, 32, 32, 3), dtype=np.uint8))


def test_processes_filling_one_cache_at_once_all_succeed(tmp_path):
    """Trials that start together on a fresh machine each write the data cache: no writer may lose its temp file
    to another's rename."""
    import multiprocessing

    path = tmp_path / "cifar10-key.npz"
    with multiprocessing.get_context("spawn").Pool(3) as pool:
        pool.map(_fill_cache, [str(path)] * 3)
    with np.load(path) as cached:
        assert cached["images"].shape == (64, 32, 32, 3)
    assert [p.name for p in tmp_path.iterdir()] == [path.name]
