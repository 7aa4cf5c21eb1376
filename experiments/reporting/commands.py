"""Where the report's numbers came from: each recorded command as it runs from this repository's root, and the
machine that ran it."""

from __future__ import annotations

import json
import shlex
from collections.abc import Callable
from pathlib import Path
from typing import Any

from experiments.core.checkpoints import CONFIG_FILE
from experiments.core.cli import relative_to_root
from experiments.core.records import AblationRecord, SearchRecord

DATA_FLAGS = ("--data-dir",)  # and --<task>-data-dir
OUTPUT_FLAGS = ("--output-dir", "--out", "--outputs", "--storage-path", "--ray-results")


def portable_command(command: str, root: Path, data_dir: str | None, exported_config: Path | None) -> str:
    """A recorded command as it runs from this repository's root: paths inside the repository become relative;
    another machine's paths (a GPU box's /tmp data and output folders) give way to what stands for them here —
    the data dir this report was made with (none: the hub), the default output folders, the exported config."""
    root = root.resolve()
    words, out = shlex.split(command), []
    index = 0
    while index < len(words):
        flag, sep, inline = words[index].partition("=")
        has_value = flag.startswith("--") and bool(
            sep or (index + 1 < len(words) and not words[index + 1].startswith("--")))
        value = inline if sep else (words[index + 1] if has_value else "")
        step = 1 if sep or not has_value else 2
        foreign = has_value and value.startswith("/") and not Path(value).resolve().is_relative_to(root)
        if not foreign:
            out += [relative_to_root(word, root) for word in words[index:index + step]]
        elif flag in DATA_FLAGS or flag.endswith("-data-dir"):
            out += [flag, data_dir] if data_dir else []
        elif flag == "--config" and exported_config is not None:
            out += [flag, exported_config.resolve().relative_to(root).as_posix()]
        elif flag not in OUTPUT_FLAGS:  # output folders are dropped: the defaults under the repository
            out += words[index:index + step]
        index += step
    return shlex.join(out)


def portable_in(folder: Path, data_dir: str | None) -> Callable[..., str]:
    """`portable_command` for the report in `folder`: from the working directory (the repository root), with the
    data dir the report was made with, and an export's own config in place of one another machine's command named
    (`portable(command, export_name)`)."""
    def portable(recorded: str, name: str | None = None) -> str:
        config = folder / name / CONFIG_FILE if name else None
        return portable_command(recorded, Path.cwd(), data_dir, config if config and config.is_file() else None)

    return portable


def where(machine: dict[str, Any]) -> str:
    """The machine a number was measured on, after its command."""
    shown = ", ".join(f"{k}={v}" for k, v in machine.items() if k in ("cpu", "torch_threads", "gpu"))
    return f" — {shown}" if shown else ""


def commands_section(ranked: list, searches: list[SearchRecord], ablations: list[AblationRecord],
                     attachments: list[Path], command: str, machine: dict[str, Any],
                     portable: Callable[..., str]) -> list[str]:
    """The command behind every model, search, ablation and attached benchmark, and the report's own."""
    lines = ["## How these numbers were produced", "",
             "Each command as it runs from the repository root here (paths of the machine that ran it, such as a "
             "GPU box's data and output folders, give way to this repository's data dir, default folders and "
             "exported config); the machine that measured the number follows it.", ""]
    for e in ranked:
        lines.append(f"- `{e.name}`: `{portable(e.command, e.name)}`{where(e.machine)}")
    for s in [s for s in searches if s.command]:  # their trials, walls and refits: section Searches
        lines.append(f"- search `{s.search}`: `{portable(s.command)}`{where(s.machine)}")
    for ablation in ablations:
        lines.append(f"- ablation `{ablation.search}`: `{portable(ablation.command)}`"
                     f"{where(ablation.machine)}")
    for attachment in attachments:
        lines.append(f"- {attachment.stem.replace('_', ' ')}: the command and machine at the head of its section")
    return lines + [f"- report: `{command}` — machine: {json.dumps(machine)}", ""]
