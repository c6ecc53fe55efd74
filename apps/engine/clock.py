"""Clocks: the engine never reads wall time, it is handed a `Clock` (DESIGN.md §5).

A backtest moves a `BarClock` along its candles; a bot tick passes a `FixedClock` set to the
close of the candle it is deciding on. Both give tz-aware UTC datetimes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

import numpy as np

from apps.engine.candles import TimeArray


class Clock(Protocol):
    def now(self) -> datetime:
        """The current moment, tz-aware UTC."""
        ...


def _aware(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise ValueError("clock times must be tz-aware (UTC)")
    return moment.astimezone(UTC)


@dataclass(frozen=True)
class FixedClock:
    """Always the same moment: a bot tick on one closed candle, or a test."""

    moment: datetime

    def __post_init__(self) -> None:
        object.__setattr__(self, "moment", _aware(self.moment))

    def now(self) -> datetime:
        return self.moment


def to_datetime(value: np.datetime64) -> datetime:
    """A naive-UTC numpy datetime64 (as in `CandleArrays.time`) as a tz-aware datetime."""
    nanos = int(value.astype("datetime64[ns]").astype(np.int64))
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=nanos // 1000)


def bar_length(times: TimeArray) -> timedelta:
    """The timeframe of a candle series: the smallest gap between open times (1 h if unknown)."""
    if len(times) < 2:
        return timedelta(hours=1)
    gaps = np.diff(times.astype("datetime64[ns]").astype(np.int64))
    return timedelta(microseconds=int(gaps.min()) // 1000)


@dataclass
class BarClock:
    """Time that moves with the bars of a backtest: `now()` is the close of the current bar
    (its open time plus the timeframe), which is when a decision on that bar is made."""

    times: TimeArray
    timeframe: timedelta
    index: int = 0

    def advance_to(self, index: int) -> None:
        if not 0 <= index < len(self.times):
            raise IndexError(f"bar {index} is outside the {len(self.times)} candles")
        self.index = index

    def now(self) -> datetime:
        return to_datetime(self.times[self.index]) + self.timeframe
