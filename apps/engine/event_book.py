"""The event path's account: cash, lots, resting and pending orders, and their fills.

The fill rules are simulator.py's, applied one bar at a time (DESIGN.md §3):
- market orders decided at bar t's close fill at bar t+1's open, buys at
  `open * (1 + slippage)`, sells at `open * (1 - slippage)`, with the taker fee;
- limit orders rest from the bar after they are placed; a buy fills when a bar's low
  touches the limit, a sell when its high does, at the limit, or at the open when the bar
  opens through it; maker fee, no slippage;
- within a bar: market orders at the open (sells, then buys), then resting limit buys, then
  stops on every lot (stop-loss before take-profit, trailing from earlier highs only, a gap
  fills at the open), then resting limit sells;
- a buy never spends more cash than held, a sell never sells more than held.

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
from apps.engine.strategies.base import Lot, OrderIntent, Position

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
    trail_high: float


class Book:
    def __init__(self, candles: CandleArrays, config: EventConfig) -> None:
        config.validate()
        self.cfg, self.x = config, config.execution
        self.open: list[float] = candles.open.tolist()
        self.high: list[float] = candles.high.tolist()
        self.low: list[float] = candles.low.tolist()
        self.close: list[float] = candles.close.tolist()
        self.days: list[int] = candles.time.astype("datetime64[D]").astype("int64").tolist()
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
        self.has_stops = any(
            v is not None for v in (self.x.stop_loss, self.x.take_profit, self.x.trailing_stop)
        )

    # -- the account as strategies see it ---------------------------------------------
    @property
    def held(self) -> float:
        return sum(lot.size for lot in self.lots)

    def position(self) -> Position:
        key = tuple((lot.seq, lot.size) for lot in self.lots)
        if key != self.position_key:
            self.position_key = key
            lots = tuple(Lot(lot.tag, lot.size, lot.entry_price) for lot in self.lots)
            self.cached_position = Position.of(lots)
        return self.cached_position

    def equity(self, bar: int) -> float:
        if len(self.lots) == 1:  # the simulator's `cash_left + units * close`, exactly
            return self.cash + self.lots[0].size * self.close[bar]
        return self.cash + self.held * self.close[bar]

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
        """The max-drawdown stop: cancel everything and sell all at the next open."""
        self.resting, self.pending = [], [OrderIntent("sell", reason="max_drawdown")]

    # -- one bar ----------------------------------------------------------------------------
    def run_bar(self, bar: int) -> None:
        if not (self.pending or self.resting or (self.has_stops and self.lots)):
            return
        pending, self.pending = self.pending, []
        for intent in sorted(pending, key=lambda o: o.side != "sell"):
            if self.halted_at is not None:
                break
            if intent.side == "sell":
                price = self.open[bar] * (1 - self.x.slippage)
                self._sell(intent, bar, price, self.cfg.taker)
            else:
                self._buy(intent, bar, self.open[bar] * (1 + self.x.slippage), self.cfg.taker)
        self._limits(bar, "buy")
        if self.has_stops:
            for lot in list(self.lots):
                self._check_stops(lot, bar)
        self._limits(bar, "sell")

    def _limits(self, bar: int, side: str) -> None:
        for order in [o for o in self.resting if o.side == side]:
            limit = order.limit_price
            assert limit is not None
            if side == "buy" and self.low[bar] <= limit:
                self.resting.remove(order)
                self._buy(order, bar, min(self.open[bar], limit), self.cfg.maker)
            elif side == "sell" and self.high[bar] >= limit:
                self.resting.remove(order)
                self._sell(order, bar, max(self.open[bar], limit), self.cfg.maker)

    def _buy(self, intent: OrderIntent, bar: int, price: float, fee: float) -> None:
        cap = self.x.max_trades_per_day
        day = self.days[bar]
        if self.halted_at is not None:
            return
        if cap is not None and self.trades_per_day.get(day, 0) >= cap:
            self.rejected.append(f"bar {bar}: buy {intent.tag!r} over max_trades_per_day")
            return
        units = self._units(intent, price, fee)
        if not units > 0:
            self.rejected.append(f"bar {bar}: buy {intent.tag!r} with no cash to spend")
            return
        self.trades_per_day[day] = self.trades_per_day.get(day, 0) + 1
        entry_fee = units * price * fee
        self.cash = self.cash - units * price - entry_fee
        self.lots.append(OpenLot(self.seq, intent.tag, bar, price, units, entry_fee, price))
        self.seq += 1

    def _units(self, intent: OrderIntent, price: float, fee: float) -> float:
        """Units a buy gets; no size given means the config's sizing, as the simulator."""
        x, cash = self.x, self.cash
        affordable = cash / (price * (1 + fee))
        if intent.size is not None:
            return min(affordable, intent.size)
        if intent.fraction is not None:
            return min(affordable, cash * intent.fraction / (price * (1 + fee)))
        if intent.amount is not None:
            return min(affordable, intent.amount / (price * (1 + fee)))
        return sized_units(x, cash=cash, price=price, fee=fee)

    def _sell(self, intent: OrderIntent, bar: int, price: float, fee: float) -> None:
        targets = [lot for lot in self.lots if intent.lot is None or lot.tag == intent.lot]
        held = sum(lot.size for lot in targets)
        if not targets or held <= 0:
            self.rejected.append(f"bar {bar}: sell {intent.tag!r} with nothing held")
            return
        wanted = held
        if intent.size is not None:
            wanted = intent.size
        elif intent.fraction is not None:
            wanted = held * intent.fraction
        elif intent.amount is not None:
            wanted = intent.amount / price
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

    def _book_exit(
        self, lot: OpenLot, qty: float, bar: int, price: float, fee: float, reason: ExitReason
    ) -> None:
        whole = qty >= lot.size
        part_fee = lot.entry_fee if whole else lot.entry_fee * (qty / lot.size)
        exit_fee = qty * price * fee
        proceeds = qty * price - exit_fee
        pnl = proceeds - qty * lot.entry_price - part_fee
        self.cash = self.cash + proceeds
        trade = SimTrade(
            lot.entry_index, bar, lot.entry_price, price, qty, part_fee + exit_fee, pnl, reason
        )
        self.closed.append((lot.seq, trade))
        if whole:
            self.lots.remove(lot)
            if not any(other.tag == lot.tag for other in self.lots):
                self.resting = [o for o in self.resting if o.side == "buy" or o.lot != lot.tag]
        else:
            lot.size -= qty
            lot.entry_fee -= part_fee

    def _check_stops(self, lot: OpenLot, bar: int) -> None:
        """simulator.py's `_stop_exit` for one lot and one bar."""
        x = self.x
        opened, high, low = self.open[bar], self.high[bar], self.low[bar]
        stop = -math.inf
        sl_level = lot.entry_price * (1 - x.stop_loss) if x.stop_loss is not None else None
        if sl_level is not None:
            stop = sl_level
        trailing = None
        if x.trailing_stop is not None:
            trailing = lot.trail_high * (1 - x.trailing_stop)
            stop = max(stop, trailing)
        tp_level = lot.entry_price * (1 + x.take_profit) if x.take_profit is not None else None
        lot.trail_high = max(lot.trail_high, high)
        reason: ExitReason
        if low <= stop:
            price = min(opened, stop)
            is_trailing = (
                trailing is not None
                and stop == trailing
                and (sl_level is None or trailing > sl_level)
            )
            reason = "trailing_stop" if is_trailing else "stop_loss"
        elif tp_level is not None and high >= tp_level:
            price, reason = max(opened, tp_level), "take_profit"
        else:
            return
        self._book_exit(lot, lot.size, bar, price * (1 - x.slippage), self.cfg.taker, reason)

    # -- the end ----------------------------------------------------------------------------
    def trades(self) -> list[SimTrade]:
        """Closed parts and still-open lots, by lot (entry order), then by exit."""
        last = self.close[-1] if self.close else math.nan
        rows = list(self.closed)
        for lot in self.lots:
            pnl = lot.size * last - lot.size * lot.entry_price - lot.entry_fee
            rows.append(
                (
                    lot.seq,
                    SimTrade(
                        lot.entry_index,
                        None,
                        lot.entry_price,
                        None,
                        lot.size,
                        lot.entry_fee,
                        pnl,
                        "open",
                    ),
                )
            )
        rows.sort(key=lambda row: row[0])  # stable: a lot's parts stay in exit order
        return [trade for _, trade in rows]
