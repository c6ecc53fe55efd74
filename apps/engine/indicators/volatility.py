"""Volatility and channel indicators: Bollinger Bands, ATR, Donchian channel, Supertrend."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from apps.engine.indicators._core import (
    FloatArray,
    as_float_array,
    as_float_arrays,
    check_float,
    check_int,
    first_valid,
    nan_array,
    rolling_max,
    rolling_mean,
    rolling_min,
    rolling_std,
    wilder,
)


def bollinger(
    values: npt.ArrayLike, period: int = 20, num_std: float = 2.0
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Bollinger Bands (upper, middle, lower): SMA +/- num_std population (ddof=0) std devs.

    The middle band is `sma`; the deviation is summed directly over each window around it
    (see `rolling_std`), so it is exactly 0 on a window of equal prices.
    """
    period = check_int("period", period)
    num_std = check_float("num_std", num_std, 0.0, float("inf"))
    arr = as_float_array(values)
    middle = rolling_mean(arr, period)
    width = num_std * rolling_std(arr, period, middle)
    return middle + width, middle, middle - width


def true_range(high: FloatArray, low: FloatArray, close: FloatArray) -> FloatArray:
    """max(high - low, |high - previous close|, |low - previous close|); NaN at bar 0."""
    out = nan_array(len(close))
    if len(close) > 1:
        prev = close[:-1]
        out[1:] = np.maximum(
            np.maximum(high[1:] - low[1:], np.abs(high[1:] - prev)), np.abs(low[1:] - prev)
        )
    return out


def atr(
    high: npt.ArrayLike, low: npt.ArrayLike, close: npt.ArrayLike, period: int = 14
) -> FloatArray:
    """Average true range with Wilder's smoothing, as TA-Lib's ATR.

    The first value (index `period`) is the mean of the true ranges of bars 1..period, then
    atr = (atr * (period - 1) + tr) / period.
    """
    period = check_int("period", period)
    h, lo, c = as_float_arrays(high=high, low=low, close=close)
    tr = true_range(h, lo, c)
    return wilder(tr, period, first_valid(tr), overwrite=True)  # tr is ours to reuse


def donchian(
    high: npt.ArrayLike, low: npt.ArrayLike, period: int = 20
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Donchian channel (upper, middle, lower): highest high, midpoint, lowest low over
    `period` bars including the current one, as `ta.volatility.DonchianChannel`."""
    period = check_int("period", period)
    h, lo = as_float_arrays(high=high, low=low)
    upper = rolling_max(h, period)
    lower = rolling_min(lo, period)
    return upper, (upper - lower) / 2.0 + lower, lower


def supertrend(
    high: npt.ArrayLike,
    low: npt.ArrayLike,
    close: npt.ArrayLike,
    period: int = 10,
    multiplier: float = 3.0,
) -> tuple[FloatArray, FloatArray]:
    """Supertrend (line, direction), direction +1 for an uptrend and -1 for a downtrend.

    The published definition (as TradingView's ta.supertrend, whose direction sign is the
    opposite of ours), on Wilder's ATR:
      basic upper/lower = (high + low) / 2 +/- multiplier * atr
      final upper = basic upper if basic upper < previous final upper or previous close >
                    previous final upper, else previous final upper (lower band mirrored)
      the trend starts down; a downtrend turns up when close > final upper, an uptrend
      turns down when close < final lower; the line is the lower band in an uptrend and the
      upper band in a downtrend.
    Outputs start where the ATR does (index `period`). The band recurrence depends on its own
    previous value, so this is the one indicator computed by a (tight, scalar) loop.
    """
    period = check_int("period", period)
    multiplier = check_float("multiplier", multiplier, 0.0, float("inf"))
    h, lo, c = as_float_arrays(high=high, low=low, close=close)
    n = len(c)
    line = nan_array(n)
    direction = nan_array(n)
    band = atr(h, lo, c, period)
    start = first_valid(band)
    if start >= n:
        return line, direction
    mid = (h + lo) / 2.0
    basic_upper = (mid + multiplier * band)[start:].tolist()
    basic_lower = (mid - multiplier * band)[start:].tolist()
    closes = c[start:].tolist()
    lines = [0.0] * len(closes)
    trends = [0.0] * len(closes)
    upper = basic_upper[0]
    lower = basic_lower[0]
    trend = -1.0
    lines[0] = upper
    trends[0] = trend
    prev_close = closes[0]
    for i in range(1, len(closes)):
        bu = basic_upper[i]
        bl = basic_lower[i]
        if bu < upper or prev_close > upper:
            upper = bu
        if bl > lower or prev_close < lower:
            lower = bl
        close_i = closes[i]
        if trend < 0.0:
            if close_i > upper:
                trend = 1.0
        elif close_i < lower:
            trend = -1.0
        lines[i] = lower if trend > 0.0 else upper
        trends[i] = trend
        prev_close = close_i
    line[start:] = lines
    direction[start:] = trends
    return line, direction
