"""`report.md` + plots for one task, generated from what the runs recorded (no number is typed in by hand).

The one report writer: what differs between tasks (title, metric and targets, table columns, unit, task-specific
sentences and plots) comes from the `Task`. Scores are written the metric's way: accuracies in % with their
binomial standard errors, any other metric as a number with its unit, targets with their direction (≤ 55 RMSE).

This module puts the sections in order; the tables are in `experiments.reporting.tables`, the sentences in
`experiments.reporting.prose`, the figures in `experiments.reporting.plots`, the commands behind the numbers in
`experiments.reporting.commands`, the opening (who found each model) in `experiments.reporting.provenance`, and
the behavioural test sets (where the task has them) in `experiments.reporting.behaviour`.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from experiments.core.records import AblationRecord, SearchRecord
from experiments.core.task import Task
from experiments.reporting import provenance
from experiments.reporting.behaviour import behaviour_section
from experiments.reporting.commands import commands_section, portable_in
from experiments.reporting.plots import attach_benchmarks, draw_plots
from experiments.reporting.prose import comparison, search_section
from experiments.reporting.tables import ablation_section, equal_budget_section, model_table


def write_report(task: Task, ranked: list, searches: list[SearchRecord], folder: Path, command: str,
                 machine: dict[str, Any], wall_seconds: float, benchmarks: Path,
                 ablations: list[AblationRecord] = (), data_dir: str | None = None) -> Path:
    portable = portable_in(folder, data_dir)
    metric = task.metric
    plots = draw_plots(task, ranked, searches, folder)
    attachments = attach_benchmarks(task, benchmarks, folder)
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
    if task.behaviour is not None:
        lines += behaviour_section(task, ranked, folder)
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
    lines += commands_section(ranked, searches, ablations, attachments, command, machine, portable)
    path = folder / "report.md"
    path.write_text("\n".join(lines))
    return path
