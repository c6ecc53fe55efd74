"""Condition strategies (templates and trees) as event-path strategies.

The decision rule is the simulator's: an entry when flat and the entry signal is true at
this bar, an exit when in a position and the exit signal is true; otherwise nothing.
`decide()` evaluates the trees on the window and reads the last bar; a backtest may
`prepare()` the signals once over all candles and read bar t, which is the same value
because condition trees look back only (test_decide.py checks both against `signals()`).

How the signals become orders is the `OrderPlan`:
- direction: a long strategy buys on its entry signal and sells on its exit; a short one
  (futures) sells on its entry signal and buys back on its exit. The book reports the
  position with a positive size either way.
- market orders (the default) fill at the next bar's open, with the taker fee and slippage.
- limit orders: on an entry signal when flat, a buy limit is placed at the signal bar's
  close x (1 - limit_offset). It rests for the next bar only, and fills at the limit when
  that bar trades down to it, or at the open when the bar opens below it, with the maker
  fee and no slippage. If it has not filled by the next decision it is cancelled, and
  placed again if the entry signal is still true. An exit signal places a sell limit at
  close x (1 + limit_offset) for the next bar; an exit that has not filled after that bar
  falls back to a market sell at the following open, so exits are never lost. Stops and the
  max-drawdown stop work as with market orders (a stop that closes the position cancels
  the exit limit). For a short the sides swap: the entry sell rests above the close and
  the exit buy below it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from apps.engine.backtest import StrategySpec, signals
from apps.engine.candles import CandleArrays, TimeArray
from apps.engine.stops import PositionSide
from apps.engine.strategies.base import (
    BarContext,
    Decision,
    OrderIntent,
    OrderType,
    Side,
    StrategyState,
)

ENTRY_TAG, EXIT_TAG = "entry", "exit"


@dataclass(frozen=True)
class OrderPlan:
    direction: PositionSide = "long"
    order_type: OrderType = "market"
    # Limit orders rest this fraction from the signal bar's close in the trader's favour.
    limit_offset: float = 0.0

    @property
    def opening_side(self) -> Side:
        return "buy" if self.direction == "long" else "sell"

    @property
    def closing_side(self) -> Side:
        return "sell" if self.direction == "long" else "buy"

    def limit(self, side: Side, close: float, tag: str, lot: str | None = None) -> OrderIntent:
        """A limit at `close` moved by the offset in the trader's favour: buys below."""
        offset = -self.limit_offset if side == "buy" else self.limit_offset
        return OrderIntent(side, "limit", limit_price=close * (1 + offset), tag=tag, lot=lot)


class ConditionStrategy:
    def __init__(self, spec: StrategySpec, plan: OrderPlan | None = None) -> None:
        spec.validate()
        self.spec = spec
        self.plan = plan or OrderPlan()
        self.entry = OrderIntent(self.plan.opening_side, tag=ENTRY_TAG)
        self.exit = OrderIntent(self.plan.closing_side, reason="signal", tag=EXIT_TAG)
        self.prepared: tuple[TimeArray, list[bool], list[bool]] | None = None

    def prepare(self, candles: CandleArrays) -> None:
        entries, exits = signals(self.spec, candles)
        self.prepared = (candles.time, entries.tolist(), exits.tolist())

    def signals_at_close(self, candles: CandleArrays) -> tuple[bool, bool]:
        t = len(candles) - 1
        if self.prepared is not None:
            times, entries, exits = self.prepared
            # Only a window of the prepared candles may read them: same length, same end.
            if t < len(entries) and candles.time[t] == times[t]:
                return entries[t], exits[t]
        window_entries, window_exits = signals(self.spec, candles)
        return bool(window_entries[-1]), bool(window_exits[-1])

    def on_bar(self, ctx: BarContext) -> Decision:
        entry_now, exit_now = self.signals_at_close(ctx.candles)
        memory: Mapping[str, Any] = ctx.state.memory
        if self.plan.order_type == "limit":
            close = float(ctx.candles.close[-1])
            return Decision(self.limit_intents(entry_now, exit_now, ctx.state, close), memory)
        if ctx.state.position.is_flat:
            return Decision((self.entry,) if entry_now else (), memory)
        return Decision((self.exit,) if exit_now else (), memory)

    def limit_intents(
        self, entry_now: bool, exit_now: bool, state: StrategyState, close: float
    ) -> tuple[OrderIntent, ...]:
        plan = self.plan
        if state.position.is_flat:
            # An entry limit still resting did not fill in its one bar.
            stale = [OrderIntent.cancel(o) for o in state.orders if o.tag == ENTRY_TAG]
            if entry_now:
                return (*stale, plan.limit(plan.opening_side, close, ENTRY_TAG))
            return tuple(stale)
        unfilled = [OrderIntent.cancel(o) for o in state.orders if o.tag == EXIT_TAG]
        if unfilled:  # the exit limit missed its bar: close at the next open instead
            return (*unfilled, OrderIntent(plan.closing_side, tag=EXIT_TAG, lot=ENTRY_TAG))
        if exit_now:
            # Aimed at the entry lot, so a stop that closes it cancels this limit too.
            return (plan.limit(plan.closing_side, close, EXIT_TAG, lot=ENTRY_TAG),)
        return ()
