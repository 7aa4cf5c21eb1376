"""A real Ray cluster (`ray start --head`, token authentication on) that searches join with `--address auto` and
with its explicit HOST:PORT. The cluster has its own temp dir, port and token file; its processes are stopped by
their ids, never by a name, so no other Ray on the machine is touched."""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import descendants, mlflow_client

ROOT = Path(__file__).resolve().parents[1]
TASK_KEY = "tests.synthetic_task"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def session_pids(temp_dir: Path) -> set[int]:
    """Processes started for this cluster: their command lines name its own temp dir."""
    pids = set()
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if str(temp_dir) in (proc / "cmdline").read_bytes().decode(errors="replace"):
                    pids.add(int(proc.name))
            except OSError:
                continue
    return pids


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """`ray start --head` on a free port with a token of its own; yields (address, env for clients)."""
    home = tmp_path_factory.mktemp("cluster")
    temp_dir = Path("/tmp") / f"rt{secrets.token_hex(3)}"  # short: Ray's socket paths have a length limit
    token = home / "auth_token"
    token.write_text(secrets.token_hex(32))
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    env.update({"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(token), "PYTHONPATH": str(ROOT),
                "TUNELAB_CACHE": str(home / "cache")})
    ray_cli = str(Path(sys.executable).with_name("ray"))
    started = subprocess.run(
        [ray_cli, "start", "--head", "--port", str(port), "--num-cpus", "2", "--temp-dir", str(temp_dir),
         "--include-dashboard", "false", "--disable-usage-stats"],
        env=env, capture_output=True, text=True, timeout=180,
    )
    assert started.returncode == 0, started.stdout[-2000:] + started.stderr[-2000:]
    clients = {k: v for k, v in env.items() if k != "RAY_AUTH_MODE"}  # a user's shell: the token, no mode set
    try:
        yield f"127.0.0.1:{port}", clients, home
    finally:
        for pid in session_pids(temp_dir):
            for child in [*descendants(pid), pid]:
                try:
                    os.kill(child, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + 30
        while session_pids(temp_dir) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert not session_pids(temp_dir), "the cluster's processes are gone"


@pytest.mark.ray
@pytest.mark.parametrize("how", ["explicit", "auto"])
def test_searches_join_a_running_cluster(cluster, how):
    address, env, home = cluster
    name = f"joined-{how}"
    env = dict(env)
    if how == "auto":
        env["RAY_ADDRESS"] = address  # what `auto` resolves to when the cluster's temp dir is not the default
    cmd = [sys.executable, "-m", "search", "--task", TASK_KEY, "--trials", "2", "--max-epochs", "1", "--refit", "0",
           "--address", "auto" if how == "auto" else address, "--storage-path", str(home / "ray_results"),
           "--tracking-uri", f"sqlite:///{home / 'mlflow.db'}", "--verbose", "0", "--name", name]
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "Authentication token is missing" not in done.stderr
    summary = json.loads((home / "ray_results" / name / "search_summary.json").read_text())
    assert summary["trials"] == 2 and summary["completed"] + summary["stopped_early"] == 2
    client = mlflow_client(home / "mlflow.db")
    experiment = client.get_experiment_by_name("tunelab-synthetic")
    children = client.search_runs([experiment.experiment_id], f"tags.`tunelab.search` = '{name}'")
    assert len([r for r in children if r.data.tags.get("tunelab.kind") == "trial"]) == 2
