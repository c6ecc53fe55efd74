"""Condition trees: JSON rules that compile to one boolean per candle.

A tree is a group `{"all": [...]}` or `{"any": [...]}` nested to any depth, or a leaf
`{"left": operand, "op": op, "right": operand}`. A third group, the weighted vote,

    {"weighted": [{"weight": 2, "when": tree}, {"weight": -1, "when": tree}], "threshold": 2}

is true at a bar when the weights of the children true at that bar add up to at least the
threshold; a negative weight is a vote against. It nests like the other groups. Operands are

- an indicator: `{"indicator": "sma", "params": {"period": 10}, "output": "value"}`,
- a price field: `{"field": "close"}`,
- a constant: `{"value": 30}` (or a bare number),

and any numeric parameter, weights and thresholds included, may be `{"param": "fast"}`,
filled from the strategy's params.
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
GROUPS = ("all", "any", "weighted")
MAX_DEPTH = 12
# Shifts look back only: the value from `shift` bars earlier, never a later one.
MAX_SHIFT = 1000
# Relative slack when a weighted sum meets its threshold: 0.7 + 0.1 is below 0.8 in binary
# floating point, yet a person who typed those weights means the vote to pass.
VOTE_TOLERANCE = 1e-9


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
            self.problems.append(
                (path, "must be an object with 'all', 'any', 'weighted' or 'left/op/right'")
            )
            return
        groups = [key for key in GROUPS if key in node]
        if groups:
            self.group(node, groups, path, depth)
        elif {"left", "op", "right"} <= node.keys():
            self.leaf(node, path)
        else:
            self.problems.append(
                (path, "must have 'all', 'any', 'weighted', or 'left', 'op' and 'right'")
            )

    def group(self, node: dict[str, Any], groups: list[str], path: str, depth: int) -> None:
        allowed = {"weighted", "threshold"} if groups == ["weighted"] else set(groups)
        if len(groups) > 1 or set(node) - allowed:
            self.problems.append(
                (path, "a group has one key, 'all', 'any' or 'weighted' (with its 'threshold')")
            )
            return
        key = groups[0]
        if key == "weighted":
            self.vote(node, path, depth)
            return
        children = node[key]
        if not isinstance(children, list) or not children:
            self.problems.append((f"{path}.{key}", "must be a non-empty list of conditions"))
            return
        for i, child in enumerate(children):
            self.node(child, f"{path}.{key}[{i}]", depth + 1)

    def vote(self, node: dict[str, Any], path: str, depth: int) -> None:
        threshold = self.required_number(node, "threshold", path)
        items = node["weighted"]
        if not isinstance(items, list) or not items:
            self.problems.append(
                (f"{path}.weighted", "must be a non-empty list of {'weight', 'when'} objects")
            )
            return
        weights = [
            self.vote_item(item, f"{path}.weighted[{i}]", depth) for i, item in enumerate(items)
        ]
        known = [w for w in weights if w is not None]
        if threshold is not None and len(known) == len(weights):
            self.reachable(threshold, known, f"{path}.threshold")

    def vote_item(self, item: Any, path: str, depth: int) -> float | None:
        if not isinstance(item, dict):
            self.problems.append((path, "must be an object with 'weight' and 'when'"))
            return None
        extra = set(item) - {"weight", "when"}
        if extra:
            self.problems.append((path, f"unknown key(s): {', '.join(sorted(extra))}"))
        if "when" in item:
            self.node(item["when"], f"{path}.when", depth + 1)
        else:
            self.problems.append(
                (f"{path}.when", "is required: the condition that casts this vote")
            )
        return self.required_number(item, "weight", path)

    def reachable(self, threshold: float, weights: list[float], path: str) -> None:
        # A vote that can never pass, or that passes with no signal for it, is a mistake
        # that would otherwise only show up as a backtest with no trades or all trades.
        most = sum(w for w in weights if w > 0)
        least = sum(w for w in weights if w < 0)
        scale = sum(abs(w) for w in weights)
        if not vote_passes(most, threshold, scale):
            self.problems.append(
                (
                    path,
                    f"{threshold:g} can never be reached: the positive weights add up to {most:g}",
                )
            )
        elif vote_passes(least, threshold, scale):
            self.problems.append(
                (
                    path,
                    f"{threshold:g} is met with no vote in favour; use a threshold above {least:g}",
                )
            )

    def required_number(self, node: dict[str, Any], key: str, path: str) -> float | None:
        if key not in node:
            self.problems.append((f"{path}.{key}", "is required: a number or {'param': name}"))
            return None
        return self.number(node[key], f"{path}.{key}")

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


def vote_passes(total: Any, threshold: float, scale: float) -> Any:
    """Whether a weighted sum (a number or an array) reaches the threshold.

    `scale` is the sum of the absolute weights; the slack grows with it (VOTE_TOLERANCE).
    """
    return total >= threshold - VOTE_TOLERANCE * max(1.0, scale)


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
        if "weighted" in node:
            return self.vote(node)
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

    def vote(self, node: dict[str, Any]) -> BoolArray:
        total = np.zeros(len(self.candles))
        scale = 0.0
        for item in node["weighted"]:
            weight = resolve_number(item["weight"], self.params)
            assert weight is not None  # validate_tree ran first
            total[self.node(item["when"])] += weight
            scale += abs(weight)
        threshold = resolve_number(node["threshold"], self.params)
        assert threshold is not None
        passed: BoolArray = vote_passes(total, threshold, scale)
        return passed

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
