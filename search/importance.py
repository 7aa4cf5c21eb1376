"""What a finished search learned, read from its persisted Optuna study: parameter importance and plots.

The study lives in an RDB storage beside the MLflow store (`optuna.db`), named after the search, so
`optuna-dashboard sqlite:///<abs>/mlruns/optuna.db` opens it too.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import Any

MIN_TRIALS = 8  # fANOVA on fewer finished trials says nothing


def load_study(storage_url: str, study_name: str):
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna.load_study(study_name=study_name, storage=storage_url)


def finished_trials(study) -> list:
    import optuna

    return [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]


def param_importance(study) -> dict[str, float] | None:
    """fANOVA importance over the study's completed trials (params present in all of them); None if too few."""
    import optuna

    if len(finished_trials(study)) < MIN_TRIALS:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        importance = optuna.importance.get_param_importances(
            study, evaluator=optuna.importance.FanovaImportanceEvaluator(seed=0)
        )
    return {k: float(v) for k, v in importance.items() if not math.isnan(v)} or None


def study_plots(study, folder: Path) -> list[dict[str, str]]:
    """Optuna's own matplotlib plots of the study, saved in the search folder: [{"title", "path"}]."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from optuna.visualization import matplotlib as optuna_plots

    plots = [("Optimization history", "optuna_history.png", optuna_plots.plot_optimization_history)]
    if len(finished_trials(study)) >= 2:
        plots.append(("Each hyperparameter against the objective", "optuna_slice.png", optuna_plots.plot_slice))
    if len(finished_trials(study)) >= MIN_TRIALS:
        plots.append(("Hyperparameter importance (fANOVA)", "optuna_importance.png",
                      optuna_plots.plot_param_importances))
    made = []
    for title, name, plot in plots:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Optuna marks its matplotlib backend experimental
            axes = plot(study)
        figure = (axes.flat[0] if hasattr(axes, "flat") else axes).figure
        figure.savefig(folder / name, dpi=100, bbox_inches="tight")
        plt.close(figure)
        made.append({"title": title, "path": str(folder / name)})
    return made


def study_summary(storage_url: str, study_name: str, folder: Path) -> dict[str, Any]:
    """What the search summary records about the study: where it is, its trials, importance and plots."""
    study = load_study(storage_url, study_name)
    return {
        "optuna_storage": storage_url,
        "optuna_study": study_name,
        "optuna_trials": len(study.trials),
        "optuna_finished_trials": len(finished_trials(study)),
        "importance": param_importance(study),
        "plots": study_plots(study, folder),
    }
