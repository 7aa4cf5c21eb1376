"""Who found a model: a configuration a search sampled, or one a person wrote (a preset, a search's warm start).

A search platform earns its place when its search finds what a person did not, so each report opens with where
its shipped model and every export came from, read from the records alone: a search's summary marks its warm
starts (rows and refits), an ensemble's `ensemble.json` names the refits it averages.
"""

from __future__ import annotations

from typing import Any

from experiments.core.records import SearchRecord
from experiments.core.task import Task
from experiments.reporting import ensemble
from experiments.reporting.storage_paths import same_search_path


def refit_origin(search: SearchRecord, row: dict[str, Any]) -> str:
    """A refit record (search/refit.py) or a search row: whose configuration it trained."""
    name = search.search
    trial = row.get("search_trial") or row.get("trial_id")
    if row.get("warm_start"):
        starts = search.settings.get("warm_start") or []
        written = f" `{starts[0]}`" if len(starts) == 1 else ""
        return f"hand-written{written} (a warm start of search `{name}`)"
    if "warm_start" not in row:
        return f"the best trial `{trial}` of search `{name}` (its record does not say whether it was a warm start)"
    return f"sampled by search `{name}` (trial `{trial}`)"


def origins(entry: Any, searches: list[SearchRecord], task: Task) -> list[str]:
    """One line per model an export holds (its members, for an ensemble)."""
    if entry.source.startswith("one-config"):
        name = entry.config.get("config_name", entry.name)
        if name in task.presets():
            return [f"hand-written: the preset `{name}`"]
        return [f"a one-config run of `{name}`, a config file that does not say who wrote it"]
    for search in searches:
        refits = search.refit
        if entry.name == ensemble.export_name(search.search) and entry.members:
            sources = ensemble.member_sources(entry.members)
            return [next((refit_origin(search, r) for r in refits
                          if same_search_path(r["checkpoint"], source, search.search)),
                         f"a refit of search `{search.search}` not in its record") for source in sources]
        if entry.name in (f"search_{search.search}", f"search_{search.search}_{entry.family}"):
            rows = refits or [r for r in search.rows if r.get(task.metric.best_key) is not None]
            row = next((r for r in rows if task.family(r["params"]) == entry.family), None)
            if row is not None:
                return [refit_origin(search, row)]
    return [f"{entry.source} (no record says who wrote its configuration)"]


def search_found(lines: list[str]) -> bool:
    return all(line.startswith("sampled by search") for line in lines)


def report_lines(best: Any, ranked: list, searches: list[SearchRecord], task: Task) -> list[str]:
    """The report's opening: who found the shipped model, then which exports a search sampled."""
    found = {entry.name: origins(entry, searches, task) for entry in ranked}
    shipped = found[best.name]
    text = [f"- Shipped (best by validation): `{best.name}` — " + "; ".join(shipped) + "."]
    if not any(line.startswith("sampled by search") for line in shipped):
        text.append("- **A hand-written configuration still wins**: no configuration a search sampled beats it on "
                    "validation.")
    elif not search_found(shipped):
        text.append("- The shipped model averages a search's find with a hand-written configuration.")
    single = next((entry for entry in ranked if not entry.members), None)
    if best.members and single is not None:  # an ensemble ships: the best single model is a claim of its own
        text.append(f"- Best single model by validation: `{single.name}` — " + "; ".join(found[single.name]) + ".")
    sampled = [f"`{name}`" for name, lines in found.items() if name != best.name and search_found(lines)]
    written = [f"`{name}`" for name, lines in found.items()
               if name != best.name and all(line.startswith("hand-written") for line in lines)]
    unknown = [f"`{name}`" for name, lines in found.items()
               if name != best.name and f"`{name}`" not in sampled + written]
    if sampled:
        text.append(f"- Other exports a search sampled: {', '.join(sampled)}.")
    if written:
        text.append(f"- Other exports of hand-written configurations (presets, or a search's warm start): "
                    f"{', '.join(written)}.")
    if unknown:
        text.append(f"- Exports whose records do not say who wrote their configuration (a search recorded before "
                    f"warm starts were marked, a config file): {', '.join(unknown)}.")
    return text
