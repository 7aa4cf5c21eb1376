"""Timing training steps under several variants (fp32, bf16 autocast, channels-last, torch.compile) the same way for
every task: the same batches for each variant, the variants interleaved in rounds so that a change of the
machine's load hits each alike, the median per variant and its ratio to fp32; and the record that keeps the
result with the machine and the load around it.

A task's benchmark (`imdb_precision`, `cifar_precision`) says how to build its model and take one step; this
module times the steps.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from experiments.core.checkpoints import write_text_atomically
from experiments.core.cli import machine_info
from experiments.core.machine_load import load_average

Step = Callable[[Any], int]  # one training step on one batch; returns the examples it trained on


def examples_per_second(step: Step, work: Sequence[Any]) -> float:
    """Examples per second over `work`, after one untimed step (compilation, allocator warm-up)."""
    step(work[0])
    started, seen = time.perf_counter(), 0
    for batch in work[1:]:
        seen += step(batch)
    return seen / (time.perf_counter() - started)


def time_variants(make_step: Callable[[str], Step], work: Sequence[Any], variants: Sequence[str],
                  rounds: int) -> dict[str, list[float]]:
    """Examples per second of each variant in each round; `make_step(variant)` builds a fresh model for it."""
    speeds: dict[str, list[float]] = {v: [] for v in variants}
    for _ in range(rounds):
        for variant in variants:
            speeds[variant].append(examples_per_second(make_step(variant), work))
    return speeds


def medians(speeds: dict[str, list[float]], unit: str) -> dict[str, float]:
    """Each variant's median, printed with its ratio to fp32 where fp32 was timed."""
    median = {v: float(np.median(s)) for v, s in speeds.items()}
    for variant, value in median.items():
        ratio = f", {value / median['fp32']:.2f}x fp32" if "fp32" in median else ""
        print(f"{variant:>10}: {value:7.1f} {unit}/s (median of {len(speeds[variant])}){ratio}")
    return median


def write_record(path: Path, command: str, config: dict[str, Any], speeds: dict[str, list[float]],
                 median: dict[str, float], threads: int, load_start: float | None, **extra: Any) -> None:
    """The benchmark's record, with the machine, the threads and the load average before and after."""
    record = {"command": command, "config": config, **extra, "per_second": speeds, "median": median,
              "threads": threads, "machine": machine_info(), "load_average_start": load_start,
              "load_average_end": load_average()}
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomically(path, json.dumps(record, indent=1) + "\n")
    print(f"wrote {path}")
