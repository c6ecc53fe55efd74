"""Condition trees: JSON rules that compile to one boolean per candle.

A tree is a group `{"all": [...]}` or `{"any": [...]}` nested to any depth, or a leaf
`{"left": operand, "op": op, "right": operand}`. Operands are

- an indicator: `{"indicator": "sma", "params": {"period": 10}, "output": "value"}`,
- a price field: `{"field": "close"}`,
- a constant: `{"value": 30}` (or a bare number),

and any numeric parameter may be `{"param": "fast"}`, filled from the strategy's params.
Ops are `>`, `<`, `>=`, `<=`, `crosses_above` and `crosses_below`. Validation reports every
problem with its path (`entry.all[1].left.params.period`), so a form can point at it.
A value at bar t uses candles up to t only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from apps.engine.candles import BoolArray, CandleArrays, FloatArray
from apps.engine.indicators import INDICATORS, IndicatorError, compute
from apps.engine.indicators.cross import crosses_above, crosses_below

COMPARISONS = {">": np.greater, "<": np.less, ">=": np.greater_equal, "<=": np.less_equal}
CROSSES = {"crosses_above": crosses_above, "crosses_below": crosses_below}
OPS = (*COMPARISONS, *CROSSES)
PRICE_FIELDS = ("open", "high", "low", "close", "volume")
MAX_DEPTH = 12
# Shifts look back only: the value from `shift` bars earlier, never a later one.
MAX_SHIFT = 1000


class ConditionError(ValueError):
    """Invalid tree; `problems` lists (path, message) pairs."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        self.problems = problems
        super().__init__("; ".join(f"{path}: {message}" for path, message in problems))


@dataclass
class _Checker:
    params: Mapping[str, Any]
    problems: list[tuple[str, str]]

    def node(self, node: Any, path: str, depth: int = 0) -> None:
        if depth > MAX_DEPTH:
            self.problems.append((path, f"nested deeper than {MAX_DEPTH} levels"))
            return
        if not isinstance(node, dict):
            self.problems.append((path, "must be an object with 'all', 'any' or 'left/op/right'"))
            return
        groups = [key for key in ("all", "any") if key in node]
        if groups:
            self.group(node, groups, path, depth)
        elif {"left", "op", "right"} <= node.keys():
            self.leaf(node, path)
        else:
            self.problems.append((path, "must have 'all', 'any', or 'left', 'op' and 'right'"))

    def group(self, node: dict[str, Any], groups: list[str], path: str, depth: int) -> None:
        if len(groups) > 1 or len(node) > 1:
            self.problems.append((path, "a group has exactly one key: 'all' or 'any'"))
            return
        key = groups[0]
        children = node[key]
        if not isinstance(children, list) or not children:
            self.problems.append((f"{path}.{key}", "must be a non-empty list of conditions"))
            return
        for i, child in enumerate(children):
            self.node(child, f"{path}.{key}[{i}]", depth + 1)

    def leaf(self, node: dict[str, Any], path: str) -> None:
        extra = set(node) - {"left", "op", "right"}
        if extra:
            self.problems.append((path, f"unknown key(s): {', '.join(sorted(extra))}"))
        if node["op"] not in OPS:
            self.problems.append(
                (f"{path}.op", f"unknown operator {node['op']!r}; use one of {', '.join(OPS)}")
            )
        for side in ("left", "right"):
            self.operand(node[side], f"{path}.{side}")

    def operand(self, operand: Any, path: str) -> None:
        if isinstance(operand, bool) or not isinstance(operand, (int, float, dict)):
            self.problems.append(
                (path, "must be a number, {'value'}, {'field'}, {'indicator'} or {'param'}")
            )
        elif isinstance(operand, dict):
            self.operand_object(operand, path)

    def operand_object(self, operand: dict[str, Any], path: str) -> None:
        if "value" in operand or "param" in operand:
            self.number(operand, path)
        elif "field" in operand:
            self.shift(operand, path)
            if operand["field"] not in PRICE_FIELDS:
                self.problems.append(
                    (
                        f"{path}.field",
                        f"unknown field {operand['field']!r}; use one of {', '.join(PRICE_FIELDS)}",
                    )
                )
        elif "indicator" in operand:
            self.indicator(operand, path)
        else:
            self.problems.append((path, "must have 'value', 'param', 'field' or 'indicator'"))

    def number(self, operand: Any, path: str) -> float | None:
        value = resolve_number(operand, self.params)
        if value is None:
            self.problems.append((path, _number_problem(operand, self.params)))
        return value

    def indicator(self, operand: dict[str, Any], path: str) -> None:
        name = operand["indicator"]
        spec = INDICATORS.get(name)
        if spec is None:
            self.problems.append(
                (
                    f"{path}.indicator",
                    f"unknown indicator {name!r}; use one of {', '.join(sorted(INDICATORS))}",
                )
            )
            return
        raw = operand.get("params", {})
        if not isinstance(raw, dict):
            self.problems.append((f"{path}.params", "must be an object"))
            return
        resolved = {}
        for key, value in raw.items():
            number = self.number(value, f"{path}.params.{key}")
            if number is not None:
                resolved[key] = int(number) if float(number).is_integer() else number
        try:
            spec.check_params(resolved)
        except IndicatorError as exc:
            bad = getattr(exc, "param", None)
            self.problems.append((f"{path}.params" + (f".{bad}" if bad else ""), str(exc)))
        self.shift(operand, path)
        output = operand.get("output", spec.outputs[0])
        if output not in spec.outputs:
            self.problems.append(
                (f"{path}.output", f"{name} has outputs {', '.join(spec.outputs)}, not {output!r}")
            )

    def shift(self, operand: dict[str, Any], path: str) -> None:
        shift = operand.get("shift", 0)
        if isinstance(shift, bool) or not isinstance(shift, int) or not 0 <= shift <= MAX_SHIFT:
            self.problems.append(
                (f"{path}.shift", f"must be a whole number of bars from 0 to {MAX_SHIFT}")
            )


def resolve_number(operand: Any, params: Mapping[str, Any]) -> float | None:
    if isinstance(operand, dict) and "param" in operand:
        operand = params.get(operand["param"])
    elif isinstance(operand, dict) and "value" in operand:
        operand = operand["value"]
    if isinstance(operand, bool) or not isinstance(operand, (int, float)):
        return None
    return float(operand) if np.isfinite(operand) else None


def _number_problem(operand: Any, params: Mapping[str, Any]) -> str:
    if isinstance(operand, dict) and "param" in operand:
        if operand["param"] not in params:
            return f"refers to parameter {operand['param']!r}, which is not set"
        return f"parameter {operand['param']!r} must be a number"
    return "must be a finite number"


def validate_tree(
    tree: Any, params: Mapping[str, Any] | None = None, path: str = "condition"
) -> None:
    """Raise ConditionError listing every problem in the tree, each with its path."""
    checker = _Checker(params or {}, [])
    checker.node(tree, path)
    if checker.problems:
        raise ConditionError(checker.problems)


class _Evaluator:
    def __init__(self, candles: CandleArrays, params: Mapping[str, Any]) -> None:
        self.candles = candles
        self.params = params
        self.cache: dict[tuple[str, tuple[tuple[str, float], ...]], dict[str, FloatArray]] = {}

    def node(self, node: dict[str, Any]) -> BoolArray:
        if "all" in node or "any" in node:
            combine = np.logical_and if "all" in node else np.logical_or
            children = [self.node(child) for child in node.get("all") or node["any"]]
            combined: BoolArray = combine.reduce(children)
            return combined
        left, right = self.operand(node["left"]), self.operand(node["right"])
        op = node["op"]
        if op in CROSSES:
            return CROSSES[op](left, right)
        with np.errstate(invalid="ignore"):
            result: BoolArray = COMPARISONS[op](left, right) & ~np.isnan(left) & ~np.isnan(right)
        return result

    def operand(self, operand: Any) -> FloatArray:
        n = len(self.candles)
        if isinstance(operand, dict) and "field" in operand:
            return _shifted(self.candles.field(operand["field"]), operand.get("shift", 0))
        if isinstance(operand, dict) and "indicator" in operand:
            return _shifted(self.indicator(operand), operand.get("shift", 0))
        value = resolve_number(operand, self.params)
        return np.full(n, np.nan if value is None else value)

    def indicator(self, operand: dict[str, Any]) -> FloatArray:
        name = operand["indicator"]
        resolved = []
        for key, value in sorted(operand.get("params", {}).items()):
            number = resolve_number(value, self.params)
            assert number is not None  # validate_tree ran first
            resolved.append((key, number))
        key = (name, tuple(resolved))
        if key not in self.cache:
            typed = {k: int(v) if float(v).is_integer() else v for k, v in resolved}
            fields = {f: self.candles.field(f) for f in INDICATORS[name].inputs}
            self.cache[key] = compute(name, typed, fields)
        return self.cache[key][operand.get("output", INDICATORS[name].outputs[0])]


def _shifted(values: FloatArray, shift: int) -> FloatArray:
    if shift == 0:
        return values
    out = np.full(len(values), np.nan)
    out[shift:] = values[:-shift]
    return out


def evaluate_tree(
    tree: dict[str, Any], candles: CandleArrays, params: Mapping[str, Any] | None = None
) -> BoolArray:
    """One boolean per candle; NaN operands (warmup) are never true."""
    return evaluate_trees([tree], candles, params)[0]


def evaluate_trees(
    trees: list[dict[str, Any]], candles: CandleArrays, params: Mapping[str, Any] | None = None
) -> list[BoolArray]:
    """Evaluate several trees over the same candles, computing each indicator once."""
    for tree in trees:
        validate_tree(tree, params)
    evaluator = _Evaluator(candles, params or {})
    return [evaluator.node(tree) for tree in trees]
