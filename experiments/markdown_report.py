"""`report.md` + plots for one task, generated from what the runs recorded (no number is typed in by hand).

The one report writer: what differs between tasks (title, metric and targets, table columns, unit, task-specific
sentences and plots) comes from the `Task`. Scores are written the metric's way: accuracies in % with their
binomial standard errors, any other metric as a number with its unit, targets with their direction (≤ 55 RMSE).
"""

from __future__ import annotations

import collections
import json
import shlex
import shutil
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from experiments import provenance
from experiments.cli import relative_to_root, throughput_setting
from experiments.ensemble import export_name, member_sources, same_path
from experiments.task import ACCURACY, Metric, Task
from experiments.uncertainty import gap_and_error, verdict, with_error


def fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.2g}" if value < 0.01 else f"{value:.3g}"
    if isinstance(value, list):
        return "/".join(str(v) for v in value)
    return str(value)


def model_table(task: Task, ranked: list) -> str:
    """One row per model; where throughputs were measured under different settings (devices, CPUs, thread
    counts), each carries the letter of its setting and a footnote says they compare only within one."""
    short = task.metric.short
    header = ["", "model", "source", *[c for c, _ in task.columns], "params", "epochs", f"val {short}",
              f"test {short}", "train time", f"{task.unit}/s"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    settings = list(dict.fromkeys(throughput_setting(e.machine) for e in ranked if e.throughput))
    letters = {setting: chr(ord("a") + i) for i, setting in enumerate(settings)} if len(settings) > 1 else {}
    for i, e in enumerate(ranked):
        shown = [[fmt(value(config)) for config in e.member_configs()] for _, value in task.columns]
        cells = ["★" if i == 0 else "", f"`{e.name}`", e.source, *[v[0] if len(set(v)) == 1 else " + ".join(v)
                                                                   for v in shown],
                 f"{e.params / 1e6:.2f} M" if e.params else "-", fmt(e.epochs),
                 f"{e.val_score:.4f}" + (" †" if e.validation != task.validation else ""),
                 with_error(e.test_score, task.test_examples), f"{e.train_seconds / 60:.1f} min",
                 (f"{e.throughput:.0f}" + (f" ({letters[throughput_setting(e.machine)]})" if letters else ""))
                 if e.throughput else "-"]
        lines.append("| " + " | ".join(cells) + " |")
    if letters:
        lines += ["", f"{task.unit}/s compares only between rows of one setting (the letter after it): "
                  + "; ".join(f"({letter}) {setting}" for setting, letter in letters.items()) + "."]
    other = sorted({e.validation for e in ranked if e.validation != task.validation})
    if other:
        lines += ["", f"† validated on another split ({', '.join(other)}) than the data's now "
                      f"({task.validation}): that validation score is not comparable with the others, so the model "
                      f"is ranked after them and cannot be the best; its test {task.metric.label} is comparable."]
    return "\n".join(lines)


def comparison(task: Task, ranked: list) -> list[str]:
    """A few sentences computed from the table: the winner against the targets, then the task's own."""
    best, metric = ranked[0], task.metric
    floor, aim = task.targets
    test = (with_error(best.test_score, task.test_examples, percent=True) if metric.proportion
            else metric.show(best.test_score))
    short = (f"{metric.gain(aim, best.test_score) * 100:.1f} points" if metric.proportion
             else metric.difference(metric.gain(aim, best.test_score), signed=False))
    text = [
        f"Best by validation {metric.label}: `{best.name}` — val {metric.show(best.val_score)}, test {test} "
        f"({'meets' if metric.reaches(best.test_score, floor) else 'is below' if metric.mode == 'max' else 'is above'}"
        f" the {metric.target(floor)} floor, "
        f"{'meets' if metric.reaches(best.test_score, aim) else f'{short} short of'} the {metric.target(aim)} aim)."
    ]
    for e in ranked:
        if e.test_score_at_training is not None:
            text.append(
                f"`{e.name}` was trained on {e.machine.get('gpu', 'another machine')}"
                f"{' (bf16 autocast)' if e.machine.get('gpu') else ''}, where its test {metric.label} "
                f"was {metric.show(e.test_score_at_training)}; the table gives {metric.show(e.test_score)}, "
                "re-measured here in float32 by the same evaluation `experiments.evaluate` runs."
            )
    return text + task.comparison(ranked)


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


def plot_search(searches: list[dict[str, Any]], path: Path, metric: Metric = ACCURACY) -> bool:
    """Best validation score of every search trial against each searched hyperparameter."""
    rows = [r for s in searches for r in s["rows"] if r[metric.best_key] is not None]
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


def split_trial_params(configs: list[dict[str, Any]]) -> tuple[list[str], dict[str, Any]]:
    """A search's trial configs → the keys it varied, and the values every trial shared (its constants, e.g. the
    epochs, seed and reading length), read from what the trials ran rather than from today's space."""
    keys = list(dict.fromkeys(k for config in configs for k in config))
    fixed = {k: configs[0][k] for k in keys
             if all(k in c for c in configs) and len({json.dumps(c[k], sort_keys=True) for c in configs}) == 1}
    return [k for k in keys if k not in fixed], fixed


def search_section(searches: list[dict[str, Any]], test_examples: int = 0,
                   portable: Callable[[str], str] = str, ranked: list | None = None,
                   metric: Metric = ACCURACY) -> list[str]:
    """One entry per search: its budget and outcome, its refit (with the winner's curse), the ensemble of its
    refits where one is among the `ranked` models, and what its Optuna study says about the hyperparameters
    (importance computed by the engine, which owns Optuna)."""
    by_name = {e.name: e for e in ranked or []}
    lines = []
    for s in searches:
        resumed = f", resumed {s['resumes']}×" if s.get("resumes") else ""
        apart = (f" (search {s['search_wall_seconds'] / 60:.1f} + refit {s['refit_wall_seconds'] / 60:.1f})"
                 if s.get("refit_wall_seconds") is not None else "")
        lines.append(
            f"- `{s['search']}` ({s['searcher']} + {s['scheduler']}, reports every {s.get('report_every', 1):g} "
            f"epoch): {s['trials']} trials, {s['trial_epochs']:.1f} trial-epochs in {s['wall_seconds'] / 60:.1f} min "
            f"wall{apart}{resumed} — {s['completed']} completed, {s['stopped_early']} stopped early, "
            f"{s['errored']} errored; "
            f"best val {s[metric.best_key]:.4f}. Command: `{portable(s.get('command', ''))}`"
            + (f" (resumed with `{portable(s['resumed_with'])}`)" if s.get("resumed_with") else "")
        )
        if s.get("rows"):
            searched, fixed = split_trial_params([r["params"] for r in s["rows"]])
            lines.append(f"  - Space: searched {', '.join(searched) or 'nothing'}; the same in every trial: "
                         + ", ".join(f"{k}={v}" for k, v in fixed.items()))
        subset, max_epochs, subset_known = search_fidelity(s)
        for r in s.get("refit") or []:
            gap = metric.difference(r[f"search_{metric.name}"] - r[metric.name])
            known = subset_known and max_epochs is not None
            same = known and (subset is None or subset >= r["train_size"]) and max_epochs == r["epochs"]
            searched = (f"{subset:,} examples" if subset else "the whole split") + (
                f" for up to {max_epochs:g} epochs" if max_epochs else "")
            lines.append(
                f"  - refit of search trial `{r['search_trial']}` (rank {r.get('rank', '?')}"
                + (", its warm start" if r.get("warm_start") else "")
                + f", search val {r[f'search_{metric.name}']:.4f}) on "
                f"{r['train_size']:,} examples for {r['epochs']:g} epochs, fresh seed: val {r[metric.name]:.4f} "
                + (f"(winner's curse {gap})" if same else
                   f"(search val − refit val {gap}: not the winner's curse alone, the search trained on "
                   f"{searched})" if known else f"(search val − refit val {gap})")
                + f", test {with_error(r[metric.test_name], test_examples)}"
            )
        entry = by_name.get(export_name(s["search"]))
        if entry is not None and entry.members and s.get("refit"):
            joined = [f"`{r['search_trial']}`" for path in member_sources(entry.members) for r in s["refit"]
                      if same_path(r["checkpoint"], path)]
            lines.append(
                f"  - ensemble `{entry.name}`: the refits of {', '.join(joined)} (members chosen on validation, "
                f"probabilities averaged): val {entry.val_score:.4f}, test "
                f"{with_error(entry.test_score, test_examples)}, "
                f"{metric.difference(entry.test_score - s['refit'][0][metric.test_name])} on test over the refit "
                "winner alone"
            )
        importance = s.get("importance")
        if importance:
            ranked = ", ".join(f"{k} {v:.2f}" for k, v in sorted(importance.items(), key=lambda kv: -kv[1]))
            lines.append(f"  - Parameter importance (fANOVA on its Optuna study `{s.get('optuna_study')}`): {ranked}")
    return lines


def command_flag(command: str, name: str) -> str | None:
    """The value given to `name` in a recorded command line (None when absent)."""
    words = shlex.split(command)
    return words[words.index(name) + 1] if name in words[:-1] else None


def budget_of(search: dict[str, Any], task: Task) -> str | None:
    """What a search was allowed to spend, as a key two searches can share: its recorded settings without those
    that choose what is searched (the task's own, e.g. CIFAR's --model) or where it starts (--warm-start), plus
    its time budget and the machine. None for a summary that predates recording its settings."""
    settings = search.get("settings")
    if not settings:
        return None
    budget = {k: v for k, v in settings.items() if k not in (*task.search_settings, "warm_start")}
    budget["time_budget"] = command_flag(search.get("command", ""), "--time-budget")  # not a kept setting: resumable
    budget["machine"] = {k: v for k, v in search.get("machine", {}).items() if k in ("cpu", "cpu_count", "gpu")}
    return json.dumps(budget, sort_keys=True)


def equal_budget_section(task: Task, searches: list[dict[str, Any]], ranked: list) -> list[str]:
    """Searches of different model families run with the same budget, side by side: the fair comparison of the
    families. The verdict on their refits' test scores is drawn only when the gap exceeds twice its
    standard error."""
    by_name, metric = {e.name: e for e in ranked}, task.metric
    groups: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    for s in searches:
        families = {task.family(r["params"]) for r in s["rows"]}
        key = budget_of(s, task)
        if key is not None and len(families) == 1 and s.get("refit"):
            groups.setdefault(key, []).append((families.pop(), s))
    columns = [(c, value) for c, value in task.columns if c != "family"]
    lines = []
    for key, members in groups.items():
        if len({family for family, _ in members}) < 2:
            continue
        budget = json.loads(key)
        lines += [
            f"Same budget for each: {budget['trials']} trials on "
            + (f"{budget['subset']:,} training examples" if budget.get("subset") else "the whole training split")
            + f", up to {budget['max_epochs']:g} epochs, reports every {budget['report_every']:g} epoch, "
            f"{budget['searcher']} + {budget['scheduler']} (grace {budget['grace_period']:g}, reduction "
            f"{budget['reduction_factor']}), seed {budget['seed']}"
            + (f", a {budget['time_budget']}-minute search budget" if budget.get("time_budget") else "")
            + f"; refit of the best on the whole split for {budget['refit_epochs']} epochs; machine "
            f"{json.dumps(budget['machine'])}.", "",
            "| search | family | trials run | trial-epochs | wall (search + refit) | best search val | refit val | "
            f"refit test | params | {' | '.join(c for c, _ in columns)} | {task.unit}/s (refit) | "
            "most important (fANOVA) |",
            "|" + "---|" * (11 + len(columns)),
        ]
        results = []
        for family, s in members:
            refit = s["refit"][0]
            entry = by_name.get(f"search_{s['search']}")
            config = entry.config if entry else refit["params"]
            top = sorted((s.get("importance") or {}).items(), key=lambda kv: -kv[1])[:3]
            results.append((family, s, refit))
            lines.append(
                f"| `{s['search']}` | {family} | {s['trials']} | {s['trial_epochs']:.1f} | "
                f"{s['wall_seconds'] / 60:.1f} min | {s[metric.best_key]:.4f} | {refit[metric.name]:.4f} | "
                f"{with_error(refit[metric.test_name], task.test_examples)} | "
                + (f"{entry.params / 1e6:.2f} M" if entry and entry.params else "-") + " | "
                + " | ".join(fmt(value(config)) for _, value in columns) + " | "
                + (f"{entry.throughput:.0f}" if entry and entry.throughput else "-") + " | "
                + (", ".join(f"{k} {v:.2f}" for k, v in top) or "too few finished trials") + " |"
            )
        results.sort(key=lambda r: metric.sort_key(r[2][metric.test_name]))
        (first, s1, r1), (second, s2, r2) = results[0], results[1]
        _, error = gap_and_error(r1[metric.test_name], r2[metric.test_name], task.test_examples)
        gap = metric.gain(r1[metric.test_name], r2[metric.test_name])
        lines += ["", (
            f"At this budget {first.upper()} (`{s1['search']}`) beat {second.upper()} (`{s2['search']}`) on test by "
            f"{gap * 100:.2f} ± {error * 100:.2f} points (more than twice the standard error of the gap)."
            if verdict(gap, error) == "better" else
            f"At this budget {first.upper()} and {second.upper()} differ by {gap * 100:.2f} points on test, "
            "within twice the standard error of the gap: no measurable difference."
            if metric.proportion else
            f"At this budget {first.upper()} (`{s1['search']}`) scored {metric.difference(gap, signed=False)} better "
            f"than {second.upper()} (`{s2['search']}`) on test ({metric.label} has no standard error here: no "
            "verdict is drawn)."
        ), ""]
    return lines


def search_fidelity(search: dict[str, Any]) -> tuple[int | None, float | None, bool]:
    """(training examples or None for the whole split, max epochs, whether the subset is known) of a search's
    trials; read from its command and rows where an older summary did not record them (a subset left to the task's
    default is not in its command: then it is unknown)."""
    command = search.get("command", "")
    search = {**search.get("settings", {}), **search}  # search_args.json, where the summarizer attached it
    subset_flag, max_epochs_flag = command_flag(command, "--subset"), command_flag(command, "--max-epochs")
    subset_known = "subset" in search or subset_flag is not None
    subset = search["subset"] if "subset" in search else (int(subset_flag) if subset_flag else None)
    max_epochs = search.get("max_epochs") or (float(max_epochs_flag) if max_epochs_flag else None)
    if max_epochs is None and search.get("rows"):  # every trial's schedule spans the search's max epochs
        max_epochs = max(r["params"].get("epochs", 0) for r in search["rows"]) or None
    return subset, max_epochs, subset_known


def runs_line(ablation: dict[str, Any]) -> str:
    """How many runs, and where their time went: runs reused from an earlier ablation were trained there."""
    reused = collections.Counter(row["reused_from"] for row in ablation["rows"] if "reused_from" in row)
    trained = len(ablation["rows"]) - sum(reused.values())
    line = f"{trained} runs trained in {ablation['wall_seconds'] / 60:.1f} min"
    for source, count in sorted(reused.items()):
        line += f", {count} reused from `{source}` (same configs, seeds and data; trained there)"
    return line


def ablation_section(ablation: dict[str, Any], portable: Callable[[str], str] = str,
                     metric: Metric = ACCURACY) -> list[str]:
    """Mean ± std over seeds per factor and level, the base marked, and only the conclusions the spread supports:
    a level differs from the base when the gap in mean test score exceeds twice its standard error
    (sqrt(s_a²/n_a + s_b²/n_b)), better or worse in the metric's direction; otherwise the table says no
    measurable difference."""
    cells = ablation["cells"]
    base = next(c for c in cells if c["base"])
    data = f"{ablation['train_size']:,} training examples" + (" (a subset)" if ablation.get("subset") else "")
    lines = [
        f"### Ablation `{ablation['search']}` around `{ablation['base']}`", "",
        f"One factor at a time, {ablation['seeds']} seeds each, {ablation['epochs']} epoch(s) on {data}; "
        f"{runs_line(ablation)}. "
        f"Command: `{portable(ablation['command'])}`",
        "", f"| factor | level | seeds | val {metric.short} (mean ± std) | test {metric.short} (mean ± std) | test vs "
            "base | verdict |",
        "|---|---|---|---|---|---|---|",
    ]
    for c in cells:
        gap = c["test_mean"] - base["test_mean"]
        error = (c["test_std"] ** 2 / c["seeds"] + base["test_std"] ** 2 / base["seeds"]) ** 0.5
        if c["base"]:
            found, shown_gap = "base", "-"
        else:
            shown_gap = (f"{gap * 100:+.2f} ± {error * 100:.2f} pts" if metric.proportion
                         else f"{gap:+.3g} ± {error:.3g}" + (f" {metric.unit}" if metric.unit else ""))
            found = verdict(metric.gain(c["test_mean"], base["test_mean"]), error)
        level = "**base**" if c["base"] else fmt(c["level"])
        lines.append(f"| {'—' if c['base'] else c['factor']} | {level} | {c['seeds']} | {c['val_mean']:.4f} ± "
                     f"{c['val_std']:.4f} | {c['test_mean']:.4f} ± {c['test_std']:.4f} | {shown_gap} | {found} |")
    return lines + [""]


def study_plots(searches: list[dict[str, Any]], folder: Path) -> list[tuple[str, str]]:
    """Optuna's plots of each search's study, copied next to the report."""
    plots = []
    for s in searches:
        for plot in s.get("plots") or []:
            source = Path(plot["path"])
            name = f"{s['search']}_{source.name}"
            if source.is_file():
                shutil.copy2(source, folder / name)
            if (folder / name).is_file():  # copied now, or by the report this one regenerates
                plots.append((f"{plot['title']} — search `{s['search']}`", name))
    return plots


DATA_FLAGS = ("--data-dir",)  # and --<task>-data-dir
OUTPUT_FLAGS = ("--output-dir", "--out", "--outputs", "--storage-path", "--ray-results")


def portable_command(command: str, root: Path, data_dir: str | None, exported_config: Path | None) -> str:
    """A recorded command as it runs from this repository's root: paths inside the repository become relative;
    another machine's paths (a GPU box's /tmp data and output folders) give way to what stands for them here —
    the data dir this report was made with (none: the hub), the default output folders, the exported config."""
    root = root.resolve()
    words, out = shlex.split(command), []
    index = 0
    while index < len(words):
        flag, sep, inline = words[index].partition("=")
        has_value = flag.startswith("--") and bool(
            sep or (index + 1 < len(words) and not words[index + 1].startswith("--")))
        value = inline if sep else (words[index + 1] if has_value else "")
        step = 1 if sep or not has_value else 2
        foreign = has_value and value.startswith("/") and not Path(value).resolve().is_relative_to(root)
        if not foreign:
            out += [relative_to_root(word, root) for word in words[index:index + step]]
        elif flag in DATA_FLAGS or flag.endswith("-data-dir"):
            out += [flag, data_dir] if data_dir else []
        elif flag == "--config" and exported_config is not None:
            out += [flag, exported_config.resolve().relative_to(root).as_posix()]
        elif flag not in OUTPUT_FLAGS:  # output folders are dropped: the defaults under the repository
            out += words[index:index + step]
        index += step
    return shlex.join(out)


def write_report(task: Task, ranked: list, searches: list[dict[str, Any]], folder: Path, command: str,
                 machine: dict[str, Any], wall_seconds: float, benchmarks: Path,
                 ablations: list[dict[str, Any]] = (), data_dir: str | None = None) -> Path:
    def portable(recorded: str, name: str | None = None) -> str:
        config = folder / name / "experiment_config.json" if name else None
        return portable_command(recorded, Path.cwd(), data_dir, config if config and config.is_file() else None)

    plots = []
    metric = task.metric
    plot_learning_curves(ranked, folder / "learning_curves.png", metric=metric)
    plots.append((f"Learning curves: loss and validation {metric.label}", "learning_curves.png"))
    plots += study_plots(searches, folder)
    if not any(s.get("plots") for s in searches) and plot_search(searches, folder / "search_hyperparameters.png",
                                                                 metric):
        plots.append(("Search trials against each hyperparameter", "search_hyperparameters.png"))
    plots += task.plots(ranked, folder)
    attachments = []
    for stem in task.attachments:  # a benchmark's fresh output, else the copy kept beside an earlier report
        for source in (benchmarks, folder):
            if (source / f"{stem}.md").is_file() and (source / f"{stem}.png").is_file():
                for suffix in (".md", ".png"):
                    if source != folder:
                        shutil.copy2(source / f"{stem}{suffix}", folder / f"{stem}{suffix}")
                attachments.append(folder / f"{stem}.md")
                break
    lines = [
        f"# {task.title}", "",
        f"Generated {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC by `{command}` "
        f"(summarizer wall time {wall_seconds:.0f} s). Winners are picked by validation {metric.label}; the test split "
        "is used once per model, for the number reported"
        + (f"; each test accuracy is given ± its binomial standard error on the {task.test_examples:,} test "
           f"{task.example_noun}s (sqrt(p(1-p)/n))." if task.test_examples else "."), "",
        "## Who found these models", "", *provenance.report_lines(ranked[0], ranked, searches, task), "",
        "## Models", "", model_table(task, ranked), "",
        "## Comparison", "", *[f"- {t}" for t in comparison(task, ranked)], "",
    ]
    if ablations:
        lines += ["## Ablations", ""]
        for ablation in ablations:
            lines += ablation_section(ablation, portable, metric)
    equal_budget = equal_budget_section(task, searches, ranked)
    if equal_budget:
        lines += ["## Model families at equal search budget", "", *equal_budget]
    if searches:
        lines += ["## Searches", "", *search_section(searches, task.test_examples, portable, ranked, metric), ""]
    lines += ["## Plots", ""]
    for title, name in plots:
        lines += [f"![{title}]({name})", ""]
    for attachment in attachments:  # a benchmark's write-up starts with its own "## " heading
        lines += [attachment.read_text(), ""]
    lines += ["## How these numbers were produced", "",
              "Each command as it runs from the repository root here (paths of the machine that ran it, such as a "
              "GPU box's data and output folders, give way to this repository's data dir, default folders and "
              "exported config); the machine that measured the number follows it.", ""]
    def where(machine: dict[str, Any]) -> str:
        shown = ", ".join(f"{k}={v}" for k, v in machine.items() if k in ("cpu", "torch_threads", "gpu"))
        return f" — {shown}" if shown else ""

    for e in ranked:
        lines.append(f"- `{e.name}`: `{portable(e.command, e.name)}`{where(e.machine)}")
    for s in [s for s in searches if s.get("command")]:  # their trials, walls and refits: section Searches
        lines.append(f"- search `{s['search']}`: `{portable(s['command'])}`{where(s.get('machine') or {})}")
    for ablation in ablations:
        lines.append(f"- ablation `{ablation['search']}`: `{portable(ablation['command'])}`"
                     f"{where(ablation.get('machine') or {})}")
    for attachment in attachments:
        lines.append(f"- {attachment.stem.replace('_', ' ')}: the command and machine at the head of its section")
    lines += [f"- report: `{command}` — machine: {json.dumps(machine)}", ""]
    path = folder / "report.md"
    path.write_text("\n".join(lines))
    return path
