"""Controlled ablations: `python -m search.<task> --ablate BASE --vary KEY=V1,V2 … --seeds N`.

A one-factor-at-a-time design: the base configuration (a preset or a config JSON), plus each level of each varied
field with everything else at the base, each trained with N seeds (`--seed`, `--seed`+1, …) for `--max-epochs`
epochs. It runs through Ray Tune as a grid (FIFO, no sampler), tracked in MLflow as one parent with a child per
run, resumable like a search (`--resume --name`), and every run is tested once. `ablation_summary.json` keeps each
run and, per factor and level, the mean ± std of the validation and test score (the task's metric) over seeds —
what a report needs to say whether a difference is larger than the seed-to-seed noise.
"""

from __future__ import annotations

import argparse
import json
import shlex
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from experiments.core.cli import machine_info
from experiments.core.errors import ConfigError, UsageError
from experiments.core.machine_load import load_average
from experiments.core.records import ABLATION_FILE, AblationRecord, read_record
from experiments.core.task import ACCURACY, Metric, Task
from experiments.core.uncertainty import seed_verdict, welch_gap
from search.cli import search_command
from search.grid import train_and_test
from search.runtime import WallClock, start_ray
from search.storage import read_summary, resolve_name, storage_root, write_summary
from search.warm_start import source_configs

# flags that steer a search's sampling or stopping: an ablation trains a fixed design to its end
SEARCH_ONLY = ("--trials", "--searcher", "--scheduler", "--warm-start", "--refit", "--refit-epochs", "--grace-period",
               "--reduction-factor", "--startup-trials", "--report-every", "--dry-run-samples")
NOT_VARIED = ("task", "config_name", "seed", "epochs")  # --seeds and --max-epochs set these


@dataclass(frozen=True)
class AblationRun:
    factor: str  # "base", or the varied field
    level: Any  # the field's value in this run (the base's own for "base")
    seed: int
    config: dict[str, Any]


def _lookup(config: dict[str, Any], key: str) -> Any:
    """A field, or a nested one by a dotted path (`optimizer_params.lr`)."""
    value: Any = config
    for part in key.split("."):
        if not isinstance(value, dict) or part not in value:
            raise KeyError(key)
        value = value[part]
    return value


def _with(config: dict[str, Any], key: str, level: Any) -> dict[str, Any]:
    changed = json.loads(json.dumps(config))
    *parents, last = key.split(".")
    target = changed
    for part in parents:
        target = target[part]
    target[last] = level
    return changed


def parse_level(text: str, like: Any) -> Any:
    """A level typed like the base's value: true/false for booleans, numbers for numbers, else the text."""
    if isinstance(like, bool):
        if text.lower() in ("true", "1", "yes"):
            return True
        if text.lower() in ("false", "0", "no"):
            return False
        raise ValueError(f"{text!r} is not true/false")
    if isinstance(like, int):
        return int(text)
    if isinstance(like, float):
        return float(text)
    if like is None:
        return None if text.lower() in ("none", "null") else text
    return text


def parse_vary(item: str, base: dict[str, Any]) -> tuple[str, list[Any]]:
    key, sep, values = item.partition("=")
    if not sep or not key:
        raise UsageError(f"--vary takes KEY=V1,V2,…, got {item!r}")
    if key in NOT_VARIED:
        raise UsageError(f"--vary {key}: set by --seeds / --max-epochs, not varied")
    try:
        like = _lookup(base, key)
    except KeyError:
        fields = ", ".join(k for k in base if k not in NOT_VARIED)
        raise UsageError(f"--vary {key}: the base config has no field {key!r} (fields: {fields})") from None
    texts = [t.strip() for t in values.split(",") if t.strip()]
    if not texts:
        raise UsageError(f"--vary {key}: no levels given (KEY=V1,V2,…)")
    try:
        return key, [parse_level(t, like) for t in texts]
    except ValueError as error:
        raise UsageError(f"--vary {key}: {error} (the base has {like!r})") from None


def build_design(task: Task, base: dict[str, Any], varies: list[tuple[str, list[Any]]], seeds: int, first_seed: int,
                 epochs: int) -> list[AblationRun]:
    """Base × seeds, then each level (other than the base's own) of each factor × seeds; every config validated."""
    config_class = type(task.presets()[task.default_config])
    base = {**base, "epochs": epochs}
    cells = [("base", None, base)]
    for key, levels in varies:
        for level in levels:
            if level != _lookup(base, key):
                cells.append((key, level, _with(base, key, level)))
    runs = []
    for factor, level, config in cells:
        name = "base" if factor == "base" else f"{factor}={level}"
        try:
            config_class.from_dict({**config, "config_name": name})  # an invalid level is refused before any run
        except ConfigError as error:
            raise UsageError(f"--vary {name}: {error}") from None
        for seed in range(first_seed, first_seed + seeds):
            runs.append(AblationRun(factor, level, seed, {**config, "seed": seed, "config_name": f"{name}-s{seed}"}))
    return runs


def check_args(args: argparse.Namespace, argv: list[str]) -> None:
    if args.seeds < 1:
        raise UsageError(f"--seeds must be at least 1, got {args.seeds}")
    if not args.vary:
        raise UsageError("--ablate needs at least one --vary KEY=V1,V2,…")
    clashing = [flag for flag in SEARCH_ONLY if any(a == flag or a.startswith(flag + "=") for a in argv)]
    if clashing:
        raise UsageError(f"{', '.join(clashing)} steer(s) a search; an ablation trains its fixed design to the end")


def aggregate(rows: list[dict[str, Any]], metric: Metric = ACCURACY) -> list[dict[str, Any]]:
    """Mean ± std (sample std, 0 with one seed) of the val and test score per factor and level; base first. Each
    level carries its verdict against the base on test (Welch's t, 95 %: `experiments.core.uncertainty`)."""
    cells: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for row in rows:
        cells.setdefault((row["factor"], json.dumps(row["level"])), []).append(row)
    out = []
    for (factor, level), members in cells.items():
        val = [m[metric.name] for m in members]
        test = [m[metric.test_name] for m in members]
        out.append({
            "factor": factor, "level": json.loads(level), "base": factor == "base", "seeds": len(members),
            "val_mean": statistics.fmean(val), "val_std": statistics.stdev(val) if len(val) > 1 else 0.0,
            "test_mean": statistics.fmean(test), "test_std": statistics.stdev(test) if len(test) > 1 else 0.0,
        })
    out.sort(key=lambda c: (not c["base"], c["factor"], json.dumps(c["level"])))
    base = next((c for c in out if c["base"]), None)
    for c in out:
        if base is not None and not c["base"]:
            c["test_verdict"] = seed_verdict(welch_gap(
                (metric.oriented(c["test_mean"]), c["test_std"], c["seeds"]),
                (metric.oriented(base["test_mean"]), base["test_std"], base["seeds"])))
    return out


def format_cells(cells: list[dict[str, Any]]) -> str:
    lines = [f"{'factor':<22}{'level':<12}{'seeds':>6}{'val mean ± std':>20}{'test mean ± std':>20}"
             "   test vs base (Welch t, 95 %)"]
    for c in cells:
        level = "(base)" if c["base"] else json.dumps(c["level"])
        lines.append(f"{c['factor']:<22}{level:<12}{c['seeds']:>6}{c['val_mean']:>12.4f} ± {c['val_std']:.4f}"
                     f"{c['test_mean']:>12.4f} ± {c['test_std']:.4f}   {c.get('test_verdict', '-')}")
    return "\n".join(lines)


def run_key(config: dict[str, Any]) -> str:
    """What makes two runs the same: every field but the display name (the seed and epochs are fields)."""
    return json.dumps({k: v for k, v in config.items() if k != "config_name"}, sort_keys=True)


def reusable_rows(root: str, name: str, workload: str, data: dict[str, Any],
                  runs: list[AblationRun]) -> dict[int, dict[str, Any]]:
    """Design index → the row of an earlier ablation (not this one) that trained and tested that run on the
    same training data (`data`: subset, train_size, data_fingerprint where recorded); the first by name wins."""
    wanted = {run_key(run.config): i for i, run in enumerate(runs)}
    found: dict[int, dict[str, Any]] = {}
    for path in sorted(Path(root).glob(f"*/{ABLATION_FILE}")):
        earlier = read_record(path, AblationRecord)
        # older summaries lack the training size and fingerprint: None there is "not recorded", not "all data"
        same_data = all(getattr(earlier, k) == v or (k != "subset" and getattr(earlier, k) is None)
                        for k, v in data.items())
        if earlier.search == name or earlier.workload != workload or not same_data:
            continue
        for row in earlier.rows:
            index = wanted.get(run_key(row["config"]))
            if index is not None and index not in found:
                found[index] = {**row, "reused_from": row.get("reused_from", earlier.search)}
    return found


def main(task: Task, args: argparse.Namespace, argv: list[str], started: float) -> int:
    check_args(args, argv)
    root = storage_root(args)
    if args.ablate.startswith("search:"):
        raise UsageError(f"--ablate {args.ablate}: the base is one configuration, a preset or a config JSON")
    try:
        [base] = source_configs(task, args.ablate, root)
    except UsageError as error:
        raise UsageError(str(error).replace("--warm-start", "--ablate")) from None
    varies = [parse_vary(item, base) for item in args.vary]
    runs = build_design(task, base, varies, args.seeds, args.seed, args.max_epochs)
    if args.dry_run:
        for i, run in enumerate(runs, 1):
            shown = "base" if run.factor == "base" else f"{run.factor}={json.dumps(run.level)}"
            print(f"{i:>3}. {shown:<32} seed {run.seed}")
        print(f"{len(runs)} runs of {args.max_epochs} epoch(s): base + {len(runs) // args.seeds - 1} level(s), "
              f"× {args.seeds} seed(s)")
        return 0
    from search.tracking import MlflowSearchTracker, default_tracking_uri

    name = resolve_name(task, args, root)
    experiment_path = f"{root.rstrip('/')}/{name}"
    previous = read_summary(experiment_path, AblationRecord, ABLATION_FILE)
    if previous and previous.finished:
        print(f"ablation {name} has already finished (its summary: {experiment_path}/{ABLATION_FILE})")
        return 0
    data = task.load_data(args.data_dir, args.subset, 0)
    data_id = {"subset": args.subset, "train_size": len(data.train),
               "data_fingerprint": getattr(data, "fingerprint", None)}
    reused = reusable_rows(root, name, task.name, data_id, runs)
    to_train = [i for i in range(len(runs)) if i not in reused]
    sources = sorted({row["reused_from"] for row in reused.values()})
    if reused:
        print(f"ablation {name}: {len(reused)} of {len(runs)} runs already trained and tested by "
              f"{', '.join(sources)}: reused, not trained again", flush=True)
    if to_train:
        start_ray(args)
    tracker = MlflowSearchTracker(
        args.tracking_uri or default_tracking_uri(), args.experiment, name,
        {"workload": task.name, "kind": "ablation", "base": args.ablate, "vary": " ".join(args.vary),
         "seeds": args.seeds, "max_epochs": args.max_epochs, "subset": args.subset,
         "command": " ".join([search_command(task), shlex.join(argv)]),
         **({"reused_runs": f"{len(reused)} from {', '.join(sources)}"} if reused else {})},
        trial_params=task.fixed_params(data), max_epochs=args.max_epochs, phase="ablation", metric=task.metric,
    )
    configs = [runs[i].config for i in to_train]
    load_at_start = load_average()  # other work on the machine shows here, before the runs add their own
    with WallClock(experiment_path, previous is not None or args.resume, started) as clock:
        print(f"ablation {name}: {len(configs)} runs of {args.max_epochs} epoch(s) to train on {len(data.train):,} "
              f"training {task.example_noun}s", flush=True)
        records, finished = train_and_test(task, args, configs, data, root, name, tracker, name) if configs \
            else ([], True)
        rows = [reused[i] for i in sorted(reused)]
        for record in records:
            run = runs[to_train[record["index"]]]
            rows.append({"factor": run.factor, "level": run.level, "seed": run.seed, "trial_id": record["trial_id"],
                         task.metric.name: record["metrics"][task.metric.name],
                         task.metric.test_name: record[task.metric.test_name],
                         "epochs": args.max_epochs, "config": run.config})
        summary = AblationRecord(
            search=name, workload=task.name, base=args.ablate, seeds=args.seeds, epochs=args.max_epochs,
            runs=len(runs), reused=len(reused), **data_id, finished=finished, wall_seconds=clock.seconds,
            resumes=clock.resumes, command=tracker.search_params["command"], machine=machine_info(),
            load={"start": load_at_start, "end": load_average()},
            cells=aggregate(rows, task.metric) if rows else [], rows=rows,
        )
    write_summary(experiment_path, summary, ABLATION_FILE)
    table = format_cells(summary.cells)
    numbers = {k: getattr(summary, k) for k in ("runs", "reused", "wall_seconds", "resumes", "seeds", "epochs")}
    trained_here = {r["trial_id"] for r in rows if "reused_from" not in r}
    tracker.finish_search(numbers, table, trained_here, "FINISHED" if finished else "KILLED")
    print("\n" + table)
    print(f"\nablation {name}: {len(rows)}/{len(runs)} runs in {clock.seconds / 60:.1f} min; "
          f"summary {experiment_path}/{ABLATION_FILE}")
    return 0 if finished else 130
