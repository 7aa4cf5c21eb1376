"""Search spaces, defined once and sampled two ways: Optuna define-by-run and Tune's random variant generator.

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

    def sample_config(self, rng: random.Random) -> dict[str, Any]:
        """One complete random config (constants included), as a trial would receive it."""
        return self.to_config({**self.constants, "sampled": self.draw(rng)})

    def random_param_space(self, seed: int) -> dict[str, Any]:
        """For Tune's BasicVariantGenerator: one seeded draw per trial, same distributions as Optuna's."""
        from ray import tune

        rng = random.Random(seed)
        return {"sampled": tune.sample_from(lambda _spec: self.draw(rng)), **self.constants}

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


def imdb_space(max_epochs: int, seed: int) -> SearchSpace:
    """The GRU knobs users tune by hand; weight decay only where the optimizer decouples it."""
    return SearchSpace(
        params=[
            Param("lr", "loguniform", 5e-4, 5e-3),
            Param("batch_size", "choice", choices=(32, 64, 128)),
            Param("num_layers", "int", 1, 3),
            Param("is_bidirectional", "choice", choices=(False, True)),
            Param("dropout", "uniform", 0.0, 0.5),
            Param("embed_dim", "choice", choices=(64, 128, 192)),
            Param("hidden_dim", "choice", choices=(64, 128, 192)),
            Param("pooling", "choice", choices=("last", "max", "mean", "maxmean")),
            Param("optimizer", "choice", choices=("Adam", "AdamW")),
            Param("weight_decay", "loguniform", 1e-4, 1e-1, when=("optimizer", ("AdamW",))),
        ],
        constants={"epochs": max_epochs, "seed": seed, "lr_schedule": "onecycle", "grad_clip": 1.0},
    )
