"""Performance figures of a simulated run.

Crypto trades around the clock, so annualisation uses calendar time: a year is 365.25 days
and the number of bars per year follows from the median bar spacing. Ratios with a zero
denominator are None rather than infinity, so they serialise to JSON.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, TypedDict

import numpy as np
import numpy.typing as npt

from apps.engine.candles import CandleArrays, FloatArray
from apps.engine.events import EventResult
from apps.engine.simulator import SimResult

SECONDS_PER_YEAR = 365.25 * 24 * 3600
# Bars per block when a check walks a long series in pieces (64k bars, half a megabyte).
_BLOCK = 1 << 16


@dataclass(frozen=True)
class Metrics:
    initial_equity: float
    final_equity: float
    total_return: float
    annualized_return: float | None
    buy_and_hold_return: float
    max_drawdown: float
    max_drawdown_duration_bars: int
    max_drawdown_duration_days: float
    sharpe: float | None
    sortino: float | None
    calmar: float | None
    exposure: float
    trade_count: int
    closed_trades: int
    win_rate: float | None
    profit_factor: float | None
    average_trade: float | None
    average_trade_return: float | None
    best_trade: float | None
    worst_trade: float | None
    fees_paid: float
    # Futures only: net funding paid (negative when received) and positions liquidated.
    funding_paid: float = 0.0
    liquidations: int = 0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _finite_or_none(value: float) -> float | None:
    return value if math.isfinite(value) else None


def drawdown_curve(equity: FloatArray) -> FloatArray:
    """Fraction below the running peak at each bar (0 at a new high)."""
    out: FloatArray = np.maximum.accumulate(equity)
    np.divide(equity, out, out=out)  # in place: one curve allocated, not three
    np.subtract(1.0, out, out=out)
    return out


def _longest_drawdown(drawdown: FloatArray) -> tuple[int, int]:
    """(start, length) in bars of the longest stretch below a peak."""
    underwater = np.zeros(len(drawdown) + 2, dtype=np.bool_)
    np.greater(drawdown, 0, out=underwater[1:-1])
    edges = np.flatnonzero(underwater[1:] != underwater[:-1])
    if len(edges) == 0:
        return 0, 0
    starts, ends = edges[::2], edges[1::2]
    longest = int(np.argmax(ends - starts))
    return int(starts[longest]), int(ends[longest] - starts[longest])


def _bar_seconds(candles: CandleArrays) -> float:
    """The median spacing of the candles' whole-second open times."""
    if len(candles) < 2:
        return 0.0
    times, second = candles.time, np.timedelta64(1, "s")
    # Evenly spaced whole-second times, the usual case, need no conversion and no sort.
    step = times[1] - times[0]
    whole_seconds = times[0] == times[0].astype("datetime64[s]") and step % second == 0
    if whole_seconds and _evenly_spaced(times.view(np.int64)):
        return float(step / second)
    seconds = times.astype("datetime64[s]").view(np.int64)
    return float(np.median(np.diff(seconds)))


def _evenly_spaced(ticks: npt.NDArray[np.int64]) -> bool:
    """Whether every gap equals the first, checked in blocks: no million-row temporaries
    (and integer ticks, which numpy compares far faster than datetimes)."""
    step = ticks[1] - ticks[0]
    for begin in range(0, len(ticks) - 1, _BLOCK):
        block = ticks[begin : begin + _BLOCK + 1]
        if not bool(np.all(block[1:] - block[:-1] == step)):
            return False
    return True


def _bar_returns(equity: FloatArray) -> FloatArray:
    """Each bar's return on the equity it started from; bars that started with none (a
    futures account a liquidation has emptied) have no return and are left out."""
    before = equity[:-1]
    returns: FloatArray = np.diff(equity)
    if len(before) and float(before.min()) > 0:
        return np.divide(returns, before, out=returns)
    funded = before > 0
    out: FloatArray = returns[funded] / before[funded]
    return out


def _risk_ratios(equity: FloatArray, bars_per_year: float) -> tuple[float | None, float | None]:
    returns = _bar_returns(equity)
    if len(returns) < 2:
        return None, None
    scale = math.sqrt(bars_per_year)
    # np.mean and np.std(ddof=1) written out (the same sums, so the same bits), with one
    # scratch curve shared by the deviation and the downside: every fresh million-bar
    # temporary costs page faults, which outweigh the arithmetic.
    mean = float(np.mean(returns))
    scratch = np.subtract(returns, mean)
    np.square(scratch, out=scratch)
    std = math.sqrt(float(np.sum(scratch)) / (len(returns) - 1))
    np.minimum(returns, 0.0, out=scratch)
    np.square(scratch, out=scratch)
    downside = math.sqrt(float(np.mean(scratch)))
    sharpe = mean / std * scale if std > 0 else None
    sortino = mean / downside * scale if downside > 0 else None
    return sharpe, sortino


class TradeStatistics(TypedDict):
    closed_trades: int
    win_rate: float | None
    profit_factor: float | None
    average_trade: float | None
    average_trade_return: float | None
    best_trade: float | None
    worst_trade: float | None


def trade_statistics(pnls: FloatArray, costs: FloatArray) -> TradeStatistics:
    """Win rate, profit factor and trade averages of closed trades (P&L and entry cost)."""
    closed = len(pnls)
    wins, losses = pnls[pnls > 0], pnls[pnls < 0]
    return {
        "closed_trades": closed,
        "win_rate": len(wins) / closed if closed else None,
        "profit_factor": float(wins.sum() / -losses.sum()) if len(losses) else None,
        "average_trade": float(pnls.mean()) if closed else None,
        "average_trade_return": float(np.mean(pnls / costs)) if closed else None,
        "best_trade": float(pnls.max()) if closed else None,
        "worst_trade": float(pnls.min()) if closed else None,
    }


def compute_metrics(
    candles: CandleArrays, result: SimResult, initial: float, drawdown: FloatArray | None = None
) -> Metrics:
    equity = result.equity
    n = len(equity)
    bar_seconds = _bar_seconds(candles)
    years = bar_seconds * (n - 1) / SECONDS_PER_YEAR if n > 1 else 0.0
    total = result.final_equity / initial - 1
    annualized = None
    if years > 0 and result.final_equity > 0:
        annualized = (result.final_equity / initial) ** (1 / years) - 1
    drawdown = drawdown_curve(equity) if drawdown is None else drawdown
    max_dd = float(np.max(drawdown)) if n else 0.0
    _, dd_bars = _longest_drawdown(drawdown)
    sharpe, sortino = _risk_ratios(equity, SECONDS_PER_YEAR / bar_seconds if bar_seconds else 0.0)
    pnls, costs = result.closed_pnl_and_cost()
    held = result.bars_held()
    return Metrics(
        initial_equity=initial,
        final_equity=result.final_equity,
        total_return=total,
        annualized_return=_finite_or_none(annualized) if annualized is not None else None,
        buy_and_hold_return=float(candles.close[-1] / candles.close[0] - 1),
        max_drawdown=max_dd,
        max_drawdown_duration_bars=dd_bars,
        max_drawdown_duration_days=dd_bars * bar_seconds / 86400,
        sharpe=sharpe,
        sortino=sortino,
        calmar=_finite_or_none(annualized / max_dd) if annualized and max_dd > 0 else None,
        exposure=held / n if n else 0.0,
        trade_count=len(pnls) + (1 if result.has_open_trade() else 0),
        fees_paid=result.fees_paid,
        **trade_statistics(pnls, costs),
        **_futures_figures(result),
    )


class FuturesFigures(TypedDict):
    funding_paid: float
    liquidations: int


def _futures_figures(result: SimResult) -> FuturesFigures:
    if isinstance(result, EventResult):
        return {"funding_paid": result.funding_paid, "liquidations": result.liquidations}
    return {"funding_paid": 0.0, "liquidations": 0}
