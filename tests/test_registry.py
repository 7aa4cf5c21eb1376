"""The Model Registry: the summarizer registers the winner, a fresh process outside the repository loads it by
alias and classifies raw reviews, `mlflow models serve` answers the same over REST."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from experiments import imdb as imdb_cli
from experiments import predict
from experiments.tasks.imdb.config import ExperimentConfig
from search import summarize as search_summarize
from tests.conftest import mlflow_client

REVIEWS = ["A wonderful superb film, moving and beautifully acted.", "Awful boring plot, a waste of time."]
TINY = dict(batch_size=16, embed_dim=16, hidden_dim=16, num_layers=1, dropout=0.0, pooling="maxmean",
            optimizer="AdamW", optimizer_params={"lr": 5e-3}, lr_schedule="onecycle", epochs=2)
LOAD = """
import json, sys
import mlflow, pandas as pd
mlflow.set_tracking_uri(sys.argv[1])
model = mlflow.pyfunc.load_model("models:/tunelab-imdb@champion")
out = model.predict(pd.DataFrame({"text": json.loads(sys.argv[2])}))
print(json.dumps({"rows": out.to_dict("records"), "code": __import__("experiments").__file__}))
"""


@pytest.fixture(scope="module")
def registered(tmp_path_factory, imdb_dir) -> dict:
    """A tiny one-config run, summarized with `python -m search.summarize` into a fresh sqlite store."""
    root = tmp_path_factory.mktemp("registry")
    config = root / "tiny_bi.json"
    ExperimentConfig(config_name="tiny_bi", is_bidirectional=True, **TINY).to_json(config)
    assert imdb_cli.main(["--config", str(config), "--data-dir", str(imdb_dir),
                          "--output-dir", str(root / "outputs" / "imdb")]) == 0
    uri = f"sqlite:///{root / 'mlruns' / 'mlflow.db'}"
    argv = ["--outputs", str(root / "outputs"), "--ray-results", str(root / "ray_results"),
            "--out", str(root / "model_checkpoints"), "--tasks", "imdb", "--tracking-uri", uri]
    assert search_summarize.main(argv) == 0
    return {"root": root, "uri": uri, "argv": argv, "export": root / "model_checkpoints" / "assignment2-1-2"}


def expected_predictions(export: Path, capsys) -> list[tuple[str, str]]:
    best = json.loads((export / "best.json").read_text())["path"]
    capsys.readouterr()
    assert predict.main([str(export / best), *REVIEWS]) == 0
    return [tuple(line.split("\t")[:2]) for line in capsys.readouterr().out.splitlines()]  # label, "0.973"


def test_champion_loads_in_a_fresh_process_outside_the_repo(registered, capsys, tmp_path):
    expected = expected_predictions(registered["export"], capsys)
    result = subprocess.run([sys.executable, "-c", LOAD, registered["uri"], json.dumps(REVIEWS)], cwd=tmp_path,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    loaded = json.loads(result.stdout.strip().splitlines()[-1])
    assert [(r["label"], f"{r['probability']:.3f}") for r in loaded["rows"]] == expected
    assert "/artifacts/code/experiments/" in loaded["code"], "the project's code travels with the model"

    client = mlflow_client(Path(registered["uri"].removeprefix("sqlite:///")))
    [version] = client.search_model_versions("name = 'tunelab-imdb'")
    assert client.get_model_version_by_alias("tunelab-imdb", "champion").version == version.version
    assert version.tags["tunelab.export"] == "tiny_bi"


def test_registering_the_same_export_again_adds_no_version(registered, capsys):
    assert search_summarize.main(registered["argv"]) == 0
    assert "already registered as tunelab-imdb version 1" in capsys.readouterr().out
    client = mlflow_client(Path(registered["uri"].removeprefix("sqlite:///")))
    assert len(client.search_model_versions("name = 'tunelab-imdb'")) == 1


def test_unreachable_tracking_server_writes_nothing(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    result = subprocess.run(
        [sys.executable, "-m", "search.summarize", "--tracking-uri", f"http://127.0.0.1:{port}", "--tasks", "imdb",
         "--outputs", str(tmp_path / "outputs"), "--out", str(tmp_path / "model_checkpoints")],
        cwd=Path(__file__).resolve().parents[1], capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 2
    assert result.stderr.strip() == f"error: cannot reach the MLflow tracking server at http://127.0.0.1:{port}"
    assert not (tmp_path / "model_checkpoints").exists()


@pytest.mark.slow
@pytest.mark.mlflow_server
def test_mlflow_models_serve_answers_like_predict(registered, capsys, tmp_path):
    expected = expected_predictions(registered["export"], capsys)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "MLFLOW_TRACKING_URI": registered["uri"]}
    server = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "models", "serve", "-m", "models:/tunelab-imdb@champion",
         "--env-manager", "local", "-h", "127.0.0.1", "-p", str(port)],
        cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=open(tmp_path / "serve.log", "w"),
        start_new_session=True,  # its own process group: stopped by that, never by a name
    )
    try:
        body = json.dumps({"dataframe_split": {"columns": ["text"], "data": [[r] for r in REVIEWS]}}).encode()
        deadline, answer = time.monotonic() + 180, None
        while answer is None and time.monotonic() < deadline and server.poll() is None:
            try:
                request = urllib.request.Request(f"http://127.0.0.1:{port}/invocations", data=body,
                                                 headers={"Content-Type": "application/json"})
                answer = json.loads(urllib.request.urlopen(request, timeout=30).read())
            except OSError:
                time.sleep(1)
        assert answer is not None, (tmp_path / "serve.log").read_text()[-3000:]
        rows = answer["predictions"]
        assert [(r["label"], f"{r['probability']:.3f}") for r in rows] == expected
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()


def test_the_champion_moves_only_past_a_better_model_validated_the_same_way():
    """A champion validated on another split (IMDB's older random split) has no comparable score: the new best,
    which the summarizer chose under the current split, takes the alias even with a lower number."""
    from types import SimpleNamespace

    from experiments.core.task import ACCURACY
    from search.registry import VALIDATION_TAG, _move_champion, val_tag
    from tests.synthetic_regression import RMSE

    class Client:
        def __init__(self, tags):
            self.current, self.moved = SimpleNamespace(version="1", tags=tags), None

        def get_model_version_by_alias(self, name, alias):
            return self.current

        def set_registered_model_alias(self, name, alias, version):
            self.moved = version

    older_random = Client({val_tag(ACCURACY): "0.91"})  # tagged before validation protocols were: random
    assert _move_champion(older_random, "m", "2", 0.89, "blocks") and older_random.moved == "2"
    same_split = Client({val_tag(ACCURACY): "0.91", VALIDATION_TAG: "blocks"})
    assert not _move_champion(same_split, "m", "2", 0.89, "blocks") and same_split.moved is None
    assert _move_champion(same_split, "m", "2", 0.92, "blocks") and same_split.moved == "2"
    lower_is_better = Client({val_tag(RMSE): "0.40", VALIDATION_TAG: "blocks"})  # a task that minimises
    assert not _move_champion(lower_is_better, "m", "2", 0.45, "blocks", RMSE) and lower_is_better.moved is None
    assert _move_champion(lower_is_better, "m", "2", 0.35, "blocks", RMSE) and lower_is_better.moved == "2"


def test_a_served_model_installs_what_its_task_declares():
    """The pip requirements of a registered model are its task's, pinned, plus the pyfunc's own (numpy, pandas):
    the IMDB GRU does not pull in transformers, the CIFAR-10 models do."""
    from experiments.tasks import get_task
    from search.registry import _requirements

    imdb = [r.split("==")[0] for r in _requirements(get_task("imdb"))]
    cifar = [r.split("==")[0] for r in _requirements(get_task("cifar"))]
    assert imdb == ["torch", "safetensors", "tokenizers", "numpy", "pandas"]
    assert "transformers" in cifar and "pillow" in cifar and "tokenizers" not in cifar
