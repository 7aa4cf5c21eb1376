"""Bad input on the search side, in one line: a store URI is refused before anything is written, and an MLflow,
Optuna or SQLAlchemy exception that still reaches a command's boundary is mapped there (`run_cli`).

Light on purpose (no MLflow, Optuna or Ray import): `search.cli` checks its flags with it before Ray is
imported, and a library's exception types are looked up only once that library is loaded.
"""

from __future__ import annotations

import socket
import sys
from pathlib import Path
from urllib.parse import urlparse

from experiments.core.errors import UsageError, first_line

# the schemes MLflow opens a tracking and registry store for (a bare path is a local folder store)
STORE_SCHEMES = ("", "file", "sqlite", "postgresql", "mysql", "mssql", "http", "https", "databricks", "databricks-uc",
                 "uc")
# (module, exception class, what failed) for the libraries that open the stores
STORE_ERRORS = (
    ("mlflow.exceptions", "MlflowException", "MLflow"),
    ("optuna.exceptions", "OptunaError", "Optuna"),
    ("sqlalchemy.exc", "SQLAlchemyError", "the store's database"),
)


def check_store(tracking_uri: str) -> None:
    """Refuse at once, in one line, a URI MLflow cannot open and a tracking server that does not answer (MLflow
    itself retries for minutes, and fails only once a search has started)."""
    url = urlparse(tracking_uri)
    scheme = url.scheme.lower().split("+")[0]  # postgresql+psycopg2://… names the driver after the '+'
    if scheme not in STORE_SCHEMES and not (len(scheme) == 1 and scheme.isalpha()):  # C:\\… is a Windows path
        raise UsageError(f"--tracking-uri {tracking_uri}: not a store MLflow can open (sqlite:////abs/mlflow.db, "
                         "http(s)://host:port, postgresql://…, mysql://…, or a local folder)")
    if scheme in ("http", "https"):
        try:
            socket.create_connection((url.hostname, url.port or (443 if url.scheme == "https" else 80)), 3).close()
        except (OSError, ValueError):
            raise UsageError(f"cannot reach the MLflow tracking server at {tracking_uri}") from None
    elif scheme == "sqlite" and not Path(tracking_uri.removeprefix("sqlite:///")).is_absolute():
        raise UsageError(f"--tracking-uri {tracking_uri}: a sqlite store needs an absolute path (sqlite:////abs/...)")


def library_error(error: BaseException) -> str | None:
    """The one line for an exception a store library raised on bad input (a URI it cannot open, a database it
    cannot read); None for anything else. Passed to `run_cli` by every search command line."""
    for module, name, what in STORE_ERRORS:
        kind = getattr(sys.modules.get(module), name, None)
        if kind is not None and isinstance(error, kind):
            return f"{what}: {first_line(error)}"
    return None
