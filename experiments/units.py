"""Epoch counts as people read them; light (no torch), so the engine can use it at import time."""

from __future__ import annotations


def as_epoch(value: float) -> float | int:
    """2 for a whole epoch, 2.25 for a quarter past: sub-epoch reports give fractional epochs."""
    value = round(float(value), 6)
    return int(value) if value.is_integer() else value
