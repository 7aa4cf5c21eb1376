"""Errors a user can fix, shared by every task and command; each prints as one line, never a traceback.

Light on purpose (no torch, numpy or pandas): `search.engine` and every command line import it.
"""

from __future__ import annotations

import json

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

# libraries whose every exception at a command's boundary comes from a file the user gave (an image, weights)
INPUT_LIBRARIES = {"PIL": "not a readable image", "safetensors": "not a readable safetensors file"}
FILE_ERRORS = (FileNotFoundError, IsADirectoryError, NotADirectoryError, PermissionError)


def first_line(error: BaseException) -> str:
    return next((line.strip() for line in str(error).splitlines() if line.strip()), type(error).__name__)


def input_error(error: BaseException) -> str | None:
    """The one line for a library's exception that bad input raises (a file missing or unreadable, not an image,
    corrupt weights or JSON); None for anything else, whose traceback is a bug report."""
    if isinstance(error, FILE_ERRORS) and error.filename is not None:
        return f"{error.strerror or type(error).__name__}: {error.filename}"
    library = type(error).__module__.split(".")[0]
    if library in INPUT_LIBRARIES:
        return f"{INPUT_LIBRARIES[library]}: {first_line(error)}"
    if isinstance(error, json.JSONDecodeError):
        return f"a file is not valid JSON: {first_line(error)}"
    return None
