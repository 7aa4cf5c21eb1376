"""Search spaces, defined once and sampled two ways: Optuna define-by-run and plain seeded random draws.

Each task declares its space here, beside its config; the engine (`search/`) hands it to Optuna or wraps
`draw` for Tune's random search. Nothing here imports Ray or Optuna: `suggest` only calls the trial it is given.

A space is an ordered list of `Param`s; a param may depend on a value sampled before it (`when`), and
several sampler names may feed one config field (`field`), because Optuna needs a fixed domain per name
(e.g. the Swin window choices depend on the patch size: `window_p2`, `window_p4` → `window_size`).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Param:
    """One searched knob: kind is 'loguniform' | 'uniform' | 'int' | 'choice'."""

    name: str
    kind: str
    low: float | None = None
    high: float | None = None
    choices: tuple[Any, ...] = ()
    field: str | None = None
    when: tuple[str, tuple[Any, ...]] | None = None  # (earlier param, values that activate this one)

    @property
    def target(self) -> str:
        return self.field or self.name

    def active(self, sampled: dict[str, Any]) -> bool:
        if self.when is None:
            return True
        name, values = self.when
        return name in sampled and sampled[name] in values

    def describe(self) -> str:
        if self.kind == "choice":
            domain = "choice " + ", ".join(str(c) for c in self.choices)
        else:
            domain = f"{self.kind} [{self.low:g}, {self.high:g}]"
        target = f" -> {self.field}" if self.field else ""
        condition = f"   if {self.when[0]} in {list(self.when[1])}" if self.when else ""
        return f"{self.name:<18} {domain}{target}{condition}"

    def suggest(self, trial) -> Any:
        """Optuna: sample through the trial (define-by-run)."""
        if self.kind == "loguniform":
            return trial.suggest_float(self.name, self.low, self.high, log=True)
        if self.kind == "uniform":
            return trial.suggest_float(self.name, self.low, self.high)
        if self.kind == "int":
            return trial.suggest_int(self.name, int(self.low), int(self.high))
        return trial.suggest_categorical(self.name, list(self.choices))

    def value_in_domain(self, value: Any) -> Any:
        """`value` as this param samples it ([2, 2, 2] as the choice "2-2-2"); ValueError when outside the domain."""
        if self.kind == "choice":
            if isinstance(value, list | tuple):
                joined = "-".join(str(v) for v in value)
                value = joined if joined in self.choices else value
            if value not in self.choices or any(type(value) is not type(c) for c in self.choices if c == value):
                raise ValueError(f"{self.target}={value!r} is not one of the searched choices {list(self.choices)}")
            return value
        number = float(value) if not isinstance(value, bool) else None
        if number is None or not self.low - 1e-12 <= number <= self.high + 1e-12:
            raise ValueError(f"{self.target}={value!r} is outside the searched range [{self.low:g}, {self.high:g}]")
        return int(number) if self.kind == "int" else number

    def draw(self, rng: random.Random) -> Any:
        """Plain random sampling with the same distribution."""
        if self.kind == "loguniform":
            return math.exp(rng.uniform(math.log(self.low), math.log(self.high)))
        if self.kind == "uniform":
            return rng.uniform(self.low, self.high)
        if self.kind == "int":
            return rng.randint(int(self.low), int(self.high))
        return self.choices[rng.randrange(len(self.choices))]


@dataclass
class SearchSpace:
    """Ordered params + constants; `to_config` maps sampler names onto config fields."""

    params: list[Param]
    constants: dict[str, Any] = field(default_factory=dict)

    def define_by_run(self, trial) -> dict[str, Any]:
        """For `OptunaSearch(space=...)`: samples active params, returns the constants."""
        sampled: dict[str, Any] = {}
        for param in self.params:
            if param.active(sampled):
                sampled[param.name] = param.suggest(trial)
        return dict(self.constants)

    def draw(self, rng: random.Random) -> dict[str, Any]:
        """One random sample (sampler names → values), inactive params left out."""
        sampled: dict[str, Any] = {}
        for param in self.params:
            if param.active(sampled):
                sampled[param.name] = param.draw(rng)
        return sampled

    def point_from_config(self, config: dict[str, Any]) -> dict[str, Any]:
        """The sampler's values (param names) that give `config`: a warm start evaluated first. Nested dicts
        (`optimizer_params`) are read as flat fields. ValueError names a field that is missing or out of the space."""
        flat = dict(config)
        for value in config.values():
            if isinstance(value, dict):
                flat.update(value)
        point: dict[str, Any] = {}
        for param in self.params:
            if param.active(point):
                if param.target not in flat:
                    raise ValueError(f"it has no {param.target}")
                point[param.name] = param.value_in_domain(flat[param.target])
        return point

    def fields_of(self, point: dict[str, Any]) -> dict[str, Any]:
        """Sampler values → the config fields they set (no constants)."""
        by_name = {p.name: p for p in self.params}
        return {by_name[k].target: v for k, v in point.items()}

    def sample_config(self, rng: random.Random) -> dict[str, Any]:
        """One complete random config (constants included), as a trial would receive it."""
        return self.to_config({**self.constants, "sampled": self.draw(rng)})

    def to_config(self, flat: dict[str, Any]) -> dict[str, Any]:
        """Sampler output (either sampler) → config fields; a sampled value wins over a constant."""
        flat = dict(flat)
        merged = {**flat, **(flat.pop("sampled", None) or {})}
        merged.pop("sampled", None)
        by_name = {p.name: p for p in self.params}
        config = {k: v for k, v in merged.items() if k not in by_name}
        config.update({by_name[k].target: v for k, v in merged.items() if k in by_name})
        return config

    def describe(self) -> str:
        lines = [p.describe() for p in self.params]
        lines += [f"{k:<18} = {v}" for k, v in self.constants.items()]
        return "\n".join(lines)
