"""The MLflow pyfunc that serves an exported model: raw inputs in, labels and probabilities (a regression: values) out.

`mlflow.pyfunc.load_model("models:/tunelab-imdb@champion")` rebuilds it in any process: the export folder
(weights, config, tokenizer or image processor) travels as the model's artifact and this project's packages as
its code, so the loader needs MLflow and the pip requirements, not a checkout of this repository. Kept apart
from `search.registry` so that loading a model imports neither Ray nor Optuna.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import mlflow.models
import mlflow.pyfunc
import pandas as pd

ARTIFACT = "export"  # the artifact key of the export folder


class ExportedModel(mlflow.pyfunc.PythonModel):
    """Wraps the export's task: `Task.predict` does the preprocessing the model was trained with (for an ensemble
    folder, each member's probabilities are averaged)."""

    def load_context(self, context) -> None:
        from experiments.tasks import task_of_checkpoint

        self.folder = Path(context.artifacts[ARTIFACT])
        self.task = task_of_checkpoint(self.folder)
        self.column = context.model_config["column"]  # "text" for reviews, "image" for encoded images

    def predict(self, context, model_input: pd.DataFrame, params: dict[str, Any] | None = None) -> pd.DataFrame:
        """One row per input in the column the signature names; MLflow enforces the schema before this runs."""
        inputs = model_input[self.column].tolist()
        from experiments.reporting import ensemble

        return pd.DataFrame([ensemble.prediction_record(p) for p in ensemble.predict(self.task, self.folder, inputs)])


mlflow.models.set_model(ExportedModel())  # logged as code (models from code), not as a pickled object
