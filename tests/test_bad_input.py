"""Bad input at every command line: one clear error line, a non-zero exit, no traceback, and nothing written.

Each case runs a command as a user would (a subprocess, in an empty working folder) with one bad input: a store
URI MLflow cannot open, a file that is missing, corrupt or of the wrong kind, a checkpoint of another task, a
value out of range. The fixtures are tiny files made here; the committed exports are only ever read.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
GRU = ROOT / "model_checkpoints" / "assignment2-1-2" / "bigru1_wide_dropout"  # committed IMDB export with weights
SWIN = ROOT / "model_checkpoints" / "assignment2-2-2" / "swin_small_p2_gpu"  # committed CIFAR-10 export
WATCHED = (ROOT / "model_checkpoints", ROOT / "mlruns")  # the exports and the stores: bad input changes neither

# (module, arguments, a word the error line must hold); {bad} is the fixtures' folder, {gru} and {swin} exports
CASES = [
    ("experiments.predict", "{swin} {bad}/not_an_image.png", "not_an_image.png"),
    ("experiments.predict", "{swin} {bad}", "not found"),
    ("experiments.predict", "{bad}/corrupt_weights 'a fine film'", "corrupt_weights"),
    ("experiments.predict", "{bad}/unknown_task 'a fine film'", "nope"),
    ("experiments.predict", "{bad}/imdb_files_say_cifar {bad}/image.png", "CIFAR-10"),
    ("experiments.predict", "{bad}/not_an_image.png 'a fine film'", "not found"),
    ("experiments.predict", "{bad}/missing 'a fine film'", "not found"),
    ("experiments.evaluate", "{bad}/binary_config", "JSON"),
    ("experiments.evaluate", "{gru} --data-dir {bad}/missing", "missing"),
    ("experiments.imdb", "--config {bad}/not_json.json", "not_json.json"),
    ("experiments.imdb", "--config {bad}/missing.json", "missing"),
    ("experiments.imdb", "--epochs 0", "epochs"),
    ("experiments.imdb", "--data-dir {bad}/missing --subset 10", "missing"),
    ("experiments.cifar", "--config {bad}/imdb_config.json", "imdb_config.json"),
    ("experiments.train", "", "--task"),
    ("experiments.train", "--task nope", "nope"),
    ("experiments.train", "--task tests.synthetic_task --config nope", "nope"),
    ("search.imdb", "--time-budget -1", "--time-budget"),
    ("experiments.summarize", "--tasks nope", "nope"),
    ("experiments.summarize", "--data-dir imdb", "TASK=PATH"),
    ("experiments.summarize", "--tasks imdb --out {bad}/corrupt_exports --ray-results {bad}/empty", "metrics.json"),
    ("experiments.benchmarks.ensembles", "{gru} {swin}", "different tasks"),
    ("experiments.benchmarks.ensembles", "{gru} {bad}/missing", "not found"),
    ("experiments.benchmarks.imdb_reading_length", "{swin} --data-dir {bad}/missing", "cifar"),
    ("experiments.benchmarks.imdb_reading_length", "{gru} --max-len 0 --data-dir {bad}/missing", "--max-len"),
    ("experiments.benchmarks.imdb_val_leak", "{gru} --data-dir {bad}/missing", "missing"),
    ("experiments.benchmarks.imdb_val_leak", "{swin} --data-dir {bad}/missing", "cifar"),
    ("experiments.benchmarks.imdb_val_leak", "{gru} --test-sample 0 --data-dir {bad}/missing", "--test-sample"),
    ("experiments.benchmarks.imdb_throughput", "--data-dir {bad}/missing", "missing"),
    ("experiments.benchmarks.imdb_throughput", "--config nope --data-dir {bad}/missing", "nope"),
    ("experiments.benchmarks.imdb_throughput", "--reviews 0 --data-dir {bad}/missing", "--reviews"),
    ("experiments.benchmarks.imdb_precision", "--data-dir {bad}/missing", "missing"),
    ("experiments.benchmarks.imdb_precision", "--reviews 1 --data-dir {bad}/missing", "--reviews"),
    ("experiments.benchmarks.cifar_precision", "--data-dir {bad}/missing", "missing"),
    ("experiments.benchmarks.cifar_precision", "--layouts 2y1 --data-dir {bad}/missing", "--layouts"),
    ("experiments.benchmarks.cifar_precision", "--images 1 --data-dir {bad}", "--images"),
    ("experiments.benchmarks.window_attention", "--threads 0", "--threads"),
    ("experiments.benchmarks.window_attention", "--repeats 0", "--repeats"),
    ("experiments.benchmarks.imdb_fidelity", "run --data-dir {bad}/missing", "missing"),
    ("experiments.benchmarks.imdb_fidelity", "run --data-dir {bad} --worker 3", "--worker"),
    ("experiments.benchmarks.imdb_fidelity", "collect --runs-dir {bad}/empty --record-dir record", "no finished runs"),
    ("experiments.benchmarks.cifar_fidelity", "run --data-dir {bad}/missing", "missing"),
    ("experiments.benchmarks.cifar_fidelity", "run --data-dir {bad} --worker 2 --workers 2", "--worker"),
    ("experiments.benchmarks.cifar_fidelity", "run --data-dir {bad} --threads 0", "--threads"),
    ("experiments.benchmarks.cifar_fidelity", "collect --runs-dir {bad}/empty --record-dir record", "no finished runs"),
    ("search", "--task nope", "nope"),
    ("search", "--task imdb --tracking-uri notaurl://x", "notaurl://x"),
    ("search.imdb", "--tracking-uri sqlite:///relative.db", "absolute path"),
    ("search.imdb", "--report-every 2", "--report-every"),
    ("search.imdb", "--data-dir {bad}/missing --subset 10", "missing"),
    ("search.imdb", "--warm-start {bad}/not_json.json --data-dir {bad}/missing", "not_json.json"),
    ("search.cifar", "--tracking-uri notaurl://x --dry-run", "notaurl://x"),
    ("search.summarize", "--tasks imdb --tracking-uri notaurl://x", "notaurl://x"),
    ("search.summarize", "--tasks nope", "nope"),
    ("search.summarize", "--tasks imdb --tracking-uri sqlite:///{bad}/store/mlflow.db", "not a database"),
    ("search.imdb", "--tracking-uri http://127.0.0.1:9", "cannot reach"),
    ("search.benchmarks.rung_fidelity", "missing-search", "no trial results"),
    ("search.benchmarks.rung_fidelity", "missing-search --chance 2", "--chance"),
    ("search.benchmarks.search_efficiency", "--strategies random+fifo --data-dir {bad}/missing", "optuna+asha"),
    ("search.benchmarks.search_efficiency", "--task digits --strategies nope optuna+asha", "nope"),
    ("search.benchmarks.search_efficiency", "--task digits --seeds 1 1", "--seeds"),
    ("search.benchmarks.search_efficiency", "--task digits --epoch-budget -1", "--epoch-budget"),
    ("search.benchmarks.search_efficiency", "--task digits --time-budget -1", "--time-budget"),
    ("search.benchmarks.search_efficiency", "--task digits --reduction-factor 1", "--reduction-factor"),
    ("search.benchmarks.search_efficiency", "--task nope", "nope"),
    ("search.benchmarks.search_efficiency", "--task imdb", "--data-dir"),
    ("search", "--task digits --searcher bohb --dry-run", "--scheduler bohb"),
    ("search", "--task digits --epoch-budget -2 --dry-run", "--epoch-budget"),
    ("search.cifar", "--searcher bohb --scheduler bohb --dry-run", "bohb"),
    ("search.benchmarks.search_efficiency", "--data-dir {bad}/missing", "missing"),
    ("search.benchmarks.search_efficiency", "--trials 0 --data-dir {bad}/missing", "--trials"),
    ("search.benchmarks.search_overhead", "--data-dir {bad}/missing", "missing"),
    ("search.benchmarks.search_overhead", "--config nope --data-dir {bad}/missing", "nope"),
    ("search.benchmarks.search_overhead", "--epochs 0 --data-dir {bad}/missing", "--epochs"),
]


@pytest.fixture(scope="module")
def bad(tmp_path_factory) -> Path:
    """Tiny bad inputs: files posing as images or JSON, checkpoints that are corrupt or of another task."""
    bad = tmp_path_factory.mktemp("bad")
    (bad / "not_an_image.png").write_text("a review, not a picture\n")
    Image.new("RGB", (32, 32), (200, 30, 30)).save(bad / "image.png")
    (bad / "not_json.json").write_text("{ not json\n")
    (bad / "imdb_config.json").write_text((GRU / "experiment_config.json").read_text())
    (bad / "empty").mkdir()
    (bad / "store").mkdir()
    (bad / "store" / "mlflow.db").write_text("a text file posing as a sqlite store\n")
    corrupt = bad / "corrupt_weights"
    corrupt.mkdir()
    for name in ("experiment_config.json", "tokenizer.json"):
        shutil.copy(GRU / name, corrupt / name)
    (corrupt / "model.safetensors").write_bytes(b"\x00not safetensors\x00" * 64)
    wrong = bad / "imdb_files_say_cifar"
    shutil.copytree(GRU, wrong)
    (wrong / "experiment_config.json").write_text(json.dumps({**json.loads((GRU / "experiment_config.json")
                                                                            .read_text()), "task": "cifar"}))
    (bad / "unknown_task").mkdir()
    (bad / "unknown_task" / "experiment_config.json").write_text(json.dumps({"task": "nope"}))
    (bad / "binary_config").mkdir()
    (bad / "binary_config" / "experiment_config.json").write_bytes(b"\xff\xfe\x00garbage")
    export = bad / "corrupt_exports" / "assignment2-1-2" / "gru"
    export.mkdir(parents=True)
    shutil.copy(GRU / "experiment_config.json", export)
    (export / "metrics.json").write_text("{ truncated")
    return bad


def snapshot(folders: list[Path]) -> dict[str, tuple[int, int]]:
    """Every file and folder under the folders, a file with its size and modification time; not the empty lock
    file a sqlite store is opened under (search.tracking.first_use_lock), which holds nothing."""
    return {str(p): (p.stat().st_size, p.stat().st_mtime_ns) if p.is_file() else (0, 0)
            for folder in folders if folder.exists() for p in folder.rglob("*")
            if not (p.name.endswith(".db.lock") and p.stat().st_size == 0)}


@pytest.fixture(scope="module")
def outcomes(bad, tmp_path_factory) -> dict:
    """Every case run at once, each in an empty working folder of its own: the case's completed process and
    whether that folder stayed empty; and whether the exports, the stores and the fixtures stayed as they were."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
    shared = [*WATCHED, bad]
    before = snapshot(shared)

    def run(case: tuple[str, str, str]) -> tuple[subprocess.CompletedProcess, bool]:
        module, arguments, _ = case
        cwd = tmp_path_factory.mktemp("cwd")
        argv = shlex.split(arguments.format(bad=bad, gru=GRU, swin=SWIN))
        done = subprocess.run([sys.executable, "-m", module, *argv], cwd=cwd, env=env, capture_output=True, text=True,
                              timeout=300)
        return done, not snapshot([cwd])

    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:  # each case is a few seconds of imports
        cases = dict(zip(CASES, pool.map(run, CASES), strict=True))
    return {"cases": cases, "shared_unchanged": snapshot(shared) == before}


@pytest.mark.parametrize("case", CASES, ids=[f"{m} {a}" for m, a, _ in CASES])
def test_bad_input_is_one_error_line_and_writes_nothing(case, outcomes):
    done, cwd_empty = outcomes["cases"][case]
    errors = [line for line in done.stderr.splitlines() if "error" in line.lower()]
    assert done.returncode != 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
    assert len(errors) == 1 and case[2] in errors[0], done.stderr[-3000:]
    assert cwd_empty, f"{case[0]} wrote into its working folder"


def test_bad_input_changes_no_export_store_or_input(outcomes):
    assert outcomes["shared_unchanged"]


def test_the_boundary_maps_bad_input_and_keeps_a_bugs_traceback(bad, capsys):
    """`run_cli` turns a library's bad-input exception into one line and exit 2; any other exception is a bug and
    escapes with its traceback."""
    from mlflow.exceptions import MlflowException
    from PIL import UnidentifiedImageError

    from experiments.core.cli import run_cli
    from search.errors import library_error

    def failing(error: Exception):
        def main() -> int:
            raise error
        return main

    for error, says in [(UnidentifiedImageError(f"cannot identify image file '{bad}/x.png'"), "x.png"),
                        (FileNotFoundError(2, "No such file or directory", str(bad / "gone.json")), "gone.json"),
                        (MlflowException("unsupported URI 'notaurl://x'"), "notaurl://x")]:
        with pytest.raises(SystemExit) as exited:
            run_cli(failing(error), library_error)
        err = capsys.readouterr().err
        assert exited.value.code == 2 and err.count("\n") == 1 and err.startswith("error: ") and says in err
    with pytest.raises(KeyError):
        run_cli(failing(KeyError("a bug")), library_error)
    with pytest.raises(MlflowException):  # a search command's mapping, not every command's
        run_cli(failing(MlflowException("x")))
