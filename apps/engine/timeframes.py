"""Candle timeframes in ccxt notation ("1m", "5m", "1h", "4h", "1d", "1w", "1M") and resampling.

A timeframe is a count and a unit: s, m, h, d, w (fixed lengths) or M (calendar months).
Candles of a timeframe open on a grid: fixed lengths are counted from the Unix epoch, except
weeks, which open on Monday 00:00 UTC as exchanges do (the epoch was a Thursday); months open
on the 1st at 00:00 UTC, and an n-month grid counts months from January 1970.

`resample` builds higher-timeframe candles from lower ones (1h -> 4h, 1h -> 1d, 1d -> 1w, ...).
Only complete buckets are emitted: a bucket whose source candles are not all present (a gap
inside it, or the partial first and last buckets of the range) is left out entirely rather
than built from what is there, because its open, high, low, close and volume would otherwise
describe a shorter period than its timeframe says.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from apps.engine.candles import CandleArrays

_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}
_TIMEFRAME_RE = re.compile(r"^([1-9][0-9]{0,3})([smhdwM])$")
# Weekly candles open on Mondays; 1970-01-05 was the first Monday after the epoch.
_WEEK_ANCHOR_SECONDS = 4 * 86_400
_NS = 1_000_000_000

COMMON_TIMEFRAMES = (
    "1m",
    "3m",
    "5m",
    "15m",
    "30m",
    "1h",
    "2h",
    "4h",
    "6h",
    "8h",
    "12h",
    "1d",
    "3d",
    "1w",
    "1M",
)


class TimeframeError(ValueError):
    """A timeframe string is not valid, or two timeframes cannot be combined as asked."""


@dataclass(frozen=True)
class Timeframe:
    """A parsed timeframe; `seconds` is 0 for calendar months (their length varies)."""

    code: str
    count: int
    unit: str

    @property
    def is_monthly(self) -> bool:
        return self.unit == "M"

    @property
    def seconds(self) -> int:
        return 0 if self.is_monthly else self.count * _UNIT_SECONDS[self.unit]

    @property
    def anchor_seconds(self) -> int:
        return _WEEK_ANCHOR_SECONDS if self.unit == "w" else 0

    @property
    def pandas_offset(self) -> str:
        """The pandas frequency string: "5min", "1h", "1D", "1W-MON" (label left), "1MS"."""
        if self.is_monthly:
            return f"{self.count}MS"
        return {
            "s": f"{self.count}s",
            "m": f"{self.count}min",
            "h": f"{self.count}h",
            "d": f"{self.count}D",
            "w": f"{self.count}W-MON",
        }[self.unit]

    @property
    def postgres_interval(self) -> str:
        if self.is_monthly:
            return f"{self.count} months"
        return f"{self.seconds} seconds"

    def __str__(self) -> str:
        return self.code

    def floor(self, times: npt.NDArray[np.datetime64]) -> npt.NDArray[np.datetime64]:
        """The open time of the candle of this timeframe that contains each time."""
        if self.is_monthly:
            months = times.astype("datetime64[M]").astype(np.int64)
            floored = months - np.mod(months, self.count)
            return floored.astype("datetime64[M]").astype("datetime64[ns]")
        ns = times.astype("datetime64[ns]").astype(np.int64)
        step = self.seconds * _NS
        anchor = self.anchor_seconds * _NS
        return (ns - np.mod(ns - anchor, step)).astype("datetime64[ns]")

    def next_open(self, times: npt.NDArray[np.datetime64]) -> npt.NDArray[np.datetime64]:
        """The open time of the following candle, for aligned `times`."""
        if self.is_monthly:
            months = times.astype("datetime64[M]") + np.timedelta64(self.count, "M")
            return months.astype("datetime64[ns]")
        shifted = times.astype("datetime64[ns]") + np.timedelta64(self.seconds, "s")
        return shifted.astype("datetime64[ns]")

    def first_misaligned(self, times: npt.NDArray[np.datetime64]) -> int | None:
        """Index of the first time that is not a candle open time of this timeframe."""
        bad = np.flatnonzero(self.floor(times) != times.astype("datetime64[ns]"))
        return int(bad[0]) if len(bad) else None

    def count_between(self, first: np.datetime64, last: np.datetime64) -> int:
        """How many candles open in [first, last], both aligned, first <= last."""
        if self.is_monthly:
            months = int((last.astype("datetime64[M]") - first.astype("datetime64[M]")).astype(int))
            return months // self.count + 1
        span = int((last - first) / np.timedelta64(1, "s"))
        return span // self.seconds + 1


def parse_timeframe(code: str) -> Timeframe:
    """Parse a ccxt timeframe such as "5m", "1h", "1d", "1w" or "1M" (M = month, m = minute)."""
    match = _TIMEFRAME_RE.match(code.strip()) if isinstance(code, str) else None
    if match is None:
        raise TimeframeError(
            f"{code!r} is not a timeframe; use a number and a unit s, m, h, d, w or M "
            f"(months), e.g. {', '.join(COMMON_TIMEFRAMES[:2])}, 1h, 4h, 1d, 1w or 1M"
        )
    return Timeframe(code=code.strip(), count=int(match.group(1)), unit=match.group(2))


def check_resample(source: Timeframe, target: Timeframe) -> None:
    """Raise TimeframeError unless every target candle is made of whole source candles."""
    if target.is_monthly:
        if source.is_monthly:
            ok = target.count % source.count == 0
        else:
            ok = source.seconds <= 86_400 and 86_400 % source.seconds == 0
    elif source.is_monthly:
        ok = False
    else:
        ok = (
            target.seconds > 0
            and target.seconds % source.seconds == 0
            and (target.anchor_seconds - source.anchor_seconds) % source.seconds == 0
        )
    if not ok or source == target:
        raise TimeframeError(
            f"cannot resample {source} candles to {target}: each {target} candle must be made of "
            f"several whole {source} candles"
        )


def resample(candles: CandleArrays, source: Timeframe, target: Timeframe) -> CandleArrays:
    """OHLCV of each complete `target` bucket: first open, max high, min low, last close, sum of
    volume. `candles` must be `source` candles (aligned, strictly increasing). Buckets with any
    source candle missing are dropped (see the module docstring)."""
    check_resample(source, target)
    empty = np.array([], dtype="datetime64[ns]")
    if len(candles) == 0:
        return CandleArrays(empty, *(np.array([], dtype=np.float64) for _ in range(5)))
    times = candles.time.astype("datetime64[ns]")
    buckets = target.floor(times)
    starts = np.flatnonzero(np.r_[True, buckets[1:] != buckets[:-1]])
    ends = np.r_[starts[1:], len(times)]
    bucket_open = buckets[starts]
    present = ends - starts
    if target.is_monthly and not source.is_monthly:
        bucket_close = target.next_open(bucket_open)
        expected = (bucket_close - bucket_open) // np.timedelta64(source.seconds, "s")
    elif target.is_monthly:
        expected = np.full(len(starts), target.count // source.count)
    else:
        expected = np.full(len(starts), target.seconds // source.seconds)
    keep = present == expected
    return CandleArrays(
        time=bucket_open[keep],
        open=candles.open[starts][keep],
        high=np.maximum.reduceat(candles.high, starts)[keep],
        low=np.minimum.reduceat(candles.low, starts)[keep],
        close=candles.close[ends - 1][keep],
        volume=np.add.reduceat(candles.volume, starts)[keep],
    )
