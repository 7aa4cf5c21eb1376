"""The data pipes' one error type, importable without numpy or pandas (command lines catch it)."""

from __future__ import annotations


class DataSourceError(RuntimeError):
    """Raised with one line a user can act on (missing folder, unreachable hub, empty split)."""
