"""The vectorised fill model for long-only spot backtests.

Rules (shared with paper trading, DESIGN.md §3):
- a decision on bar t's close fills at bar t+1's open; a decision on the last bar never fills;
- buys pay `open * (1 + slippage)` plus the fee on the notional, sells receive
  `open * (1 - slippage)` minus the fee;
- stops are checked intrabar against high/low from the fill bar on, pessimistically: the
  stop-loss before the take-profit, a trailing stop only from highs of earlier bars, and a
  gap through a level fills at the open (stops.py holds these rules for every path);
- a position still open at the end is valued at the last close and has no exit.

The loop runs over trades, not bars: each trade's exit is found with array searches over
its own bars, so the cost grows with the number of trades.
"""

from __future__ import annotations

import functools
import itertools
import math
from dataclasses import dataclass
from typing import Literal, NamedTuple

import numpy as np
import numpy.typing as npt

from apps.engine.candles import BoolArray, CandleArrays, FloatArray
from apps.engine.stops import PositionSide, StopRules

Sizing = Literal["all_in", "percent", "fixed", "risk"]
ExitReason = Literal[
    "signal", "stop_loss", "take_profit", "trailing_stop", "max_drawdown", "liquidation", "open"
]


# Bars per block when a curve is built in pieces (64k bars, half a megabyte of floats).
_BLOCK = 1 << 16


class SimulationConfigError(ValueError):
    """An execution setting is out of range; the message names it."""


@dataclass(frozen=True)
class ExecutionConfig:
    cash: float = 10_000.0
    fee: float = 0.0
    slippage: float = 0.0
    stop_loss: float | None = None
    take_profit: float | None = None
    trailing_stop: float | None = None
    sizing: Sizing = "all_in"
    # percent/risk: a fraction of equity (0.02 = 2 %); fixed: a quote amount per trade.
    size_value: float = 1.0
    max_trades_per_day: int | None = None
    max_drawdown_stop: float | None = None

    def validate(self) -> None:
        checks: list[tuple[str, bool, str]] = [
            ("cash", self.cash > 0, "must be positive"),
            ("fee", 0 <= self.fee < 0.1, "must be a fraction between 0 and 0.1"),
            ("slippage", 0 <= self.slippage < 0.1, "must be a fraction between 0 and 0.1"),
            ("size_value", self.size_value > 0, "must be positive"),
        ]
        for name in ("stop_loss", "take_profit", "trailing_stop", "max_drawdown_stop"):
            value = getattr(self, name)
            checks.append(
                (name, value is None or 0 < value < 1, "must be a fraction between 0 and 1")
            )
        checks.append(
            (
                "size_value",
                self.sizing not in ("percent", "risk") or self.size_value <= 1,
                "must be a fraction of equity of at most 1 for percent or risk sizing",
            )
        )
        checks.append(
            (
                "stop_loss",
                self.sizing != "risk" or self.stop_loss is not None,
                "is required when sizing by risk at the stop distance",
            )
        )
        checks.append(
            (
                "max_trades_per_day",
                self.max_trades_per_day is None or self.max_trades_per_day > 0,
                "must be a positive integer",
            )
        )
        for name, ok, message in checks:
            if not ok:
                raise SimulationConfigError(f"{name} {message}")


def sized_units(config: ExecutionConfig, *, cash: float, price: float, fee: float) -> float:
    """Units a buy at `price` gets under the config's sizing, never more than cash affords.

    Shared by the vectorised and event paths, so both size every entry identically.
    """
    affordable = cash / (price * (1 + fee))
    if config.sizing == "all_in":
        return affordable
    if config.sizing == "percent":
        return min(affordable, cash * config.size_value / (price * (1 + fee)))
    if config.sizing == "fixed":
        return min(affordable, config.size_value / (price * (1 + fee)))
    assert config.stop_loss is not None  # validate() requires it for risk sizing
    return min(affordable, cash * config.size_value / (price * config.stop_loss))


class SimTrade(NamedTuple):
    """One round trip; a NamedTuple because runs build tens of thousands of them."""

    entry_index: int
    exit_index: int | None
    entry_price: float
    exit_price: float | None
    size: float
    fee: float
    pnl: float
    exit_reason: ExitReason
    # Futures may be short; spot and the vectorised path are always long.
    side: PositionSide = "long"


@dataclass
class SimResult:
    trades: list[SimTrade]
    equity: FloatArray
    final_equity: float
    halted_at: int | None = None
    fees_paid: float = 0.0

    def closed_pnl_and_cost(self) -> tuple[FloatArray, FloatArray]:
        """P&L and entry notional of each closed trade, as arrays."""
        closed = [t for t in self.trades if t.exit_index is not None]
        return np.array([t.pnl for t in closed]), np.array([t.size * t.entry_price for t in closed])

    def has_open_trade(self) -> bool:
        return any(t.exit_index is None for t in self.trades)

    def bars_held(self) -> int:
        n = len(self.equity)
        return sum(
            (t.exit_index if t.exit_index is not None else n) - t.entry_index for t in self.trades
        )


@dataclass(frozen=True)
class TradeColumns:
    """Signal-only round trips by column; the last one may still be open (no exit)."""

    entry_index: npt.NDArray[np.int64]
    exit_index: npt.NDArray[np.int64]
    entry_price: FloatArray
    exit_price: FloatArray
    size: FloatArray
    fee: FloatArray
    pnl: FloatArray

    def rows(self) -> list[SimTrade]:
        exits, exit_prices = self.exit_index.tolist(), self.exit_price.tolist()
        columns = zip(
            self.entry_index.tolist(),
            self.entry_price.tolist(),
            self.size.tolist(),
            self.fee.tolist(),
            self.pnl.tolist(),
            strict=True,
        )
        return [
            SimTrade(entry, exits[k], price, exit_prices[k], size, fee, pnl, "signal")
            if k < len(exits)
            else SimTrade(entry, None, price, None, size, fee, pnl, "open")
            for k, (entry, price, size, fee, pnl) in enumerate(columns)
        ]


class LazySimResult(SimResult):
    """A result whose trade rows are built from columns only when read."""

    def __init__(
        self, columns: TradeColumns, equity: FloatArray, final: float, fees: float
    ) -> None:
        self.columns = columns
        self._rows: list[SimTrade] | None = None
        self.equity, self.final_equity, self.halted_at, self.fees_paid = equity, final, None, fees

    @property
    def trades(self) -> list[SimTrade]:  # type: ignore[override]
        if self._rows is None:
            self._rows = self.columns.rows()
        return self._rows

    def closed_pnl_and_cost(self) -> tuple[FloatArray, FloatArray]:
        c, closed = self.columns, len(self.columns.exit_index)
        return c.pnl[:closed], c.size[:closed] * c.entry_price[:closed]

    def has_open_trade(self) -> bool:
        return len(self.columns.entry_index) > len(self.columns.exit_index)

    def bars_held(self) -> int:
        c = self.columns
        exits = np.concatenate(
            (c.exit_index, np.full(len(c.entry_index) - len(c.exit_index), len(self.equity)))
        )
        return int(np.sum(exits - c.entry_index))


@dataclass
class _Exit:
    bar: int
    price: float
    reason: ExitReason


def _next_index(sorted_indices: np.ndarray, start: int) -> int | None:
    pos = int(np.searchsorted(sorted_indices, start))
    return int(sorted_indices[pos]) if pos < len(sorted_indices) else None


class _Simulation:
    def __init__(
        self, candles: CandleArrays, entries: BoolArray, exits: BoolArray, config: ExecutionConfig
    ) -> None:
        config.validate()
        if len(entries) != len(candles) or len(exits) != len(candles):
            raise SimulationConfigError("signals must have one value per candle")
        self.c = candles
        self.cfg = config
        self.stop_rules = StopRules.of(config)
        self.n = len(candles)
        self.entries, self.exits = entries, exits
        self.entry_bars = np.flatnonzero(entries)
        self.exit_bars = np.flatnonzero(exits)
        self.cash = config.cash
        self.peak = config.cash
        self.equity = np.empty(0)  # each run builds the curve
        self.trades: list[SimTrade] = []
        self.trades_per_day: dict[np.datetime64, int] = {}
        self.halted_at: int | None = None

    def run(self) -> SimResult:
        pairs = self._signal_only_pairs()
        if pairs is None:
            return self.run_per_trade()
        columns = self._book_pairs(*pairs)
        fees = float(sum(columns.fee.tolist()))  # left to right, as the per-trade loop adds
        return LazySimResult(columns, self.equity, float(self.equity[-1]), fees)

    def run_per_trade(self) -> SimResult:
        self.equity = np.full(self.n, np.nan)
        flat_from = 0
        while self.halted_at is None:
            decision = self._next_entry_decision(flat_from)
            if decision is None:
                break
            fill = decision + 1
            self.equity[flat_from:fill] = self.cash
            flat_from = self._book_trade(fill)
        self.equity[flat_from:] = self.cash
        fees = sum(trade.fee for trade in self.trades)
        return SimResult(self.trades, self.equity, float(self.equity[-1]), self.halted_at, fees)

    def _signal_only_pairs(self) -> tuple[np.ndarray, np.ndarray] | None:
        """Entry and exit fill bars when only signals can end a trade, else None.

        The position after each decision bar is the last signal seen (entries while long
        and exits while flat change nothing), which a forward fill over the signal bars
        gives at once. A bar with both signals depends on the state, so it takes the loop.
        """
        cfg = self.cfg
        stops = (cfg.stop_loss, cfg.take_profit, cfg.trailing_stop, cfg.max_drawdown_stop)
        if any(v is not None for v in stops) or cfg.max_trades_per_day is not None:
            return None
        if bool(np.any(self.entries & self.exits)):
            return None
        bars = np.concatenate((self.entry_bars, self.exit_bars))
        order = np.argsort(bars, kind="stable")
        bars = bars[order]
        is_entry = order < len(self.entry_bars)
        changed = is_entry != np.concatenate(([False], is_entry[:-1]))
        decisions, entering = bars[changed], is_entry[changed]
        entry_fills = decisions[entering] + 1
        exit_fills = decisions[~entering] + 1
        entry_fills = entry_fills[entry_fills < self.n]
        exit_fills = exit_fills[: len(entry_fills)]
        return entry_fills, exit_fills[exit_fills < self.n]

    def _book_pairs(self, entry_fills: np.ndarray, exit_fills: np.ndarray) -> TradeColumns:
        """Book trades with the same arithmetic as `_book_trade`, by column.

        Only the cash carried from trade to trade is sequential; everything else is
        element-wise array arithmetic in the same order of operations as the loop.
        """
        fee, slippage = self.cfg.fee, self.cfg.slippage
        entry_price = self.c.open[entry_fills] * (1 + slippage)
        exit_price = self.c.open[exit_fills] * (1 - slippage)
        size, cash_before = self._carry_cash(entry_price.tolist(), exit_price.tolist())
        closed = len(exit_fills)
        entry_fee = size * entry_price * fee
        cash_left = cash_before - size * entry_price - entry_fee
        exit_fee = size[:closed] * exit_price * fee
        proceeds = size[:closed] * exit_price - exit_fee
        open_value = size[closed:] * float(self.c.close[-1])
        pnl = np.concatenate(
            (
                proceeds - size[:closed] * entry_price[:closed] - entry_fee[:closed],
                open_value - size[closed:] * entry_price[closed:] - entry_fee[closed:],
            )
        )
        fees = np.concatenate((entry_fee[:closed] + exit_fee, entry_fee[closed:]))
        self._fill_equity(entry_fills, exit_fills, size, cash_left, cash_left[:closed] + proceeds)
        return TradeColumns(entry_fills, exit_fills, entry_price, exit_price, size, fees, pnl)

    def _carry_cash(
        self, entry_prices: list[float], exit_prices: list[float]
    ) -> tuple[FloatArray, FloatArray]:
        """Units bought and cash held before each entry: the one sequential part.

        Plain floats in a tight loop (tens of thousands of trades on a million bars), with
        exactly `_book_trade`'s arithmetic; all-in sizing inlines `sized_units`' expression.
        An entry after the last exit is still open and leaves the cash as it is.
        """
        cfg, cash = self.cfg, self.cash
        fee, all_in = cfg.fee, cfg.sizing == "all_in"
        units_list, cash_before = [], []
        for price, exit_price in itertools.zip_longest(entry_prices, exit_prices):
            units = (
                cash / (price * (1 + fee))
                if all_in
                else sized_units(cfg, cash=cash, price=price, fee=fee)
            )
            units_list.append(units)
            cash_before.append(cash)
            if exit_price is not None:
                cost, value = units * price, units * exit_price
                cash = (cash - cost - cost * fee) + (value - value * fee)
        self.cash = cash
        return np.array(units_list), np.array(cash_before)

    def _fill_equity(
        self,
        entry_fills: np.ndarray,
        exit_fills: np.ndarray,
        units: FloatArray,
        cash_left: FloatArray,
        cash_after: FloatArray,
    ) -> None:
        """Equity is a + b * close at each bar: a flat bar holds cash (b = 0), a held bar
        the cash left beside the position plus the units marked at the close."""
        starts = np.empty(1 + len(entry_fills) + len(exit_fills), dtype=np.int64)
        starts[0] = 0
        starts[1::2] = entry_fills
        starts[2::2] = exit_fills
        a, b = np.empty(len(starts)), np.zeros(len(starts))
        flat, held = slice(0, None, 2), slice(1, None, 2)
        a[flat] = np.concatenate(([self.cfg.cash], cash_after))[: len(a[flat])]
        a[held] = cash_left[: len(a[held])]
        b[held] = units[: len(b[held])]
        self.equity = _piecewise_affine(a, b, starts, self.c.close)

    @functools.cached_property
    def days(self) -> npt.NDArray[np.datetime64]:
        return self.c.time.astype("datetime64[D]")

    def _next_entry_decision(self, start: int) -> int | None:
        cap = self.cfg.max_trades_per_day
        while True:
            decision = _next_index(self.entry_bars, start)
            if decision is None or decision + 1 >= self.n:
                return None
            if cap is None or self.trades_per_day.get(self.days[decision + 1], 0) < cap:
                return decision
            start = decision + 1

    def _units_for(self, price: float) -> float:
        return sized_units(self.cfg, cash=self.cash, price=price, fee=self.cfg.fee)

    def _book_trade(self, fill: int) -> int:
        """Open at `fill`'s open, find the exit, book it; return the first bar closing flat."""
        day = self.days[fill]
        self.trades_per_day[day] = self.trades_per_day.get(day, 0) + 1
        entry_price = float(self.c.open[fill]) * (1 + self.cfg.slippage)
        units = self._units_for(entry_price)
        entry_fee = units * entry_price * self.cfg.fee
        cash_left = self.cash - units * entry_price - entry_fee
        exit_ = self._find_exit(fill, entry_price, units, cash_left)
        # Bars [fill, exit) close with the position; the exit bar closes flat.
        held = slice(fill, exit_.bar)
        self.equity[held] = cash_left + units * self.c.close[held]
        if exit_.reason == "open":
            value = units * float(self.c.close[-1])
            pnl = value - units * entry_price - entry_fee
            self.trades.append(
                SimTrade(fill, None, entry_price, None, units, entry_fee, pnl, "open")
            )
            return self.n
        exit_fee = units * exit_.price * self.cfg.fee
        proceeds = units * exit_.price - exit_fee
        self.cash = cash_left + proceeds
        pnl = proceeds - units * entry_price - entry_fee
        self.trades.append(
            SimTrade(
                fill,
                exit_.bar,
                entry_price,
                exit_.price,
                units,
                entry_fee + exit_fee,
                pnl,
                exit_.reason,
            )
        )
        self.equity[exit_.bar] = self.cash
        self.peak = max(self.peak, float(np.max(self.equity[fill : exit_.bar + 1])))
        if exit_.reason == "max_drawdown":
            self.halted_at = exit_.bar
        return exit_.bar

    def _find_exit(self, fill: int, entry_price: float, units: float, cash_left: float) -> _Exit:
        decision = _next_index(self.exit_bars, fill)
        # Bars whose close is inside the trade: a signal on bar d exits at d+1's open.
        end = decision if decision is not None and decision + 1 < self.n else self.n - 1
        candidates = [self._stop_exit(fill, end, entry_price)]
        candidates.append(self._drawdown_exit(fill, end, units, cash_left))
        if decision is not None and decision + 1 < self.n:
            price = float(self.c.open[decision + 1]) * (1 - self.cfg.slippage)
            candidates.append(_Exit(decision + 1, price, "signal"))
        found = [c for c in candidates if c is not None]
        if not found:
            return _Exit(self.n, math.nan, "open")
        # Earliest wins; within one bar, fills at the open come before intrabar stops.
        return min(found, key=lambda e: (e.bar, e.reason not in ("signal", "max_drawdown")))

    def _stop_exit(self, fill: int, end: int, entry_price: float) -> _Exit | None:
        if not self.stop_rules.active:
            return None
        bars = slice(fill, end + 1)
        c = self.c
        found = self.stop_rules.first_exit(entry_price, c.open[bars], c.high[bars], c.low[bars])
        if found is None:
            return None
        k, price, reason = found
        return _Exit(fill + k, price * (1 - self.cfg.slippage), reason)

    def _drawdown_exit(self, fill: int, end: int, units: float, cash_left: float) -> _Exit | None:
        limit = self.cfg.max_drawdown_stop
        if limit is None:
            return None
        marked = cash_left + units * self.c.close[fill : end + 1]
        peaks = np.maximum.accumulate(np.maximum(marked, self.peak))
        breach = marked <= peaks * (1 - limit)
        if not bool(breach.any()):
            return None
        decision = fill + int(np.argmax(breach))
        if decision + 1 >= self.n:
            return None
        return _Exit(
            decision + 1, float(self.c.open[decision + 1]) * (1 - self.cfg.slippage), "max_drawdown"
        )


def _piecewise_affine(
    a: FloatArray, b: FloatArray, starts: np.ndarray, x: FloatArray
) -> FloatArray:
    """a[k] + b[k] * x over the bars of segment k, the segments consecutive from `starts`.

    Built in blocks of about _BLOCK bars: spreading a and b over a million bars at once
    would make million-bar temporaries, whose page faults cost more than the arithmetic.
    """
    n = len(x)
    out = np.empty(n)
    lengths = np.diff(starts, append=n)
    cuts = np.searchsorted(starts, np.arange(_BLOCK, n, _BLOCK))
    edges = np.unique(np.concatenate(([0], cuts, [len(starts)])))
    for first, stop in itertools.pairwise(edges.tolist()):
        bars = slice(int(starts[first]), int(starts[stop]) if stop < len(starts) else n)
        np.multiply(np.repeat(b[first:stop], lengths[first:stop]), x[bars], out=out[bars])
        out[bars] += np.repeat(a[first:stop], lengths[first:stop])
    return out


def simulate(
    candles: CandleArrays, entries: BoolArray, exits: BoolArray, config: ExecutionConfig
) -> SimResult:
    """Run long-only entry/exit decisions through the fill model."""
    return _Simulation(candles, entries, exits, config).run()
