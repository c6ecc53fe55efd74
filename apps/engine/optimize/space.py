"""Parameter spaces: what to try, checked against the template (see the package docstring)."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from apps.engine.templates import ParamSpec, TemplateError, template_get

Progress = Callable[[int, int], None]
Params = dict[str, float]

SCORE_METRICS = (
    "sharpe",
    "sortino",
    "calmar",
    "total_return",
    "annualized_return",
    "profit_factor",
    "win_rate",
    "final_equity",
    "average_trade",
    "average_trade_return",
)
MAX_COMBINATIONS = 100_000
DEFAULT_THRESHOLD = 0.5


class OptimizationError(ValueError):
    """The search cannot run as given; `field` names the parameter or setting at fault."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


# -- parameter spaces ---------------------------------------------------------------------


@dataclass(frozen=True)
class Dimension:
    """One parameter's search range: fixed values, or a random draw between bounds."""

    name: str
    values: tuple[float, ...] = ()
    random: Literal["uniform", "int"] | None = None
    low: float = 0.0
    high: float = 0.0

    def draw(self, rng: np.random.Generator) -> float:
        if self.random == "uniform":
            return float(rng.uniform(self.low, self.high))
        if self.random == "int":
            return int(rng.integers(int(self.low), int(self.high) + 1))
        return self.values[int(rng.integers(len(self.values)))]


def _number(name: str, key: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise OptimizationError(f"{name}: {key} must be a finite number, got {value!r}", name)
    return value


def _coerce(spec: ParamSpec, value: Any) -> float:
    try:
        return spec.coerce(value)
    except TemplateError as exc:
        raise OptimizationError(str(exc), spec.name) from exc


def _range_values(spec: ParamSpec, entry: Mapping[str, Any]) -> tuple[float, ...]:
    name = spec.name
    low, high = _number(name, "min", entry["min"]), _number(name, "max", entry["max"])
    step = _number(name, "step", entry.get("step", 1))
    if step <= 0:
        raise OptimizationError(f"{name}: step must be positive, got {step}", name)
    if low > high:
        raise OptimizationError(f"{name}: min {low} is above max {high}", name)
    count = math.floor((high - low) / step + 1e-9) + 1
    if count > MAX_COMBINATIONS:
        raise OptimizationError(f"{name}: the range has {count} values, too many", name)
    return tuple(_coerce(spec, round(low + i * step, 12)) for i in range(count))


def _random_dimension(spec: ParamSpec, entry: Mapping[str, Any]) -> Dimension:
    name, kind = spec.name, entry["random"]
    if kind not in ("uniform", "int"):
        raise OptimizationError(f"{name}: random must be 'uniform' or 'int', got {kind!r}", name)
    if kind == "uniform" and spec.type == "int":
        raise OptimizationError(f"{name} is a whole number; draw it with random 'int'", name)
    if "min" not in entry or "max" not in entry:
        raise OptimizationError(f"{name}: a random draw needs min and max", name)
    low, high = _coerce(spec, entry["min"]), _coerce(spec, entry["max"])
    if kind == "int" and not (float(low).is_integer() and float(high).is_integer()):
        raise OptimizationError(f"{name}: random 'int' bounds must be whole numbers", name)
    if low > high:
        raise OptimizationError(f"{name}: min {low} is above max {high}", name)
    return Dimension(name, random=kind, low=low, high=high)


def _dimension(spec: ParamSpec, entry: Any) -> Dimension:
    name = spec.name
    if isinstance(entry, Mapping) and "values" in entry:
        entry = entry["values"]
    if isinstance(entry, (list, tuple)):
        if not entry:
            raise OptimizationError(f"{name}: the list of values is empty", name)
        return Dimension(name, values=tuple(_coerce(spec, value) for value in entry))
    if isinstance(entry, Mapping) and "random" in entry:
        return _random_dimension(spec, entry)
    if isinstance(entry, Mapping) and "min" in entry and "max" in entry:
        return Dimension(name, values=_range_values(spec, entry))
    raise OptimizationError(
        f"{name}: give a list of values, {{min, max, step}}, or {{random, min, max}}", name
    )


@dataclass(frozen=True)
class ParamSpace:
    template: str
    dimensions: tuple[Dimension, ...]

    @classmethod
    def parse(cls, template: str, space: Mapping[str, Any]) -> ParamSpace:
        try:
            found = template_get(template)
        except TemplateError as exc:
            raise OptimizationError(str(exc), exc.field) from exc
        if found.kind != "conditions":
            raise OptimizationError(
                f"template {template!r} runs on the event path and cannot be optimised here",
                "strategy",
            )
        known = {p.name: p for p in found.params}
        if not space:
            raise OptimizationError("the parameter space is empty", "space")
        for name in space:
            if name not in known:
                raise OptimizationError(
                    f"unknown parameter {name!r} for {template}; "
                    f"expected one of: {', '.join(known)}",
                    name,
                )
        return cls(template, tuple(_dimension(known[n], e) for n, e in space.items()))

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(d.name for d in self.dimensions)

    def grid(self) -> list[Params]:
        """Every combination, the first parameter varying slowest."""
        for dim in self.dimensions:
            if dim.random is not None:
                raise OptimizationError(
                    f"{dim.name}: a random draw cannot be gridded; give values or a step",
                    dim.name,
                )
        total = math.prod(len(d.values) for d in self.dimensions)
        if total > MAX_COMBINATIONS:
            raise OptimizationError(
                f"the grid has {total} combinations, more than {MAX_COMBINATIONS}", "space"
            )
        combos: list[Params] = [{}]
        for dim in self.dimensions:
            combos = [{**combo, dim.name: value} for combo in combos for value in dim.values]
        return combos

    def sample(self, count: int, seed: int | None) -> list[Params]:
        """Up to `count` distinct random combinations; the same seed gives the same list."""
        if count < 1:
            raise OptimizationError("samples must be at least 1", "samples")
        rng = np.random.default_rng(seed)
        seen: set[tuple[float, ...]] = set()
        combos: list[Params] = []
        for _ in range(count * 20):
            combo = {dim.name: dim.draw(rng) for dim in self.dimensions}
            key = tuple(combo.values())
            if key not in seen:
                seen.add(key)
                combos.append(combo)
                if len(combos) == count:
                    break
        return combos
