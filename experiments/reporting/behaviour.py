"""The report's behavioural section: every exported model's accuracy on the task's behavioural test sets
(`Task.behaviour`, see `experiments.core.behaviour`), and what the shipped model gets wrong.

Predictions come from the export folders, as `python -m experiments.predict` makes them (one checkpoint or an
ensemble), so only exports that hold weights are run; the others are named in a note.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from experiments.core.behaviour import BehaviourSet
from experiments.core.checkpoints import has_weights
from experiments.core.errors import CheckpointError
from experiments.core.task import Task
from experiments.reporting import ensemble

SHOWN_FAILURES = 3  # per set, of the first model run: enough to see the pattern, short enough to read


def predicted_labels(task: Task, folder: Path, inputs: list[Any]) -> list[str]:
    """The label the exported model gives each raw input."""
    return [str(p[0] if isinstance(p, tuple) else p) for p in ensemble.predict(task, folder, inputs)]


def per_set(sets: list[BehaviourSet], predicted: list[str]) -> list[list[bool]]:
    """Whether each input of each set got its label, from the predictions of all sets' inputs in order."""
    out, start = [], 0
    for behaviour_set in sets:
        got = predicted[start:start + len(behaviour_set.inputs)]
        out.append([a == b for a, b in zip(got, behaviour_set.labels, strict=True)])
        start += len(behaviour_set.inputs)
    return out


def behaviour_section(task: Task, ranked: list, folder: Path) -> list[str]:
    """`## Behaviour`: the sets, a table of accuracy per set for each export with weights, the first such
    model's failures, and which exports were not run (no weights, or weights that would not load)."""
    sets = list(task.behaviour())
    inputs = [x for behaviour_set in sets for x in behaviour_set.inputs]
    sizes = sorted({len(behaviour_set.inputs) for behaviour_set in sets})
    size = f"{sizes[0]}" if len(sizes) == 1 else f"{sizes[0]}–{sizes[-1]}"
    results: dict[str, list[list[bool]]] = {}
    not_run: list[str] = []
    for entry in ranked:
        export = folder / entry.name
        if not has_weights(export, task.weight_file):
            not_run.append(f"`{entry.name}`")
            continue
        try:
            results[entry.name] = per_set(sets, predicted_labels(task, export, inputs))
        except CheckpointError as error:
            not_run.append(f"`{entry.name}` ({error})")
    lines = [
        "## Behaviour", "",
        f"Small sets of short {task.example_noun}s written for this project, one per capability, each labelled, in "
        "the spirit of CheckList's minimum functionality tests (Ribeiro et al., ACL 2020). The test split says how "
        f"often a model is right on {task.example_noun}s like its training data; these sets say which kinds it gets "
        f"wrong. **They are not used to choose models** (validation does that), and with {size} "
        f"{task.example_noun}s a set one {task.example_noun} moves a score by several points: read them for what "
        "fails, not as a ranking.", "",
        *[f"- **{s.name}** ({len(s.inputs)}): {s.capability} E.g. “{s.inputs[0]}” → {s.labels[0]}." for s in sets],
        "",
    ]
    if results:
        lines += ["| model | " + " | ".join(s.name for s in sets) + " | all |",
                  "|---|" + "---|" * (len(sets) + 1)]
        for name, correct in results.items():
            every = [c for cells in correct for c in cells]
            lines.append(f"| `{name}` | " + " | ".join(f"{sum(c)}/{len(c)} ({sum(c) / len(c):.0%})" for c in correct)
                         + f" | {sum(every)}/{len(every)} ({sum(every) / len(every):.0%}) |")
        first = next(iter(results))
        who = "the shipped model" if first == ranked[0].name else "the best-ranked model run here"
        wrong = [(s, [x for x, ok in zip(s.inputs, correct, strict=True) if not ok])
                 for s, correct in zip(sets, results[first], strict=True)]
        shown = [f"- {s.name}: " + "; ".join(f"“{x}”" for x in failed[:SHOWN_FAILURES])
                 + (f" (and {len(failed) - SHOWN_FAILURES} more)" if len(failed) > SHOWN_FAILURES else "")
                 for s, failed in wrong if failed]
        lines += ["", f"What `{first}` ({who}) gets wrong:" if shown else f"`{first}` ({who}) gets every one right.",
                  *([""] + shown if shown else [])]
    else:
        lines.append("No export holds weights, so no model was run on these sets.")
    if not_run:
        lines += ["", f"Not run (their exports hold no weights: only each family's best and earlier champions "
                      f"keep theirs; `--all-weights` exports every model's): {', '.join(not_run)}."]
    return lines + [""]
