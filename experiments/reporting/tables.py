"""The report's tables: one row per model (or per reproduced run), searches of different families at one budget
side by side, and each ablation's levels against its base; a table calls one thing better than another only where
the uncertainty rules of `experiments.core.uncertainty` support it."""

from __future__ import annotations

import collections
import json
from collections.abc import Callable
from typing import Any

from experiments.core.cli import command_flag, throughput_setting
from experiments.core.config import TASK_KEY
from experiments.core.machine_load import LOAD_MARGIN, measured_under_load, peak_load
from experiments.core.records import AblationRecord, SearchRecord
from experiments.core.task import ACCURACY, Metric, Task
from experiments.core.uncertainty import (
    chance_of_a_false_verdict,
    gap_and_error,
    seed_verdict,
    t_quantile,
    verdict,
    welch_gap,
    with_error,
)


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


TIMING_SUFFIXES = ("_per_s", "_seconds")  # history entries that time a run rather than describe what it learnt
UNDER_LOAD, LOAD_UNKNOWN = "‡", "°"  # marks on a throughput: measured under load; load not recorded


def run_identity(entry: Any) -> str | None:
    """What two records of one deterministic run share: the config (all but its display name and task; the seed
    is a field), the data where recorded, the validation protocol, the val and test scores, and the learning curve
    without its timings. None for a model that cannot be matched: an ensemble, one untested, or one without a
    recorded curve."""
    if entry.members or entry.test_score is None or not entry.history:
        return None
    config = {k: v for k, v in entry.config.items() if k not in ("config_name", TASK_KEY)}
    curve = [{k: v for k, v in h.items() if not k.endswith(TIMING_SUFFIXES)} for h in entry.history]
    return json.dumps([config, entry.data_fingerprint, entry.validation, entry.val_score, entry.test_score,
                       entry.epochs, curve], sort_keys=True, default=str)


def reproductions(ranked: list) -> list[list]:
    """The ranked models grouped so that runs reproducing one another (same `run_identity`) share a group, in
    rank order; inside a group, those timed without load first, then those whose load is unknown."""
    groups: dict[str, list] = {}
    out = []
    for entry in ranked:
        key = run_identity(entry)
        if key is None:
            out.append([entry])
        elif key in groups:
            groups[key].append(entry)
        else:
            groups[key] = [entry]
            out.append(groups[key])
    order = {False: 0, None: 1, True: 2}
    return [sorted(group, key=lambda e: order[measured_under_load(e.load)]) for group in out]


def load_mark(entry: Any) -> str:
    under = measured_under_load(entry.load)
    return UNDER_LOAD if under else LOAD_UNKNOWN if under is None else ""


def load_footnotes(task: Task, timed: list) -> list[str]:
    """What the marks on the throughputs mean, naming the load each flagged run saw."""
    loaded = [e for e in timed if measured_under_load(e.load)]
    unknown = [e for e in timed if measured_under_load(e.load) is None]
    lines = []
    if loaded:
        seen = "; ".join(f"`{e.name}` {peak_load(e.load):g} on {e.load['threads']} thread"
                         + ("" if e.load["threads"] == 1 else "s") for e in loaded)
        lines += ["", f"{UNDER_LOAD} measured under load: the machine's 1-minute load average, sampled when its "
                      f"training started and at each evaluation, rose above the threads it trained with by more than "
                      f"{LOAD_MARGIN:g} ({seen}). Other work (another command, or trials running beside it) shared the "
                      f"CPU, so its {task.unit}/s and train time are slower than the model trains alone and compare "
                      "with no other row."]
    if unknown:
        lines += ["", f"{LOAD_UNKNOWN} load not recorded: trained before runs recorded the machine's load, so whether "
                      f"other work shared the CPU while its {task.unit}/s was measured is unknown."]
    return lines


def model_table(task: Task, ranked: list) -> str:
    """One row per model, and one for runs that reproduced one another (the same config, seed, data, curve and
    scores: one result, not two confirmations), which lists each run's time and throughput. Where throughputs
    were measured under different settings (devices, CPUs, thread counts), each carries the letter of its
    setting and a footnote says they compare only within one; one measured under load, or whose load was not
    recorded, carries a mark that a footnote explains."""
    short = task.metric.short
    header = ["", "model", "source", *[c for c, _ in task.columns], "params", "epochs", f"val {short}",
              f"test {short}", "train time", f"{task.unit}/s"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    timed = [e for e in ranked if e.throughput]
    settings = list(dict.fromkeys(throughput_setting(e.machine) for e in timed))
    letters = {setting: chr(ord("a") + i) for i, setting in enumerate(settings)} if len(settings) > 1 else {}

    def speed(e: Any) -> str:
        letter = f" ({letters[throughput_setting(e.machine)]})" if letters else ""
        return f"{e.throughput:.0f}{letter}{load_mark(e)}"

    groups = reproductions(ranked)
    for i, group in enumerate(groups):
        e = group[0]
        shown = [[fmt(value(config)) for config in e.member_configs()] for _, value in task.columns]
        name = " = ".join(f"`{m.name}`" for m in group) + (f" (reproduced ×{len(group)})" if len(group) > 1 else "")
        cells = ["★" if i == 0 else "", name, "; ".join(dict.fromkeys(m.source for m in group)),
                 *[v[0] if len(set(v)) == 1 else " + ".join(v) for v in shown],
                 f"{e.params / 1e6:.2f} M" if e.params else "-", fmt(e.epochs),
                 f"{e.val_score:.4f}" + (" †" if e.validation != task.validation else ""),
                 with_error(e.test_score, task.test_examples),
                 " / ".join(f"{m.train_seconds / 60:.1f}" for m in group) + " min",
                 " / ".join(speed(m) for m in group if m.throughput) or "-"]
        lines.append("| " + " | ".join(cells) + " |")
    if letters:
        lines += ["", f"{task.unit}/s compares only between rows of one setting (the letter after it): "
                  + "; ".join(f"({letter}) {setting}" for setting, letter in letters.items()) + "."]
    lines += load_footnotes(task, timed)
    if any(len(group) > 1 for group in groups):
        lines += ["", "reproduced ×N: N runs of the same configuration and seed that reached the same learning "
                      "curve and scores (a deterministic training run again, e.g. by two searches that refit the "
                      "same warm start): one result, listed once, with each run's train time and throughput."]
    other = sorted({e.validation for e in ranked if e.validation != task.validation})
    if other:
        lines += ["", f"† validated on another split ({', '.join(other)}) than the data's now "
                      f"({task.validation}): that validation score is not comparable with the others, so the model "
                      f"is ranked after them and cannot be the best; its test {task.metric.label} is comparable."]
    return "\n".join(lines)


def budget_of(search: SearchRecord, task: Task) -> str | None:
    """What a search was allowed to spend, as a key two searches can share: its recorded settings without those
    that choose what is searched (the task's own, e.g. CIFAR's --model) or where it starts (--warm-start), plus
    its time budget and the machine. None for a summary that predates recording its settings."""
    settings = search.settings
    if not settings:
        return None
    budget = {k: v for k, v in settings.items() if k not in (*task.search_settings, "warm_start")}
    budget["time_budget"] = time_budget_of(search)
    budget["machine"] = {k: v for k, v in search.machine.items() if k in ("cpu", "cpu_count", "gpu")}
    return json.dumps(budget, sort_keys=True)


def time_budget_of(search: SearchRecord) -> float | None:
    """The minutes a search phase could take (None: no limit). It is not a kept setting, since a resume may change
    it; a record from before it was recorded falls back to its command's flag, or to the budget that stopped it."""
    if search.time_budget is not None:
        return search.time_budget
    flag = command_flag(search.command, "--time-budget")
    return (float(flag) or None) if flag is not None else search.stopped_by_time_budget


def equal_budget_section(task: Task, searches: list[SearchRecord], ranked: list) -> list[str]:
    """Searches of different model families run with the same budget, side by side: the fair comparison of the
    families. The verdict on their refits' test scores is drawn only when the gap exceeds twice its
    standard error."""
    by_name, metric = {e.name: e for e in ranked}, task.metric
    groups: dict[str, list[tuple[str, SearchRecord]]] = {}
    for s in searches:
        families = {task.family(r["params"]) for r in s.rows}
        key = budget_of(s, task)
        if key is not None and len(families) == 1 and s.refit:
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
            + (f", a {budget['time_budget']:g}-minute search budget" if budget.get("time_budget") else "")
            + f"; refit of the best on the whole split for {budget['refit_epochs']} epochs; machine "
            f"{json.dumps(budget['machine'])}.", "",
            "| search | family | trials run | trial-epochs | wall (search + refit) | best search val | refit val | "
            f"refit test | params | {' | '.join(c for c, _ in columns)} | {task.unit}/s (refit) | "
            "most important (fANOVA) |",
            "|" + "---|" * (11 + len(columns)),
        ]
        results = []
        for family, s in members:
            refit = s.refit[0]
            entry = by_name.get(f"search_{s.search}")
            config = entry.config if entry else refit["params"]
            top = sorted((s.importance or {}).items(), key=lambda kv: -kv[1])[:3]
            results.append((family, s, refit))
            lines.append(
                f"| `{s.search}` | {family} | {s.trials} | {s.trial_epochs:.1f} | "
                f"{s.wall_seconds / 60:.1f} min | {s.best_score(metric.best_key):.4f} | {refit[metric.name]:.4f} | "
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
            f"At this budget {first.upper()} (`{s1.search}`) beat {second.upper()} (`{s2.search}`) on test by "
            f"{gap * 100:.2f} ± {error * 100:.2f} points (more than twice the standard error of the gap; one "
            "search and one refit each, so the spread over seeds is not in that error)."
            if verdict(gap, error) == "better" else
            f"At this budget {first.upper()} and {second.upper()} differ by {gap * 100:.2f} points on test, "
            "within twice the standard error of the gap: no measurable difference."
            if metric.proportion else
            f"At this budget {first.upper()} (`{s1.search}`) scored {metric.difference(gap, signed=False)} better "
            f"than {second.upper()} (`{s2.search}`) on test ({metric.label} has no standard error here: no "
            "verdict is drawn)."
        ), ""]
    return lines


def runs_line(ablation: AblationRecord) -> str:
    """How many runs, and where their time went: runs reused from an earlier ablation were trained there."""
    reused = collections.Counter(row["reused_from"] for row in ablation.rows if "reused_from" in row)
    trained = len(ablation.rows) - sum(reused.values())
    line = f"{trained} runs trained in {ablation.wall_seconds / 60:.1f} min"
    for source, count in sorted(reused.items()):
        line += f", {count} reused from `{source}` (same configs, seeds and data; trained there)"
    return line


def ablation_section(ablation: AblationRecord, portable: Callable[[str], str] = str,
                     metric: Metric = ACCURACY) -> list[str]:
    """Mean ± std over seeds per factor and level, the base marked, and only the conclusions the seeds support:
    a level differs from the base when the Welch t interval (95 %, two-sided) of the gap in mean test score
    excludes zero, better or worse in the metric's direction; otherwise the table says no measurable difference.
    A few seeds estimate their own spread poorly, so the interval is wider than twice the standard error (t ≈ 2.8
    for 3 seeds a side). The section says how many levels were compared, uncorrected, and the budget the verdicts
    hold for."""
    cells = ablation.cells
    base = next(c for c in cells if c["base"])
    data = f"{ablation.train_size:,} training examples" + (" (a subset)" if ablation.subset else "")
    rows = []
    for c in cells:
        if c["base"]:
            found, shown_gap, shown_t = "base", "-", "-"
        else:
            seed_gap = welch_gap((metric.oriented(c["test_mean"]), c["test_std"], c["seeds"]),
                                 (metric.oriented(base["test_mean"]), base["test_std"], base["seeds"]))
            gap, error = c["test_mean"] - base["test_mean"], seed_gap.error
            shown_gap = (f"{gap * 100:+.2f} ± {error * 100:.2f} pts" if metric.proportion
                         else f"{gap:+.3g} ± {error:.3g}" + (f" {metric.unit}" if metric.unit else ""))
            shown_t = (f"{abs(seed_gap.t):.2f} ({seed_gap.degrees_of_freedom:.1f})"
                       if seed_gap.degrees_of_freedom is not None else "- (a single seed: no spread)")
            found = seed_verdict(seed_gap)
        level = "**base**" if c["base"] else fmt(c["level"])
        rows.append(f"| {'—' if c['base'] else c['factor']} | {level} | {c['seeds']} | {c['val_mean']:.4f} ± "
                    f"{c['val_std']:.4f} | {c['test_mean']:.4f} ± {c['test_std']:.4f} | {shown_gap} | {shown_t} | "
                    f"{found} |")
    compared, seeds = len(cells) - 1, ablation.seeds
    plural = "s" if compared != 1 else ""
    needs = (f": with {seeds} seeds a side a gap needs at least {t_quantile(0.975, 2 * seeds - 2):.1f} standard "
             "errors, not 2" if seeds > 1 else "")
    return [
        f"### Ablation `{ablation.search}` around `{ablation.base}`", "",
        f"One factor at a time, {ablation.seeds} seeds each, {ablation.epochs} epoch(s) on {data}; "
        f"{runs_line(ablation)}. {compared} level{plural} compared with the base, each by Welch's t test on the "
        f"seeds' test {metric.label} (two-sided, 95 %, Welch–Satterthwaite degrees of freedom{needs}). The verdicts "
        f"are not corrected for the {compared} comparison{plural}: were no level different from the base, at least "
        f"one would still read better or worse {chance_of_a_false_verdict(compared):.0%} of the time. They hold "
        f"for these runs' budget, {ablation.epochs} epoch(s) on {ablation.train_size:,} training examples, "
        f"not for a full training. Command: `{portable(ablation.command)}`",
        "", f"| factor | level | seeds | val {metric.short} (mean ± std) | test {metric.short} (mean ± std) | test vs "
            "base (± s.e.) | Welch t (df) | verdict |",
        "|---|---|---|---|---|---|---|---|",
        *rows, "",
    ]
