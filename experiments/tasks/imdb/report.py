"""What the IMDB report says beyond the generic tables: direction, depth and dropout, each read only from two
one-config runs that differ in that setting alone, and what a validation score far above test means."""

from __future__ import annotations

from typing import Any

from data_pipes.imdb import MAX_LEN
from experiments.core.cli import throughput_setting
from experiments.core.uncertainty import gap_and_error, verdict

EXPORT_FOLDER = "assignment2-1-2"

# The settings the comparison reads, each only from two models that differ in it alone
FACTORS = {"is_bidirectional": "direction", "num_layers": "depth", "dropout": "dropout"}
NOT_SETTINGS = ("task", "config_name", "seed")  # a run's name and seed are not what it compares
TEST_REVIEWS = 25_000


def settings(config: dict[str, Any]) -> dict[str, Any]:
    """A config's training settings as two models are compared on (configs before max_len read MAX_LEN)."""
    found = {k: v for k, v in config.items() if k not in NOT_SETTINGS}
    found.setdefault("max_len", MAX_LEN)
    return found


def differences(first: Any, second: Any) -> set[str]:
    """The settings in which two models' configs differ."""
    a, b = settings(first.config), settings(second.config)
    return {k for k in a.keys() | b.keys() if a.get(k) != b.get(k)}


def comparison(ranked: list) -> list[str]:
    """Direction, depth and dropout, each read only from two one-config runs that differ in that setting alone:
    the presets change several at once (every bidirectional one also has 1 layer), and an average over them
    would credit one setting with another's effect. What no such pair settles is left to an ablation."""
    pool = [e for e in ranked if e.source.startswith("one-config") and e.test_score is not None]
    text = []
    for key, label in FACTORS.items():
        crossing = [(a, b) for i, a in enumerate(pool) for b in pool[i + 1:]
                    if settings(a.config).get(key) != settings(b.config).get(key)]
        if not crossing:
            continue
        matched = [(a, b) for a, b in crossing if differences(a, b) == {key}]
        for a, b in matched:
            gap, error = gap_and_error(a.test_score, b.test_score, TEST_REVIEWS)
            found = verdict(gap, error)
            speed = (f"; `{a.name}` trained {a.throughput / b.throughput:.2f}× as fast (same machine and threads)"
                     if a.throughput and b.throughput
                     and throughput_setting(a.machine) == throughput_setting(b.machine) else "")
            text.append(
                f"{label.capitalize()}: `{a.name}` ({key} {settings(a.config).get(key)}) against `{b.name}` "
                f"({settings(b.config).get(key)}), "
                f"alike in every other setting: test {gap * 100:+.2f} ± {error * 100:.2f} points — "
                + (found if found == "no measurable difference" else f"`{a.name}` {found}") + f"{speed}."
            )
        if not matched:
            together = set.intersection(*(differences(a, b) - {key} for a, b in crossing))
            a, b = min(crossing, key=lambda pair: len(differences(*pair)))
            why = (f"in these runs it always changes together with {', '.join(sorted(together))}" if together else
                   f"the closest pair, `{a.name}` and `{b.name}`, also differs in "
                   + ", ".join(sorted(differences(a, b) - {key})))
            text.append(
                f"{label.capitalize()} (`{key}`): no two one-config runs differ in it alone — {why} — so the table "
                f"cannot tell its effect from the others'; `python -m search.imdb --ablate BASE --vary {key}=…` "
                "measures it one factor at a time (section Ablations, where one has run)."
            )
    best = ranked[0] if ranked else None
    if (best is not None and best.test_score is not None and best.val_score - best.test_score > 0.01
            and best.validation == "random"):
        text.append(
            f"`{best.name}` scores {(best.val_score - best.test_score) * 100:.1f} points higher on validation "
            "than on test. The validation reviews are drawn at random from the train split, so many share a movie "
            "with training reviews (the test split holds other movies), and validation rewards a model that has "
            "learnt movie names. `python -m experiments.benchmarks.imdb_val_leak "
            f"model_checkpoints/{EXPORT_FOLDER}/{best.name} --data-dir ../shared/data/imdb` measures that."
        )
    return text
