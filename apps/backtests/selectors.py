"""Reads for backtests, always scoped to the requesting user (404 for anyone else)."""

from __future__ import annotations

from typing import Any

import numpy as np
from django.db import connection
from django.db.models import Count, QuerySet
from django.shortcuts import get_object_or_404

from apps.backtests.models import (
    BacktestPair,
    BacktestResult,
    BacktestTask,
    BacktestTrade,
    Side,
    unpack_times,
    unpack_values,
)
from apps.engine.candles import CandleArrays
from apps.market.models import CandleSeries
from apps.market.selectors import candles_load
from apps.strategies.models import StrategyVersion

# Sort keys the trades table accepts (?sort=...), mapped to columns.
TRADE_SORTS = {
    "number": "number",
    "side": "side",
    "entry_time": "entry_time",
    "exit_time": "exit_time",
    "entry_price": "entry_price",
    "exit_price": "exit_price",
    "size": "size",
    "fee": "fee",
    "pnl": "pnl",
    "exit_reason": "exit_reason",
}
# Longer curves are thinned for the browser (min/max per bucket keeps the extremes).
CHART_MAX_POINTS = 5_000


def backtest_create_choices(*, user: Any) -> dict[str, Any]:
    """What the create form offers: the user's versions (every kind runs: conditions and
    templates through the engine, grid and DCA on its event path, scripts in the sandbox)
    and the stored series."""
    versions = (
        StrategyVersion.objects.filter(strategy__owner=user, strategy__archived_at__isnull=True)
        .select_related("strategy")
        .order_by("-strategy__updated_at", "strategy_id", "-number")
    )
    series = list(CandleSeries.objects.order_by("exchange", "symbol", "timeframe"))
    with connection.cursor() as cursor:
        # One index probe per series (the primary key is (series_id, open_time)).
        cursor.execute(
            "SELECT max(last) FROM (SELECT (SELECT open_time FROM market_candle c "
            "WHERE c.series_id = s.id ORDER BY open_time DESC LIMIT 1) AS last "
            "FROM market_candleseries s) AS lasts"
        )
        latest = cursor.fetchone()[0]
    return {
        "versions": versions,
        "series": series,
        "symbols": sorted({s.symbol for s in series}, key=lambda x: (x != "BTC/USDT", x)),
        "exchanges": sorted({s.exchange for s in series}),
        "latest": latest.date() if latest is not None else None,
    }


def backtest_task_list_for_user(*, user: Any) -> QuerySet[BacktestTask]:
    return (
        BacktestTask.objects.filter(owner=user)
        .annotate(pair_count=Count("pairs"))
        .defer("equity_times", "equity_values")
        .order_by("-created_at", "-id")
    )


def backtest_task_get_for_user(*, user: Any, task_id: int) -> BacktestTask:
    queryset = BacktestTask.objects.defer("equity_times", "equity_values")
    return get_object_or_404(queryset, pk=task_id, owner=user)


def backtest_task_with_pairs(*, task: BacktestTask) -> list[BacktestPair]:
    return list(
        task.pairs.select_related("strategy_version", "result")
        .defer("result__times", "result__equity", "result__drawdown")
        .order_by("position")
    )


def backtest_pair_get_for_user(*, user: Any, pair_id: int) -> BacktestPair:
    queryset = BacktestPair.objects.select_related("task", "strategy_version")
    return get_object_or_404(queryset, pk=pair_id, task__owner=user)


def backtest_pair_candles(*, pair: BacktestPair) -> CandleArrays:
    """The candles a pair replays: its series over its task's range."""
    task = pair.task
    return candles_load(
        exchange=task.exchange,
        symbol=pair.symbol,
        timeframe=pair.timeframe,
        start=task.start,
        end=task.end,
    )


def backtest_pair_result(*, pair: BacktestPair) -> BacktestResult | None:
    return BacktestResult.objects.filter(pair=pair).first()


def backtest_trade_list(
    *, pair: BacktestPair, sort: str = "number", descending: bool = False
) -> QuerySet[BacktestTrade]:
    column = TRADE_SORTS.get(sort, "number")
    order = f"-{column}" if descending else column
    return pair.trades.order_by(order, "number")


def _thin(times: np.ndarray, values: list[np.ndarray]) -> tuple[np.ndarray, list[np.ndarray]]:
    if len(times) <= CHART_MAX_POINTS:
        return times, values
    step = int(np.ceil(len(times) / CHART_MAX_POINTS))
    keep = np.arange(0, len(times), step)
    keep[-1:] = len(times) - 1
    return times[keep], [v[keep] for v in values]


def _line(times: np.ndarray, values: np.ndarray, scale: float = 1.0) -> list[dict[str, float]]:
    return [
        {"time": int(t), "value": round(float(v) * scale, 6)}
        for t, v in zip(times.tolist(), values.tolist(), strict=True)
    ]


# Arrows only: numbered labels on hundreds of trades would hide the candles. Stops and
# other non-signal exits get a short tag so they stand out.
EXIT_TAGS = {
    "stop_loss": "SL",
    "take_profit": "TP",
    "trailing_stop": "TS",
    "max_drawdown": "DD",
    "liquidation": "LIQ",
}


def _marker(moment: Any, *, buy: bool, text: str = "") -> dict[str, Any]:
    """A green arrow up under the bar for a buy, a red arrow down above it for a sell."""
    return {
        "time": int(moment.timestamp()),
        "position": "belowBar" if buy else "aboveBar",
        "color": "#16a34a" if buy else "#dc2626",
        "shape": "arrowUp" if buy else "arrowDown",
        "text": text,
    }


def backtest_pair_chart_data(
    *, pair: BacktestPair, result: BacktestResult, candles: Any
) -> dict[str, Any]:
    """The chart payload (floats, DESIGN.md §5): candles, trade markers, equity, drawdown."""
    times, (equity, drawdown) = _thin(
        unpack_times(result.times), [unpack_values(result.equity), unpack_values(result.drawdown)]
    )
    seconds = candles.time.astype("datetime64[s]").astype(np.int64).tolist()
    bars = [
        {"time": t, "open": o, "high": h, "low": lo, "close": c}
        for t, o, h, lo, c in zip(
            seconds,
            candles.open.tolist(),
            candles.high.tolist(),
            candles.low.tolist(),
            candles.close.tolist(),
            strict=True,
        )
    ]
    markers = []
    for entry, exit_time, reason, side in pair.trades.order_by("number").values_list(
        "entry_time", "exit_time", "exit_reason", "side"
    ):
        # A long enters with a buy and exits with a sell; a short the other way round.
        short = side == Side.SHORT
        markers.append(_marker(entry, buy=not short))
        if exit_time is not None:
            markers.append(_marker(exit_time, buy=short, text=EXIT_TAGS.get(reason, "")))
    markers.sort(key=lambda m: m["time"])
    return {
        "candles": bars,
        "markers": markers,
        "equity": _line(times, equity),
        "drawdown": _line(times, drawdown, scale=-100.0),
    }


def backtest_task_chart_data(*, task: BacktestTask) -> dict[str, Any]:
    full = BacktestTask.objects.only("equity_times", "equity_values").get(pk=task.pk)
    times, (equity,) = _thin(unpack_times(full.equity_times), [unpack_values(full.equity_values)])
    if len(equity):
        peaks = np.maximum.accumulate(equity.astype(np.float64))
        drawdown = 1.0 - equity / peaks
    else:
        drawdown = equity
    return {"equity": _line(times, equity), "drawdown": _line(times, drawdown, scale=-100.0)}
