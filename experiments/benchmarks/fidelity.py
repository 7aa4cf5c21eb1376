"""How well a cheap score ranks configurations the way full training does: the arithmetic of a fidelity study.

A study trains each configuration once at the full budget (its final validation score is the truth) and records
the learning curve of every cheaper run; each (run kind, report point) is a proxy a search could rank on. This
module scores the proxies: Spearman's rank correlation with the truth, a bootstrap interval over configurations,
the cost in full-budget epochs, and the cheapest proxy that ranks well enough. No task is named here; the IMDB
study (`imdb_fidelity.py`) is one user.
"""

from __future__ import annotations

from typing import Any

import numpy as np

GOOD_RANKING = 0.8  # a proxy ranks well enough when its Spearman with the truth is at least this,
ENOUGH_CONFIGS = 8  # over at least this many configurations, its 90 % interval's low end above zero


def spearman(x: list[float], y: list[float]) -> float:
    """Rank correlation, ties given their mean rank."""
    def ranks(values: list[float]) -> np.ndarray:
        values = np.asarray(values, dtype=float)
        order = np.argsort(values, kind="stable")
        result = np.empty(len(values))
        result[order] = np.arange(len(values), dtype=float)
        for value in np.unique(values):
            tied = values == value
            result[tied] = result[tied].mean()
        return result

    rx, ry = ranks(x), ranks(y)
    if rx.std() == 0 or ry.std() == 0:
        return float("nan")
    return float(np.corrcoef(rx, ry)[0, 1])


def bootstrap_interval(x: list[float], y: list[float], draws: int = 2000, seed: int = 0) -> tuple[float, float]:
    """A 90 % percentile interval of Spearman's rho over configurations drawn with replacement."""
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(draws):
        pick = rng.integers(0, len(x), len(x))
        rho = spearman([x[i] for i in pick], [y[i] for i in pick])
        if not np.isnan(rho):
            values.append(rho)
    if not values:  # no draw ranks anything (a proxy that ties every configuration)
        return float("nan"), float("nan")
    return float(np.percentile(values, 5)), float(np.percentile(values, 95))


def rank_proxies(records: dict[str, dict[str, dict[str, Any]]], kinds: list[str], truth_kind: str,
                 truth_epoch: float) -> list[dict[str, Any]]:
    """Every (run kind, report point) as a proxy: its cost in epochs of the truth's run (training examples × mean
    example size) and its rank correlation with the truth run's final validation accuracy, over the
    configurations with both. `records`: config name → run kind → record with `curve`, `train_reviews`,
    `mean_tokens_read`."""
    complete = {n: r for n, r in records.items() if truth_kind in r}
    if not complete:
        return []
    unit = next(iter(complete.values()))[truth_kind]
    unit_work = unit["train_reviews"] * unit["mean_tokens_read"]  # one epoch of the truth's run
    truth = {n: r[truth_kind]["curve"][-1]["val_accuracy"] for n, r in complete.items()}
    rows = []
    for kind in kinds:
        with_kind = [n for n in complete if kind in complete[n]]
        if len(with_kind) < 3:
            continue
        points = sorted({p["epoch"] for n in with_kind for p in complete[n][kind]["curve"]})
        for epoch in points:
            names = [n for n in with_kind if any(p["epoch"] == epoch for p in complete[n][kind]["curve"])]
            if kind == truth_kind and epoch == truth_epoch:
                continue
            scores = [next(p["val_accuracy"] for p in complete[n][kind]["curve"] if p["epoch"] == epoch)
                      for n in names]
            work = [complete[n][kind]["train_reviews"] * complete[n][kind]["mean_tokens_read"] * epoch for n in names]
            rho = spearman(scores, [truth[n] for n in names])
            low, high = bootstrap_interval(scores, [truth[n] for n in names])
            rows.append({"proxy": kind, "epoch": epoch, "cost_full_epochs": float(np.mean(work)) / unit_work,
                         "configs": len(names), "spearman": rho, "interval_90": [low, high],
                         "best_by_proxy": names[int(np.argmax(scores))],
                         "its_full_val": truth[names[int(np.argmax(scores))]]})
    return rows


def cheapest_good(rows: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The cheapest proxy that ranks like the truth, if any: Spearman >= GOOD_RANKING over ENOUGH_CONFIGS or more
    configurations, with its 90 % interval's low end above zero (on 5 configurations a single swap moves rho by
    0.1-0.3, so a point estimate alone says little)."""
    good = [r for r in rows if r["spearman"] >= GOOD_RANKING and r["configs"] >= ENOUGH_CONFIGS
            and r["interval_90"][0] > 0]
    return min(good, key=lambda r: r["cost_full_epochs"]) if good else None
