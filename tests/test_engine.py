"""The engine, summarizer, evaluate and predict on a third task that lives only in `tests/synthetic_task.py`.

No IMDB or CIFAR data: a search of a few seconds per trial exercises ranking, statuses, MLflow nesting,
kill-and-resume and the export path, so the engine's logic is tested fast and independently of any workload.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from experiments import evaluate, predict, runner, summarize
from experiments.tasks import get_task
from tests.conftest import descendants, mlflow_client

ROOT = Path(__file__).resolve().parents[1]
TASK_KEY = "tests.synthetic_task"


def search_cmd(workdir: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "search", "--task", TASK_KEY, "--storage-path", str(workdir / "ray_results"),
            "--tracking-uri", f"sqlite:///{workdir / 'mlflow.db'}", "--verbose", "0", *extra]


@pytest.fixture
def env(tmp_path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "TUNELAB_CACHE": str(tmp_path / "cache")}


def runs_of(db: Path, phase: str = "search") -> tuple[list, list]:
    """The search's parent runs and its children of one phase ("search" trials or "refit" runs)."""
    client = mlflow_client(db)
    experiment = client.get_experiment_by_name("tunelab-synthetic")
    runs = client.search_runs([experiment.experiment_id]) if experiment else []
    return ([r for r in runs if r.data.tags.get("tunelab.kind") == "search"],
            [r for r in runs
             if r.data.tags.get("tunelab.kind") == "trial" and r.data.tags.get("tunelab.phase") == phase])


def trial_index(row: dict) -> int:
    """The order Tune created a trial in, from its folder name (run_trial_<id>_<index>_...)."""
    return int(Path(row["path"]).name.removeprefix("run_trial_").split("_")[1])


def study_of(summary: dict):
    import optuna

    return optuna.load_study(study_name=summary["optuna_study"], storage=summary["optuna_storage"])


@pytest.fixture(scope="module")
def synthetic_search(tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    """One 8-trial Optuna + ASHA search reporting every half epoch, warm-started from a preset, then refit; one
    trial at a time so ASHA's decisions are reproducible."""
    workdir = tmp_path_factory.mktemp("engine")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TUNELAB_CACHE": str(workdir / "cache")}
    weak = workdir / "weak.json"  # a warm start ASHA would stop at once: it must still get its full budget
    weak.write_text(json.dumps({"task": TASK_KEY, "config_name": "weak", "hidden": 4, "lr": 0.001}))
    cmd = search_cmd(workdir, "--trials", "8", "--max-epochs", "4", "--concurrency", "1", "--name", "syn",
                     "--seed", "1", "--report-every", "0.5", "--grace-period", "0.5", "--warm-start", "blob_wide",
                     str(weak))
    return workdir, subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=400)


@pytest.mark.ray
def test_a_task_outside_the_registry_searches_ranks_and_tracks(synthetic_search):
    workdir, done = synthetic_search
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads((workdir / "ray_results" / "syn" / "search_summary.json").read_text())
    rows = summary["rows"]
    assert summary["workload"] == "synthetic" and summary["trials"] == 8 and summary["errored"] == 0
    scores = [r["best_val_accuracy"] for r in rows]
    assert scores == sorted(scores, reverse=True), "rows are ranked best first"
    assert summary["best_val_accuracy"] == scores[0] and summary["best_trial"] == rows[0]["trial_id"]
    assert summary["stopped_early"] >= 1 and summary["completed"] >= 1
    for row in rows:  # the status follows from the epochs a trial ran
        assert row["status"] == ("COMPLETED" if row["epochs"] == 4 else "STOPPED_EARLY")
    assert summary["trial_epochs"] == pytest.approx(sum(r["epochs"] for r in rows)) and summary["trial_epochs"] < 8 * 4
    assert min(r["epochs"] for r in rows) == 0.5, "ASHA stops a trial at its first rung, half an epoch in"
    first, second = sorted(rows, key=trial_index)[:2]  # the warm starts come first, exactly as given
    assert (first["params"]["hidden"], first["params"]["lr"]) == (64, 0.01)
    assert (second["params"]["hidden"], second["params"]["lr"]) == (4, 0.001)
    assert first["status"] == second["status"] == "COMPLETED", "ASHA never stops a warm start"

    study = study_of(summary)  # the persisted Optuna study holds exactly the trials run, each finished
    assert len(study.trials) == 8 and {t.state.name for t in study.trials} == {"COMPLETE"}
    assert set(summary["importance"]) <= {"lr", "hidden"} and summary["importance"]
    assert {Path(p["path"]).name for p in summary["plots"]} >= {"optuna_history.png", "optuna_slice.png"}

    # the best configuration and the warm starts, trained again with a fresh seed and tested once each
    refit_of = {r["search_trial"]: r for r in summary["refit"]}
    assert set(refit_of) == {rows[0]["trial_id"], first["trial_id"], second["trial_id"]}
    refit = refit_of[rows[0]["trial_id"]]
    assert refit["rank"] == 1 and refit["params"]["seed"] == 1 + 1000
    assert refit["epochs"] == 4 and 0 <= refit["test_accuracy"] <= 1
    assert refit_of[first["trial_id"]]["warm_start"] and refit_of[second["trial_id"]]["warm_start"]
    assert refit["warm_start"] == (rows[0] in (first, second))
    assert 0 < summary["search_wall_seconds"] < summary["wall_seconds"]
    assert summary["refit_wall_seconds"] == pytest.approx(summary["wall_seconds"] - summary["search_wall_seconds"])
    assert [r["warm_start"] for r in rows] == [r in (first, second) for r in rows], "rows mark the warm starts"
    assert "refit cost: up to 3 run(s) × 4 epochs × 600 examples = 7,200 examples" in done.stdout
    assert [r["val_accuracy"] for r in summary["refit"]] == sorted((r["val_accuracy"] for r in summary["refit"]),
                                                                   reverse=True)
    assert summary["command"].startswith(f"python -m search --task {TASK_KEY} ")
    assert f"export the winner: python -m experiments.summarize --tasks {TASK_KEY}" in done.stdout

    parents, children = runs_of(workdir / "mlflow.db")
    assert len(parents) == 1 and len(children) == 8
    assert {c.data.tags["mlflow.parentRunId"] for c in children} == {parents[0].info.run_id}
    assert parents[0].data.metrics["best_val_accuracy"] == pytest.approx(summary["best_val_accuracy"])
    client = mlflow_client(workdir / "mlflow.db")
    completed = next(c for c in children if c.data.tags["tunelab.status"] == "COMPLETED")
    epochs = [m.value for m in client.get_metric_history(completed.info.run_id, "epoch")]
    assert epochs[:2] == [0.5, 1.0], "every report is a step, its epoch a fractional metric"
    _, refits = runs_of(workdir / "mlflow.db", "refit")
    assert len(refits) == len(summary["refit"])
    assert {r.data.tags["mlflow.parentRunId"] for r in refits} == {parents[0].info.run_id}
    assert sorted(r.data.metrics["test_accuracy"] for r in refits) == pytest.approx(
        sorted(r["test_accuracy"] for r in summary["refit"]))
    assert parents[0].data.metrics["refit_test_accuracy"] == pytest.approx(summary["refit"][0]["test_accuracy"])


@pytest.mark.ray
def test_summarize_evaluate_and_predict_a_task_outside_the_registry(synthetic_search, tmp_path, capsys):
    workdir, done = synthetic_search
    assert done.returncode == 0, done.stderr[-3000:]
    task = get_task(TASK_KEY)
    # a one-config run of the same task, through the generic runner, competes with the search's winner
    assert runner.main(task, ["--config", "blob_wide", "--epochs", "2", "--output-dir",
                              str(tmp_path / "outputs" / "synthetic")], module="experiments.runner") == 0
    out = tmp_path / "model_checkpoints"
    assert summarize.main(["--outputs", str(tmp_path / "outputs"), "--ray-results", str(workdir / "ray_results"),
                           "--out", str(out), "--tasks", TASK_KEY, "--data-dir", f"{TASK_KEY}=generated"]) == 0
    folder = out / "synthetic-blobs"
    best = json.loads((folder / "best.json").read_text())
    assert {p.name for p in folder.iterdir() if p.is_dir()} == {"search_syn", "blob_wide", "searches"}
    kept = json.loads((folder / "searches" / "syn.json").read_text())
    assert kept["refit"], "the report's search is kept"
    paths = [kept["best_checkpoint"], *(r["path"] for r in kept["rows"]), *(r["checkpoint"] for r in kept["refit"])]
    assert all(path.startswith("syn/") for path in paths), "kept paths are relative to the storage root"
    exported = json.loads((folder / "search_syn" / "metrics.json").read_text())  # the search ships its refit
    refit = json.loads((workdir / "ray_results" / "syn" / "search_summary.json").read_text())["refit"][0]
    assert exported["source"] == "search syn (refit)" and exported["test_accuracy"] == refit["test_accuracy"]
    report = (folder / "report.md").read_text()
    assert report.startswith(f"# {task.title}") and "| hidden | lr |" in report and "ex/s" in report
    assert "Parameter importance" in report and "winner's curse" in report and "syn_optuna_slice.png" in report
    searched = json.loads((workdir / "ray_results" / "syn" / "search_summary.json").read_text())
    assert f"min wall (search {searched['search_wall_seconds'] / 60:.1f} + refit " in report  # apart
    opening = report.split("## Who found these models")[1].split("## Models")[0]  # said before the table
    winner = (f"sampled by search `syn` (trial `{refit['search_trial']}`)" if not refit["warm_start"] else
              "(a warm start of search `syn`)")
    assert f"- Shipped (best by validation): `{best['name']}` — " in opening
    assert (winner in opening) == (best["name"] == "search_syn")
    if best["name"] == "blob_wide":  # the one-config run of a preset: a person's configuration wins
        assert "hand-written: the preset `blob_wide`." in opening
        assert "A hand-written configuration still wins" in opening
    else:
        assert "Other exports of hand-written configurations (presets, or a search's warm start): `blob_wide`" \
            in opening
    produced = report.split("## How these numbers were produced")[1]  # every number traces to a listed run
    assert "\n- search `syn`: `python -m search " in produced and "\n- `search_syn`: `" in produced

    capsys.readouterr()
    assert evaluate.main([str(folder / best["name"])]) == 0
    assert f"task={TASK_KEY}" in capsys.readouterr().out
    recorded = json.loads((folder / best["name"] / "metrics.json").read_text())["test_accuracy"]
    assert evaluate.evaluate_checkpoint(folder / best["name"], None)["test_accuracy"] == pytest.approx(recorded)
    assert predict.main([str(folder / best["name"]), "0,0,0,0,0,0,0,0", "1,1,1,1,1,1,1,1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and all(line.split("\t")[0] in ("left", "middle", "right") for line in lines)


@pytest.mark.ray
def test_the_summarizer_exports_the_ensemble_of_a_searchs_refits_that_validation_picks(synthetic_search, tmp_path,
                                                                                        capsys, monkeypatch):
    """This search's three refits average to no higher validation accuracy than its winner: no ensemble. Where the
    selection (tested in tests/test_ensemble.py) picks members, the summarizer exports exactly those, scored on
    validation as their average and tested once; evaluate reproduces the number, predict and the report use it."""
    import numpy as np

    from experiments.reporting import ensemble

    workdir, done = synthetic_search
    assert done.returncode == 0, done.stderr[-3000:]
    task = get_task(TASK_KEY)
    refits = json.loads((workdir / "ray_results" / "syn" / "search_summary.json").read_text())["refit"]
    members = [Path(r["checkpoint"]) for r in refits]  # the best and the two warm starts, best validation first
    data = task.load_data(None, None, 0)
    val = [task.split_probabilities(member, data, "val", None)[0] for member in members]
    assert len(members) == 3 and ensemble.select_members(val, data.val.y) == [0]

    def summarize_into(out: Path, *extra: str) -> Path:
        assert summarize.main(["--outputs", str(tmp_path / "none"), "--ray-results", str(workdir / "ray_results"),
                               "--out", str(out), "--tasks", TASK_KEY, "--data-dir", f"{TASK_KEY}=generated",
                               *extra]) == 0
        return out / "synthetic-blobs"

    capsys.readouterr()
    assert not (summarize_into(tmp_path / "natural") / "search_syn_ensemble").exists()
    assert "no ensemble of search syn's 3 refits scores higher on validation" in capsys.readouterr().out

    chosen = [0, 2]
    monkeypatch.setattr(ensemble, "select_members", lambda probabilities, labels, metric: chosen)
    folder = summarize_into(tmp_path / "picked", "--all-weights") / "search_syn_ensemble"
    kept = json.loads((folder / "ensemble.json").read_text())
    assert [Path(source).resolve() for source in kept["sources"]] == [members[i].resolve() for i in chosen]
    assert ensemble.member_folders(folder) == [folder / "member_1", folder / "member_2"]
    metrics = json.loads((folder / "metrics.json").read_text())
    averaged = ensemble.scores(np.mean([val[i] for i in chosen], axis=0), data.val.y)["accuracy"]
    assert metrics["val_accuracy"] == pytest.approx(averaged)
    assert metrics["source"] == "search syn (ensemble of 2 refits)"
    test = ensemble.scores(*ensemble.mean_probabilities(task, [members[i] for i in chosen], data, "test", None))
    assert metrics["test_accuracy"] == pytest.approx(test["accuracy"])
    assert evaluate.evaluate_checkpoint(folder, None)["test_accuracy"] == pytest.approx(metrics["test_accuracy"])
    capsys.readouterr()
    assert predict.main([str(folder), "0,0,0,0,0,0,0,0"]) == 0
    assert capsys.readouterr().out.split("\t")[0] in task.labels
    report = (folder.parent / "report.md").read_text()
    trials = [f"`{refits[i]['search_trial']}`" for i in chosen]
    assert f"  - ensemble `search_syn_ensemble`: the refits of {', '.join(trials)} (members chosen" in report

    # regenerated where the search is not (a fresh clone: no ray_results, no data dir), the export stays whole
    assert summarize.main(["--outputs", str(tmp_path / "none"), "--ray-results", str(tmp_path / "none"),
                           "--out", str(tmp_path / "picked"), "--tasks", TASK_KEY]) == 0
    assert json.loads((folder / "ensemble.json").read_text()) == kept
    assert json.loads((folder / "metrics.json").read_text())["test_accuracy"] == metrics["test_accuracy"]
    assert evaluate.evaluate_checkpoint(folder, None)["test_accuracy"] == pytest.approx(metrics["test_accuracy"])


@pytest.mark.slow
@pytest.mark.ray
def test_a_killed_search_resumes_without_rerunning_finished_trials(tmp_path, env):
    cmd = search_cmd(tmp_path, "--trials", "3", "--max-epochs", "3", "--concurrency", "1", "--scheduler", "fifo",
                     "--epoch-delay", "1.5", "--name", "k1")
    log = tmp_path / "driver.log"
    started = time.perf_counter()
    with log.open("w") as sink:
        driver = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=sink, stderr=sink, start_new_session=True)
    finished, deadline = set(), time.time() + 240
    while time.time() < deadline and not finished and driver.poll() is None:
        time.sleep(0.5)  # Tune's own result files, not MLflow: a client here would race the driver's store set-up
        for result in (tmp_path / "ray_results" / "k1").glob("run_trial_*/result.json"):
            lines = [json.loads(line) for line in result.read_text().splitlines() if line.strip()]
            if len(lines) >= 3:
                finished.add(lines[-1]["trial_id"])
    for pid in [driver.pid, *descendants(driver.pid)]:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    before_kill = time.perf_counter() - started
    driver.wait()
    assert finished, f"no trial finished before the deadline:\n{log.read_text()[-3000:]}"
    db = tmp_path / "mlflow.db"

    started = time.perf_counter()
    resumed = subprocess.run(search_cmd(tmp_path, "--name", "k1", "--resume"), cwd=ROOT, env=env,
                             capture_output=True, text=True, timeout=300)
    after = time.perf_counter() - started
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    summary = json.loads((tmp_path / "ray_results" / "k1" / "search_summary.json").read_text())
    assert summary["finished"] and summary["completed"] == 3 and summary["trials"] == 3
    # the time before the kill (here ~35 s) is kept and the resume counted; not seen by the search's own clock:
    # interpreter start-up, up to 2 s between its saves, and Ray's shutdown after the resumed search ended
    assert before_kill + after - 20 <= summary["wall_seconds"] <= before_kill + after and summary["resumes"] == 1
    study = study_of(summary)  # one Optuna trial per Tune trial, also across the kill
    assert sum(t.state.name == "COMPLETE" for t in study.trials) == 3
    parents, children = runs_of(db)
    assert len(parents) == 1 and len(children) == 3
    for child in children:
        if child.data.tags["tunelab.trial_id"] in finished:
            steps = [m.step for m in mlflow_client(db).get_metric_history(child.info.run_id, "epoch")]
            assert steps == [1, 2, 3], "a finished trial was run again"


def test_an_unknown_task_is_one_line(tmp_path):
    done = subprocess.run([sys.executable, "-m", "search", "--task", "no_such.task_module", "--trials", "1"],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "cannot import task module 'no_such.task_module'" in done.stderr
    assert "Traceback" not in done.stderr


def test_evaluate_reads_the_task_from_the_folder_not_its_files(tmp_path):
    from experiments.core.errors import CheckpointError

    (tmp_path / "experiment_config.json").write_text(json.dumps({"config_name": "x"}))
    (tmp_path / "tokenizer.json").write_text("{}")  # would once have made it an IMDB checkpoint
    with pytest.raises(CheckpointError, match="names no task"):
        evaluate.evaluate_checkpoint(tmp_path, None)


@pytest.mark.ray
def test_random_search_evaluates_the_warm_start_first_and_skips_the_refit_when_asked(tmp_path, env):
    done = subprocess.run(search_cmd(tmp_path, "--trials", "2", "--max-epochs", "1", "--searcher", "random",
                                     "--warm-start", "blob_wide", "--refit", "0", "--name", "w1"),
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads((tmp_path / "ray_results" / "w1" / "search_summary.json").read_text())
    first = min(summary["rows"], key=trial_index)
    assert (first["params"]["hidden"], first["params"]["lr"]) == (64, 0.01)
    assert summary["refit"] == [] and summary["finished"] and summary.get("optuna_study") is None




@pytest.mark.ray
def test_a_smoke_search_keeps_its_refit_small_and_says_what_it_costs(tmp_path, env):
    """`--refit-subset` equal to `--subset`: the refit trains on the search's examples, as the start line says."""
    dry = subprocess.run(search_cmd(tmp_path, "--trials", "3", "--max-epochs", "1", "--subset", "60", "--dry-run"),
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert dry.returncode == 0 and "refit cost: up to 1 run(s) × 1 epochs on the whole training split" in dry.stdout
    done = subprocess.run(search_cmd(tmp_path, "--trials", "2", "--max-epochs", "1", "--subset", "60",
                                     "--refit-subset", "60", "--name", "small"),
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "refit cost: up to 1 run(s) × 1 epochs × 60 examples = 60 examples, 0.50× the search's most" in done.stdout
    summary = json.loads((tmp_path / "ray_results" / "small" / "search_summary.json").read_text())
    assert [r["train_size"] for r in summary["refit"]] == [60]

def test_a_finished_search_resumed_with_a_larger_refit_refits_only_the_next_best(tmp_path, env):
    """--refit 0, then 1, then 2 on the same finished search: each resume trains only the configurations not
    refit yet (the earlier refits kept as they are), as MLflow children of the same parent; fewer changes nothing."""
    def run(*extra: str) -> subprocess.CompletedProcess:
        return subprocess.run(search_cmd(tmp_path, "--trials", "3", "--max-epochs", "1", "--searcher", "random",
                                         "--refit-epochs", "1", "--name", "g", *extra),
                              cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)

    folder = tmp_path / "ray_results" / "g"
    assert run("--refit", "0").returncode == 0
    done = run("--resume", "--refit", "1")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    first = json.loads((folder / "search_summary.json").read_text())
    assert [r["rank"] for r in first["refit"]] == [1] and first["refit_top"] == 1 and first["finished"]
    grown = run("--resume", "--refit", "2")
    assert grown.returncode == 0, grown.stdout[-3000:] + grown.stderr[-3000:]
    assert "refitting 1 more of the 2 best configuration(s) (1 refit before, kept)" in grown.stdout
    summary = json.loads((folder / "search_summary.json").read_text())
    assert sorted(r["rank"] for r in summary["refit"]) == [1, 2] and summary["refit_top"] == 2
    assert next(r for r in summary["refit"] if r["rank"] == 1) == first["refit"][0]  # kept, not trained again
    assert summary["resumed_with"].endswith("--resume --refit 2") and summary["resumes"] == 2
    assert json.loads((folder / "search_args.json").read_text())["refit"] == 2  # a kill now resumes the 2
    assert (folder / "refit").is_dir() and (folder / "refit-top2").is_dir()
    parents, refits = runs_of(tmp_path / "mlflow.db", phase="refit")
    assert len(parents) == 1 and len(refits) == 2
    for same_or_fewer in ("2", "1"):
        again = run("--resume", "--refit", same_or_fewer)
        assert again.returncode == 0 and "has already finished" in again.stdout, again.stderr[-3000:]
    assert json.loads((folder / "search_summary.json").read_text()) == summary


def test_a_refit_stopped_midway_is_finished_before_it_grows(tmp_path, env):
    """Growing a refit that a kill interrupted would change the configurations its resumable grid trains: one line,
    exit 2, nothing written."""
    folder = tmp_path / "ray_results" / "g"
    folder.mkdir(parents=True)
    stopped = {"search": "g", "workload": "imdb", "search_finished": True, "finished": False, "refit": [], "rows": [],
               "best_trial": "x"}
    (folder / "search_summary.json").write_text(json.dumps(stopped))
    (folder / "search_args.json").write_text(json.dumps({"refit": 1}))
    done = subprocess.run(search_cmd(tmp_path, "--name", "g", "--resume", "--refit", "2"), cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "stopped during its refit: resume it without --refit to finish that refit" in done.stderr
    assert json.loads((folder / "search_args.json").read_text()) == {"refit": 1}

@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--refit", "-1"], "--refit must be 0 (no refit) or more"),
        (["--refit-subset", "-5"], "--refit-subset must be 0 (the whole training split) or more"),
        (["--dry-run", "--dry-run-samples", "-1"], "--dry-run-samples must be 0 or more"),
        (["--time-budget", "-1"], "--time-budget must be a positive number of minutes (0: none)"),
        (["--report-every", "0"], "--report-every must be a fraction of an epoch"),
        (["--report-every", "1.5"], "--report-every must be a fraction of an epoch"),
        (["--report-every", "0.123"], "--report-every must be a fraction of an epoch"),
        (["--warm-start", "no-such-preset"], "--warm-start no-such-preset: unknown preset"),
        (["--warm-start", "search:never-ran"], "no search 'never-ran'"),
        (["--warm-start", "NOT_A_CONFIG"], "unknown config field(s): colour"),
    ],
)
def test_bad_search_flags_are_one_line_and_write_nothing(tmp_path, env, extra, message):
    not_a_config = tmp_path / "not_a_config.json"
    not_a_config.write_text(json.dumps({"colour": "blue"}))
    extra = [str(not_a_config) if e == "NOT_A_CONFIG" else e for e in extra]
    done = subprocess.run(search_cmd(tmp_path, *extra), cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 2 and message in done.stderr, done.stderr
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "ray_results").exists() and not (tmp_path / "mlflow.db").exists()


def test_a_task_sets_its_own_refit_and_time_budget_and_a_user_turns_them_off():
    """A task whose trials train at full budget defaults to no refit and a time budget (IMDB's main job does);
    `--time-budget 0` runs every trial, `--refit 1` refits anyway; a task that says nothing keeps 1 and none."""
    from dataclasses import replace

    from search.cli import build_parser, check_args
    from tests.synthetic_task import TASK

    timed = replace(TASK, search_defaults={**TASK.search_defaults, "refit": 0, "time_budget": 30})

    def parsed(task, *argv):
        args = build_parser(task).parse_args(list(argv))
        check_args(args)
        return args.refit, args.time_budget

    assert parsed(TASK) == (1, None)
    assert parsed(timed) == (0, 30)
    assert parsed(timed, "--time-budget", "0", "--refit", "1") == (1, None)
    assert "default 30, 0: none" in " ".join(build_parser(timed).format_help().split())


@pytest.mark.parametrize("steps", [1, 2, 3, 5, 10, 1000])
def test_one_cycle_schedule_runs_for_any_number_of_steps(steps):
    import torch

    from experiments.core.training import build_schedule

    optimizer = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(2))], lr=1e-3)
    schedule = build_schedule(optimizer, "onecycle", steps, warmup_fraction=0.1)
    for _ in range(steps):  # 10 steps at 10 % warm-up was a ZeroDivisionError
        optimizer.step()
        schedule.step()
    assert all(group["lr"] >= 0 for group in optimizer.param_groups)


def test_report_points_cover_each_epoch_once():
    from experiments.core.training import report_points

    assert report_points(100, 4) == [25, 50, 75, 100]
    assert report_points(10, 1) == [10]
    assert report_points(2, 4) == [1, 1, 2, 2]  # fewer steps than reports: some reports train no step


def test_reports_every_three_quarters_of_an_epoch_cross_epochs_and_resume_to_the_same_end(tmp_path):
    """0.75 epoch is no 1/N of an epoch: the loop trains on a quarter-epoch grid and reports every third point
    and at the end, and a trial resumed from its second report ends exactly where an uninterrupted one does."""
    import shutil

    from experiments.core.units import report_grid
    from tests import synthetic_task

    assert report_grid(0.25) == (4, 1) and report_grid(0.75) == (4, 3) and report_grid(1.0) == (1, 1)
    assert report_grid(0) is None and report_grid(1.5) is None and report_grid(0.123) is None

    class Recorder:
        report_every = 0.75

        def __init__(self, resume: str | None = None) -> None:
            self.resume, self.epochs, self.folders = resume, [], []

        def report(self, metrics, checkpoint_dir):
            self.epochs.append(metrics["epoch"])
            kept = tmp_path / f"{id(self)}-{len(self.epochs)}"
            shutil.copytree(checkpoint_dir, kept)
            self.folders.append(str(kept))

        def resume_from(self):
            return self.resume

    data = synthetic_task.load_data(None, None, 0)
    config = {"epochs": 4, "seed": 3}
    whole = Recorder()
    uninterrupted = synthetic_task.trial(config, data, whole)
    steps = len(data.train) // 32  # a grid point rounds up to a whole step
    assert whole.epochs == pytest.approx([0.75, 1.5, 2.25, 3, 3.75, 4], abs=1 / steps)  # and at the end
    resumed = Recorder(resume=whole.folders[1])
    again = synthetic_task.trial(config, data, resumed)
    assert resumed.epochs == whole.epochs[2:]
    assert [h["val_loss"] for h in again["history"]] == [h["val_loss"] for h in uninterrupted["history"]]


def test_a_trial_worker_stopped_by_ray_prints_no_traceback_but_real_errors_still_show():
    """Ray's SIGTERM handler raises SystemExit inside whatever runs, here a finalizer: Python reports it as an
    unraisable exception with a traceback unless the worker's hook drops it."""
    code = "\n".join([
        "import sys", "from search.trainable import quiet_shutdown_hook",
        "sys.unraisablehook = quiet_shutdown_hook(sys.unraisablehook)",
        "class Dies:", "    def __init__(self, error): self.error = error", "    def __del__(self): raise self.error",
        "Dies(SystemExit(1))", "Dies(ValueError('a real error'))",
    ])
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0
    assert "SystemExit" not in done.stderr and "ValueError: a real error" in done.stderr


def test_wall_time_and_resumes_carry_over_to_the_next_process_on_the_same_folder(tmp_path):
    """Also when the next process was not told `--resume` (an ablation or grid restarted by its name)."""
    from search.runtime import WallClock

    with WallClock(str(tmp_path), resumed=False, started=time.perf_counter() - 5.0) as first:
        pass
    assert first.resumes == 0 and first.seconds >= 5.0
    again = WallClock(str(tmp_path), resumed=False, started=time.perf_counter() - 3.0)
    assert again.resumes == 1 and again.seconds >= 8.0
    with again:
        pass
    assert WallClock(str(tmp_path), resumed=True, started=time.perf_counter()).resumes == 2


def test_the_wall_clocks_last_save_never_races_its_ticks(tmp_path):
    """The ticking thread and the final save shared one staging file: a tick that moved it between the final
    save's write and rename crashed a 2-hour benchmark at the end of a search (FileNotFoundError: wall.tmp)."""
    from search.runtime import WallClock

    for _ in range(300):  # ticks back to back: the race, if any, shows within a few hundred exits
        with WallClock(str(tmp_path), resumed=False, started=time.perf_counter(), every=0.0):
            pass
    assert json.loads((tmp_path / "wall.json").read_text())["resumes"] == 299  # the first is no resume


def test_only_rays_staging_race_is_dropped_from_its_experiment_state_log():
    """Ray uploads its state while the next save renames a `.<uuid>-tmp-…` file; any other error still shows."""
    import logging

    from search.runtime import StagingRaceFilter

    def record(error: Exception) -> logging.LogRecord:
        try:
            raise error
        except Exception:
            return logging.LogRecord("ray.tune", logging.ERROR, "", 0, "Saving experiment state failed", None,
                                     sys.exc_info())

    race = FileNotFoundError("Failed to open local file '/tmp/ray/s/driver_artifacts/.4f-tmp-searcher-state-1.pkl'")
    assert not StagingRaceFilter().filter(record(race))
    assert StagingRaceFilter().filter(record(FileNotFoundError("/mnt/results/c2: No such file or directory")))
    assert StagingRaceFilter().filter(record(PermissionError("/tmp/ray/s/.4f-tmp-searcher-state-1.pkl")))


@pytest.mark.ray
def test_three_searches_started_together_on_a_fresh_store_all_finish(tmp_path, env):
    """The first use of a store creates and migrates its schema; concurrent first uses wait for each other."""
    drivers = [
        subprocess.Popen(search_cmd(tmp_path, "--trials", "2", "--max-epochs", "1", "--name", f"c{i}",
                                    "--refit", "0", "--concurrency", "1"),
                         cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for i in range(3)
    ]
    outputs = [driver.communicate(timeout=400) for driver in drivers]
    for driver, (out, err) in zip(drivers, outputs, strict=True):
        assert driver.returncode == 0, err[-3000:]
        assert "Traceback" not in out + err, (out + err)[-3000:]
    parents, children = runs_of(tmp_path / "mlflow.db")
    assert sorted(p.info.run_name for p in parents) == ["c0", "c1", "c2"] and len(children) == 6
    assert {p.info.status for p in parents} == {"FINISHED"}


@pytest.mark.slow
@pytest.mark.ray
def test_an_ablation_trains_base_and_each_level_per_seed_under_one_parent(tmp_path, env):
    """base × 2 seeds + hidden=4 × 2 + lr=0.05 × 2 (hidden=64 is the base's own level: not run twice)."""
    cmd = search_cmd(tmp_path, "--ablate", "blob_wide", "--vary", "hidden=4,64", "--vary", "lr=0.05",
                     "--seeds", "2", "--max-epochs", "1", "--name", "abl")
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=400)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    summary = json.loads((tmp_path / "ray_results" / "abl" / "ablation_summary.json").read_text())
    assert summary["finished"] and summary["runs"] == 6 and len(summary["rows"]) == 6
    configs = {(r["factor"], r["seed"]): r["config"] for r in summary["rows"]}
    assert set(configs) == {(f, s) for f in ("base", "hidden", "lr") for s in (0, 1)}
    assert configs[("base", 0)]["hidden"] == 64 and configs[("base", 1)]["lr"] == 0.01
    assert configs[("hidden", 1)]["hidden"] == 4 and configs[("hidden", 1)]["lr"] == 0.01
    assert configs[("lr", 0)]["lr"] == 0.05 and configs[("lr", 0)]["hidden"] == 64
    assert all(c["epochs"] == 1 for c in configs.values())
    cells = {(c["factor"], json.dumps(c["level"])): c for c in summary["cells"]}
    assert set(cells) == {("base", "null"), ("hidden", "4"), ("lr", "0.05")} and summary["cells"][0]["base"]
    base_tests = [r["test_accuracy"] for r in summary["rows"] if r["factor"] == "base"]
    assert cells[("base", "null")]["test_mean"] == pytest.approx(sum(base_tests) / 2)
    parents, children = runs_of(tmp_path / "mlflow.db", phase="ablation")
    assert len(parents) == 1 and len(children) == 6
    assert all("test_accuracy" in c.data.metrics for c in children)
    # a larger design under a new name trains only its new runs (hidden=16 × 2) and reuses the other six
    bigger = subprocess.run(search_cmd(tmp_path, "--ablate", "blob_wide", "--vary", "hidden=4,16,64", "--vary",
                                       "lr=0.05", "--seeds", "2", "--max-epochs", "1", "--name", "abl2"),
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=400)
    assert bigger.returncode == 0, bigger.stdout[-3000:] + bigger.stderr[-3000:]
    assert "6 of 8 runs already trained and tested by abl: reused" in bigger.stdout
    extended = json.loads((tmp_path / "ray_results" / "abl2" / "ablation_summary.json").read_text())
    assert extended["finished"] and extended["reused"] == 6 and len(extended["rows"]) == 8
    reused = [r for r in extended["rows"] if r.get("reused_from") == "abl"]
    assert {r["trial_id"] for r in reused} == {r["trial_id"] for r in summary["rows"]}
    assert {(r["factor"], r["level"]) for r in extended["rows"] if "reused_from" not in r} == {("hidden", 16)}
    parents, children = runs_of(tmp_path / "mlflow.db", phase="ablation")
    assert len(parents) == 2 and len(children) == 8  # abl's six children are not deleted by abl2
    # the report shows each level against the base, mean ± std over seeds; abl is shown inside abl2
    task = get_task(TASK_KEY)
    assert runner.main(task, ["--config", "blob_mlp", "--epochs", "1", "--output-dir",
                              str(tmp_path / "outputs" / "synthetic")], module="experiments.runner") == 0
    assert summarize.main(["--outputs", str(tmp_path / "outputs"), "--ray-results", str(tmp_path / "ray_results"),
                           "--out", str(tmp_path / "out"), "--tasks", TASK_KEY]) == 0
    report = (tmp_path / "out" / "synthetic-blobs" / "report.md").read_text()
    base = cells[("base", "null")]
    assert "### Ablation `abl2` around `blob_wide`" in report and "| — | **base** | 2 |" in report
    assert "### Ablation `abl` " not in report and "6 reused from `abl`" in report
    assert "\n- ablation `abl2`: `python -m search " in report.split("## How these numbers were produced")[1]
    assert f"{base['test_mean']:.4f} ± {base['test_std']:.4f}" in report
    assert (tmp_path / "out" / "synthetic-blobs" / "ablations" / "abl2.json").is_file()
    dry = subprocess.run(search_cmd(tmp_path, "--ablate", "blob_wide", "--vary", "hidden=4", "--seeds", "3",
                                    "--dry-run"), cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert dry.returncode == 0 and "6 runs of 4 epoch(s)" in dry.stdout


@pytest.mark.parametrize("flags, message", [
    (["--vary", "depth=1,2"], "the base config has no field 'depth'"),
    (["--vary", "hidden="], "no levels given"),
    (["--vary", "hidden=4", "--seeds", "0"], "--seeds must be at least 1"),
    (["--vary", "hidden=4", "--searcher", "random"], "--searcher steer(s) a search"),
])
def test_bad_ablations_exit_2_with_one_line(tmp_path, env, flags, message):
    done = subprocess.run(search_cmd(tmp_path, "--ablate", "blob_wide", *flags), cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and message in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "ray_results").exists() and not (tmp_path / "mlflow.db").exists()


@pytest.mark.ray
def test_a_time_budget_ends_the_search_and_the_refit_follows(tmp_path, env):
    cmd = search_cmd(tmp_path, "--trials", "200", "--max-epochs", "4", "--time-budget", "0.75", "--concurrency", "1",
                     "--refit", "1", "--refit-epochs", "1", "--name", "tb")
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=400)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "0.75-minute budget is spent" in done.stdout and "Traceback" not in done.stderr
    summary = json.loads((tmp_path / "ray_results" / "tb" / "search_summary.json").read_text())
    assert summary["finished"] and summary["stopped_by_time_budget"] == summary["time_budget"] == 0.75
    assert 1 <= summary["trials"] < 200 and len(summary["refit"]) == 1
    assert summary["wall_seconds"] >= 45
    parents, refits = runs_of(tmp_path / "mlflow.db", phase="refit")
    assert len(parents) == 1 and parents[0].info.status == "FINISHED" and len(refits) == 1


def test_a_grid_tests_each_checkpoint_once_and_ctrl_c_ends_its_test_passes(tmp_path):
    """A resumed ablation or refit does not test a run again (minutes each on a CPU); Ctrl-C, which Tune's handler
    would swallow after `fit()`, ends the test passes and keeps what was tested."""
    import os
    import signal
    import types

    from experiments.core.task import ACCURACY
    from search.grid import evaluate_once, interruptible

    calls = []
    task = types.SimpleNamespace(metric=ACCURACY, evaluate_checkpoint=lambda folder, data, device: calls.append(
        folder.name) or {"accuracy": 0.5 + len(calls) / 10, "loss": 1.0})
    first, second = tmp_path / "checkpoint_000001", tmp_path / "checkpoint_000002"
    assert evaluate_once(task, first, tmp_path, None) == ({"checkpoint": first.name, "accuracy": 0.6, "loss": 1.0},
                                                          True)
    assert evaluate_once(task, first, tmp_path, None)[0]["accuracy"] == 0.6 and calls == [first.name]
    assert evaluate_once(task, second, tmp_path, None) == ({"checkpoint": second.name, "accuracy": 0.7, "loss": 1.0},
                                                           True)  # a later best checkpoint is tested anew
    handler = signal.signal(signal.SIGINT, lambda *_: None)  # as Tune leaves it: Ctrl-C ignored
    try:
        with interruptible() as interrupted:
            os.kill(os.getpid(), signal.SIGINT)
            for _ in range(100):
                time.sleep(0.01)
            pytest.fail("Ctrl-C did not end the test passes")
        assert interrupted.is_set() and signal.getsignal(signal.SIGINT) is not signal.default_int_handler
    finally:
        signal.signal(signal.SIGINT, handler)


def test_rung_fidelity_ranks_each_report_against_the_best_score(tmp_path, capsys):
    """Trials whose early order is the reverse of their final order read Spearman -1 there, +1 later."""
    from search.benchmarks import rung_fidelity

    finals = [0.9, 0.8, 0.7, 0.6]
    for index, final in enumerate(finals):
        folder = tmp_path / "s" / f"run_trial_{index}"
        folder.mkdir(parents=True)
        reports = [{"epoch": 0.5, "val_accuracy": 0.5 + 0.01 * index}, {"epoch": 1.0, "val_accuracy": final - 0.05},
                   {"epoch": 1.5, "val_accuracy": final}]
        (folder / "result.json").write_text("\n".join(json.dumps(r) for r in reports[: 3 if index < 3 else 1]))
    rows = rung_fidelity.rung_table(rung_fidelity.trial_histories(tmp_path / "s"), chance=0.51)
    assert [(r["reached"], r["at_chance"], r["went_on"]) for r in rows] == [(4, 2, 3), (3, 0, 3), (3, 0, 0)]
    assert rows[0]["spearman"] == pytest.approx(-1.0) and rows[1]["spearman"] == pytest.approx(1.0)
    assert rows[2]["spearman"] is None
    assert rung_fidelity.main(["s", "--storage-path", str(tmp_path)]) == 0 and "4 trials" in capsys.readouterr().out


def test_one_configuration_of_any_task_trains_with_experiments_train(tmp_path, env):
    """The generic single-configuration runner: a task named by its module path, the runner's record written,
    the command recorded as typed."""
    done = subprocess.run([sys.executable, "-m", "experiments.train", "--task", "tests.synthetic_task",
                           "--config", "blob_wide", "--epochs", "1", "--output-dir", str(tmp_path / "runs")],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    record = json.loads((tmp_path / "runs" / "blob_wide" / "run.json").read_text())
    assert record["task"] == "tests.synthetic_task" and record["config"]["hidden"] == 64
    assert record["fixed"]["precision"] == "fp32"  # every run records its precision (bf16 autocast on CUDA)
    assert record["command"].startswith("python -m experiments.train --task tests.synthetic_task --config blob_wide")


def test_a_resume_asks_for_a_task_setting_its_search_did_not_save(tmp_path):
    """A CIFAR search saved before --space was kept is not resumed under today's default space: the user gives
    the value, which is then saved; a search that saved it resumes with its own."""
    import argparse

    from experiments.core.errors import UsageError
    from search.engine import SearchState, keep_started_settings
    from search.storage import saved_settings

    task = get_task("cifar")
    folder = tmp_path / "old"
    folder.mkdir()

    def state(saved):
        return SearchState(str(tmp_path), "old", str(folder), None, dict(saved), 0, False, False, True)

    old = {"trials": 20, "model": "vit"}
    args = argparse.Namespace(trials=20, model="vit", space="cpu", refit=1)
    with pytest.raises(UsageError, match="search old did not save its --space: resume it giving the value"):
        keep_started_settings(task, args, state(old), given=set())
    args = argparse.Namespace(trials=20, model="vit", space="full", refit=1)
    keep_started_settings(task, args, state(old), given={"space"})
    assert args.space == "full" and saved_settings(str(folder)) == {**old, "space": "full"}
    args = argparse.Namespace(trials=20, model="swin", space="cpu", refit=1)
    keep_started_settings(task, args, state({**old, "space": "full"}), given=set())
    assert (args.model, args.space) == ("vit", "full")
