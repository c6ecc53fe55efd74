"""Perpetual futures in backtests: leverage, funding and liquidation (isolated margin).

`FuturesConfig` is the settings contract the backtests app stores per pair. `FuturesBook`
is the event book (event_book.py) for one position at a time, long or short per
`direction`; `run_futures` runs a strategy on it. The rules:

- sizing decides the MARGIN as the spot sizing decides the cash spent (all_in: all equity,
  percent: a fraction of it, fixed: a quote amount; margin plus fees never exceed what the
  sizing allows), and the position's notional is margin x leverage. Risk sizing takes the
  notional that loses `size_value` x equity at the stop-loss, capped at what all-in would
  open. Fees (taker for market orders, maker for limits) are charged on the notional.
- equity = wallet (cash less fees and funding, plus realised P&L) + the unrealised P&L at
  the close.
- funding: at each funding time (UTC epoch seconds divisible by funding_interval_hours x
  3600) that a bar's open time reaches while a position is held from an earlier bar, the
  position pays funding_rate x size x that bar's open (a long pays when the rate is
  positive, a short receives; a negative rate flips both). It is settled at the open, before
  any fill there, and is part of the trade's P&L; the result carries the net funding paid.
- liquidation: a long is liquidated at the price p where margin + size x (p - entry) =
  maintenance_margin x size x p (a short at the mirror image), checked intrabar against the
  low (long) or high (short); a bar that opens through it fills at the open. A stop (loss
  or trailing) whose level comes before the liquidation price on the way there exits first
  if the bar does not open through the liquidation price; otherwise the position is
  liquidated: its margin is lost, and the maintenance margin left pays the liquidation, so
  there is no exit fee: pnl = -margin - fees - funding. The strategy may then enter again
  if any equity remains; a liquidation that leaves nothing (all-in) halts the run there.
- leverage 1, long, without funding, trades exactly as the spot book does.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from apps.engine.candles import CandleArrays
from apps.engine.event_book import DUST, Book, EventConfig, OpenLot, intent_units
from apps.engine.events import EventResult, run_on_book
from apps.engine.simulator import SimTrade, SimulationConfigError
from apps.engine.stops import PositionSide
from apps.engine.strategies.base import Balance, OrderIntent, Strategy

Direction = PositionSide
MAX_LEVERAGE = 125.0


@dataclass(frozen=True)
class FuturesConfig:
    # Notional = margin x leverage; 1 means no borrowing.
    leverage: float = 1.0
    # A long strategy buys on its entry signal; a short one sells on it and buys back on exit.
    direction: Direction = "long"
    # Paid by longs to shorts when positive, per funding interval, on the position's notional.
    funding_rate: float = 0.0001
    funding_interval_hours: int = 8
    # A position is liquidated when its margin falls to this fraction of its notional.
    maintenance_margin: float = 0.005

    def validate(self) -> None:
        checks = [
            (
                "leverage",
                1 <= self.leverage <= MAX_LEVERAGE,
                f"must be between 1 and {MAX_LEVERAGE:g}",
            ),
            ("direction", self.direction in ("long", "short"), "must be 'long' or 'short'"),
            ("funding_rate", -0.01 <= self.funding_rate <= 0.01, "must be between -0.01 and 0.01"),
            (
                "funding_interval_hours",
                self.funding_interval_hours in (1, 2, 4, 8),
                "must be 1, 2, 4 or 8",
            ),
            (
                "maintenance_margin",
                0 <= self.maintenance_margin < 0.5,
                "must be a fraction below 0.5",
            ),
            (
                "maintenance_margin",
                # Else a position would be liquidated at its own entry price.
                self.maintenance_margin * self.leverage < 1,
                "must be below 1 / leverage",
            ),
        ]
        for name, ok, message in checks:
            if not ok:
                raise SimulationConfigError(f"{name} {message}")


@dataclass
class FuturesLot(OpenLot):
    margin: float = 0.0
    liquidation_price: float = 0.0

    def reduce(self, qty: float, part: float) -> None:
        super().reduce(qty, part)
        self.margin -= self.margin * part


def funding_periods(candles: CandleArrays, interval_hours: int) -> list[int]:
    """How many funding times each bar's open reaches since the previous bar's (0 at bar 0)."""
    seconds = candles.time.astype("datetime64[s]").astype(np.int64)
    intervals = seconds // (interval_hours * 3600)
    periods: list[int] = np.diff(intervals, prepend=intervals[:1]).tolist()
    return periods


class FuturesBook(Book):
    def __init__(self, candles: CandleArrays, config: EventConfig, futures: FuturesConfig) -> None:
        futures.validate()
        super().__init__(candles, config, side=futures.direction)
        self.futures = futures
        self.watch_lots = True  # a position may be liquidated without any stop set
        self.funding_periods = funding_periods(candles, futures.funding_interval_hours)

    def balance(self, equity: float) -> Balance:
        """What a strategy may still commit: equity less the margin in use."""
        margins = [lot.margin for lot in self.lots if isinstance(lot, FuturesLot)]
        return Balance(equity - sum(margins), equity)

    def run_bar(self, bar: int) -> None:
        self._settle_funding(bar)
        super().run_bar(bar)

    def _settle_funding(self, bar: int) -> None:
        periods = self.funding_periods[bar]
        if not periods or not self.lots:
            return
        # Settled before this bar's fills, so only positions held from an earlier bar pay.
        rate = self.futures.funding_rate
        for lot in self.lots:
            paid = self.sign * periods * rate * lot.size * self.open[bar]
            lot.funding += paid
            self.cash -= paid
            self.funding_paid += paid

    def _open(self, intent: OrderIntent, bar: int, price: float, fee: float) -> None:
        if self.lots:
            self.rejected.append(f"bar {bar}: {intent.side} {intent.tag!r} while in a position")
            return
        super()._open(intent, bar, price, fee)

    def _units(self, intent: OrderIntent, price: float, fee: float) -> float:
        """Spot sizing applied to margin: at leverage L a unit takes price / L of margin and
        pays L times the fee on that margin (so L = 1 sizes exactly as spot)."""
        x, leverage = self.x, self.futures.leverage
        units = intent_units(intent, x, cash=self.cash, price=price / leverage, fee=fee * leverage)
        sized_by_config = intent.size is None and intent.fraction is None and intent.amount is None
        if x.sizing == "risk" and sized_by_config:
            assert x.stop_loss is not None  # validate() requires it for risk sizing
            all_in = self.cash / (price / leverage * (1 + fee * leverage))
            units = min(all_in, self.cash * x.size_value / (price * x.stop_loss))
        return units

    def _new_lot(self, tag: str, bar: int, price: float, units: float, fee: float) -> OpenLot:
        margin = units * price / self.futures.leverage
        # margin + size * (p - entry) = mm * size * p, for a long; a short mirrors it.
        mm = self.futures.maintenance_margin
        liquidation = (units * price - self.sign * margin) / (units * (1 - self.sign * mm))
        return FuturesLot(self.seq, tag, bar, price, units, fee, price, 0.0, margin, liquidation)

    def _check_exits(self, lot: OpenLot, bar: int) -> None:
        assert isinstance(lot, FuturesLot)
        rules, opened, liquidation = self.stops, self.open[bar], lot.liquidation_price
        if rules.adverse_touch(liquidation, self.high[bar], self.low[bar]):
            stop = rules.stop_level(lot.entry_price, lot.best)
            saved = (
                stop is not None
                and rules.before(stop, liquidation)
                and rules.before(opened, liquidation)
            )
            if not saved:
                self._liquidate(lot, bar, rules.adverse_fill(opened, liquidation))
                return
        super()._check_exits(lot, bar)

    def _liquidate(self, lot: FuturesLot, bar: int, price: float) -> None:
        self.cash = self.cash + self.sign * lot.size * lot.entry_price - lot.margin
        pnl = -lot.margin - lot.entry_fee - lot.funding
        trade = SimTrade(
            lot.entry_index,
            bar,
            lot.entry_price,
            price,
            lot.size,
            lot.entry_fee,
            pnl,
            "liquidation",
            self.side,
        )
        self.closed.append((lot.seq, trade))
        self._retire(lot)
        if self.cash <= DUST * lot.margin:  # nothing left but float dust: the account is done
            self.halted_at = bar
            self.resting, self.pending = [], []


def run_futures(
    strategy: Strategy, candles: CandleArrays, config: EventConfig, futures: FuturesConfig
) -> EventResult:
    """Run `strategy` bar by bar as a futures position (see the module docstring)."""
    return run_on_book(strategy, candles, FuturesBook(candles, config, futures))
