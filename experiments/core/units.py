"""Epoch counts as people read them; light (no torch), so the engine can use it at import time."""

from __future__ import annotations


def as_epoch(value: float) -> float | int:
    """2 for a whole epoch, 2.25 for a quarter past: sub-epoch reports give fractional epochs."""
    value = round(float(value), 6)
    return int(value) if value.is_integer() else value


def report_grid(report_every: float, finest: int = 64) -> tuple[int, int] | None:
    """`report_every` epochs as (grid points per epoch, points per report): 0.25 → (4, 1), 0.75 → (4, 3).

    Reports fall on a grid of 1/N epoch, every k-th point and at the trial's end, so a report cadence that does
    not divide an epoch (0.75: reports at 0.75, 1.5, 2.25…) still lands on the same steps on any data size.
    None when `report_every` is not in (0, 1] or not k/N for an N up to `finest`.
    """
    if not 0 < report_every <= 1:
        return None
    for points in range(1, finest + 1):
        stride = round(report_every * points)
        if stride >= 1 and abs(report_every * points - stride) < 1e-6:
            return points, stride
    return None
