"""The grid template: capital split over buy levels below the start price, each lot sold
one level higher.

At its first bar the strategy remembers the close as the start price P and a budget of
cash / levels per level. Level i (1..levels) buys at P * (1 - i * spacing) with a resting
limit order for the budget (fee included, maker fee); the lot it opens, tagged grid-i, gets
a resting limit sell at the level above, P * (1 - (i - 1) * spacing), and once that sells
the level's buy is placed again. Every bar it re-places whatever is missing, from its
position and resting orders alone, so a bot restarted mid-run picks up where it was.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from apps.engine.candles import CandleArrays
from apps.engine.strategies.base import BarContext, Decision, OrderIntent
from apps.engine.templates import TemplateError, template_get


class GridStrategy:
    def __init__(self, params: Mapping[str, Any] | None = None) -> None:
        resolved = template_get("grid").resolve_params(params)
        self.levels, self.spacing = int(resolved["levels"]), float(resolved["spacing"])
        if self.levels * self.spacing >= 1:
            raise TemplateError(
                f"levels x spacing must stay below 1 (the lowest level must be above zero), "
                f"got {self.levels} x {self.spacing:g}",
                "spacing",
            )

    def prepare(self, candles: CandleArrays) -> None:
        return None

    def level(self, start: float, i: int) -> float:
        return start * (1 - i * self.spacing)

    def on_bar(self, ctx: BarContext) -> Decision:
        memory = dict(ctx.state.memory)
        if "start" not in memory:
            memory["start"] = float(ctx.candles.close[-1])
            memory["budget"] = ctx.state.balance.cash / self.levels
        start, budget = float(memory["start"]), float(memory["budget"])
        held = {lot.tag for lot in ctx.state.position.lots}
        resting = {order.tag for order in ctx.state.orders}
        intents = []
        for i in range(1, self.levels + 1):
            tag = f"grid-{i}"
            if tag in held:
                if f"{tag}-sell" not in resting:
                    intents.append(
                        OrderIntent(
                            "sell",
                            "limit",
                            limit_price=self.level(start, i - 1),
                            reason="take_profit",
                            tag=f"{tag}-sell",
                            lot=tag,
                        )
                    )
            elif tag not in resting:
                intents.append(
                    OrderIntent(
                        "buy", "limit", amount=budget, limit_price=self.level(start, i), tag=tag
                    )
                )
        return Decision(tuple(intents), memory)
