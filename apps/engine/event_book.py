"""The event path's account: cash, lots, resting and pending orders, and their fills.

The fill rules are simulator.py's, applied one bar at a time (DESIGN.md §3):
- market orders decided at bar t's close fill at bar t+1's open, buys at
  `open * (1 + slippage)`, sells at `open * (1 - slippage)`, with the taker fee;
- limit orders rest from the bar after they are placed; a buy fills when a bar's low
  touches the limit, a sell when its high does, at the limit, or at the open when the bar
  opens through it; maker fee, no slippage;
- within a bar: market orders at the open (sells, then buys), then resting limit buys, then
  stops on every lot (stops.py: stop-loss before take-profit, trailing from earlier highs
  only, a gap fills at the open), then resting limit sells;
- a buy never spends more cash than held, a sell never sells more than held.

The book is written for a position of either sign so that the futures book (futures.py)
can reuse it: a long opens with buys and closes with sells, a short the other way round
(so for a short, read "buy" for "sell" and "sell" for "buy" above), and `cash` is kept so
that equity is `cash + sign * size * close` in both cases. For spot, `sign` is 1 and
`cash` is the quote currency held: spot books are always long.

Every lot is one round trip. A sell takes lots first in, first out (or only the lots its
`lot` tag names); a lot sold in part becomes a `SimTrade` for the part sold, carrying its
pro-rata share of the lot's entry fee, and the rest stays open as a smaller lot. Selling an
averaged DCA position therefore gives one trade per slice, each with its own entry.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from apps.engine.candles import CandleArrays
from apps.engine.simulator import (
    ExecutionConfig,
    ExitReason,
    SimTrade,
    SimulationConfigError,
    sized_units,
)
from apps.engine.stops import PositionSide, StopRules
from apps.engine.strategies.base import Balance, Lot, OrderIntent, Position, Side

# A sell within this relative distance of everything held sells everything (float dust).
DUST = 1e-12


@dataclass(frozen=True)
class EventConfig:
    """ExecutionConfig plus separate maker and taker fees (each defaults to `fee`)."""

    execution: ExecutionConfig = field(default_factory=ExecutionConfig)
    maker_fee: float | None = None
    taker_fee: float | None = None

    @property
    def maker(self) -> float:
        return self.execution.fee if self.maker_fee is None else self.maker_fee

    @property
    def taker(self) -> float:
        return self.execution.fee if self.taker_fee is None else self.taker_fee

    def validate(self) -> None:
        self.execution.validate()
        for name in ("maker_fee", "taker_fee"):
            value = getattr(self, name)
            if value is not None and not 0 <= value < 0.1:
                raise SimulationConfigError(f"{name} must be a fraction between 0 and 0.1")


@dataclass
class OpenLot:
    seq: int
    tag: str
    entry_index: int
    entry_price: float
    size: float
    entry_fee: float
    # The best price of the bars traded so far, which the trailing stop follows (stops.py).
    best: float
    # Funding paid while held (futures only), part of the lot's P&L.
    funding: float = 0.0

    def reduce(self, qty: float, part: float) -> None:
        """Close `qty` units (the fraction `part` of the lot); the rest stays open."""
        self.size -= qty
        self.entry_fee -= self.entry_fee * part
        self.funding -= self.funding * part


def intent_units(
    intent: OrderIntent, config: ExecutionConfig, *, cash: float, price: float, fee: float
) -> float:
    """Units an opening order gets; no size given means the config's sizing, as the simulator."""
    affordable = cash / (price * (1 + fee))
    if intent.size is not None:
        return min(affordable, intent.size)
    if intent.fraction is not None:
        return min(affordable, cash * intent.fraction / (price * (1 + fee)))
    if intent.amount is not None:
        return min(affordable, intent.amount / (price * (1 + fee)))
    return sized_units(config, cash=cash, price=price, fee=fee)


class Book:
    def __init__(
        self, candles: CandleArrays, config: EventConfig, side: PositionSide = "long"
    ) -> None:
        config.validate()
        self.cfg, self.x = config, config.execution
        self.open: list[float] = candles.open.tolist()
        self.high: list[float] = candles.high.tolist()
        self.low: list[float] = candles.low.tolist()
        self.close: list[float] = candles.close.tolist()
        self.days: list[int] = candles.time.astype("datetime64[D]").astype("int64").tolist()
        self.side = side
        self.sign = 1.0 if side == "long" else -1.0
        self.open_side: Side = "buy" if side == "long" else "sell"
        self.close_side: Side = "sell" if side == "long" else "buy"
        self.cash = self.x.cash
        self.lots: list[OpenLot] = []
        self.resting: list[OrderIntent] = []
        self.pending: list[OrderIntent] = []
        self.closed: list[tuple[int, SimTrade]] = []
        self.trades_per_day: dict[int, int] = {}
        self.halted_at: int | None = None
        self.rejected: list[str] = []
        self.seq = 0
        self.position_key: tuple[tuple[int, float], ...] = ()
        self.cached_position = Position()
        self.stops = StopRules.of(self.x, side)
        # Whether open lots are checked every bar even without orders (stops, liquidation).
        self.watch_lots = self.stops.active
        self.funding_paid = 0.0

    # -- the account as strategies see it ---------------------------------------------
    @property
    def held(self) -> float:
        return sum(lot.size for lot in self.lots)

    def position(self) -> Position:
        """The lots held, sizes positive whichever the side."""
        key = tuple((lot.seq, lot.size) for lot in self.lots)
        if key != self.position_key:
            self.position_key = key
            lots = tuple(Lot(lot.tag, lot.size, lot.entry_price) for lot in self.lots)
            self.cached_position = Position.of(lots)
        return self.cached_position

    def equity(self, bar: int) -> float:
        if len(self.lots) == 1:  # the simulator's `cash_left + units * close`, exactly
            return self.cash + self.sign * self.lots[0].size * self.close[bar]
        return self.cash + self.sign * self.held * self.close[bar]

    def balance(self, equity: float) -> Balance:
        return Balance(self.cash, equity)

    # -- orders ---------------------------------------------------------------------------
    def submit(self, intents: tuple[OrderIntent, ...]) -> None:
        for intent in intents:
            if intent.action == "cancel":
                self.resting = [o for o in self.resting if o.tag != intent.tag]
            elif intent.type == "limit":
                self.resting.append(intent)
            else:
                self.pending.append(intent)

    def stop_out(self) -> None:
        """The max-drawdown stop: cancel everything and close all at the next open."""
        self.resting = []
        self.pending = [OrderIntent(self.close_side, reason="max_drawdown")]

    # -- one bar ----------------------------------------------------------------------------
    def run_bar(self, bar: int) -> None:
        if not (self.pending or self.resting or (self.watch_lots and self.lots)):
            return
        pending, self.pending = self.pending, []
        for intent in sorted(pending, key=lambda o: o.side != self.close_side):
            if self.halted_at is not None:
                break
            price = self._slipped(self.open[bar], intent.side)
            if intent.side == self.close_side:
                self._close(intent, bar, price, self.cfg.taker)
            else:
                self._open(intent, bar, price, self.cfg.taker)
        self._limits(bar, self.open_side)
        if self.watch_lots:
            for lot in list(self.lots):
                self._check_exits(lot, bar)
        self._limits(bar, self.close_side)

    def _slipped(self, price: float, side: Side) -> float:
        """A market fill: buys pay the slippage above the price, sells get it below."""
        return price * (1 + self.x.slippage) if side == "buy" else price * (1 - self.x.slippage)

    def _limits(self, bar: int, side: Side) -> None:
        for order in [o for o in self.resting if o.side == side]:
            limit = order.limit_price
            assert limit is not None
            if side == "buy" and self.low[bar] <= limit:
                price = min(self.open[bar], limit)
            elif side == "sell" and self.high[bar] >= limit:
                price = max(self.open[bar], limit)
            else:
                continue
            try:
                self.resting.remove(order)
            except ValueError:  # dropped in this loop: an earlier fill closed its lot
                continue
            if side == self.close_side:
                self._close(order, bar, price, self.cfg.maker)
            else:
                self._open(order, bar, price, self.cfg.maker)

    def _open(self, intent: OrderIntent, bar: int, price: float, fee: float) -> None:
        cap = self.x.max_trades_per_day
        day = self.days[bar]
        if self.halted_at is not None:
            return
        if cap is not None and self.trades_per_day.get(day, 0) >= cap:
            self.rejected.append(f"bar {bar}: {intent.side} {intent.tag!r} over max_trades_per_day")
            return
        units = self._units(intent, price, fee)
        if not units > 0:
            self.rejected.append(f"bar {bar}: {intent.side} {intent.tag!r} with no cash to spend")
            return
        self.trades_per_day[day] = self.trades_per_day.get(day, 0) + 1
        entry_fee = units * price * fee
        self.cash = self.cash - self.sign * units * price - entry_fee
        self.lots.append(self._new_lot(intent.tag, bar, price, units, entry_fee))
        self.seq += 1

    def _new_lot(self, tag: str, bar: int, price: float, units: float, fee: float) -> OpenLot:
        return OpenLot(self.seq, tag, bar, price, units, fee, price)

    def _units(self, intent: OrderIntent, price: float, fee: float) -> float:
        return intent_units(intent, self.x, cash=self.cash, price=price, fee=fee)

    def _close(self, intent: OrderIntent, bar: int, price: float, fee: float) -> None:
        targets = [lot for lot in self.lots if intent.lot is None or lot.tag == intent.lot]
        held = sum(lot.size for lot in targets)
        if not targets or held <= 0:
            self.rejected.append(f"bar {bar}: {intent.side} {intent.tag!r} with nothing held")
            return
        wanted = held
        if intent.size is not None:
            wanted = intent.size
        elif intent.fraction is not None:
            wanted = held * intent.fraction
        elif intent.amount is not None:
            wanted = intent.amount / self._reference(intent, bar)
        sell_all = wanted >= held * (1 - DUST)
        for lot in targets:
            if wanted <= 0:
                break
            qty = lot.size if sell_all else min(wanted, lot.size)
            wanted -= qty
            self._book_exit(lot, qty, bar, price, fee, intent.reason)
        if self.halted_at is None and intent.reason == "max_drawdown":
            self.halted_at = bar
            self.resting, self.pending = [], []

    def _reference(self, intent: OrderIntent, bar: int) -> float:
        """The price a quote amount to sell becomes units at: the limit, else the close of
        the bar that decided it, as a bot's risk layer sizes at the mark (nobody knows the
        fill's price when the order goes out)."""
        if intent.limit_price is not None:
            return intent.limit_price
        return self.close[bar - 1] if bar > 0 else self.open[bar]

    def _book_exit(
        self, lot: OpenLot, qty: float, bar: int, price: float, fee: float, reason: ExitReason
    ) -> None:
        whole = qty >= lot.size
        part = 1.0 if whole else qty / lot.size
        part_fee = lot.entry_fee if whole else lot.entry_fee * part
        part_funding = lot.funding if whole else lot.funding * part
        exit_fee = qty * price * fee
        proceeds = self.sign * qty * price - exit_fee
        pnl = proceeds - self.sign * qty * lot.entry_price - part_fee - part_funding
        self.cash = self.cash + proceeds
        fees = part_fee + exit_fee
        trade = SimTrade(
            lot.entry_index, bar, lot.entry_price, price, qty, fees, pnl, reason, self.side
        )
        self.closed.append((lot.seq, trade))
        if whole:
            self._retire(lot)
        else:
            lot.reduce(qty, part)

    def _retire(self, lot: OpenLot) -> None:
        """A lot is gone: so are the resting closing orders aimed at its tag alone."""
        self.lots.remove(lot)
        if not any(other.tag == lot.tag for other in self.lots):
            self.resting = [o for o in self.resting if o.side == self.open_side or o.lot != lot.tag]

    def _check_exits(self, lot: OpenLot, bar: int) -> None:
        high, low = self.high[bar], self.low[bar]
        found = self.stops.exit(lot.entry_price, lot.best, self.open[bar], high, low)
        lot.best = self.stops.best_after(lot.best, high, low)
        if found is None:
            return
        price, reason = found
        exit_price = self._slipped(price, self.close_side)
        self._book_exit(lot, lot.size, bar, exit_price, self.cfg.taker, reason)

    # -- the end ----------------------------------------------------------------------------
    def trades(self) -> list[SimTrade]:
        """Closed parts and still-open lots, by lot (entry order), then by exit."""
        last = self.close[-1] if self.close else math.nan
        rows = list(self.closed)
        for lot in self.lots:
            value = self.sign * lot.size * last - self.sign * lot.size * lot.entry_price
            pnl = value - lot.entry_fee - lot.funding
            trade = SimTrade(
                lot.entry_index,
                None,
                lot.entry_price,
                None,
                lot.size,
                lot.entry_fee,
                pnl,
                "open",
                self.side,
            )
            rows.append((lot.seq, trade))
        rows.sort(key=lambda row: row[0])  # stable: a lot's parts stay in exit order
        return [trade for _, trade in rows]
