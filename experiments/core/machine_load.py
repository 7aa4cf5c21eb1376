"""What else the machine ran while a run was timed: its 1-minute load average, and whether a timing was taken
under load.

The training loop samples the load when training starts and at every evaluation, with the threads it trains
with (`experiments.core.training.fit` records `{"start", "end", "highest", "threads"}` beside each checkpoint);
the report marks a throughput measured under load instead of presenting it as clean.
"""

from __future__ import annotations

import os
from typing import Any

LOAD_MARGIN = 0.5  # load beyond a run's own threads that counts as other work: half a core, kept busy


def load_average() -> float | None:
    """The machine's 1-minute load average (runnable and running threads, averaged); None where the OS has none."""
    try:
        return round(os.getloadavg()[0], 2)
    except (AttributeError, OSError):
        return None


def with_load_sample(load: dict[str, Any], now: float | None) -> dict[str, Any]:
    """A run's load record with one more 1-minute load average sample: the latest as its end, the highest kept."""
    highest = max((v for v in (load.get("highest"), now) if v is not None), default=None)
    return {**load, "end": now, "highest": highest}


def measured_under_load(load: dict[str, Any] | None) -> bool | None:
    """Whether a run's timing was taken while other work shared the machine: the highest 1-minute load average
    sampled during its training exceeded the threads it trained with by more than LOAD_MARGIN (the run's own
    threads account for up to that many). None where the run recorded no load (runs made before it was)."""
    peak = peak_load(load)
    if peak is None or not (load or {}).get("threads"):
        return None
    return peak > load["threads"] + LOAD_MARGIN


def peak_load(load: dict[str, Any] | None) -> float | None:
    """The highest 1-minute load average a run's load record holds (None: none recorded)."""
    load = load or {}
    return max((load[k] for k in ("highest", "start", "end") if load.get(k) is not None), default=None)
