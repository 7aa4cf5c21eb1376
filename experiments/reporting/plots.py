"""The report's figures: learning curves and the search trials drawn here, and those copied next to the report —
each search's Optuna plots, and the benchmark write-ups a task attaches with their own figure."""

from __future__ import annotations

import shutil
from pathlib import Path

from experiments.core.records import SearchRecord
from experiments.core.task import ACCURACY, Metric, Task


def plot_learning_curves(ranked: list, path: Path, columns: int = 4, metric: Metric = ACCURACY) -> None:
    """One panel per trained model, in rank order: train loss (solid) and validation loss (dashed) on the left
    axis, the validation metric on the right. Overfitting shows as a rising validation loss while the metric still
    climbs; one panel each keeps models with the same curve (a refit shared by two searches) from hiding another."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    trained = [e for e in ranked if e.history]  # an ensemble has none: it was not trained as one
    rows = max(1, -(-len(trained) // columns))
    fig, axes = plt.subplots(rows, columns, figsize=(3.4 * columns, 2.6 * rows), squeeze=False)
    handles: list = []
    for ax, e in zip(axes.flat, trained, strict=False):  # more panels than models: the rest stay empty
        epochs = [h["epoch"] for h in e.history]
        if all("train_loss" in h and "val_loss" in h for h in e.history):
            ax.plot(epochs, [h["train_loss"] for h in e.history], color="C0", label="train loss")
            ax.plot(epochs, [h["val_loss"] for h in e.history], color="C0", linestyle="--", label="val loss")
        score = ax.twinx()
        score.plot(epochs, [h[metric.name] for h in e.history], color="C1", marker="o", ms=3,
                   label=f"val {metric.label}")
        ax.set_title(e.name, fontsize=8)
        ax.set_xlabel("epoch", fontsize=7)
        ax.set_ylabel("loss", fontsize=7, color="C0")
        score.set_ylabel(f"val {metric.label}", fontsize=7, color="C1")
        for axis in (ax, score):
            axis.tick_params(labelsize=6)
        ax.grid(alpha=0.3)
        handles = handles or [*ax.get_lines(), *score.get_lines()]
    for ax in axes.flat[len(trained):]:
        ax.axis("off")
    fig.legend(handles, [h.get_label() for h in handles], loc="upper center", ncol=3, fontsize=8)
    fig.tight_layout(rect=(0, 0, 1, 0.96))
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_search(searches: list[SearchRecord], path: Path, metric: Metric = ACCURACY) -> bool:
    """Best validation score of every search trial against each searched hyperparameter."""
    rows = [r for s in searches for r in s.rows if r[metric.best_key] is not None]
    if not rows:
        return False
    names = sorted(n for n in set.union(*(set(r["params"]) for r in rows))
                   if len({str(r["params"].get(n)) for r in rows}) > 1)
    if not names:
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols, rows_needed = 4, (len(names) + 3) // 4
    fig, axes = plt.subplots(rows_needed, cols, figsize=(12, 2.6 * rows_needed), squeeze=False)
    for ax, name in zip(axes.flat, names, strict=False):
        points = [(r["params"][name], r[metric.best_key]) for r in rows if name in r["params"]]
        xs = [p[0] for p in points]
        if all(isinstance(x, int | float) and not isinstance(x, bool) for x in xs):
            ax.scatter(xs, [p[1] for p in points], s=14)
            if min(xs) > 0 and max(xs) / min(xs) > 20:
                ax.set_xscale("log")
        else:
            labels = sorted({str(x) for x in xs})
            ax.scatter([labels.index(str(x)) for x in xs], [p[1] for p in points], s=14)
            ax.set_xticks(range(len(labels)), labels, fontsize=7, rotation=20)
        ax.set_title(name, fontsize=9)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(names):]:
        ax.axis("off")
    fig.suptitle(f"Search trials: best validation {metric.label} vs each hyperparameter")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True


def study_plots(searches: list[SearchRecord], folder: Path) -> list[tuple[str, str]]:
    """Optuna's plots of each search's study, copied next to the report."""
    plots = []
    for s in searches:
        for plot in s.plots:
            source = Path(plot["path"])
            name = f"{s.search}_{source.name}"
            if source.is_file():
                shutil.copy2(source, folder / name)
            if (folder / name).is_file():  # copied now, or by the report this one regenerates
                plots.append((f"{plot['title']} — search `{s.search}`", name))
    return plots


def draw_plots(task: Task, ranked: list, searches: list[SearchRecord], folder: Path) -> list[tuple[str, str]]:
    """Every figure of the report, (title, file name in `folder`): the learning curves, each search's Optuna plots
    (or, for searches without them, the trials against each hyperparameter), then the task's own."""
    metric = task.metric
    plot_learning_curves(ranked, folder / "learning_curves.png", metric=metric)
    plots = [(f"Learning curves: loss and validation {metric.label}", "learning_curves.png")]
    plots += study_plots(searches, folder)
    if not any(s.plots for s in searches) and plot_search(searches, folder / "search_hyperparameters.png",
                                                                 metric):
        plots.append(("Search trials against each hyperparameter", "search_hyperparameters.png"))
    return plots + task.plots(ranked, folder)


def attach_benchmarks(task: Task, benchmarks: Path, folder: Path) -> list[Path]:
    """The write-ups (`<stem>.md` and its `<stem>.png`) of the benchmarks the task attaches, copied next to the
    report from the benchmark's fresh output, else the copy kept beside an earlier report."""
    attachments = []
    for stem in task.attachments:
        for source in (benchmarks, folder):
            if (source / f"{stem}.md").is_file() and (source / f"{stem}.png").is_file():
                for suffix in (".md", ".png"):
                    if source != folder:
                        shutil.copy2(source / f"{stem}{suffix}", folder / f"{stem}{suffix}")
                attachments.append(folder / f"{stem}.md")
                break
    return attachments
