"""One backtest: a strategy spec and candles in, trades, curves and metrics out.

The signal functions here are the same ones `decide` uses for bots, so a backtest and a
bot running the same version agree on every decision.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from apps.engine.candles import BoolArray, CandleArrays, FloatArray
from apps.engine.conditions import ConditionError, evaluate_trees, validate_tree
from apps.engine.metrics import Metrics, compute_metrics, drawdown_curve
from apps.engine.simulator import ExecutionConfig, SimResult, simulate
from apps.engine.templates import TemplateError, template_get

StrategyKind = Literal["template", "conditions"]
Market = Literal["spot", "futures"]
# Metrics a spot run leaves out of `as_json` (with the trades' `side`), so the CLI's
# documented output keeps its keys.
FUTURES_ONLY_METRICS = ("funding_paid", "liquidations")


class StrategySpecError(ValueError):
    """The strategy cannot run as given; `field` names the input at fault."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class StrategySpec:
    kind: StrategyKind
    entry: dict[str, Any]
    exit: dict[str, Any]
    params: Mapping[str, Any] = field(default_factory=dict)
    template: str = ""

    @classmethod
    def from_template(cls, name: str, params: Mapping[str, Any] | None = None) -> StrategySpec:
        try:
            template = template_get(name)
            resolved = template.resolve_params(params)
        except TemplateError as exc:
            raise StrategySpecError(str(exc), exc.field) from exc
        if template.entry is None or template.exit is None:
            raise StrategySpecError(
                f"template {name!r} runs on the event path, not as conditions", "strategy"
            )
        return cls("template", template.entry, template.exit, resolved, name)

    @classmethod
    def from_tree(cls, document: Any, params: Mapping[str, Any] | None = None) -> StrategySpec:
        if not isinstance(document, dict) or "entry" not in document or "exit" not in document:
            raise StrategySpecError(
                "a condition strategy is an object with 'entry' and 'exit' trees", "strategy"
            )
        merged = {**document.get("params", {}), **(params or {})}
        spec = cls("conditions", document["entry"], document["exit"], merged)
        spec.validate()
        return spec

    def validate(self) -> None:
        problems: list[tuple[str, str]] = []
        for name, tree in (("entry", self.entry), ("exit", self.exit)):
            try:
                validate_tree(tree, self.params, path=name)
            except ConditionError as exc:
                problems.extend(exc.problems)
        if problems:
            raise ConditionError(problems)


def strategy_from_file(path: str | Path, params: Mapping[str, Any] | None = None) -> StrategySpec:
    try:
        document = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise StrategySpecError(f"cannot read condition tree {path}: {exc}", "strategy") from exc
    return StrategySpec.from_tree(document, params)


def signals(spec: StrategySpec, candles: CandleArrays) -> tuple[BoolArray, BoolArray]:
    """Entry and exit decisions at each bar's close."""
    entries, exits = evaluate_trees([spec.entry, spec.exit], candles, spec.params)
    return entries, exits


@dataclass(frozen=True)
class TradeRow:
    entry_time: str
    exit_time: str | None
    entry_price: float
    exit_price: float | None
    size: float
    fee: float
    pnl: float
    exit_reason: str
    side: str = "long"


@dataclass(frozen=True)
class BacktestReport:
    metrics: Metrics
    candles: CandleArrays
    equity: FloatArray
    drawdown: FloatArray
    result: SimResult
    # Keyword-only, so subclasses keep adding positional fields after `result`.
    market: Market = field(default="spot", kw_only=True)

    @functools.cached_property
    def trades(self) -> list[TradeRow]:
        """Trade rows with ISO-8601 UTC times, built on first use."""
        return _trade_rows(self.candles, self.result)

    def as_json(self) -> dict[str, Any]:
        metrics = self.metrics.as_dict()
        trades = [asdict(row) for row in self.trades]
        if self.market == "spot":
            for key in FUTURES_ONLY_METRICS:
                del metrics[key]
            for trade in trades:
                del trade["side"]
        return {"metrics": metrics, "trades": trades}


def iso_utc(moments: np.ndarray) -> list[str]:
    """ISO-8601 UTC strings ("...Z") for an array of datetime64 values, in one call."""
    text = np.datetime_as_string(moments.astype("datetime64[s]"), unit="s")
    return [value + "Z" for value in text.tolist()]


def _trade_rows(candles: CandleArrays, result: SimResult) -> list[TradeRow]:
    trades = result.trades
    entries = iso_utc(candles.time[[t.entry_index for t in trades]])
    closed = [t.exit_index for t in trades if t.exit_index is not None]
    exits = iter(iso_utc(candles.time[closed]))
    return [
        TradeRow(
            entry_time=entry,
            exit_time=next(exits) if t.exit_index is not None else None,
            entry_price=t.entry_price,
            exit_price=t.exit_price,
            size=t.size,
            fee=t.fee,
            pnl=t.pnl,
            exit_reason=t.exit_reason,
            side=t.side,
        )
        for t, entry in zip(trades, entries, strict=True)
    ]


def run_backtest(
    spec: StrategySpec, candles: CandleArrays, config: ExecutionConfig
) -> BacktestReport:
    entries, exits = signals(spec, candles)
    return backtest_report(candles, simulate(candles, entries, exits, config), config.cash)


def backtest_report(
    candles: CandleArrays, result: SimResult, cash: float, market: Market = "spot"
) -> BacktestReport:
    """The report of any run (fast path, event path, futures) over `candles`."""
    drawdown = drawdown_curve(result.equity)
    metrics = compute_metrics(candles, result, cash, drawdown)
    return BacktestReport(metrics, candles, result.equity, drawdown, result, market=market)
