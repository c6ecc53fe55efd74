"""Condition strategies (templates and trees) as event-path strategies.

The decision rule is the simulator's: an entry when flat and the entry signal is true at
this bar, an exit when long and the exit signal is true; otherwise nothing. `decide()`
evaluates the trees on the window and reads the last bar; a backtest may `prepare()` the
signals once over all candles and read bar t, which is the same value because condition
trees look back only (test_decide.py checks both against `signals()`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from apps.engine.backtest import StrategySpec, signals
from apps.engine.candles import CandleArrays, TimeArray
from apps.engine.strategies.base import BarContext, Decision, OrderIntent, Position

ENTRY = OrderIntent("buy", tag="entry")
EXIT = OrderIntent("sell", reason="signal", tag="exit")


def condition_intents(
    entry_now: bool, exit_now: bool, position: Position
) -> tuple[OrderIntent, ...]:
    if position.is_flat:
        return (ENTRY,) if entry_now else ()
    return (EXIT,) if exit_now else ()


class ConditionStrategy:
    def __init__(self, spec: StrategySpec) -> None:
        spec.validate()
        self.spec = spec
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
        return Decision(condition_intents(entry_now, exit_now, ctx.state.position), memory)
