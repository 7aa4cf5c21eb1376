"""The report's sentences: the winner against the task's targets, and one entry per search (its budget, outcome,
refits, ensemble and what its study says about the hyperparameters)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from experiments.core.records import SearchRecord
from experiments.core.task import ACCURACY, Metric, Task
from experiments.core.uncertainty import with_error
from experiments.reporting.ensemble import export_name, member_sources
from experiments.reporting.storage_paths import same_search_path


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


def split_trial_params(configs: list[dict[str, Any]]) -> tuple[list[str], dict[str, Any]]:
    """A search's trial configs → the keys it varied, and the values every trial shared (its constants, e.g. the
    epochs, seed and reading length), read from what the trials ran rather than from today's space."""
    keys = list(dict.fromkeys(k for config in configs for k in config))
    fixed = {k: configs[0][k] for k in keys
             if all(k in c for c in configs) and len({json.dumps(c[k], sort_keys=True) for c in configs}) == 1}
    return [k for k in keys if k not in fixed], fixed


def search_fidelity(search: SearchRecord) -> tuple[int | None, float | None, bool]:
    """(training examples or None for the whole split, max epochs, whether the subset is known) of a search's
    trials; the settings it was started with (`search_args.json`, where the summarizer attached them) say what an
    older summary did not record."""
    if not search.subset_known and "subset" in search.settings:
        return search.settings["subset"], search.max_epochs, True
    return search.subset, search.max_epochs or search.settings.get("max_epochs"), search.subset_known


def search_section(searches: list[SearchRecord], test_examples: int = 0,
                   portable: Callable[[str], str] = str, ranked: list | None = None,
                   metric: Metric = ACCURACY) -> list[str]:
    """One entry per search: its budget and outcome, its refit (with the winner's curse), the ensemble of its
    refits where one is among the `ranked` models, and what its Optuna study says about the hyperparameters
    (importance computed by the engine, which owns Optuna)."""
    by_name = {e.name: e for e in ranked or []}
    lines = []
    for s in searches:
        resumed = f", resumed {s.resumes}×" if s.resumes else ""
        apart = (f" (search {s.search_wall_seconds / 60:.1f} + refit {s.refit_wall_seconds / 60:.1f})"
                 if s.refit_wall_seconds is not None else "")
        lines.append(
            f"- `{s.search}` ({s.searcher} + {s.scheduler}, reports every {s.report_every or 1:g} "
            f"epoch): {s.trials} trials, {s.trial_epochs:.1f} trial-epochs in {s.wall_seconds / 60:.1f} min "
            f"wall{apart}{resumed} — {s.completed} completed, {s.stopped_early} stopped early, "
            f"{s.errored} errored; "
            f"best val {s.best_score(metric.best_key):.4f}. Command: `{portable(s.command)}`"
            + (f" (resumed with `{portable(s.resumed_with)}`)" if s.resumed_with else "")
        )
        if s.rows:
            searched, fixed = split_trial_params([r["params"] for r in s.rows])
            lines.append(f"  - Space: searched {', '.join(searched) or 'nothing'}; the same in every trial: "
                         + ", ".join(f"{k}={v}" for k, v in fixed.items()))
        subset, max_epochs, subset_known = search_fidelity(s)
        for r in s.refit:
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
        entry = by_name.get(export_name(s.search))
        if entry is not None and entry.members and s.refit:
            joined = [f"`{r['search_trial']}`" for path in member_sources(entry.members) for r in s.refit
                      if same_search_path(r["checkpoint"], path, s.search)]
            lines.append(
                f"  - ensemble `{entry.name}`: the refits of {', '.join(joined)} (members chosen on validation, "
                f"probabilities averaged): val {entry.val_score:.4f}, test "
                f"{with_error(entry.test_score, test_examples)}, "
                f"{metric.difference(entry.test_score - s.refit[0][metric.test_name])} on test over the refit "
                "winner alone"
            )
        importance = s.importance
        if importance:
            ranked = ", ".join(f"{k} {v:.2f}" for k, v in sorted(importance.items(), key=lambda kv: -kv[1]))
            lines.append(f"  - Parameter importance (fANOVA on its Optuna study `{s.optuna_study}`): {ranked}")
    return lines
