"""Every figure in README.md comes from a committed record that the same paragraph or table row cites.

A figure is a decimal number in the prose or a table (code blocks and `code spans` are commands and versions, not
claims). A paragraph or row that states one must name its record: a `.json`/`.md` path, or a link to a report. The
figure must equal a number of that record rounded to the figure's decimals; a ratio written with "×" may also be
the quotient of two of its numbers (a speed-up stated from two measured throughputs).
"""

from __future__ import annotations

import json
import re
import sys
from itertools import permutations
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHECKPOINTS = ROOT / "model_checkpoints"
RECORD_FOLDERS = (ROOT, CHECKPOINTS, CHECKPOINTS / "assignment2-1-2", CHECKPOINTS / "assignment2-2-2")
FIGURE = re.compile(r"(?<![\w.])(\d+\.\d+)(×?)(?![\w.])")
CITED = re.compile(r"[\w./-]+\.(?:json|md)")


def readme_blocks(text: str) -> list[str]:
    """Paragraphs and table rows outside fenced code, each with its code spans removed from the figures' view."""
    blocks, current, fenced = [], [], False
    for line in text.splitlines():
        if line.startswith("```"):
            fenced = not fenced
            continue
        if fenced:
            continue
        if line.startswith("|") or not line.strip():
            blocks.append(" ".join(current))
            current = []
            if line.startswith("|"):
                blocks.append(line)
        else:
            current.append(line)
    blocks.append(" ".join(current))
    return [b for b in blocks if b.strip()]


def figures(block: str) -> list[tuple[str, bool]]:
    prose = re.sub(r"`[^`]*`", " ", re.sub(r"\]\([^)]*\)", "]", block))  # neither code spans nor link targets
    return [(number, ratio == "×") for number, ratio in FIGURE.findall(prose)]


def cited_records(block: str) -> list[Path]:
    """The files a block names, looked up from the repository root and the report folders (the README names
    records beside their report by file name alone)."""
    return [next(folder / name for folder in RECORD_FOLDERS if (folder / name).is_file())
            for name in CITED.findall(block) if any((folder / name).is_file() for folder in RECORD_FOLDERS)]


def numbers_in(path: Path) -> list[float]:
    if path.suffix == ".json":
        values, stack = [], [json.loads(path.read_text())]
        while stack:
            item = stack.pop()
            if isinstance(item, dict):
                stack.extend(item.values())
            elif isinstance(item, list):
                stack.extend(item)
            elif isinstance(item, (int, float)) and not isinstance(item, bool):
                values.append(float(item))
        return values
    return [float(n) for n in re.findall(r"\d+\.\d+", path.read_text())]


def matches(figure: str, ratio: bool, values: list[float]) -> bool:
    decimals, target = len(figure.split(".")[1]), float(figure)
    if any(round(v, decimals) == target for v in values):
        return True
    return ratio and any(b and round(a / b, decimals) == target for a, b in permutations(set(values), 2))


def test_every_readme_figure_is_in_a_record_it_cites():
    unbacked = []
    for block in readme_blocks((ROOT / "README.md").read_text()):
        stated = figures(block)
        if not stated:
            continue
        values = [v for path in cited_records(block) for v in numbers_in(path)]
        unbacked += [f"{figure}{'×' if ratio else ''} in: {block[:120]}…" for figure, ratio in stated
                     if not matches(figure, ratio, values)]
    assert not unbacked, "README figures no cited record holds:\n" + "\n".join(unbacked)


@pytest.mark.parametrize("block, backed", [
    ("val 0.8783 (`records/x.json`)", True),
    ("val 0.8790 (`records/x.json`)", False),
    ("1.36× fp32 (`records/x.json`)", True),
    ("0.8783 with no record", False),
])
def test_the_rule_refuses_a_figure_its_record_lacks(tmp_path, monkeypatch, block, backed):
    (tmp_path / "records").mkdir()
    (tmp_path / "records" / "x.json").write_text(json.dumps({"val": 0.87833, "fp32": 84.28, "bf16": 114.28}))
    monkeypatch.setattr(sys.modules[__name__], "RECORD_FOLDERS", (tmp_path,))
    values = [v for path in cited_records(block) for v in numbers_in(path)]
    assert all(matches(f, r, values) for f, r in figures(block)) is backed
