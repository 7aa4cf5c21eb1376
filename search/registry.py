"""Register each task's exported winner in the MLflow Model Registry, and move the `champion` alias to it.

The summarizer's export folder (`model_checkpoints/<task>/<best>/`) is logged as a pyfunc (`search.serving`)
with its signature and an input example, under a run tagged `tunelab.kind=export` in the task's experiment, and
registered as `tunelab-<task>` (CIFAR-10: `tunelab-cifar10`). The alias `champion` moves to a new version only
when its validation score beats the current champion's in the task's direction (`Task.metric`: a higher accuracy,
a lower RMSE), the same rule the export follows (and, like the export, a champion validated on another split —
`tunelab.validation`, "random" where untagged — is not compared: the summarizer's new best takes the alias).
Registering the same weights again is a no-op, so the summarizer can run as often as it likes.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from experiments.core.checkpoints import has_weights, recorded_validation, weight_files
from experiments.core.task import ACCURACY, Metric, Task
from experiments.reporting import ensemble

CHAMPION = "champion"
WEIGHTS_TAG = "tunelab.weights_sha256"
VALIDATION_TAG = "tunelab.validation"  # how the validation split was drawn: scores compare only within one
# what a loader needs besides MLflow; the packages of this project travel as the model's code
SERVING_REQUIREMENTS = ("numpy", "pandas")  # the pyfunc's own input and output; a task adds its model's


@dataclass
class Registration:
    name: str
    version: str
    champion: bool
    new: bool


def val_tag(metric: Metric) -> str:
    """The version tag holding its validation score, named after the metric (`tunelab.<metric name>`)."""
    return f"tunelab.{metric.name}"


def registered_name(task: Task) -> str:
    return task.registered_model or f"tunelab-{task.name}"


def _sha256(folder: Path, weight_file: str) -> str:
    digest = hashlib.sha256()
    for path in weight_files(folder, weight_file):  # an ensemble's are in its member folders
        digest.update(path.read_bytes())
    return digest.hexdigest()


def _requirements(task: Task) -> list[str]:
    """The packages a served model of this task installs, pinned to the versions it was exported with."""
    from importlib.metadata import PackageNotFoundError, version

    pinned = []
    for name in dict.fromkeys((*task.requirements, *SERVING_REQUIREMENTS)):
        try:
            pinned.append(f"{name}=={version(name).split('+')[0]}")
        except PackageNotFoundError:
            pinned.append(name)
    return pinned


def _code_paths() -> list[str]:
    """This project's packages, copied into the model: the pyfunc imports them when it is loaded."""
    import data_pipes
    import experiments
    import models
    import search

    return [str(Path(package.__file__).parent) for package in (experiments, models, data_pipes, search)]


def register_best(task: Task, export_folder: Path, tracking_uri: str, experiment_id: str) -> Registration | None:
    """Log and register the export's best model (best.json); None when the task exported nothing with weights."""
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # a log line per file otherwise
    import mlflow
    import pandas as pd
    from mlflow.models import infer_signature

    from search import serving

    best_file = export_folder / "best.json"
    if task.serving_example is None or not best_file.is_file():
        return None
    best, metric = json.loads(best_file.read_text()), task.metric
    folder = export_folder / best["path"]
    if not has_weights(folder, task.weight_file):
        return None
    client = mlflow.MlflowClient(tracking_uri=tracking_uri)
    name = registered_name(task)
    weights = _sha256(folder, task.weight_file)
    validation = recorded_validation(folder)
    known = client.search_model_versions(f"name = '{name}' and tags.`{WEIGHTS_TAG}` = '{weights}'")
    if known:
        version, new = known[0], False
    else:
        column, examples = task.serving_example()
        example = pd.DataFrame({column: examples})
        output = pd.DataFrame([ensemble.prediction_record(p) for p in ensemble.predict(task, folder, examples)])
        mlflow.set_tracking_uri(tracking_uri)
        with mlflow.start_run(experiment_id=experiment_id, run_name=f"export {best['name']}",
                              tags={"tunelab.kind": "export", "tunelab.export": best["name"]}):
            mlflow.log_metrics({key: best[key] for key in (metric.name, metric.test_name)})
            info = mlflow.pyfunc.log_model(
                name="model", python_model=serving.__file__, model_config={"column": column},
                artifacts={serving.ARTIFACT: str(folder)},
                code_paths=_code_paths(), signature=infer_signature(example, output), input_example=example,
                pip_requirements=_requirements(task), registered_model_name=name,
            )
        version, new = client.get_model_version(name, str(info.registered_model_version)), True
        for key, value in {WEIGHTS_TAG: weights, val_tag(metric): best[metric.name], "tunelab.export": best["name"],
                           f"tunelab.{metric.test_name}": best[metric.test_name], VALIDATION_TAG: validation}.items():
            client.set_model_version_tag(name, version.version, key, str(value))
    champion = _move_champion(client, name, version.version, best[metric.name], validation, metric)
    return Registration(name, str(version.version), champion, new)


def _move_champion(client, name: str, version: str, val_score: float, validation: str = "random",
                   metric: Metric = ACCURACY) -> bool:
    """The alias follows the best validation score, like best.json: a model no better (by the metric's direction)
    and validated the same way never takes it."""
    from mlflow.exceptions import MlflowException

    try:
        current = client.get_model_version_by_alias(name, CHAMPION)
    except MlflowException:
        current = None
    if current is not None and current.version == version:
        return True
    comparable = current is not None and current.tags.get(VALIDATION_TAG, "random") == validation
    recorded = current.tags.get(val_tag(metric)) if comparable else None
    if recorded is not None and not metric.better(val_score, float(recorded)):
        return False
    client.set_registered_model_alias(name, CHAMPION, version)
    return True
