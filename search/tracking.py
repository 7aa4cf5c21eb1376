"""MLflow tracking from the driver: one parent run per search, one nested child run per trial.

Ray's own MLflowLoggerCallback cannot nest runs, and logging from N trial processes into one sqlite file
gives "database is locked". This callback runs in the driver only (one writer), talks through
`MlflowClient` (no global active run), and finds its runs again by tags, so a resumed search reattaches to
the same parent and children instead of creating duplicates. It also works against `http://` servers.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ray.tune import Callback

from experiments.core.task import ACCURACY, Metric

SEARCH_TAG = "tunelab.search"
TRIAL_TAG = "tunelab.trial_id"
STATUS_TAG = "tunelab.status"
PHASE_TAG = "tunelab.phase"
PARENT_TAG = "mlflow.parentRunId"


def default_tracking_uri() -> str:
    """Absolute sqlite store under ./mlruns (relative URIs would scatter a db into every trial's cwd)."""
    store = Path("mlruns").resolve()
    store.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{store / 'mlflow.db'}"


def quiet_mlflow() -> None:
    """Alembic migration chatter on every new sqlite store is noise; real errors still raise."""
    for name in ("alembic", "mlflow.store.db.utils", "mlflow.tracking.fluent"):
        logging.getLogger(name).setLevel(logging.WARNING)


@contextlib.contextmanager
def first_use_lock(database: Path):
    """Held while a new sqlite store is created and migrated: two searches starting at once on a fresh store
    would otherwise both run the schema migration, and one dies in alembic ("expected to match one row")."""
    import fcntl

    database.parent.mkdir(parents=True, exist_ok=True)
    with open(database.with_name(database.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes, also if this process dies
        yield


def open_store(tracking_uri: str):
    """An MlflowClient whose store exists and is migrated (under `first_use_lock` for sqlite)."""
    from mlflow import MlflowClient

    from experiments.core.errors import UsageError
    from search.errors import library_error

    quiet_mlflow()
    try:
        if not tracking_uri.startswith("sqlite:///"):
            return MlflowClient(tracking_uri=tracking_uri)
        with first_use_lock(Path(tracking_uri.removeprefix("sqlite:///"))):
            client = MlflowClient(tracking_uri=tracking_uri)  # may open the store, and with it migrate the schema
            client.search_experiments(max_results=1)  # if it did not, the first call does
    except ImportError as error:  # postgresql://, mysql://… without their database driver installed
        raise UsageError(f"--tracking-uri {tracking_uri}: {error} (install the database's Python driver)") from None
    except Exception as error:  # a store MLflow cannot open or read: one line that names it
        line = library_error(error)
        if line is None:
            raise
        raise UsageError(f"--tracking-uri {tracking_uri}: {line}") from None
    return client


def ensure_experiment(client, tracking_uri: str, name: str) -> str:
    """The experiment's id, created if new; a sqlite store keeps artifacts in `artifacts/` beside the db."""
    found = client.get_experiment_by_name(name)
    if found is not None:
        return found.experiment_id
    artifacts = None
    if tracking_uri.startswith("sqlite:///"):
        artifacts = Path(tracking_uri[len("sqlite:///") :]).parent.joinpath("artifacts").as_uri()
    return client.create_experiment(name, artifact_location=artifacts)


def optuna_storage(tracking_uri: str):
    """The Optuna study storage beside the MLflow store (`optuna.db` next to `mlflow.db`), created safely."""
    import optuna

    if tracking_uri.startswith("sqlite:///"):
        database = Path(tracking_uri.removeprefix("sqlite:///")).with_name("optuna.db")
    else:  # a tracking server: the studies stay in the local store folder
        database = Path(default_tracking_uri().removeprefix("sqlite:///")).with_name("optuna.db")
    url = f"sqlite:///{database}"
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    with first_use_lock(database):
        # several searches may share the file: wait for a writer's lock instead of sqlite's default 5 s
        return url, optuna.storages.RDBStorage(url, engine_kwargs={"connect_args": {"timeout": 60}})


def _params(values: dict[str, Any]) -> dict[str, str]:
    return {k: (json.dumps(v) if isinstance(v, dict | list | tuple) else str(v))[:6000] for k, v in values.items()}


class MlflowSearchTracker(Callback):
    """Tune callback: parent run for the search, a child per trial with per-epoch metrics and status."""

    def __init__(
        self,
        tracking_uri: str,
        experiment: str,
        search_name: str,
        search_params: dict[str, Any],
        trial_params: dict[str, Any],
        max_epochs: int,
        resolve: Callable[[dict[str, Any]], dict[str, Any]] = dict,
        phase: str = "search",
        metric: Metric = ACCURACY,
    ) -> None:
        self.tracking_uri = tracking_uri
        self.experiment = experiment
        self.search_name = search_name
        self.search_params = search_params
        self.trial_params = trial_params  # fixed settings every child records (tokenizer, max length…)
        self.max_epochs = max_epochs
        self.metric = metric  # the task's selection metric: each child logs its best
        self.resolve = resolve  # sampler output → the config fields a trial trains with
        self.phase = phase  # "search", or "refit" for the winners trained again (children of the same parent)
        self._client = None
        self.parent_run_id: str | None = None
        self._children: dict[str, str] = {}
        self._best: dict[str, tuple[float, str | None]] = {}

    def __getstate__(self) -> dict[str, Any]:
        """Tune pickles callbacks with the experiment: keep settings, drop the live client and caches."""
        state = dict(self.__dict__)
        state.update(_client=None, parent_run_id=None, _children={}, _best={})
        return state

    @property
    def client(self):
        if self._client is None:
            self._client = open_store(self.tracking_uri)
        return self._client

    def experiment_id(self) -> str:
        return ensure_experiment(self.client, self.tracking_uri, self.experiment)

    def _find_run(self, experiment_id: str, tags: dict[str, str]) -> str | None:
        query = " and ".join(f"tags.`{k}` = '{v}'" for k, v in tags.items())
        runs = self.client.search_runs([experiment_id], filter_string=query, max_results=1)
        return runs[0].info.run_id if runs else None

    def setup(self, **info) -> None:
        self.start_parent()

    def start_parent(self) -> str:
        """Create the search's parent run, or reopen it when the search is resumed."""
        if self.parent_run_id is not None:
            return self.parent_run_id
        experiment_id = self.experiment_id()
        run_id = self._find_run(experiment_id, {SEARCH_TAG: self.search_name, "tunelab.kind": "search"})
        if run_id is None:
            run = self.client.create_run(
                experiment_id, run_name=self.search_name,
                tags={SEARCH_TAG: self.search_name, "tunelab.kind": "search"},
            )
            run_id = run.info.run_id
            self.client.log_batch(run_id, params=_param_list(self.search_params))
        else:
            self.client.update_run(run_id, status="RUNNING")
            if self.phase == "search":
                self.client.set_tag(run_id, "tunelab.resumed", "true")
        self.parent_run_id = run_id
        return run_id

    def _child(self, trial) -> str:
        if trial.trial_id in self._children:
            return self._children[trial.trial_id]
        experiment_id = self.experiment_id()
        parent = self.start_parent()
        tags = {SEARCH_TAG: self.search_name, TRIAL_TAG: trial.trial_id}
        run_id = self._find_run(experiment_id, tags)
        if run_id is None:
            prefix = "" if self.phase == "search" else f"{self.phase}-"
            run = self.client.create_run(
                experiment_id, run_name=f"{self.search_name}/{prefix}{trial.trial_id}",
                tags={**tags, PARENT_TAG: parent, "tunelab.kind": "trial", PHASE_TAG: self.phase},
            )
            run_id = run.info.run_id
            self.client.log_batch(run_id, params=_param_list({**self.trial_params, **self.resolve(trial.config)}))
        else:
            self.client.update_run(run_id, status="RUNNING")
        self._children[trial.trial_id] = run_id
        return run_id

    def on_trial_start(self, iteration, trials, trial, **info) -> None:
        self._child(trial)

    def on_trial_result(self, iteration, trials, trial, result, **info) -> None:
        from mlflow.entities import Metric

        run_id = self._child(trial)
        step = int(result.get("training_iteration", 0))
        stamp = int(result.get("timestamp", 0) * 1000)
        metrics = [
            Metric(k, float(v), stamp, step)
            for k, v in result.items()
            if isinstance(v, int | float) and not isinstance(v, bool) and k not in ("timestamp", "pid")
        ]
        self.client.log_batch(run_id, metrics=metrics)
        value = result.get(self.metric.name)
        if self.metric.better(value, self._best.get(trial.trial_id, (None, None))[0]):
            self._best[trial.trial_id] = (float(value), None)

    def on_checkpoint(self, iteration, trials, trial, checkpoint, **info) -> None:
        """Remember the checkpoint that belongs to the trial's best result so far."""
        best = self._best.get(trial.trial_id)
        last = trial.last_result.get(self.metric.name) if trial.last_result else None
        if best is not None and last is not None and not self.metric.better(best[0], last):
            self._best[trial.trial_id] = (best[0], checkpoint.path)

    def _finish(self, trial, status: str, mlflow_status: str) -> None:
        run_id = self._child(trial)
        self.client.set_tag(run_id, STATUS_TAG, status)
        best_value, best_path = self._best.get(trial.trial_id, (None, None))
        if best_value is not None:
            self.client.log_metric(run_id, self.metric.best_key, best_value)
        if best_path and os.path.isdir(best_path):
            self.client.log_artifacts(run_id, best_path, artifact_path="best_checkpoint")
        self.client.set_terminated(run_id, status=mlflow_status)

    def on_trial_complete(self, iteration, trials, trial, **info) -> None:
        epochs = float((trial.last_result or {}).get("epoch", 0))
        status = "COMPLETED" if epochs >= self.max_epochs - 1e-6 else "STOPPED_EARLY"
        self._finish(trial, status, "FINISHED")

    def on_trial_error(self, iteration, trials, trial, **info) -> None:
        self._finish(trial, "ERROR", "FAILED")

    def finish_search(
        self, summary: dict[str, Any], ranked_table: str, trial_ids: set[str], status: str = "FINISHED"
    ) -> None:
        """Called by the engine once the search ends: final best and the ranked table on the parent.

        A driver killed between starting a trial and saving Tune's experiment state leaves a child run for a
        trial the resumed search never knew; such runs (no results, no checkpoint) are deleted here, so the
        search shows exactly one child per trial.
        """
        run_id = self.start_parent()
        experiment_id = self.experiment_id()
        query = f"tags.`{SEARCH_TAG}` = '{self.search_name}' and tags.`tunelab.kind` = 'trial'"
        for run in self.client.search_runs([experiment_id], filter_string=query, max_results=10_000):
            if run.data.tags.get(TRIAL_TAG) not in trial_ids and run.data.tags.get(PHASE_TAG) != "refit":
                self.client.delete_run(run.info.run_id)
        numbers = {k: float(v) for k, v in summary.items() if isinstance(v, int | float) and not isinstance(v, bool)}
        for key, value in numbers.items():
            self.client.log_metric(run_id, key, value)
        for key, value in summary.items():
            if key not in numbers and value is not None:
                self.client.set_tag(run_id, f"tunelab.{key}", str(value)[:5000])
        self.client.log_text(run_id, ranked_table, "ranked_trials.txt")
        self.client.set_terminated(run_id, status=status)

    def end_search(self, status: str) -> None:
        """Close a search that stopped before it could rank anything: its parent run gets `status`, and each of
        its runs still RUNNING (trials Tune stopped along with the search get no completion callback) KILLED."""
        query = f"tags.`{SEARCH_TAG}` = '{self.search_name}' and attributes.status = 'RUNNING'"
        parent = self.start_parent()
        for run in self.client.search_runs([self.experiment_id()], filter_string=query, max_results=10_000):
            if run.info.run_id != parent:
                self.client.set_terminated(run.info.run_id, status="KILLED")
        self.client.set_terminated(parent, status=status)

    def log_trial_metrics(self, trial_id: str, metrics: dict[str, float]) -> None:
        """Numbers measured after a trial ended (a refit's test accuracy) on that trial's child run."""
        experiment_id = self.experiment_id()
        run_id = self._children.get(trial_id) or self._find_run(
            experiment_id, {SEARCH_TAG: self.search_name, TRIAL_TAG: trial_id})
        if run_id is not None:
            for key, value in metrics.items():
                self.client.log_metric(run_id, key, float(value))


def _param_list(values: dict[str, Any]):
    from mlflow.entities import Param as MlflowParam

    return [MlflowParam(k, v) for k, v in _params(values).items()]
