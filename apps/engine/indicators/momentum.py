"""Momentum oscillators: RSI (Wilder), MACD and the stochastic oscillator, as TA-Lib."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from apps.engine.indicators._core import (
    FloatArray,
    IndicatorError,
    as_float_array,
    as_float_arrays,
    check_int,
    first_valid,
    nan_array,
    rolling_max,
    rolling_mean,
    rolling_min,
    seeded_average,
    wilder,
)


def rsi(values: npt.ArrayLike, period: int = 14) -> FloatArray:
    """Relative strength index with Wilder's smoothing and TA-Lib's seeding.

    Average gain/loss start as the plain mean of the first `period` changes (first output
    at index `period`), then avg = (avg * (period - 1) + x) / period. As in TA-Lib the RSI is
    100 * gain / (gain + loss), and 0 when gain + loss is zero (a market that has not moved).
    TA-Lib uses "below 1e-8" there, which would flatten RSI for coins priced under ~1e-6.
    """
    period = check_int("period", period)
    arr = as_float_array(values)
    start = first_valid(arr)
    change = nan_array(len(arr))
    np.subtract(arr[start + 1 :], arr[start:-1], out=change[start + 1 :])
    # A NaN change fails both comparisons, so it stays NaN in gains and losses alike.
    gains = np.where(change <= 0, 0.0, change)
    losses = np.where(change >= 0, 0.0, change)
    np.subtract(0.0, losses, out=losses)  # a loss as a positive amount (0.0 - 0.0 is +0.0)
    # Both are ours, so the smoothing may reuse them: each fresh million-bar array costs.
    avg_gain = wilder(gains, period, start + 1, overwrite=True)
    avg_loss = wilder(losses, period, start + 1, overwrite=True)
    total = avg_gain + avg_loss
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.divide(avg_gain, total, out=avg_gain)  # NaN where total is NaN
    np.multiply(100.0, out, out=out)
    out[total == 0.0] = 0.0
    return out


def macd(
    values: npt.ArrayLike, fast: int = 12, slow: int = 26, signal: int = 9
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """MACD line, signal line and histogram, seeded exactly as TA-Lib's MACD.

    TA-Lib seeds BOTH EMAs at the slow EMA's first bar (index slow - 1): the slow one with the
    SMA of the first `slow` values, the fast one with the SMA of the `fast` values ending
    there. The signal is an EMA of the MACD line seeded with its first `signal` values.
    The MACD line starts at slow - 1; signal and histogram at slow + signal - 2 (TA-Lib
    reports all three from slow + signal - 2).
    """
    fast = check_int("fast", fast)
    slow = check_int("slow", slow)
    signal = check_int("signal", signal)
    if fast >= slow:
        raise IndicatorError(
            f"fast must be less than slow, got fast={fast}, slow={slow}", param="fast"
        )
    arr = as_float_array(values)
    start = first_valid(arr)
    slow_ema = seeded_average(arr, slow, 2.0 / (slow + 1), start)
    fast_ema = seeded_average(arr, fast, 2.0 / (fast + 1), start + slow - fast)
    line = fast_ema - slow_ema
    signal_line = seeded_average(line, signal, 2.0 / (signal + 1), start + slow - 1)
    return line, signal_line, line - signal_line


def stochastic(
    high: npt.ArrayLike,
    low: npt.ArrayLike,
    close: npt.ArrayLike,
    k_period: int = 14,
    k_smooth: int = 3,
    d_period: int = 3,
) -> tuple[FloatArray, FloatArray]:
    """Slow stochastic (%K, %D) as TA-Lib's STOCH with simple moving averages.

    fast %K = (close - lowest low) / ((highest high - lowest low) / 100) over `k_period` bars,
    0 when the range is zero (TA-Lib's convention); %K = SMA(fast %K, k_smooth);
    %D = SMA(%K, d_period). Both start at k_period + k_smooth + d_period - 3, like TA-Lib.
    """
    k_period = check_int("k_period", k_period)
    k_smooth = check_int("k_smooth", k_smooth)
    d_period = check_int("d_period", d_period)
    h, lo, c = as_float_arrays(high=high, low=low, close=close)
    highest = rolling_max(h, k_period)
    lowest = rolling_min(lo, k_period)
    scale = (highest - lowest) / 100.0
    with np.errstate(divide="ignore", invalid="ignore"):
        fast_k = np.where(scale != 0.0, (c - lowest) / scale, 0.0)
    fast_k[np.isnan(scale) | np.isnan(c)] = np.nan
    slow_k = rolling_mean(fast_k, k_smooth)
    slow_d = rolling_mean(slow_k, d_period)
    # TA-Lib reports %K only where %D exists, which keeps the pair aligned for crosses.
    begin = min(len(c), k_period + k_smooth + d_period - 3)
    slow_k[:begin] = np.nan
    return slow_k, slow_d
