"""A search whose first trial raises: run as `python -m tests.faulty_search …` by the search tests."""

from __future__ import annotations

import os
import sys
from dataclasses import replace

import cloudpickle

from experiments.core.cli import run_cli
from experiments.tasks import get_task
from experiments.tasks.imdb.trial import train_imdb
from search import engine

cloudpickle.register_pickle_by_value(sys.modules[__name__])  # Ray workers need not import the tests package


def fail_once(config, data, reporter):
    """The first trial to claim the marker file raises; all others train normally."""
    try:
        os.close(os.open(os.environ["TUNELAB_FAIL_MARKER"], os.O_CREAT | os.O_EXCL))
    except FileExistsError:
        return train_imdb(config, data, reporter)
    raise RuntimeError("injected failure")


if __name__ == "__main__":
    run_cli(lambda: engine.main(replace(get_task("imdb"), trial=fail_once)))
