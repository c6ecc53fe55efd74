"""`decide(state, candles, clock) -> intents`: the one decision function.

A bot calls it on each closed candle with its warmup window; the event-path backtest
(events.py) runs the very same strategy objects' `on_bar` at every bar. Only the broker and
the clock differ (DESIGN.md §3).

    state   StrategyState: the strategy (a condition `StrategySpec`, an `EventSpec` for
            grid/DCA or recorded alerts, or a `ScriptSpec`), position, balance, resting
            orders, memory
    candles CandleArrays, oldest first, ending with the candle that just closed
    clock   a Clock; the engine never reads wall time

`decide` returns the intents; `step` returns the whole `Decision`, whose `memory` (grid
start price, DCA counters, a script's `sdk.state`; JSON values) the bot persists and passes
back next tick, and whose `logs` go to the bot's log. Intents carry floats;
`OrderIntent.decimals()` gives the exact Decimals a broker books.
"""

from __future__ import annotations

from typing import Any

from apps.engine.backtest import StrategySpec, StrategySpecError
from apps.engine.candles import CandleArrays
from apps.engine.clock import Clock, FixedClock
from apps.engine.strategies.base import (
    Balance,
    BarContext,
    Decision,
    EventSpec,
    Lot,
    OrderIntent,
    Position,
    Strategy,
    StrategyState,
)
from apps.engine.strategies.conditions import ConditionStrategy
from apps.engine.strategies.dca import DcaStrategy
from apps.engine.strategies.grid import GridStrategy
from apps.engine.strategies.indicators import IndicatorCache
from apps.engine.strategies.recorded import RecordedSignalsStrategy, recorded_signals_from_params
from apps.engine.strategies.script import ScriptSpec, ScriptStrategy

__all__ = [
    "Balance",
    "Decision",
    "EventSpec",
    "FixedClock",
    "Lot",
    "OrderIntent",
    "Position",
    "ScriptSpec",
    "StrategyState",
    "build_strategy",
    "decide",
    "prepared_strategy",
    "step",
]


def build_strategy(spec: Any) -> Strategy:
    """The strategy object for a spec, as both `decide` and the event path run it."""
    if isinstance(spec, StrategySpec):
        return ConditionStrategy(spec)
    if isinstance(spec, EventSpec):
        if spec.template == "grid":
            return GridStrategy(spec.params)
        if spec.template == "dca":
            return DcaStrategy(spec.params)
        if spec.template == "recorded":
            return RecordedSignalsStrategy(recorded_signals_from_params(spec.params))
        raise StrategySpecError(
            f"template {spec.template!r} does not run on the event path; use grid, dca or recorded",
            "strategy",
        )
    if isinstance(spec, ScriptSpec):
        return ScriptStrategy(spec.main, spec.params)
    raise StrategySpecError(f"unknown strategy spec {type(spec).__name__}", "strategy")


def prepared_strategy(spec: Any, candles: CandleArrays) -> Strategy:
    """The strategy for `spec` with its series computed once on `candles`: every state
    deciding on that same window may share it (`step(..., strategy=...)`)."""
    strategy = build_strategy(spec)
    strategy.prepare(candles)
    return strategy


def step(
    state: StrategyState, candles: CandleArrays, clock: Clock, strategy: Strategy | None = None
) -> Decision:
    """One closed candle: the strategy's decision on `candles` (the last one just closed).

    `strategy`: `prepared_strategy(state.strategy, candles)`, when many states decide on
    the same window (a batch of bots on one series); prepared here otherwise."""
    if len(candles) == 0:
        raise ValueError("decide needs at least the candle that just closed")
    strategy = strategy or prepared_strategy(state.strategy, candles)
    ctx = BarContext(candles, state, clock, IndicatorCache(candles).window(len(candles)))
    return strategy.on_bar(ctx)


def decide(state: StrategyState, candles: CandleArrays, clock: Clock) -> list[OrderIntent]:
    """The intents for the candle that just closed (cancels first)."""
    return list(step(state, candles, clock).intents)
