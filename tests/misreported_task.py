"""The synthetic regression declaring a metric its trials never report: every command must say so in one line."""

from __future__ import annotations

from dataclasses import replace

from experiments.core.task import Metric
from tests.synthetic_regression import TASK as REGRESSION

TASK = replace(REGRESSION, name="misreported", module_key="tests.misreported_task",
               metric=Metric(name="val_mae", mode="min", test_key="mae", label="MAE", short="MAE"))
