"""Ensembles of checkpoints (experiments/reporting/ensemble.py): selection on validation, the folder, evaluate and
predict.

Checkpoints come from the synthetic task (`tests/synthetic_task.py`) trained by the generic runner, no Ray:
seconds. The summarizer's path, from a real search's refits, is in tests/test_engine.py.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from experiments import evaluate, predict, runner
from experiments.core.errors import CheckpointError
from experiments.reporting import ensemble
from experiments.tasks import get_task

ROOT = Path(__file__).resolve().parents[1]
TASK_KEY = "tests.synthetic_task"


def two_class(predicted: list[int], confidence: list[float]) -> np.ndarray:
    """Probabilities that pick class `predicted[i]` with `confidence[i]`."""
    return np.array([[c, 1 - c] if k == 0 else [1 - c, c] for k, c in zip(predicted, confidence, strict=True)])


def test_selection_starts_from_the_winner_and_adds_only_what_raises_validation_accuracy():
    labels = np.array([0, 1, 1, 0, 1, 0])
    sure, unsure = 0.9, 0.55
    winner = two_class([0, 1, 1, 0, 0, 1], [sure] * 4 + [unsure] * 2)  # right on the first four, sure of them
    copy = winner.copy()  # adds nothing: same accuracy, same loss
    fixer = two_class([1, 0, 1, 0, 1, 0], [unsure] * 2 + [sure] * 4)  # right on the last four, sure of them
    assert ensemble.scores(winner, labels)["accuracy"] == ensemble.scores(fixer, labels)["accuracy"] == 4 / 6
    assert ensemble.scores((winner + fixer) / 2, labels)["accuracy"] == 1.0
    assert ensemble.select_members([winner, copy, fixer], labels) == [0, 2]
    assert ensemble.select_members([winner, copy], labels) == [0], "no gain on validation: the winner alone"


def test_scores_are_accuracy_and_mean_negative_log_likelihood():
    labels = np.array([0, 1])
    result = ensemble.scores(np.array([[0.9, 0.1], [0.4, 0.6]]), labels)
    assert result["accuracy"] == 1.0
    assert result["loss"] == pytest.approx(-(np.log(0.9) + np.log(0.6)) / 2)


@pytest.fixture(scope="module")
def members(tmp_path_factory) -> list[Path]:
    """Two synthetic checkpoints of different widths, each trained by the generic runner."""
    out = tmp_path_factory.mktemp("runs")
    task = get_task(TASK_KEY)
    folders = []
    for preset in ("blob_mlp", "blob_wide"):
        assert runner.main(task, ["--config", preset, "--epochs", "2", "--output-dir", str(out / preset)],
                           module="experiments.runner") == 0
        run = json.loads(next((out / preset).glob("*/run.json")).read_text())
        folders.append(Path(run["checkpoint"]))
    return folders


def test_an_ensemble_folder_evaluates_and_predicts_like_its_averaged_members(members, tmp_path, capsys):
    task = get_task(TASK_KEY)
    folder = tmp_path / "ensemble"
    ensemble.write_members(members, folder, skip=set())
    assert ensemble.is_ensemble(folder) and ensemble.member_folders(folder) == [folder / "member_1",
                                                                                 folder / "member_2"]
    assert json.loads((folder / "experiment_config.json").read_text())["task"] == TASK_KEY

    data = task.load_data(None, None, 0)
    averaged = np.mean([task.split_probabilities(m, data, "test", None)[0] for m in members], axis=0)
    expected = ensemble.scores(averaged, data.test.y)
    result = evaluate.evaluate_checkpoint(folder, None)
    assert result["test_accuracy"] == pytest.approx(expected["accuracy"])
    assert result["test_loss"] == pytest.approx(expected["loss"], rel=1e-5)
    assert result["confusion"].sum() == len(data.test.y), "three classes: the confusion matrix of the average"

    inputs = ["0,0,0,0,0,0,0,0", "1,1,1,1,1,1,1,1", "2,0,1,0,2,0,1,0"]
    averaged = np.mean([task.input_probabilities(m, inputs) for m in members], axis=0)
    rows = ensemble.predict(task, folder, inputs)
    assert [label for label, _ in rows] == [task.labels[i] for i in averaged.argmax(-1)]
    assert [p for _, p in rows] == pytest.approx(averaged.max(-1).tolist())
    capsys.readouterr()
    assert predict.main([str(folder), *inputs]) == 0
    assert [line.split("\t")[0] for line in capsys.readouterr().out.splitlines()] == [label for label, _ in rows]
    # one model is not an ensemble: predict goes to the task as before
    assert ensemble.predict(task, members[0], inputs) == task.predict(members[0], inputs)


def test_a_broken_ensemble_is_one_line_and_exit_2(members, tmp_path):
    folder = tmp_path / "ensemble"
    ensemble.write_members(members, folder, skip=set())
    (folder / "member_2" / "experiment_config.json").unlink()
    with pytest.raises(CheckpointError, match="member_2"):
        ensemble.member_folders(folder)
    done = subprocess.run([sys.executable, "-m", "experiments.evaluate", str(folder)], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines() == [f"error: ensemble {folder}: member folder(s) missing or "
                                                "incomplete: member_2"]


def test_the_ensembles_benchmark_scores_each_model_and_their_average(members, capsys):
    from experiments.benchmarks import ensembles

    task = get_task(TASK_KEY)
    data = task.load_data(None, None, 0)
    vals = [task.split_probabilities(m, data, "val", None)[0] for m in members]
    capsys.readouterr()
    assert ensembles.main([str(m) for m in members]) == 0  # validation by default: it informs a default
    lines = capsys.readouterr().out.splitlines()
    assert " val examples" in lines[0]
    assert [float(line.split()[0]) for line in lines[1:3]] == pytest.approx(
        [round(ensemble.scores(v, data.val.y)["accuracy"], 4) for v in vals], abs=1e-4)
    tests = [task.split_probabilities(m, data, "test", None)[0] for m in members]
    assert ensembles.main([str(m) for m in members] + ["--split", "test"]) == 0
    lines = capsys.readouterr().out.splitlines()
    singles = [float(line.split()[0]) for line in lines[1:3]]
    assert singles == pytest.approx([round(ensemble.scores(t, data.test.y)["accuracy"], 4) for t in tests], abs=1e-4)
    both = ensemble.scores(np.mean(tests, axis=0), data.test.y)["accuracy"]
    assert float(lines[3].split()[0]) == pytest.approx(both, abs=1e-4)
    assert lines[3].endswith(" + ".join(str(m) for m in members)), "two folders named best: shown by their paths"
    assert lines[4].startswith("gain of an ensemble over its best member: ") and "over 1 ensembles" in lines[4]
    done = subprocess.run([sys.executable, "-m", "experiments.benchmarks.ensembles", str(members[0])], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and done.stderr.strip() == "error: give two or more exported models"
