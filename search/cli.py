"""A search's command line: its flags with the task's defaults, and the checks that refuse bad input before
anything is started or written.

Light (no torch, Ray, Optuna or MLflow at import): `--help` and a bad flag answer at once.
"""

from __future__ import annotations

import argparse
import socket
import sys

from experiments.core.cli import UsageError
from experiments.core.task import Task
from experiments.core.units import report_grid
from experiments.tasks import TASKS
from search.errors import check_store

# the flags a search is started with and keeps when resumed (the task adds its own: `search_settings`)
SEARCH_SETTINGS = ("trials", "max_epochs", "grace_period", "reduction_factor", "report_every", "searcher",
                   "startup_trials", "scheduler", "seed", "subset", "cpus_per_trial", "gpus_per_trial", "refit",
                   "refit_epochs", "refit_subset", "warm_start", "epoch_budget")
EPSILON = 1e-6  # epoch counts this close are equal: fractions of an epoch add up with rounding errors


def search_settings(task: Task) -> tuple[str, ...]:
    """The flags a search is started with and keeps when resumed: the engine's, then the task's own."""
    return SEARCH_SETTINGS + task.search_settings


def search_command(task: Task) -> str:
    """The command that searches `task`, as a user types it (the summary's `command`, the resume hint)."""
    return f"python -m search.{task.key}" if task.key in TASKS else f"python -m search --task {task.key}"


def typed_argv(argv: list[str] | None) -> list[str]:
    """The words a search was called with: `argv` where a caller passes them (the benchmarks call `main`
    in-process), else the command line's."""
    return sys.argv[1:] if argv is None else argv


def build_parser(task: Task) -> argparse.ArgumentParser:
    """Every flag of a search, an ablation and a dry run; the task may change the defaults (`search_defaults`) and
    add flags of its own. Left unset here: what `check_args` derives from other flags (--grace-period…)."""
    d = {"trials": 40, "max_epochs": 4, "grace_period": 1, "reduction_factor": 2, "report_every": 1.0,
         **task.search_defaults}
    parser = argparse.ArgumentParser(
        prog=search_command(task),
        description=f"Hyperparameter search for {task.name} (Ray Tune + Optuna + ASHA, tracked in MLflow).",
    )
    add = parser.add_argument
    add("--trials", type=int, default=d["trials"], help="number of trials to sample")
    add("--max-epochs", type=int, default=d["max_epochs"], help="epochs of a trial that is never stopped")
    add("--grace-period", type=float, default=None,
        help=f"epochs every trial gets before ASHA may stop it (default {d['grace_period']:g}, at most --max-epochs;"
             " fractions of an epoch with --report-every)")
    add("--report-every", type=float, default=d["report_every"],
        help=f"evaluate, checkpoint and report every this fraction of an epoch: 1, 0.5, 0.25, 0.75… (default "
             f"{d['report_every']:g}); ASHA's rungs can then fall inside an epoch")
    budget = d.get("time_budget")
    add("--time-budget", type=float, default=budget, metavar="MIN",
        help="end the search phase after MIN minutes of search wall time (counted across resumes, like the "
             "summary's): running trials stop where they are, and the refit follows; also given to a resumed search; "
             + (f"default {budget:g}, 0: none" if budget else "default: none"))
    add("--epoch-budget", type=float, default=None, metavar="N",
        help="end the search phase once its trials have trained N trial-epochs in all (0 or unset: none); with "
             "--concurrency 1 it ends exactly there, otherwise the running trials' reports in flight count too")
    add("--refit", type=int, default=d.get("refit", 1),
        help="after the search, train the K best configurations again on the full training split with a fresh "
             "seed and test each once, with the warm starts named as a preset or config JSON; the best refit (by "
             "validation) is what the summarizer exports (0: no refit: it exports the best trial's best "
             f"checkpoint; default {d.get('refit', 1)})")
    add("--refit-epochs", type=int, default=d.get("refit_epochs"),
        help="epochs of each refit (default: " + (f"{d['refit_epochs']}" if "refit_epochs" in d else "--max-epochs")
             + ")")
    add("--refit-subset", type=int, default=0, metavar="N",
        help="refit on N training examples (default 0: the whole training split); a smoke search keeps its refit "
             "small with --refit-subset equal to its --subset")
    add("--warm-start", nargs="+", default=None, metavar="SOURCE",
        help="evaluate these first: a preset name, a config JSON (both also refit), or search:NAME (the best 5 of "
             "an earlier search)")
    add("--reduction-factor", type=int, default=d["reduction_factor"], help="ASHA keeps 1/this at each rung")
    add("--data-dir", default=None, help="local dataset copy in the hub layout (default: download from the hub)")
    add("--subset", type=int, default=d.get("subset"),
        help="search on N training examples (default: " + (f"{d['subset']:,}" if d.get("subset") else "all")
             + "; 0: all); the refit trains on the whole training split unless --refit-subset")
    add("--cpus-per-trial", type=float, default=1.0, help="CPUs reserved per trial (also its torch threads)")
    add("--gpus-per-trial", type=float, default=0.0, help="GPUs per trial; fractions pack trials (0.25 → 4/GPU)")
    add("--concurrency", type=int, default=None, help="max trials at once (default: what the resources allow)")
    add("--address", default=None, help="join an existing Ray cluster: 'auto' or 'ray://host:port'")
    add("--storage-path", default=None, help="Tune results (default ./ray_results; shared FS or s3:// on clusters)")
    add("--tracking-uri", default=None, help="MLflow tracking URI (default sqlite:///<abs>/mlruns/mlflow.db)")
    add("--experiment", default=f"tunelab-{task.name}", help="MLflow experiment name")
    add("--name", default=None, help="search name; an existing name is resumed")
    add("--seed", type=int, default=0, help="seed of the sampler and of every trial")
    add("--resume", action="store_true", help="continue an interrupted search (--name, or the latest one)")
    add("--searcher", choices=("optuna", "random", "bohb"), default="optuna",
        help="Optuna TPE, Tune's random sampler, or BOHB (Tune's TuneBOHB; needs --scheduler bohb and "
             "`pip install -e .[bench]`)")
    add("--startup-trials", type=int, default=d.get("startup_trials"),
        help="random trials before Optuna's TPE starts modelling (default: "
             + (f"{d['startup_trials']}" if d.get("startup_trials") else "trials/4, clipped to 4..10") + ")")
    add("--scheduler", choices=("asha", "fifo", "bohb"), default="asha",
        help="ASHA early stopping, run every trial out, or Tune's HyperBandForBOHB (only with --searcher bohb)")
    add("--verbose", type=int, default=1, choices=(0, 1, 2), help="Tune's console output (0 quiet, 1 table)")
    add("--dry-run", action="store_true", help="print space, scheduler, resources and sample configs; train nothing")
    add("--dry-run-samples", type=int, default=5, help="configurations drawn from the space by --dry-run")
    add("--ablate", default=None, metavar="BASE",
        help="instead of a search, an ablation around BASE (a preset or config JSON): see --vary and --seeds")
    add("--vary", action="append", default=[], metavar="KEY=V1,V2",
        help="with --ablate: a field and its levels, each tried with everything else at BASE (repeatable)")
    add("--seeds", type=int, default=3, help="with --ablate: seeds per configuration (default 3)")
    task.add_search_arguments(parser)
    parser.set_defaults(default_grace_period=d["grace_period"])
    return parser


def check_args(args: argparse.Namespace) -> None:
    """Bad input is refused here, before anything is started or written."""
    if report_grid(args.report_every) is None:
        raise UsageError(f"--report-every must be a fraction of an epoch in (0, 1] (1, 0.5, 0.25, 0.75…), "
                         f"got {args.report_every:g}")
    if args.grace_period is None:
        args.grace_period = min(max(args.default_grace_period, args.report_every), max(args.max_epochs, 1))
    if args.time_budget is not None and args.time_budget < 0:
        raise UsageError(f"--time-budget must be a positive number of minutes (0: none), got {args.time_budget:g}")
    if args.time_budget == 0:
        args.time_budget = None
    if args.epoch_budget is not None and args.epoch_budget < 0:
        raise UsageError(f"--epoch-budget must be a positive number of trial-epochs (0: none), "
                         f"got {args.epoch_budget:g}")
    if args.epoch_budget == 0:
        args.epoch_budget = None
    check_bohb(args)
    if args.refit < 0:
        raise UsageError(f"--refit must be 0 (no refit) or more, got {args.refit}")
    if args.subset == 0:  # the whole training split, where the task's default is a subset
        args.subset = None
    if args.refit_epochs is None:
        args.refit_epochs = args.max_epochs
    if args.refit_epochs < 1:
        raise UsageError(f"--refit-epochs must be at least 1, got {args.refit_epochs}")
    if args.refit_subset < 0:
        raise UsageError(f"--refit-subset must be 0 (the whole training split) or more, got {args.refit_subset}")
    if args.dry_run_samples < 0:
        raise UsageError(f"--dry-run-samples must be 0 or more, got {args.dry_run_samples}")
    if args.trials < 1:
        raise UsageError(f"--trials must be at least 1, got {args.trials}")
    if args.startup_trials is None:  # Optuna's own 10 would leave a 16-trial search only 6 guided trials
        args.startup_trials = min(10, max(4, args.trials // 4))
    if args.startup_trials < 1:
        raise UsageError(f"--startup-trials must be at least 1, got {args.startup_trials}")
    if args.max_epochs < 1:
        raise UsageError(f"--max-epochs must be at least 1, got {args.max_epochs}")
    if not args.report_every - EPSILON <= args.grace_period <= args.max_epochs:
        raise UsageError(f"--grace-period must be in [--report-every={args.report_every:g}, "
                         f"--max-epochs={args.max_epochs}], got {args.grace_period:g}")
    if args.reduction_factor < 2:
        raise UsageError(f"--reduction-factor must be at least 2, got {args.reduction_factor}")
    if args.cpus_per_trial <= 0 or args.gpus_per_trial < 0:
        raise UsageError("--cpus-per-trial must be > 0 and --gpus-per-trial >= 0")
    if args.concurrency is not None and args.concurrency < 1:
        raise UsageError(f"--concurrency must be at least 1, got {args.concurrency}")
    if args.address is None and args.gpus_per_trial > 0:
        import torch

        if args.gpus_per_trial > torch.cuda.device_count():
            raise UsageError(
                f"--gpus-per-trial {args.gpus_per_trial:g} but this machine has {torch.cuda.device_count()} GPU(s)"
            )
    if args.address not in (None, "auto"):
        host_port = args.address.removeprefix("ray://")
        host, _, port = host_port.rpartition(":")
        try:
            socket.create_connection((host or "127.0.0.1", int(port)), timeout=3).close()
        except (OSError, ValueError):
            raise UsageError(f"cannot reach the Ray cluster at {args.address}") from None
    if args.tracking_uri is not None:
        check_store(args.tracking_uri)


BOHB_PACKAGES = ("hpbandster", "ConfigSpace")  # what Tune's TuneBOHB imports; the `bench` extra installs them


def check_bohb(args: argparse.Namespace) -> None:
    """BOHB is TuneBOHB and HyperBandForBOHB together (each relies on the other's pause and resume), needs two
    optional packages, and may pause or stop any trial, a warm start too: each of these is refused here."""
    if (args.searcher == "bohb") != (args.scheduler == "bohb"):
        raise UsageError(f"BOHB is --searcher bohb with --scheduler bohb together, got --searcher {args.searcher} "
                         f"--scheduler {args.scheduler}")
    if args.searcher != "bohb":
        return
    import importlib.util

    missing = [name for name in BOHB_PACKAGES if importlib.util.find_spec(name) is None]
    if missing:
        raise UsageError(f"--searcher bohb needs {' and '.join(missing)}: pip install -e '.[bench]' (or pip install "
                         "hpbandster ConfigSpace)")
    if args.warm_start:
        raise UsageError("--warm-start works with --scheduler asha or fifo: HyperBandForBOHB would stop a warm start "
                         "early")


def option_strings(parser: argparse.ArgumentParser, dest: str) -> list[str]:
    """The flags that set `dest` (`--refit` for refit)."""
    return [o for action in parser._actions if action.dest == dest for o in action.option_strings]


def given_settings(parser: argparse.ArgumentParser, args: argparse.Namespace, argv: list[str],
                   settings: tuple[str, ...]) -> set[str]:
    """The settings the user asked for: those off their default, and those typed even at their default (`--refit 1`
    after a search started with `--refit 0`)."""
    typed = {word.split("=", 1)[0] for word in argv if word.startswith("--")}
    return {k for k in settings if getattr(args, k, None) != parser.get_default(k)
            or any(option in typed for option in option_strings(parser, k))}
