"""Does our search (Optuna TPE + ASHA on Ray Tune) find a good model with less compute than what a user would pick
instead? Random search with ASHA or without early stopping, plain Optuna TPE with its Hyperband pruner in-process
(no Ray), and BOHB (Tune's TuneBOHB + HyperBandForBOHB), each given the same space, trial function, seeds and
budget (trial-epochs and wall time), one trial at a time on one torch thread.

    python -m search.benchmarks.search_efficiency --task digits --seeds 0 1 2 3 4 5 6 7 8 9 --resume
    python -m search.benchmarks.search_efficiency --task imdb --data-dir ../shared/data/imdb --seeds 0 1 2 --resume

`--task digits` (scikit-learn's bundled digits, a small MLP, a fraction of a second per trial-epoch) is cheap
enough for many seeds; an IMDB seed takes far longer. Seeds may run in parallel processes sharing one `--out`
(each seed has its own stores), though searches that share the cores also share their wall time; `--resume`
reuses finished searches, runs the rest from the start, and writes the report over every seed asked for. BOHB
needs `pip install -e '.[bench]'` (hpbandster, ConfigSpace).

Writes `<stem>.md`, `.csv`, `.json` and `.png` under `--out` (stem `search_efficiency` for IMDB, which its report
attaches, `search_efficiency_<task>` otherwise). The strategies and their runs: `efficiency_runs`; the report:
`efficiency_report`.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from experiments.core.checkpoints import write_text_atomically
from experiments.core.cli import UsageError, command_line, machine_info, run_cli
from experiments.tasks import get_task
from search.cli import BOHB_PACKAGES, build_parser, check_args
from search.errors import library_error

# per task: what a seed costs, so a run fits its machine; a task not named here takes its search defaults
DEFAULTS = {
    # the earlier benchmark's IMDB sizes: 16 trials of up to 4 epochs on 2,000 reviews; the budget is what random
    # search without early stopping spends on them
    "imdb": {"subset": 2000, "trials": 16, "max_epochs": 4, "epoch_budget": 64},
    # rungs at 1, 3, 9, 27 epochs; every search gets 36 s of wall time (Ray's start-up included, as a user's command
    # pays it), the trial-epochs each spends in them are compared on its anytime curve, and the trial cap is never
    # what ends a search; one seed of five strategies is under 4 minutes on 2 cores, searches run one at a time
    "digits": {"subset": 0, "trials": 1000, "max_epochs": 27, "epoch_budget": 0, "time_budget": 0.6},
}
SIZES = ("subset", "trials", "max_epochs", "grace_period", "reduction_factor", "epoch_budget", "time_budget")


def bohb_available() -> bool:
    import importlib.util

    return all(importlib.util.find_spec(name) is not None for name in BOHB_PACKAGES)


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    from search.benchmarks.efficiency_runs import DEFAULT_STRATEGIES, REFERENCE, STRATEGIES

    parser = argparse.ArgumentParser(prog="python -m search.benchmarks.search_efficiency",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--task", default="imdb", help="a registered task or a module path (default imdb)")
    parser.add_argument("--data-dir", default=None, help="the task's data (not needed by tasks that bring theirs)")
    parser.add_argument("--subset", type=int, default=None, help="training examples per trial (0: all)")
    parser.add_argument("--trials", type=int, default=None, help="trials a search may start at most")
    parser.add_argument("--max-epochs", type=int, default=None, help="epochs of a trial that is never stopped")
    parser.add_argument("--grace-period", type=float, default=None, help="the first rung, in epochs")
    parser.add_argument("--reduction-factor", type=int, default=None, help="rungs keep 1/this")
    parser.add_argument("--epoch-budget", type=float, default=None, help="trial-epochs per search (0: none)")
    parser.add_argument("--time-budget", type=float, default=None, metavar="MIN", help="minutes per search (0: none)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0], help="each seed runs every strategy")
    parser.add_argument("--strategies", nargs="+", default=None, metavar="S",
                        help=f"of {', '.join(STRATEGIES)} (default {' '.join(DEFAULT_STRATEGIES)})")
    parser.add_argument("--out", type=Path, default=Path("outputs/benchmarks"))
    parser.add_argument("--resume", action="store_true", help="reuse finished searches under --out, rerun the rest")
    parser.add_argument("--note", action="append", default=[], help="a line the record keeps (e.g. what else ran)")
    args = parser.parse_args(argv)
    args.task = get_task(args.task)
    given = {**args.task.search_defaults, **DEFAULTS.get(args.task.name, {})}
    given.pop("time_budget", None) if args.task.name not in DEFAULTS else None  # a task's budget is for its searches
    for key, value in given.items():
        if key in SIZES and getattr(args, key, None) is None:
            setattr(args, key, value)
    for key, value in {"grace_period": 1, "reduction_factor": 3, "trials": 40, "max_epochs": 4}.items():
        setattr(args, key, value if getattr(args, key) is None else getattr(args, key))  # the engine's defaults
    if args.epoch_budget is None:
        args.epoch_budget = args.trials * args.max_epochs
    args.time_budget = args.time_budget or 0
    if min(args.seeds) < 0 or len(set(args.seeds)) != len(args.seeds):
        raise UsageError(f"--seeds must be distinct and >= 0, got {' '.join(map(str, args.seeds))}")
    if not args.task.has_test_data(args.data_dir):
        raise UsageError(f"task {args.task.key} needs --data-dir: its picks are tested once")
    args.notes = list(args.note)
    if args.strategies is None:
        args.strategies = list(DEFAULT_STRATEGIES)
        if not bohb_available():  # said in the record, not left out silently
            args.strategies.remove("bohb")
            args.notes.append("bohb: unavailable here (hpbandster and ConfigSpace are not installed: "
                              "pip install -e '.[bench]'), so it was not run")
    unknown = [s for s in args.strategies if s not in STRATEGIES]
    if unknown:
        raise UsageError(f"--strategies: unknown {', '.join(unknown)}; choose from {', '.join(STRATEGIES)}")
    if REFERENCE not in args.strategies:
        raise UsageError(f"--strategies must include {REFERENCE} (ours): every comparison is against it")
    return args


def check_searches(args: argparse.Namespace) -> None:
    """Every search's command line through the engine's own checks, before anything runs or is written."""
    from search.benchmarks.efficiency_runs import STRATEGIES, engine_argv

    for name in args.strategies:
        check_args(build_parser(args.task).parse_args(engine_argv(STRATEGIES[name], args.seeds[0], args, args.out)))


def settings_of(args: argparse.Namespace) -> dict:
    return {"task": args.task.key, **{k: getattr(args, k) for k in SIZES}, "data_dir": args.data_dir}


def keep_settings(args: argparse.Namespace) -> None:
    """An --out holds searches of one set of sizes: a rerun without --resume, or with other sizes, is refused."""
    path = args.out / "settings.json"
    if path.is_file():
        if not args.resume:
            raise UsageError(f"{args.out} holds an earlier run: pass --resume, or another --out")
        saved, wanted = json.loads(path.read_text()), settings_of(args)
        for key, value in wanted.items():
            if key != "data_dir" and saved.get(key) != value:
                raise UsageError(f"{args.out} ran with {key}={saved.get(key)}, not {value}: use another --out")
        return
    args.out.mkdir(parents=True, exist_ok=True)
    write_text_atomically(path, json.dumps(settings_of(args), indent=1) + "\n")


def searches_load(runs) -> dict:
    """The 1-minute load average when the first search started and the last one ended, and the highest sampled at
    any search's start or end (this command may only have read them back)."""
    first, last = min(runs, key=lambda r: r.started_at), max(runs, key=lambda r: r.started_at)
    values = [v for r in runs for v in r.load.values() if v is not None]
    return {"start": first.load.get("start"), "end": last.load.get("end"), "highest": max(values, default=None)}


def main(argv: list[str] | None = None) -> int:
    from experiments.core.training import pick_device
    from search.benchmarks.efficiency_report import write_report
    from search.benchmarks.efficiency_runs import STRATEGIES, finished, read_run, run_search

    args = parse(argv)
    if "bohb" in args.strategies and not bohb_available():
        raise UsageError("bohb needs hpbandster and ConfigSpace: pip install -e '.[bench]'")
    check_searches(args)
    task = args.task
    data = task.load_data(args.data_dir, args.subset or None, 0)  # loads, or says why not, before anything is written
    keep_settings(args)
    import mlflow  # noqa: F401  imported once here, so the first search of this process pays no imports
    import optuna  # noqa: F401
    import ray.tune  # noqa: F401
    for index, seed in enumerate(args.seeds):
        turn = index % len(args.strategies)  # who runs first rotates: no strategy always meets a cold machine
        for name in args.strategies[turn:] + args.strategies[:turn]:
            if not (args.resume and finished(name, seed, args.out)):
                run_search(task, STRATEGIES[name], seed, args, args.out)
    device = pick_device()
    runs = [read_run(task, name, seed, args.out, data, device) for seed in args.seeds for name in args.strategies]
    machine = machine_info()
    settings = {**settings_of(args), "seeds": args.seeds, "strategies": args.strategies, "threads": 1,
                "command": command_line("search.benchmarks.search_efficiency") if argv is None else
                "python -m search.benchmarks.search_efficiency " + " ".join(argv),
                "machine": machine, "load": searches_load(runs), "notes": args.notes}
    stem = "search_efficiency" if task.name == "imdb" else f"search_efficiency_{task.name}"
    title = f"Search efficiency on {task.name}: ours (Optuna TPE + ASHA on Ray Tune) against the alternatives"
    print("\n".join(write_report(runs, settings, args.out, stem, title, task.metric)))
    return 0


if __name__ == "__main__":
    run_cli(main, library_error)
