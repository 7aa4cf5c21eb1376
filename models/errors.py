"""The models' one error type, in a module of its own so command lines can catch it without importing torch."""

from __future__ import annotations


class InvalidModelConfig(ValueError):
    """A model shape that would fail to build or silently misbehave, with one line naming the field."""
