"""Errors a user can fix, shared by every task and command; each prints as one line, never a traceback.

Light on purpose (no torch, numpy or pandas): `search.engine` and every command line import it.
"""

from __future__ import annotations

from data_pipes.errors import DataSourceError
from models.errors import InvalidModelConfig


class UsageError(RuntimeError):
    """Bad arguments or environment that the user can fix."""


class ConfigError(ValueError):
    """An invalid or unknown configuration, with one line that names the field."""


class CheckpointError(RuntimeError):
    """A folder that is not a readable checkpoint of ours, with the reason in one line."""


USER_ERRORS: tuple[type[BaseException], ...] = (
    UsageError, ConfigError, CheckpointError, DataSourceError, InvalidModelConfig,
)
