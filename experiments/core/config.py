"""The one config base class: JSON round-trip, field checks that name the field, presets, the task tag.

Every task's config is a dataclass deriving from `BaseConfig`. Its JSON (`experiment_config.json` in every
checkpoint) records which task it belongs to, so `evaluate` and `predict` read the task from the folder's own
config instead of guessing from its files.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from experiments.core.errors import ConfigError

C = TypeVar("C", bound="BaseConfig")
TASK_KEY = "task"


@dataclass
class BaseConfig:
    """Subclasses add fields (including `config_name`, `seed`, `epochs`) and `checks`."""

    TASK: ClassVar[str] = ""  # the registry key (or module path) of the task this config belongs to

    def __post_init__(self) -> None:
        for ok, message in self.checks():
            if not ok:
                raise ConfigError(f"invalid config {getattr(self, 'config_name', '?')!r}: {message}")

    def checks(self) -> list[tuple[bool, str]]:
        """(condition, message naming the field) pairs; the first false one is raised as a ConfigError."""
        return []

    @classmethod
    def normalize_values(cls, values: dict[str, Any]) -> dict[str, Any]:
        """Map flat search-space samples onto the fields (e.g. `lr` into `optimizer_params`)."""
        return values

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls: type[C], values: Mapping[str, Any]) -> C:
        """Build from a saved config or a flat search sample; unknown keys and another task's config are errors."""
        values = dict(values)
        task = values.pop(TASK_KEY, None)
        if task is not None and task != cls.TASK:
            raise ConfigError(f"this is a {task!r} config, not a {cls.TASK!r} one")
        values = cls.normalize_values(values)
        unknown = sorted(set(values) - {f.name for f in fields(cls)})
        if unknown:
            raise ConfigError(f"unknown config field(s): {', '.join(unknown)}")
        return cls(**values)

    def to_json(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps({TASK_KEY: self.TASK, **self.to_dict()}, indent=2) + "\n")

    @classmethod
    def from_json(cls: type[C], path: str | Path) -> C:
        values = read_config_json(path)
        try:
            return cls.from_dict(values)
        except ConfigError as error:  # the line names the file the user gave
            raise ConfigError(f"{path}: {error}") from None


def read_config_json(path: str | Path) -> dict[str, Any]:
    """A config file's JSON object, or a ConfigError saying why not."""
    try:
        values = json.loads(Path(path).read_text())
    except json.JSONDecodeError as error:
        raise ConfigError(f"{path} is not valid JSON: {error}") from None
    except OSError as error:
        raise ConfigError(f"cannot read config {path}: {error.strerror}") from None
    if not isinstance(values, dict):
        raise ConfigError(f"{path} must hold a JSON object of config fields")
    return values


def resolve_config(
    name_or_path: str, config_class: type[C], presets: Mapping[str, C],
    rejected: Mapping[str, dict[str, Any]] | None = None,
) -> C:
    """A preset name or a path to a config JSON; a rejected preset raises its reason as a ConfigError."""
    if name_or_path in presets:
        return presets[name_or_path]
    if rejected and name_or_path in rejected:
        return config_class.from_dict(rejected[name_or_path])
    path = Path(name_or_path)
    if path.suffix == ".json" or path.exists():
        if not path.is_file():
            raise ConfigError(f"config file not found: {path}")
        return config_class.from_json(path)
    raise ConfigError(f"unknown preset {name_or_path!r}; presets: {', '.join(presets)}")
