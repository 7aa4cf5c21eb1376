"""What every command line shares: one clear line and a non-zero exit for bad input, never a traceback.

No torch at import time: `python -m search.imdb --help` must answer at once.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import shlex
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from experiments.core.errors import USER_ERRORS, UsageError, input_error
from experiments.core.machine_load import load_average

__all__ = ["UsageError", "run_cli", "with_overrides", "machine_info", "command_line", "relative_to_root"]


def run_cli(main: Callable[[], int | None], *library_errors: Callable[[BaseException], str | None]) -> None:
    """Run `main`, every command line's one boundary: user errors print `error: ...` and exit 2, and so does a
    library's exception that `input_error` or one of `library_errors` (e.g. `search.errors.library_error` for
    MLflow and Optuna) says bad input raised; Ctrl-C exits 130. Anything else keeps its traceback: a bug."""
    try:
        code = main()
    except USER_ERRORS as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
    except Exception as error:
        line = next(filter(None, (says(error) for says in (input_error, *library_errors))), None)
        if line is None:
            raise
        print(f"error: {line}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
    sys.exit(code or 0)


def with_overrides(config: Any, args: argparse.Namespace) -> Any:
    """The one-config runner's --epochs / --seed / --name, applied to a config dataclass."""
    overrides = {"epochs": args.epochs, "seed": args.seed, "config_name": args.name}
    return dataclasses.replace(config, **{k: v for k, v in overrides.items() if v is not None})


def cpuinfo(key: str) -> str | None:
    """The first `key` line of /proc/cpuinfo ("model name", "flags"), None where there is none."""
    try:
        with open("/proc/cpuinfo") as info:
            return next((line.split(":", 1)[1].strip() for line in info if line.startswith(key)), None)
    except OSError:
        return None


def cpu_name() -> str:
    return cpuinfo("model name") or platform.processor() or platform.machine()


def throughput_setting(machine: dict[str, Any]) -> str:
    """What a throughput recorded with `machine_info()` compares under: the GPU, else the CPU and its torch
    threads. Two throughputs compare only when this is the same."""
    if machine.get("gpu"):
        return machine["gpu"]
    if not machine.get("cpu"):
        return "a machine not recorded"
    threads = machine.get("torch_threads")
    return f"{machine['cpu']}, {threads} torch thread{'' if threads == 1 else 's'}"


def machine_info() -> dict[str, str | int | float | None]:
    """Where a number was measured, recorded next to it, with the machine's load at that moment."""
    import torch

    info: dict[str, str | int | float | None] = {
        "cpu": cpu_name(),
        "cpu_count": os.cpu_count() or 0,
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "load_average": load_average(),
    }
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def command_line(module: str) -> str:
    """The command that is running, as a user would retype it."""
    return shlex.join(["python", "-m", module, *sys.argv[1:]])


def command_flag(command: str, name: str) -> str | None:
    """The value given to `name` in a recorded command line, as `name value` or `name=value` (None when absent)."""
    words = shlex.split(command or "")
    for index, word in enumerate(words):
        if word == name and index + 1 < len(words):
            return words[index + 1]
        if word.startswith(f"{name}="):
            return word.split("=", 1)[1]
    return None


def relative_to_root(word: str, root: Path) -> str:
    """`/abs/repo/x` → `x`, also after `--flag=` (the report's reader has the repository somewhere else)."""
    head, _, path = word.partition("=") if word.startswith("--") else ("", "", word)
    if not path.startswith("/") or not Path(path).resolve().is_relative_to(root):
        return word
    relative = Path(path).resolve().relative_to(root).as_posix() or "."
    return f"{head}={relative}" if head else relative
