"""Directional movement: ADX, +DI and -DI (Wilder), reproducing TA-Lib's algorithm."""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from apps.engine.indicators._core import (
    TA_EPSILON,
    FloatArray,
    as_float_arrays,
    check_int,
    nan_array,
    seeded_ewm,
)
from apps.engine.indicators.volatility import true_range


def _wilder_sum(values: FloatArray, period: int) -> FloatArray:
    """TA-Lib's running Wilder sum divided by `period`.

    TA-Lib keeps S = S - S/period + x, seeded at index period - 1 with the plain sum of bars
    1..period-1 (one bar short of a full window). S/period is then an exponential average
    with alpha = 1/period whose seed is that sum / period; only ratios of these are used.
    """
    if period >= len(values):
        return nan_array(len(values))
    seed = math.fsum(values[1:period].tolist()) / period
    return seeded_ewm(values, 1.0 / period, period - 1, seed)


def dmi(
    high: npt.ArrayLike, low: npt.ArrayLike, close: npt.ArrayLike, period: int = 14
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """(+DI, -DI, ADX) as TA-Lib's PLUS_DI, MINUS_DI and ADX.

    +DM = up move when it is positive and larger than the down move (-DM mirrored); DM and
    true range are Wilder-smoothed; DI = 100 * DM / TR from index `period` (0 while the
    smoothed TR is zero; TA-Lib's absolute 1e-8 would break micro-priced coins).
    DX = 100 * |+DI - -DI| / (+DI + -DI); the ADX
    seed (index 2 * period - 1) is the sum of the first `period` DX values / period, then
    adx = (adx * (period - 1) + dx) / period. Like TA-Lib, a bar whose DX is undefined (TR or
    DI sum below 1e-8) leaves the ADX unchanged and counts as 0 in the seed.
    """
    period = check_int("period", period, 2)
    h, lo, c = as_float_arrays(high=high, low=low, close=close)
    n = len(c)
    plus_di, minus_di, adx_out = nan_array(n), nan_array(n), nan_array(n)
    if n <= period:
        return plus_di, minus_di, adx_out
    up = np.zeros(n)
    down = np.zeros(n)
    up[1:] = h[1:] - h[:-1]
    down[1:] = lo[:-1] - lo[1:]
    plus_dm = np.where((up > 0) & (up > down), up, 0.0)
    minus_dm = np.where((down > 0) & (down > up), down, 0.0)
    tr = true_range(h, lo, c)
    tr[0] = 0.0
    s_plus = _wilder_sum(plus_dm, period)
    s_minus = _wilder_sum(minus_dm, period)
    s_tr = _wilder_sum(tr, period)
    tr_ok = s_tr != 0.0
    with np.errstate(divide="ignore", invalid="ignore"):
        p = np.where(tr_ok, 100.0 * (s_plus / s_tr), 0.0)
        m = np.where(tr_ok, 100.0 * (s_minus / s_tr), 0.0)
        di_sum = m + p
        dx = np.where(
            tr_ok & (np.abs(di_sum) >= TA_EPSILON), 100.0 * (np.abs(m - p) / di_sum), np.nan
        )
    plus_di[period:] = p[period:]
    minus_di[period:] = m[period:]
    seed_index = 2 * period - 1
    if seed_index < n:
        seed = math.fsum(np.nan_to_num(dx[period : seed_index + 1]).tolist()) / period
        adx_out = seeded_ewm(dx, 1.0 / period, seed_index, seed, skip_nan=True)
    return plus_di, minus_di, adx_out


def adx(
    high: npt.ArrayLike, low: npt.ArrayLike, close: npt.ArrayLike, period: int = 14
) -> FloatArray:
    """Average directional index (Wilder), as TA-Lib's ADX; first value at 2 * period - 1."""
    return dmi(high, low, close, period)[2]


def plus_di(
    high: npt.ArrayLike, low: npt.ArrayLike, close: npt.ArrayLike, period: int = 14
) -> FloatArray:
    """+DI, as TA-Lib's PLUS_DI; first value at index `period`."""
    return dmi(high, low, close, period)[0]


def minus_di(
    high: npt.ArrayLike, low: npt.ArrayLike, close: npt.ArrayLike, period: int = 14
) -> FloatArray:
    """-DI, as TA-Lib's MINUS_DI; first value at index `period`."""
    return dmi(high, low, close, period)[1]
