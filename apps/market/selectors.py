"""Reads from the candle store: numpy arrays for the engine, coverage and gaps for people.

Candles are shared market data (no owner), so these selectors take no user.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
from django.db import connection

from apps.engine.candles import CandleArrays
from apps.engine.timeframes import parse_timeframe
from apps.market import pgcopy
from apps.market.models import CandleSeries


@dataclass(frozen=True)
class Gap:
    """Candles missing between two stored ones: `start`..`end` are the missing open times."""

    start: datetime
    end: datetime
    missing: int


@dataclass(frozen=True)
class SeriesCoverage:
    series: CandleSeries
    first: datetime | None
    last: datetime | None
    candles: int
    gaps: list[Gap] = field(default_factory=list)

    @property
    def missing(self) -> int:
        return sum(gap.missing for gap in self.gaps)

    @property
    def expected(self) -> int:
        """Candles from the first to the last one, had none been missing."""
        return self.candles + self.missing


def _empty() -> CandleArrays:
    none = np.array([], dtype=np.float64)
    return CandleArrays(np.array([], dtype="datetime64[ns]"), none, none, none, none, none)


def candle_series_find(*, exchange: str, symbol: str, timeframe: str) -> CandleSeries | None:
    return CandleSeries.objects.filter(
        exchange=exchange.strip().lower(), symbol=symbol.strip().upper(), timeframe=timeframe
    ).first()


def candle_series_count(*, exchange: str, symbol: str, timeframe: str) -> int:
    series = candle_series_find(exchange=exchange, symbol=symbol, timeframe=timeframe)
    return 0 if series is None else series.candles.count()


def candles_load(
    *,
    exchange: str,
    symbol: str,
    timeframe: str,
    start: datetime | None = None,
    end: datetime | None = None,
) -> CandleArrays:
    """Stored candles with start <= open time < end (either bound optional), oldest first.

    Streams a binary COPY straight into numpy (see pgcopy): no Python object per row.
    An unknown series or an empty range gives zero-length arrays.
    """
    series = candle_series_find(exchange=exchange, symbol=symbol, timeframe=timeframe)
    if series is None:
        return _empty()
    query = (
        "COPY (SELECT open_time, open, high, low, close, volume FROM market_candle"
        " WHERE series_id = %s AND open_time >= coalesce(%s, '-infinity'::timestamptz)"
        " AND open_time < coalesce(%s, 'infinity'::timestamptz)"
        " ORDER BY open_time) TO STDOUT (FORMAT binary)"
    )
    params = [series.pk, start, end]
    buffer = bytearray()
    # The psycopg cursor itself: Django's debug wrapper's copy() takes no parameters.
    with connection.cursor() as cursor, cursor.cursor.copy(query, params) as copy:
        for block in copy:
            buffer += block
    return pgcopy.decode(buffer)


def candle_series_coverage(*, series: CandleSeries) -> SeriesCoverage:
    """First and last candle, count, and every gap, computed in SQL.

    The gap scan walks the primary-key index once with `lead(open_time)`: a gap is a pair of
    consecutive stored candles further apart than one timeframe step.
    """
    timeframe = parse_timeframe(series.timeframe)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT min(open_time), max(open_time), count(*) FROM market_candle "
            "WHERE series_id = %s",
            [series.pk],
        )
        first, last, count = cursor.fetchone()
        cursor.execute(
            "SELECT open_time + %s::interval, next_time - %s::interval FROM ("
            "  SELECT open_time, lead(open_time) OVER (ORDER BY open_time) AS next_time"
            "  FROM market_candle WHERE series_id = %s"
            ") AS steps WHERE next_time > open_time + %s::interval ORDER BY open_time",
            [timeframe.postgres_interval] * 2 + [series.pk, timeframe.postgres_interval],
        )
        rows = cursor.fetchall()
    gaps = [
        Gap(
            start=start,
            end=end,
            missing=timeframe.count_between(_dt64(start), _dt64(end)),
        )
        for start, end in rows
    ]
    return SeriesCoverage(series=series, first=first, last=last, candles=count, gaps=gaps)


def candle_coverage_list() -> list[SeriesCoverage]:
    """Coverage of every stored series, by exchange, symbol and timeframe."""

    def order(series: CandleSeries) -> tuple[str, str, int]:
        timeframe = parse_timeframe(series.timeframe)
        return (series.exchange, series.symbol, timeframe.seconds or timeframe.count * 2_678_400)

    return [
        candle_series_coverage(series=series)
        for series in sorted(CandleSeries.objects.all(), key=order)
    ]


def _dt64(value: datetime) -> np.datetime64:
    return np.datetime64(value.replace(tzinfo=None), "ns")
