"""The DCA template: a fixed slice every N bars, safety buys after drops, and a sell of
everything at the take-profit over the average price.

- At its first bar the strategy fixes the slice as `slice` x the cash then (quote,
  fee included) and buys one; then one every `interval` bars while cash lasts (a last,
  smaller slice spends what is left).
- Safety: on a bar without a regular buy, when the close is `take_profit` or more below the
  last buy's price, it buys one more slice (a safety order). The template has no separate
  drop parameter, so the distance mirrors the target.
- While holding, a resting limit sell of the whole position sits at
  average price x (1 + take_profit); it is re-placed when the average moves, and withdrawn
  on a bar that buys, so it never sells a new slice at the old average's target.
Selling everything books one trade per slice (event_book.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from apps.engine.candles import CandleArrays
from apps.engine.strategies.base import BarContext, Decision, OrderIntent, Position
from apps.engine.templates import template_get

TP_TAG = "dca-tp"
# A slice smaller than this share of the planned one is not worth an order.
MIN_SLICE = 1e-6


class DcaStrategy:
    def __init__(self, params: Mapping[str, Any] | None = None) -> None:
        resolved = template_get("dca").resolve_params(params)
        self.interval = int(resolved["interval"])
        self.slice = float(resolved["slice"])
        self.take_profit = float(resolved["take_profit"])

    def prepare(self, candles: CandleArrays) -> None:
        return None

    def on_bar(self, ctx: BarContext) -> Decision:
        memory = dict(ctx.state.memory)
        if "slice_amount" not in memory:
            memory["slice_amount"] = ctx.state.balance.cash * self.slice
        bars = int(memory.get("bars", 0))
        memory["bars"] = bars + 1
        buy = self.buy(ctx, bars, float(memory["slice_amount"]))
        current = next((o for o in ctx.state.orders if o.tag == TP_TAG), None)
        intents = [OrderIntent.cancel(current)] if current is not None else []
        if buy is not None:
            intents.append(buy)
        elif not ctx.state.position.is_flat:
            target = ctx.state.position.avg_price * (1 + self.take_profit)
            if current is not None and current.limit_price == target:
                intents = []  # already in place
            else:
                intents.append(self.take_profit_order(target))
        return Decision(tuple(intents), memory)

    def buy(self, ctx: BarContext, bars: int, slice_amount: float) -> OrderIntent | None:
        amount = min(slice_amount, ctx.state.balance.cash)
        if amount <= slice_amount * MIN_SLICE:
            return None
        if bars % self.interval == 0:
            return OrderIntent("buy", amount=amount, tag="dca")
        if self.dropped(ctx.state.position, float(ctx.candles.close[-1])):
            return OrderIntent("buy", amount=amount, tag="dca-safety")
        return None

    def dropped(self, position: Position, close: float) -> bool:
        if position.is_flat:
            return False
        return close <= position.lots[-1].entry_price * (1 - self.take_profit)

    def take_profit_order(self, target: float) -> OrderIntent:
        return OrderIntent("sell", "limit", limit_price=target, reason="take_profit", tag=TP_TAG)
