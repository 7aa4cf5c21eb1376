"""The epoch loop every trial shares: optimiser, schedule, AMP, NaN guard, checkpoints, resume, progress.

A task's trial supplies a model, how to make one epoch of batches, a loss on a batch, an evaluation and a
checkpoint writer; `fit` does the rest the same way for IMDB and CIFAR-10, with or without Ray.
"""

from __future__ import annotations

import functools
import json
import math
import random
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from experiments.core.checkpoints import METRICS_FILE, TRAINER_STATE
from experiments.core.cli import cpuinfo
from experiments.core.machine_load import load_average, with_load_sample
from experiments.core.reporters import Reporter
from experiments.core.task import ACCURACY
from experiments.core.units import as_epoch, report_grid


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def pick_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def build_optimizer(model: nn.Module, name: str, params: dict[str, float]) -> torch.optim.Optimizer:
    """Optimizer by class name; no weight decay on biases, norms and embeddings' padding-free vectors."""
    decay, no_decay = [], []
    for param_name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        (no_decay if param.ndim < 2 or "norm" in param_name.lower() else decay).append(param)
    groups = [
        {"params": decay, "weight_decay": float(params.get("weight_decay", 0.0))},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    kwargs = {k: v for k, v in params.items() if k != "weight_decay"}
    return getattr(torch.optim, name)(groups, **kwargs)


def build_schedule(
    optimizer: torch.optim.Optimizer, kind: str, total_steps: int, warmup_fraction: float = 0.1
) -> torch.optim.lr_scheduler.LRScheduler:
    """constant; warmup_constant (linear warm-up, then constant: a score taken at any point of the budget is taken
    at the working learning rate); onecycle (warm-up then cosine anneal); cosine (linear warm-up, cosine to 0)."""
    if kind == "constant":
        return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    if kind == "onecycle":
        # OneCycleLR divides by (pct_start · steps − 1) and by its anneal length: both must be ≥ 1 step, or a tiny
        # run (10 steps, 10 % warm-up) dies with ZeroDivisionError
        max_lrs = [group["lr"] for group in optimizer.param_groups]
        steps = max(total_steps, 4)
        return torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=max_lrs, total_steps=steps, pct_start=min(max(warmup_fraction, 2 / steps), 0.5)
        )
    warmup = max(1, int(total_steps * warmup_fraction))
    if kind == "warmup_constant":
        return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: min(1.0, (step + 1) / warmup))

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = min(1.0, (step - warmup) / max(1, total_steps - warmup))
        return 0.5 * (1.0 + math.cos(math.pi * progress))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def show_progress() -> bool:
    """Progress bars only for a person at a terminal; logs and CI stay one line per epoch."""
    return sys.stderr.isatty()


@dataclass
class TrainingJob:
    """What `fit` needs from a trial: one configuration on one dataset."""

    model: nn.Module
    epochs: int
    steps_per_epoch: int
    train_batches: Callable[[int, int], Iterable[Any]]  # (epoch, first step) -> that epoch's batches from there on
    loss_on_batch: Callable[[nn.Module, Any], tuple[torch.Tensor, int]]  # -> (mean loss, batch size)
    evaluate: Callable[[nn.Module], dict[str, float]]  # -> {"val_loss":..., and the task's Metric.name: score}
    save_checkpoint: Callable[[nn.Module, Path], None]  # writes weights + configs into a folder
    optimizer: str
    optimizer_params: dict[str, float]
    lr_schedule: str
    grad_clip: float
    unit: str = "seq"
    warmup_fraction: float = 0.1
    fixed: dict[str, Any] = field(default_factory=dict)  # data settings recorded with the result
    precision: str = "fp32"  # one of PRECISIONS


# What a config's `precision` may ask for: "fp32"; "bf16", the training steps under bf16 autocast on the CPU too (on
# CUDA they always are); "auto", bf16 where the CPU computes it natively (cpu_computes_bf16), fp32 elsewhere (what
# searches train under). Validation on the CPU stays fp32.
PRECISIONS = ("fp32", "bf16", "auto")


@functools.cache
def cpu_computes_bf16() -> bool:
    """Whether this CPU has bf16 instructions (AVX-512 BF16 or AMX). On such a CPU bf16 autocast pays (1.73x fp32
    for the CIFAR Swin on the 2-core EPYC, cifar_precision.json); on others it is not measured, so "auto" keeps fp32."""
    flags = (cpuinfo("flags") or "").split()
    return "avx512_bf16" in flags or "amx_bf16" in flags


def trains_in_bf16(precision: str, device: torch.device) -> bool:
    """Whether the training steps run under bf16 autocast: always on CUDA, on the CPU when asked ("bf16"), or
    when asked for "auto" and the CPU computes bf16."""
    return device.type == "cuda" or precision == "bf16" or (precision == "auto" and cpu_computes_bf16())


def report_points(steps_per_epoch: int, points_per_epoch: int) -> list[int]:
    """The steps of an epoch that end a stretch of the report grid (the last is the epoch's end).

    With fewer steps than points some points repeat: that stretch trains no step, so a trial always makes
    the same number of reports and the scheduler's rungs mean the same on any data size.
    """
    return [math.ceil(j * steps_per_epoch / points_per_epoch) for j in range(1, points_per_epoch + 1)]


def fit(work: TrainingJob, reporter: Reporter | None, device: torch.device) -> dict[str, Any]:
    """Train for `work.epochs`, evaluating, checkpointing and reporting every `reporter.report_every` epochs
    (once an epoch by default) and at the end; returns the final summary. The LR schedule always spans all
    `work.epochs`: a scheduler that stops the trial early cuts it short, it does not shorten its schedule.
    The best report is the best by `reporter.metric`, the task's (validation accuracy where none is given); a
    report without it is passed on as it is, for the reporter to refuse in the task's name."""
    metric = getattr(reporter, "metric", ACCURACY)
    model = work.model.to(device)
    optimizer = build_optimizer(model, work.optimizer, work.optimizer_params)
    schedule = build_schedule(optimizer, work.lr_schedule, work.epochs * work.steps_per_epoch, work.warmup_fraction)
    grid = report_grid(float(getattr(reporter, "report_every", 1.0)))
    if grid is None:
        raise ValueError(f"report_every must be k/N of an epoch in (0, 1], got {reporter.report_every!r}")
    per_epoch, stride = grid
    points = report_points(work.steps_per_epoch, per_epoch)
    done, history = 0, []  # grid points trained so far
    # what else the machine ran: its 1-minute load average when training starts and at every report, against
    # the threads this run trains with (the report flags a throughput measured under load)
    start_load = load_average()
    load = {"start": start_load, "end": start_load, "highest": start_load, "threads": torch.get_num_threads()}
    resume_dir = reporter.resume_from() if reporter is not None else None
    if resume_dir is not None:
        state = torch.load(Path(resume_dir) / TRAINER_STATE, map_location=device, weights_only=True)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        schedule.load_state_dict(state["schedule"])
        torch.set_rng_state(state["torch_rng"])
        done = int(state.get("grid_points", state.get("reports", (int(state["epoch"]) + 1) * per_epoch)))
        recorded = json.loads((Path(resume_dir) / METRICS_FILE).read_text())
        history = recorded["history"]
        load = with_load_sample(recorded["load"], start_load) if recorded.get("load") else load
    amp = trains_in_bf16(work.precision, device)  # the training steps; CPU validation stays fp32
    fixed = {**work.fixed, "precision": "bf16 autocast" if amp else "fp32"}  # recorded with every run
    train_seconds = sum(h["epoch_seconds"] for h in history)
    batches, batches_epoch = None, -1
    total = work.epochs * per_epoch
    started, train_time, total_loss, seen = time.perf_counter(), 0.0, 0.0, 0  # since the last report
    while done < total:
        epoch, index = divmod(done, per_epoch)
        start, stop = (points[index - 1] if index else 0), points[index]
        if batches_epoch != epoch:  # a new epoch, or resuming in the middle of one
            batches, batches_epoch = iter(work.train_batches(epoch, start)), epoch
            if show_progress():
                from tqdm import tqdm

                batches = iter(tqdm(batches, total=work.steps_per_epoch - start, leave=False, unit="batch",
                                    desc=f"epoch {epoch + 1}/{work.epochs}", file=sys.stderr))
        model.train()
        stretch_started = time.perf_counter()
        for step in range(start, stop):
            batch = next(batches)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
                loss, size = work.loss_on_batch(model, batch)
            if not torch.isfinite(loss):
                raise FloatingPointError(f"loss became {loss.item()} at epoch {epoch + 1}, step {step}")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if work.grad_clip > 0:
                nn.utils.clip_grad_norm_(model.parameters(), work.grad_clip)
            optimizer.step()
            schedule.step()
            total_loss += loss.item() * size
            seen += size
        train_time += time.perf_counter() - stretch_started
        done += 1
        if done % stride and done < total:  # not a report point: train on to the next one
            continue
        model.eval()
        with torch.no_grad(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            evaluation = work.evaluate(model)
        seconds = time.perf_counter() - started
        train_seconds += seconds
        metrics = {
            "epoch": as_epoch(epoch + stop / max(work.steps_per_epoch, 1)),
            "train_loss": total_loss / max(seen, 1),
            **evaluation,
            f"{work.unit}_per_s": seen / max(train_time, 1e-9),
            "epoch_seconds": seconds,  # the time since the previous report: an epoch, or the fraction reported
        }
        history.append(metrics)
        load = with_load_sample(load, load_average())
        best = metric.best_of(history, key=lambda h: h.get(metric.name))
        if metric.name in best:
            metrics = {**metrics, metric.best_key: best[metric.name], "best_epoch": best["epoch"]}
        with tempfile.TemporaryDirectory(prefix="tunelab-ckpt-") as folder:
            work.save_checkpoint(model, Path(folder))
            (Path(folder) / METRICS_FILE).write_text(
                json.dumps({**metrics, "train_seconds": train_seconds, "history": history, "fixed": fixed,
                            "load": load},
                           indent=1) + "\n"
            )
            torch.save(
                {
                    "model": model.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "schedule": schedule.state_dict(),
                    "torch_rng": torch.get_rng_state(),
                    "epoch": epoch,
                    "grid_points": done,
                },
                Path(folder) / TRAINER_STATE,
            )
            if reporter is not None:
                reporter.report(metrics, folder)
        started, train_time, total_loss, seen = time.perf_counter(), 0.0, 0.0, 0
    best = metric.best_of(history, key=lambda h: h[metric.name])
    return {
        metric.best_key: best[metric.name],
        "best_epoch": best["epoch"],
        "epochs_run": history[-1]["epoch"] if history else 0,
        "train_seconds": train_seconds,
        "history": history,
        "params": sum(p.numel() for p in model.parameters()),
        "fixed": fixed,
        "load": load,
    }
