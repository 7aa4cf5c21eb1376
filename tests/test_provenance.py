"""The report's opening says who found the shipped model and, when an ensemble ships, the best single model."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from experiments.core.records import SearchRecord
from experiments.reporting import provenance
from tests.synthetic_task import TASK


@dataclass
class Entry:
    name: str
    source: str
    config: dict = field(default_factory=dict)
    members: list = field(default_factory=list)
    family: str = "model"


def test_an_ensemble_ships_and_the_best_single_model_is_named_with_its_origin(tmp_path):
    refits = [{"search_trial": "aaa", "warm_start": False, "checkpoint": str(tmp_path / "r1"), "params": {}},
              {"search_trial": "bbb", "warm_start": True, "checkpoint": str(tmp_path / "r2"), "params": {}}]
    search = SearchRecord(search="s", workload="synthetic", refit=refits, settings={"warm_start": ["blob_wide"]})
    ensemble = Entry("search_s_ensemble", "search s (ensemble of 2 refits)",
                     members=[Path(refits[0]["checkpoint"]), Path(refits[1]["checkpoint"])])
    single = Entry("search_s", "search s (refit)")
    preset = Entry("blob_wide", "one-config run", config={"config_name": "blob_wide"})
    lines = provenance.report_lines(ensemble, [ensemble, single, preset], [search], TASK)
    assert "averages a search's find with a hand-written configuration" in lines[1]
    assert lines[2] == "- Best single model by validation: `search_s` — sampled by search `s` (trial `aaa`)."
    single_first = provenance.report_lines(single, [single, preset], [search], TASK)
    assert not any("Best single model" in line for line in single_first)
