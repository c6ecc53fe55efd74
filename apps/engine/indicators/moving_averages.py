"""Moving averages: SMA (pandas' rolling mean), EMA (TA-Lib seeding) and WMA."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from apps.engine.indicators._core import (
    FloatArray,
    as_float_array,
    check_int,
    first_valid,
    nan_array,
    rolling_mean,
    seeded_average,
)


def sma(values: npt.ArrayLike, period: int) -> FloatArray:
    """Simple moving average, bit for bit pandas' `Series.rolling(period).mean()`.

    pandas' rolling mean gives exactly the price for a window of equal prices, so two SMAs of
    the same flat stretch tie exactly (a running sum or cumsum difference would not).
    """
    period = check_int("period", period)
    return rolling_mean(as_float_array(values), period)


def ema(values: npt.ArrayLike, period: int) -> FloatArray:
    """Exponential moving average with TA-Lib's seeding.

    The first value (at index first_valid + period - 1) is the SMA of the first `period`
    values, then ema[t] = ema[t-1] + alpha * (x[t] - ema[t-1]) with alpha = 2 / (period + 1).
    Leading NaNs are skipped (so an EMA of an indicator with warmup works).
    """
    period = check_int("period", period)
    arr = as_float_array(values)
    return seeded_average(arr, period, 2.0 / (period + 1), first_valid(arr))


def wma(values: npt.ArrayLike, period: int) -> FloatArray:
    """Linearly weighted moving average (weights 1..period, the newest heaviest), as TA-Lib.

    Each output is a direct weighted sum over its window (np.convolve), so no error
    accumulates along the series the way a running-sum update does.
    """
    period = check_int("period", period)
    arr = as_float_array(values)
    out = nan_array(len(arr))
    if len(arr) < period:
        return out
    weights = np.arange(period, 0, -1, dtype=np.float64)  # convolve flips: newest gets `period`
    out[period - 1 :] = np.convolve(arr, weights, mode="valid") / (period * (period + 1) / 2.0)
    return out
