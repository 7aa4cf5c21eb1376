"""The report's tables: one row per model, searches of different families at one budget side by side, and each
ablation's levels against its base; a table calls one thing better than another only where the standard errors
support it."""

from __future__ import annotations

import collections
import json
from collections.abc import Callable
from typing import Any

from experiments.core.cli import throughput_setting
from experiments.core.task import ACCURACY, Metric, Task
from experiments.core.uncertainty import gap_and_error, verdict, with_error
from experiments.reporting.commands import command_flag


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
