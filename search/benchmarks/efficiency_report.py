"""The efficiency benchmark's report: anytime curves averaged over seeds with a t interval, each strategy against
ours at equal trial-epochs and at equal wall time, the test score of each pick, our per-trial overhead against
plain Optuna, and a conclusion that says only what the intervals carry (`experiments.core.uncertainty`: Welch's
t for two means over seeds; no correction for the several comparisons, whose chance of one false verdict is
stated instead).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from statistics import mean, stdev
from typing import Any

from experiments.core.checkpoints import write_text_atomically
from experiments.core.task import Metric
from experiments.core.uncertainty import CONFIDENCE, chance_of_a_false_verdict, seed_verdict, t_quantile, welch_gap
from search.benchmarks.efficiency_runs import REFERENCE, STRATEGIES, Run

LOCAL = "optuna+hyperband"  # plain Optuna: what our overhead is measured against


def best_at(curve: list[tuple[float, float, float]], x: float, axis: int) -> float | None:
    """Best validation so far once `x` trial-epochs (axis 0) or seconds (axis 1) were spent; None before the
    first report. After its last report a run keeps its best: its search had ended by then."""
    best = None
    for point in curve:
        if point[axis] > x + 1e-9:
            break
        best = point[2]
    return best


def interval(values: Sequence[float]) -> tuple[float, float | None]:
    """Mean and the half-width of its two-sided CONFIDENCE t interval (None with one value)."""
    if len(values) < 2:
        return mean(values), None
    return mean(values), t_quantile(0.5 + CONFIDENCE / 2, len(values) - 1) * stdev(values) / len(values) ** 0.5


def shown(values: Sequence[float | None], scale: float = 1.0, digits: int = 2) -> str:
    values = [v * scale for v in values if v is not None]
    if not values:
        return "-"
    centre, half = interval(values)
    return f"{centre:.{digits}f}" + (f" ± {half:.{digits}f}" if half is not None else "")


def gap(ours: Sequence[float], theirs: Sequence[float]):
    """theirs − ours over seeds, Welch's t (positive: the other strategy scored higher)."""
    summary = [(mean(v), stdev(v) if len(v) > 1 else 0.0, len(v)) for v in (theirs, ours)]
    return welch_gap(*summary)


def gap_line(label: str, ours: list[float], theirs: list[float], scale: float, unit: str,
             orient: Callable[[float], float] = lambda g: g) -> tuple[str, str]:
    """One comparison in words and its verdict for the other strategy ('better', 'worse', 'no measurable
    difference'); `orient` turns the gap so that positive is better for the other strategy."""
    found = gap(ours, theirs)
    oriented = type(found)(orient(found.gap), found.error, found.degrees_of_freedom, found.half_width)
    verdict = seed_verdict(oriented)
    half = f" ± {found.half_width * scale:.2f}" if found.half_width is not None else " (no interval)"
    return f"{label} {found.gap * scale:+.2f}{half} {unit}: {verdict}", verdict


def write_report(runs: list[Run], settings: dict[str, Any], out: Path, stem: str, title: str,
                 metric: Metric) -> list[str]:
    """Markdown, CSV, JSON and PNG under `out`; returns the markdown's lines. Scores are in % for a proportion."""
    strategies = list(dict.fromkeys(r.strategy for r in runs))
    by = {s: [r for r in runs if r.strategy == s] for s in strategies}
    budget = min(r.trial_epochs for r in runs)  # every run spent its budget; this is the smallest spend
    # equal wall time: the time budget every search had, else the moment the first search ended
    wall = settings["time_budget"] * 60 if settings["time_budget"] else min(r.ended_s for r in runs)
    for r in runs:
        r.at_budget, r.at_wall = best_at(r.curve, budget, 0), best_at(r.curve, wall, 1)
    scale, unit = (100, "points") if metric.proportion else (1, metric.unit or "")
    sign = 1 if metric.mode == "max" else -1  # a gap in the metric, turned so that positive is better
    lines = [f"## {title}", "", f"`{settings['command']}`", "",
             f"- Machine: {settings['machine']['cpu']}, {settings['machine']['cpu_count']} cores, one trial at a "
             f"time on {settings['threads']} torch thread; load average (1 min) {settings['load']['start']} when the "
             f"first search started, {settings['load']['end']} when the last ended, at most "
             f"{settings['load'].get('highest')} at any search's start or end (each search's in the CSV).",
             f"- Task `{settings['task']}`; every strategy: the same space, trial function and seed, "
             f"{settings['max_epochs']} epochs at most per trial, rungs from {settings['grace_period']:g} epoch by "
             f"{settings['reduction_factor']}, a budget of "
             + (f"{settings['epoch_budget']:g} trial-epochs" if settings["epoch_budget"] else "no trial-epoch limit")
             + " and " + (f"{settings['time_budget'] * 60:g} s" if settings["time_budget"] else "no time limit")
             + f" per search, at most {settings['trials']} trials; seeds {settings['seeds']}. Equal trial-epochs: "
             f"the fewest any search spent ({budget:g}), read off each anytime curve; equal wall time: {wall:.0f} s "
             "from each search's start (the time budget where there is one).",
             f"- ± is the half-width of the {CONFIDENCE:.0%} t interval over seeds; gaps are the other strategy "
             "minus ours (Welch's t); the test score of a pick is measured once, for this report only.", ""]
    for note in settings.get("notes", []):
        lines.append(f"- Note: {note}")
    lines += [""] if settings.get("notes") else []
    lines += ["| strategy | what | seeds | trials | trial-epochs | wall (s) | start-up (s) | overhead per trial (s) "
              f"| best val at {budget:g} trial-epochs | best val at {wall:.0f} s | test of pick |",
              "|---" * 11 + "|"]
    for s in strategies:
        rs = by[s]
        lines.append(f"| {s} | {STRATEGIES[s].what} | {len(rs)} | {shown([r.trials for r in rs], digits=1)} | "
                     f"{shown([r.trial_epochs for r in rs], digits=0)} | {shown([r.wall_s for r in rs], digits=1)} | "
                     f"{shown([r.startup_s for r in rs], digits=1)} | "
                     f"{shown([r.overhead_per_trial_s for r in rs], digits=3)} | "
                     f"{shown([r.at_budget for r in rs], scale)} | {shown([r.at_wall for r in rs], scale)} | "
                     f"{shown([r.test_of_pick for r in rs], scale)} |")
    errors = [r.test_error for r in runs if r.test_error is not None]
    if errors:
        lines.append(f"\nScores in %. One test score's own binomial standard error is about {mean(errors) * 100:.2f} "
                     "points.")
    lines += ["", "### Against ours (optuna+asha)", ""]
    verdicts: dict[str, list[str]] = {}
    compared = [s for s in strategies if s != REFERENCE]
    if REFERENCE in by:
        ours = by[REFERENCE]
        for s in compared:
            theirs, parts = by[s], []
            for label, key in ((f"val at {budget:g} trial-epochs", "at_budget"), (f"val at {wall:.0f} s", "at_wall"),
                               ("test of pick", "test_of_pick")):
                a = [getattr(r, key) for r in ours if getattr(r, key) is not None]
                b = [getattr(r, key) for r in theirs if getattr(r, key) is not None]
                if a and b:
                    text, verdict = gap_line(label, a, b, scale, unit, lambda g: sign * g)
                    parts.append(text)
                    verdicts.setdefault(s, []).append(f"{label}: {verdict}")
            lines.append(f"- {s}: " + ("; ".join(parts) or "no scores to compare (a side never reported)"))
        if LOCAL in by:
            text, _ = gap_line("per-trial overhead, plain Optuna minus ours", [r.overhead_per_trial_s for r in ours],
                               [r.overhead_per_trial_s for r in by[LOCAL]], 1, "s", lambda g: -g)
            startup, _ = gap_line("start-up", [r.startup_s for r in ours], [r.startup_s for r in by[LOCAL]], 1, "s",
                                  lambda g: -g)
            lines.append(f"- Overhead (a verdict here is plain Optuna's): {text}; {startup} (one trial-epoch "
                         f"trained in {mean(r.train_s / max(r.trial_epochs, 1) for r in ours):.3f} s on average under "
                         "ours).")
    concluded = conclusion(verdicts, len(by.get(REFERENCE, [])), budget, wall)
    lines += ["", "### Conclusion", "", *concluded]
    lines += ["", f"![anytime curves]({stem}.png)", "", f"Per run: `{stem}.csv`; curves and settings: `{stem}.json`."]
    write_text_atomically(out / f"{stem}.md", "\n".join(lines) + "\n")
    with open(out / f"{stem}.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(runs[0].row()))
        writer.writeheader()
        writer.writerows(r.row() for r in runs)
    write_text_atomically(out / f"{stem}.json", json.dumps({
        "settings": settings, "budget_trial_epochs": budget, "equal_wall_seconds": wall, "conclusion": concluded,
        "strategies": {s: STRATEGIES[s].what for s in strategies}, "verdicts": verdicts,
        "runs": [{**r.row(), "load": r.load, "curve": r.curve} for r in runs]}, separators=(",", ":"), default=str)
        + "\n")  # compact: the curves hold every report of every search
    plot(by, budget, wall, out / f"{stem}.png", metric.label, title, scale)
    return lines


def conclusion(verdicts: dict[str, list[str]], seeds: int, budget: float, wall: float) -> list[str]:
    """Only what the intervals say: which comparisons found a difference, and how likely one false one is."""
    if not verdicts:
        return ["- No comparison: ours (optuna+asha) was not run, or only one seed per side."]
    found = [f"{s} {v}" for s, vs in verdicts.items() for v in vs if not v.endswith("no measurable difference")]
    total = sum(len(v) for v in verdicts.values())
    lines = [f"- Over {seeds} seeds, {len(found)} of {total} comparisons with ours found a difference the "
             f"{CONFIDENCE:.0%} Welch interval carries" + (": " + "; ".join(found) + "." if found else ".")]
    lines.append(f"- Every other comparison: no measurable difference at this budget ({budget:g} trial-epochs, "
                 f"{wall:.0f} s). With {total} comparisons and no correction, the chance of at least one false "
                 f"verdict where nothing differs is {chance_of_a_false_verdict(total):.0%}.")
    return lines


def plot(by: dict[str, list[Run]], budget: float, wall: float, path: Path, metric_label: str, title: str,
         scale: float) -> None:
    """Best validation so far against trial-epochs and against wall time: each strategy's mean over seeds with its
    t interval shaded, against trial-epochs as far as every seed's search went, against time past the end of a
    search too (its pick stands); dotted, the points the table compares at."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    spent = {s: min(r.trial_epochs for r in rs) for s, rs in by.items()}  # a curve ends where a seed's search did
    longest = max(r.ended_s for rs in by.values() for r in rs)
    grids = ([max(spent.values()) * (i + 1) / 200 for i in range(200)], [longest * (i + 1) / 200 for i in range(200)])
    for colour, (s, rs) in enumerate(by.items()):
        for axis, (ax, grid) in enumerate(zip(axes, grids, strict=True)):
            xs, centres, lows, highs = [], [], [], []
            for x in grid:
                values = [best_at(r.curve, x, axis) for r in rs]
                if None in values or (axis == 0 and x > spent[s] + 1e-9):
                    continue  # not every seed had reported yet, or one had spent all it did
                centre, half = interval([v * scale for v in values])
                xs.append(x)
                centres.append(centre)
                lows.append(centre - (half or 0))
                highs.append(centre + (half or 0))
            ax.plot(xs, centres, label=s, color=f"C{colour}")
            ax.fill_between(xs, lows, highs, color=f"C{colour}", alpha=0.15)
    axes[0].axvline(budget, color="grey", linestyle=":", linewidth=0.8)  # the equal trial-epochs of the table
    axes[1].axvline(wall, color="grey", linestyle=":", linewidth=0.8)
    axes[0].set(xlabel="cumulative trial-epochs", ylabel=f"best val {metric_label} so far")
    axes[1].set(xlabel="wall time since the search started (s)", ylabel=f"best val {metric_label} so far")
    for ax in axes:
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
