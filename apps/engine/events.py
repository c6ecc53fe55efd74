"""The event path: a bar-by-bar simulator for strategies that keep state or hold several
orders (scripts, grid, DCA), and for condition strategies too.

At each bar t the book first fills what was decided earlier (event_book.py has the fill
rules, simulator.py's), then marks equity at the close, then the strategy sees candles
[:t+1] only, its position, balance, resting orders and memory, and returns a `Decision`
through the same `on_bar` code that `decide()` runs for bots. The max-drawdown stop is the
simulator's: on a close with holdings whose equity is at or below (1 - limit) x the
highest equity so far, everything is sold at the next open and trading halts.

For a condition strategy the result is trade-for-trade and bar-for-bar the same as
`simulate()` (tests/engine/test_event_path.py); maker and taker fees default to the
execution config's single `fee`. Futures run the same loop on futures.py's `FuturesBook`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from apps.engine.candles import CandleArrays
from apps.engine.clock import BarClock, bar_length
from apps.engine.event_book import Book, EventConfig
from apps.engine.simulator import SimResult
from apps.engine.strategies.base import (
    BarContext,
    Decision,
    OrderIntent,
    Strategy,
    StrategyState,
)
from apps.engine.strategies.indicators import IndicatorCache


@dataclass
class EventResult(SimResult):
    """A `SimResult` plus what only the event path has."""

    logs: list[str] = field(default_factory=list)
    memory: Mapping[str, Any] = field(default_factory=dict)
    open_orders: list[OrderIntent] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)
    # Futures only: net funding paid (negative when received) and positions liquidated.
    funding_paid: float = 0.0
    liquidations: int = 0


class _Run:
    def __init__(self, strategy: Strategy, candles: CandleArrays, book: Book) -> None:
        self.strategy, self.candles, self.book = strategy, candles, book
        self.cfg = book.cfg
        self.n = len(candles)
        self.equity = np.empty(self.n)
        self.peak = book.cfg.execution.cash
        self.cache = IndicatorCache(candles)
        self.clock = BarClock(candles.time, bar_length(candles.time))
        self.memory: Mapping[str, Any] = {}
        self.logs: list[str] = []

    def run(self) -> EventResult:
        self.strategy.prepare(self.candles)
        for bar in range(self.n):
            self.bar(bar)
        book = self.book
        trades = book.trades()
        return EventResult(
            trades,
            self.equity,
            float(self.equity[-1]),
            book.halted_at,
            sum(trade.fee for trade in trades),
            logs=self.logs,
            memory=self.memory,
            open_orders=[*book.resting, *book.pending],
            rejected=book.rejected,
            funding_paid=book.funding_paid,
            liquidations=sum(trade.exit_reason == "liquidation" for trade in trades),
        )

    def bar(self, bar: int) -> None:
        book = self.book
        book.run_bar(bar)
        equity = book.equity(bar)
        self.equity[bar] = equity
        self.peak = max(self.peak, equity)
        if book.halted_at is not None:
            return
        limit = self.cfg.execution.max_drawdown_stop
        if limit is not None and book.lots and equity <= self.peak * (1 - limit):
            book.stop_out()
            return
        decision = self.decide(bar, equity)
        book.submit(decision.intents)
        self.memory = decision.memory
        if decision.logs:
            stamp = self.clock.now().isoformat()
            self.logs.extend(f"{stamp} {line}" for line in decision.logs)

    def decide(self, bar: int, equity: float) -> Decision:
        book = self.book
        self.clock.advance_to(bar)
        state = StrategyState(
            strategy=None,
            position=book.position(),
            balance=book.balance(equity),
            orders=tuple(book.resting),
            memory=self.memory,
        )
        ctx = BarContext(self.candles.head(bar + 1), state, self.clock, self.cache.window(bar + 1))
        return self.strategy.on_bar(ctx)


def run_events(
    strategy: Strategy, candles: CandleArrays, config: EventConfig | None = None
) -> EventResult:
    """Run `strategy` bar by bar over `candles` through a spot event book."""
    return run_on_book(strategy, candles, Book(candles, config or EventConfig()))


def run_on_book(strategy: Strategy, candles: CandleArrays, book: Book) -> EventResult:
    """Run `strategy` bar by bar over `candles` through `book`, built on those candles (a
    spot `Book`, or futures.py's `FuturesBook`)."""
    return _Run(strategy, candles, book).run()
