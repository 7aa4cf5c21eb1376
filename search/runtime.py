"""What a search runs on and for how long: Ray started or joined (with a cluster's token), the trials it can run
at once, the wall clock that survives a kill, and the time budget that ends the search phase.

Ray is imported only inside `start_ray`: the rest is light.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import signal
import threading
import time
from pathlib import Path

from experiments.core.cli import UsageError


def send_cluster_token() -> bool:
    """Ray (2.59+) turns token authentication on by itself only for a local cluster found with 'auto'; joining an
    explicit HOST:PORT (also `auto` with RAY_ADDRESS set) it sends no token unless RAY_AUTH_MODE=token, and a
    cluster started with a token answers "Authentication token is missing or incorrect". Send the token where one
    is at hand (RAY_AUTH_TOKEN, RAY_AUTH_TOKEN_PATH, or ~/.ray/auth_token where `ray start` keeps it); an explicit
    RAY_AUTH_MODE is respected."""
    if "RAY_AUTH_MODE" in os.environ:
        return os.environ["RAY_AUTH_MODE"].lower() == "token"
    token_file = Path(os.environ.get("RAY_AUTH_TOKEN_PATH") or Path.home() / ".ray" / "auth_token")
    if os.environ.get("RAY_AUTH_TOKEN") or token_file.is_file():
        os.environ["RAY_AUTH_MODE"] = "token"
        return True
    return False


class StagingRaceFilter(logging.Filter):
    """Drops one known Ray Tune race, not its errors: Tune uploads its experiment state from a staging folder in
    the background while the next save writes its atomic-save temp files (`.<uuid>-tmp-…`) into that folder; a temp
    file renamed mid-upload fails that upload with FileNotFoundError and a traceback. Nothing is lost: the next
    upload copies the state again, and the last one (at the end of `fit`) runs after the last save and is waited
    for."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        return not (isinstance(error, FileNotFoundError) and "-tmp-" in str(error))


STAGING_RACE = StagingRaceFilter()  # one instance: `addFilter` skips it when a search in the same process (the
                                    # efficiency benchmark runs several) starts Ray again


def start_ray(args: argparse.Namespace) -> dict[str, float]:
    """Local Ray by default, or join a cluster; returns its resources. Silences known start-up noise."""
    import ray

    os.environ.setdefault("RAY_DEDUP_LOGS", "1")
    os.environ["TUNE_DISABLE_STRICT_METRIC_CHECKING"] = "1"  # search.schedulers.MetricCheck replaces it
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "100000")
    logging.getLogger("ray.tune.execution.experiment_state").addFilter(STAGING_RACE)
    explicit = args.address not in (None, "auto") or bool(os.environ.get("RAY_ADDRESS"))
    has_token = os.environ.get("RAY_AUTH_MODE", "").lower() == "token"  # see send_cluster_token
    if not ray.is_initialized():
        try:
            ray.init(address=args.address, log_to_driver=True, include_dashboard=False, logging_level="ERROR")
        except ConnectionError as error:
            fix = ("" if not explicit or has_token else " (a cluster with token authentication needs its token: set "
                   "RAY_AUTH_TOKEN or RAY_AUTH_TOKEN_PATH, or copy the head node's ~/.ray/auth_token here)")
            raise UsageError(f"cannot join the Ray cluster at {args.address}: {error}{fix}") from None
    resources = ray.cluster_resources()
    for kind, asked in (("GPU", args.gpus_per_trial), ("CPU", args.cpus_per_trial)):
        if asked > resources.get(kind, 0):
            flag = f"--{kind.lower()}s-per-trial"
            raise UsageError(f"{flag} {asked:g} but the cluster has {resources.get(kind, 0):g} {kind}(s)")
    return resources


def plan_concurrency(args: argparse.Namespace, cpus: float, gpus: float) -> int:
    """Trials at once: --concurrency, or as many as the CPUs (and GPUs, if asked for) can hold."""
    parallel = args.concurrency or max(1, int(cpus // args.cpus_per_trial))
    if args.gpus_per_trial > 0:
        parallel = min(parallel, max(1, int(gpus // args.gpus_per_trial)))
    return parallel


class WallClock:
    """A search's wall time that survives a kill: the driver rewrites `wall.json` every few seconds, and a resumed
    search starts from what it says (and counts the resume)."""

    def __init__(self, experiment_path: str, resumed: bool, started: float, every: float = 2.0) -> None:
        self.path = None if "://" in experiment_path else Path(experiment_path) / "wall.json"
        saved = json.loads(self.path.read_text()) if self.path is not None and self.path.is_file() else {}
        self.before = float(saved.get("seconds", 0.0))
        # a wall.json from an earlier process is a resume too: an ablation restarted by its `--name` after a kill
        self.resumes = int(saved.get("resumes", 0)) + (1 if resumed or saved else 0)
        self.started, self.every = started, every  # from the command's start: data and Ray start-up count
        self._stop = None
        self._ticker = None

    @property
    def seconds(self) -> float:
        return self.before + time.perf_counter() - self.started

    def save(self) -> None:
        if self.path is not None and self.path.parent.is_dir():
            staging = self.path.with_suffix(".tmp")
            staging.write_text(json.dumps({"seconds": self.seconds, "resumes": self.resumes}) + "\n")
            staging.replace(self.path)

    def __enter__(self) -> WallClock:
        self._stop = threading.Event()

        def tick() -> None:
            while not self._stop.wait(self.every):
                self.save()

        self._ticker = threading.Thread(target=tick, daemon=True, name="tunelab-wall-clock")
        self._ticker.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._ticker.join()  # a tick mid-save would move the staging file this last save writes
        self.save()



@contextlib.contextmanager
def interrupt_after(seconds: float | None):
    """Stop `tuner.fit()` the way Ctrl-C does (Tune saves its state and returns) once `seconds` have passed;
    yields an Event that says whether the time ran out."""
    fired = threading.Event()
    if seconds is None:
        yield fired
        return

    def stop() -> None:
        fired.set()
        os.kill(os.getpid(), signal.SIGINT)

    timer = threading.Timer(max(0.0, seconds), stop)
    timer.daemon = True
    timer.start()
    try:
        yield fired
    finally:
        timer.cancel()
